package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// stale makes the session of token one whose person last proved who they
// are an hour ago: older than any reauthentication window.
func stale(t *testing.T, h *harness.Harness, token string) {
	t.Helper()
	if _, err := h.DB.NewRaw("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE token_hash = ?", store.HashSecret(token)).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// reauthenticate proves again, with the fixtures' password, who the person
// of token is.
func reauthenticate(t *testing.T, srv *api.Server, token string) response {
	t.Helper()
	return req(t, srv, "POST", "/api/v1/auth/reauthenticate", token, map[string]any{"password": testPassword})
}

// guardedCall is a request of an act that needs a recent authentication,
// the status of its success, and what tells whether it happened.
type guardedCall struct {
	method, path string
	body         any
	status       int
	// replayed: a retry with the key says Idempotent-Replayed.
	replayed bool
	done     func() bool
}

// scalar reads one value from the harness's database.
func scalar[T any](t *testing.T, h *harness.Harness, query string, args ...any) T {
	t.Helper()
	var v T
	if err := h.DB.NewRaw(query, args...).Scan(context.Background(), &v); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return v
}

// TestTheIrreversibleActsNeedARecentAuthentication: for each act that
// needs one (decommission, giving a lifetime, a plan change, granting
// owner, inviting an owner, creating a service account and minting a
// token), an owner whose session proved who they are an hour ago is
// refused with 403 REAUTHENTICATION_REQUIRED and nothing changes; once they
// reauthenticate, the same request with the same Idempotency-Key goes
// through; and a retry of it with that key, once the proof is old again,
// is answered as the first was, not refused.
func TestTheIrreversibleActsNeedARecentAuthentication(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	l := lifecycle{srv: srv}
	w := newWorld(t, h, roomyPlan(t, h))
	owner := w.People[domain.RoleOwner]

	created := httpReq(t, srv, "POST", orgPath(w, "/tenants"), owner.Token, map[string]any{"name": "sudo-" + uniq(), "environment": "prod"}, "")
	if created.Status != 202 {
		t.Fatalf("create: %d %s", created.Status, created.Raw)
	}
	var tn lifecycleData
	created.data(t, &tn)
	l.waitState(t, w, tn.Tenant.ID, domain.StateActive)

	tests := []struct {
		name string
		call func(t *testing.T) guardedCall
	}{
		{"giving a tenant a lifetime", func(t *testing.T) guardedCall {
			return guardedCall{"POST", orgPath(w, "/tenants/"+tn.Tenant.ID+"/lifetime"), map[string]any{"expires_in": 3600}, 200, false, func() bool {
				return scalar[bool](t, h, "SELECT expires_at IS NOT NULL FROM tenants WHERE id = ?", tn.Tenant.ID)
			}}
		}},
		{"decommissioning a tenant", func(t *testing.T) guardedCall {
			return guardedCall{"POST", orgPath(w, "/tenants/"+tn.Tenant.ID+"/decommission"), nil, 202, true, func() bool {
				return scalar[int](t, h, "SELECT count(*) FROM operations WHERE tenant_id = ? AND kind = 'decommission'", tn.Tenant.ID) > 0
			}}
		}},
		{"changing the plan", func(t *testing.T) guardedCall {
			return guardedCall{"PATCH", orgPath(w, ""), map[string]any{"plan": "enterprise"}, 200, true, func() bool {
				return scalar[string](t, h, "SELECT plan_id FROM organizations WHERE id = ?", w.Org.ID) == "enterprise"
			}}
		}},
		{"granting owner", func(t *testing.T) guardedCall {
			target := addPerson(t, h, w.Org.ID, domain.RoleDeveloper)
			return guardedCall{"PATCH", orgPath(w, "/members/"+target.MemberID), map[string]any{"role": "owner"}, 200, true, func() bool {
				return scalar[string](t, h, "SELECT role FROM members WHERE id = ?", target.MemberID) == "owner"
			}}
		}},
		{"inviting an owner", func(t *testing.T) guardedCall {
			email := "owner-to-be-" + uniq() + "@example.test"
			return guardedCall{"POST", orgPath(w, "/invitations"), map[string]any{"email": email, "role": "owner"}, 201, true, func() bool {
				return scalar[int](t, h, "SELECT count(*) FROM invitations WHERE org_id = ? AND email = ?", w.Org.ID, email) > 0
			}}
		}},
		{"creating a service account, which mints its first token", func(t *testing.T) guardedCall {
			name := "deploy-" + uniq()
			return guardedCall{"POST", orgPath(w, "/service-accounts"), map[string]any{"name": name, "role": "developer", "scopes": []string{"tenants:read"}, "token_expires_in": 3600},
				201, true, func() bool {
					return scalar[int](t, h, "SELECT count(*) FROM service_accounts WHERE org_id = ? AND name = ?", w.Org.ID, name) > 0
				}}
		}},
		{"minting a service-account token", func(t *testing.T) guardedCall {
			sa := addServiceAccount(t, h, w, domain.RoleViewer)
			return guardedCall{"POST", orgPath(w, "/service-accounts/"+sa.ID+"/tokens"), map[string]any{"expires_in": 3600}, 201, true, func() bool {
				return scalar[int](t, h, "SELECT count(*) FROM service_account_tokens WHERE service_account_id = ?", sa.ID) > 1
			}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.call(t)
			key := "sudo-" + uniq()
			stale(t, h, owner.Token)
			r := httpReq(t, srv, c.method, c.path, owner.Token, c.body, key)
			if r.Status != 403 || r.code() != string(domain.CodeReauthenticationRequired) || !strings.Contains(r.Env.Error.Message, "/auth/reauthenticate") {
				t.Fatalf("with an hour-old authentication: %d %s", r.Status, r.Raw)
			}
			if c.done() {
				t.Fatal("the refused act happened")
			}
			if r := reauthenticate(t, srv, owner.Token); r.Status != 200 {
				t.Fatalf("reauthenticate: %d %s", r.Status, r.Raw)
			}
			r = httpReq(t, srv, c.method, c.path, owner.Token, c.body, key)
			if r.Status != c.status || r.Header.Get("Idempotent-Replayed") != "" {
				t.Fatalf("the same request after reauthenticating: %d %s", r.Status, r.Raw)
			}
			if !c.done() {
				t.Fatal("the act did not happen")
			}
			stale(t, h, owner.Token)
			again := httpReq(t, srv, c.method, c.path, owner.Token, c.body, key)
			if again.Status != c.status || (c.replayed && again.Header.Get("Idempotent-Replayed") != "true") {
				t.Fatalf("a retry with the key once the proof is old again: %d %s", again.Status, again.Raw)
			}
		})
	}
	l.waitState(t, w, tn.Tenant.ID, domain.StateDecommissioning)
}

// TestWhatIsNotIrreversibleIsNotAsked: with an hour-old authentication an
// owner still renames the organisation, sends a plan change to the plan it
// has, changes a developer to viewer, invites a developer and clears a
// tenant's lifetime; and the routes outside an organisation do not ask.
func TestWhatIsNotIrreversibleIsNotAsked(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	stale(t, h, owner.Token)
	target := addPerson(t, h, w.Org.ID, domain.RoleDeveloper)
	for _, c := range []guardedCall{
		{method: "PATCH", path: orgPath(w, ""), body: map[string]any{"name": "Renamed " + uniq()}, status: 200},
		{method: "PATCH", path: orgPath(w, ""), body: map[string]any{"plan": "team"}, status: 200},
		{method: "PATCH", path: orgPath(w, "/members/"+target.MemberID), body: map[string]any{"role": "viewer"}, status: 200},
		{method: "POST", path: orgPath(w, "/invitations"), body: map[string]any{"email": "dev-" + uniq() + "@example.test", "role": "developer"}, status: 201},
		{method: "POST", path: orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateFailed)+"/lifetime"), body: map[string]any{"expires_in": nil}, status: 409},
		{method: "GET", path: "/api/v1/me", status: 200},
	} {
		if r := req(t, srv, c.method, c.path, owner.Token, c.body); r.Status != c.status {
			t.Errorf("%s %s %v: %d %s", c.method, c.path, c.body, r.Status, r.Raw)
		}
	}
}

