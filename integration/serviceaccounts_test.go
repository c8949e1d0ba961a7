package integration

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// serviceAccount is an account made for a test, with its first token.
type serviceAccount struct {
	store.ServiceAccountView
	Token string
}

// addServiceAccount creates an account of the world's owner with the role,
// every scope and every environment.
func addServiceAccount(t *testing.T, h *harness.Harness, w world, role domain.Role) serviceAccount {
	t.Helper()
	scopes := make([]string, len(domain.Scopes))
	for i, s := range domain.Scopes {
		scopes[i] = string(s)
	}
	return addScopedAccount(t, h, w, w.People[domain.RoleOwner], role, scopes, nil)
}

// addScopedAccount creates an account that human answers for.
func addScopedAccount(t testing.TB, h *harness.Harness, w world, human person, role domain.Role, scopes, envs []string) serviceAccount {
	t.Helper()
	ctx := context.Background()
	m, err := store.MemberByID(ctx, h.DB, w.Org.ID, human.MemberID)
	if err != nil {
		t.Fatal(err)
	}
	v, token, err := store.CreateServiceAccount(ctx, h.DB, store.NewServiceAccount{OrgID: w.Org.ID, Name: "sa-" + uniq(), Role: role,
		Environments: envs, Scopes: scopes, Accountable: m, TokenTTL: time.Hour},
		store.EventBase{OrgID: w.Org.ID, ActorType: "member", ActorID: m.ID, ActorEmail: m.Email})
	if err != nil {
		t.Fatal(err)
	}
	return serviceAccount{ServiceAccountView: v, Token: token}
}

// saCredential is how a service account presents itself in a cell.
type saCredential string

const (
	saInScope      saCredential = "in scope"
	saOutOfScope   saCredential = "out of scope"
	saOutOfEnv     saCredential = "outside its environments"
	saExpired      saCredential = "an expired token"
	saRevoked      saCredential = "a revoked token"
	saHumanRemoved saCredential = "its accountable member removed"
	saForeignOrg   saCredential = "another organization's route"
)

// TestEveryRouteTimesEveryServiceAccountCredential walks the server's route
// list with service-account tokens: in scope (every scope but nothing
// else), out of scope (every scope but the route's), outside its
// environments (scoped to ci, the fixtures' tenants are prod), expired,
// revoked, with its accountable member removed, and on another
// organisation's route; and asserts the exact status and code.
func TestEveryRouteTimesEveryServiceAccountCredential(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	own := newWorld(t, h, roomyPlan(t, h))
	foreign := newWorld(t, h, roomyPlan(t, h))
	ctx := context.Background()

	for _, r := range srv.Routes() {
		key := r.Method + " " + r.Path
		fx := fixtures[key]
		if r.Access == api.Public || fx == nil {
			continue // the member test fails a route with no fixture
		}
		for _, cred := range []saCredential{saInScope, saOutOfScope, saOutOfEnv, saExpired, saRevoked, saHumanRemoved, saForeignOrg} {
			t.Run(fmt.Sprintf("%s/%s", key, cred), func(t *testing.T) {
				w := own
				if cred == saForeignOrg && r.Access == api.Org {
					w = foreign
				}
				c := fx(t, h, w)
				var scopes []string
				for _, s := range domain.Scopes {
					if cred != saOutOfScope || s != r.Scope {
						scopes = append(scopes, string(s))
					}
				}
				var envs []string
				human := own.People[domain.RoleOwner]
				switch cred {
				case saOutOfEnv:
					envs = []string{"ci"}
				case saHumanRemoved:
					human = addPerson(t, h, own.Org.ID, domain.RoleOwner)
				}
				sa := addScopedAccount(t, h, own, human, domain.RoleOwner, scopes, envs)
				switch cred {
				case saExpired:
					if _, err := h.DB.NewUpdate().Model((*store.ServiceToken)(nil)).Set("expires_at = now() - interval '1 second'").Where("service_account_id = ?", sa.ID).Exec(ctx); err != nil {
						t.Fatal(err)
					}
				case saRevoked:
					if _, err := store.RevokeServiceToken(ctx, h.DB, own.Org.ID, sa.ID, sa.Tokens[0].ID, store.EventBase{OrgID: own.Org.ID, ActorType: "system"}); err != nil {
						t.Fatal(err)
					}
				case saHumanRemoved:
					if _, err := h.DB.NewDelete().Model((*store.Member)(nil)).Where("id = ?", human.MemberID).Exec(ctx); err != nil {
						t.Fatal(err)
					}
				}
				wantStatus, wantCode := c.status, c.code
				switch {
				case cred == saExpired || cred == saRevoked:
					wantStatus, wantCode = 401, "UNAUTHENTICATED"
				case r.Access != api.Org:
					wantStatus, wantCode = 403, "FORBIDDEN"
				case cred == saForeignOrg:
					wantStatus, wantCode = 404, "NOT_FOUND"
				case offRoutes[key]:
					// Off on the shared API: absent for its own accounts too.
					wantStatus, wantCode = 404, "NOT_FOUND"
				case cred == saHumanRemoved || r.Scope == "" || cred == saOutOfScope:
					wantStatus, wantCode = 403, "FORBIDDEN"
				case cred == saOutOfEnv && strings.Contains(r.Path, ":tenant_id"):
					wantStatus, wantCode = 404, "NOT_FOUND"
				case cred == saOutOfEnv && r.Scope == domain.ScopeTenantsCreate:
					wantStatus, wantCode = 403, "FORBIDDEN"
				case cred == saOutOfEnv && strings.HasSuffix(r.Path, "/audit-chain"):
					// The head covers events outside its environments.
					wantStatus, wantCode = 403, "FORBIDDEN"
				case cred == saOutOfEnv && strings.Contains(r.Path, "/audit-streams"):
					// A stream carries every event of the organisation.
					wantStatus, wantCode = 403, "FORBIDDEN"
				}
				resp := req(t, srv, r.Method, c.path, sa.Token, c.body)
				if resp.Status != wantStatus || resp.code() != wantCode {
					t.Fatalf("got %d %q, want %d %q: %s", resp.Status, resp.code(), wantStatus, wantCode, resp.Raw)
				}
			})
		}
	}
}

