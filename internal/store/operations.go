package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// The tenant writes of the saga: each in one transaction, with its checks
// (the name, the hostname, the plan's tenant quota, the state a transition
// starts from) and its audit event. Activities call them; a retried call
// finds what an earlier attempt committed.

// TenantRequest is the human request behind a tenant write: who, and from
// where. Its *_requested events record it; the system's events name its
// actor as the one they act for.
type TenantRequest struct {
	Actor      domain.Actor
	UserID     string
	RequestID  string
	ClientAddr string
	UserAgent  string
}

// OperationAnswer answers a lifecycle request: the tenant and the
// operation the caller follows.
type OperationAnswer struct {
	Tenant    Tenant
	Operation Operation
	// RequestID is the request this answer was made for: a retry that gets
	// the same answer has another request id.
	RequestID string
	// Replayed says that the operation had already begun and has ended:
	// the answer is given again, nothing runs.
	Replayed bool
}

// NewTenant is a tenant to reserve, with its provisioning operation.
type NewTenant struct {
	ID          string
	OrgID       string
	Name        string
	Environment string
	Hostname    string
	WorkflowID  string
	// ExpiresAt ends an ephemeral tenant's life (nil: none);
	// LifetimeSeconds is the lifetime its creation asked for.
	ExpiresAt       *time.Time
	LifetimeSeconds *int64
	// Region is where its data plane is (empty: the installation's own).
	Region      string
	OperationID string
	Steps       []string
	Request     TenantRequest
}

// reservationChecks are a creation's three checks: the name ($2) held by
// a live tenant of the organisation ($1), the hostname ($3) by any live
// tenant, and the tenants the quota counts; prepared: every creation runs
// them.
var reservationChecks = prepare(`SELECT
	EXISTS (SELECT 1 FROM tenants WHERE org_id = $1 AND name = $2 AND ` + notEnded("state") + `),
	EXISTS (SELECT 1 FROM tenants WHERE hostname = $3 AND ` + notEnded("state") + `),
	(` + liveTenantsOf("$1") + `)`)