// TestAServiceAccountIsNotAskedToReauthenticate: a token is all a service
// account has, so within its scopes it gives a lifetime and decommissions
// without being asked; and it cannot reauthenticate (403).
func TestAServiceAccountIsNotAskedToReauthenticate(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	l := lifecycle{srv: srv}
	w := newWorld(t, h, "team")
	sa := addScopedAccount(t, h, w, w.People[domain.RoleOwner], domain.RoleOwner,
		[]string{"tenants:read", "tenants:create", "tenants:decommission"}, nil)
	created := httpReq(t, srv, "POST", orgPath(w, "/tenants"), sa.Token, map[string]any{"name": "ci-" + uniq(), "environment": "ci"}, "")
	if created.Status != 202 {
		t.Fatalf("create: %d %s", created.Status, created.Raw)
	}
	var tn lifecycleData
	created.data(t, &tn)
	l.waitState(t, w, tn.Tenant.ID, domain.StateActive)
	if r := req(t, srv, "POST", orgPath(w, "/tenants/"+tn.Tenant.ID+"/lifetime"), sa.Token, map[string]any{"expires_in": 3600}); r.Status != 200 {
		t.Fatalf("lifetime: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", orgPath(w, "/tenants/"+tn.Tenant.ID+"/decommission"), sa.Token, nil); r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", "/api/v1/auth/reauthenticate", sa.Token, map[string]any{"password": testPassword}); r.Status != 403 || r.code() != "FORBIDDEN" {
		t.Fatalf("a service account reauthenticating: %d %s", r.Status, r.Raw)
	}
}

