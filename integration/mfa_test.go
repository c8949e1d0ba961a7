package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/totp"
)

// enrolTOTP turns TOTP on for the person through the API and returns the
// secret and the recovery codes.
func enrolTOTP(t *testing.T, srv *api.Server, token string) (secret string, recovery []string) {
	t.Helper()
	r := req(t, srv, "POST", "/api/v1/me/totp", token, nil)
	if r.Status != 201 {
		t.Fatalf("enrol: %d %s", r.Status, r.Raw)
	}
	var e struct {
		Secret     string `json:"secret"`
		OtpauthURI string `json:"otpauth_uri"`
	}
	r.data(t, &e)
	code, err := totp.Code(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = req(t, srv, "POST", "/api/v1/me/totp/confirm", token, map[string]any{"code": code})
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Raw)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.data(t, &rc)
	return e.Secret, rc.RecoveryCodes
}

type challengeAnswer struct {
	Token       string    `json:"token"`
	MFARequired bool      `json:"mfa_required"`
	Challenge   string    `json:"challenge"`
	Methods     []string  `json:"methods"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// passwordStep signs in with the password and returns the challenge of the
// second step (failing the test when a token came instead).
func passwordStep(t *testing.T, email string) challengeAnswer {
	t.Helper()
	r := signIn(t, email, testPassword)
	if r.Status != 200 {
		t.Fatalf("sign-in: %d %s", r.Status, r.Raw)
	}
	var a challengeAnswer
	r.data(t, &a)
	if !a.MFARequired || a.Token != "" || !strings.HasPrefix(a.Challenge, store.ChallengePrefix) || strings.Contains(r.Raw, `"user"`) {
		t.Fatalf("the password step of a person with a second factor: %s", r.Raw)
	}
	return a
}

func secondStep(t *testing.T, srv *api.Server, challenge, code string) response {
	t.Helper()
	return req(t, srv, "POST", "/api/v1/auth/sign-in/mfa", "", map[string]any{"challenge": challenge, "code": code})
}

func TestTOTPIsTurnedOnOnlyByARightCodeAndThenSignInHasASecondStep(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p := w.People[domain.RoleDeveloper]
	ctx := context.Background()

	r := req(t, srv, "POST", "/api/v1/me/totp", p.Token, nil)
	if r.Status != 201 {
		t.Fatalf("enrol: %d %s", r.Status, r.Raw)
	}
	var e struct {
		Secret     string `json:"secret"`
		OtpauthURI string `json:"otpauth_uri"`
		Pending    bool   `json:"pending"`
	}
	r.data(t, &e)
	if len(e.Secret) < 32 || !e.Pending || !strings.HasPrefix(e.OtpauthURI, "otpauth://totp/IntelliAuth:") || !strings.Contains(e.OtpauthURI, "secret="+e.Secret) {
		t.Fatalf("an enrolment: %s", r.Raw)
	}
	// The secret is stored sealed, not in the clear.
	var sealed []byte
	if err := h.DB.NewRaw("SELECT secret_sealed FROM user_totp WHERE user_id = ?", p.UserID).Scan(ctx, &sealed); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte(e.Secret)) || len(sealed) < 40 {
		t.Fatalf("the TOTP secret is not sealed: %q", sealed)
	}
	// Pending, sign-in is unchanged and /me says so.
	if r := signIn(t, p.Email, testPassword); r.Status != 200 || !strings.Contains(r.Raw, `"token":"cpt_`) {
		t.Fatalf("sign-in while TOTP is pending: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); !strings.Contains(r.Raw, `"totp_pending":true`) || !strings.Contains(r.Raw, `"enabled":false`) {
		t.Fatalf("/me while pending: %s", r.Raw)
	}

	// A wrong code does not turn it on, and says which field (400, not 401:
	// the session is fine).
	wrong := "000000"
	if c, _ := totp.Code(e.Secret, time.Now()); c == wrong {
		wrong = "111111"
	}
	if r := req(t, srv, "POST", "/api/v1/me/totp/confirm", p.Token, map[string]any{"code": wrong}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"code"`) {
		t.Fatalf("a wrong code: %d %s", r.Status, r.Raw)
	}
	if r := signIn(t, p.Email, testPassword); !strings.Contains(r.Raw, `"token":"cpt_`) {
		t.Fatalf("a wrong code turned TOTP on: %s", r.Raw)
	}

	now := time.Now()
	code, _ := totp.Code(e.Secret, now)
	r = req(t, srv, "POST", "/api/v1/me/totp/confirm", p.Token, map[string]any{"code": code})
	if r.Status != 200 {
		t.Fatalf("confirm: %d %s", r.Status, r.Raw)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.data(t, &rc)
	if len(rc.RecoveryCodes) != 10 {
		t.Fatalf("recovery codes: %v", rc.RecoveryCodes)
	}
	// Stored hashed: no code is in the table.
	var stored [][]byte
	if err := h.DB.NewRaw("SELECT code_hash FROM recovery_codes WHERE user_id = ?", p.UserID).Scan(ctx, &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 10 {
		t.Fatalf("%d recovery codes stored", len(stored))
	}
	for _, s := range stored {
		for _, c := range rc.RecoveryCodes {
			if bytes.Contains(s, []byte(c)) || bytes.Contains(s, []byte(strings.ReplaceAll(c, "-", ""))) {
				t.Fatal("a recovery code is stored in the clear")
			}
		}
	}
	// A second enrolment while on is refused; /me says it is on.
	if r := req(t, srv, "POST", "/api/v1/me/totp", p.Token, nil); r.Status != 409 {
		t.Fatalf("enrol over a confirmed secret: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); !strings.Contains(r.Raw, `"totp":true`) || !strings.Contains(r.Raw, `"recovery_codes_left":10`) {
		t.Fatalf("/me once on: %s", r.Raw)
	}

	// The password now earns a challenge, never a token.
	a := passwordStep(t, p.Email)
	if !slices.Equal(a.Methods, []string{"totp", "recovery_code"}) || time.Until(a.ExpiresAt) > store.ChallengeTTL || time.Until(a.ExpiresAt) < store.ChallengeTTL-time.Minute {
		t.Fatalf("challenge: %+v", a)
	}
	// The code that confirmed the enrolment was accepted once: replayed, it
	// is refused, and the challenge survives the failure.
	if r := secondStep(t, srv, a.Challenge, code); r.Status != 401 {
		t.Fatalf("the confirming code replayed: %d %s", r.Status, r.Raw)
	}
	next, _ := totp.Code(e.Secret, now.Add(totp.Period))
	r = secondStep(t, srv, a.Challenge, next)
	if r.Status != 200 {
		t.Fatalf("the second step: %d %s", r.Status, r.Raw)
	}
	var sess struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	r.data(t, &sess)
	if !strings.HasPrefix(sess.Token, store.TokenPrefix) || sess.User.ID != p.UserID {
		t.Fatalf("the session: %s", r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", sess.Token, nil); r.Status != 200 {
		t.Fatalf("the new token: %d", r.Status)
	}
	// The challenge is used up; the code cannot be used again either.
	if r := secondStep(t, srv, a.Challenge, next); r.Status != 401 {
		t.Fatalf("a used challenge: %d %s", r.Status, r.Raw)
	}
	if r := secondStep(t, srv, passwordStep(t, p.Email).Challenge, next); r.Status != 401 {
		t.Fatalf("a used code with a new challenge: %d %s", r.Status, r.Raw)
	}

	// A forged challenge, and an expired one, are refused alike.
	forged, _, _ := store.NewSecret(store.ChallengePrefix)
	if r := secondStep(t, srv, forged, next); r.Status != 401 {
		t.Fatalf("a forged challenge: %d %s", r.Status, r.Raw)
	}
	old := passwordStep(t, p.Email)
	if _, err := h.DB.NewRaw("UPDATE auth_challenges SET expires_at = now() - interval '1 second' WHERE secret_hash = ?", store.HashSecret(old.Challenge)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	later, _ := totp.Code(e.Secret, now.Add(2*totp.Period))
	if r := secondStep(t, srv, old.Challenge, later); r.Status != 401 {
		t.Fatalf("an expired challenge: %d %s", r.Status, r.Raw)
	}

	// A recovery code is good once (typed in capitals, without dashes).
	rcode := strings.ToUpper(strings.ReplaceAll(rc.RecoveryCodes[3], "-", ""))
	if r := secondStep(t, srv, passwordStep(t, p.Email).Challenge, rcode); r.Status != 200 {
		t.Fatalf("a recovery code: %d %s", r.Status, r.Raw)
	}
	if r := secondStep(t, srv, passwordStep(t, p.Email).Challenge, rc.RecoveryCodes[3]); r.Status != 401 {
		t.Fatalf("a recovery code used twice: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); !strings.Contains(r.Raw, `"recovery_codes_left":9`) {
		t.Fatalf("/me after a recovery code: %s", r.Raw)
	}

	// Each way in is an event of the person, with its method.
	r = req(t, srv, "GET", "/api/v1/me/events", p.Token, nil)
	for _, want := range []string{`"action":"user.mfa_enrolled"`, `"method":"totp"`, `"method":"recovery_code"`} {
		if !strings.Contains(r.Raw, want) {
			t.Errorf("/me/events lacks %s: %s", want, r.Raw)
		}
	}
}

func TestOneTOTPCodeSentTwiceAtOnceSignsInOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p := w.People[domain.RoleViewer]
	secret, _ := enrolTOTP(t, srv, p.Token)
	code, _ := totp.Code(secret, time.Now().Add(totp.Period))
	challenges := []string{passwordStep(t, p.Email).Challenge, passwordStep(t, p.Email).Challenge, passwordStep(t, p.Email).Challenge}
	answers := make([]int, len(challenges))
	var wg sync.WaitGroup
	for i, ch := range challenges {
		wg.Go(func() { answers[i] = secondStep(t, srv, ch, code).Status })
	}
	wg.Wait()
	slices.Sort(answers)
	if !slices.Equal(answers, []int{200, 401, 401}) {
		t.Fatalf("one code at once on three challenges: %v", answers)
	}
}

func TestASecondStepBurstCannotOutrunTheThrottle(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	p := w.People[domain.RoleViewer]
	secret, _ := enrolTOTP(t, sharedAPI(t), p.Token)
	base := servedAPI(t, api.Deps{})
	c := newCaller(base)
	a := passwordStep(t, p.Email)

	const n = 30
	answers := make([]response, n)
	var wg sync.WaitGroup
	right, _ := totp.Code(secret, time.Now().Add(totp.Period))
	for i := range n {
		code := strconv.Itoa(100000 + i)
		if code == right {
			code = "999999"
		}
		wg.Go(func() {
			answers[i] = c.post(t, "/api/v1/auth/sign-in/mfa", map[string]any{"challenge": a.Challenge, "code": code}, nil)
		})
	}
	wg.Wait()
	checked := 0
	for _, r := range answers {
		switch {
		case r.Status == 401:
			checked++
		case r.Status == 429 && r.Header.Get("Retry-After") != "":
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Raw)
		}
	}
	if limit := store.DefaultSignInPolicy.Pair.Limit; checked > limit {
		t.Fatalf("%d codes were checked at once; the limit is %d", checked, limit)
	}
	// The throttle holds the right code too until it lets attempts again.
	if r := c.post(t, "/api/v1/auth/sign-in/mfa", map[string]any{"challenge": a.Challenge, "code": right}, nil); r.Status != 429 {
		t.Fatalf("the right code past the limit: %d %s", r.Status, r.Raw)
	}
}

func TestRemovingTOTPAndNewRecoveryCodesNeedARecentAuthentication(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p := w.People[domain.RoleAdmin]
	ctx := context.Background()

	// Recovery codes come with a second factor.
	if r := req(t, srv, "POST", "/api/v1/me/recovery-codes", p.Token, nil); r.Status != 409 {
		t.Fatalf("recovery codes without a factor: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "DELETE", "/api/v1/me/totp", p.Token, nil); r.Status != 404 {
		t.Fatalf("remove TOTP that is not on: %d %s", r.Status, r.Raw)
	}
	_, first := enrolTOTP(t, srv, p.Token)

	fresh := func() {
		t.Helper()
		if _, err := h.DB.NewRaw("UPDATE sessions SET authenticated_at = now() WHERE token_hash = ?", store.HashSecret(p.Token)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	stale(t, h, p.Token)
	// Adding a way in needs it too: a stolen session must not enrol its own
	// factor and hold the person out.
	for _, c := range []struct{ method, path string }{{"POST", "/api/v1/me/recovery-codes"}, {"DELETE", "/api/v1/me/totp"},
		{"POST", "/api/v1/me/totp"}, {"POST", "/api/v1/me/webauthn/registration/options"}} {
		if r := req(t, srv, c.method, c.path, p.Token, nil); r.Status != 403 || r.code() != string(domain.CodeReauthenticationRequired) {
			t.Fatalf("%s %s on a stale session: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	fresh()
	r := req(t, srv, "POST", "/api/v1/me/recovery-codes", p.Token, nil)
	if r.Status != 201 {
		t.Fatalf("new recovery codes: %d %s", r.Status, r.Raw)
	}
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	r.data(t, &rc)
	if len(rc.RecoveryCodes) != 10 || slices.Contains(rc.RecoveryCodes, first[0]) {
		t.Fatalf("a new set: %v", rc.RecoveryCodes)
	}
	// The old set stopped working; the new one works.
	if r := secondStep(t, srv, passwordStep(t, p.Email).Challenge, first[0]); r.Status != 401 {
		t.Fatalf("an old recovery code: %d %s", r.Status, r.Raw)
	}
	if r := secondStep(t, srv, passwordStep(t, p.Email).Challenge, rc.RecoveryCodes[0]); r.Status != 200 {
		t.Fatalf("a new recovery code: %d %s", r.Status, r.Raw)
	}

	if r := req(t, srv, "DELETE", "/api/v1/me/totp", p.Token, nil); r.Status != 200 {
		t.Fatalf("remove TOTP: %d %s", r.Status, r.Raw)
	}
	// Off: the password alone signs in again, and no recovery code is left
	// to stand in for a factor.
	if r := signIn(t, p.Email, testPassword); !strings.Contains(r.Raw, `"token":"cpt_`) {
		t.Fatalf("sign-in once TOTP is off: %s", r.Raw)
	}
	var left int
	if err := h.DB.NewRaw("SELECT count(*) FROM recovery_codes WHERE user_id = ?", p.UserID).Scan(ctx, &left); err != nil || left != 0 {
		t.Fatalf("%d recovery codes left (%v)", left, err)
	}
	r = req(t, srv, "GET", "/api/v1/me/events", p.Token, nil)
	for _, want := range []string{"user.mfa_removed", "user.recovery_codes_regenerated"} {
		if !strings.Contains(r.Raw, want) {
			t.Errorf("/me/events lacks %s", want)
		}
	}
}

// A retried enrolment or confirmation (the same Idempotency-Key) never
// answers a secret again: answers kept for retries are stored in plain
// text.
func TestRetriedEnrolmentsDoNotReplaySecrets(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p := w.People[domain.RoleViewer]
	enrolKey, confirmKey := "enrol-"+uniq(), "confirm-"+uniq()
	first := httpReq(t, srv, "POST", "/api/v1/me/totp", p.Token, nil, enrolKey)
	again := httpReq(t, srv, "POST", "/api/v1/me/totp", p.Token, nil, enrolKey)
	var e struct{ Secret string }
	first.data(t, &e)
	if first.Status != 201 || again.Status != 201 || e.Secret == "" || strings.Contains(again.Raw, e.Secret) || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a retried enrolment: %s / %s", first.Raw, again.Raw)
	}
	code, _ := totp.Code(e.Secret, time.Now())
	c1 := httpReq(t, srv, "POST", "/api/v1/me/totp/confirm", p.Token, map[string]any{"code": code}, confirmKey)
	c2 := httpReq(t, srv, "POST", "/api/v1/me/totp/confirm", p.Token, map[string]any{"code": code}, confirmKey)
	var rc struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	c1.data(t, &rc)
	if c1.Status != 200 || len(rc.RecoveryCodes) != 10 || c2.Status != 200 || strings.Contains(c2.Raw, rc.RecoveryCodes[0]) {
		t.Fatalf("a retried confirmation: %s / %s", c1.Raw, c2.Raw)
	}
	var kept []string
	if err := h.DB.NewRaw("SELECT convert_from(response, 'UTF8') FROM idempotency_records WHERE key IN (?, ?)", enrolKey, confirmKey).Scan(context.Background(), &kept); err != nil {
		t.Fatal(err)
	}
	if j, _ := json.Marshal(kept); len(kept) != 2 || strings.Contains(string(j), e.Secret) || strings.Contains(string(j), rc.RecoveryCodes[0]) {
		t.Fatalf("kept answers: %s", j)
	}
}

func TestAnOrganisationRequiringMFAHoldsAMemberWithoutOneUntilTheyEnrol(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner, admin, dev := w.People[domain.RoleOwner], w.People[domain.RoleAdmin], w.People[domain.RoleDeveloper]
	sa := addServiceAccount(t, h, w, domain.RoleDeveloper)
	org := orgPath(w, "")
	on := map[string]any{"require_mfa": true}

	// Only an owner, and only one who has a second factor.
	if r := req(t, srv, "PATCH", org, admin.Token, on); r.Status != 403 || r.code() != "FORBIDDEN" {
		t.Fatalf("an admin requires MFA: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "PATCH", org, owner.Token, on); r.Status != 409 || !strings.Contains(r.Raw, "your own account") {
		t.Fatalf("an owner without a second factor requires MFA: %d %s", r.Status, r.Raw)
	}
	enrolTOTP(t, srv, owner.Token)
	// The members list shows who has one, before the owner switches.
	r := req(t, srv, "GET", orgPath(w, "/members"), owner.Token, nil)
	var members []struct {
		UserID     string `json:"user_id"`
		MFAEnabled bool   `json:"mfa_enabled"`
	}
	r.data(t, &members)
	for _, m := range members {
		if m.MFAEnabled != (m.UserID == owner.UserID) {
			t.Errorf("member %s: mfa_enabled %v", m.UserID, m.MFAEnabled)
		}
	}
	// Requiring MFA needs a recent authentication.
	stale(t, h, owner.Token)
	if r := req(t, srv, "PATCH", org, owner.Token, on); r.Status != 403 || r.code() != string(domain.CodeReauthenticationRequired) {
		t.Fatalf("requiring MFA on a stale session: %d %s", r.Status, r.Raw)
	}
	if _, err := h.DB.NewRaw("UPDATE sessions SET authenticated_at = now() WHERE token_hash = ?", store.HashSecret(owner.Token)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := req(t, srv, "PATCH", org, owner.Token, on); r.Status != 200 || !strings.Contains(r.Raw, `"require_mfa":true`) {
		t.Fatalf("require MFA: %d %s", r.Status, r.Raw)
	}

	// A member without a second factor is held at every route of the
	// organisation, but can reach their account and enrol.
	for _, path := range []string{org, orgPath(w, "/tenants"), orgPath(w, "/members")} {
		if r := req(t, srv, "GET", path, dev.Token, nil); r.Status != 403 || r.code() != string(domain.CodeMFARequired) {
			t.Fatalf("GET %s without a second factor: %d %s", path, r.Status, r.Raw)
		}
	}
	if r := req(t, srv, "GET", "/api/v1/me", dev.Token, nil); r.Status != 200 {
		t.Fatalf("/me without a second factor: %d", r.Status)
	}
	if r := req(t, srv, "GET", "/api/v1/organizations", dev.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"require_mfa":true`) {
		t.Fatalf("the organisations list: %d %s", r.Status, r.Raw)
	}
	// Service accounts are not affected.
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), sa.Token, nil); r.Status != 200 {
		t.Fatalf("a service account: %d %s", r.Status, r.Raw)
	}
	enrolTOTP(t, srv, dev.Token)
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), dev.Token, nil); r.Status != 200 {
		t.Fatalf("once enrolled: %d %s", r.Status, r.Raw)
	}
	r = req(t, srv, "GET", orgPath(w, "/events")+"?action=organization.updated", owner.Token, nil)
	if !strings.Contains(r.Raw, `"require_mfa":true`) {
		t.Fatalf("the change is not in the audit trail: %s", r.Raw)
	}
}

// TestAnOperatorRemovesTheSecondFactorsOfAPersonWhoLostThemAll: the
// command removes every factor and code, ends every session, and the
// organisation's trail names the operator and the reason.
func TestAnOperatorRemovesTheSecondFactorsOfAPersonWhoLostThemAll(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p := w.People[domain.RoleDeveloper]
	enrolTOTP(t, srv, p.Token)

	for _, args := range [][]string{{"users"}, {"users", "remove-second-factors", "-email", p.Email}} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+h.DatabaseURL)
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command(binary(t), "users", "remove-second-factors", "-email", strings.ToUpper(p.Email), "-reason", "ticket 42: identity checked by video call")
	cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+h.DatabaseURL, "CP_LOG_FORMAT=json")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "second factors and recovery codes removed") {
		t.Fatalf("remove: %v\n%s", err, out)
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); r.Status != 401 {
		t.Fatalf("a session from before: %d", r.Status)
	}
	if r := signIn(t, p.Email, testPassword); !strings.Contains(r.Raw, `"token":"cpt_`) {
		t.Fatalf("sign-in after the removal: %s", r.Raw)
	}
	owner := w.People[domain.RoleOwner]
	r := req(t, srv, "GET", orgPath(w, "/events")+"?action=user.mfa_removed", owner.Token, nil)
	if !strings.Contains(r.Raw, `"type":"operator"`) || !strings.Contains(r.Raw, "ticket 42") {
		t.Fatalf("the trail: %s", r.Raw)
	}
}

// A person with an authenticator app can renew the proof with a code
// instead of the password: each code once, a recovery code used up.
func TestAPersonReauthenticatesWithACodeEachOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	p, other := w.People[domain.RoleAdmin], w.People[domain.RoleViewer]
	if r := req(t, srv, "POST", "/api/v1/auth/reauthenticate", other.Token, map[string]any{"code": "123456"}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"code"`) {
		t.Fatalf("a code without a second factor: %d %s", r.Status, r.Raw)
	}
	secret, recovery := enrolTOTP(t, srv, p.Token)
	stale(t, h, p.Token)
	next, _ := totp.Code(secret, time.Now().Add(totp.Period))
	if r := req(t, srv, "POST", "/api/v1/auth/reauthenticate", p.Token, map[string]any{"code": next}); r.Status != 200 {
		t.Fatalf("reauthenticate with a code: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", "/api/v1/me/recovery-codes", p.Token, nil); r.Status != 201 {
		t.Fatalf("a guarded act after a code: %d %s", r.Status, r.Raw)
	}
	stale(t, h, p.Token)
	if r := req(t, srv, "POST", "/api/v1/auth/reauthenticate", p.Token, map[string]any{"code": next}); r.Status != 401 {
		t.Fatalf("the same code again: %d %s", r.Status, r.Raw)
	}
	// The recovery codes were replaced above: an old one is refused.
	if r := req(t, srv, "POST", "/api/v1/auth/reauthenticate", p.Token, map[string]any{"code": recovery[0]}); r.Status != 401 {
		t.Fatalf("an old recovery code: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "GET", "/api/v1/me/events?action=user.reauthenticated", p.Token, nil)
	if !strings.Contains(r.Raw, `"method":"totp"`) {
		t.Fatalf("the reauthentication's method: %s", r.Raw)
	}
}
