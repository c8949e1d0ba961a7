package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Request is the human request behind an operation: who, and from where.
type Request struct {
	Actor      Actor
	UserID     string
	RequestID  string
	ClientAddr string
	UserAgent  string
}

// ReserveInput is a tenant to create.
type ReserveInput struct {
	Tenant      store.Tenant
	OperationID string
	Steps       []string
	Request     Request
}

// ReserveResult is the tenant and its provisioning operation as written.
type ReserveResult struct {
	Tenant    store.Tenant
	Operation store.Operation
}

// asApplicationError turns a domain error into a non-retryable Temporal
// error whose type is the error code, so an update's caller can tell a
// CONFLICT from a failure.
func asApplicationError(err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return temporal.NewNonRetryableApplicationError(de.Message, string(de.Code), nil)
	}
	return err
}

// ReserveTenant writes a new tenant in state provisioning with its
// provisioning operation and the create_requested event, in one
// transaction, after checking that the name is free among the live tenants
// of the organisation and that the plan's tenant quota allows one more. A
// retry after a commit finds the tenant and returns it.
func (a *Activities) ReserveTenant(ctx context.Context, in ReserveInput) (ReserveResult, error) {
	var res ReserveResult
	err := a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var existing store.Tenant
		if err := tx.NewSelect().Model(&existing).Where("id = ?", in.Tenant.ID).Scan(ctx); err == nil {
			res.Tenant = existing
			return tx.NewSelect().Model(&res.Operation).Where("id = ?", in.OperationID).Scan(ctx)
		}
		plan, err := store.LockPlan(ctx, tx, in.Tenant.OrgID)
		if err != nil {
			return err
		}
		var taken string
		err = tx.NewSelect().Model((*store.Tenant)(nil)).Column("id").
			Where("org_id = ? AND name = ? AND state NOT IN ('failed', 'decommissioned')", in.Tenant.OrgID, in.Tenant.Name).Scan(ctx, &taken)
		if err == nil {
			return domain.Errorf(domain.CodeConflict, "tenant name %q is taken in this organization by %s", in.Tenant.Name, taken)
		}
		var live int
		if err := tx.NewRaw("SELECT count(*) FROM tenants WHERE org_id = ? AND state NOT IN ('failed', 'decommissioned')", in.Tenant.OrgID).Scan(ctx, &live); err != nil {
			return fmt.Errorf("count tenants: %w", err)
		}
		if live >= plan.MaxTenants {
			return domain.Errorf(domain.CodeConflict, "tenant quota reached: plan %s allows %d tenants", plan.ID, plan.MaxTenants)
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		t := in.Tenant
		t.State, t.CurrentOperationID, t.CreatedBy, t.CreatedAt, t.UpdatedAt = string(domain.StateProvisioning), &in.OperationID, in.Request.UserID, now, now
		op := store.Operation{ID: in.OperationID, OrgID: t.OrgID, TenantID: t.ID, Kind: string(domain.OpProvision), Status: string(domain.OpRunning),
			Steps: store.StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: t.WorkflowID, StartedAt: now}
		if _, err := tx.NewInsert().Model(&t).Exec(ctx); err != nil {
			if store.IsUniqueViolation(err, "tenants_live_name_key") {
				return domain.Errorf(domain.CodeConflict, "tenant name %q is taken in this organization", t.Name)
			}
			return fmt.Errorf("insert tenant: %w", err)
		}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			return fmt.Errorf("insert operation: %w", err)
		}
		if err := a.event(ctx, tx, t, in.Request, nil, "tenant.create_requested",
			map[string]any{"after": map[string]any{"name": t.Name, "environment": t.Environment, "hostname": t.Hostname}}, "requested"); err != nil {
			return err
		}
		res.Tenant, res.Operation = t, op
		return nil
	})
	return res, asApplicationError(err)
}

