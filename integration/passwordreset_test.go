package integration

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

var resetSecretRe = regexp.MustCompile(store.PasswordResetPrefix + `[A-Za-z0-9_-]{43}`)

// resetSecret is the secret of the newest reset mail to email ("" when
// none was queued).
func resetSecret(t *testing.T, h *harness.Harness, email string) string {
	t.Helper()
	var bodies []string
	if err := h.DB.NewRaw("SELECT body FROM outbox WHERE recipient = ? AND subject LIKE '%new IntelliAuth password%' ORDER BY id DESC LIMIT 1", email).
		Scan(context.Background(), &bodies); err != nil {
		t.Fatal(err)
	}
	if len(bodies) == 0 {
		return ""
	}
	return resetSecretRe.FindString(bodies[0])
}

func TestAForgottenPasswordIsResetOnceByMailAndEndsEverySession(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	dev := w.People[domain.RoleDeveloper]
	base := servedAPI(t, api.Deps{ConsoleURL: "https://manage.example.test"})
	c := newCaller(base)

	// A known and an unknown email get the same answer; only the known one
	// gets a mail.
	known := c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": strings.ToUpper(dev.Email)}, nil)
	unknown := c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": "nobody-" + uniq() + "@example.test"}, nil)
	if known.Status != 202 || unknown.Status != 202 || string(known.Env.Data) != string(unknown.Env.Data) {
		t.Fatalf("known %d %s, unknown %d %s", known.Status, known.Raw, unknown.Status, unknown.Raw)
	}
	first := resetSecret(t, h, dev.Email)
	if first == "" {
		t.Fatal("no reset mail for a known email")
	}
	var body string
	if err := h.DB.NewRaw("SELECT body FROM outbox WHERE recipient = ? ORDER BY id DESC LIMIT 1", dev.Email).Scan(context.Background(), &body); err != nil ||
		!strings.Contains(body, "https://manage.example.test/password-reset#token="+first) {
		t.Fatalf("the mail's link: %v\n%s", err, body)
	}
	// A newer request ends the older secret (this one in process, so the
	// contract checks its answer).
	if r := req(t, sharedAPI(t), "POST", "/api/v1/auth/password-reset", "", map[string]any{"email": dev.Email}); r.Status != 202 {
		t.Fatalf("a second request: %d %s", r.Status, r.Raw)
	}
	secret := resetSecret(t, h, dev.Email)
	if secret == first {
		t.Fatal("a second request mailed the same secret")
	}
	const newPassword = "a-brand-new-password-42"
	confirm := func(token string) response {
		return c.post(t, "/api/v1/auth/password-reset/confirm", map[string]any{"token": token, "password": newPassword}, nil)
	}
	flip := "A"
	if strings.HasSuffix(secret, "A") {
		flip = "B"
	}
	tampered := secret[:len(secret)-1] + flip
	for name, token := range map[string]string{"an older secret": first, "a tampered secret": tampered, "an unknown secret": store.PasswordResetPrefix + strings.Repeat("x", 43)} {
		if r := confirm(token); r.Status != 401 {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	if r := c.post(t, "/api/v1/auth/password-reset/confirm", map[string]any{"token": secret, "password": "short"}, nil); r.Status != 400 {
		t.Errorf("a short password: %d %s", r.Status, r.Raw)
	}

	// The right secret sets the password once, and every session ends.
	if r := req(t, sharedAPI(t), "POST", "/api/v1/auth/password-reset/confirm", "", map[string]any{"token": secret, "password": newPassword}); r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Raw)
	}
	if r := req(t, sharedAPI(t), "GET", "/api/v1/me", dev.Token, nil); r.Status != 401 {
		t.Errorf("a session from before the reset: %d", r.Status)
	}
	if r := confirm(secret); r.Status != 401 {
		t.Errorf("the secret used again: %d %s", r.Status, r.Raw)
	}
	if r := c.signIn(t, dev.Email, testPassword); r.Status != 401 {
		t.Errorf("the old password: %d", r.Status)
	}
	if r := c.signIn(t, dev.Email, newPassword); r.Status != 200 {
		t.Errorf("the new password: %d %s", r.Status, r.Raw)
	}
	var actor string
	if err := h.DB.NewRaw("SELECT actor_id FROM audit_events WHERE org_id = ? AND action = 'user.password_reset'", w.Org.ID).Scan(context.Background(), &actor); err != nil || actor != dev.MemberID {
		t.Errorf("user.password_reset by %q: %v", actor, err)
	}

	// An expired secret is refused.
	c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": dev.Email}, nil)
	expired := resetSecret(t, h, dev.Email)
	if _, err := h.DB.NewRaw("UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE secret_hash = ?", store.HashSecret(expired)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := confirm(expired); r.Status != 401 {
		t.Errorf("an expired secret: %d %s", r.Status, r.Raw)
	}
	// The secret is stored only as its hash.
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM password_resets r WHERE r::text LIKE '%' || ? || '%'", expired[len(store.PasswordResetPrefix):]).Scan(context.Background(), &n); err != nil || n != 0 {
		t.Errorf("the raw secret is stored: %d %v", n, err)
	}
}

