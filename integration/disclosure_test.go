package integration

import (
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// TestAConflictNamesNoTenantTheCallerCannotSee: a service account limited
// to ci creates a tenant whose name a prod tenant holds. It is told the
// name is taken (409), and nothing of the prod tenant: not its id, which
// it could not otherwise learn (the tenant is 404 to it).
func TestAConflictNamesNoTenantTheCallerCannotSee(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	bot := addScopedAccount(t, h, w, w.People[domain.RoleAdmin], domain.RoleDeveloper, []string{"tenants:create", "tenants:read"}, []string{"ci"})

	prod := l.waitState(t, w, l.accepted(t, w, "shared-name", "").Tenant.ID, domain.StateActive)
	if r := req(t, l.srv, "GET", orgPath(w, "/tenants/"+prod.ID), bot.Token, nil); r.Status != 404 {
		t.Fatalf("the prod tenant is visible to the ci account: %d %s", r.Status, r.Raw)
	}

	r := req(t, l.srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "shared-name", "environment": "ci"})
	if r.Status != 409 || r.code() != "CONFLICT" || !strings.Contains(r.Env.Error.Message, "taken") {
		t.Fatalf("a ci tenant with a prod tenant's name: %d %s", r.Status, r.Raw)
	}
	if strings.Contains(r.Raw, prod.ID) {
		t.Fatalf("the conflict names the prod tenant the account cannot see: %s", r.Raw)
	}
}

// TestAFailedSignInWritesNothingIntoTheMembersOrganisations: anyone who
// knows a member's email could write user.sign_in_failed events, with a
// user agent of their choosing, into every organisation of the member. A
// failure is throttled and logged, and nothing reaches an organisation's
// trail; a success still is.
func TestAFailedSignInWritesNothingIntoTheMembersOrganisations(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	viewer, owner := w.People[domain.RoleViewer], w.People[domain.RoleOwner]
	attacker := newCaller(servedAPI(t, api.Deps{}))
	const planted = "Support: call +1 555 0100 to unlock your account"
	for i := range 3 {
		r := attacker.post(t, "/api/v1/auth/sign-in", map[string]any{"email": viewer.Email, "password": "wrong-" + uniq()}, map[string]string{"User-Agent": planted})
		if r.Status != 401 {
			t.Fatalf("wrong password %d: %d %s", i, r.Status, r.Raw)
		}
	}
	var events []store.EventView
	req(t, sharedAPI(t), "GET", orgPath(w, "/events?limit=200"), owner.Token, nil).data(t, &events)
	for _, e := range events {
		if e.Action == "user.sign_in_failed" || e.UserAgent == planted {
			t.Errorf("an anonymous caller wrote into the organisation's trail: %s %q", e.Action, e.UserAgent)
		}
	}
	// A success is still audited.
	if r := attacker.signIn(t, viewer.Email, testPassword); r.Status != 200 {
		t.Fatalf("the right password: %d %s", r.Status, r.Raw)
	}
	req(t, sharedAPI(t), "GET", orgPath(w, "/events?action=user.signed_in"), owner.Token, nil).data(t, &events)
	if len(events) != 1 || events[0].Target.ID != viewer.UserID {
		t.Fatalf("the sign-in is not in the trail: %+v", events)
	}
}
