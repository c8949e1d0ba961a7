package integration

import (
	"context"
	"strconv"
	"testing"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// TestLifecycleTransitionsAreLimitedPerTenantAndNoOneCallerSpendsTheBudget
// sets the limit to 4 transitions per tenant per minute. A developer may
// spend half of a tenant's budget, then is refused; an admin spends the
// rest; then every caller is refused on that tenant, with Retry-After and
// before anything reaches the tenant's workflow, while another tenant of
// the same organisation is not limited.
func TestLifecycleTransitionsAreLimitedPerTenantAndNoOneCallerSpendsTheBudget(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	d := l.deps
	d.TenantTransitionsPerMinute = 4
	srv := api.New(d)
	w := newWorld(t, h, "team")
	busy := l.createActive(t, w, "busy").ID
	quiet := l.createActive(t, w, "quiet").ID
	freshWindow(t, h)

	send := func(who domain.Role, tenantID, action string) response {
		t.Helper()
		return httpReq(t, srv, "POST", orgPath(w, "/tenants/"+tenantID+"/"+action), w.People[who].Token, nil, "")
	}
	accepted := func(who domain.Role, tenantID, action string, state domain.State) {
		t.Helper()
		if r := send(who, tenantID, action); r.Status != 202 {
			t.Fatalf("%s's %s: %d %s", who, action, r.Status, r.Raw)
		}
		l.waitState(t, w, tenantID, state)
	}
	limited := func(what string, r response) {
		t.Helper()
		secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Status != 429 || r.code() != string(domain.CodeRateLimited) || err != nil || secs < 1 || secs > 60 {
			t.Fatalf("%s: %d Retry-After %q, want 429 RATE_LIMITED with Retry-After\n%s", what, r.Status, r.Header.Get("Retry-After"), r.Raw)
		}
	}

	accepted(domain.RoleDeveloper, busy, "suspend", domain.StateSuspended)
	accepted(domain.RoleDeveloper, busy, "resume", domain.StateActive)
	limited("the developer's third transition of the tenant", send(domain.RoleDeveloper, busy, "suspend"))

	accepted(domain.RoleAdmin, busy, "suspend", domain.StateSuspended)
	accepted(domain.RoleAdmin, busy, "resume", domain.StateActive)
	limited("the tenant's fifth transition, the owner's first", send(domain.RoleOwner, busy, "decommission"))

	// The refused requests reached no workflow: provisioning and four
	// transitions are all the tenant's operations.
	var ops int
	if err := h.DB.NewRaw("SELECT count(*) FROM operations WHERE tenant_id = ?", busy).Scan(context.Background(), &ops); err != nil || ops != 5 {
		t.Fatalf("operations of the limited tenant = %d (%v), want 5", ops, err)
	}

	accepted(domain.RoleDeveloper, quiet, "suspend", domain.StateSuspended)
}
