package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// The sagas of version 1 (tenant_v1.go), frozen with it.

// step runs one data-plane step with bounded retries. When they are spent,
// the saga is stuck: it says so (status, event, search attribute) and waits
// for an operator's retry, compensate or, where allowed, cancel.
func (w *legacyTenant) step(ctx workflow.Context, opID, name string, req activities.Request, cancellable bool) error {
	var a *activities.Activities
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    5 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2,
			MaximumInterval: 10 * time.Second, MaximumAttempts: int32(w.p.StepMaxAttempts)},
	})
	for {
		err := workflow.ExecuteActivity(actx, a.RunStep, activities.StepInput{OperationID: opID, Tenant: w.ref, Step: name}).Get(ctx, nil)
		if err == nil {
			return nil
		}
		w.saga = SagaStuck
		w.record(ctx, activities.RecordInput{OperationID: opID, Status: domain.OpStuck, Action: "tenant.saga_stuck", Request: req,
			Data: map[string]any{"step": name, "error": rootCause(err), "attempts": w.p.StepMaxAttempts}})
		// The status query names the stuck step once the operation says so.
		w.stuck = name
		signal, operator := w.awaitOperator(ctx, cancellable)
		w.saga, w.stuck = SagaRunning, ""
		w.record(ctx, activities.RecordInput{OperationID: opID, Status: domain.OpRunning, Action: "tenant.saga_resolved", Request: req,
			Operator: operator, Data: map[string]any{"step": name, "signal": signal}})
		switch signal {
		case legacySignalCompensate:
			return errLegacyCompensate
		case legacySignalCancel:
			return errLegacyCancel
		}
	}
}

// legacyOperatorSignal is the optional payload of version 1's operator
// signals: who sends it, for the audit trail.
type legacyOperatorSignal struct {
	Operator string `json:"operator"`
}

func (w *legacyTenant) awaitOperator(ctx workflow.Context, cancellable bool) (string, string) {
	var got, operator string
	sel := workflow.NewSelector(ctx)
	names := []string{legacySignalRetry, legacySignalCompensate}
	if cancellable {
		names = append(names, legacySignalCancel)
	}
	for _, name := range names {
		ch := workflow.GetSignalChannel(ctx, name)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var s legacyOperatorSignal
			c.Receive(ctx, &s)
			got, operator = name, s.Operator
		})
	}
	sel.Select(ctx)
	if operator == "" {
		operator = "unknown-operator"
	}
	return got, operator
}

// provisionSaga creates the tenant's resources in order; on failure it
// compensates the completed steps in reverse, in a disconnected context, and
// the tenant ends failed with nothing left behind.
func (w *legacyTenant) provisionSaga(ctx workflow.Context) {
	opID, req := w.provision.OperationID, w.provision.Request
	var done []string
	var failure error
	for _, s := range legacyProvisionSteps {
		if err := w.step(ctx, opID, s, req, false); err != nil {
			failure = err
			break
		}
		done = append(done, s)
	}
	if failure == nil {
		w.saga = SagaIdle
		w.record(ctx, activities.RecordInput{OperationID: opID, Status: domain.OpSucceeded, State: domain.StateActive, Action: "tenant.provisioned", Request: req})
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	for i := len(done) - 1; i >= 0; i-- {
		// A compensation that keeps failing is stuck like any step; it
		// cannot be skipped, or a resource would be orphaned.
		for w.step(dctx, opID, legacyCompensationOf[done[i]], req, false) != nil {
		}
	}
	w.saga = SagaDone
	w.record(ctx, activities.RecordInput{OperationID: opID, Status: domain.OpCompensated, State: domain.StateFailed, Action: "tenant.provisioning_failed", Request: req,
		Data: map[string]any{"compensated": done}})
}

// run carries out one requested transition.
func (w *legacyTenant) run(ctx workflow.Context, r TransitionRequest) {
	w.saga = SagaRunning
	w.searchAttributes(ctx)
	switch r.Kind {
	case domain.OpSuspend:
		w.simple(ctx, r, "suspend_route", domain.StateSuspended, "tenant.suspended")
	case domain.OpResume:
		w.simple(ctx, r, "resume_route", domain.StateActive, "tenant.resumed")
	case domain.OpDecommission:
		w.decommission(ctx, r)
	}
}

// simple runs a one-step transition; compensating it leaves the tenant as
// it was.
func (w *legacyTenant) simple(ctx workflow.Context, r TransitionRequest, step string, to domain.State, action string) {
	if err := w.step(ctx, r.OperationID, step, r.Request, false); err != nil {
		w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpCompensated, Action: "tenant." + string(r.Kind) + "_failed", Request: r.Request})
		return
	}
	w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpSucceeded, State: to, Action: action, Request: r.Request})
}

// decommission suspends the tenant's traffic, waits out the grace period
// (a durable timer) unless the tenant is restored, then destroys its
// resources for good.
func (w *legacyTenant) decommission(ctx workflow.Context, r TransitionRequest) {
	from := w.state
	if from == domain.StateActive {
		if err := w.step(ctx, r.OperationID, "suspend_route", r.Request, true); err != nil {
			w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpCancelled, Action: "tenant.decommission_cancelled", Request: r.Request})
			return
		}
	}
	w.record(ctx, activities.RecordInput{OperationID: r.OperationID, State: domain.StateDecommissioning, Action: "tenant.decommissioning", Request: r.Request,
		Data: map[string]any{"grace_period": w.p.DecommissionGrace.String()}})

	w.inGrace = true
	timer := workflow.NewTimer(ctx, w.p.DecommissionGrace)
	restored, operator := false, ""
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(timer, func(workflow.Future) {})
	sel.AddReceive(workflow.GetSignalChannel(ctx, legacySignalCancel), func(c workflow.ReceiveChannel, _ bool) {
		var s legacyOperatorSignal
		c.Receive(ctx, &s)
		restored, operator = true, s.Operator
		if operator == "" {
			operator = "unknown-operator"
		}
	})
	restoreAsked := workflow.NewChannel(ctx)
	workflow.Go(ctx, func(ctx workflow.Context) {
		_ = workflow.Await(ctx, func() bool { return w.restore != nil })
		restoreAsked.Send(ctx, true)
	})
	sel.AddReceive(restoreAsked, func(c workflow.ReceiveChannel, _ bool) {
		c.Receive(ctx, nil)
		restored = true
	})
	sel.Select(ctx)
	w.inGrace = false
	if restored {
		w.restoreTenant(ctx, r, operator)
		return
	}

	w.destroying = true
	for _, s := range legacyDecommissionSteps {
		// Once destruction began nothing can be brought back, so a
		// compensate signal leaves the saga stuck on the step until an
		// operator retries it.
		for w.step(ctx, r.OperationID, s, r.Request, false) != nil {
		}
	}
	w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpSucceeded, State: domain.StateDecommissioned, Action: "tenant.decommissioned", Request: r.Request})
}

// restoreTenant ends a decommission in its grace period: the tenant is
// suspended again, with all its resources. A restore is not an operation of
// its own: it cancels the decommission operation.
func (w *legacyTenant) restoreTenant(ctx workflow.Context, decom TransitionRequest, operator string) {
	req := decom.Request
	if w.restore != nil {
		req = w.restore.Request
	}
	w.record(ctx, activities.RecordInput{OperationID: decom.OperationID, Status: domain.OpCancelled, State: domain.StateSuspended,
		Action: "tenant.restored", Operator: operator, Request: req})
	w.restore, w.restoreClaimed = nil, false
}
