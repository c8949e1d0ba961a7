package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// MaxWebhookBody bounds a webhook delivery's body: Stripe's events are a
// few kilobytes, an invoice with many lines some tens.
const MaxWebhookBody = 512 << 10

// WebhookTolerance is how old a delivery's signed timestamp may be:
// Stripe's own default, so a delivery captured and replayed later is
// refused.
const WebhookTolerance = webhook.DefaultTolerance

// ErrBadSignature is a delivery whose signature does not verify: forged,
// signed with another secret, too old, or unreadable.
var ErrBadSignature = &domain.Error{Code: domain.CodeBadRequest, Message: "the Stripe-Signature does not verify (forged, another endpoint's, older than the tolerance, or an event of another API version)"}

// Verify checks a webhook delivery's signature (Stripe-Signature, within
// WebhookTolerance, for the API version this library speaks) and reads
// the facts the billing workflow applies. relevant is false for an event
// the control plane does not act on, or about no organisation of its
// own: it is acknowledged and dropped.
func (s *Stripe) Verify(ctx context.Context, payload []byte, header string) (ev store.BillingEvent, relevant bool, err error) {
	e, err := webhook.ConstructEventWithOptions(payload, header, s.cfg.WebhookSecret, webhook.ConstructEventOptions{Tolerance: WebhookTolerance})
	if err != nil {
		return ev, false, ErrBadSignature
	}
	if e.ID == "" || len(e.ID) > 255 || e.Created <= 0 || e.Data == nil {
		return ev, false, &domain.Error{Code: domain.CodeBadRequest, Message: "not a Stripe event"}
	}
	if !domain.StripeEventApplied(string(e.Type)) {
		return ev, false, nil
	}
	ev = store.BillingEvent{StripeEventID: e.ID, Type: string(e.Type), StripeCreated: time.Unix(e.Created, 0).UTC()}
	orgHint := ""
	switch string(e.Type) {
	case domain.StripeCheckoutCompleted, domain.StripeCheckoutAsyncSucceeded:
		var cs stripe.CheckoutSession
		if err := json.Unmarshal(e.Data.Raw, &cs); err != nil {
			return ev, false, badObject(e.Type)
		}
		if cs.Mode != stripe.CheckoutSessionModeSubscription {
			return ev, false, nil
		}
		ev.Paid = cs.PaymentStatus == stripe.CheckoutSessionPaymentStatusPaid || cs.PaymentStatus == stripe.CheckoutSessionPaymentStatusNoPaymentRequired
		ev.PlanID = cs.Metadata["plan"]
		if !slices.Contains(config.PaidPlans, ev.PlanID) {
			ev.PlanID = ""
		}
		if cs.Subscription != nil {
			ev.SubscriptionID = cs.Subscription.ID
		}
		if cs.Customer != nil {
			ev.CustomerID = cs.Customer.ID
		}
		orgHint = cs.ClientReferenceID
	case domain.StripeInvoicePaid, domain.StripeInvoicePaymentFailed:
		var inv stripe.Invoice
		if err := json.Unmarshal(e.Data.Raw, &inv); err != nil {
			return ev, false, badObject(e.Type)
		}
		ev.InvoiceID = inv.ID
		if inv.Customer != nil {
			ev.CustomerID = inv.Customer.ID
		}
		if inv.Parent != nil && inv.Parent.SubscriptionDetails != nil && inv.Parent.SubscriptionDetails.Subscription != nil {
			ev.SubscriptionID = inv.Parent.SubscriptionDetails.Subscription.ID
		}
	case domain.StripeSubscriptionUpdated:
		var sub stripe.Subscription
		if err := json.Unmarshal(e.Data.Raw, &sub); err != nil {
			return ev, false, badObject(e.Type)
		}
		ev.SubscriptionID, ev.PlanID = sub.ID, s.planOf(&sub)
		if sub.Customer != nil {
			ev.CustomerID = sub.Customer.ID
		}
		if ev.PlanID == "" {
			return ev, false, nil
		}
	case domain.StripeSubscriptionDeleted:
		var sub stripe.Subscription
		if err := json.Unmarshal(e.Data.Raw, &sub); err != nil {
			return ev, false, badObject(e.Type)
		}
		ev.SubscriptionID = sub.ID
		if sub.Customer != nil {
			ev.CustomerID = sub.Customer.ID
		}
	}
	// The organisation is the customer's; a checkout names it too, and
	// must agree.
	orgID, err := store.OrgOfStripeCustomer(ctx, s.db, ev.CustomerID)
	if err != nil {
		return ev, false, err
	}
	if orgHint != "" && orgID != "" && orgHint != orgID {
		return ev, false, nil
	}
	if orgID == "" {
		return ev, false, nil
	}
	ev.OrgID = orgID
	return ev, true, nil
}

// planOf is the paid plan whose price (CP_STRIPE_PRICES) the subscription
// is for; "" when none of its items is a plan's price.
func (s *Stripe) planOf(sub *stripe.Subscription) string {
	if sub.Items == nil {
		return ""
	}
	for _, it := range sub.Items.Data {
		if it == nil || it.Price == nil {
			continue
		}
		for _, plan := range config.PaidPlans {
			if price, ok := s.cfg.Prices[plan]; ok && price == it.Price.ID {
				return plan
			}
		}
	}
	return ""
}

func badObject(t stripe.EventType) error {
	return &domain.Error{Code: domain.CodeBadRequest, Message: fmt.Sprintf("the %s event's object is not one", t)}
}
