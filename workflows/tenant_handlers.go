package workflows

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/operator"
)

func (w *tenant) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return w.status(), nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateProvision, w.handleProvision, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, r ProvisionRequest) error {
			if w.reserving || w.reserved || w.rejection != nil {
				return conflict("tenant already created")
			}
			return nil
		},
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateTransition, w.handleTransition, workflow.UpdateHandlerOptions{
		Validator: w.validateTransition,
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateLifetime, w.handleLifetime, workflow.UpdateHandlerOptions{
		Validator: w.validateLifetime,
	}); err != nil {
		return err
	}
	for _, r := range Repairs {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, string(r), w.handleRepair(r), workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, req RepairRequest) error {
				// Who sent it first: a caller no certificate proved learns
				// nothing of the saga's state.
				if _, err := operator.Verified(ctx, string(r)); err != nil {
					return temporal.NewApplicationError(err.Error(), string(domain.CodeForbidden))
				}
				return w.canRepair(r, req)
			},
		}); err != nil {
			return err
		}
	}
	return nil
}

func conflict(format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), string(domain.CodeConflict))
}

func appError(err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return temporal.NewApplicationError(de.Message, string(de.Code))
	}
	return err
}

// handleProvision writes the tenant (name and quota checked in the same
// transaction) and answers the creator with it. Only a refusal ends the
// creation; an infrastructure failure is retried until it passes.
func (w *tenant) handleProvision(ctx workflow.Context, r ProvisionRequest) (activities.OperationResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	w.reserving = true
	defer func() { w.reserving = false }()
	r.OperationID = w.operationID(ctx, r.OperationID)
	var res activities.OperationResult
	var a *activities.Activities
	err := w.write(ctx, a.ReserveTenant, activities.ReserveInput{
		Tenant: activities.NewTenant{ID: w.p.TenantID, OrgID: w.p.OrgID, Name: w.p.Name, Environment: w.p.Environment,
			Hostname: w.p.Hostname, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, ExpiresAt: w.p.expiresAt(),
			LifetimeSeconds: w.p.lifetimeSeconds(), Region: w.p.Region},
		OperationID: r.OperationID, Steps: domain.StepNames(w.rev.steps(domain.MustTransition(domain.OpProvision).StepsFrom(""))), Request: r.Request,
	}, &res)
	if err != nil {
		rej := &Rejection{Code: domain.CodeInternal, Message: err.Error(), Name: w.p.Name, Environment: w.p.Environment}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			rej.Code, rej.Message = domain.Code(appErr.Type()), appErr.Message()
		}
		w.rejection = rej
		w.log.Info("tenant creation refused", "reason", rej.Message)
		return res, err
	}
	// The operation Postgres holds is the one to run (written by this
	// request, or by an attempt of it whose answer was lost).
	r.OperationID = res.Operation.ID
	w.provision, w.reserved = r, true
	return res, nil
}

// validateTransition refuses, before anything is written, a transition the
// tenant's state does not allow or one requested while another runs.
func (w *tenant) validateTransition(ctx workflow.Context, r TransitionRequest) error {
	if err := actsAsItsOperator(ctx, UpdateTransition, r.Request.Actor); err != nil {
		return err
	}
	if !w.reserved {
		return temporal.NewApplicationError("tenant not found", string(domain.CodeNotFound))
	}
	if _, ok := w.answered[workflow.GetCurrentUpdateInfo(ctx).ID]; ok {
		return nil
	}
	if t, ok := domain.TransitionOf(r.Kind); !ok || t.Path == "" {
		return temporal.NewApplicationError(fmt.Sprintf("unknown transition %q", r.Kind), string(domain.CodeBadRequest))
	}
	return w.canAccept(r.Kind)
}

// canAccept reports whether a transition of the kind may begin now. An
// operation whose final record is being written no longer blocks one: the
// tenant is then in that record's state.
func (w *tenant) canAccept(kind domain.OpKind) error {
	if callsOff(kind) {
		return w.canRestore()
	}
	for _, r := range []*TransitionRequest{w.claim, w.next} {
		if r != nil {
			return conflict("operation %s (%s) is running on this tenant", r.OperationID, r.Kind)
		}
	}
	state := w.state
	if op := w.op; op != nil {
		if !op.finishing {
			return conflict("operation %s (%s) is running on this tenant", op.id, op.kind)
		}
		state = op.final
	}
	return appError(domain.CanStart(kind, state))
}

