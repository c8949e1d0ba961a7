package activities

import (
	"context"
	"database/sql"
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
	Actor      domain.Actor
	UserID     string
	RequestID  string
	ClientAddr string
	UserAgent  string
}

// NewTenant is a tenant to create, as its workflow knows it.
type NewTenant struct {
	ID          string
	OrgID       string
	Name        string
	Environment string
	Hostname    string
	WorkflowID  string
	// ExpiresAt ends an ephemeral tenant's life (nil: none).
	ExpiresAt *time.Time
	// LifetimeSeconds is the lifetime its creation asked for.
	LifetimeSeconds *int64 `json:",omitempty"`
}

// ReserveInput is a tenant to create.
type ReserveInput struct {
	Tenant      NewTenant
	OperationID string
	Steps       []string
	Request     Request
}

// TenantRecord is a tenant as an activity wrote or read it. Workflow
// payloads are types of their own, so a database column or an API field can
// change without changing what running workflows hold in their histories.
type TenantRecord struct {
	ID                 string
	OrgID              string
	Name               string
	Environment        string
	State              string
	Hostname           string
	WorkflowID         string
	CurrentOperationID string
	CreatedBy          string
	CreatedAt          time.Time
	UpdatedAt          time.Time
	ExpiresAt          *time.Time
	LifetimeSeconds    *int64 `json:",omitempty"`
}

// StepRecord is one step of an operation: its status, attempts and last
// error.
type StepRecord struct {
	Name      string
	Status    string
	Attempts  int
	LastError string
	UpdatedAt *time.Time
}

// OperationRecord is an operation as an activity wrote or read it.
type OperationRecord struct {
	ID          string
	OrgID       string
	TenantID    string
	Kind        string
	Status      string
	Steps       []StepRecord
	RequestedBy string
	RequestID   string
	WorkflowID  string
	UpdateID    string
	StartedAt   time.Time
	EndedAt     *time.Time
	// GraceEndsAt is when a decommission's grace period ends, once it has
	// entered it.
	GraceEndsAt *time.Time
}

// OperationResult answers a lifecycle request: the tenant and the operation
// the caller follows.
type OperationResult struct {
	Tenant    TenantRecord
	Operation OperationRecord
	// RequestID is the request this answer was made for: a retry that gets
	// the same answer has another request id, and is told it was replayed.
	RequestID string
	// Replayed says that the update had already begun this operation and
	// it has ended: the answer is given again, nothing runs.
	Replayed bool
}

// TenantRecordOf returns the payload of a tenant row.
func TenantRecordOf(t store.Tenant) TenantRecord {
	r := TenantRecord{ID: t.ID, OrgID: t.OrgID, Name: t.Name, Environment: t.Environment, State: t.State, Hostname: t.Hostname,
		WorkflowID: t.WorkflowID, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, ExpiresAt: t.ExpiresAt,
		LifetimeSeconds: t.LifetimeSeconds}
	if t.CurrentOperationID != nil {
		r.CurrentOperationID = *t.CurrentOperationID
	}
	return r
}

// OperationRecordOf returns the payload of an operation row.
func OperationRecordOf(op store.Operation) OperationRecord {
	r := OperationRecord{ID: op.ID, OrgID: op.OrgID, TenantID: op.TenantID, Kind: op.Kind, Status: op.Status,
		RequestedBy: op.RequestedBy, RequestID: op.RequestID, WorkflowID: op.WorkflowID, UpdateID: op.UpdateID,
		StartedAt: op.StartedAt, EndedAt: op.EndedAt, GraceEndsAt: op.GraceEndsAt, Steps: make([]StepRecord, len(op.Steps))}
	for i, s := range op.Steps {
		r.Steps[i] = StepRecord{Name: s.Name, Status: s.Status, Attempts: s.Attempts, LastError: s.LastError, UpdatedAt: s.UpdatedAt}
	}
	return r
}

func resultOf(t store.Tenant, op store.Operation, requestID string) OperationResult {
	return OperationResult{Tenant: TenantRecordOf(t), Operation: OperationRecordOf(op), RequestID: requestID}
}