// TestAServiceAccountScopedToCIHasThatBlastRadiusAndNoMore: a token scoped
// to environment ci with tenants:create, tenants:decommission, tenants:read
// and events:read creates and decommissions ci tenants, and cannot read,
// suspend or decommission a prod tenant, change members or the plan, or
// mint tokens; what it did is audited as the account on behalf of its
// human.
func TestAServiceAccountScopedToCIHasThatBlastRadiusAndNoMore(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	owner, admin := w.People[domain.RoleOwner], w.People[domain.RoleAdmin]

	created := httpReq(t, l.srv, "POST", orgPath(w, "/service-accounts"), admin.Token, map[string]any{
		"name": "ci-bot", "role": "admin", "environments": []string{"ci"}, "token_expires_in": 3600,
		"scopes": []string{"tenants:create", "tenants:decommission", "tenants:read", "events:read"}}, "")
	if created.Status != 201 {
		t.Fatalf("create: %d %s", created.Status, created.Raw)
	}
	var out struct {
		ServiceAccount store.ServiceAccountView `json:"service_account"`
		Token          string                   `json:"token"`
	}
	created.data(t, &out)
	bot, token := out.ServiceAccount, out.Token
	if !strings.HasPrefix(token, store.ServiceTokenPrefix) || bot.Accountable == nil || bot.Accountable.MemberID != admin.MemberID {
		t.Fatalf("created %+v with token %.8s…", bot, token)
	}
	var stored int
	if err := h.DB.NewRaw("SELECT count(*) FROM service_account_tokens WHERE token_hash = ? AND hint = ?", store.HashSecret(token), token[len(token)-4:]).Scan(context.Background(), &stored); err != nil || stored != 1 {
		t.Fatalf("the token's hash is not what is stored: %d %v", stored, err)
	}

	// A prod tenant, made by a member.
	prod := l.waitState(t, w, l.accepted(t, w, "prod-app", "").Tenant.ID, domain.StateActive)

	// The bot creates a ci tenant and decommissions it.
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), token, map[string]any{"name": "ci-run-1", "environment": "ci"}, "")
	if r.Status != 202 {
		t.Fatalf("the bot's ci creation: %d %s", r.Status, r.Raw)
	}
	var ci lifecycleData
	r.data(t, &ci)
	l.waitState(t, w, ci.Tenant.ID, domain.StateActive)
	if r := req(t, l.srv, "POST", orgPath(w, "/tenants/"+ci.Tenant.ID+"/decommission"), token, nil); r.Status != 202 {
		t.Fatalf("the bot's decommission: %d %s", r.Status, r.Raw)
	}

	refused := []struct {
		method, path string
		body         any
		status       int
	}{
		{"POST", "/tenants", map[string]any{"name": "prod-2", "environment": "prod"}, 403},
		{"GET", "/tenants/" + prod.ID, nil, 404},
		{"GET", "/tenants/" + prod.ID + "/operations", nil, 404},
		{"POST", "/tenants/" + prod.ID + "/suspend", nil, 403},
		{"POST", "/tenants/" + prod.ID + "/decommission", nil, 404},
		{"POST", "/tenants/" + ci.Tenant.ID + "/suspend", nil, 403},
		{"PATCH", "/members/" + owner.MemberID, map[string]any{"role": "viewer"}, 403},
		{"POST", "/invitations", map[string]any{"email": "x-" + uniq() + "@example.test", "role": "owner"}, 403},
		{"PATCH", "", map[string]any{"plan": "free"}, 403},
		{"POST", "/service-accounts/" + bot.ID + "/tokens", map[string]any{"expires_in": 3600}, 403},
		{"POST", "/service-accounts", map[string]any{"name": "more", "role": "owner", "scopes": []string{"tenants:read"}, "token_expires_in": 3600}, 403},
	}
	for _, c := range refused {
		if r := req(t, l.srv, c.method, orgPath(w, c.path), token, c.body); r.Status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.Status, c.status, r.Raw)
		}
	}
	// It lists only ci tenants, and only their events.
	var listed []store.Tenant
	req(t, l.srv, "GET", orgPath(w, "/tenants"), token, nil).data(t, &listed)
	for _, tn := range listed {
		if tn.Environment != "ci" {
			t.Errorf("the bot lists a %s tenant: %s", tn.Environment, tn.ID)
		}
	}
	var events []store.EventView
	req(t, l.srv, "GET", orgPath(w, "/events?limit=200"), token, nil).data(t, &events)
	for _, e := range events {
		if e.Target.ID != ci.Tenant.ID {
			t.Errorf("the bot reads an event about %s %s", e.Target.Type, e.Target.ID)
		}
	}
	if prod := l.waitState(t, w, prod.ID, domain.StateActive); prod.State != "active" {
		t.Fatalf("prod is %s", prod.State)
	}

	// The audit trail names the account and its human.
	var byBot []store.EventView
	req(t, l.srv, "GET", orgPath(w, "/events?actor_type=service_account"), owner.Token, nil).data(t, &byBot)
	var actions []string
	for _, e := range byBot {
		actions = append(actions, e.Action)
		if e.Actor.ID != bot.ID || e.Actor.Name != "ci-bot" || !strings.Contains(string(e.OnBehalfOf), admin.MemberID) {
			t.Errorf("event %s names %+v on behalf of %s", e.Action, e.Actor, e.OnBehalfOf)
		}
	}
	for _, a := range []string{"tenant.create_requested", "tenant.decommission_requested"} {
		if !slices.Contains(actions, a) {
			t.Errorf("no %s by the bot in %v", a, actions)
		}
	}
	var saga []store.EventView
	req(t, l.srv, "GET", orgPath(w, "/events?action=tenant.provisioned&target_id="+ci.Tenant.ID), owner.Token, nil).data(t, &saga)
	if len(saga) != 1 || saga[0].Actor.Type != "system" || !strings.Contains(string(saga[0].OnBehalfOf), bot.ID) || !strings.Contains(string(saga[0].OnBehalfOf), admin.MemberID) {
		t.Fatalf("the saga's event does not name the bot and its human: %+v", saga)
	}
}

