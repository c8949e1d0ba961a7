package activities

import (
	"context"
	"errors"
	"time"

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
	// Region is where its data plane is (empty: the installation's own).
	Region string `json:",omitempty"`
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
	Region             string `json:",omitempty"`
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
		LifetimeSeconds: t.LifetimeSeconds, Region: t.Region}
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

// ResultOf returns the payload of the store's answer to a lifecycle
// request.
func ResultOf(a store.OperationAnswer) OperationResult {
	return OperationResult{Tenant: TenantRecordOf(a.Tenant), Operation: OperationRecordOf(a.Operation), RequestID: a.RequestID, Replayed: a.Replayed}
}

// stored returns the request as the store records it.
func (r Request) stored() store.TenantRequest {
	return store.TenantRequest{Actor: r.Actor, UserID: r.UserID, RequestID: r.RequestID, ClientAddr: r.ClientAddr, UserAgent: r.UserAgent}
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
// provisioning operation and the create_requested event
// (store.ReserveTenant, which checks the name, the hostname and the plan's
// tenant quota in the same transaction). A retry after a commit finds the
// tenant and returns it.
func (a *Activities) ReserveTenant(ctx context.Context, in ReserveInput) (OperationResult, error) {
	nt := in.Tenant
	res, err := store.ReserveTenant(ctx, a.DB, store.NewTenant{ID: nt.ID, OrgID: nt.OrgID, Name: nt.Name, Environment: nt.Environment,
		Hostname: nt.Hostname, WorkflowID: nt.WorkflowID, ExpiresAt: nt.ExpiresAt, LifetimeSeconds: nt.LifetimeSeconds, Region: nt.Region,
		OperationID: in.OperationID, Steps: in.Steps, Request: in.Request.stored()})
	if err != nil {
		return OperationResult{}, asApplicationError(err)
	}
	return ResultOf(res), nil
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
// *_requested event, after checking the tenant's state allows it
// (store.BeginOperation). A retry after a commit finds the operation and
// returns it; an update id that already began an operation (in an earlier
// run of the workflow) returns that operation, marked replayed once it
// has ended.
func (a *Activities) BeginOperation(ctx context.Context, in BeginInput) (OperationResult, error) {
	res, err := store.BeginOperation(ctx, a.DB, store.Transition{TenantID: in.TenantID, OrgID: in.OrgID, OperationID: in.OperationID,
		Kind: in.Kind, Steps: in.Steps, UpdateID: in.UpdateID, Request: in.Request.stored()})
	if err != nil {
		return OperationResult{}, asApplicationError(err)
	}
	return ResultOf(res), nil
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
	t, op, err := store.TenantOperation(ctx, a.DB, in.TenantID, in.OperationID)
	if err != nil {
		return OperationResult{}, asApplicationError(err)
	}
	return ResultOf(store.OperationAnswer{Tenant: t, Operation: op, RequestID: in.RequestID}), nil
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
// event, in one transaction (store.RecordOperation); a retried attempt
// writes the event once.
func (a *Activities) Record(ctx context.Context, in RecordInput) (TenantRecord, error) {
	key := in.EventKey
	if key == "" {
		// The activity's id in its run, which its retries keep.
		info := activity.GetInfo(ctx)
		key = info.WorkflowExecution.ID + "/" + info.WorkflowExecution.RunID + "/" + info.ActivityID
	}
	t, err := store.RecordOperation(ctx, a.DB, in.change(key))
	return TenantRecordOf(t), asApplicationError(err)
}

// change is the store's form of the record, its event keyed by key: the
// one place a workflow's record becomes a write.
func (in RecordInput) change(key string) store.OperationChange {
	return store.OperationChange{TenantID: in.TenantID, OperationID: in.OperationID,
		Status: in.Status, State: in.State, Action: in.Action, Operator: in.Operator, Request: in.Request.stored(), Data: in.Data,
		EventKey: key, GraceEndsAt: in.GraceEndsAt, EndLifetime: in.EndLifetime}
}