// ErrTypePermanent is the error type of a write that cannot succeed as it
// is (store.Permanent): retrying it would spin, so the request ends, or the
// saga is stuck on it, visibly, until an operator's retry.
const ErrTypePermanent = "PERMANENT"

// asApplicationError turns a domain error into a non-retryable Temporal
// error whose type is the error code, so an update's caller can tell a
// CONFLICT from a failure, and a write that cannot succeed into a
// non-retryable PERMANENT error (its cause stays in the history and the
// worker log, for operators). Any other error is an infrastructure
// failure, which Temporal retries.
func asApplicationError(err error) error {
	var de *domain.Error
	if errors.As(err, &de) {
		return temporal.NewNonRetryableApplicationError(de.Message, string(de.Code), nil)
	}
	if store.Permanent(err) {
		return temporal.NewNonRetryableApplicationError("a database write cannot succeed as it is", ErrTypePermanent, err)
	}
	return err
}

// ReserveTenant writes a new tenant in state provisioning with its
// provisioning operation and the create_requested event, in one
// transaction, after checking that the name is free among the live tenants
// of the organisation and that the plan's tenant quota allows one more. A
// retry after a commit finds the tenant and returns it.
func (a *Activities) ReserveTenant(ctx context.Context, in ReserveInput) (OperationResult, error) {
	var res OperationResult
	err := a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var existing store.Tenant
		if err := tx.NewSelect().Model(&existing).Where("id = ?", in.Tenant.ID).Scan(ctx); err == nil {
			// The tenant's provisioning, whatever id an earlier attempt
			// (of an earlier release) gave it.
			var op store.Operation
			if err := tx.NewSelect().Model(&op).Where("tenant_id = ? AND kind = ?", existing.ID, domain.OpProvision).Scan(ctx); err != nil {
				return fmt.Errorf("load the provisioning of tenant %s: %w", existing.ID, err)
			}
			res = resultOf(existing, op, op.RequestID)
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load tenant %s: %w", in.Tenant.ID, err)
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
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check tenant name: %w", err)
		}
		var holder string
		err = tx.NewSelect().Model((*store.Tenant)(nil)).Column("id").
			Where("hostname = ? AND state NOT IN ('failed', 'decommissioned')", in.Tenant.Hostname).Scan(ctx, &holder)
		if err == nil {
			return hostnameTaken(in.Tenant.Hostname)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("check tenant hostname: %w", err)
		}
		live, err := store.CountLiveTenants(ctx, tx, in.Tenant.OrgID)
		if err != nil {
			return err
		}
		if live >= plan.MaxTenants {
			return domain.Errorf(domain.CodeConflict, "tenant quota reached: plan %s allows %d tenants", plan.ID, plan.MaxTenants)
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		nt := in.Tenant
		t := store.Tenant{ID: nt.ID, OrgID: nt.OrgID, Name: nt.Name, Environment: nt.Environment, Hostname: nt.Hostname, WorkflowID: nt.WorkflowID,
			State: string(domain.StateProvisioning), CurrentOperationID: &in.OperationID, CreatedBy: in.Request.UserID, CreatedAt: now, UpdatedAt: now,
			ExpiresAt: nt.ExpiresAt, LifetimeSeconds: nt.LifetimeSeconds}
		op := store.Operation{ID: in.OperationID, OrgID: t.OrgID, TenantID: t.ID, Kind: string(domain.OpProvision), Status: string(domain.OpRunning),
			Steps: store.StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: t.WorkflowID, StartedAt: now}
		if _, err := tx.NewInsert().Model(&t).Exec(ctx); err != nil {
			if store.IsUniqueViolation(err, "tenants_live_name_key") {
				return domain.Errorf(domain.CodeConflict, "tenant name %q is taken in this organization", t.Name)
			}
			if store.IsUniqueViolation(err, "tenants_live_hostname_key") {
				return hostnameTaken(t.Hostname)
			}
			return fmt.Errorf("insert tenant: %w", err)
		}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			return fmt.Errorf("insert operation: %w", err)
		}
		if err := a.event(ctx, tx, t, in.Request, "", "tenant.create_requested",
			map[string]any{"after": map[string]any{"name": t.Name, "environment": t.Environment, "hostname": t.Hostname}},
			true, t.WorkflowID+"/requested/"+op.ID); err != nil {
			return err
		}
		res = resultOf(t, op, op.RequestID)
		return nil
	})
	return res, asApplicationError(err)
}

