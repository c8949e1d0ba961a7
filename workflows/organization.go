package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// OrganizationWorkflow is an organisation's deletion (SPEC §8): the
// delete update writes it (state deleting, due at now + Grace) and
// answers at once; during the grace period the tenants are suspended
// through their own sagas, and a restore (an update) calls it all off;
// at the due time (a durable timer) every tenant is ended through its own
// saga with no grace period, the run waits until none is left (a tenant
// saga that is stuck makes this one stuck too, until an operator repairs
// it), and the organisation's personal data is erased in one transaction.
func OrganizationWorkflow(ctx workflow.Context, p OrganizationParams) (OrganizationResult, error) {
	rev := orgRevisionOf(ctx, p)
	if err := p.validate(); err != nil {
		return OrganizationResult{}, err
	}
	// Like a tenant's saga, the deletion is not abandoned half-way by a
	// cancellation request: it is restored through the API, or goes on.
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	o := &organization{p: p, rev: rev, saga: SagaRunning, phase: "",
		log: log.With(workflow.GetLogger(ctx), "org_id", p.OrgID)}
	if err := o.register(ctx); err != nil {
		return OrganizationResult{}, err
	}
	arrived, _ := workflow.AwaitWithTimeout(ctx, p.ReservationTimeout, func() bool { return o.claimed })
	if !arrived {
		o.saga = SagaDone
		o.searchAttributes(ctx)
		return OrganizationResult{}, temporal.NewNonRetryableApplicationError("no delete request arrived", "NOT_REQUESTED", nil)
	}
	_ = workflow.Await(ctx, func() bool { return o.deletion != nil || o.rejection != nil })
	if o.rejection != nil {
		o.saga = SagaDone
		o.searchAttributes(ctx)
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		return OrganizationResult{Rejection: o.rejection}, nil
	}

	if o.awaitGrace(ctx) {
		o.saga, o.phase = SagaDone, OrgPhaseDone
		o.searchAttributes(ctx)
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		return OrganizationResult{State: string(domain.OrgActive)}, nil
	}
	o.endTenants(ctx)
	o.erase(ctx)
	o.saga, o.phase = SagaDone, OrgPhaseDone
	o.searchAttributes(ctx)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return OrganizationResult{State: string(domain.OrgDeleted)}, nil
}

// organization is one run's state.
type organization struct {
	p     OrganizationParams
	rev   orgRevision
	log   log.Logger
	saga  string
	phase string
	seq   int
	// indexed is what the search attributes say.
	indexed string

	// claimed: a delete update is being (or was) written; deletion is the
	// operation it wrote, rejection its refusal.
	claimed   bool
	deletion  *activities.OrgResult
	rejection *Rejection
	// person is who asked for the deletion: the saga acts for them.
	person activities.Request
	dueAt  time.Time
	// restore is the restore that won the grace period (written: its
	// record is in Postgres).
	restore *orgRestore

	tenantsLeft int
	stuck       []string
}

type orgRestore struct {
	written bool
}

func (o *organization) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (OrganizationStatus, error) { return o.status(), nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDelete, o.handleDelete, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, r DeletionRequest) error {
			if err := actsAsItsOperator(ctx, UpdateDelete, r.Request.Actor); err != nil {
				return err
			}
			if o.claimed {
				return conflict("the organization is being deleted")
			}
			return nil
		},
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRestore, o.handleRestore, workflow.UpdateHandlerOptions{
		Validator: func(ctx workflow.Context, r RestoreRequest) error {
			if err := actsAsItsOperator(ctx, UpdateRestore, r.Request.Actor); err != nil {
				return err
			}
			return o.canRestore()
		},
	})
}

// canRestore reports whether a restore may win now: from the moment the
// deletion is written until it is due.
func (o *organization) canRestore() error {
	switch {
	case o.deletion == nil:
		return conflict("the organization is not being deleted")
	case o.phase != OrgPhaseGrace:
		return conflict("the deletion is due: the organization's tenants are being ended and it can no longer be restored")
	case o.restore != nil:
		return conflict("a restore of this organization is already under way")
	}
	return nil
}

