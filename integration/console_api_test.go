package integration

import (
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// TestATenantsHostnameIsKnownBeforeItIsCreated: the organisation says the
// domain its tenants are served under, and a created tenant's hostname is
// <name>-<slug>.<tenant_domain>, as a client shows before creating it.
func TestATenantsHostnameIsKnownBeforeItIsCreated(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	var org struct {
		Slug         string `json:"slug"`
		TenantDomain string `json:"tenant_domain"`
	}
	r := req(t, l.srv, "GET", orgPath(w, ""), w.People[domain.RoleViewer].Token, nil)
	r.data(t, &org)
	if r.Status != 200 || org.TenantDomain == "" {
		t.Fatalf("GET organization: %d %s", r.Status, r.Raw)
	}
	r = l.create(t, w, "preview", "")
	var created lifecycleData
	r.data(t, &created)
	if want := "preview-" + org.Slug + "." + org.TenantDomain; r.Status != 202 || created.Tenant.Hostname != want {
		t.Fatalf("created %d with hostname %q, want %q", r.Status, created.Tenant.Hostname, want)
	}
}
