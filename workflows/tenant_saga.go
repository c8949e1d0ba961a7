package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// step runs one data-plane step with bounded retries. When they are spent,
// the saga is stuck: it says so (status, event, search attribute) and waits
// for an operator's repair among those allowed. It returns the repair that
// ended the step instead of success (nil: the step succeeded).
func (w *tenant) step(ctx workflow.Context, s domain.Step, allowed ...Repair) *takenRepair {
	var a *activities.Activities
	op := w.op
	op.step = s
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: StepTimeout,
		HeartbeatTimeout:    StepHeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 2,
			MaximumInterval: 10 * time.Second, MaximumAttempts: int32(w.p.StepMaxAttempts)},
	})
	in := activities.StepInput{OperationID: op.id, Tenant: w.ref, Step: string(s)}
	for {
		var err error
		if w.rev.inRegion(w.p) {
			err = w.regionStep(ctx, actx, in)
		} else {
			err = workflow.ExecuteActivity(actx, a.RunStep, in).Get(ctx, nil)
		}
		if err == nil {
			return nil
		}
		w.saga = SagaStuck
		w.record(ctx, activities.RecordInput{OperationID: op.id, Status: domain.OpStuck, Action: "tenant.saga_stuck", Request: op.req,
			Data: map[string]any{"step": string(s), "error": publicError(err), "attempts": w.p.StepMaxAttempts}})
		// Repairs are accepted once the operation says it is stuck.
		w.log.Warn("saga stuck", "operation_id", op.id, "step", string(s), "error", rootCause(err))
		taken := awaitRepair(ctx, op, allowed...)
		w.saga = SagaRunning
		w.record(ctx, activities.RecordInput{OperationID: op.id, Status: domain.OpRunning, Action: "tenant.saga_resolved", Request: op.req,
			Operator: taken.operator, Data: map[string]any{"step": string(s), "repair": string(taken.repair)}})
		if taken.repair != RepairRetry {
			return taken
		}
	}
}

// regionStep runs a data-plane step in the tenant's region: on the
// region's task queue, where only that region's workers (the only ones
// holding its data plane's credentials) take it. A region whose workers
// are all down holds the step queued, and the saga with it, until they
// return. The control plane's worker records the step's outcome, as
// RunStep does for the installation's own data plane; a failed attempt is
// recorded when the attempts are spent.
func (w *tenant) regionStep(ctx, actx workflow.Context, in activities.StepInput) error {
	var r *activities.Region
	var a *activities.Activities
	in.Region = w.p.Region
	rctx := workflow.WithTaskQueue(actx, RegionTaskQueue(workflow.GetInfo(ctx).TaskQueueName, w.p.Region))
	var attempt int
	err := workflow.ExecuteActivity(rctx, r.ApplyStep, in).Get(ctx, &attempt)
	rec := activities.StepOutcome{OperationID: in.OperationID, Step: in.Step, Status: "done", Attempt: attempt}
	if err != nil {
		rec.Status, rec.Attempt, rec.Error = "failed", w.p.StepMaxAttempts, publicError(err)
	}
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute}
	if werr := w.shortWrite(ctx, true, retry, a.RecordStep, rec, nil); werr != nil && err == nil {
		return werr
	}
	return err
}

// awaitRepair holds the operation stuck, accepting the repairs allowed,
// until an operator's repair is taken, and returns it.
func awaitRepair(ctx workflow.Context, op *operation, allowed ...Repair) *takenRepair {
	op.stuck, op.repairs = true, allowed
	_ = workflow.Await(ctx, func() bool { return op.repair != nil })
	taken := op.repair
	op.stuck, op.repairs, op.repair = false, nil, nil
	return taken
}

// publicError is the message a step's failure shows members: the one the
// activity chose, never its cause.
func publicError(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "the step did not finish in time"
	}
	return "the step failed"
}

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// compensate undoes the attempted steps in reverse, the one that failed
// included (it may have done part of its work). A compensation that keeps
// failing is stuck like any step and can only be retried: skipping it
// would orphan a resource.
func (w *tenant) compensate(ctx workflow.Context, attempted []domain.Step) []string {
	w.op.phase = PhaseCompensating
	var done []string
	for i := len(attempted) - 1; i >= 0; i-- {
		if c, ok := attempted[i].Compensation(); ok {
			w.step(ctx, c, RepairRetry)
			done = append(done, string(c))
		}
	}
	return done
}

// runProvision creates the tenant's resources in order; when an operator
// compensates a stuck step, it undoes every attempted step in reverse and
// the tenant ends failed with nothing left behind.
func (w *tenant) runProvision(ctx workflow.Context) {
	w.begin(w.provision.OperationID, domain.OpProvision, w.provision.Request)
	w.runSteps(ctx, domain.MustTransition(domain.OpProvision), "")
}

// run carries out one requested transition.
func (w *tenant) run(ctx workflow.Context, r TransitionRequest) {
	w.begin(r.OperationID, r.Kind, r.Request)
	w.searchAttributes(ctx)
	t := domain.MustTransition(r.Kind)
	if t.Events.Grace != "" {
		w.runDecommission(ctx, t)
		return
	}
	w.runSteps(ctx, t, w.state)
}

