package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Names of the tenant workflow's updates, signals and query. Signals are
// plain words so an operator can type them:
//
//	temporal workflow signal --workflow-id <id> --name retry
const (
	UpdateProvision  = "provision"
	UpdateTransition = "transition"
	SignalRetry      = "retry"
	SignalCompensate = "compensate"
	SignalCancel     = "cancel"
	QueryStatus      = "status"
)

// Saga statuses, kept in the SagaStatus search attribute.
const (
	SagaRunning = "running"
	SagaStuck   = "stuck"
	SagaIdle    = "idle"
	SagaDone    = "done"
)

// The steps of each operation, in order; compensations of provisioning run
// in reverse.
var (
	ProvisionSteps    = []string{"schema", "keys", "route"}
	compensationOf    = map[string]string{"schema": "drop_schema", "keys": "delete_keys", "route": "delete_route"}
	DecommissionSteps = []string{"delete_route", "delete_keys", "drop_schema"}
)

// TenantParams starts a tenant's workflow: one workflow per tenant, for its
// whole life (docs/architecture.md says why).
type TenantParams struct {
	TenantID          string
	OrgID             string
	Name              string
	Environment       string
	Hostname          string
	StepMaxAttempts   int
	DecommissionGrace time.Duration
	// ReservationTimeout ends a workflow whose provision update never
	// arrives (its caller gave up before any worker took it).
	ReservationTimeout time.Duration
	// MaxOperationsPerRun bounds the history of one run: after that many
	// operations (or when Temporal suggests it) the workflow continues as
	// new, carrying Continued.
	MaxOperationsPerRun int
	Continued           *Continued
}

// Continued is the state a run hands to the next one.
type Continued struct {
	State domain.State
}

// ProvisionRequest is the provision update: the human who creates the
// tenant and the operation id to use.
type ProvisionRequest struct {
	OperationID string
	Request     activities.Request
}

// TransitionRequest is the transition update.
type TransitionRequest struct {
	Kind        domain.OpKind
	OperationID string
	Request     activities.Request
}

// Status is what the status query answers.
type Status struct {
	State       domain.State
	OperationID string
	Saga        string
	StuckStep   string
}

type tenant struct {
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

var errCompensate = errors.New("operator asked to compensate")
var errCancel = errors.New("operator asked to cancel")

// TenantWorkflow is a tenant's lifecycle: the provisioning saga, then each
// requested transition in turn, until the tenant is decommissioned or its
// provisioning failed.
func TenantWorkflow(ctx workflow.Context, p TenantParams) error {
	if p.StepMaxAttempts < 1 {
		p.StepMaxAttempts = 5
	}
	if p.ReservationTimeout == 0 {
		p.ReservationTimeout = 10 * time.Minute
	}
	if p.MaxOperationsPerRun == 0 {
		p.MaxOperationsPerRun = 100
	}
	w := &tenant{p: p, state: domain.StateProvisioning, saga: SagaRunning,
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
func (w *tenant) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && w.next == nil && w.claimed == nil }); err != nil {
		return err
	}
	p := w.p
	p.Continued = &Continued{State: w.state}
	return workflow.NewContinueAsNewError(ctx, TenantWorkflow, p)
}

