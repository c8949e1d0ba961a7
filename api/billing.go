package api

import (
	"errors"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// stripeWebhookPath is where Stripe delivers its events.
const stripeWebhookPath = "/api/v1/billing/stripe/webhook"

// errNoRoute is every billing route's answer when billing is off: as if
// the route did not exist.
var errNoRoute = &domain.Error{Code: domain.CodeNotFound, Message: "no such route"}

// errPlanManagedByBilling refuses a direct plan change while billing is
// on.
var errPlanManagedByBilling = &domain.Error{Code: domain.CodePlanManagedByBilling,
	Message: "plans are bought through Stripe on this installation: POST /api/v1/organizations/{org_id}/billing/checkout with the plan, or cancel in the billing portal"}

// routeOff reports whether the route belongs to billing while billing is
// off: it answers 404 to every member, before their role is looked at.
func (s *Server) routeOff(r Route) bool {
	const org = "/api/v1/organizations/:org_id"
	return s.billing == nil && (strings.HasPrefix(r.Path, org+"/billing") || r.Path == org+"/invoices")
}

// billingLink reports whether the route answers with a link into Stripe
// (a checkout or portal session): never stored as an idempotent answer;
// a checkout's retry is the same session through Stripe's own
// idempotency key, derived from the request's.
func billingLink(r Route) bool {
	return r.Method == fiber.MethodPost && (r.Path == "/api/v1/organizations/:org_id/billing/checkout" || r.Path == "/api/v1/organizations/:org_id/billing/portal")
}

// billingView is an organisation's billing as the console shows it.
type billingView struct {
	Plan   string               `json:"plan"`
	Status domain.BillingStatus `json:"status" doc:"none: never subscribed; active: paid; past_due: a payment failed and the grace runs until grace_ends_at; canceled: the subscription ended, the organization is on the free plan."`
	// Plans are the plans checkout sells.
	Plans           []string                 `json:"plans" doc:"The plans POST …/billing/checkout sells."`
	PaymentMethod   *billing.PaymentMethod   `json:"payment_method"`
	CurrentPeriod   *billing.Period          `json:"current_period"`
	UpcomingInvoice *billing.UpcomingInvoice `json:"upcoming_invoice"`
	GraceEndsAt     *time.Time               `json:"grace_ends_at" doc:"When past_due: when the organization moves to the free plan unless the invoice is paid."`
}

// getBilling answers the organisation's plan and billing status, with its
// card, current period and next invoice read from Stripe.
func (s *Server) getBilling(c *fiber.Ctx, who *caller) error {
	if s.billing == nil {
		return errNoRoute
	}
	acct, err := store.BillingAccountOf(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	st, err := s.billing.State(c.UserContext(), acct)
	if err != nil {
		return s.billingUnavailable(c, err)
	}
	v := billingView{Plan: who.Org.PlanID, Status: domain.BillingStatus(acct.Status), Plans: []string{}, PaymentMethod: st.PaymentMethod,
		CurrentPeriod: st.CurrentPeriod, UpcomingInvoice: st.UpcomingInvoice, GraceEndsAt: acct.GraceEndsAt}
	for _, p := range config.PaidPlans {
		if _, ok := s.billing.Config().Prices[p]; ok {
			v.Plans = append(v.Plans, p)
		}
	}
	return writeData(c, fiber.StatusOK, v)
}

// billingUnavailable logs why Stripe could not answer and tells the
// caller only that it could not.
func (s *Server) billingUnavailable(c *fiber.Ctx, err error) error {
	if domain.ErrorCode(err) == domain.CodeUnavailable {
		s.log.Warn().Err(err).Str("request_id", requestID(c)).Msg("Stripe did not answer")
	}
	return err
}

// checkoutRequest is the plan a checkout buys.
type checkoutRequest struct {
	Plan string `json:"plan" jsonschema:"minLength=1,maxLength=64,pattern=noControl" doc:"A paid plan this installation sells (GET …/billing's plans)."`
}

func (r *checkoutRequest) validate() []domain.FieldError {
	return nil // its schema says it all; the plan's existence is the handler's
}

// billingURL is a Stripe page to send the browser to.
type billingURL struct {
	URL string `json:"url" doc:"Stripe's hosted page; valid for a short time."`
}

// startCheckout opens a Stripe Checkout session for the plan (an owner,
// with a recent authentication). An organisation whose subscription runs
// changes it in the portal instead (409).
func (s *Server) startCheckout(c *fiber.Ctx, who *caller) error {
	if s.billing == nil {
		return errNoRoute
	}
	key, err := requestKey(c)
	if err != nil {
		return err
	}
	var req checkoutRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	acct, err := store.BillingAccountOf(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	if acct.Subscription() != "" && (acct.Status == string(domain.BillingActive) || acct.Status == string(domain.BillingPastDue)) {
		return domain.Errorf(domain.CodeConflict, "the organization has a subscription (%s): manage or cancel it in the billing portal (POST …/billing/portal)", acct.Status)
	}
	url, err := s.billing.Checkout(c.UserContext(), *who.Org, req.Plan, key)
	if err != nil {
		return s.billingUnavailable(c, err)
	}
	ev := s.eventBase(c, who).Event(domain.ActionBillingCheckoutStarted, "organization", who.OrgID, map[string]any{"plan": req.Plan})
	if key != "" {
		// A retry is the same session: audited once.
		dedup := "billing/checkout/" + who.OrgID + "/" + who.UserID + "/" + key
		ev.DedupKey = &dedup
	}
	if _, err := store.InsertEvent(c.UserContext(), s.db, ev); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, billingURL{URL: url})
}

// openPortal opens a session of Stripe's customer portal (an owner, with
// a recent authentication: the portal cancels the subscription and
// changes the card).
func (s *Server) openPortal(c *fiber.Ctx, who *caller) error {
	if s.billing == nil {
		return errNoRoute
	}
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	url, err := s.billing.Portal(c.UserContext(), *who.Org)
	if err != nil {
		return s.billingUnavailable(c, err)
	}
	ev := s.eventBase(c, who).Event(domain.ActionBillingPortalOpened, "organization", who.OrgID, nil)
	if _, err := store.InsertEvent(c.UserContext(), s.db, ev); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, billingURL{URL: url})
}

// listInvoices lists the organisation's invoices from Stripe, newest
// first, a page at a time.
func (s *Server) listInvoices(c *fiber.Ctx, who *caller) error {
	if s.billing == nil {
		return errNoRoute
	}
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	if after.ID != "" && !billing.ValidInvoiceCursor(after.ID) {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters",
			FieldErrors: []domain.FieldError{{Field: "cursor", Message: "invalid cursor; use the cursor of the previous page as it was given"}}}
	}
	acct, err := store.BillingAccountOf(c.UserContext(), s.db, who.OrgID)
	if err != nil {
		return err
	}
	invs, next, err := s.billing.Invoices(c.UserContext(), acct, after.ID, limit)
	if err != nil {
		return s.billingUnavailable(c, err)
	}
	cursor := ""
	if next != "" {
		cursor = encodeCursor(cursorKeyOf(c), store.Keyset{CreatedAt: invs[len(invs)-1].Created, ID: next})
	}
	return writeList(c, invs, cursor, next != "")
}

