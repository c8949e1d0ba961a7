package integration

import (
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// TestACreationRetriedWithAnotherLifetimeIsAnotherRequest: the lifetime is
// part of the request an Idempotency-Key names, like the name and the
// environment.
func TestACreationRetriedWithAnotherLifetimeIsAnotherRequest(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	body := func(expiresIn any) map[string]any {
		b := map[string]any{"name": "ci-lived", "environment": "ci"}
		if expiresIn != nil {
			b["expires_in"] = expiresIn
		}
		return b
	}
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), owner.Token, body(3600), "lived"); r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	for _, other := range []any{7200, nil} {
		if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), owner.Token, body(other), "lived"); r.Status != 422 {
			t.Errorf("the key again with expires_in %v: %d %s, want 422", other, r.Status, r.Raw)
		}
	}
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), owner.Token, body(3600), "lived")
	if r.Status != 202 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the same request again: %d %s", r.Status, r.Raw)
	}

	// And a tenant created without a lifetime, retried with one.
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), owner.Token, map[string]any{"name": "ci-forever", "environment": "ci"}, "forever"); r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), owner.Token, map[string]any{"name": "ci-forever", "environment": "ci", "expires_in": 60}, "forever"); r.Status != 422 {
		t.Errorf("the key again with a lifetime: %d %s, want 422", r.Status, r.Raw)
	}
}

// TestARetryOfADecommissionAfterTheTenantIsGoneIsAnsweredWithItsOperation:
// a retry is answered from Postgres once its operation has ended, even
// when the tenant's workflow has ended too (or no longer carries the
// answer).
func TestARetryOfADecommissionAfterTheTenantIsGoneIsAnsweredWithItsOperation(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "enterprise")
	owner := w.People[domain.RoleOwner]
	tn := l.createActive(t, w, "gone-soon")
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/decommission"), owner.Token, nil, "the-end")
	if r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	var first lifecycleData
	r.data(t, &first)
	l.waitState(t, w, tn.ID, domain.StateDecommissioned)

	r = httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/decommission"), owner.Token, nil, "the-end")
	if r.Status != 202 || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the decommission's retry after the end: %d %s", r.Status, r.Raw)
	}
	var again lifecycleData
	r.data(t, &again)
	if again.Operation.ID != first.Operation.ID || again.Operation.Status != "succeeded" || again.Tenant.State != string(domain.StateDecommissioned) {
		t.Fatalf("the retry was answered with %+v, %+v", again.Operation, again.Tenant)
	}
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/decommission"), owner.Token, nil, "another"); r.Status != 409 {
		t.Fatalf("a new decommission of a decommissioned tenant: %d %s", r.Status, r.Raw)
	}
}
