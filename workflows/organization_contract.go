package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
)

// OrganizationWorkflowType is the organisation workflow's type name, as
// visibility queries name it (WorkflowType='OrganizationWorkflow').
const OrganizationWorkflowType = "OrganizationWorkflow"

// Names of the organisation workflow's updates. Its status query is
// QueryStatus, as a tenant's.
const (
	UpdateDelete  = "delete"
	UpdateRestore = "restore"
)

// Phases of an organisation's deletion, as its status query shows them.
const (
	OrgPhaseGrace   = "grace_period"
	OrgPhaseEnding  = "ending_tenants"
	OrgPhaseErasing = "erasing"
	OrgPhaseDone    = "done"
)

// orgWatchFor bounds one watch of the tenants' ends: a long wait is one
// activity per this long (or per change of the stuck tenants), not one
// event per look.
const orgWatchFor = 10 * time.Minute

// OrganizationWorkflowID is the workflow id of an organisation's deletion:
// one per organisation, so a deletion requested twice (a retry, another
// owner at the same moment) reaches the same workflow. Each deletion is a
// run of it; a restore ends the run.
func OrganizationWorkflowID(orgID string) string { return "organization/" + orgID }

// DeletionUpdateID and RestoreUpdateID are the update ids of a deletion and
// a restore requested with an idempotency key: Temporal, the workflow and
// organization_operations.update_id know a request's attempts by them.
func DeletionUpdateID(key string) string { return "deletion/" + key }

// RestoreUpdateID is the update id of a restore requested with the key.
func RestoreUpdateID(key string) string { return "restore/" + key }

// OrganizationParams starts an organisation's deletion. Every setting is
// given by the caller (from the configuration).
type OrganizationParams struct {
	OrgID string
	// Grace is how long the organisation can be restored
	// (CP_ORG_DELETION_GRACE).
	Grace time.Duration
	// ReservationTimeout ends a run whose delete update never arrives.
	ReservationTimeout time.Duration
	// Revision is the workflow code the run was started at
	// (OrgRevisionCurrent).
	Revision int
}

func (p OrganizationParams) validate() error {
	var bad []string
	if p.OrgID == "" {
		bad = append(bad, "organisation id is required")
	}
	if p.Grace <= 0 || p.ReservationTimeout <= 0 {
		bad = append(bad, "Grace and ReservationTimeout must be positive")
	}
	if bad != nil {
		return temporal.NewNonRetryableApplicationError("invalid organisation workflow parameters: "+strings.Join(bad, "; "), "INVALID_PARAMS", nil)
	}
	return nil
}

// DeletionRequest is the delete update: the slug the person typed, and
// who they are.
type DeletionRequest struct {
	Confirm string
	Request activities.Request
}

// RestoreRequest is the restore update.
type RestoreRequest struct {
	Request activities.Request
}

// OrganizationStatus is what the organisation workflow's status query
// answers: where the deletion is, and which tenants hold it up.
type OrganizationStatus struct {
	OrgID       string     `json:"org_id"`
	Saga        string     `json:"saga"`
	Phase       string     `json:"phase"`
	OperationID string     `json:"operation_id,omitempty"`
	DueAt       *time.Time `json:"due_at,omitempty"`
	// TenantsLeft are the tenants not yet ended, once the deletion is due;
	// StuckTenants those whose own saga is stuck (repair them: this saga
	// goes on by itself once they end).
	TenantsLeft  int      `json:"tenants_left"`
	StuckTenants []string `json:"stuck_tenants"`
}

// OrganizationResult is what a run ends with: the organisation's state
// (deleted, active after a restore), or the refusal of its deletion.
type OrganizationResult struct {
	State     string
	Rejection *Rejection
}
