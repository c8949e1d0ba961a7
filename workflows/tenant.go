package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// Names of the tenant workflow's updates and query. Repairs are updates an
// operator can type:
//
//	temporal workflow update execute --workflow-id <id> --name retry \
//	  --input '{"operator":"<you>","operation_id":"op_…","step":"keys"}'
const (
	UpdateProvision  = "provision"
	UpdateTransition = "transition"
	QueryStatus      = "status"
)

// Repair is an operator's repair of a stuck saga, and the name of the
// update that carries it.
type Repair string

// The repairs. Each acts only on the stuck step it names; one sent when
// nothing is stuck is refused by its validator and leaves no trace.
const (
	RepairRetry      Repair = "retry"
	RepairCompensate Repair = "compensate"
	RepairCancel     Repair = "cancel"
)

// Repairs are the repair updates.
var Repairs = []Repair{RepairRetry, RepairCompensate, RepairCancel}

// Saga statuses, kept in the SagaStatus search attribute.
const (
	SagaRunning = "running"
	SagaStuck   = "stuck"
	SagaIdle    = "idle"
	SagaDone    = "done"
)

// The phases of an operation, as the status query shows them.
const (
	PhaseSteps        = "steps"
	PhaseCompensating = "compensating"
	PhaseGracePeriod  = "grace_period"
	PhaseDestroying   = "destroying"
)

// versionSagas is the change id of the workflow's second version: repairs
// as updates, one commit point for restore, per-operation state, update
// ids kept across runs. Runs without its marker are version 1.
const versionSagas = "sagas-v2"

// versionLocalWrites is the change id of the writes a request waits for
// (reservation, beginning an operation) running as local activities, in the
// worker that runs the update, instead of as activity tasks queued behind
// the data-plane steps. Runs without its marker keep regular activities.
const versionLocalWrites = "local-writes"

// Revisions of the workflow code, given in TenantParams.Revision by the
// code that starts a run. A run started at RevisionInInput or later takes
// every change up to its revision from its input instead of from
// workflow.GetVersion, whose version markers (and the search-attribute
// write the SDK adds to each) cost a creation's first workflow task time;
// and it writes its search attributes only when they change. Runs started
// without a revision (0) keep the version markers they recorded. Workers are
// upgraded before the APIs that start runs at a new revision.
const (
	RevisionInInput = 4
	// RevisionCurrent is the revision new runs are started at.
	RevisionCurrent = RevisionInInput
)

// answeredRetention is how long an update id's answer is carried from one
// run to the next, so a retry of the request is answered, not run again.
const answeredRetention = 7 * 24 * time.Hour

// TenantParams starts a tenant's workflow: one workflow per tenant, for its
// whole life (docs/architecture.md says why). Every setting is given by the
// caller (from the configuration); the workflow has no defaults of its own.
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
	// Revision is the workflow code the run was started at (see
	// RevisionCurrent); 0 for runs started before revisions were given.
	Revision int
	// Expiry, for an ephemeral tenant, is when its saga decommissions it
	// (nil: never).
	Expiry *Expiry
}

// inInput reports whether the run takes its changes from its revision
// (RevisionInInput) rather than from version markers.
func (p TenantParams) inInput() bool { return p.Revision >= RevisionInInput }

func (p TenantParams) expiresAt() *time.Time {
	if p.Expiry == nil {
		return nil
	}
	at := p.Expiry.At
	return &at
}

// Expiry is an ephemeral tenant's end: at At, the saga decommissions it,
// with no grace period, as the system acting for For (who created it;
// UserID is the person who answers for that creation).
type Expiry struct {
	At     time.Time
	For    activities.Actor
	UserID string
}