// TestAServiceTokenRotatesWithoutDowntime: with two tokens valid, revoking
// the old one leaves the new one working; a third is refused while two are
// valid; the old one stops at once.
func TestAServiceTokenRotatesWithoutDowntime(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	sa := addServiceAccount(t, h, w, domain.RoleViewer)
	path := orgPath(w, "/service-accounts/"+sa.ID+"/tokens")

	r := httpReq(t, srv, "POST", path, admin.Token, map[string]any{"expires_in": 3600}, "")
	if r.Status != 201 {
		t.Fatalf("mint: %d %s", r.Status, r.Raw)
	}
	var minted struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	r.data(t, &minted)
	for _, tok := range []string{sa.Token, minted.Token} {
		if r := req(t, srv, "GET", orgPath(w, "/tenants"), tok, nil); r.Status != 200 {
			t.Fatalf("a valid token: %d %s", r.Status, r.Raw)
		}
	}
	if r := httpReq(t, srv, "POST", path, admin.Token, map[string]any{"expires_in": 3600}, ""); r.Status != 409 {
		t.Fatalf("a third token while two are valid: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "DELETE", path+"/"+sa.Tokens[0].ID, admin.Token, nil); r.Status != 200 {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), sa.Token, nil); r.Status != 401 {
		t.Fatalf("the revoked token: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), minted.Token, nil); r.Status != 200 {
		t.Fatalf("the new token after the old was revoked: %d %s", r.Status, r.Raw)
	}
	var got store.ServiceAccountView
	req(t, srv, "GET", orgPath(w, "/service-accounts/"+sa.ID), admin.Token, nil).data(t, &got)
	if len(got.Tokens) != 2 || got.Tokens[0].ID != minted.ID || got.Tokens[0].LastUsedAt == nil || got.Tokens[0].LastUsedAddr == "" || got.Tokens[1].Status != "revoked" {
		t.Fatalf("tokens as shown: %+v", got.Tokens)
	}
	if strings.Contains(req(t, srv, "GET", orgPath(w, "/service-accounts/"+sa.ID), admin.Token, nil).Raw, store.ServiceTokenPrefix) {
		t.Fatal("an account's answer carries a token")
	}
}

// TestAServiceAccountWhoseHumanLeftWorksAgainOnceTakenOver: removing the
// accountable member stops the tokens (theirs for good, the ones others
// minted until someone answers for the account); an admin takes the
// account over (audited) and the token the admin minted works again, on
// the admin's behalf. (TestATakeOverDoesNotReviveARemovedMintersToken:
// the leaver's own token does not.)
func TestAServiceAccountWhoseHumanLeftWorksAgainOnceTakenOver(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	leaver := addPerson(t, h, w.Org.ID, domain.RoleAdmin)
	sa := addScopedAccount(t, h, w, leaver, domain.RoleDeveloper, []string{"tenants:read"}, nil)
	_, token := mintAs(t, srv, w, admin, sa.ID)

	if r := req(t, srv, "GET", orgPath(w, "/tenants"), token, nil); r.Status != 200 {
		t.Fatalf("before: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "DELETE", orgPath(w, "/members/"+leaver.MemberID), admin.Token, nil); r.Status != 200 {
		t.Fatalf("remove: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), token, nil); r.Status != 403 || !strings.Contains(r.Raw, "take it over") {
		t.Fatalf("after the human left: %d %s", r.Status, r.Raw)
	}
	var got store.ServiceAccountView
	req(t, srv, "GET", orgPath(w, "/service-accounts/"+sa.ID), admin.Token, nil).data(t, &got)
	if got.Accountable != nil {
		t.Fatalf("accountable after removal: %+v", got.Accountable)
	}
	if r := req(t, srv, "POST", orgPath(w, "/service-accounts/"+sa.ID+"/take-over"), admin.Token, nil); r.Status != 200 {
		t.Fatalf("take over: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), token, nil); r.Status != 200 {
		t.Fatalf("after the take-over: %d %s", r.Status, r.Raw)
	}
	var evs []store.EventView
	req(t, srv, "GET", orgPath(w, "/events?action=service_account.taken_over&target_id="+sa.ID), admin.Token, nil).data(t, &evs)
	if len(evs) != 1 || evs[0].Actor.ID != admin.MemberID || !strings.Contains(string(evs[0].Data), admin.MemberID) {
		t.Fatalf("take-over events: %+v", evs)
	}
	// A developer's account cannot be raised above its manager's role, and
	// a viewer's member cannot manage accounts at all.
	if r := req(t, srv, "PATCH", orgPath(w, "/service-accounts/"+sa.ID), admin.Token, map[string]any{"role": "owner"}); r.Status != 403 {
		t.Fatalf("an admin raising an account to owner: %d %s", r.Status, r.Raw)
	}
}

// TestAServiceAccountNeverDoesMoreThanItsHumanMayToday: an admin's account
// with tenants:decommission loses it when the admin is made a developer,
// and gets it back when the admin is an admin again. (The token is the
// owner's: the admin's own tokens stop for good when the admin is made a
// developer, TestAServiceTokenStopsWhenItsMinterLosesThePowerToMintIt.)
func TestAServiceAccountNeverDoesMoreThanItsHumanMayToday(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	human := addPerson(t, h, w.Org.ID, domain.RoleAdmin)
	sa := addScopedAccount(t, h, w, human, domain.RoleAdmin, []string{"tenants:decommission"}, nil)
	_, token := mintAs(t, srv, w, owner, sa.ID)
	path := orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateFailed)+"/decommission")

	if r := req(t, srv, "POST", path, token, nil); r.Status != 409 {
		t.Fatalf("allowed (refused for the tenant's state only): %d %s", r.Status, r.Raw)
	}
	setRole := func(role domain.Role) {
		if r := req(t, srv, "PATCH", orgPath(w, "/members/"+human.MemberID), owner.Token, map[string]any{"role": role}); r.Status != 200 {
			t.Fatalf("role %s: %d %s", role, r.Status, r.Raw)
		}
	}
	setRole(domain.RoleDeveloper)
	if r := req(t, srv, "POST", path, token, nil); r.Status != 403 || !strings.Contains(r.Raw, "accountable member (developer)") {
		t.Fatalf("with its human a developer: %d %s", r.Status, r.Raw)
	}
	setRole(domain.RoleAdmin)
	if r := req(t, srv, "POST", path, token, nil); r.Status != 409 {
		t.Fatalf("with its human an admin again: %d %s", r.Status, r.Raw)
	}
}

// TestAnEphemeralTenantOfAServiceAccountEndsWithItsLifetime: a ci bot
// creates a tenant with a 2-second lifetime; the saga decommissions it
// when the lifetime ends (no grace period), and the events of its end name
// the system acting for the bot and the bot's human.
func TestAnEphemeralTenantOfAServiceAccountEndsWithItsLifetime(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	// A lifetime ends the tenant: giving one takes tenants:decommission.
	bot := addScopedAccount(t, h, w, admin, domain.RoleAdmin, []string{"tenants:create", "tenants:read", "tenants:decommission"}, []string{"ci"})

	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "ci-short", "environment": "ci", "expires_in": 0}, ""); r.Status != 400 {
		t.Fatalf("a lifetime of 0: %d %s", r.Status, r.Raw)
	}
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "ci-short", "environment": "ci", "expires_in": 400 * 24 * 3600}, ""); r.Status != 400 {
		t.Fatalf("a lifetime over the bound: %d %s", r.Status, r.Raw)
	}
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "ci-short", "environment": "ci", "expires_in": 2}, "")
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var d lifecycleData
	r.data(t, &d)
	if d.Tenant.ExpiresAt == nil || time.Until(*d.Tenant.ExpiresAt) > 3*time.Second {
		t.Fatalf("expires_at = %v", d.Tenant.ExpiresAt)
	}
	tn := l.waitState(t, w, d.Tenant.ID, domain.StateDecommissioned)
	if res := l.resources(t, tn); res.Any() {
		t.Fatalf("expired but resources remain: %+v", res)
	}
	recordHistory(t, h, tn.WorkflowID, "", "ephemeral")
	var ops []store.Operation
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID+"/operations"), admin.Token, nil).data(t, &ops)
	if len(ops) != 2 || ops[1].Kind != "decommission" || ops[1].Status != "succeeded" || ops[1].RequestedBy != admin.UserID {
		t.Fatalf("operations: %+v", ops)
	}
	var evs []store.EventView
	req(t, l.srv, "GET", orgPath(w, "/events?target_id="+tn.ID), admin.Token, nil).data(t, &evs)
	seen := map[string]store.EventView{}
	for _, e := range evs {
		seen[e.Action] = e
	}
	for _, a := range []string{"tenant.decommission_requested", "tenant.decommissioning", "tenant.decommissioned"} {
		e, ok := seen[a]
		if !ok {
			t.Errorf("no %s in %v", a, evs)
			continue
		}
		if e.Actor.Type != "system" || !strings.Contains(string(e.OnBehalfOf), bot.ID) || !strings.Contains(string(e.OnBehalfOf), admin.MemberID) {
			t.Errorf("%s by %+v on behalf of %s", a, e.Actor, e.OnBehalfOf)
		}
	}
	if e := seen["tenant.create_requested"]; e.Actor.Type != "service_account" || e.Actor.ID != bot.ID {
		t.Errorf("the creation by %+v", e.Actor)
	}
}

