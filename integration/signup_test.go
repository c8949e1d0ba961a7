package integration

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

var verifySecretRe = regexp.MustCompile(store.SignUpPrefix + `[A-Za-z0-9_-]{43}`)

var (
	signUpOnce sync.Once
	signUpSrv  *api.Server
)

// openAPI is an API server of an installation open to sign-up, in
// process (so the contract checks its answers), shared by the package.
func openAPI(t *testing.T) *api.Server {
	h := harness.Get(t)
	signUpOnce.Do(func() {
		signUpSrv = api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, Keys: h.Keys, TaskQueue: "shared-api",
			ConsoleURL: "https://manage.example.test", SignUpOpen: true})
	})
	return signUpSrv
}

// newestMail is the newest mail to email whose subject holds subject:
// its body, "" when there is none.
func newestMail(t *testing.T, h *harness.Harness, email, subject string) string {
	t.Helper()
	var bodies []string
	if err := h.DB.NewRaw("SELECT body FROM outbox WHERE recipient = ? AND subject LIKE '%' || ? || '%' ORDER BY id DESC LIMIT 1", email, subject).
		Scan(context.Background(), &bodies); err != nil {
		t.Fatal(err)
	}
	if len(bodies) == 0 {
		return ""
	}
	return bodies[0]
}

// verifySecret is the secret of the newest verification mail to email.
func verifySecret(t *testing.T, h *harness.Harness, email string) string {
	t.Helper()
	return verifySecretRe.FindString(newestMail(t, h, email, "Verify your email"))
}

func signUpBody(email, slug string) map[string]any {
	return map[string]any{"email": email, "name": "Ada Lovelace", "password": "a-new-founder-password",
		"organization": map[string]any{"name": "Analytical Engines", "slug": slug}}
}