func (p TenantParams) validate() error {
	var bad []string
	if p.TenantID == "" || p.OrgID == "" || p.Hostname == "" {
		bad = append(bad, "tenant id, organisation id and hostname are required")
	}
	if p.StepMaxAttempts < 1 {
		bad = append(bad, "StepMaxAttempts must be at least 1")
	}
	if p.DecommissionGrace <= 0 || p.ReservationTimeout <= 0 {
		bad = append(bad, "DecommissionGrace and ReservationTimeout must be positive")
	}
	if p.MaxOperationsPerRun < 1 {
		bad = append(bad, "MaxOperationsPerRun must be at least 1")
	}
	if bad != nil {
		return temporal.NewNonRetryableApplicationError("invalid tenant workflow parameters: "+strings.Join(bad, "; "), "INVALID_PARAMS", nil)
	}
	return nil
}

// Continued is the state a run hands to the next one.
type Continued struct {
	State domain.State
	// EventSeq numbers the saga's audit events across runs.
	EventSeq int
	// Answered are the transition updates answered in recent runs, by
	// update id.
	Answered map[string]Answered
}

// Answered is a transition update that was answered: the operation it
// began (or, for a restore, the decommission it called off).
type Answered struct {
	OperationID string
	RequestID   string
	At          time.Time
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

// RepairRequest is an operator's repair: who, and the operation and step it
// repairs (the status query names both).
type RepairRequest struct {
	Operator    string `json:"operator"`
	OperationID string `json:"operation_id"`
	Step        string `json:"step"`
}

// RepairResult says what a repair was taken for.
type RepairResult struct {
	Repair      Repair `json:"repair"`
	OperationID string `json:"operation_id"`
	Step        string `json:"step"`
}

// Status is what the status query answers.
type Status struct {
	State     domain.State     `json:"state"`
	Saga      string           `json:"saga"`
	Operation *OperationStatus `json:"operation,omitempty"`
	// CancelRequested says that someone asked Temporal to cancel the
	// workflow; the saga refuses it and goes on.
	CancelRequested bool `json:"cancel_requested,omitempty"`
}

// OperationStatus is the running operation: its phase, its step, whether
// it is stuck, and the repairs an operator may send now.
type OperationStatus struct {
	ID          string        `json:"id"`
	Kind        domain.OpKind `json:"kind"`
	Phase       string        `json:"phase"`
	Step        string        `json:"step,omitempty"`
	Stuck       bool          `json:"stuck"`
	Repairs     []Repair      `json:"repairs"`
	GraceEndsAt *time.Time    `json:"grace_ends_at,omitempty"`
}

// TenantResult is what a tenant's workflow ends with.
type TenantResult struct {
	State domain.State
	// Rejection is set when the creation was refused (name taken, quota):
	// a retry with the same key is given the same answer.
	Rejection *Rejection
}

// Rejection is a creation's refusal.
type Rejection struct {
	Code        domain.Code
	Message     string
	Name        string
	Environment string
}

type tenant struct {
	p     TenantParams
	ref   activities.TenantRef
	log   log.Logger
	state domain.State
	saga  string
	// seq numbers audit events; with the workflow id it is each event's
	// key, so a reset or a retry writes an event once.
	seq      int
	answered map[string]Answered
	// localWrites: the writes a request waits for run as local activities.
	localWrites bool
	// indexed, from RevisionInInput on, is what the search attributes say
	// (nil: not known, as in a run continued from another); an upsert that
	// would change nothing is not sent.
	indexed *indexed

	reserving bool
	reserved  bool
	rejection *Rejection
	provision ProvisionRequest

	// op is the running operation; claim a transition whose operation is
	// being written; next one written and not started yet.
	op    *operation
	claim *TransitionRequest
	next  *TransitionRequest

	cancelRequested bool

	// expired: the tenant's lifetime is over; expiring: its decommission
	// was begun (or found unnecessary).
	expired  bool
	expiring bool
}

// operation is the state of the running operation; it dies with it.
type operation struct {
	id   string
	kind domain.OpKind
	req  activities.Request

	phase string
	step  domain.Step
	// stuck: the step's attempts are spent; repairs are those it accepts,
	// and repair the one an operator sent.
	stuck   bool
	repairs []Repair
	repair  *takenRepair
	// finishing: the final record is being written; the tenant is then in
	// state final.
	finishing bool
	final     domain.State
	// restore, for a decommission, is the restore that won: once set,
	// destruction cannot begin.
	restore     *restoreClaim
	graceEndsAt time.Time
	// immediate: a decommission with no grace period (an ephemeral
	// tenant's end).
	immediate bool
}

type takenRepair struct {
	repair   Repair
	operator string
}

type restoreClaim struct {
	req      *TransitionRequest // nil: an operator's cancel
	operator string
	written  bool
}

// TenantWorkflow is a tenant's lifecycle: the provisioning saga, then each
// requested transition in turn, until the tenant is decommissioned or its
// provisioning failed.
func TenantWorkflow(ctx workflow.Context, p TenantParams) (TenantResult, error) {
	inInput := p.inInput()
	if !inInput && workflow.GetVersion(ctx, versionSagas, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
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
	w := &tenant{p: p, state: domain.StateProvisioning, saga: SagaRunning, answered: map[string]Answered{},
		ref: activities.TenantRef{TenantID: p.TenantID, OrgID: p.OrgID, Hostname: p.Hostname},
		log: log.With(workflow.GetLogger(ctx), "tenant_id", p.TenantID, "org_id", p.OrgID)}
	w.localWrites = inInput || workflow.GetVersion(ctx, versionLocalWrites, workflow.DefaultVersion, 1) == 1
	if inInput && p.Continued == nil {
		// Started with these (the client sets them at the start).
		w.indexed = &indexed{state: w.state, saga: w.saga}
	}
	if c := p.Continued; c != nil {
		w.state, w.reserved, w.saga, w.seq = c.State, true, SagaIdle, c.EventSeq
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
		arrived, _ := workflow.AwaitWithTimeout(ctx, p.ReservationTimeout, func() bool { return w.reserving || w.reserved || w.rejection != nil })
		if !arrived {
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
	for ops := 0; w.state != domain.StateFailed && w.state != domain.StateDecommissioned; ops++ {
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

// watchExpiry starts the ephemeral tenant's clock: a durable timer to the
// end of its lifetime (at once if it is over), in this run and in each run
// it continues as.
func (w *tenant) watchExpiry(ctx workflow.Context) {
	e := w.p.Expiry
	if e == nil {
		return
	}
	workflow.Go(ctx, func(gctx workflow.Context) {
		if left := e.At.Sub(workflow.Now(gctx)); left > 0 {
			_ = workflow.Sleep(gctx, left)
		}
		w.expired = true
	})
}

// expiryDue reports whether the tenant's lifetime is over and nothing
// stands in the way of decommissioning it: no operation running, being
// written or waiting, and the tenant active or suspended (a tenant being
// decommissioned already is left to that decommission; one it restored
// expires after it).
func (w *tenant) expiryDue() bool {
	return w.expired && !w.expiring && w.op == nil && w.claim == nil && w.next == nil &&
		(w.state == domain.StateActive || w.state == domain.StateSuspended)
}

// expire decommissions the tenant whose lifetime is over, with no grace
// period, as the system acting for whoever created it. The operation is
// written as a request's would be; meanwhile requests are refused as
// during any other operation being written.
func (w *tenant) expire(ctx workflow.Context) {
	w.expiring = true
	e := w.p.Expiry
	var opID string
	_ = workflow.SideEffect(ctx, func(workflow.Context) any { return domain.NewID(domain.PrefixOperation) }).Get(&opID)
	creator := e.For
	req := activities.Request{Actor: activities.Actor{Type: "system", ID: "expiry", OnBehalfOf: &creator}, UserID: e.UserID,
		RequestID: "expiry/" + workflow.GetInfo(ctx).WorkflowExecution.ID}
	r := TransitionRequest{Kind: domain.OpDecommission, OperationID: opID, Request: req}
	if _, err := w.claimAndBegin(ctx, r, "expiry"); err != nil {
		w.log.Warn("the expired tenant's decommission was refused", "error", err.Error())
		return
	}
	w.log.Info("tenant lifetime over: decommissioning", "operation_id", opID)
	w.begin(opID, domain.OpDecommission, req)
	w.op.immediate = true
	w.searchAttributes(ctx)
	w.runDecommission(ctx)
}

// mayContinueAsNew reports whether the run has done enough and nothing is
// under way: no operation, no transition being written or waiting, no
// handler running. Work accepted meanwhile runs first.
func (w *tenant) mayContinueAsNew(ctx workflow.Context, ops int) bool {
	due := ops >= w.p.MaxOperationsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
	return due && w.op == nil && w.claim == nil && w.next == nil && workflow.AllHandlersFinished(ctx)
}

// continueAsNew starts a fresh run with the tenant's state, so a
// long-lived tenant's history stays short.
func (w *tenant) continueAsNew(ctx workflow.Context) error {
	p := w.p
	c := &Continued{State: w.state, EventSeq: w.seq, Answered: map[string]Answered{}}
	now := workflow.Now(ctx)
	for id, a := range w.answered {
		if now.Sub(a.At) < answeredRetention {
			c.Answered[id] = a
		}
	}
	p.Continued = c
	w.log.Info("continuing as new", "operations", w.p.MaxOperationsPerRun)
	return workflow.NewContinueAsNewError(ctx, TenantWorkflow, p)
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
	for _, r := range Repairs {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, string(r), w.handleRepair(r), workflow.UpdateHandlerOptions{
			Validator: func(ctx workflow.Context, req RepairRequest) error { return w.canRepair(r, req) },
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
	var res activities.OperationResult
	var a *activities.Activities
	err := w.write(ctx, a.ReserveTenant, activities.ReserveInput{
		Tenant: activities.NewTenant{ID: w.p.TenantID, OrgID: w.p.OrgID, Name: w.p.Name, Environment: w.p.Environment,
			Hostname: w.p.Hostname, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, ExpiresAt: w.p.expiresAt()},
		OperationID: r.OperationID, Steps: domain.StepNames(domain.ProvisionSteps), Request: r.Request,
	}).Get(ctx, &res)
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
	w.provision, w.reserved = r, true
	return res, nil
}

// write runs one of the short writes a request waits for. A refusal is
// final (its error is non-retryable); anything else is an infrastructure
// failure, retried for as long as it lasts: the caller is answered 503 and
// its retry with the same key finds the same update. It runs as a local
// activity, so no data-plane step queued on the task queue can delay it.
func (w *tenant) write(ctx workflow.Context, activity, in any) workflow.Future {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second}
	return shortWrite(ctx, w.localWrites, retry, activity, in)
}

// shortWrite runs a short write in Postgres: as a local activity, in the
// worker that runs the workflow, or (runs that began before that change)
// as a regular activity.
func shortWrite(ctx workflow.Context, local bool, retry *temporal.RetryPolicy, activity, in any) workflow.Future {
	if local {
		// A local activity's retries end at its schedule-to-close timeout,
		// which defaults to one attempt's; an outage is outlasted instead.
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: WriteTimeout, ScheduleToCloseTimeout: answeredRetention, RetryPolicy: retry,
		}), activity, in)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: WriteTimeout, RetryPolicy: retry,
	}), activity, in)
}

// validateTransition refuses, before anything is written, a transition the
// tenant's state does not allow or one requested while another runs.
func (w *tenant) validateTransition(ctx workflow.Context, r TransitionRequest) error {
	if !w.reserved {
		return temporal.NewApplicationError("tenant not found", string(domain.CodeNotFound))
	}
	if _, ok := w.answered[workflow.GetCurrentUpdateInfo(ctx).ID]; ok {
		return nil
	}
	if !slices.Contains([]domain.OpKind{domain.OpSuspend, domain.OpResume, domain.OpDecommission, domain.OpRestore}, r.Kind) {
		return temporal.NewApplicationError(fmt.Sprintf("unknown transition %q", r.Kind), string(domain.CodeBadRequest))
	}
	return w.canAccept(r.Kind)
}

// canAccept reports whether a transition of the kind may begin now. An
// operation whose final record is being written no longer blocks one: the
// tenant is then in that record's state.
func (w *tenant) canAccept(kind domain.OpKind) error {
	if kind == domain.OpRestore {
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

// canRestore reports whether a restore may win now: from the moment a
// decommission runs until it starts destroying.
func (w *tenant) canRestore() error {
	op := w.op
	switch {
	case op == nil || op.kind != domain.OpDecommission || op.finishing:
		return conflict("cannot restore a tenant that is %s (only during a decommission's grace period)", w.state)
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
	if r.Kind == domain.OpRestore {
		return w.handleRestore(ctx, r, id)
	}
	// An operation that is finishing is gone in a moment.
	_ = workflow.Await(ctx, func() bool { return w.op == nil || !w.op.finishing })
	if err := w.canAccept(r.Kind); err != nil {
		return activities.OperationResult{}, err
	}
	// Hand the operation to the main loop only once it is written.
	res, err := w.claimAndBegin(ctx, r, id)
	if err != nil {
		return res, err
	}
	w.answered[id] = Answered{OperationID: res.Operation.ID, RequestID: res.RequestID, At: workflow.Now(ctx)}
	if !res.Replayed {
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
		Steps: domain.StepNames(domain.StepsOf(r.Kind, w.state)), UpdateID: updateID, Request: r.Request,
	}).Get(ctx, &res)
	return res, err
}

// answerAgain answers a transition update that an earlier run answered.
func (w *tenant) answerAgain(ctx workflow.Context, a Answered) (activities.OperationResult, error) {
	var res activities.OperationResult
	var act *activities.Activities
	err := w.write(ctx, act.LoadOperation,
		activities.LoadInput{TenantID: w.p.TenantID, OperationID: a.OperationID, RequestID: a.RequestID}).Get(ctx, &res)
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
	}).Get(ctx, &res)
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
	if err := validOperator(req.Operator); err != nil {
		return err
	}
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

func validOperator(name string) error {
	bad := name == "" || len(name) > 100 || strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) })
	if bad {
		return temporal.NewApplicationError(`a repair names its operator: "operator" is 1 to 100 printable characters`, string(domain.CodeBadRequest))
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
		op := w.op
		res := RepairResult{Repair: r, OperationID: op.id, Step: string(op.step)}
		if op.phase == PhaseGracePeriod {
			op.restore = &restoreClaim{operator: req.Operator, written: true}
			res.Step = domain.StepGracePeriod
		} else {
			op.repair = &takenRepair{repair: r, operator: req.Operator}
		}
		w.log.Info("operator repair taken", "repair", string(r), "operator", req.Operator, "operation_id", op.id, "step", res.Step)
		return res, nil
	}
}