// webhookAnswer is what Stripe is told of a delivery.
type webhookAnswer struct {
	Received bool `json:"received"`
	// Duplicate: the event was received before (and applied, or handed
	// to the billing workflow again).
	Duplicate bool `json:"duplicate"`
}

// stripeWebhook receives Stripe's events: the signature is verified
// (within Stripe's tolerance), the event stored once (unique on its id)
// and handed to its organisation's billing workflow, which applies it.
// Stripe is answered 2xx once the event is stored and signalled; 503 when
// Temporal cannot take the signal (Stripe retries, and the retry signals
// the stored event again); 400 with nothing stored for a bad signature.
func (s *Server) stripeWebhook(c *fiber.Ctx, _ *caller) error {
	if s.billing == nil {
		return errNoRoute
	}
	if len(c.Body()) > billing.MaxWebhookBody {
		return domain.Errorf(domain.CodePayloadTooLarge, "request body too large")
	}
	ev, relevant, err := s.billing.Verify(c.UserContext(), c.Body(), c.Get("Stripe-Signature"))
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeBadRequest {
			s.log.Warn().Str("request_id", requestID(c)).Str("client_addr", c.IP()).Msg("a Stripe webhook delivery was refused: its signature does not verify")
		}
		return err
	}
	if !relevant {
		return writeData(c, fiber.StatusOK, webhookAnswer{Received: true})
	}
	stored, fresh, err := store.RecordBillingEvent(c.UserContext(), s.db, ev)
	if err != nil {
		return err
	}
	if stored.AppliedAt != nil {
		return writeData(c, fiber.StatusOK, webhookAnswer{Received: true, Duplicate: true})
	}
	if err := s.tenants.SignalBillingEvent(c.UserContext(), stored.OrgID, stored.StripeEventID); err != nil {
		s.log.Warn().Err(err).Str("stripe_event_id", stored.StripeEventID).Str("org_id", stored.OrgID).
			Msg("a Stripe event is stored but its billing workflow could not be signalled: Stripe retries it")
		var de *domain.Error
		if errors.As(err, &de) && de.Code == domain.CodeUnavailable {
			return de
		}
		return &domain.Error{Code: domain.CodeUnavailable, RetryAfter: 5 * time.Second, Message: "the event is stored and will be applied; retry the delivery"}
	}
	return writeData(c, fiber.StatusOK, webhookAnswer{Received: true, Duplicate: !fresh})
}