// ReserveTenant writes a new tenant in state provisioning with its
// provisioning operation and the create_requested event, in one
// transaction, after checking that the name and the hostname are free
// among live tenants and that the plan's tenant quota allows one more:
// the one place the quota is checked, with the organisation's row locked
// so concurrent creations are counted one after the other. A retry after
// a commit finds the tenant and returns it.
func ReserveTenant(ctx context.Context, db bun.IDB, in NewTenant) (OperationAnswer, error) {
	var res OperationAnswer
	err := inPlanTurn(ctx, db, in.OrgID, func(ctx context.Context, tx bun.Tx) error {
		if existing, err := scanTenant(ctx, tenantByID, tx, []any{in.ID}); err == nil {
			// The tenant's provisioning, whatever id an earlier attempt
			// (of an earlier release) gave it.
			var op Operation
			if err := tx.NewSelect().Model(&op).Where("tenant_id = ? AND kind = ?", existing.ID, domain.OpProvision).Scan(ctx); err != nil {
				return fmt.Errorf("load the provisioning of tenant %s: %w", existing.ID, err)
			}
			res = OperationAnswer{Tenant: existing, Operation: op, RequestID: op.RequestID}
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load tenant %s: %w", in.ID, err)
		}
		plan, err := LockPlan(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		// The three checks in one statement, after the lock (a statement
		// of its own, so its snapshot sees every creation the lock waited
		// for).
		var nameHeld, hostHeld bool
		var live int
		err = reservationChecks.scan(ctx, tx, []any{in.OrgID, in.Name, in.Hostname}, &nameHeld, &hostHeld, &live)
		if err != nil {
			return fmt.Errorf("check tenant name, hostname and quota: %w", err)
		}
		if nameHeld {
			return nameTaken(in.Name)
		}
		if hostHeld {
			return hostnameTaken(in.Hostname)
		}
		if live >= plan.MaxTenants {
			return domain.Errorf(domain.CodeConflict, "tenant quota reached: plan %s allows %d tenants", plan.ID, plan.MaxTenants)
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		t := Tenant{ID: in.ID, OrgID: in.OrgID, Name: in.Name, Environment: in.Environment, Hostname: in.Hostname, WorkflowID: in.WorkflowID,
			State: string(domain.StateProvisioning), CurrentOperationID: &in.OperationID, CreatedBy: in.Request.UserID, CreatedAt: now, UpdatedAt: now,
			ExpiresAt: in.ExpiresAt, LifetimeSeconds: in.LifetimeSeconds, Region: in.Region}
		op := Operation{ID: in.OperationID, OrgID: t.OrgID, TenantID: t.ID, Kind: string(domain.OpProvision), Status: string(domain.OpRunning),
			Steps: StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: t.WorkflowID, StartedAt: now}
		if _, err := tx.NewInsert().Model(&t).Exec(ctx); err != nil {
			if IsUniqueViolation(err, "tenants_live_name_key") {
				return nameTaken(t.Name)
			}
			if IsUniqueViolation(err, "tenants_live_hostname_key") {
				return hostnameTaken(t.Hostname)
			}
			return fmt.Errorf("insert tenant: %w", err)
		}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			return fmt.Errorf("insert operation: %w", err)
		}
		if err := tenantEvent(ctx, tx, t, in.Request, "", domain.MustTransition(domain.OpProvision).Events.Requested,
			map[string]any{"after": tenantCreated(t)},
			true, t.WorkflowID+"/requested/"+op.ID); err != nil {
			return err
		}
		res = OperationAnswer{Tenant: t, Operation: op, RequestID: op.RequestID}
		return nil
	})
	return res, err
}

// nameTaken refuses a name another live tenant of the organisation has. It
// names no tenant: the caller may not see it (a service account limited to
// ci creating a name a prod tenant holds), and the store does not know
// the caller.
func nameTaken(name string) error {
	return domain.Errorf(domain.CodeConflict, "tenant name %q is taken in this organization", name)
}

// hostnameTaken refuses a hostname another live tenant has, in this
// organisation or another; it names no other organisation.
// tenantCreated is what a creation's audit event says the tenant is: its
// region only when it has one, so the events of tenants without keep
// their form.
func tenantCreated(t Tenant) map[string]any {
	after := map[string]any{"name": t.Name, "environment": t.Environment, "hostname": t.Hostname}
	if t.Region != "" {
		after["region"] = t.Region
	}
	return after
}

func hostnameTaken(hostname string) error {
	return domain.Errorf(domain.CodeConflict, "hostname %s is taken; choose another tenant name", hostname)
}

// CreatedTenant finds the tenant and provisioning operation the creation
// of this workflow id wrote, as the creation answered them: the tenant in
// provisioning, the operation running with its steps pending. found is
// false when no creation of that workflow has written its tenant.
func CreatedTenant(ctx context.Context, db bun.IDB, workflowID string) (res OperationAnswer, found bool, err error) {
	t, err := scanTenant(ctx, tenantByWorkflow, db, []any{workflowID})
	if errors.Is(err, sql.ErrNoRows) {
		return res, false, nil
	}
	if err != nil {
		return res, false, err
	}
	ops, err := ListOperations(ctx, db, t.ID, Keyset{}, 1)
	if err != nil || len(ops) == 0 {
		return res, false, err
	}
	op := ops[0]
	t.State, t.CurrentOperationID, t.UpdatedAt = string(domain.StateProvisioning), &op.ID, t.CreatedAt
	names := make([]string, len(op.Steps))
	for i, st := range op.Steps {
		names[i] = st.Name
	}
	op.Status, op.Steps, op.EndedAt = string(domain.OpRunning), StepNames(names...), nil
	return OperationAnswer{Tenant: t, Operation: op, RequestID: op.RequestID}, true, nil
}

// Transition is a lifecycle operation to begin on a tenant.
type Transition struct {
	TenantID    string
	OrgID       string
	OperationID string
	Kind        domain.OpKind
	Steps       []string
	UpdateID    string
	Request     TenantRequest
}

// BeginOperation writes the operation of a requested transition and its
// *_requested event, after checking the tenant's state allows it, in one
// transaction with the tenant's row locked. A retry after a commit finds
// the operation and returns it; an update id that already began an
// operation (in an earlier run of the workflow) returns that operation,
// marked replayed once it has ended. A restore writes no operation: it
// answers with the decommission it calls off.
func BeginOperation(ctx context.Context, db bun.IDB, in Transition) (OperationAnswer, error) {
	var res OperationAnswer
	tr, ok := domain.TransitionOf(in.Kind)
	if !ok || tr.Path == "" {
		return res, domain.Errorf(domain.CodeBadRequest, "unknown operation %q", in.Kind)
	}
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var t Tenant
		if err := tx.NewSelect().Model(&t).Where("id = ?", in.TenantID).For("NO KEY UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("load tenant %s: %w", in.TenantID, err)
		}
		var op Operation
		if tr.During != "" {
			// A restore cancels the running decommission operation (the
			// workflow checked that one runs); it is that operation the
			// caller follows.
			if t.CurrentOperationID == nil {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			if err := tx.NewSelect().Model(&op).Where("id = ?", *t.CurrentOperationID).Scan(ctx); err != nil {
				return fmt.Errorf("load operation: %w", err)
			}
			if op.Kind != string(tr.During) {
				return domain.Errorf(domain.CodeConflict, "no decommission is running on tenant %s", in.TenantID)
			}
			res = OperationAnswer{Tenant: t, Operation: op, RequestID: in.Request.RequestID}
			return tenantEvent(ctx, tx, t, in.Request, "", tr.Events.Requested,
				map[string]any{"operation_id": op.ID}, true, RestoreEventKey(t.WorkflowID, in.UpdateID))
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
			res = OperationAnswer{Tenant: t, Operation: op, RequestID: op.RequestID, Replayed: domain.OpStatus(op.Status).Ended()}
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("load operation %s of update %s: %w", in.OperationID, in.UpdateID, err)
		}
		if err := domain.CanStart(in.Kind, domain.State(t.State)); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		op = Operation{ID: in.OperationID, OrgID: in.OrgID, TenantID: in.TenantID, Kind: string(in.Kind), Status: string(domain.OpRunning),
			Steps: StepNames(in.Steps...), RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: t.WorkflowID,
			UpdateID: in.UpdateID, StartedAt: now}
		t.CurrentOperationID, t.UpdatedAt = &in.OperationID, now
		// The operation and the tenant's pointer to it, in one statement.
		if _, err := tx.NewUpdate().With("op", tx.NewInsert().Model(&op)).
			Model(&t).Column("current_operation_id", "updated_at").WherePK().Exec(ctx); err != nil {
			if IsUniqueViolation(err, "operations_one_running_key") {
				return domain.Errorf(domain.CodeConflict, "another operation is running on tenant %s", in.TenantID)
			}
			return fmt.Errorf("insert operation and update tenant: %w", err)
		}
		res = OperationAnswer{Tenant: t, Operation: op, RequestID: op.RequestID}
		return tenantEvent(ctx, tx, t, in.Request, "", tr.Events.Requested,
			map[string]any{"operation_id": in.OperationID}, true, t.WorkflowID+"/requested/"+op.ID)
	})
	return res, err
}