func count(t *testing.T, h *harness.Harness, query string, args ...any) int {
	t.Helper()
	var n int
	if err := h.DB.NewRaw(query, args...).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestASignUpCreatesNothingUntilItsEmailIsVerifiedThenSignsInTheOwnerOfANewFreeOrganization(t *testing.T) {
	h := harness.Get(t)
	srv := openAPI(t)
	email, slug := "founder-"+uniq()+"@example.test", "ae-"+uniq()

	var settings struct {
		Open         bool   `json:"open"`
		TenantDomain string `json:"tenant_domain"`
	}
	if r := req(t, srv, "GET", "/api/v1/auth/sign-up", "", nil); r.Status != 200 {
		t.Fatalf("settings: %d %s", r.Status, r.Raw)
	} else if r.data(t, &settings); !settings.Open || settings.TenantDomain == "" {
		t.Fatalf("settings: %s", r.Raw)
	}
	var avail struct {
		Available    bool   `json:"available"`
		TenantDomain string `json:"tenant_domain"`
	}
	if r := req(t, srv, "GET", "/api/v1/organization-slugs/"+slug, "", nil); r.Status != 200 {
		t.Fatalf("slug: %d %s", r.Status, r.Raw)
	} else if r.data(t, &avail); !avail.Available {
		t.Fatalf("a new slug is not available: %s", r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/organization-slugs/No_Such", "", nil); r.Status != 400 || len(r.Env.Error.FieldErrors) != 1 || r.Env.Error.FieldErrors[0].Field != "slug" {
		t.Fatalf("a malformed slug: %d %s", r.Status, r.Raw)
	}

	if r := req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(strings.ToUpper(email), slug)); r.Status != 202 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
	// Nothing exists but the pending sign-up, whose password is a hash.
	if n := count(t, h, "SELECT count(*) FROM users WHERE email = ?", email) + count(t, h, "SELECT count(*) FROM organizations WHERE slug = ?", slug); n != 0 {
		t.Fatalf("%d users or organizations exist before the email is verified", n)
	}
	if n := count(t, h, "SELECT count(*) FROM signups WHERE email = ? AND password_hash LIKE '$argon2id$%' AND password_hash NOT LIKE '%a-new-founder-password%'", email); n != 1 {
		t.Fatalf("pending sign-ups with a hashed password: %d", n)
	}
	body := newestMail(t, h, email, "Verify your email")
	secret := verifySecretRe.FindString(body)
	if secret == "" || !strings.Contains(body, "https://manage.example.test/verify-email#token="+secret) {
		t.Fatalf("the verification mail: %s", body)
	}
	// The mail goes to an address anyone may give: nothing the caller wrote
	// is in it.
	if strings.Contains(body, "Ada") || strings.Contains(body, "Analytical") || strings.Contains(body, slug) {
		t.Errorf("the mail carries what the caller wrote: %s", body)
	}
	if n := count(t, h, "SELECT count(*) FROM signups s WHERE s::text LIKE '%' || ? || '%'", secret[len(store.SignUpPrefix):]); n != 0 {
		t.Errorf("the raw secret is stored")
	}

	r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": secret})
	if r.Status != 201 {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	var v struct {
		Token string `json:"token"`
		User  struct {
			ID, Email, Name string
		} `json:"user"`
		Organization struct {
			ID, Slug, Name, Plan, Role string
		} `json:"organization"`
	}
	r.data(t, &v)
	if v.User.Email != email || v.User.Name != "Ada Lovelace" || v.Organization.Slug != slug || v.Organization.Plan != "free" ||
		v.Organization.Role != "owner" || v.Organization.Name != "Analytical Engines" || !strings.HasPrefix(v.Token, store.TokenPrefix) {
		t.Fatalf("verified: %s", r.Raw)
	}
	// Signed in as the owner of the new organisation, which has no tenant.
	var me struct {
		Memberships []struct {
			OrgID string `json:"org_id"`
			Role  string `json:"role"`
		} `json:"memberships"`
	}
	if r := req(t, srv, "GET", "/api/v1/me", v.Token, nil); r.Status != 200 {
		t.Fatalf("me: %d %s", r.Status, r.Raw)
	} else if r.data(t, &me); len(me.Memberships) != 1 || me.Memberships[0].OrgID != v.Organization.ID || me.Memberships[0].Role != "owner" {
		t.Fatalf("memberships: %s", r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/organizations/"+v.Organization.ID+"/tenants", v.Token, nil); r.Status != 200 || string(r.Env.Data) != "[]" {
		t.Fatalf("tenants: %d %s", r.Status, r.Raw)
	}
	// The creation is audited in the organisation, by its owner.
	var events []struct {
		Action  string `bun:"action"`
		ActorID string `bun:"actor_id"`
		Data    string `bun:"data"`
	}
	if err := h.DB.NewRaw("SELECT action, actor_id, coalesce(data::text, '') AS data FROM audit_events WHERE org_id = ? ORDER BY occurred_at, id", v.Organization.ID).
		Scan(context.Background(), &events); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
		if !strings.HasPrefix(e.ActorID, domain.PrefixMember) {
			t.Errorf("%s by %q, not the owner's membership", e.Action, e.ActorID)
		}
		if e.Action == "user.signed_in" && !strings.Contains(e.Data, "email_verification") {
			t.Errorf("user.signed_in: %s", e.Data)
		}
	}
	if got := strings.Join(actions, ","); got != "organization.created,member.added,user.signed_in" {
		t.Errorf("events: %s", got)
	}

	// The secret is used up, and the sign-up gone with it.
	if r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": secret}); r.Status != 401 || r.code() != "UNAUTHENTICATED" {
		t.Fatalf("the secret again: %d %s", r.Status, r.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM signups WHERE email = ?", email); n != 0 {
		t.Errorf("%d sign-ups left after verification", n)
	}
	taken := req(t, srv, "GET", "/api/v1/organization-slugs/"+slug, "", nil)
	if taken.data(t, &avail); avail.Available {
		t.Errorf("a slug in use is available: %s", taken.Raw)
	}
	// The password given at sign-up signs in.
	if r := newCaller(servedAPI(t, api.Deps{})).signIn(t, email, "a-new-founder-password"); r.Status != 200 {
		t.Errorf("sign-in: %d %s", r.Status, r.Raw)
	}
}

func TestASignUpWithAKnownEmailMailsItsOwnerAndMakesNoSecondAccount(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	known := w.People[domain.RoleDeveloper].Email
	unknown := "new-" + uniq() + "@example.test"
	srv := openAPI(t)

	a := req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(strings.ToUpper(known), "k-"+uniq()))
	b := req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(unknown, "k-"+uniq()))
	if a.Status != 202 || b.Status != 202 || string(a.Env.Data) != string(b.Env.Data) {
		t.Fatalf("known %d %s, unknown %d %s", a.Status, a.Raw, b.Status, b.Raw)
	}
	body := newestMail(t, h, known, "already have an IntelliAuth account")
	if !strings.Contains(body, "https://manage.example.test/sign-in") || !strings.Contains(body, "https://manage.example.test/password-reset") {
		t.Fatalf("the account-exists mail: %q", body)
	}
	if verifySecret(t, h, known) != "" || verifySecretRe.MatchString(body) {
		t.Fatal("a known email was sent a verification secret")
	}
	if verifySecret(t, h, unknown) == "" {
		t.Fatal("a new email got no verification mail")
	}
	if n := count(t, h, "SELECT count(*) FROM signups WHERE email = ?", known); n != 0 {
		t.Errorf("a sign-up was stored for a known email")
	}
	if n := count(t, h, "SELECT count(*) FROM users WHERE email = ?", known); n != 1 {
		t.Errorf("%d users with the known email", n)
	}
	// The account is as it was: its password still signs in.
	if r := newCaller(servedAPI(t, api.Deps{})).signIn(t, known, testPassword); r.Status != 200 {
		t.Errorf("the account's own password: %d %s", r.Status, r.Raw)
	}
}