// TestAServiceTokenIsNeverKeptForARetry: creating an account or minting a
// token with an Idempotency-Key keeps the answer for retries, and the kept
// answer must not hold the token (only hashes of tokens are stored). A
// retry is told the token is not shown again, with the token's id to
// revoke.
func TestAServiceTokenIsNeverKeptForARetry(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	ctx := context.Background()

	key := "create-" + uniq()
	body := map[string]any{"name": "kept-" + uniq(), "role": "viewer", "scopes": []string{"tenants:read"}, "token_expires_in": 3600}
	first := httpReq(t, srv, "POST", orgPath(w, "/service-accounts"), admin.Token, body, key)
	if first.Status != 201 {
		t.Fatalf("create: %d %s", first.Status, first.Raw)
	}
	var created struct {
		ServiceAccount store.ServiceAccountView `json:"service_account"`
		Token          string                   `json:"token"`
	}
	first.data(t, &created)
	mint := httpReq(t, srv, "POST", orgPath(w, "/service-accounts/"+created.ServiceAccount.ID+"/tokens"), admin.Token, map[string]any{"expires_in": 3600}, key+"-mint")
	if mint.Status != 201 {
		t.Fatalf("mint: %d %s", mint.Status, mint.Raw)
	}
	var minted struct {
		Token string `json:"token"`
	}
	mint.data(t, &minted)

	for _, secret := range []string{created.Token, minted.Token} {
		var n int
		if err := h.DB.NewRaw("SELECT count(*) FROM idempotency_records WHERE position(? in convert_from(response, 'UTF8')) > 0", secret).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a token is kept in %d stored answers", n)
		}
	}
	again := httpReq(t, srv, "POST", orgPath(w, "/service-accounts"), admin.Token, body, key)
	if again.Status != 201 || again.Header.Get("Idempotent-Replayed") != "true" || strings.Contains(again.Raw, store.ServiceTokenPrefix) {
		t.Fatalf("the retry: %d %s", again.Status, again.Raw)
	}
	var replayed struct {
		ServiceAccount store.ServiceAccountView `json:"service_account"`
		Token          string                   `json:"token"`
	}
	again.data(t, &replayed)
	if replayed.ServiceAccount.ID != created.ServiceAccount.ID || replayed.Token != "" {
		t.Fatalf("the retry answered %+v", replayed)
	}
}

