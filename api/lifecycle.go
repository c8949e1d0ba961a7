package api

import (
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// transitionPath is the route of a requested transition.
func transitionPath(org string, t domain.Transition) string {
	return org + "/tenants/:tenant_id/" + t.Path
}

// actions lists the transitions the caller may start on the tenant now:
// those the lifecycle table offers from its state (and running operation),
// which the caller's role, or a service account's scopes and roles, allow.
// A client draws its buttons from this list and re-encodes no rule.
func actions(who *caller, n domain.TenantNow, now time.Time) []domain.OpKind {
	out := []domain.OpKind{}
	if who == nil || !who.orgActive() {
		return out
	}
	for _, t := range n.Offered(now) {
		if who.authorize(t.Action, t.Scope) == nil {
			out = append(out, t.Kind)
		}
	}
	return out
}

// tenantNow is what a tenant's row and its running operations (by id, as
// store.RunningOperations reads them; nil when not read) say of the
// transitions it accepts now. While the row names an operation, the tenant
// is busy, whether or not that operation was read.
func tenantNow(state, currentOperationID string, running map[string]store.Running) domain.TenantNow {
	n := domain.TenantNow{State: domain.State(state), Busy: currentOperationID != ""}
	if r, ok := running[currentOperationID]; ok && n.Busy {
		n.Running, n.GraceEndsAt = domain.OpKind(r.Kind), r.GraceEndsAt
	}
	return n
}

// lifetimeEditable reports whether the caller may change the tenant's
// lifetime now: it may decommission, and the tenant has not ended and is
// not being decommissioned (its lifetime's end included; an operation of
// a kind not read counts as one).
func lifetimeEditable(who *caller, n domain.TenantNow) bool {
	if who == nil || !who.orgActive() || n.State.Ended() || (n.Busy && (n.Running == "" || n.Running == domain.OpDecommission)) {
		return false
	}
	return mayEnd(who) == nil
}