func TestAVerificationSecretWorksOnceAndOnlyWhileFresh(t *testing.T) {
	h := harness.Get(t)
	srv := openAPI(t)
	email := "again-" + uniq() + "@example.test"
	// Wrong secrets are counted against their address: these come from
	// one of their own.
	c := newCaller(servedAPI(t, api.Deps{SignUpOpen: true}))
	verify := func(token string) response {
		return c.post(t, "/api/v1/auth/verify-email", map[string]any{"token": token}, nil)
	}

	// Two sign-ups of one email (a stranger's with someone's address, say)
	// do not turn each other off: each link is its own.
	firstSlug, secondSlug := "v-"+uniq(), "v-"+uniq()
	req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, firstSlug))
	first := verifySecret(t, h, email)
	req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, secondSlug))
	second := verifySecret(t, h, email)
	if first == "" || second == "" || first == second {
		t.Fatalf("secrets %q and %q", first, second)
	}
	flip := "A"
	if strings.HasSuffix(second, "A") {
		flip = "B"
	}
	for name, token := range map[string]string{"a tampered secret": second[:len(second)-1] + flip,
		"an unknown secret": store.SignUpPrefix + strings.Repeat("x", 43)} {
		if r := verify(token); r.Status != 401 || r.code() != "UNAUTHENTICATED" {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	if _, err := h.DB.NewRaw("UPDATE signups SET expires_at = now() - interval '1 second' WHERE secret_hash = ?", store.HashSecret(second)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	expired := verify(second)
	if expired.Status != 401 || expired.code() != "UNAUTHENTICATED" {
		t.Fatalf("an expired secret: %d %s", expired.Status, expired.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM users WHERE email = ?", email); n != 0 {
		t.Fatal("a refused verification made a user")
	}
	// An expired sign-up is forgotten: nothing of a person who never
	// verified is kept; the other is left to its own day.
	if err := store.ForgetSignUps(context.Background(), h.DB); err != nil {
		t.Fatal(err)
	}
	if n := count(t, h, "SELECT count(*) FROM signups WHERE email = ?", email); n != 1 {
		t.Errorf("%d sign-ups kept, want the one that did not expire", n)
	}
	if r := verify(first); r.Status != 201 {
		t.Fatalf("the first sign-up's secret after a later one: %d %s", r.Status, r.Raw)
	}

	// Of two sign-ups of one email, the first verified makes the account;
	// the other creates nothing and is used up.
	email = "both-" + uniq() + "@example.test"
	loserSlug := "l-" + uniq()
	req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, "w-"+uniq()))
	winner := verifySecret(t, h, email)
	req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, loserSlug))
	loser := verifySecret(t, h, email)
	if r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": winner}); r.Status != 201 {
		t.Fatalf("the winner: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": loser})
	if r.Status != 409 || !strings.Contains(r.Env.Error.Message, "an account with this email was made since you signed up") {
		t.Fatalf("the other sign-up: %d %s", r.Status, r.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM organizations WHERE slug = ?", loserSlug) + count(t, h, "SELECT count(*) FROM signups WHERE email = ?", email); n != 0 {
		t.Fatalf("the refused sign-up left %d rows", n)
	}
	if r := verify(loser); r.Status != 401 {
		t.Fatalf("the refused secret again: %d %s", r.Status, r.Raw)
	}

	// Of two verifications of one secret at once, one signs in.
	email = "twice-" + uniq() + "@example.test"
	req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, "v-"+uniq()))
	secret := verifySecret(t, h, email)
	codes := make([]int, 4)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = verify(secret).Status })
	}
	wg.Wait()
	created := 0
	for _, c := range codes {
		if c == 201 {
			created++
		} else if c != 401 {
			t.Errorf("a verification answered %d", c)
		}
	}
	if created != 1 || count(t, h, "SELECT count(*) FROM users WHERE email = ?", email) != 1 {
		t.Fatalf("verifications at once: %v", codes)
	}
}

