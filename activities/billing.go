package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/store"
)

// Billing holds the billing workflow's activities' dependencies: the
// database, and Stripe (nil: billing off, nothing is cancelled there).
type Billing struct {
	DB     *bun.DB
	Stripe *billing.Stripe
	// ConsoleURL is the console's base, for the link in the mail a failed
	// payment sends the owners.
	ConsoleURL string
}

// ApplyBillingEventInput is a stored Stripe event to apply.
type ApplyBillingEventInput struct {
	EventID string
	// Grace is how long a failed payment leaves the organisation its
	// plan (CP_BILLING_GRACE, carried by the workflow).
	Grace time.Duration
}

// BillingEventResult is what applying an event did and where the
// organisation's billing stands after it.
type BillingEventResult struct {
	Outcome     string
	Already     bool
	Status      string
	GraceEndsAt *time.Time
}

// ApplyBillingEvent applies a stored Stripe event, once
// (store.ApplyBillingEvent marks it applied in the transaction of its
// effect: a retry after a commit finds it applied and writes nothing).
func (a *Billing) ApplyBillingEvent(ctx context.Context, in ApplyBillingEventInput) (BillingEventResult, error) {
	res, err := store.ApplyBillingEvent(ctx, a.DB, in.EventID, store.BillingApply{Grace: in.Grace, Mail: a.paymentFailedMail})
	if err != nil {
		return BillingEventResult{}, asApplicationError(err)
	}
	return BillingEventResult(res), nil
}

// paymentFailedMail is the message an owner is sent when a payment
// failed.
func (a *Billing) paymentFailedMail(o store.Organization, email string, graceEndsAt time.Time) store.OutboxMessage {
	link := a.ConsoleURL + "/orgs/" + o.ID + "/billing"
	body := fmt.Sprintf("Hello,\n\nA payment for the IntelliAuth organization %s failed.\n\n"+
		"Unless it is paid by %s, the organization moves to the free plan: nothing is deleted, but creations over the free plan's quotas are refused.\n\n"+
		"Update the payment method or pay the invoice here:\n%s\n",
		o.Name, graceEndsAt.UTC().Format("2 January 2006 15:04 UTC"), link)
	return store.OutboxMessage{Recipient: email, Subject: "Payment failed for " + o.Name + " on IntelliAuth", Body: body, BodyRedacted: body}
}

// EndGraceInput is the end of a past_due organisation's grace.
type EndGraceInput struct {
	OrgID       string
	GraceEndsAt time.Time
	WorkflowID  string
}

// GraceEndResult is what the end of a grace did.
type GraceEndResult struct {
	Ended          bool
	SubscriptionID string
}

// EndBillingGrace moves the organisation to the free plan if it is still
// past_due with this grace (store.EndBillingGrace); a retry finds it
// moved and writes nothing.
func (a *Billing) EndBillingGrace(ctx context.Context, in EndGraceInput) (GraceEndResult, error) {
	res, err := store.EndBillingGrace(ctx, a.DB, in.OrgID, in.GraceEndsAt, in.WorkflowID)
	if err != nil {
		return GraceEndResult{}, asApplicationError(err)
	}
	return GraceEndResult(res), nil
}

// CancelSubscriptionInput is a subscription to cancel in Stripe.
type CancelSubscriptionInput struct {
	OrgID          string
	SubscriptionID string
}

// CancelBillingSubscription cancels the subscription in Stripe, so an
// organisation moved to the free plan is charged no more. Idempotent
// (Stripe's idempotency key is derived from the subscription; one already
// gone is done); a failure is Temporal's to retry.
func (a *Billing) CancelBillingSubscription(ctx context.Context, in CancelSubscriptionInput) error {
	if a.Stripe == nil {
		return nil
	}
	if err := a.Stripe.CancelSubscription(ctx, in.SubscriptionID); err != nil {
		return fmt.Errorf("cancel the subscription of %s: %s", in.OrgID, err.Error())
	}
	return nil
}