// handleDelete writes the deletion (the slug checked against the row in
// the same transaction) and answers with it. The operation's id is derived
// from the workflow id and the update id, which every attempt of the
// request carries.
func (o *organization) handleDelete(ctx workflow.Context, r DeletionRequest) (activities.OrgResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	o.claimed = true
	info := workflow.GetInfo(ctx)
	updateID := workflow.GetCurrentUpdateInfo(ctx).ID
	due := workflow.Now(ctx).Add(o.p.Grace).UTC().Truncate(time.Microsecond)
	var res activities.OrgResult
	var a *activities.Activities
	err := o.write(ctx, a.BeginOrgDeletion, activities.OrgInput{OrgID: o.p.OrgID,
		OperationID: domain.DerivedID(domain.PrefixOperation, info.WorkflowExecution.ID, updateID),
		WorkflowID:  info.WorkflowExecution.ID, UpdateID: updateID, Confirm: r.Confirm, DueAt: due, Request: r.Request}, &res)
	if err != nil {
		rej := &Rejection{Code: domain.CodeInternal, Message: err.Error()}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			rej.Code, rej.Message = domain.Code(appErr.Type()), appErr.Message()
		}
		o.rejection = rej
		return res, err
	}
	if res.Replayed && res.Operation.EndedAt != nil {
		// An earlier run carried this deletion out (or a restore called it
		// off): it is answered again, nothing runs.
		o.rejection = &Rejection{Code: domain.CodeConflict, Message: "answered again"}
		return res, nil
	}
	o.deletion, o.person, o.dueAt = &res, r.Request, due
	if at := res.Operation.DueAt; at != nil {
		o.dueAt = *at
	}
	o.phase = OrgPhaseGrace
	o.log.Info("organisation deletion accepted", "operation_id", res.Operation.ID, "due_at", res.Organization.DeletionDueAt)
	return res, nil
}

// handleRestore is the restore's one commit point: the claim is set in the
// same step as the check, so either it wins and the due time cannot pass,
// or the deletion is due and it is refused before anything is written.
func (o *organization) handleRestore(ctx workflow.Context, r RestoreRequest) (activities.OrgResult, error) {
	ctx, _ = workflow.NewDisconnectedContext(ctx)
	if err := o.canRestore(); err != nil {
		return activities.OrgResult{}, err
	}
	claim := &orgRestore{}
	o.restore = claim
	info := workflow.GetInfo(ctx)
	updateID := workflow.GetCurrentUpdateInfo(ctx).ID
	var res activities.OrgResult
	var a *activities.Activities
	err := o.write(ctx, a.RestoreOrg, activities.OrgInput{OrgID: o.p.OrgID,
		OperationID: domain.DerivedID(domain.PrefixOperation, info.WorkflowExecution.ID, updateID),
		WorkflowID:  info.WorkflowExecution.ID, UpdateID: updateID, Request: r.Request}, &res)
	if err != nil {
		if o.restore == claim {
			o.restore = nil
		}
		return res, err
	}
	claim.written = true
	return res, nil
}

