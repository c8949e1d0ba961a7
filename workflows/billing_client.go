package workflows

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
)

// SignalBillingEvent hands a stored Stripe event to its organisation's
// billing workflow, starting it if it is not running (SignalWithStart):
// what the webhook does once the event is stored, and what an operator's
// re-drive does. Idempotent: the workflow queues an event once and the
// activity applies it once.
func (c *Client) SignalBillingEvent(ctx context.Context, orgID, eventID string) error {
	params := BillingParams{OrgID: orgID, Grace: c.Billing.Grace, Revision: BillingRevisionCurrent}
	if params.Grace <= 0 {
		params.Grace = config.DefaultBillingGrace
	}
	_, err := c.temporal.SignalWithStartWorkflow(ctx, BillingWorkflowID(orgID), SignalStripeEvent, BillingEventSignal{EventID: eventID},
		client.StartWorkflowOptions{
			ID:                    BillingWorkflowID(orgID),
			TaskQueue:             c.taskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrOrgID.ValueSet(orgID)),
		}, BillingWorkflowType, params)
	if err != nil {
		if retryLater(err) || errors.Is(err, context.DeadlineExceeded) {
			return &domain.Error{Code: domain.CodeUnavailable, RetryAfter: c.Bound, Message: "Temporal is briefly unavailable; the delivery is retried"}
		}
		return c.domainError(ctx, err)
	}
	return nil
}

// BillingStatus asks an organisation's billing workflow where it is; one
// not running is NOT_FOUND.
func (c *Client) BillingStatus(ctx context.Context, orgID string) (BillingStatus, error) {
	var st BillingStatus
	v, err := c.temporal.QueryWorkflow(ctx, BillingWorkflowID(orgID), "", QueryStatus)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return st, domain.Errorf(domain.CodeNotFound, "no billing workflow runs for %s", orgID)
	}
	if err == nil {
		err = v.Get(&st)
	}
	return st, c.domainError(ctx, err)
}
