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
