package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// This file is the first version of the tenant workflow, frozen: runs that
// started under it replay through it (workflows/testdata/v1-*.json) and
// move to the current version at their next idle moment, by continuing as
// new. Do not change what it does; see docs/architecture.md, Versioning.

// The operator signals of version 1; the current version takes repairs as
// validated updates and drops these signals.
const (
	legacySignalRetry      = "retry"
	legacySignalCompensate = "compensate"
	legacySignalCancel     = "cancel"
)

var (
	legacyProvisionSteps    = []string{"schema", "keys", "route"}
	legacyCompensationOf    = map[string]string{"schema": "drop_schema", "keys": "delete_keys", "route": "delete_route"}
	legacyDecommissionSteps = []string{"delete_route", "delete_keys", "drop_schema"}
)

// legacyStatus is what version 1's status query answers.
type legacyStatus struct {
	State       domain.State
	OperationID string
	Saga        string
	StuckStep   string
}

type legacyTenant struct {
	p     TenantParams
	ref   activities.TenantRef
	state domain.State
	saga  string
	stuck string

	reserved  bool
	rejected  bool
	provision ProvisionRequest

	// current is the running operation (nil: none); next is the transition
	// the update handler accepted and the main loop has not started;
	// claimed is one an update handler is writing, which blocks others.
	current        *TransitionRequest
	next           *TransitionRequest
	claimed        *TransitionRequest
	restore        *TransitionRequest
	restoreClaimed bool
	inGrace        bool
	destroying     bool
}

var errLegacyCompensate = errors.New("operator asked to compensate")
var errLegacyCancel = errors.New("operator asked to cancel")

// legacyTenantWorkflow is a tenant's lifecycle: the provisioning saga, then each
// requested transition in turn, until the tenant is decommissioned or its
// provisioning failed.
func legacyTenantWorkflow(ctx workflow.Context, p TenantParams) error {
	if p.StepMaxAttempts < 1 {
		p.StepMaxAttempts = 5
	}
	if p.ReservationTimeout == 0 {
		p.ReservationTimeout = 10 * time.Minute
	}
	if p.MaxOperationsPerRun == 0 {
		p.MaxOperationsPerRun = 100
	}
	w := &legacyTenant{p: p, state: domain.StateProvisioning, saga: SagaRunning,
		ref: activities.TenantRef{TenantID: p.TenantID, OrgID: p.OrgID, Hostname: p.Hostname}}
	if err := w.register(ctx); err != nil {
		return err
	}
	w.searchAttributes(ctx)

	if p.Continued != nil {
		w.state, w.reserved, w.saga = p.Continued.State, true, SagaIdle
		w.searchAttributes(ctx)
	} else {
		if ok, err := workflow.AwaitWithTimeout(ctx, p.ReservationTimeout, func() bool { return w.reserved || w.rejected }); err != nil || !ok || w.rejected {
			return err
		}
		w.provisionSaga(ctx)
	}
	for ops := 0; w.state != domain.StateFailed && w.state != domain.StateDecommissioned; ops++ {
		if ops >= p.MaxOperationsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return w.continueAsNew(ctx)
		}
		// A run of this version moves to the current one the first time its
		// loop comes round after the upgrade (one change id per iteration,
		// so iterations already in the history replay unchanged).
		if workflow.GetVersion(ctx, fmt.Sprintf("v1-upgrade-%d", ops), workflow.DefaultVersion, 1) == 1 {
			return w.continueAsNew(ctx)
		}
		if err := workflow.Await(ctx, func() bool { return w.next != nil }); err != nil {
			return err
		}
		w.current, w.next = w.next, nil
		w.run(ctx, *w.current)
		w.current = nil
		w.saga = SagaIdle
		w.searchAttributes(ctx)
	}
	w.saga = SagaDone
	w.searchAttributes(ctx)
	// Let update handlers that are finishing reply before the run ends.
	return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
}

// continueAsNew starts a fresh run with the tenant's state, once no update
// is being handled, so a long-lived tenant's history stays short.
func (w *legacyTenant) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && w.next == nil && w.claimed == nil }); err != nil {
		return err
	}
	p := w.p
	p.Continued = &Continued{State: w.state}
	return workflow.NewContinueAsNewError(ctx, TenantWorkflow, p)
}

func (w *legacyTenant) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (legacyStatus, error) {
		s := legacyStatus{State: w.state, Saga: w.saga, StuckStep: w.stuck}
		if w.current != nil {
			s.OperationID = w.current.OperationID
		}
		return s, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateProvision, w.handleProvision, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, r ProvisionRequest) error {
			if w.reserved || w.rejected {
				return temporal.NewApplicationError("tenant already created", string(domain.CodeConflict))
			}
			return nil
		},
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateTransition, w.handleTransition, workflow.UpdateHandlerOptions{
		Validator: w.validateTransition,
	})
}