// BeginInput is a transition to start on a tenant.
type BeginInput struct {
	TenantID    string
	OrgID       string
	OperationID string
	Kind        domain.OpKind
	Steps       []string
	UpdateID    string
	Request     Request
}

// BeginOperation writes the operation of a requested transition and its
// *_requested event, after checking the tenant's state allows it. A retry
// after a commit finds the operation and returns it.
func (a *Activities) BeginOperation(ctx context.Context, in BeginInput) (ReserveResult, error) {
	var res ReserveResult
	err := a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&res.Tenant).Where("id = ?", in.TenantID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("load tenant %s: %w", in.TenantID, err)
		}
		if err := tx.NewSelect().Model(&res.Operation).Where("id = ?", in.OperationID).Scan(ctx); err == nil {
			return nil
		}
		if in.Kind == domain.OpRestore {
			// A restore cancels the running decommission operation (the
			// workflow checked that one runs); it is that operation the
			// caller follows.
			if res.Tenant.CurrentOperationID == nil {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			if err := tx.NewSelect().Model(&res.Operation).Where("id = ?", *res.Tenant.CurrentOperationID).Scan(ctx); err != nil {
				return fmt.Errorf("load operation: %w", err)
			}
			if res.Operation.Kind != string(domain.OpDecommission) {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			return a.event(ctx, tx, res.Tenant, in.Request, nil, "tenant.restore_requested",
				map[string]any{"operation_id": res.Operation.ID}, "requested")
		}
		if err := domain.CanStart(in.Kind, domain.State(res.Tenant.State)); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		res.Operation = store.Operation{ID: in.OperationID, OrgID: in.OrgID, TenantID: in.TenantID, Kind: string(in.Kind), Status: string(domain.OpRunning),
			Steps: store.StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: res.Tenant.WorkflowID,
			UpdateID: in.UpdateID, StartedAt: now}
		if _, err := tx.NewInsert().Model(&res.Operation).Exec(ctx); err != nil {
			if store.IsUniqueViolation(err, "operations_one_running_key") {
				return domain.Errorf(domain.CodeConflict, "another operation is running on tenant %s", in.TenantID)
			}
			return fmt.Errorf("insert operation: %w", err)
		}
		res.Tenant.CurrentOperationID, res.Tenant.UpdatedAt = &in.OperationID, now
		if _, err := tx.NewUpdate().Model(&res.Tenant).Column("current_operation_id", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update tenant: %w", err)
		}
		return a.event(ctx, tx, res.Tenant, in.Request, nil, "tenant."+string(in.Kind)+"_requested",
			map[string]any{"operation_id": in.OperationID}, "requested")
	})
	return res, asApplicationError(err)
}

// RecordInput is a change to an operation and its tenant, with the audit
// event that records it.
type RecordInput struct {
	TenantID    string
	OperationID string
	// Status, when set, becomes the operation's status; a final status ends
	// the operation.
	Status domain.OpStatus
	// State, when set, becomes the tenant's state.
	State domain.State
	// Action is the audit event's action (empty: none), written by the
	// system on behalf of Request's actor, or by an operator.
	Action   string
	Operator string
	Request  Request
	Data     map[string]any
}

