package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// TenantSagas is how an organisation's deletion acts on its tenants:
// through each tenant's own saga, with the client the API uses
// (workflows.Client), never by writing a tenant's rows itself. A key names
// the request across retries (its update id is derived from it).
type TenantSagas interface {
	// Transition asks the tenant's saga for a transition.
	Transition(ctx context.Context, workflowID string, kind domain.OpKind, key string, req Request) (OperationResult, error)
	// EndNow gives the tenant a lifetime that is over: its saga
	// decommissions it at once, with no grace period.
	EndNow(ctx context.Context, workflowID, key string, at time.Time, req Request) error
}

// OrganizationRecord is an organisation as the deletion's activities wrote
// or read it.
type OrganizationRecord struct {
	ID            string
	Slug          string
	Name          string
	PlanID        string
	State         string
	RequireMFA    bool
	DeletionDueAt *time.Time
	DeletedAt     *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// OrgOperationRecord is an organisation's operation (deletion, restore).
type OrgOperationRecord struct {
	ID          string
	OrgID       string
	Kind        string
	Status      string
	RequestedBy string
	WorkflowID  string
	DueAt       *time.Time
	StartedAt   time.Time
	EndedAt     *time.Time
}

// OrgResult answers a deletion or a restore.
type OrgResult struct {
	Organization OrganizationRecord
	Operation    OrgOperationRecord
	RequestID    string
	Replayed     bool
}

// OrganizationRecordOf returns the payload of an organisation row.
func OrganizationRecordOf(o store.Organization) OrganizationRecord {
	return OrganizationRecord{ID: o.ID, Slug: o.Slug, Name: o.Name, PlanID: o.PlanID, State: o.State, RequireMFA: o.RequireMFA,
		DeletionDueAt: o.DeletionDueAt, DeletedAt: o.DeletedAt, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// OrgOperationRecordOf returns the payload of an organisation's operation.
func OrgOperationRecordOf(op store.OrgOperation) OrgOperationRecord {
	return OrgOperationRecord{ID: op.ID, OrgID: op.OrgID, Kind: op.Kind, Status: op.Status, RequestedBy: op.RequestedBy,
		WorkflowID: op.WorkflowID, DueAt: op.DueAt, StartedAt: op.StartedAt, EndedAt: op.EndedAt}
}

func orgResultOf(a store.OrgAnswer) OrgResult {
	return OrgResult{Organization: OrganizationRecordOf(a.Organization), Operation: OrgOperationRecordOf(a.Operation),
		RequestID: a.RequestID, Replayed: a.Replayed}
}

// OrgInput is a deletion or restore to write.
type OrgInput struct {
	OrgID       string
	OperationID string
	WorkflowID  string
	UpdateID    string
	Confirm     string
	DueAt       time.Time
	Request     Request
}

func (in OrgInput) stored() store.OrgRequest {
	return store.OrgRequest{OrgID: in.OrgID, OperationID: in.OperationID, WorkflowID: in.WorkflowID, UpdateID: in.UpdateID,
		Confirm: in.Confirm, DueAt: in.DueAt, Request: in.Request.stored()}
}

// BeginOrgDeletion writes the organisation's deletion (store.BeginOrgDeletion).
func (a *Activities) BeginOrgDeletion(ctx context.Context, in OrgInput) (OrgResult, error) {
	res, err := store.BeginOrgDeletion(ctx, a.DB, in.stored())
	if err != nil {
		return OrgResult{}, asApplicationError(err)
	}
	return orgResultOf(res), nil
}

// RestoreOrg writes the restore that calls the deletion off (store.RestoreOrg).
func (a *Activities) RestoreOrg(ctx context.Context, in OrgInput) (OrgResult, error) {
	res, err := store.RestoreOrg(ctx, a.DB, in.stored())
	if err != nil {
		return OrgResult{}, asApplicationError(err)
	}
	return orgResultOf(res), nil
}

// OrgRecordInput is a change of a deletion's status with its event.
type OrgRecordInput struct {
	For         domain.Actor
	OrgID       string
	OperationID string
	WorkflowID  string
	Status      string
	Action      string
	Data        map[string]any
	EventKey    string
}

// RecordOrg writes a deletion's status and its event (store.RecordOrgOperation).
func (a *Activities) RecordOrg(ctx context.Context, in OrgRecordInput) error {
	return asApplicationError(store.RecordOrgOperation(ctx, a.DB, store.OrgRecord{For: in.For, OrgID: in.OrgID, OperationID: in.OperationID,
		WorkflowID: in.WorkflowID, Status: in.Status, Action: in.Action, Data: in.Data, EventKey: in.EventKey}))
}

// OrgTenantsInput names the organisation whose tenants a deletion acts on,
// the key its requests to their sagas derive from, and the person it acts
// for.
type OrgTenantsInput struct {
	OrgID   string
	Key     string
	Request Request
}

// SuspendOrgTenants asks each active tenant's saga to suspend it. A tenant
// whose saga is busy (provisioning, another operation running) is asked
// again on the activity's next attempt: the error says how many wait, and
// Temporal's retries (which add nothing to the history) ask again until
// none does or the deletion's workflow cancels it.
func (a *Activities) SuspendOrgTenants(ctx context.Context, in OrgTenantsInput) error {
	tenants, err := store.OrgTenants(ctx, a.DB, in.OrgID)
	if err != nil {
		return err
	}
	waiting := 0
	for _, t := range tenants {
		switch domain.State(t.State) {
		case domain.StateProvisioning:
			waiting++
		case domain.StateActive:
			if _, err := a.Tenants.Transition(ctx, t.WorkflowID, domain.OpSuspend, in.Key, in.Request); err != nil {
				if domain.ErrorCode(err) != domain.CodeConflict {
					return fmt.Errorf("suspend tenant %s: %w", t.ID, err)
				}
				waiting++
			}
		}
	}
	if waiting > 0 {
		return fmt.Errorf("%d tenants of %s wait for their running operation before they are suspended", waiting, in.OrgID)
	}
	return nil
}

// EndOrgTenants asks each live tenant's saga to end it now, with no grace
// period: its lifetime is over (the ephemeral tenant's end, which
// decommissions at once). A tenant waiting out a decommission's grace
// period is restored first, then ended. A tenant whose saga refuses
// (its end has begun, it has ended) needs nothing more; one restored whose
// end is refused until the restore finishes is asked again on the next
// attempt.
//
// The deletion is final from here on, so the organisation's subscription
// is cancelled in Stripe first (once more on each attempt, which Stripe
// answers as done): it is charged nothing after its deletion's grace.
// This is activity code, which a running deletion's history does not
// record: its workflow, its inputs and its results are unchanged.
func (a *Activities) EndOrgTenants(ctx context.Context, in OrgTenantsInput) error {
	if a.Stripe != nil {
		if err := a.Stripe.CancelOrganization(ctx, in.OrgID); err != nil {
			return fmt.Errorf("cancel the subscription of %s: %s", in.OrgID, err.Error())
		}
	}
	tenants, err := store.OrgTenants(ctx, a.DB, in.OrgID)
	if err != nil {
		return err
	}
	again := 0
	now := time.Now().UTC()
	for _, t := range tenants {
		restored := false
		if t.InGrace {
			_, err := a.Tenants.Transition(ctx, t.WorkflowID, domain.OpRestore, in.Key, in.Request)
			switch {
			case err == nil:
				restored = true
			case domain.ErrorCode(err) != domain.CodeConflict:
				return fmt.Errorf("restore tenant %s: %w", t.ID, err)
			}
		}
		if err := a.Tenants.EndNow(ctx, t.WorkflowID, in.Key, now, in.Request); err != nil {
			if domain.ErrorCode(err) != domain.CodeConflict {
				return fmt.Errorf("end tenant %s: %w", t.ID, err)
			}
			if restored || t.InGrace {
				again++
			}
		}
	}
	if again > 0 {
		return fmt.Errorf("%d tenants of %s are being restored before their end", again, in.OrgID)
	}
	return nil
}

// WatchInput is what the deletion knows of its tenants: the ones stuck
// when it last looked.
type WatchInput struct {
	OrgID string
	Stuck []string
	// For bounds one watch; the workflow watches again after it.
	For time.Duration
}

// TenantsLeft is what a watch saw: the tenants not yet ended, and those
// whose saga is stuck.
type TenantsLeft struct {
	Left  int
	Stuck []string
}

// WatchOrgTenants polls the organisation's tenants until none is left,
// the stuck ones change, or in.For has passed, heartbeating: one activity
// for a long wait, not one event per look.
func (a *Activities) WatchOrgTenants(ctx context.Context, in WatchInput) (TenantsLeft, error) {
	deadline := time.Now().Add(in.For)
	for {
		tenants, err := store.OrgTenants(ctx, a.DB, in.OrgID)
		if err != nil {
			return TenantsLeft{}, err
		}
		seen := TenantsLeft{Left: len(tenants), Stuck: []string{}}
		for _, t := range tenants {
			if t.Stuck {
				seen.Stuck = append(seen.Stuck, t.ID)
			}
		}
		if seen.Left == 0 || !slices.Equal(seen.Stuck, in.Stuck) || time.Now().After(deadline) {
			return seen, nil
		}
		activity.RecordHeartbeat(ctx, seen.Left)
		select {
		case <-ctx.Done():
			return TenantsLeft{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// EraseInput is the erasure of a deleted organisation.
type EraseInput struct {
	For         domain.Actor
	WorkflowID  string
	OrgID       string
	OperationID string
	EventKey    string
}

// ErasureResult says what an erasure did.
type ErasureResult struct {
	Erased int
	Kept   int
	Events int
}

// EraseOrganization erases the organisation's personal data, in one
// transaction (store.EraseOrganization). A tenant still live makes it fail
// and be retried.
func (a *Activities) EraseOrganization(ctx context.Context, in EraseInput) (ErasureResult, error) {
	res, err := store.EraseOrganization(ctx, a.DB, store.EraseRequest{OrgID: in.OrgID, OperationID: in.OperationID,
		WorkflowID: in.WorkflowID, EventKey: in.EventKey, For: in.For})
	if err != nil {
		return ErasureResult{}, asApplicationError(err)
	}
	return ErasureResult(res), nil
}