// hostnameTaken refuses a hostname another live tenant has, in this
// organisation or another; it names no other organisation.
func hostnameTaken(hostname string) error {
	return domain.Errorf(domain.CodeConflict, "hostname %s is taken; choose another tenant name", hostname)
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
// after a commit finds the operation and returns it; an update id that
// already began an operation (in an earlier run of the workflow) returns
// that operation, marked replayed.
func (a *Activities) BeginOperation(ctx context.Context, in BeginInput) (OperationResult, error) {
	var res OperationResult
	err := a.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var t store.Tenant
		if err := tx.NewSelect().Model(&t).Where("id = ?", in.TenantID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("load tenant %s: %w", in.TenantID, err)
		}
		var op store.Operation
		if in.Kind == domain.OpRestore {
			// A restore cancels the running decommission operation (the
			// workflow checked that one runs); it is that operation the
			// caller follows.
			if t.CurrentOperationID == nil {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			if err := tx.NewSelect().Model(&op).Where("id = ?", *t.CurrentOperationID).Scan(ctx); err != nil {
				return fmt.Errorf("load operation: %w", err)
			}
			if op.Kind != string(domain.OpDecommission) {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			res = resultOf(t, op, in.Request.RequestID)
			return a.event(ctx, tx, t, in.Request, "", "tenant.restore_requested",
				map[string]any{"operation_id": op.ID}, true, store.RestoreEventKey(t.WorkflowID, in.UpdateID))
		}
		// An earlier attempt of the request may have written its operation
		// (its id is derived from the update, or, from an API of an earlier
		// release, found by the update id): one still running is the
		// caller's to run, since Temporal may have lost the update that
		// wrote it; one that ended is only answered again.
		q := tx.NewSelect().Model(&op).Where("id = ?", in.OperationID)
		if in.UpdateID != "" {
			q = q.WhereOr("tenant_id = ? AND update_id = ?", in.TenantID, in.UpdateID)
		}
		err := q.Limit(1).Scan(ctx)
		if err == nil {
			res = resultOf(t, op, op.RequestID)
			res.Replayed = domain.OpStatus(op.Status).Ended()
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load operation %s of update %s: %w", in.OperationID, in.UpdateID, err)
		}
		if err := domain.CanStart(in.Kind, domain.State(t.State)); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		op = store.Operation{ID: in.OperationID, OrgID: in.OrgID, TenantID: in.TenantID, Kind: string(in.Kind), Status: string(domain.OpRunning),
			Steps: store.StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: t.WorkflowID,
			UpdateID: in.UpdateID, StartedAt: now}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			if store.IsUniqueViolation(err, "operations_one_running_key") {
				return domain.Errorf(domain.CodeConflict, "another operation is running on tenant %s", in.TenantID)
			}
			return fmt.Errorf("insert operation: %w", err)
		}
		t.CurrentOperationID, t.UpdatedAt = &in.OperationID, now
		if _, err := tx.NewUpdate().Model(&t).Column("current_operation_id", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update tenant: %w", err)
		}
		res = resultOf(t, op, op.RequestID)
		return a.event(ctx, tx, t, in.Request, "", "tenant."+string(in.Kind)+"_requested",
			map[string]any{"operation_id": in.OperationID}, true, t.WorkflowID+"/requested/"+op.ID)
	})
	return res, asApplicationError(err)
}

// LoadInput names an operation whose answer is given again.
type LoadInput struct {
	TenantID    string
	OperationID string
	RequestID   string
}