// TestReauthenticatingChecksThePasswordUnderTheSignInThrottle: a stolen
// session token does not make its thief able to guess the password faster
// than signing in would: wrong passwords are 401 and counted by the
// sign-in throttle, then 429 with Retry-After for reauthenticating and
// signing in alike from there; the person, from their own address, gets
// in, the session counts as recently authenticated for the window, and
// user.reauthenticated is in their account events. A second factor is not
// yet a way to do it, and exactly one way is given.
func TestReauthenticatingChecksThePasswordUnderTheSignInThrottle(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	base := servedAPI(t, api.Deps{ReauthWindow: 15 * time.Minute})
	auth := map[string]string{"Authorization": "Bearer " + owner.Token}
	thief := newCaller(base)
	reauth := func(c caller, body any) response {
		t.Helper()
		return c.post(t, "/api/v1/auth/reauthenticate", body, auth)
	}

	for _, tt := range []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"nothing", map[string]any{}, "password"},
		{"a TOTP code, which the account does not have", map[string]any{"code": "123456"}, "code"},
		{"a passkey, which the account does not have", map[string]any{"credential": map[string]any{"id": "x"}}, "credential"},
		{"a password and a code", map[string]any{"password": testPassword, "code": "123456"}, "code"},
		{"a passkey that is not an object", map[string]any{"credential": "x"}, "credential"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := reauth(thief, tt.body)
			if r.Status != 400 || r.code() != "BAD_REQUEST" || !strings.Contains(toJSON(r.Env.Error.FieldErrors), `"field":"`+tt.field+`"`) {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}

	stale(t, h, owner.Token)
	limit := store.DefaultSignInPolicy.Pair.Limit
	for i := range limit {
		if r := reauth(thief, map[string]any{"password": "guess-number-" + string(rune('a'+i))}); r.Status != 401 || r.code() != "UNAUTHENTICATED" {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	if r := reauth(thief, map[string]any{"password": "one-guess-too-many"}); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s", r.Status, r.Raw)
	}
	if r := reauth(thief, map[string]any{"password": testPassword}); r.Status != 429 {
		t.Fatalf("the right password from there past the limit: %d %s", r.Status, r.Raw)
	}
	if r := thief.signIn(t, owner.Email, testPassword); r.Status != 429 {
		t.Fatalf("signing in from there: %d %s", r.Status, r.Raw)
	}
	if old := scalar[bool](t, h, "SELECT authenticated_at < now() - interval '30 minutes' FROM sessions WHERE token_hash = ?", store.HashSecret(owner.Token)); !old {
		t.Fatal("a failed reauthentication renewed the session's proof")
	}

	r := reauth(newCaller(base), map[string]any{"password": testPassword})
	if r.Status != 200 {
		t.Fatalf("the person: %d %s", r.Status, r.Raw)
	}
	var ans struct {
		AuthenticatedAt      time.Time `json:"authenticated_at"`
		ReauthenticatedUntil time.Time `json:"reauthenticated_until"`
	}
	r.data(t, &ans)
	if time.Since(ans.AuthenticatedAt) > time.Minute || ans.ReauthenticatedUntil.Sub(ans.AuthenticatedAt) != 15*time.Minute {
		t.Fatalf("the answer: %+v", ans)
	}
	if fresh := scalar[bool](t, h, "SELECT authenticated_at > now() - interval '1 minute' FROM sessions WHERE token_hash = ?", store.HashSecret(owner.Token)); !fresh {
		t.Fatal("the session's proof was not renewed")
	}

	events := req(t, sharedAPI(t), "GET", "/api/v1/me/events", owner.Token, nil)
	var evs []store.EventView
	events.data(t, &evs)
	found := 0
	for _, e := range evs {
		if e.Action == "user.reauthenticated" {
			found++
			if e.Actor.ID != owner.MemberID || e.OrgID != w.Org.ID || !strings.Contains(toJSON(e.Data), `"method":"password"`) {
				t.Errorf("the event: %s", toJSON(e))
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d user.reauthenticated events (failures write none): %s", found, events.Raw)
	}
}