// runSteps runs a transition's steps from the state in order. When an
// operator compensates a stuck one, every attempted step is undone in
// reverse and the tenant is left in the transition's Failed state (or as
// it was).
func (w *tenant) runSteps(ctx workflow.Context, t domain.Transition, from domain.State) {
	var attempted []domain.Step
	for _, s := range w.rev.steps(t.StepsFrom(from)) {
		attempted = append(attempted, s)
		if w.step(ctx, s, RepairRetry, RepairCompensate) != nil {
			undone := w.compensate(ctx, attempted)
			if t.Failed.Ended() {
				w.saga = SagaDone
			}
			w.finish(ctx, activities.RecordInput{Status: domain.OpCompensated, State: t.Failed, Action: t.Events.Compensated,
				Data: map[string]any{"compensated": undone}})
			return
		}
	}
	w.finish(ctx, activities.RecordInput{Status: domain.OpSucceeded, State: t.To, Action: t.Events.Succeeded})
}

// runDecommission runs the steps an operator may still call off
// (suspending an active tenant's traffic), waits out the grace period (a
// durable timer) unless the tenant is restored, then runs the final steps,
// which destroy its resources for good.
func (w *tenant) runDecommission(ctx workflow.Context, t domain.Transition) {
	var attempted []domain.Step
	for _, s := range w.rev.steps(t.Steps[w.state]) {
		attempted = append(attempted, s)
		if taken := w.step(ctx, s, RepairRetry, RepairCompensate, RepairCancel); taken != nil {
			// Called off before the grace period: the tenant is as it was.
			w.compensate(ctx, attempted)
			in := activities.RecordInput{Status: domain.OpCompensated, Action: t.Events.Compensated}
			if taken.repair == RepairCancel {
				in = activities.RecordInput{Status: domain.OpCancelled, Action: t.Events.Cancelled, Operator: taken.operator}
			}
			// An ephemeral tenant's end called off: it lives on, with no
			// lifetime (the next run does not set its timer again).
			in.EndLifetime = w.op.immediate && w.rev.derivedExpiry()
			w.finish(ctx, in)
			return
		}
	}
	// When the grace period ends, as the operation shows it (status query
	// and API alike, to the microsecond Postgres keeps). The timer starts
	// once this record is written, a moment later, so destruction never
	// begins before this time.
	grace := w.p.DecommissionGrace
	if w.op.immediate {
		grace = 0
	}
	ends := workflow.Now(ctx).Add(grace).Truncate(time.Microsecond)
	w.op.graceEndsAt = ends
	w.record(ctx, activities.RecordInput{OperationID: w.op.id, State: domain.StateDecommissioning, Action: t.Events.Grace, Request: w.op.req,
		Data: map[string]any{"grace_period": grace.String()}, GraceEndsAt: &ends})
	if w.op.immediate {
		w.op.phase = PhaseDestroying
	} else if claim := w.awaitGrace(ctx); claim != nil {
		restore := domain.MustTransition(domain.OpRestore)
		in := activities.RecordInput{Status: domain.OpCancelled, State: restore.To, Action: t.Events.Restored, Operator: claim.operator}
		if claim.req != nil {
			in.Request = claim.req.Request
		}
		// A restore keeps the tenant: one whose lifetime ended meanwhile
		// lives on without one, instead of ending a moment later.
		ended := w.expired && w.rev.restoreEndsAnEndedLifetime()
		in.EndLifetime = ended
		w.finish(ctx, in)
		if ended {
			w.p.Expiry, w.expired = nil, false
		}
		return
	}
	for _, s := range w.rev.steps(t.Final) {
		// Once destruction began nothing can be brought back: a step
		// that keeps failing can only be retried.
		w.step(ctx, s, RepairRetry)
	}
	w.finish(ctx, activities.RecordInput{Status: domain.OpSucceeded, State: t.To, Action: t.Events.Succeeded})
}

// awaitGrace waits out the grace period and returns the restore that won
// it, or nil once destruction may begin. The decision is made in one step
// with no yield: either a restore claim exists (and the timer is
// cancelled), or the phase becomes destroying and restores are refused.
func (w *tenant) awaitGrace(ctx workflow.Context) *restoreClaim {
	op := w.op
	op.phase, op.step = PhaseGracePeriod, ""
	tctx, cancelTimer := workflow.WithCancel(ctx)
	timer := workflow.NewTimer(tctx, w.p.DecommissionGrace)
	for {
		_ = workflow.Await(ctx, func() bool { return timer.IsReady() || op.restore != nil })
		if op.restore == nil {
			op.phase = PhaseDestroying
			return nil
		}
		// A restore is being written: it wins unless its write is refused.
		_ = workflow.Await(ctx, func() bool { return op.restore == nil || op.restore.written })
		if claim := op.restore; claim != nil {
			cancelTimer()
			return claim
		}
	}
}
