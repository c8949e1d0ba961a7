package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// Tenant is a row of tenants.
type Tenant struct {
	bun.BaseModel `bun:"table:tenants"`

	ID                 string    `bun:"id,pk" json:"id"`
	OrgID              string    `bun:"org_id" json:"org_id"`
	Name               string    `bun:"name" json:"name"`
	Environment        string    `bun:"environment" json:"environment"`
	State              string    `bun:"state" json:"state"`
	Hostname           string    `bun:"hostname" json:"hostname"`
	WorkflowID         string    `bun:"workflow_id" json:"workflow_id"`
	CurrentOperationID *string   `bun:"current_operation_id" json:"current_operation_id"`
	CreatedBy          string    `bun:"created_by" json:"created_by"`
	CreatedAt          time.Time `bun:"created_at" json:"created_at"`
	UpdatedAt          time.Time `bun:"updated_at" json:"updated_at"`
	// ExpiresAt is an ephemeral tenant's end of life (nil: none).
	ExpiresAt *time.Time `bun:"expires_at" json:"expires_at"`
	// LifetimeSeconds is the lifetime its creation asked for (nil: none,
	// or a tenant created before it was kept).
	LifetimeSeconds *int64 `bun:"lifetime_seconds" json:"lifetime_seconds"`
	// Region is where its data plane is (empty: the installation's own).
	Region string `bun:"region" json:"region"`
}

// tenantColumns are a tenant's columns, in the order of tenantRow's
// destinations: a prepared statement that reads a whole tenant names them
// (t.*: a migration adding a column would change the statement's result,
// which Postgres refuses until each connection prepares it again).
var tenantColumns = []string{"id", "org_id", "name", "environment", "state", "hostname", "workflow_id", "current_operation_id",
	"created_by", "created_at", "updated_at", "expires_at", "lifetime_seconds", "region"}

// tenantRow is where a row of tenantColumns is scanned into t.
func tenantRow(t *Tenant) []any {
	return []any{&t.ID, &t.OrgID, &t.Name, &t.Environment, &t.State, &t.Hostname, &t.WorkflowID, &t.CurrentOperationID,
		&t.CreatedBy, &t.CreatedAt, &t.UpdatedAt, &t.ExpiresAt, &t.LifetimeSeconds, &t.Region}
}

// tenantSelect is the list of tenantColumns of the table alias a ("a.id,
// a.org_id, …").
func tenantSelect(a string) string {
	cols := make([]string, len(tenantColumns))
	for i, c := range tenantColumns {
		cols[i] = a + "." + c
	}
	return strings.Join(cols, ", ")
}

// scanTenant scans a tenant read by a prepared statement, and the
// columns after its own into extra, its times in UTC as bun reads them.
func scanTenant(ctx context.Context, p *prepared, db bun.IDB, args []any, extra ...any) (Tenant, error) {
	var t Tenant
	if err := p.scan(ctx, db, args, append(tenantRow(&t), extra...)...); err != nil {
		return t, err
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	if t.ExpiresAt != nil {
		e := t.ExpiresAt.UTC()
		t.ExpiresAt = &e
	}
	return t, nil
}

// tenantByID and tenantByWorkflow read a tenant by its id, or by its
// workflow's; prepared: every creation runs one or both.
var (
	tenantByID       = prepare(`SELECT ` + tenantSelect("t") + ` FROM tenants t WHERE t.id = $1`)
	tenantByWorkflow = prepare(`SELECT ` + tenantSelect("t") + ` FROM tenants t WHERE t.workflow_id = $1`)
)

// Step is one step of an operation as the saga status view shows it.
type Step struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"` // pending, running, done, failed, compensated
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// Operation is a row of operations: one lifecycle action of a tenant.
type Operation struct {
	bun.BaseModel `bun:"table:operations"`

	ID          string     `bun:"id,pk" json:"id"`
	OrgID       string     `bun:"org_id" json:"org_id"`
	TenantID    string     `bun:"tenant_id" json:"tenant_id"`
	Kind        string     `bun:"kind" json:"kind"`
	Status      string     `bun:"status" json:"status"`
	Steps       []Step     `bun:"steps,type:jsonb" json:"steps"`
	RequestedBy string     `bun:"requested_by" json:"requested_by"`
	RequestID   string     `bun:"request_id" json:"request_id"`
	WorkflowID  string     `bun:"workflow_id" json:"workflow_id"`
	UpdateID    string     `bun:"update_id" json:"update_id,omitempty"`
	StartedAt   time.Time  `bun:"started_at" json:"started_at"`
	EndedAt     *time.Time `bun:"ended_at" json:"ended_at"`
	// GraceEndsAt is when a decommission's grace period ends, once it has
	// entered it.
	GraceEndsAt *time.Time `bun:"grace_ends_at" json:"grace_ends_at"`
}

// liveTenants counts the tenants of organisation ? that hold a place in
// its plan's tenant quota: every one that is not failed or decommissioned.
var liveTenants = liveTenantsOf("?")

// liveTenantsOf is liveTenants with the organisation as param (a
// prepared statement's $n).
func liveTenantsOf(param string) string {
	return `SELECT count(*) FROM tenants WHERE org_id = ` + param + ` AND ` + notEnded("state")
}

// CountLiveTenants returns how many of the organisation's tenants the
// tenant quota counts.
func CountLiveTenants(ctx context.Context, db bun.IDB, orgID string) (int, error) {
	var n int
	if err := db.NewRaw(liveTenants, orgID).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count tenants of %s: %w", orgID, err)
	}
	return n, nil
}

