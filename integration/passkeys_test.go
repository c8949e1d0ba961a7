package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// The console of an API without CP_CONSOLE_URL, which is the passkeys'
// relying party: its host name is the RP id, its origin the only one.
const (
	passkeyOrigin = "https://manage.intelliauth.localhost"
	passkeyRPID   = "manage.intelliauth.localhost"
)

// passkeyAPI is an in-process API (so the contract checks its answers)
// with the sign-in throttle policy: the passwordless sign-ins of every
// test share one throttle key from one address, so tests that do not
// test the throttle give it room.
func passkeyAPI(t *testing.T, policy store.SignInPolicy) *api.Server {
	h := harness.Get(t)
	return api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, SignInPolicy: policy})
}

func roomySignInPolicy() store.SignInPolicy {
	p := store.DefaultSignInPolicy
	p.Pair.Limit, p.Address.Limit, p.Email.Limit, p.Email.Free = 10_000, 10_000, 10_000, 10_000
	return p
}

// ceremony is an answer of an options route.
type ceremony struct {
	Challenge string          `json:"challenge"`
	Options   json.RawMessage `json:"options"`
}

func ceremonyOf(t *testing.T, r response, what string) ceremony {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", what, r.Status, r.Raw)
	}
	var c ceremony
	r.data(t, &c)
	if !strings.HasPrefix(c.Challenge, store.ChallengePrefix) || len(c.Options) == 0 {
		t.Fatalf("%s: %s", what, r.Raw)
	}
	return c
}

type passkeyViewT struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// addPasskey registers a passkey of a for the person of token.
func addPasskey(t *testing.T, srv *api.Server, token string, a *softAuthenticator, name string) (passkeyViewT, *softCredential) {
	t.Helper()
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/me/webauthn/registration/options", token, nil), "registration options")
	answer, cred := a.create(c.Options)
	r := req(t, srv, "POST", "/api/v1/me/webauthn/credentials", token, map[string]any{"challenge": c.Challenge, "name": name, "credential": answer})
	if r.Status != 201 {
		t.Fatalf("register a passkey: %d %s", r.Status, r.Raw)
	}
	var v passkeyViewT
	r.data(t, &v)
	return v, cred
}

func listPasskeys(t *testing.T, srv *api.Server, token string) []passkeyViewT {
	t.Helper()
	r := req(t, srv, "GET", "/api/v1/me/webauthn/credentials", token, nil)
	if r.Status != 200 {
		t.Fatalf("list passkeys: %d %s", r.Status, r.Raw)
	}
	var out []passkeyViewT
	r.data(t, &out)
	return out
}