func (w *tenant) status() Status {
	s := Status{State: w.state, Saga: w.saga, CancelRequested: w.cancelRequested}
	op := w.op
	if op == nil {
		return s
	}
	os := &OperationStatus{ID: op.id, Kind: op.kind, Phase: op.phase, Step: string(op.step), Stuck: op.stuck, Repairs: []Repair{}}
	if op.phase == PhaseGracePeriod {
		os.Step = domain.StepGracePeriod
		ends := op.graceEndsAt
		os.GraceEndsAt = &ends
	}
	for _, r := range Repairs {
		if w.canRepair(r, RepairRequest{Operator: "status", OperationID: op.id, Step: os.Step}) == nil {
			os.Repairs = append(os.Repairs, r)
		}
	}
	s.Operation = os
	return s
}

// record applies a state or status change with its audit event; it retries
// until it succeeds, since the saga cannot go on without it.
func (w *tenant) record(ctx workflow.Context, in activities.RecordInput) {
	var a *activities.Activities
	in.TenantID = w.p.TenantID
	if in.Action != "" {
		w.seq++
		in.EventKey = fmt.Sprintf("%s/event/%d/%s", workflow.GetInfo(ctx).WorkflowExecution.ID, w.seq, in.Action)
	}
	// From revision 4 a local activity: no activity task's round trips
	// through the server.
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute}
	_ = shortWrite(ctx, w.p.inInput(), retry, a.Record, in).Get(ctx, nil)
	if in.State != "" {
		w.state = in.State
	}
	w.searchAttributes(ctx)
}