// TenantByID returns a tenant of the organisation.
func TenantByID(ctx context.Context, db bun.IDB, orgID, id string) (Tenant, error) {
	var t Tenant
	err := db.NewSelect().Model(&t).Where("org_id = ? AND id = ?", orgID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return t, domain.Errorf(domain.CodeNotFound, "tenant not found: %s", id)
	}
	if err != nil {
		return t, fmt.Errorf("load tenant %s: %w", id, err)
	}
	return t, nil
}

// ListTenants returns up to limit+1 tenants of the organisation after the
// keyset position, oldest first, optionally in one state and of the given
// environments.
func ListTenants(ctx context.Context, db bun.IDB, orgID, state string, environments, regions []string, after Keyset, limit int) ([]Tenant, error) {
	var out []Tenant
	q := db.NewSelect().Model(&out).Where("org_id = ?", orgID).OrderExpr("created_at, id").Limit(int64(limit + 1))
	if state != "" {
		q = q.Where("state = ?", state)
	}
	if len(environments) > 0 {
		q = q.Where("environment IN (?)", bun.In(environments))
	}
	if len(regions) > 0 {
		q = q.Where("region IN (?)", bun.In(regions))
	}
	if after.ID != "" {
		q = q.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list tenants of %s: %w", orgID, err)
	}
	return out, nil
}

// OperationByID returns an operation.
func OperationByID(ctx context.Context, db bun.IDB, id string) (Operation, error) {
	var op Operation
	err := db.NewSelect().Model(&op).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return op, domain.Errorf(domain.CodeNotFound, "operation not found: %s", id)
	}
	return op, err
}

// ListOperations returns up to limit+1 operations of a tenant after the
// keyset position, oldest first.
func ListOperations(ctx context.Context, db bun.IDB, tenantID string, after Keyset, limit int) ([]Operation, error) {
	var out []Operation
	q := db.NewSelect().Model(&out).Where("tenant_id = ?", tenantID).OrderExpr("started_at, id").Limit(int64(limit + 1))
	if after.ID != "" {
		q = q.Where("(started_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list operations of %s: %w", tenantID, err)
	}
	return out, nil
}

// StepNames returns the initial steps of an operation, all pending.
func StepNames(names ...string) []Step {
	out := make([]Step, len(names))
	for i, n := range names {
		out[i] = Step{Name: n, Status: "pending"}
	}
	return out
}

// updateStep writes a step's entry ($2) in its operation's steps, in
// place or after the others; prepared: every attempt of every step runs it.
var updateStep = prepare(`
	UPDATE operations SET steps = CASE
		WHEN steps @> jsonb_build_array(jsonb_build_object('name', $1::text))
		THEN (SELECT jsonb_agg(CASE WHEN e->>'name' = $1::text THEN $2::jsonb ELSE e END ORDER BY i)
		      FROM jsonb_array_elements(steps) WITH ORDINALITY AS t(e, i))
		ELSE steps || jsonb_build_array($2::jsonb)
	END
	WHERE id = $3`)

// UpdateStep records an attempt of one step of an operation: the step's
// entry in the operation's steps is replaced (or added), in one statement
// (a round trip, not a transaction of three: it runs for every step of
// every saga).
func UpdateStep(ctx context.Context, db bun.IDB, opID, step, status string, attempts int, lastErr string) error {
	now := time.Now().UTC()
	entry, _ := json.Marshal(Step{Name: step, Status: status, Attempts: attempts, LastError: lastErr, UpdatedAt: &now})
	n, err := updateStep.exec(ctx, db, step, string(entry), opID)
	if err != nil {
		return fmt.Errorf("record step %s of operation %s: %w", step, opID, err)
	}
	if n == 0 {
		return fmt.Errorf("load operation %s: %w", opID, sql.ErrNoRows)
	}
	return nil
}

// RestoreEventKey is the dedup key of a restore's restore_requested event:
// its tenant's workflow id and the restore's update id.
func RestoreEventKey(workflowID, updateID string) string {
	return workflowID + "/restore/" + updateID
}

// AnsweredOperation finds the operation an earlier attempt of a transition
// began, by its update id, with the request id it was answered for. A
// restore begins no operation of its own: its answer is the decommission
// its restore_requested event names (that event's key is the workflow id
// and the update id). sql.ErrNoRows: no attempt got that far.
func AnsweredOperation(ctx context.Context, db bun.IDB, tenantID, workflowID, updateID string, restore bool) (Operation, string, error) {
	var op Operation
	if !restore {
		err := db.NewSelect().Model(&op).Where("tenant_id = ? AND update_id = ?", tenantID, updateID).Scan(ctx)
		return op, op.RequestID, err
	}
	var ref struct {
		OperationID string `bun:"operation_id"`
		RequestID   string `bun:"request_id"`
	}
	err := db.NewSelect().Model((*AuditEvent)(nil)).ColumnExpr("data->>'operation_id' AS operation_id, request_id").
		Where("dedup_key = ? AND org_id IN (SELECT org_id FROM tenants WHERE id = ?)", RestoreEventKey(workflowID, updateID), tenantID).Scan(ctx, &ref)
	if err != nil {
		return op, "", err
	}
	err = db.NewSelect().Model(&op).Where("id = ? AND tenant_id = ?", ref.OperationID, tenantID).Scan(ctx)
	return op, ref.RequestID, err
}