func (w *tenant) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) {
		s := Status{State: w.state, Saga: w.saga, StuckStep: w.stuck}
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
func (w *tenant) handleProvision(ctx workflow.Context, r ProvisionRequest) (activities.ReserveResult, error) {
	var res activities.ReserveResult
	var a *activities.Activities
	err := workflow.ExecuteActivity(shortActivity(ctx), a.ReserveTenant, activities.ReserveInput{
		Tenant: store.Tenant{ID: w.p.TenantID, OrgID: w.p.OrgID, Name: w.p.Name, Environment: w.p.Environment,
			Hostname: w.p.Hostname, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID},
		OperationID: r.OperationID, Steps: ProvisionSteps, Request: r.Request,
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
func (w *tenant) validateTransition(ctx workflow.Context, r TransitionRequest) error {
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

func (w *tenant) busy() *TransitionRequest {
	for _, r := range []*TransitionRequest{w.current, w.next, w.claimed} {
		if r != nil {
			return r
		}
	}
	return nil
}

func appError(err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return temporal.NewApplicationError(de.Message, string(de.Code))
	}
	return err
}

// handleTransition writes the operation and hands it to the main loop.
func (w *tenant) handleTransition(ctx workflow.Context, r TransitionRequest) (activities.ReserveResult, error) {
	var res activities.ReserveResult
	var a *activities.Activities
	steps := map[domain.OpKind][]string{domain.OpSuspend: {"suspend_route"}, domain.OpResume: {"resume_route"}, domain.OpDecommission: DecommissionSteps}[r.Kind]
	// Claim the slot before the activity yields, so a second update
	// validated meanwhile sees it; hand the operation to the main loop only
	// once it is written.
	restore := r.Kind == domain.OpRestore
	if restore {
		w.restoreClaimed = true
	} else {
		w.claimed = &r
	}
	err := workflow.ExecuteActivity(shortActivity(ctx), a.BeginOperation, activities.BeginInput{
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

func shortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: 200 * time.Millisecond},
	})
}

// record applies a state or status change with its audit event; it retries
// until it succeeds, since the saga cannot go on without it.
func (w *tenant) record(ctx workflow.Context, in activities.RecordInput) {
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

func (w *tenant) searchAttributes(ctx workflow.Context) {
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
func (w *tenant) step(ctx workflow.Context, opID, name string, req activities.Request, cancellable bool) error {
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
		case SignalCompensate:
			return errCompensate
		case SignalCancel:
			return errCancel
		}
	}
}

// OperatorSignal is the optional payload of an operator's signal: who
// sends it, for the audit trail.
type OperatorSignal struct {
	Operator string `json:"operator"`
}

func (w *tenant) awaitOperator(ctx workflow.Context, cancellable bool) (string, string) {
	var got, operator string
	sel := workflow.NewSelector(ctx)
	names := []string{SignalRetry, SignalCompensate}
	if cancellable {
		names = append(names, SignalCancel)
	}
	for _, name := range names {
		ch := workflow.GetSignalChannel(ctx, name)
		sel.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var s OperatorSignal
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

func rootCause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// provisionSaga creates the tenant's resources in order; on failure it
// compensates the completed steps in reverse, in a disconnected context, and
// the tenant ends failed with nothing left behind.
func (w *tenant) provisionSaga(ctx workflow.Context) {
	opID, req := w.provision.OperationID, w.provision.Request
	var done []string
	var failure error
	for _, s := range ProvisionSteps {
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
		for w.step(dctx, opID, compensationOf[done[i]], req, false) != nil {
		}
	}
	w.saga = SagaDone
	w.record(ctx, activities.RecordInput{OperationID: opID, Status: domain.OpCompensated, State: domain.StateFailed, Action: "tenant.provisioning_failed", Request: req,
		Data: map[string]any{"compensated": done}})
}

// run carries out one requested transition.
func (w *tenant) run(ctx workflow.Context, r TransitionRequest) {
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
func (w *tenant) simple(ctx workflow.Context, r TransitionRequest, step string, to domain.State, action string) {
	if err := w.step(ctx, r.OperationID, step, r.Request, false); err != nil {
		w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpCompensated, Action: "tenant." + string(r.Kind) + "_failed", Request: r.Request})
		return
	}
	w.record(ctx, activities.RecordInput{OperationID: r.OperationID, Status: domain.OpSucceeded, State: to, Action: action, Request: r.Request})
}

// decommission suspends the tenant's traffic, waits out the grace period
// (a durable timer) unless the tenant is restored, then destroys its
// resources for good.
func (w *tenant) decommission(ctx workflow.Context, r TransitionRequest) {
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
	sel.AddReceive(workflow.GetSignalChannel(ctx, SignalCancel), func(c workflow.ReceiveChannel, _ bool) {
		var s OperatorSignal
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
	for _, s := range DecommissionSteps {
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
func (w *tenant) restoreTenant(ctx workflow.Context, decom TransitionRequest, operator string) {
	req := decom.Request
	if w.restore != nil {
		req = w.restore.Request
	}
	w.record(ctx, activities.RecordInput{OperationID: decom.OperationID, Status: domain.OpCancelled, State: domain.StateSuspended,
		Action: "tenant.restored", Operator: operator, Request: req})
	w.restore, w.restoreClaimed = nil, false
}
