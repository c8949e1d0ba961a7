package workflows

import (
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// TenantWorkflow is a tenant's lifecycle: the provisioning saga, then each
// requested transition in turn, until the tenant is decommissioned or its
// provisioning failed.
func TenantWorkflow(ctx workflow.Context, p TenantParams) (TenantResult, error) {
	rev := revisionOf(ctx, p)
	if rev.legacy {
		return TenantResult{}, legacyTenantWorkflow(ctx, p)
	}
	if err := p.validate(); err != nil {
		return TenantResult{}, err
	}
	// The saga runs on a context that a cancellation request does not
	// reach: a tenant is moved by the API and repaired by operators, never
	// abandoned half-way by cancelling its workflow.
	root := ctx
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	w := &tenant{p: p, rev: rev, state: domain.StateProvisioning, saga: SagaRunning, answered: map[string]Answered{},
		ref: activities.TenantRef{TenantID: p.TenantID, OrgID: p.OrgID, Hostname: p.Hostname},
		log: log.With(workflow.GetLogger(ctx), "tenant_id", p.TenantID, "org_id", p.OrgID)}
	if rev.indexesOnlyChanges() && p.Continued == nil {
		// Started with these (the client sets them at the start).
		w.indexed = &indexed{state: w.state, saga: w.saga}
	}
	if c := p.Continued; c != nil {
		w.state, w.reserved, w.saga, w.seq = c.State, true, SagaIdle, c.EventSeq
		w.expiring = c.ExpiryDone
		for id, a := range c.Answered {
			w.answered[id] = a
		}
	}
	if err := w.register(ctx); err != nil {
		return TenantResult{}, err
	}
	w.refuseCancellation(root, ctx)
	w.searchAttributes(ctx)
	w.watchExpiry(ctx)

	if p.Continued == nil {
		if !w.awaitProvisionRequest(ctx) {
			w.saga = SagaDone
			w.searchAttributes(ctx)
			// A failure, so the key's workflow id may be used again.
			return TenantResult{}, temporal.NewNonRetryableApplicationError("no provision request arrived", "NOT_PROVISIONED", nil)
		}
		_ = workflow.Await(ctx, func() bool { return w.reserved || w.rejection != nil })
		if w.rejection != nil {
			w.saga = SagaDone
			w.searchAttributes(ctx)
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			return TenantResult{Rejection: w.rejection}, nil
		}
		w.runProvision(ctx)
	}
	for ops := 0; !w.state.Ended(); ops++ {
		w.saga = SagaIdle
		w.searchAttributes(ctx)
		_ = workflow.Await(ctx, func() bool { return w.next != nil || w.expiryDue() || w.mayContinueAsNew(ctx, ops) })
		switch {
		case w.next != nil:
			r := *w.next
			w.next = nil
			w.run(ctx, r)
		case w.expiryDue():
			w.expire(ctx)
		default:
			return TenantResult{}, w.continueAsNew(ctx)
		}
	}
	w.saga = SagaDone
	w.searchAttributes(ctx)
	// Let update handlers that are finishing reply before the run ends.
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return TenantResult{State: w.state}, nil
}

// awaitProvisionRequest waits up to ReservationTimeout for the provision
// request and reports whether it arrived. From revision 8 the wait's timer
// ends with it: none is started when the request came with the start (an
// Update-With-Start's update runs before this), and one that was started
// is cancelled when the request arrives, so it never fires later, for a
// workflow task that would replay the run (before, every tenant's run
// woke once, ReservationTimeout after its creation).
func (w *tenant) awaitProvisionRequest(ctx workflow.Context) bool {
	arrived := func() bool { return w.reserving || w.reserved || w.rejection != nil }
	if !w.rev.waitEnds() {
		ok, _ := workflow.AwaitWithTimeout(ctx, w.p.ReservationTimeout, arrived)
		return ok
	}
	if arrived() {
		return true
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	ok, _ := workflow.AwaitWithTimeout(tctx, w.p.ReservationTimeout, arrived)
	return ok
}

// watchExpiry starts the ephemeral tenant's clock: a durable timer to the
// end of its lifetime (at once if it is over), in this run and in each run
// it continues as.
func (w *tenant) watchExpiry(ctx workflow.Context) {
	if w.stopExpiry != nil {
		// A lifetime change: the old clock stops, its timer cancelled.
		w.stopExpiry()
		w.stopExpiry = nil
	}
	e := w.p.Expiry
	if e == nil || w.expiring {
		// No lifetime, or an earlier run dealt with its end.
		return
	}
	wctx, stop := workflow.WithCancel(ctx)
	w.stopExpiry = stop
	workflow.Go(wctx, func(gctx workflow.Context) {
		if left := e.At.Sub(workflow.Now(gctx)); left > 0 {
			if workflow.Sleep(gctx, left) != nil {
				return
			}
		}
		if gctx.Err() == nil {
			w.expired = true
		}
	})
}

// expiryDue reports whether the tenant's lifetime is over and nothing
// stands in the way of decommissioning it: no operation running, being
// written or waiting, and the tenant active or suspended (a tenant being
// decommissioned already is left to that decommission; one it restored
// expires after it, unless the restore ended the lifetime, as it does from
// revision 6 when the lifetime ended during the grace period), and no
// change of the lifetime being written.
func (w *tenant) expiryDue() bool {
	return w.expired && !w.expiring && !w.relifing && w.op == nil && w.claim == nil && w.next == nil &&
		(w.state == domain.StateActive || w.state == domain.StateSuspended)
}

// expire decommissions the tenant whose lifetime is over, with no grace
// period, as the system acting for whoever created it. The operation is
// written as a request's would be; meanwhile requests are refused as
// during any other operation being written. Its id is derived from the
// workflow id, so a run that finds it written (after a reset, or a lost
// write) acts on that row: it runs one still running and leaves one that
// ended. Once begun or found ended, the lifetime is over for good, in
// this run and the next: an operator who calls the decommission off keeps
// the tenant, with no lifetime.
func (w *tenant) expire(ctx workflow.Context) {
	w.expiring = true
	e := w.p.Expiry
	var opID string
	if w.rev.derivedExpiry() {
		opID = domain.DerivedID(domain.PrefixOperation, workflow.GetInfo(ctx).WorkflowExecution.ID, updateIDExpiry)
	} else {
		_ = workflow.SideEffect(ctx, func(workflow.Context) any { return domain.NewID(domain.PrefixOperation) }).Get(&opID)
	}
	creator := e.For
	req := activities.Request{Actor: domain.Actor{Type: "system", ID: "expiry", OnBehalfOf: &creator}, UserID: e.UserID,
		RequestID: "expiry/" + workflow.GetInfo(ctx).WorkflowExecution.ID}
	r := TransitionRequest{Kind: domain.OpDecommission, OperationID: opID, Request: req}
	res, err := w.claimAndBegin(ctx, r, updateIDExpiry)
	if err != nil {
		w.log.Warn("the expired tenant's decommission was refused", "error", err.Error())
		return
	}
	if w.rev.derivedExpiry() {
		if res.Replayed {
			w.log.Info("tenant lifetime over: its decommission ended in an earlier run", "operation_id", res.Operation.ID)
			return
		}
		opID = res.Operation.ID
	}
	w.log.Info("tenant lifetime over: decommissioning", "operation_id", opID)
	w.begin(opID, domain.OpDecommission, req)
	w.op.immediate = true
	w.searchAttributes(ctx)
	w.runDecommission(ctx, domain.MustTransition(domain.OpDecommission))
}

// refuseCancellation notes a cancellation request and goes on: the saga
// keeps every promise it made (docs/runbook.md says what to do instead).
func (w *tenant) refuseCancellation(root, ctx workflow.Context) {
	workflow.Go(ctx, func(gctx workflow.Context) {
		root.Done().Receive(gctx, nil)
		w.cancelRequested = true
		w.log.Warn("cancellation of a tenant workflow refused: the saga goes on; use the API or an operator's repair")
	})
	// Version 1 took repairs as signals. One sent now is dropped, never
	// kept for a later step.
	for _, name := range []string{legacySignalRetry, legacySignalCompensate, legacySignalCancel} {
		ch := workflow.GetSignalChannel(ctx, name)
		workflow.Go(ctx, func(gctx workflow.Context) {
			for {
				ch.Receive(gctx, nil)
				w.log.Warn("signal dropped: repairs are updates that name the stuck operation and step", "signal", name)
			}
		})
	}
}