// finish writes the operation's final record and ends it; from the moment
// the record is being written, a transition may be accepted.
func (w *tenant) finish(ctx workflow.Context, in activities.RecordInput) {
	op := w.op
	op.finishing, op.final = true, w.state
	if in.State != "" {
		op.final = in.State
	}
	in.OperationID = op.id
	if in.Request == (activities.Request{}) {
		in.Request = op.req
	}
	if w.p.inInput() {
		// The saga's status after the operation goes with the record's
		// search attributes: one write instead of two.
		w.saga = SagaIdle
		if in.State == domain.StateFailed || in.State == domain.StateDecommissioned {
			w.saga = SagaDone
		}
	}
	w.record(ctx, in)
	w.log.Info("operation ended", "operation_id", op.id, "kind", string(op.kind), "status", string(in.Status), "state", string(w.state))
	w.op = nil
}

type indexed struct {
	state domain.State
	saga  string
}

func (w *tenant) searchAttributes(ctx workflow.Context) {
	now := indexed{state: w.state, saga: w.saga}
	if w.p.inInput() {
		if w.indexed != nil && *w.indexed == now {
			return
		}
		w.indexed = &now
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrOrgID.ValueSet(w.p.OrgID),
		SearchAttrTenantID.ValueSet(w.p.TenantID),
		SearchAttrTenantState.ValueSet(string(w.state)),
		SearchAttrSagaStatus.ValueSet(w.saga),
	)
}

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
	for {
		err := workflow.ExecuteActivity(actx, a.RunStep, activities.StepInput{OperationID: op.id, Tenant: w.ref, Step: string(s)}).Get(ctx, nil)
		if err == nil {
			return nil
		}
		w.saga = SagaStuck
		w.record(ctx, activities.RecordInput{OperationID: op.id, Status: domain.OpStuck, Action: "tenant.saga_stuck", Request: op.req,
			Data: map[string]any{"step": string(s), "error": publicError(err), "attempts": w.p.StepMaxAttempts}})
		// Repairs are accepted once the operation says it is stuck.
		op.stuck, op.repairs = true, allowed
		w.log.Warn("saga stuck", "operation_id", op.id, "step", string(s), "error", rootCause(err))
		_ = workflow.Await(ctx, func() bool { return op.repair != nil })
		taken := op.repair
		op.stuck, op.repairs, op.repair = false, nil, nil
		w.saga = SagaRunning
		w.record(ctx, activities.RecordInput{OperationID: op.id, Status: domain.OpRunning, Action: "tenant.saga_resolved", Request: op.req,
			Operator: taken.operator, Data: map[string]any{"step": string(s), "repair": string(taken.repair)}})
		if taken.repair != RepairRetry {
			return taken
		}
	}
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