// TestAnAdminCannotSteerAnOwnersServiceAccountButCanStopIt: an account
// whose role is above the caller's is not the caller's to change, rotate,
// take over or delete; revoking its token, which only takes power away,
// is open to every manager, so a leaked token is stopped by whoever is
// there.
func TestAnAdminCannotSteerAnOwnersServiceAccountButCanStopIt(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	sa := addScopedAccount(t, h, w, w.People[domain.RoleOwner], domain.RoleOwner, []string{"tenants:read"}, nil)
	base := orgPath(w, "/service-accounts/"+sa.ID)
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"PATCH", base, map[string]any{"scopes": []string{"events:read"}}},
		{"POST", base + "/tokens", map[string]any{"expires_in": 3600}},
		{"POST", base + "/take-over", nil},
		{"DELETE", base, nil},
	} {
		if r := req(t, srv, c.method, c.path, admin.Token, c.body); r.Status != 403 {
			t.Errorf("%s %s by an admin: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), sa.Token, nil); r.Status != 200 {
		t.Fatalf("the owner's account after the admin's attempts: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "DELETE", base+"/tokens/"+sa.Tokens[0].ID, admin.Token, nil); r.Status != 200 {
		t.Fatalf("an admin revoking a leaked token: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), sa.Token, nil); r.Status != 401 {
		t.Fatalf("the revoked token: %d %s", r.Status, r.Raw)
	}
}