// awaitGrace suspends the tenants and waits for the due time; it reports
// whether a restore won. The decision is made in one step with no yield:
// either a restore claim exists, or the phase moves on and restores are
// refused.
func (o *organization) awaitGrace(ctx workflow.Context) (restored bool) {
	o.searchAttributes(ctx)
	due := o.dueAt
	gctx, stop := workflow.WithCancel(ctx)
	defer stop()
	var a *activities.Activities
	// Suspended at once, each through its own saga; a tenant whose saga
	// is busy is asked again by the activity's retries until the deletion
	// is due or restored.
	suspend := workflow.ExecuteActivity(workflow.WithActivityOptions(gctx, workflow.ActivityOptions{
		StartToCloseTimeout: StepTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}), a.SuspendOrgTenants, o.tenantsInput())
	workflow.Go(gctx, func(c workflow.Context) {
		if err := suspend.Get(c, nil); err == nil {
			o.log.Info("the organisation's tenants are suspended")
		}
	})
	timer := workflow.NewTimer(gctx, due.Sub(workflow.Now(ctx)))
	for {
		_ = workflow.Await(ctx, func() bool { return timer.IsReady() || o.restore != nil })
		if o.restore == nil {
			o.phase = OrgPhaseEnding
			return false
		}
		// A restore is being written: it wins unless its write is refused.
		_ = workflow.Await(ctx, func() bool { return o.restore == nil || o.restore.written })
		if o.restore != nil {
			o.log.Info("organisation restored")
			return true
		}
	}
}

// tenantsInput is what the activities acting on tenants need: the key
// their requests to each tenant's saga derive from (the deletion's
// operation id, so every attempt is one request per tenant), and the
// person the saga acts for.
func (o *organization) tenantsInput() activities.OrgTenantsInput {
	d, person := o.deletion, o.person
	return activities.OrgTenantsInput{OrgID: o.p.OrgID, Key: "organization-deletion-" + d.Operation.ID,
		Request: activities.Request{Actor: domain.Actor{Type: "system", ID: "organization-deletion", OnBehalfOf: &person.Actor},
			UserID: person.UserID, RequestID: "organization-deletion/" + d.Operation.ID}}
}

// endTenants ends every tenant through its own saga, then waits until
// none is left. A tenant saga stuck on a step makes this saga stuck (its
// status names the tenants; SagaStatus='stuck'), until an operator's
// repair of that tenant lets it end.
func (o *organization) endTenants(ctx workflow.Context) {
	o.searchAttributes(ctx)
	var a *activities.Activities
	unbounded := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute}
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: StepTimeout, RetryPolicy: unbounded,
	}), a.EndOrgTenants, o.tenantsInput()).Get(ctx, nil)
	if err != nil {
		o.log.Error("the tenants' ends could not all be asked for", "error", rootCause(err))
	}
	o.stuck = []string{}
	for {
		var seen activities.TenantsLeft
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: orgWatchFor + time.Minute, HeartbeatTimeout: 30 * time.Second, RetryPolicy: unbounded,
		}), a.WatchOrgTenants, activities.WatchInput{OrgID: o.p.OrgID, Stuck: o.stuck, For: orgWatchFor}).Get(ctx, &seen)
		if err != nil {
			o.log.Error("watching the tenants failed", "error", rootCause(err))
			continue
		}
		o.tenantsLeft = seen.Left
		if seen.Left == 0 {
			break
		}
		if !slices.Equal(seen.Stuck, o.stuck) {
			o.stuck = seen.Stuck
			status, action, saga := "running", "organization.saga_resolved", SagaRunning
			if len(seen.Stuck) > 0 {
				status, action, saga = "stuck", "organization.saga_stuck", SagaStuck
				o.log.Warn("organisation deletion stuck on tenants whose saga is stuck", "tenants", fmt.Sprint(seen.Stuck))
			}
			o.saga = saga
			o.record(ctx, status, action, map[string]any{"stuck_tenants": seen.Stuck, "tenants_left": seen.Left})
		}
	}
	o.stuck = []string{}
	if o.saga == SagaStuck {
		o.saga = SagaRunning
		o.record(ctx, "running", "organization.saga_resolved", map[string]any{"stuck_tenants": []string{}, "tenants_left": 0})
	}
}

// eraseTimeout bounds one attempt of the erasure.
const eraseTimeout = 30 * time.Minute