// TenantOperation reads a tenant and one of its operations.
func TenantOperation(ctx context.Context, db bun.IDB, tenantID, operationID string) (Tenant, Operation, error) {
	var t Tenant
	if err := db.NewSelect().Model(&t).Where("id = ?", tenantID).Scan(ctx); err != nil {
		return t, Operation{}, fmt.Errorf("load tenant %s: %w", tenantID, err)
	}
	var op Operation
	if err := db.NewSelect().Model(&op).Where("id = ? AND tenant_id = ?", operationID, tenantID).Scan(ctx); err != nil {
		return t, op, fmt.Errorf("load operation %s: %w", operationID, err)
	}
	return t, op, nil
}

// OperationChange is a change to an operation and its tenant, with the
// audit event that records it.
type OperationChange struct {
	TenantID    string
	OperationID string
	// Status, when set, becomes the operation's status; a final status ends
	// the operation.
	Status domain.OpStatus
	// State, when set, becomes the tenant's state.
	State domain.State
	// Action is the audit event's action (empty: none), written by the
	// system on behalf of Request's actor, or by Operator.
	Action   string
	Operator string
	Request  TenantRequest
	Data     map[string]any
	// EventKey identifies the event for good, so a retried write writes
	// it once.
	EventKey string
	// GraceEndsAt, when set, is when the decommission's grace period ends.
	GraceEndsAt *time.Time
	// EndLifetime clears an ephemeral tenant's expires_at.
	EndLifetime bool
}

