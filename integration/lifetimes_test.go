package integration

import (
	"context"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// createWithLifetime asks for a tenant that ends in seconds, as token.
func (l lifecycle) createWithLifetime(t *testing.T, w world, token, name, env string, seconds int) response {
	t.Helper()
	return httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), token, map[string]any{"name": name, "environment": env, "expires_in": seconds}, "")
}

// activeWithLifetime creates a tenant that ends in seconds, as token, and
// waits for it to be active.
func (l lifecycle) activeWithLifetime(t *testing.T, w world, token string, seconds int) lifecycleData {
	t.Helper()
	r := l.createWithLifetime(t, w, token, "brief-"+uniq(), "prod", seconds)
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var d lifecycleData
	r.data(t, &d)
	l.waitState(t, w, d.Tenant.ID, domain.StateActive)
	return d
}

// setLifetime asks for the tenant to end in seconds from now (nil: never).
func (l lifecycle) setLifetime(t *testing.T, w world, token, tenantID string, seconds *int) response {
	t.Helper()
	return httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tenantID+"/lifetime"), token, map[string]any{"expires_in": seconds}, "")
}

// TestSettingALifetimeNeedsThePowerToDestroy: a tenant with a lifetime is
// destroyed when it ends, with no grace period, so giving one is
// decommissioning it in advance. A developer (whose role may not
// decommission) and a service account without tenants:decommission were
// able to create a prod tenant with a one-second lifetime and see it
// destroyed; they are refused, while creating tenants without a lifetime.
func TestSettingALifetimeNeedsThePowerToDestroy(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	admin := w.People[domain.RoleAdmin]
	creator := addScopedAccount(t, h, w, admin, domain.RoleAdmin, []string{"tenants:create", "tenants:read"}, []string{"prod"})

	for _, c := range []struct{ who, token string }{{"a developer", w.People[domain.RoleDeveloper].Token}, {"a service account without tenants:decommission", creator.Token}} {
		r := l.createWithLifetime(t, w, c.token, "brief-"+uniq(), "prod", 1)
		if r.Status != 403 {
			t.Fatalf("%s created a tenant with a lifetime: %d %s", c.who, r.Status, r.Raw)
		}
		if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), c.token, map[string]any{"name": "kept-" + uniq(), "environment": "prod"}, ""); r.Status != 202 {
			t.Fatalf("%s may still create a tenant without one: %d %s", c.who, r.Status, r.Raw)
		}
	}
	if r := l.createWithLifetime(t, w, admin.Token, "brief-"+uniq(), "prod", 3600); r.Status != 202 {
		t.Fatalf("an admin's tenant with a lifetime: %d %s", r.Status, r.Raw)
	}
}

// TestAnOwnerExtendsOrClearsALifetime: an owner clears an ephemeral
// tenant's lifetime before it ends, and the tenant lives on past it; then
// gives it a short one again, and it ends. A developer may do neither.
// Each change is audited with the lifetime before and after.
func TestAnOwnerExtendsOrClearsALifetime(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	d := l.activeWithLifetime(t, w, owner.Token, 4)

	if r := l.setLifetime(t, w, w.People[domain.RoleDeveloper].Token, d.Tenant.ID, nil); r.Status != 403 {
		t.Fatalf("a developer cleared a lifetime: %d %s", r.Status, r.Raw)
	}
	r := l.setLifetime(t, w, owner.Token, d.Tenant.ID, nil)
	if r.Status != 200 {
		t.Fatalf("clear the lifetime: %d %s", r.Status, r.Raw)
	}
	var cleared store.Tenant
	r.data(t, &cleared)
	if cleared.ExpiresAt != nil {
		t.Fatalf("cleared, expires_at = %v", cleared.ExpiresAt)
	}
	// Past the lifetime it was created with, it is still there.
	time.Sleep(time.Until(*d.Tenant.ExpiresAt) + 2*time.Second)
	if tn := l.get(t, w, d.Tenant.ID); tn.State != string(domain.StateActive) || tn.ExpiresAt != nil {
		t.Fatalf("after its old end the tenant is %s, expires_at %v", tn.State, tn.ExpiresAt)
	}

	two := 2
	r = l.setLifetime(t, w, owner.Token, d.Tenant.ID, &two)
	if r.Status != 200 {
		t.Fatalf("give it a lifetime again: %d %s", r.Status, r.Raw)
	}
	var again store.Tenant
	r.data(t, &again)
	if again.ExpiresAt == nil || time.Until(*again.ExpiresAt) > 3*time.Second {
		t.Fatalf("expires_at = %v", again.ExpiresAt)
	}
	l.waitState(t, w, d.Tenant.ID, domain.StateDecommissioned)
	if n := countEvents(t, h, d.Tenant.ID, "tenant.lifetime_changed"); n != 2 {
		t.Fatalf("%d tenant.lifetime_changed events, want 2", n)
	}
	if r := l.setLifetime(t, w, owner.Token, d.Tenant.ID, nil); r.Status != 409 {
		t.Fatalf("the lifetime of a decommissioned tenant changed: %d %s", r.Status, r.Raw)
	}
}

// TestARestoreKeepsATenantWhoseLifetimeEndedInItsGracePeriod: an owner
// decommissions an ephemeral tenant and restores it in the grace period,
// after its lifetime ended meanwhile. The restore used to be overridden a
// moment later by the lifetime's end (no grace period); the owner's
// decision wins and the tenant lives on without a lifetime.
func TestARestoreKeepsATenantWhoseLifetimeEndedInItsGracePeriod(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycleWith(t, nil, testSaga(time.Minute), nil)
	w := newWorld(t, h, "enterprise")
	d := l.activeWithLifetime(t, w, w.People[domain.RoleOwner].Token, 3)
	if r := l.transition(t, w, domain.RoleOwner, d.Tenant.ID, "decommission", ""); r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, d.Tenant.ID, domain.StateDecommissioning)
	time.Sleep(time.Until(*d.Tenant.ExpiresAt) + time.Second)
	if r := l.transition(t, w, domain.RoleOwner, d.Tenant.ID, "restore", ""); r.Status != 202 {
		t.Fatalf("restore: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, d.Tenant.ID, domain.StateSuspended)
	time.Sleep(3 * time.Second)
	tn := l.get(t, w, d.Tenant.ID)
	if tn.State != string(domain.StateSuspended) || tn.ExpiresAt != nil {
		t.Fatalf("after the restore the tenant is %s, expires_at %v: the lifetime's end overrode the owner's restore", tn.State, tn.ExpiresAt)
	}
}

// get reads the tenant as its organisation's owner sees it.
func (l lifecycle) get(t *testing.T, w world, id string) store.Tenant {
	t.Helper()
	var tn store.Tenant
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+id), w.People[domain.RoleOwner].Token, nil).data(t, &tn)
	return tn
}

// countEvents counts a target's audit events of one action.
func countEvents(t *testing.T, h *harness.Harness, targetID, action string) int {
	t.Helper()
	n, err := h.DB.NewSelect().Model((*store.AuditEvent)(nil)).Where("target_id = ? AND action = ?", targetID, action).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
