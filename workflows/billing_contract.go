package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/internal/domain"
)

// BillingWorkflowType is an organisation's billing workflow type name, as
// visibility queries name it (WorkflowType='BillingWorkflow').
const BillingWorkflowType = "BillingWorkflow"

// SignalStripeEvent hands a stored Stripe event (BillingEventSignal) to
// its organisation's billing workflow. A signal sent twice applies the
// event once: the activity marks it applied with its effect.
const SignalStripeEvent = "stripe-event"

// BillingWorkflowID is the workflow id of an organisation's billing: one
// per organisation, so its events are applied one at a time.
func BillingWorkflowID(orgID string) string { return "billing/" + orgID }

// What a billing workflow does between events.
const (
	// billingIdle is how long a run with nothing to do (no grace running)
	// waits before it ends; the next event starts it again
	// (SignalWithStart).
	billingIdle = 7 * 24 * time.Hour
	// billingEventsPerRun bounds a run's history: it continues as new
	// after so many events (or when Temporal suggests it).
	billingEventsPerRun = 500
)

// BillingParams starts an organisation's billing workflow; carried across
// continue-as-new.
type BillingParams struct {
	OrgID string
	// Grace is how long a failed payment leaves the organisation its plan
	// (CP_BILLING_GRACE).
	Grace time.Duration
	// Revision is the workflow code the run was started at
	// (BillingRevisionCurrent).
	Revision int
	// Continued is the state a run hands the next one whole.
	Continued *BillingContinued
}

// BillingContinued is what a billing workflow carries across
// continue-as-new: the grace running, and the events signalled and not
// applied yet, in their order.
type BillingContinued struct {
	GraceEndsAt *time.Time
	Pending     []string
}

// BillingEventSignal is SignalStripeEvent's argument.
type BillingEventSignal struct {
	EventID string `json:"event_id"`
}

func (p BillingParams) validate() error {
	var bad []string
	if !domain.ValidID(domain.PrefixOrganization, p.OrgID) {
		bad = append(bad, "an organisation id is required")
	}
	if p.Grace <= 0 {
		bad = append(bad, "a positive Grace is required")
	}
	if bad != nil {
		return temporal.NewNonRetryableApplicationError("invalid billing workflow parameters: "+strings.Join(bad, "; "), "INVALID_PARAMS", nil)
	}
	return nil
}

// BillingStatus is what a billing workflow's status query answers.
type BillingStatus struct {
	OrgID       string     `json:"org_id"`
	GraceEndsAt *time.Time `json:"grace_ends_at,omitempty"`
	// Applied counts the events this run applied; Pending the events
	// signalled and not applied yet.
	Applied int      `json:"applied"`
	Pending []string `json:"pending"`
	// Last is the last event applied and its outcome.
	Last        string `json:"last,omitempty"`
	LastOutcome string `json:"last_outcome,omitempty"`
}
