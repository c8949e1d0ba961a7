package workflows

import (
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// validateLifetime refuses, before anything is written, a lifetime change
// of a tenant whose end has begun: its lifetime's decommission, or any
// decommission (a restore is what calls that off).
func (w *tenant) validateLifetime(ctx workflow.Context, r LifetimeRequest) error {
	if err := actsAsItsOperator(ctx, UpdateLifetime, r.Request.Actor); err != nil {
		return err
	}
	switch {
	case !w.reserved:
		return temporal.NewApplicationError("tenant not found", string(domain.CodeNotFound))
	case w.state.Ended():
		return conflict("the tenant is %s: it has no lifetime to change", w.state)
	case w.expiring:
		return conflict("the tenant's lifetime is over: its decommission has begun")
	case w.relifing:
		return conflict("another change of the tenant's lifetime is being written")
	}
	for _, kind := range []domain.OpKind{w.opKind(), w.claimKind()} {
		if kind == domain.OpDecommission {
			return conflict("the tenant is being decommissioned: restore it first")
		}
	}
	return nil
}

// opKind and claimKind are the kinds of the running operation and of the
// one being written ("" for none).
func (w *tenant) opKind() domain.OpKind {
	if w.op == nil {
		return ""
	}
	return w.op.kind
}

func (w *tenant) claimKind() domain.OpKind {
	for _, r := range []*TransitionRequest{w.claim, w.next} {
		if r != nil {
			return r.Kind
		}
	}
	return ""
}

// handleLifetime writes the tenant's new end, then restarts its clock. An
// end that came while an operation ran, and was waiting for it, is called
// off: the decision that came after it wins. The lifetime's end waits for
// the write, so the two never cross.
func (w *tenant) handleLifetime(ctx workflow.Context, r LifetimeRequest) (activities.TenantRecord, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	w.relifing = true
	defer func() { w.relifing = false }()
	var t activities.TenantRecord
	var a *activities.Activities
	err := w.write(ctx, a.SetLifetime, activities.LifetimeInput{TenantID: w.p.TenantID, ExpiresAt: r.ExpiresAt,
		UpdateID: workflow.GetCurrentUpdateInfo(ctx).ID, Request: r.Request}, &t)
	if err != nil {
		return t, err
	}
	switch {
	case r.ExpiresAt == nil:
		w.p.Expiry = nil
	case w.p.Expiry == nil:
		w.p.Expiry = &Expiry{At: *r.ExpiresAt, For: r.Request.Actor, UserID: r.Request.UserID}
	default:
		e := *w.p.Expiry
		e.At = *r.ExpiresAt
		w.p.Expiry = &e
	}
	w.expired = false
	w.watchExpiry(ctx)
	w.log.Info("tenant lifetime changed", "expires_at", r.ExpiresAt)
	return t, nil
}