// callsOff reports whether a transition of the kind calls off the running
// operation (a restore calls off a decommission) instead of waiting its
// turn.
func callsOff(kind domain.OpKind) bool {
	t, _ := domain.TransitionOf(kind)
	return t.During != ""
}

// canRestore reports whether a restore may win now: from the moment a
// decommission runs until it starts destroying.
func (w *tenant) canRestore() error {
	op := w.op
	switch {
	case op == nil || op.kind != domain.OpDecommission || op.finishing:
		return conflict("cannot restore a tenant that is %s (only during a decommission's grace period)", w.state)
	case op.immediate:
		return conflict("an ephemeral tenant's end has no grace period: it cannot be restored")
	case op.phase == PhaseDestroying:
		return conflict("the grace period is over: the tenant's resources are being destroyed")
	case op.phase == PhaseCompensating:
		return conflict("the decommission is being called off")
	case op.restore != nil:
		return conflict("a restore of this tenant is already under way")
	}
	return nil
}

// handleTransition writes the operation and hands it to the main loop.
func (w *tenant) handleTransition(ctx workflow.Context, r TransitionRequest) (activities.OperationResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	id := workflow.GetCurrentUpdateInfo(ctx).ID
	if a, ok := w.answered[id]; ok {
		return w.answerAgain(ctx, a)
	}
	if callsOff(r.Kind) {
		return w.handleRestore(ctx, r, id)
	}
	// An operation that is finishing is gone in a moment.
	_ = workflow.Await(ctx, func() bool { return w.op == nil || !w.op.finishing })
	if err := w.canAccept(r.Kind); err != nil {
		return activities.OperationResult{}, err
	}
	// Hand the operation to the main loop only once it is written. The
	// row Postgres holds for this update is the one to run: written now,
	// or by an attempt whose update Temporal lost (then it is running and
	// this run never answered it). One that ended is only answered.
	r.OperationID = w.operationID(ctx, r.OperationID)
	res, err := w.claimAndBegin(ctx, r, id)
	if err != nil {
		return res, err
	}
	w.answered[id] = Answered{OperationID: res.Operation.ID, RequestID: res.RequestID, At: workflow.Now(ctx)}
	if !res.Replayed {
		r.OperationID = res.Operation.ID
		w.next = &r
	}
	return res, nil
}

// claimAndBegin writes the operation of a transition. The slot is claimed
// before the write yields, so a request arriving meanwhile sees it and is
// refused.
func (w *tenant) claimAndBegin(ctx workflow.Context, r TransitionRequest, updateID string) (activities.OperationResult, error) {
	w.claim = &r
	defer func() { w.claim = nil }()
	var res activities.OperationResult
	var a *activities.Activities
	err := w.write(ctx, a.BeginOperation, activities.BeginInput{
		TenantID: w.p.TenantID, OrgID: w.p.OrgID, OperationID: r.OperationID, Kind: r.Kind,
		Steps: domain.StepNames(w.rev.steps(domain.MustTransition(r.Kind).StepsFrom(w.state))), UpdateID: updateID, Request: r.Request,
	}, &res)
	return res, err
}

// operationID is the id of the operation the current update begins: the
// one its request carries (an API of an earlier release minted one), or
// else derived from the workflow id and the update id, which every attempt
// of the request carries, so an attempt finds what an earlier one wrote.
func (w *tenant) operationID(ctx workflow.Context, given string) string {
	if given != "" {
		return given
	}
	return domain.DerivedID(domain.PrefixOperation, workflow.GetInfo(ctx).WorkflowExecution.ID, workflow.GetCurrentUpdateInfo(ctx).ID)
}

// answerAgain answers a transition update that an earlier run answered.
func (w *tenant) answerAgain(ctx workflow.Context, a Answered) (activities.OperationResult, error) {
	var res activities.OperationResult
	var act *activities.Activities
	err := w.write(ctx, act.LoadOperation,
		activities.LoadInput{TenantID: w.p.TenantID, OperationID: a.OperationID, RequestID: a.RequestID}, &res)
	return res, err
}