// erase erases the organisation's personal data, in one transaction, and
// ends the deletion.
func (o *organization) erase(ctx workflow.Context) {
	o.phase = OrgPhaseErasing
	o.searchAttributes(ctx)
	o.seq++
	var a *activities.Activities
	var res activities.ErasureResult
	for {
		// One transaction over the whole trail: given time to rewrite a
		// large one.
		err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: eraseTimeout,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		}), a.EraseOrganization, activities.EraseInput{For: o.forWhom(), WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, OrgID: o.p.OrgID, OperationID: o.deletion.Operation.ID,
			EventKey: o.eventKey(ctx, "organization.deleted")}).Get(ctx, &res)
		if err == nil {
			break
		}
		// Refused for good (the organisation is no longer being deleted:
		// a row changed by hand): stuck, visibly, and tried again now and
		// then, never given up.
		o.saga = SagaStuck
		o.searchAttributes(ctx)
		o.log.Error("the organisation's erasure was refused", "error", rootCause(err))
		_ = workflow.Sleep(ctx, orgWatchFor)
	}
	o.log.Info("organisation deleted", "accounts_erased", res.Erased, "members_kept", res.Kept, "events_pseudonymised", res.Events)
}

// record writes a status change of the deletion with its event; it is
// retried until it is written.
func (o *organization) record(ctx workflow.Context, status, action string, data map[string]any) {
	o.seq++
	var a *activities.Activities
	info := workflow.GetInfo(ctx)
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: WriteTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	}), a.RecordOrg, activities.OrgRecordInput{For: o.forWhom(), OrgID: o.p.OrgID, OperationID: o.deletion.Operation.ID, WorkflowID: info.WorkflowExecution.ID,
		Status: status, Action: action, Data: data, EventKey: o.eventKey(ctx, action)}).Get(ctx, nil)
	if err != nil {
		o.log.Error("a record of the deletion was refused", "action", action, "error", rootCause(err))
	}
	o.searchAttributes(ctx)
}

// eventKey identifies the saga's next audit event for good: a retried
// write or a replay writes it once.
func (o *organization) eventKey(ctx workflow.Context, action string) string {
	info := workflow.GetInfo(ctx)
	return fmt.Sprintf("%s/%s/event/%d/%s", info.WorkflowExecution.ID, info.OriginalRunID, o.seq, action)
}

// write runs a write a request waits for: as a local activity, bounded,
// then as an activity retried until it succeeds or is refused.
func (o *organization) write(ctx workflow.Context, activity, in, out any) error {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second}
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: WriteTimeout, ScheduleToCloseTimeout: localWriteBound, RetryPolicy: retry,
	}), activity, in).Get(ctx, out)
	if err == nil || final(err) {
		return err
	}
	o.log.Warn("a local write outlasted its bound: it goes on as an activity", "error", rootCause(err))
	return regularWrite(ctx, retry, activity, in, out)
}

func (o *organization) status() OrganizationStatus {
	s := OrganizationStatus{OrgID: o.p.OrgID, Saga: o.saga, Phase: o.phase, TenantsLeft: o.tenantsLeft, StuckTenants: append([]string{}, o.stuck...)}
	if d := o.deletion; d != nil {
		due := o.dueAt
		s.OperationID, s.DueAt = d.Operation.ID, &due
	}
	return s
}

// searchAttributes writes OrgId and SagaStatus when the status changed
// (the client set them at the start).
func (o *organization) searchAttributes(ctx workflow.Context) {
	if o.indexed == o.saga {
		return
	}
	o.indexed = o.saga
	_ = workflow.UpsertTypedSearchAttributes(ctx, SearchAttrOrgID.ValueSet(o.p.OrgID), SearchAttrSagaStatus.ValueSet(o.saga))
}

// forWhom names the person the saga acts for in its own events: type and
// id, never their email (the events outlive it).
func (o *organization) forWhom() domain.Actor {
	return domain.Actor{Type: o.person.Actor.Type, ID: o.person.Actor.ID}
}
