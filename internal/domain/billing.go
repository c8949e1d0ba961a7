package domain

// BillingStatus is where an organisation's subscription stands (SPEC §10).
type BillingStatus string

// The billing statuses.
const (
	// BillingNone: never subscribed.
	BillingNone BillingStatus = "none"
	// BillingActive: a paid subscription, paid.
	BillingActive BillingStatus = "active"
	// BillingPastDue: a payment failed; the grace runs until the
	// organisation pays or moves to the free plan.
	BillingPastDue BillingStatus = "past_due"
	// BillingCanceled: the subscription ended (deleted in Stripe, or the
	// grace ran out); the organisation is on the free plan.
	BillingCanceled BillingStatus = "canceled"
)

// FreePlan is the plan an organisation falls back to when its
// subscription ends: nothing is destroyed, creations over its quotas are
// refused.
const FreePlan = "free"

// The Stripe events the billing workflow applies; any other is
// acknowledged and dropped.
const (
	StripeCheckoutCompleted      = "checkout.session.completed"
	StripeCheckoutAsyncSucceeded = "checkout.session.async_payment_succeeded"
	StripeInvoicePaid            = "invoice.paid"
	StripeInvoicePaymentFailed   = "invoice.payment_failed"
	StripeSubscriptionDeleted    = "customer.subscription.deleted"
	// StripeSubscriptionUpdated moves the plan when the subscription's
	// price is another plan's (a switch in the portal); any other update
	// is left to the invoice and deletion events.
	StripeSubscriptionUpdated = "customer.subscription.updated"
)

// StripeEventApplied reports whether the billing workflow applies events
// of the type.
func StripeEventApplied(t string) bool {
	switch t {
	case StripeCheckoutCompleted, StripeCheckoutAsyncSucceeded, StripeInvoicePaid, StripeInvoicePaymentFailed, StripeSubscriptionDeleted,
		StripeSubscriptionUpdated:
		return true
	}
	return false
}

// The outcomes of a Stripe event, as billing_events records them.
const (
	// BillingEventApplied: its effect was written (or there was none to
	// write: an invoice paid while active).
	BillingEventApplied = "applied"
	// BillingEventSuperseded: older than the last event applied to the
	// organisation's billing state; applying it would regress the state.
	BillingEventSuperseded = "superseded"
	// BillingEventIgnored: about another subscription than the
	// organisation's, unpaid, or for an organisation being deleted.
	BillingEventIgnored = "ignored"
)

// The audit actions of billing; the actor is the system's "stripe", on
// behalf of the organisation (the customer).
const (
	ActionBillingCheckoutStarted      = "billing.checkout_started"
	ActionBillingPortalOpened         = "billing.portal_opened"
	ActionBillingSubscribed           = "billing.subscribed"
	ActionBillingPlanChanged          = "billing.plan_changed"
	ActionBillingPaymentFailed        = "billing.payment_failed"
	ActionBillingPaymentRecovered     = "billing.payment_recovered"
	ActionBillingGraceEnded           = "billing.grace_ended"
	ActionBillingSubscriptionCanceled = "billing.subscription_canceled"
)