func (w *tenant) begin(id string, kind domain.OpKind, req activities.Request) {
	w.op = &operation{id: id, kind: kind, req: req, phase: PhaseSteps}
	w.saga = SagaRunning
	w.log.Info("operation started", "operation_id", id, "kind", string(kind))
}

// runProvision creates the tenant's resources in order; when an operator
// compensates a stuck step, it undoes every attempted step in reverse and
// the tenant ends failed with nothing left behind.
func (w *tenant) runProvision(ctx workflow.Context) {
	w.begin(w.provision.OperationID, domain.OpProvision, w.provision.Request)
	var attempted []domain.Step
	for _, s := range domain.ProvisionSteps {
		attempted = append(attempted, s)
		if w.step(ctx, s, RepairRetry, RepairCompensate) != nil {
			undone := w.compensate(ctx, attempted)
			w.saga = SagaDone
			w.finish(ctx, activities.RecordInput{Status: domain.OpCompensated, State: domain.StateFailed, Action: "tenant.provisioning_failed",
				Data: map[string]any{"compensated": undone}})
			return
		}
	}
	w.finish(ctx, activities.RecordInput{Status: domain.OpSucceeded, State: domain.StateActive, Action: "tenant.provisioned"})
}

// run carries out one requested transition.
func (w *tenant) run(ctx workflow.Context, r TransitionRequest) {
	w.begin(r.OperationID, r.Kind, r.Request)
	w.searchAttributes(ctx)
	switch r.Kind {
	case domain.OpSuspend:
		w.runSimple(ctx, domain.StepSuspendRoute, domain.StateSuspended, "tenant.suspended")
	case domain.OpResume:
		w.runSimple(ctx, domain.StepResumeRoute, domain.StateActive, "tenant.resumed")
	case domain.OpDecommission:
		w.runDecommission(ctx)
	}
}

