package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// Names of the tenant workflow's updates and query. Repairs are updates an
// operator types, through the operator gateway with their certificate:
//
//	temporal workflow update execute --workflow-id <id> --name retry \
//	  --input '{"operation_id":"op_…","step":"keys"}'
const (
	UpdateProvision  = "provision"
	UpdateTransition = "transition"
	UpdateLifetime   = "lifetime"
	QueryStatus      = "status"
)

// LifetimeRequest gives a tenant a new end (ExpiresAt nil: it lives on
// with none), as Request asks. The caller's power to decommission was
// checked: giving a lifetime is decommissioning in advance.
type LifetimeRequest struct {
	ExpiresAt *time.Time `json:",omitempty"`
	Request   activities.Request
}

// LifetimeUpdateID is the update id of a lifetime change asked for with
// an idempotency key.
func LifetimeUpdateID(key string) string { return "lifetime/" + key }

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
	// Region is where the tenant's data plane is (revision 7 on; empty:
	// the installation's own, served by the control plane's workers). It
	// never changes.
	Region string `json:",omitempty"`
}

// RegionTaskQueue is the task queue of a region's data-plane steps, beside
// the control plane's taskQueue: `controlplane worker --region <region>`
// polls it.
func RegionTaskQueue(taskQueue, region string) string {
	return taskQueue + "-region-" + region
}

func (p TenantParams) expiresAt() *time.Time {
	if p.Expiry == nil {
		return nil
	}
	at := p.Expiry.At
	return &at
}

func (p TenantParams) lifetimeSeconds() *int64 {
	if p.Expiry == nil || p.Expiry.Lifetime <= 0 {
		return nil
	}
	s := int64(p.Expiry.Lifetime / time.Second)
	return &s
}

// Expiry is an ephemeral tenant's end: at At, the saga decommissions it,
// with no grace period, as the system acting for For (who created it;
// UserID is the person who answers for that creation).
type Expiry struct {
	At time.Time
	// Lifetime is what the creation asked for (revision 5 on), kept on the
	// tenant so a retry can be told apart from another request.
	Lifetime time.Duration `json:",omitempty"`
	For      domain.Actor
	UserID   string
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
	// update id: at most maxAnswered.
	Answered map[string]Answered
	// ExpiryDone: the tenant's lifetime ended and its decommission was
	// begun (or called off) in an earlier run; the timer is not set again.
	ExpiryDone bool `json:",omitempty"`
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

// RepairRequest is an operator's repair: the operation and step it repairs
// (the status query names both). Who sends it is not for the payload to
// say: the operator gateway proves it with a certificate and stamps it in
// the update's header (internal/operator). Operator is what repairs named
// before that; it is read only from their histories.
type RepairRequest struct {
	Operator    string `json:"operator,omitempty"`
	OperationID string `json:"operation_id"`
	Step        string `json:"step"`
}

// RepairResult says what a repair was taken for, and for whom.
type RepairResult struct {
	Repair      Repair `json:"repair"`
	OperationID string `json:"operation_id"`
	Step        string `json:"step"`
	Operator    string `json:"operator,omitempty"`
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

// maxAnswered bounds the answered updates a run hands the next; older
// retries are answered from Postgres, where each operation keeps its
// update id.
const maxAnswered = 64

// stepRecord names, in the status and in a repair, a saga record whose
// write cannot succeed as it is: the saga waits there for an operator's
// retry.
const stepRecord = "record"

// updateIDExpiry stands for an update id in an ephemeral tenant's end, which
// no request carries: its operation's update_id, and the part its id is
// derived from.
const updateIDExpiry = "expiry"