// handleProvision writes the tenant (name and quota checked in the same
// transaction) and answers the creator with it.
func (w *legacyTenant) handleProvision(ctx workflow.Context, r ProvisionRequest) (activities.OperationResult, error) {
	var res activities.OperationResult
	var a *activities.Activities
	err := workflow.ExecuteActivity(legacyShortActivity(ctx), a.ReserveTenant, activities.ReserveInput{
		Tenant: activities.NewTenant{ID: w.p.TenantID, OrgID: w.p.OrgID, Name: w.p.Name, Environment: w.p.Environment,
			Hostname: w.p.Hostname, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID},
		OperationID: r.OperationID, Steps: legacyProvisionSteps, Request: r.Request,
	}).Get(ctx, &res)
	if err != nil {
		w.rejected = true
		return res, err
	}
	w.provision, w.reserved = r, true
	return res, nil
}

// validateTransition refuses, before anything is written, a transition the
// tenant's state does not allow or one requested while another runs.
func (w *legacyTenant) validateTransition(ctx workflow.Context, r TransitionRequest) error {
	if !w.reserved {
		return temporal.NewApplicationError("tenant not found", string(domain.CodeNotFound))
	}
	if r.Kind == domain.OpRestore {
		// Allowed from the moment a decommission runs until it starts
		// destroying: the decommission sees the restore when its grace
		// period begins.
		decommissioning := w.current != nil && w.current.Kind == domain.OpDecommission
		switch {
		case decommissioning && w.destroying:
			return temporal.NewApplicationError("the grace period is over: the tenant's resources are being destroyed", string(domain.CodeConflict))
		case decommissioning && w.restoreClaimed:
			return temporal.NewApplicationError("a restore of this tenant is already under way", string(domain.CodeConflict))
		case decommissioning:
			return nil
		}
		return temporal.NewApplicationError(fmt.Sprintf("cannot restore a tenant that is %s (only during a decommission's grace period)", w.state), string(domain.CodeConflict))
	}
	if busy := w.busy(); busy != nil {
		return temporal.NewApplicationError(fmt.Sprintf("operation %s (%s) is running on this tenant", busy.OperationID, busy.Kind), string(domain.CodeConflict))
	}
	if w.state == domain.StateProvisioning {
		return temporal.NewApplicationError(fmt.Sprintf("operation %s (provision) is running on this tenant", w.provision.OperationID), string(domain.CodeConflict))
	}
	return appError(domain.CanStart(r.Kind, w.state))
}

func (w *legacyTenant) busy() *TransitionRequest {
	for _, r := range []*TransitionRequest{w.current, w.next, w.claimed} {
		if r != nil {
			return r
		}
	}
	return nil
}

// handleTransition writes the operation and hands it to the main loop.
func (w *legacyTenant) handleTransition(ctx workflow.Context, r TransitionRequest) (activities.OperationResult, error) {
	var res activities.OperationResult
	var a *activities.Activities
	steps := map[domain.OpKind][]string{domain.OpSuspend: {"suspend_route"}, domain.OpResume: {"resume_route"}, domain.OpDecommission: legacyDecommissionSteps}[r.Kind]
	// Claim the slot before the activity yields, so a second update
	// validated meanwhile sees it; hand the operation to the main loop only
	// once it is written.
	restore := r.Kind == domain.OpRestore
	if restore {
		w.restoreClaimed = true
	} else {
		w.claimed = &r
	}
	err := workflow.ExecuteActivity(legacyShortActivity(ctx), a.BeginOperation, activities.BeginInput{
		TenantID: w.p.TenantID, OrgID: w.p.OrgID, OperationID: r.OperationID, Kind: r.Kind, Steps: steps,
		UpdateID: workflow.GetCurrentUpdateInfo(ctx).ID, Request: r.Request,
	}).Get(ctx, &res)
	switch {
	case restore && err != nil:
		w.restoreClaimed = false
	case restore:
		w.restore = &r
	case err == nil:
		w.next = &r
		w.claimed = nil
	default:
		w.claimed = nil
	}
	return res, err
}

func legacyShortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: 200 * time.Millisecond},
	})
}

// record applies a state or status change with its audit event; it retries
// until it succeeds, since the saga cannot go on without it.
func (w *legacyTenant) record(ctx workflow.Context, in activities.RecordInput) {
	var a *activities.Activities
	in.TenantID = w.p.TenantID
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
	_ = workflow.ExecuteActivity(actx, a.Record, in).Get(ctx, nil)
	if in.State != "" {
		w.state = in.State
	}
	w.searchAttributes(ctx)
}

func (w *legacyTenant) searchAttributes(ctx workflow.Context) {
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrOrgID.ValueSet(w.p.OrgID),
		SearchAttrTenantID.ValueSet(w.p.TenantID),
		SearchAttrTenantState.ValueSet(string(w.state)),
		SearchAttrSagaStatus.ValueSet(w.saga),
	)
}

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