// runSimple runs a one-step transition; compensating it undoes the step
// and leaves the tenant as it was.
func (w *tenant) runSimple(ctx workflow.Context, s domain.Step, to domain.State, action string) {
	kind := w.op.kind
	if w.step(ctx, s, RepairRetry, RepairCompensate) != nil {
		w.compensate(ctx, []domain.Step{s})
		w.finish(ctx, activities.RecordInput{Status: domain.OpCompensated, Action: "tenant." + string(kind) + "_failed"})
		return
	}
	w.finish(ctx, activities.RecordInput{Status: domain.OpSucceeded, State: to, Action: action})
}

// runDecommission suspends the tenant's traffic, waits out the grace
// period (a durable timer) unless the tenant is restored, then destroys its
// resources for good.
func (w *tenant) runDecommission(ctx workflow.Context) {
	if w.state == domain.StateActive {
		if taken := w.step(ctx, domain.StepSuspendRoute, RepairRetry, RepairCompensate, RepairCancel); taken != nil {
			// Called off before the grace period: the tenant is as it was.
			w.compensate(ctx, []domain.Step{domain.StepSuspendRoute})
			in := activities.RecordInput{Status: domain.OpCompensated, Action: "tenant.decommission_failed"}
			if taken.repair == RepairCancel {
				in = activities.RecordInput{Status: domain.OpCancelled, Action: "tenant.decommission_cancelled", Operator: taken.operator}
			}
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
	w.record(ctx, activities.RecordInput{OperationID: w.op.id, State: domain.StateDecommissioning, Action: "tenant.decommissioning", Request: w.op.req,
		Data: map[string]any{"grace_period": grace.String()}, GraceEndsAt: &ends})
	if w.op.immediate {
		w.op.phase = PhaseDestroying
	} else if claim := w.awaitGrace(ctx); claim != nil {
		in := activities.RecordInput{Status: domain.OpCancelled, State: domain.StateSuspended, Action: "tenant.restored", Operator: claim.operator}
		if claim.req != nil {
			in.Request = claim.req.Request
		}
		w.finish(ctx, in)
		return
	}
	for _, s := range domain.DestroySteps {
		// Once destruction began nothing can be brought back: a step
		// that keeps failing can only be retried.
		w.step(ctx, s, RepairRetry)
	}
	w.finish(ctx, activities.RecordInput{Status: domain.OpSucceeded, State: domain.StateDecommissioned, Action: "tenant.decommissioned"})
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