// recordOperation is RecordOperation's statement: the operation's change
// (when there is one: a status $1, or a grace period's end $4) and the
// tenant's (a state $6), whose row the subquery locks first, reading the
// state this change replaces; $2 says the status ends the operation (at
// $3), $7 that the tenant's lifetime ends. Prepared: every step of every
// saga runs it.
var recordOperation = prepare(`WITH op AS (
		UPDATE operations SET
			status = coalesce(nullif($1, ''), status),
			ended_at = CASE WHEN $2 THEN coalesce(ended_at, $3) ELSE ended_at END,
			grace_ends_at = coalesce($4, grace_ends_at)
		WHERE id = $5 AND ($1 <> '' OR $4::timestamptz IS NOT NULL)
	)
	UPDATE tenants AS t SET
		state = coalesce(nullif($6, ''), t.state),
		current_operation_id = CASE WHEN $2 AND t.current_operation_id = $5 THEN NULL ELSE t.current_operation_id END,
		updated_at = $3,
		expires_at = CASE WHEN $7 THEN NULL ELSE t.expires_at END
	FROM (SELECT id, state FROM tenants WHERE id = $8 FOR NO KEY UPDATE) AS old
	WHERE t.id = old.id
	RETURNING ` + tenantSelect("t") + `, old.state`)

// RecordOperation applies a change to an operation and its tenant and
// writes its event, in one transaction with the tenant's row locked; a
// retry writes the event once. It returns the tenant as written.
func RecordOperation(ctx context.Context, db bun.IDB, in OperationChange) (Tenant, error) {
	var t Tenant
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond) // as Postgres stores it, so a replay reads back the same answer
		// One statement: the operation's change (when there is one) and
		// the tenant's, whose row the subquery locks first,
		// reading the state this change replaces.
		var grace *time.Time
		if in.GraceEndsAt != nil {
			g := in.GraceEndsAt.UTC()
			grace = &g
		}
		ends := in.Status != "" && in.Status.Ended()
		var before string
		var err error
		t, err = scanTenant(ctx, recordOperation, tx, []any{string(in.Status), ends, now, grace, in.OperationID, string(in.State), in.EndLifetime, in.TenantID}, &before)
		if err != nil {
			return fmt.Errorf("update tenant %s and operation %s: %w", in.TenantID, in.OperationID, err)
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
		return tenantEvent(ctx, tx, t, in.Request, in.Operator, in.Action, data, false, in.EventKey)
	})
	return t, err
}

// tenantEvent writes a tenant's audit event, identified across retries by
// key. A requested event is the human's own; any other is the system's on
// the human's behalf, or an operator's.
func tenantEvent(ctx context.Context, tx bun.Tx, t Tenant, r TenantRequest, operator, action string, data map[string]any, requested bool, key string) error {
	ev := &AuditEvent{OrgID: t.OrgID, Action: action, TargetType: "tenant", TargetID: t.ID,
		RequestID: r.RequestID, WorkflowID: t.WorkflowID, DedupKey: &key}
	switch {
	case requested:
		ev.ActorType, ev.ActorID, ev.ActorEmail, ev.ActorName, ev.ActorTokenID = r.Actor.Type, r.Actor.ID, r.Actor.Email, r.Actor.Name, r.Actor.TokenID
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
	_, err := InsertEvent(ctx, tx, ev)
	return err
}