// handleRestore is restore's one commit point: the claim is set in the same
// step as the check, before anything yields, so either the restore wins and
// destruction cannot begin, or destruction has begun and the restore is
// refused before anything is written.
func (w *tenant) handleRestore(ctx workflow.Context, r TransitionRequest, id string) (activities.OperationResult, error) {
	if err := w.canRestore(); err != nil {
		return activities.OperationResult{}, err
	}
	op := w.op
	claim := &restoreClaim{req: &r}
	op.restore = claim
	var res activities.OperationResult
	var a *activities.Activities
	err := w.write(ctx, a.BeginOperation, activities.BeginInput{
		TenantID: w.p.TenantID, OrgID: w.p.OrgID, OperationID: r.OperationID, Kind: r.Kind, UpdateID: id, Request: r.Request,
	}, &res)
	if err != nil {
		if op.restore == claim {
			op.restore = nil
		}
		return res, err
	}
	claim.written = true
	w.answered[id] = Answered{OperationID: res.Operation.ID, RequestID: res.RequestID, At: workflow.Now(ctx)}
	return res, nil
}

// canRepair reports whether an operator's repair applies now: the saga is
// stuck on the operation and step it names and accepts that repair there,
// or (cancel) a decommission waits out its grace period.
func (w *tenant) canRepair(r Repair, req RepairRequest) error {
	op := w.op
	if op == nil {
		return conflict("nothing is stuck on this tenant: no operation runs")
	}
	if req.OperationID != op.id {
		return conflict("operation %q is not the running one: %s (%s) runs", req.OperationID, op.id, op.kind)
	}
	if r == RepairCancel && op.kind == domain.OpDecommission && op.phase == PhaseGracePeriod && op.restore == nil && !op.finishing {
		if req.Step != domain.StepGracePeriod {
			return conflict("operation %s waits out its grace period: name step %q", op.id, domain.StepGracePeriod)
		}
		return nil
	}
	if !op.stuck || op.repair != nil {
		return conflict("nothing is stuck on this tenant: operation %s is at step %s", op.id, op.step)
	}
	if req.Step != string(op.step) {
		return conflict("operation %s is stuck on step %s, not %q", op.id, op.step, req.Step)
	}
	if !slices.Contains(op.repairs, r) {
		return conflict("%s does not apply to step %s of operation %s; it takes %v", r, op.step, op.id, op.repairs)
	}
	return nil
}

// handleRepair hands a validated repair to the stuck step (or calls off a
// decommission in its grace period). It checks again, so of two repairs
// sent together only one is taken.
func (w *tenant) handleRepair(r Repair) func(workflow.Context, RepairRequest) (RepairResult, error) {
	return func(ctx workflow.Context, req RepairRequest) (RepairResult, error) {
		if err := w.canRepair(r, req); err != nil {
			return RepairResult{}, err
		}
		// The operator the gateway verified; a repair accepted before
		// repairs needed one (its history has no assertion) named its own.
		who := operator.Named(ctx)
		if who == "" {
			who = req.Operator
		}
		op := w.op
		res := RepairResult{Repair: r, OperationID: op.id, Step: string(op.step), Operator: who}
		if op.phase == PhaseGracePeriod {
			op.restore = &restoreClaim{operator: who, written: true}
			res.Step = domain.StepGracePeriod
		} else {
			op.repair = &takenRepair{repair: r, operator: who}
		}
		w.log.Info("operator repair taken", "repair", string(r), "operator", who, "operation_id", op.id, "step", res.Step)
		return res, nil
	}
}

// actsAsItsOperator refuses an update the operator gateway forwarded (it
// carries an operator's assertion) unless it acts as that operator: an
// operator sending the API's own updates by hand (a wedged operation in
// docs/runbook.md) cannot put a member's name on them. Updates the API
// sends carry none.
func actsAsItsOperator(ctx workflow.Context, what string, actor domain.Actor) error {
	if operator.Named(ctx) == "" {
		return nil
	}
	name, err := operator.Verified(ctx, what)
	if err != nil {
		return temporal.NewApplicationError(err.Error(), string(domain.CodeForbidden))
	}
	if actor.Type != "operator" || actor.ID != name || actor.OnBehalfOf != nil {
		return temporal.NewApplicationError(fmt.Sprintf(`an operator's update acts as the operator: "Actor": {"Type": "operator", "ID": %q}`, name), string(domain.CodeForbidden))
	}
	return nil
}