func TestSignUpIsRefusedOnAnInstallationWhereItIsClosed(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t) // CP_SIGNUP's default: closed
	email := "closed-" + uniq() + "@example.test"
	for _, r := range []response{
		req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, "c-"+uniq())),
		req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": store.SignUpPrefix + strings.Repeat("x", 43)}),
	} {
		if r.Status != 403 || r.code() != "FORBIDDEN" || r.Env.Error.Message != "sign-up is closed on this installation" {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	}
	if newestMail(t, h, email, "") != "" || count(t, h, "SELECT count(*) FROM signups WHERE email = ?", email) != 0 {
		t.Fatal("a closed installation stored a sign-up or sent mail")
	}
	var settings struct {
		Open bool `json:"open"`
	}
	r := req(t, srv, "GET", "/api/v1/auth/sign-up", "", nil)
	if r.data(t, &settings); r.Status != 200 || settings.Open {
		t.Fatalf("settings: %d %s", r.Status, r.Raw)
	}
	// A secret issued while sign-up was open does not work once it closed.
	open := openAPI(t)
	req(t, open, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, "c-"+uniq()))
	if r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": verifySecret(t, h, email)}); r.Status != 403 {
		t.Fatalf("verification on the closed installation: %d %s", r.Status, r.Raw)
	}
	if count(t, h, "SELECT count(*) FROM users WHERE email = ?", email) != 0 {
		t.Fatal("a closed installation made a user")
	}
}