// passwordChallenge is the challenge of a password sign-in's second step: the
// one POST /auth/sign-in answers with mfa_required once the account has a
// second factor, or, while sign-in does not ask for one, the challenge it
// would give (made as it makes it).
func passwordChallenge(t *testing.T, h *harness.Harness, srv *api.Server, p person) string {
	t.Helper()
	r := req(t, srv, "POST", "/api/v1/auth/sign-in", "", map[string]any{"email": p.Email, "password": testPassword})
	if r.Status != 200 {
		t.Fatalf("sign-in with the password: %d %s", r.Status, r.Raw)
	}
	var got struct {
		MFARequired bool   `json:"mfa_required"`
		Challenge   string `json:"challenge"`
	}
	r.data(t, &got)
	if got.MFARequired {
		return got.Challenge
	}
	secret, _, err := store.CreateChallenge(context.Background(), h.DB, store.PurposeSignIn, p.UserID, nil, store.EventBase{ClientAddr: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func passkeySignIn(t *testing.T, srv *api.Server, challenge string, assertion map[string]any) response {
	t.Helper()
	return req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn", "", map[string]any{"challenge": challenge, "credential": assertion})
}

// signedInAs checks that r is a sign-in of userID whose token works.
func signedInAs(t *testing.T, srv *api.Server, r response, userID, what string) string {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("%s: %d %s", what, r.Status, r.Raw)
	}
	var got struct {
		Token string `json:"token"`
		User  struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	r.data(t, &got)
	if !strings.HasPrefix(got.Token, store.TokenPrefix) || got.User.ID != userID {
		t.Fatalf("%s: %s", what, r.Raw)
	}
	if me := req(t, srv, "GET", "/api/v1/me", got.Token, nil); me.Status != 200 {
		t.Fatalf("%s: the token answers %d", what, me.Status)
	}
	return got.Token
}

func refused(t *testing.T, r response, what string) {
	t.Helper()
	if r.Status != 401 || r.code() != "UNAUTHENTICATED" {
		t.Errorf("%s: %d %s, want 401 UNAUTHENTICATED", what, r.Status, r.Raw)
	}
}

func countUserEvents(t *testing.T, h *harness.Harness, orgID, actorID, action string) int {
	t.Helper()
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND actor_id = ? AND action = ?", orgID, actorID, action).
		Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAPersonRegistersAPasskeyAndSignsInWithItAndNoPassword(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := passkeyAPI(t, roomySignInPolicy())
	me := w.People[domain.RoleDeveloper]
	a := newSoftAuthenticator(t, passkeyOrigin)
	a.packed = true

	// The options: this console's relying party, a discoverable passkey of
	// the person's id, user verification preferred.
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/me/webauthn/registration/options", me.Token, nil), "registration options")
	var o creationOptions
	if err := json.Unmarshal(c.Options, &o); err != nil {
		t.Fatal(err)
	}
	if o.RP.ID != passkeyRPID || o.RP.Name != "IntelliAuth" || o.User.ID != b64.EncodeToString([]byte(me.UserID)) ||
		o.AuthenticatorSelection.ResidentKey != "required" || o.AuthenticatorSelection.UserVerification != "preferred" || len(o.ExcludeCredentials) != 0 {
		t.Fatalf("registration options: %s", c.Options)
	}
	answer, cred := a.create(c.Options)
	for name, bad := range map[string]string{"an empty name": "  ", "a control character": "lap\x07top", "101 characters": strings.Repeat("x", 101)} {
		r := req(t, srv, "POST", "/api/v1/me/webauthn/credentials", me.Token, map[string]any{"challenge": c.Challenge, "name": bad, "credential": answer})
		if r.Status != 400 || !strings.Contains(r.Raw, `"field":"name"`) {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	other := w.People[domain.RoleViewer]
	if r := req(t, srv, "POST", "/api/v1/me/webauthn/credentials", other.Token, map[string]any{"challenge": c.Challenge, "name": "mine", "credential": answer}); r.Status != 400 {
		t.Errorf("another person registering with this ceremony: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "POST", "/api/v1/me/webauthn/credentials", me.Token, map[string]any{"challenge": c.Challenge, "name": " Work laptop ", "credential": answer})
	if r.Status != 201 {
		t.Fatalf("register: %d %s", r.Status, r.Raw)
	}
	var pk passkeyViewT
	r.data(t, &pk)
	if !strings.HasPrefix(pk.ID, domain.PrefixPasskey) || pk.Name != "Work laptop" || pk.LastUsedAt != nil {
		t.Fatalf("the passkey: %s", r.Raw)
	}
	if r := req(t, srv, "POST", "/api/v1/me/webauthn/credentials", me.Token, map[string]any{"challenge": c.Challenge, "name": "again", "credential": answer}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"challenge"`) {
		t.Errorf("the registration challenge used again: %d %s", r.Status, r.Raw)
	}
	// New options exclude it; the list shows it, and nobody else's.
	c2 := ceremonyOf(t, req(t, srv, "POST", "/api/v1/me/webauthn/registration/options", me.Token, nil), "second registration options")
	var o2 creationOptions
	_ = json.Unmarshal(c2.Options, &o2)
	if len(o2.ExcludeCredentials) != 1 || o2.ExcludeCredentials[0].ID != b64.EncodeToString(cred.id) {
		t.Errorf("excludeCredentials: %s", c2.Options)
	}
	if got := listPasskeys(t, srv, me.Token); len(got) != 1 || got[0].ID != pk.ID || got[0].Name != "Work laptop" {
		t.Fatalf("the list: %+v", got)
	}
	if got := listPasskeys(t, srv, other.Token); len(got) != 0 {
		t.Fatalf("another person's list: %+v", got)
	}
	if n := countUserEvents(t, h, w.Org.ID, me.MemberID, "user.passkey_registered"); n != 1 {
		t.Fatalf("%d user.passkey_registered events", n)
	}

	// Without a password: options for any discoverable passkey, user
	// verification required; the passkey's assertion signs the person in.
	c = ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{}), "passwordless options")
	var ro requestOptions
	if err := json.Unmarshal(c.Options, &ro); err != nil {
		t.Fatal(err)
	}
	if ro.RPID != passkeyRPID || ro.UserVerification != "required" || len(ro.AllowCredentials) != 0 {
		t.Fatalf("passwordless options: %s", c.Options)
	}
	assertion := a.get(c.Options, nil)
	signedInAs(t, srv, passkeySignIn(t, srv, c.Challenge, assertion), me.UserID, "a passwordless sign-in")
	refused(t, passkeySignIn(t, srv, c.Challenge, assertion), "the same assertion again (a reused challenge)")
	if got := listPasskeys(t, srv, me.Token); got[0].LastUsedAt == nil {
		t.Errorf("last_used_at after a sign-in: %+v", got[0])
	}
	var methods []string
	if err := h.DB.NewRaw("SELECT data->>'method' FROM audit_events WHERE org_id = ? AND actor_id = ? AND action = 'user.signed_in'", w.Org.ID, me.MemberID).
		Scan(context.Background(), &methods); err != nil || len(methods) != 1 || methods[0] != "passkey" {
		t.Fatalf("user.signed_in events: %v %v", methods, err)
	}

	// What a phishing site could relay is refused: an assertion made on
	// another origin, or for another relying party id.
	c = ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{}), "options")
	phish := newSoftAuthenticator(t, "https://manage.intelliauth.localhost.phish.test")
	phish.creds = a.creds
	refused(t, passkeySignIn(t, srv, c.Challenge, phish.get(c.Options, nil)), "an assertion made on another origin")
	_ = json.Unmarshal(c.Options, &ro)
	refused(t, passkeySignIn(t, srv, c.Challenge, a.assert("phish.test", ro.Challenge, cred)), "an assertion for another relying party id")
	// A passkey that did not verify its user is no sign-in without a
	// password.
	a.userVerified = false
	refused(t, passkeySignIn(t, srv, c.Challenge, a.get(c.Options, nil)), "an assertion without user verification")
	a.userVerified = true
	// A cloned authenticator: its counter behind the one the passkey
	// reached is refused (and logged).
	saved := cred.counter
	cred.counter = 0
	refused(t, passkeySignIn(t, srv, c.Challenge, a.get(c.Options, nil)), "an assertion whose signature counter went backwards")
	cred.counter = saved
	signedInAs(t, srv, passkeySignIn(t, srv, c.Challenge, a.get(c.Options, nil)), me.UserID, "the passkey after refused attempts")
	// The signature counter is kept.
	var count uint32
	if err := h.DB.NewRaw("SELECT (credential->'authenticator'->>'signCount')::bigint FROM webauthn_credentials WHERE id = ?", pk.ID).
		Scan(context.Background(), &count); err != nil || count != cred.counter {
		t.Errorf("the stored signature counter: %d, %v; the authenticator's %d", count, err, cred.counter)
	}
}

func TestAPasskeyIsTheSecondStepAfterAPassword(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := passkeyAPI(t, roomySignInPolicy())
	me, other := w.People[domain.RoleAdmin], w.People[domain.RoleViewer]
	a, b := newSoftAuthenticator(t, passkeyOrigin), newSoftAuthenticator(t, passkeyOrigin)
	_, cred := addPasskey(t, srv, me.Token, a, "phone")
	_, _ = addPasskey(t, srv, me.Token, a, "laptop")
	_, otherCred := addPasskey(t, srv, other.Token, b, "theirs")

	secret := passwordChallenge(t, h, srv, me)
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": secret}), "second-step options")
	if c.Challenge != secret {
		t.Fatalf("the second step's options answer another challenge: %s", c.Challenge)
	}
	var ro requestOptions
	_ = json.Unmarshal(c.Options, &ro)
	if len(ro.AllowCredentials) != 2 || ro.UserVerification != "preferred" {
		t.Fatalf("second-step options: %s", c.Options)
	}
	// Another person's passkey does not answer for this account.
	refused(t, passkeySignIn(t, srv, secret, b.assert(passkeyRPID, ro.Challenge, otherCred)), "an assertion by another person's passkey")
	signedInAs(t, srv, passkeySignIn(t, srv, secret, a.get(c.Options, cred)), me.UserID, "the second step")
	refused(t, passkeySignIn(t, srv, secret, a.get(c.Options, cred)), "the second step's challenge used again")
	refused(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": secret}), "options on a used challenge")

	// A challenge of another purpose, forged or expired is refused alike.
	reg := ceremonyOf(t, req(t, srv, "POST", "/api/v1/me/webauthn/registration/options", me.Token, nil), "registration options")
	refused(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": reg.Challenge}), "options on a registration's challenge")
	var regOpts creationOptions
	_ = json.Unmarshal(reg.Options, &regOpts)
	refused(t, passkeySignIn(t, srv, reg.Challenge, a.assert(passkeyRPID, regOpts.Challenge, cred)), "a sign-in on a registration's challenge")
	passwordless := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{}), "passwordless options")
	refused(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": passwordless.Challenge}), "second-step options on a passwordless challenge")
	bare := passwordChallenge(t, h, srv, me)
	refused(t, passkeySignIn(t, srv, bare, a.assert(passkeyRPID, ro.Challenge, cred)), "a sign-in on a second step that asked for no passkey options")
	refused(t, passkeySignIn(t, srv, store.ChallengePrefix+"forged-forged-forged-forged-forged-forged1", a.assert(passkeyRPID, ro.Challenge, cred)), "a forged challenge")
	late := passwordChallenge(t, h, srv, me)
	lc := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": late}), "options")
	if _, err := h.DB.NewRaw("UPDATE auth_challenges SET expires_at = now() - interval '1 second' WHERE secret_hash = ?", store.HashSecret(late)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	refused(t, passkeySignIn(t, srv, late, a.get(lc.Options, cred)), "an expired challenge")

	// An account without a passkey has no passkey second step.
	third := w.People[domain.RoleDeveloper]
	if r := req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": passwordChallenge(t, h, srv, third)}); r.Status != 409 {
		t.Errorf("second-step options for an account without a passkey: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn", "", map[string]any{"challenge": secret}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"credential"`) {
		t.Errorf("a sign-in without a credential: %d %s", r.Status, r.Raw)
	}
}

func TestRemovingAPasskeyNeedsRecentAuthenticationAndTheLastFactorTakesTheRecoveryCodes(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := passkeyAPI(t, roomySignInPolicy())
	ctx := context.Background()
	me, other := w.People[domain.RoleOwner], w.People[domain.RoleViewer]
	a := newSoftAuthenticator(t, passkeyOrigin)
	first, _ := addPasskey(t, srv, me.Token, a, "phone")
	second, _ := addPasskey(t, srv, me.Token, a, "laptop")
	for _, code := range []string{"code-one", "code-two"} {
		if _, err := h.DB.NewInsert().Model(&store.RecoveryCode{UserID: me.UserID, CodeHash: store.RecoveryCodeHash(me.UserID, code)}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	codes := func() int {
		f, err := store.FactorsOf(ctx, h.DB, me.UserID)
		if err != nil {
			t.Fatal(err)
		}
		return f.RecoveryCodes
	}

	// A session that proved who its person is an hour ago may not.
	old := session(t, h, me.UserID, time.Hour)
	stale(t, h, old)
	if r := req(t, srv, "DELETE", "/api/v1/me/webauthn/credentials/"+first.ID, old, nil); r.Status != 403 || r.code() != "REAUTHENTICATION_REQUIRED" {
		t.Fatalf("removal by a stale session: %d %s", r.Status, r.Raw)
	}
	// Another person's passkey, or none, is not found.
	for _, path := range []string{first.ID, domain.NewID(domain.PrefixPasskey), "nope"} {
		if r := req(t, srv, "DELETE", "/api/v1/me/webauthn/credentials/"+path, other.Token, nil); r.Status != 404 {
			t.Errorf("DELETE %s by another person: %d %s", path, r.Status, r.Raw)
		}
	}
	if got := listPasskeys(t, srv, me.Token); len(got) != 2 {
		t.Fatalf("after refused removals: %+v", got)
	}
	if r := req(t, srv, "DELETE", "/api/v1/me/webauthn/credentials/"+first.ID, me.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, first.ID) {
		t.Fatalf("remove the first: %d %s", r.Status, r.Raw)
	}
	if n := codes(); n != 2 {
		t.Fatalf("%d recovery codes while a passkey is left", n)
	}
	if r := req(t, srv, "DELETE", "/api/v1/me/webauthn/credentials/"+second.ID, me.Token, nil); r.Status != 200 {
		t.Fatalf("remove the last: %d %s", r.Status, r.Raw)
	}
	if n := codes(); n != 0 {
		t.Fatalf("%d recovery codes left with no second factor", n)
	}
	if got := listPasskeys(t, srv, me.Token); len(got) != 0 {
		t.Fatalf("after removing both: %+v", got)
	}
	var deleted []bool
	if err := h.DB.NewRaw("SELECT (data->>'recovery_codes_deleted')::boolean FROM audit_events WHERE org_id = ? AND actor_id = ? AND action = 'user.passkey_removed' ORDER BY occurred_at",
		w.Org.ID, me.MemberID).Scan(ctx, &deleted); err != nil || len(deleted) != 2 || deleted[0] || !deleted[1] {
		t.Fatalf("user.passkey_removed events: %v %v", deleted, err)
	}
	// A removed passkey signs no one in.
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{}), "options")
	refused(t, passkeySignIn(t, srv, c.Challenge, a.get(c.Options, nil)), "a removed passkey")
}

func TestPasskeySignInsAreThrottledLikePasswordSignIns(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	policy := roomySignInPolicy()
	policy.Pair = store.ThrottleRule{Window: 15 * time.Minute, Limit: 3}
	srv := passkeyAPI(t, policy)
	me := w.People[domain.RoleDeveloper]
	a := newSoftAuthenticator(t, passkeyOrigin)
	_, cred := addPasskey(t, srv, me.Token, a, "phone")
	wrongKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := &softCredential{id: cred.id, key: wrongKey, rpID: cred.rpID, userHandle: cred.userHandle}

	secret := passwordChallenge(t, h, srv, me)
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": secret}), "options")
	var ro requestOptions
	_ = json.Unmarshal(c.Options, &ro)
	bad := func() response { return passkeySignIn(t, srv, secret, a.assert(passkeyRPID, ro.Challenge, forged)) }
	refused(t, bad(), "a bad signature")
	// A success gives its attempt back: two more failures are allowed.
	signedInAs(t, srv, passkeySignIn(t, srv, secret, a.get(c.Options, cred)), me.UserID, "the passkey between failures")
	secret = passwordChallenge(t, h, srv, me)
	c = ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{"challenge": secret}), "options")
	_ = json.Unmarshal(c.Options, &ro)
	refused(t, bad(), "a second bad signature")
	refused(t, bad(), "a third bad signature")
	// The limit reached, even the right passkey waits.
	r := passkeySignIn(t, srv, secret, a.get(c.Options, cred))
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s", r.Status, r.Raw)
	}
}

func TestTwoSignInsWithOnePasskeyAssertionAtOnceStartOneSession(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := passkeyAPI(t, roomySignInPolicy())
	me := w.People[domain.RoleDeveloper]
	a := newSoftAuthenticator(t, passkeyOrigin)
	addPasskey(t, srv, me.Token, a, "phone")
	c := ceremonyOf(t, req(t, srv, "POST", "/api/v1/auth/sign-in/webauthn/options", "", map[string]any{}), "options")
	assertion := a.get(c.Options, nil)
	statuses := make(chan int, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- passkeySignIn(t, srv, c.Challenge, assertion).Status
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case 200:
			ok++
		case 401:
		default:
			t.Errorf("a sign-in at once answered %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 4 sign-ins with one assertion at once started a session", ok)
	}
}

// Bad passwordless attempts sent from many addresses hold up only those
// addresses: another person's passkey sign-in from elsewhere is not made
// to wait (they were once counted under one key for the installation,
// whose per-email rule then delayed every passwordless sign-in).
func TestBadPasswordlessAttemptsFromElsewhereDoNotDelayAnotherPersonsPasskey(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	me := w.People[domain.RoleDeveloper]
	a := newSoftAuthenticator(t, passkeyOrigin)
	addPasskey(t, passkeyAPI(t, roomySignInPolicy()), me.Token, a, "phone")
	small := store.DefaultSignInPolicy
	small.Email = store.ThrottleRule{Window: time.Hour, Limit: 100, Free: 2, Delay: time.Minute, MaxDelay: time.Hour}
	base := servedAPI(t, api.Deps{SignInPolicy: small})
	for range 4 {
		c := newCaller(base)
		cer := ceremonyOf(t, c.post(t, "/api/v1/auth/sign-in/webauthn/options", map[string]any{}, nil), "options")
		forged, _, _ := store.NewSecret(store.ChallengePrefix)
		if r := c.post(t, "/api/v1/auth/sign-in/webauthn", map[string]any{"challenge": forged, "credential": a.get(cer.Options, nil)}, nil); r.Status != 401 && r.Status != 429 {
			t.Fatalf("a forged challenge: %d %s", r.Status, r.Raw)
		}
	}
	c := newCaller(base)
	cer := ceremonyOf(t, c.post(t, "/api/v1/auth/sign-in/webauthn/options", map[string]any{}, nil), "options")
	r := c.post(t, "/api/v1/auth/sign-in/webauthn", map[string]any{"challenge": cer.Challenge, "credential": a.get(cer.Options, nil)}, nil)
	if r.Status != 200 {
		t.Fatalf("a passkey sign-in after strangers' attempts elsewhere: %d %s", r.Status, r.Raw)
	}
}