func TestTwoConfirmationsOfOneResetAtOnceSetThePasswordOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	viewer := w.People[domain.RoleViewer]
	base := servedAPI(t, api.Deps{})
	c := newCaller(base)
	c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": viewer.Email}, nil)
	secret := resetSecret(t, h, viewer.Email)
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = newCaller(base).post(t, "/api/v1/auth/password-reset/confirm", map[string]any{"token": secret, "password": "concurrent-password-" + string(rune('a'+i)) + "-xyz"}, nil).Status
		}()
	}
	wg.Wait()
	ok := 0
	for _, code := range codes {
		if code == 200 {
			ok++
		} else if code != 401 {
			t.Errorf("a confirmation answered %d", code)
		}
	}
	if ok != 1 {
		t.Fatalf("%d confirmations set the password: %v", ok, codes)
	}
}

func TestResetRequestsAreThrottledPerEmailAndAddress(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	email := w.People[domain.RoleAdmin].Email
	c := newCaller(servedAPI(t, api.Deps{}))
	limit := store.DefaultSignInPolicy.Pair.Limit
	for i := range limit {
		if r := c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": email}, nil); r.Status != 202 {
			t.Fatalf("request %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := c.post(t, "/api/v1/auth/password-reset", map[string]any{"email": email}, nil)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("request %d: %d %s", limit+1, r.Status, r.Raw)
	}
	// Signing in is not what was throttled.
	if r := c.signIn(t, email, testPassword); r.Status != 200 {
		t.Fatalf("sign-in after the reset requests: %d %s", r.Status, r.Raw)
	}
}

// Wrong reset secrets sent from many addresses hold up only those
// addresses: a person confirming their own reset from elsewhere is not
// made to wait (the confirmations were once counted under one key for
// the whole installation, so its per-email rule delayed everyone's).
func TestWrongResetSecretsFromElsewhereDoNotDelayAnotherPersonsReset(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	small := store.DefaultSignInPolicy
	small.Email = store.ThrottleRule{Window: time.Hour, Limit: 100, Free: 2, Delay: time.Minute, MaxDelay: time.Hour}
	base := servedAPI(t, api.Deps{SignInPolicy: small})
	for i := range 4 {
		forged, _, _ := store.NewSecret(store.PasswordResetPrefix)
		r := newCaller(base).post(t, "/api/v1/auth/password-reset/confirm", map[string]any{"token": forged, "password": "a guess of a password " + strconv.Itoa(i)}, nil)
		if r.Status != 401 && r.Status != 429 {
			t.Fatalf("a forged secret: %d %s", r.Status, r.Raw)
		}
	}
	email := w.People[domain.RoleViewer].Email
	if r := newCaller(base).post(t, "/api/v1/auth/password-reset", map[string]any{"email": email}, nil); r.Status != 202 {
		t.Fatalf("ask for a reset: %d %s", r.Status, r.Raw)
	}
	secret := resetSecret(t, h, email)
	r := newCaller(base).post(t, "/api/v1/auth/password-reset/confirm", map[string]any{"token": secret, "password": "the person's own new password"}, nil)
	if r.Status != 200 {
		t.Fatalf("the person's own reset, after strangers' guesses elsewhere: %d %s", r.Status, r.Raw)
	}
}