// Record applies a change to an operation and its tenant and writes its
// event, in one transaction; a retried attempt writes the event once.
func (a *Activities) Record(ctx context.Context, in RecordInput) (store.Tenant, error) {
	var t store.Tenant
	err := a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&t).Where("id = ?", in.TenantID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("load tenant %s: %w", in.TenantID, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		before := t.State
		if in.State != "" {
			t.State = string(in.State)
		}
		if in.Status != "" && in.Status != domain.OpRunning && in.Status != domain.OpStuck {
			if t.CurrentOperationID != nil && *t.CurrentOperationID == in.OperationID {
				t.CurrentOperationID = nil
			}
		}
		t.UpdatedAt = now
		if _, err := tx.NewUpdate().Model(&t).Column("state", "current_operation_id", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update tenant %s: %w", in.TenantID, err)
		}
		if in.Status != "" {
			q := tx.NewUpdate().Model((*store.Operation)(nil)).Set("status = ?", in.Status).Where("id = ?", in.OperationID)
			if in.Status != domain.OpRunning && in.Status != domain.OpStuck {
				q = q.Set("ended_at = coalesce(ended_at, ?)", now)
			}
			if _, err := q.Exec(ctx); err != nil {
				return fmt.Errorf("update operation %s: %w", in.OperationID, err)
			}
		}
		if in.Action == "" {
			return nil
		}
		data := map[string]any{"operation_id": in.OperationID}
		for k, v := range in.Data {
			data[k] = v
		}
		if before != t.State {
			data["before"], data["after"] = map[string]any{"state": before}, map[string]any{"state": t.State}
		}
		return a.event(ctx, tx, t, in.Request, &in.Operator, in.Action, data, "")
	})
	return t, err
}

// event writes a tenant's audit event. A requested event is the human's
// own; any other is the system's on the human's behalf, or an operator's.
// The dedup key is the activity's, which its retries keep.
func (a *Activities) event(ctx context.Context, tx bun.Tx, t store.Tenant, r Request, operator *string, action string, data map[string]any, kind string) error {
	info := activity.GetInfo(ctx)
	key := info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	ev := &store.AuditEvent{OrgID: t.OrgID, Action: action, TargetType: "tenant", TargetID: t.ID,
		RequestID: r.RequestID, WorkflowID: t.WorkflowID, DedupKey: &key}
	switch {
	case kind == "requested":
		ev.ActorType, ev.ActorID, ev.ActorEmail = r.Actor.Type, r.Actor.ID, r.Actor.Email
		ev.ClientAddr, ev.UserAgent = r.ClientAddr, r.UserAgent
	case operator != nil && *operator != "":
		ev.ActorType, ev.ActorID = "operator", *operator
	default:
		ev.ActorType, ev.ActorID = "system", "saga"
		b, _ := json.Marshal(r.Actor)
		ev.OnBehalfOf = b
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		ev.Data = b
	}
	_, err := store.InsertEvent(ctx, tx, ev)
	return err
}

// StepInput is one data-plane step of an operation.
type StepInput struct {
	OperationID string
	Tenant      TenantRef
	Step        string
}

// RunStep runs one data-plane step and records the attempt on the
// operation, so the status view shows attempts and the last error.
func (a *Activities) RunStep(ctx context.Context, in StepInput) error {
	fn, ok := a.steps()[in.Step]
	if !ok {
		return temporal.NewNonRetryableApplicationError("unknown step "+in.Step, "UNKNOWN_STEP", nil)
	}
	// Only outcomes are written (an attempt's start is in Temporal's
	// history): one write per attempt keeps provisioning throughput up.
	attempt := int(activity.GetInfo(ctx).Attempt)
	// Heartbeats let Temporal see a dead worker within the heartbeat
	// timeout, not the step's whole time limit.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	if err := fn(ctx, in.Tenant); err != nil {
		if rerr := store.UpdateStep(context.WithoutCancel(ctx), a.DB, in.OperationID, in.Step, "failed", attempt, err.Error()); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return store.UpdateStep(ctx, a.DB, in.OperationID, in.Step, "done", attempt, "")
}

func (a *Activities) steps() map[string]func(context.Context, TenantRef) error {
	dp := a.DataPlane
	return map[string]func(context.Context, TenantRef) error{
		"schema": dp.CreateSchema, "keys": dp.CreateKeys, "route": dp.CreateRoute,
		"drop_schema": dp.DropSchema, "delete_keys": dp.DeleteKeys, "delete_route": dp.DeleteRoute,
		"suspend_route": dp.SuspendRoute, "resume_route": dp.ResumeRoute,
	}
}