// LoadOperation reads a tenant and one of its operations: the answer to a
// request that a retry repeats after the workflow continued as new.
func (a *Activities) LoadOperation(ctx context.Context, in LoadInput) (OperationResult, error) {
	var t store.Tenant
	if err := a.DB.NewSelect().Model(&t).Where("id = ?", in.TenantID).Scan(ctx); err != nil {
		return OperationResult{}, asApplicationError(fmt.Errorf("load tenant %s: %w", in.TenantID, err))
	}
	var op store.Operation
	if err := a.DB.NewSelect().Model(&op).Where("id = ? AND tenant_id = ?", in.OperationID, in.TenantID).Scan(ctx); err != nil {
		return OperationResult{}, asApplicationError(fmt.Errorf("load operation %s: %w", in.OperationID, err))
	}
	return resultOf(t, op, in.RequestID), nil
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
	// EventKey identifies the event for good: the workflow derives it from
	// its own state, so a retried activity, a reset workflow and a new run
	// write the event once. Empty: the activity's id in its run.
	EventKey string
	// GraceEndsAt, when set, is when the decommission's grace period ends,
	// stored on the operation for members to see.
	GraceEndsAt *time.Time
	// EndLifetime clears an ephemeral tenant's expires_at: its end was
	// called off, and it lives on with no lifetime.
	EndLifetime bool `json:",omitempty"`
}

// Record applies a change to an operation and its tenant and writes its
// event, in one transaction; a retried attempt writes the event once.
func (a *Activities) Record(ctx context.Context, in RecordInput) (TenantRecord, error) {
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
		if in.Status != "" && in.Status.Ended() {
			if t.CurrentOperationID != nil && *t.CurrentOperationID == in.OperationID {
				t.CurrentOperationID = nil
			}
		}
		t.UpdatedAt = now
		if in.EndLifetime {
			t.ExpiresAt = nil
		}
		if _, err := tx.NewUpdate().Model(&t).Column("state", "current_operation_id", "updated_at", "expires_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update tenant %s: %w", in.TenantID, err)
		}
		if in.Status != "" || in.GraceEndsAt != nil {
			q := tx.NewUpdate().Model((*store.Operation)(nil)).Where("id = ?", in.OperationID)
			if in.Status != "" {
				q = q.Set("status = ?", in.Status)
				if in.Status.Ended() {
					q = q.Set("ended_at = coalesce(ended_at, ?)", now)
				}
			}
			if in.GraceEndsAt != nil {
				q = q.Set("grace_ends_at = ?", in.GraceEndsAt.UTC())
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
		return a.event(ctx, tx, t, in.Request, in.Operator, in.Action, data, false, in.EventKey)
	})
	return TenantRecordOf(t), asApplicationError(err)
}

// event writes a tenant's audit event. A requested event is the human's
// own; any other is the system's on the human's behalf, or an operator's.
// key identifies the event across retries (empty: the activity's id in its
// run, which its retries keep).
func (a *Activities) event(ctx context.Context, tx bun.Tx, t store.Tenant, r Request, operator, action string, data map[string]any, requested bool, key string) error {
	if key == "" {
		info := activity.GetInfo(ctx)
		key = info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	}
	ev := &store.AuditEvent{OrgID: t.OrgID, Action: action, TargetType: "tenant", TargetID: t.ID,
		RequestID: r.RequestID, WorkflowID: t.WorkflowID, DedupKey: &key}
	switch {
	case requested:
		ev.ActorType, ev.ActorID, ev.ActorEmail, ev.ActorName = r.Actor.Type, r.Actor.ID, r.Actor.Email, r.Actor.Name
		ev.ClientAddr, ev.UserAgent = r.ClientAddr, r.UserAgent
		if r.Actor.OnBehalfOf != nil {
			b, err := json.Marshal(r.Actor.OnBehalfOf)
			if err != nil {
				return fmt.Errorf("encode on_behalf_of: %w", err)
			}
			ev.OnBehalfOf = b
		}
	case operator != "":
		ev.ActorType, ev.ActorID = "operator", operator
	default:
		ev.ActorType, ev.ActorID = "system", "saga"
		behalf := &r.Actor
		if r.Actor.Type == "system" && r.Actor.OnBehalfOf != nil {
			// The system's own request (an ephemeral tenant's end): its
			// steps are done for whoever created the tenant.
			behalf = r.Actor.OnBehalfOf
		}
		b, err := json.Marshal(behalf)
		if err != nil {
			return fmt.Errorf("encode on_behalf_of: %w", err)
		}
		ev.OnBehalfOf = b
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encode event data: %w", err)
		}
		ev.Data = b
	}
	_, err := store.InsertEvent(ctx, tx, ev)
	return err
}