func TestASlugTakenBeforeVerificationCreatesNothing(t *testing.T) {
	h := harness.Get(t)
	srv := openAPI(t)
	slug := "race-" + uniq()
	email := "late-" + uniq() + "@example.test"

	if r := req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(email, slug)); r.Status != 202 {
		t.Fatalf("sign-up: %d %s", r.Status, r.Raw)
	}
	secret := verifySecret(t, h, email)
	// Someone else creates an organisation with the slug meanwhile.
	w := newWorld(t, h, "team")
	if r := req(t, srv, "POST", "/api/v1/organizations", w.People[domain.RoleViewer].Token, map[string]any{"name": "Quicker", "slug": slug}); r.Status != 201 {
		t.Fatalf("the other creation: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "POST", "/api/v1/auth/verify-email", "", map[string]any{"token": secret})
	if r.Status != 409 || r.code() != "CONFLICT" || !strings.Contains(r.Env.Error.Message, slug) || !strings.Contains(r.Env.Error.Message, "nothing was created") {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM users WHERE email = ?", email); n != 0 {
		t.Fatalf("the refused verification made a user")
	}
	if n := count(t, h, "SELECT count(*) FROM organizations WHERE slug = ?", slug); n != 1 {
		t.Fatalf("%d organizations with the slug", n)
	}
	if n := count(t, h, "SELECT count(*) FROM signups WHERE email = ?", email); n != 0 {
		t.Fatalf("the refused sign-up is kept")
	}
	// A sign-up with a slug in use is refused at once, whatever the email.
	for _, e := range []string{"other-" + uniq() + "@example.test", w.People[domain.RoleAdmin].Email} {
		if r := req(t, srv, "POST", "/api/v1/auth/sign-up", "", signUpBody(e, slug)); r.Status != 409 || !strings.Contains(r.Env.Error.Message, "taken") {
			t.Fatalf("a sign-up with a taken slug: %d %s", r.Status, r.Raw)
		}
	}
	// Input is checked like the rest of the API, every field at once.
	bad := req(t, srv, "POST", "/api/v1/auth/sign-up", "", map[string]any{"email": "not-an-address", "name": "", "password": "short",
		"organization": map[string]any{"name": "a\nb", "slug": "X"}})
	var fields []string
	if bad.Env.Error != nil {
		for _, f := range bad.Env.Error.FieldErrors {
			fields = append(fields, f.Field)
		}
	}
	if bad.Status != 400 || strings.Join(fields, ",") != "email,name,organization.name,organization.slug,password" {
		t.Fatalf("invalid sign-up: %d %s", bad.Status, bad.Raw)
	}
	if r := req(t, srv, "POST", "/api/v1/auth/sign-up", "", map[string]any{"email": email, "name": "A", "password": "a-long-enough-password",
		"organization": map[string]any{"Name": "A", "slug": "abc-" + uniq()}}); r.Status != 400 || !strings.Contains(r.Raw, "organization.Name") {
		t.Fatalf("a nested key in another case: %d %s", r.Status, r.Raw)
	}
}

func TestAPersonAtTheMostOrganizationsCannotCreateAnother(t *testing.T) {
	h := harness.Get(t)
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, Keys: h.Keys, MaxOrgsPerUser: 3})
	w := newWorld(t, h, "team")
	p := w.People[domain.RoleDeveloper]
	// Belonging counts, not only owning: the developer is in one already.
	for i := range 2 {
		if r := req(t, srv, "POST", "/api/v1/organizations", p.Token, map[string]any{"name": fmt.Sprintf("Mine %d", i), "slug": "m-" + uniq()}); r.Status != 201 {
			t.Fatalf("creation %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := req(t, srv, "POST", "/api/v1/organizations", p.Token, map[string]any{"name": "One too many", "slug": "m-" + uniq()})
	if r.Status != 409 || r.code() != "CONFLICT" || !strings.Contains(r.Env.Error.Message, "at most 3") {
		t.Fatalf("past the limit: %d %s", r.Status, r.Raw)
	}
	// Creations at once cannot outrun the limit.
	q := addPerson(t, h, w.Org.ID, domain.RoleViewer)
	codes := make([]int, 6)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			codes[i] = req(t, srv, "POST", "/api/v1/organizations", q.Token, map[string]any{"name": "Race", "slug": "r-" + uniq()}).Status
		})
	}
	wg.Wait()
	if n := count(t, h, "SELECT count(*) FROM members WHERE user_id = ?", q.UserID); n != 3 {
		t.Fatalf("%d memberships after creations at once (%v)", n, codes)
	}
}

func TestCreatingAnOrganizationRetriedWithItsKeyIsOneOrganization(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	p := w.People[domain.RoleViewer]
	slug := "idem-" + uniq()
	body := map[string]any{"name": "Retried Inc", "slug": slug}
	key := "create-org-" + uniq()

	first := httpReq(t, srv, "POST", "/api/v1/organizations", p.Token, body, key)
	again := httpReq(t, srv, "POST", "/api/v1/organizations", p.Token, body, key)
	if first.Status != 201 || again.Status != 201 || first.Raw != again.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s\nagain %d %s", first.Status, first.Raw, again.Status, again.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM organizations WHERE slug = ?", slug); n != 1 {
		t.Fatalf("%d organizations", n)
	}
	var org struct {
		ID, Plan, Role, TenantDomain string
	}
	first.data(t, &org)
	if org.Plan != "free" || org.Role != "owner" {
		t.Fatalf("created: %s", first.Raw)
	}
	// A new request with the slug is refused: the slug is taken.
	if r := req(t, srv, "POST", "/api/v1/organizations", p.Token, body); r.Status != 409 || !strings.Contains(r.Env.Error.Message, "taken") {
		t.Fatalf("the slug again: %d %s", r.Status, r.Raw)
	}
	if n := count(t, h, "SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.created' AND actor_type = 'member'", org.ID); n != 1 {
		t.Fatalf("%d organization.created events", n)
	}
	// The creator owns it: its routes answer them, and nobody else.
	if r := req(t, srv, "GET", "/api/v1/organizations/"+org.ID+"/members", p.Token, nil); r.Status != 200 {
		t.Fatalf("members: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/organizations/"+org.ID, w.People[domain.RoleOwner].Token, nil); r.Status != 404 {
		t.Fatalf("another person: %d %s", r.Status, r.Raw)
	}
}

func TestSignUpsAndVerificationsAreThrottled(t *testing.T) {
	harness.Get(t)
	base := servedAPI(t, api.Deps{SignUpOpen: true})
	c := newCaller(base)
	email := "flood-" + uniq() + "@example.test"
	limit := store.DefaultSignInPolicy.Pair.Limit
	for i := range limit {
		if r := c.post(t, "/api/v1/auth/sign-up", signUpBody(email, "f-"+uniq()), nil); r.Status != 202 {
			t.Fatalf("sign-up %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	r := c.post(t, "/api/v1/auth/sign-up", signUpBody(email, "f-"+uniq()), nil)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sign-up %d: %d %s", limit+1, r.Status, r.Raw)
	}
	// Another email from the same address is not what was throttled.
	if r := c.post(t, "/api/v1/auth/sign-up", signUpBody("other-"+uniq()+"@example.test", "f-"+uniq()), nil); r.Status != 202 {
		t.Fatalf("another email: %d %s", r.Status, r.Raw)
	}

	// Guessing secrets is throttled per address.
	v := newCaller(base)
	for i := range limit {
		if r := v.post(t, "/api/v1/auth/verify-email", map[string]any{"token": store.SignUpPrefix + uniq()}, nil); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	if r := v.post(t, "/api/v1/auth/verify-email", map[string]any{"token": store.SignUpPrefix + uniq()}, nil); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("guess %d: %d %s", limit+1, r.Status, r.Raw)
	}
	// Another address is not held up by them.
	if r := newCaller(base).post(t, "/api/v1/auth/verify-email", map[string]any{"token": store.SignUpPrefix + uniq()}, nil); r.Status != 401 {
		t.Fatalf("another address: %d %s", r.Status, r.Raw)
	}
}

func TestTheLastOwnerLeavingIsToldToHandTheOrganizationOverOrDeleteIt(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	r := req(t, sharedAPI(t), "DELETE", orgPath(w, "/members/"+owner.MemberID), owner.Token, nil)
	if r.Status != 409 || r.code() != "CONFLICT" {
		t.Fatalf("leave: %d %s", r.Status, r.Raw)
	}
	for _, want := range []string{"last owner", "make another member an owner first", "delete the organization"} {
		if !strings.Contains(r.Env.Error.Message, want) {
			t.Errorf("the message %q does not say %q", r.Env.Error.Message, want)
		}
	}
}
