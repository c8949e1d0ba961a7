// Package billing is the control plane's side of Stripe (SPEC §10): an
// organisation's customer, its checkout and portal sessions, its billing
// state and invoices read from Stripe, a subscription cancelled, usage
// reported as meter events, and the verification of Stripe's webhook
// deliveries into the facts the billing workflow applies.
package billing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Stripe is billing on one Stripe account. A nil *Stripe is billing off.
type Stripe struct {
	cfg        config.Billing
	db         *bun.DB
	sc         *stripe.Client
	consoleURL string
}

// New returns billing on the configured Stripe account, or nil when
// billing is off. consoleURL is where checkout and the portal send the
// customer back.
func New(cfg config.Billing, db *bun.DB, consoleURL string) *Stripe {
	if !cfg.Enabled() {
		return nil
	}
	var opts []stripe.ClientOption
	bc := &stripe.BackendConfig{HTTPClient: &http.Client{Timeout: 30 * time.Second}, MaxNetworkRetries: stripe.Int64(2),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if cfg.APIURL != "" {
		bc.URL = stripe.String(cfg.APIURL)
	}
	api := stripe.GetBackendWithConfig(stripe.APIBackend, bc)
	meter := stripe.GetBackendWithConfig(stripe.MeterEventsBackend, bc)
	opts = append(opts, stripe.WithBackends(&stripe.Backends{API: api, Connect: api, Uploads: api, MeterEvents: meter}))
	return &Stripe{cfg: cfg, db: db, sc: stripe.NewClient(cfg.SecretKey, opts...), consoleURL: consoleURL}
}

// Config is the settings billing runs with.
func (s *Stripe) Config() config.Billing { return s.cfg }

// errUnavailable is what a caller is told when Stripe cannot be reached
// or refuses a call: never Stripe's own message, which may name the
// account's objects.
var errUnavailable = &domain.Error{Code: domain.CodeUnavailable, Message: "billing is unavailable for a moment; try again", RetryAfter: 5 * time.Second}

// stripeErr wraps a Stripe error with what was being done; the API turns
// it into UNAVAILABLE (the log keeps the detail).
func stripeErr(what string, err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		return &unavailable{what: what, err: fmt.Errorf("%s: stripe %s %s (%d): %s", what, se.Type, se.Code, se.HTTPStatusCode, se.Msg)}
	}
	return &unavailable{what: what, err: fmt.Errorf("%s: %w", what, err)}
}

// unavailable is a failed Stripe call: a domain UNAVAILABLE error for the
// caller, its cause for the log.
type unavailable struct {
	what string
	err  error
}

func (u *unavailable) Error() string { return u.err.Error() }
func (u *unavailable) Unwrap() error { return u.err }

// As makes a failed Stripe call read as the domain's UNAVAILABLE.
func (u *unavailable) As(target any) bool {
	if t, ok := target.(**domain.Error); ok {
		e := *errUnavailable
		*t = &e
		return true
	}
	return false
}

// notFound reports whether Stripe answered that the object does not exist.
func notFound(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && (se.Code == stripe.ErrorCodeResourceMissing || se.HTTPStatusCode == http.StatusNotFound)
}

// Customer returns the organisation's Stripe customer, making it on first
// need: the idempotency key is derived from the organisation, so two
// requests that make it at once get one customer.
func (s *Stripe) Customer(ctx context.Context, o store.Organization) (string, error) {
	acct, err := store.BillingAccountOf(ctx, s.db, o.ID)
	if err != nil {
		return "", err
	}
	if id := acct.CustomerID(); id != "" {
		return id, nil
	}
	p := &stripe.CustomerCreateParams{Name: stripe.String(o.Name), Metadata: map[string]string{"org_id": o.ID}}
	p.SetIdempotencyKey("intelliauth-customer-" + o.ID)
	c, err := s.sc.V1Customers.Create(ctx, p)
	if err != nil {
		return "", stripeErr("create the Stripe customer of "+o.ID, err)
	}
	return store.SetStripeCustomer(ctx, s.db, o.ID, c.ID)
}

// billingPage is the console's billing page of the organisation.
func (s *Stripe) billingPage(orgID string) string {
	return s.consoleURL + "/orgs/" + orgID + "/billing"
}

// Checkout starts a Stripe Checkout session (mode subscription) for the
// plan's price and returns its URL; key (the request's Idempotency-Key,
// "" when none) makes a retry the same session.
func (s *Stripe) Checkout(ctx context.Context, o store.Organization, plan, key string) (string, error) {
	price, ok := s.cfg.Prices[plan]
	if !ok {
		return "", &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
			FieldErrors: []domain.FieldError{{Field: "plan", Message: "not a plan sold here; one of " + s.planList()}}}
	}
	customer, err := s.Customer(ctx, o)
	if err != nil {
		return "", err
	}
	meta := map[string]string{"org_id": o.ID, "plan": plan}
	p := &stripe.CheckoutSessionCreateParams{
		Mode:              stripe.String(string(stripe.CheckoutSessionModeSubscription)),
		Customer:          stripe.String(customer),
		ClientReferenceID: stripe.String(o.ID),
		LineItems:         []*stripe.CheckoutSessionCreateLineItemParams{{Price: stripe.String(price), Quantity: stripe.Int64(1)}},
		Metadata:          meta,
		SubscriptionData:  &stripe.CheckoutSessionCreateSubscriptionDataParams{Metadata: meta},
		SuccessURL:        stripe.String(s.billingPage(o.ID) + "?checkout=done"),
		CancelURL:         stripe.String(s.billingPage(o.ID) + "?checkout=canceled"),
	}
	if key != "" {
		p.SetIdempotencyKey(derivedKey("checkout", o.ID, plan, key))
	}
	cs, err := s.sc.V1CheckoutSessions.Create(ctx, p)
	if err != nil {
		return "", stripeErr("create a checkout session for "+o.ID, err)
	}
	return cs.URL, nil
}

func (s *Stripe) planList() string {
	out := ""
	for _, p := range config.PaidPlans {
		if _, ok := s.cfg.Prices[p]; ok {
			if out != "" {
				out += ", "
			}
			out += p
		}
	}
	return out
}

// Portal opens a session of Stripe's customer portal (payment methods,
// invoices, cancellation) and returns its URL.
func (s *Stripe) Portal(ctx context.Context, o store.Organization) (string, error) {
	customer, err := s.Customer(ctx, o)
	if err != nil {
		return "", err
	}
	ps, err := s.sc.V1BillingPortalSessions.Create(ctx, &stripe.BillingPortalSessionCreateParams{
		Customer: stripe.String(customer), ReturnURL: stripe.String(s.billingPage(o.ID))})
	if err != nil {
		return "", stripeErr("create a portal session for "+o.ID, err)
	}
	return ps.URL, nil
}

// PaymentMethod is a card's brand and last four digits.
type PaymentMethod struct {
	Brand string `json:"brand"`
	Last4 string `json:"last4"`
}

// Period is a subscription's current period.
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// UpcomingInvoice is Stripe's estimate of the next invoice.
type UpcomingInvoice struct {
	AmountDue int64     `json:"amount_due" doc:"In the currency's smallest unit (cents)."`
	Currency  string    `json:"currency"`
	Date      time.Time `json:"date" doc:"When it is due to be charged: the end of the current period."`
}

// State is what Stripe says of an organisation's subscription: its card,
// its current period and its next invoice, each nil when there is none.
type State struct {
	PaymentMethod   *PaymentMethod
	CurrentPeriod   *Period
	UpcomingInvoice *UpcomingInvoice
}

// State reads the subscription's payment method, current period and the
// estimate of its next invoice (the invoice preview).
func (s *Stripe) State(ctx context.Context, acct store.BillingAccount) (State, error) {
	var st State
	if acct.CustomerID() == "" {
		return st, nil
	}
	cp := &stripe.CustomerRetrieveParams{}
	cp.AddExpand("invoice_settings.default_payment_method")
	c, err := s.sc.V1Customers.Retrieve(ctx, acct.CustomerID(), cp)
	if err != nil {
		return st, stripeErr("read the Stripe customer of "+acct.OrgID, err)
	}
	if c.InvoiceSettings != nil {
		st.PaymentMethod = card(c.InvoiceSettings.DefaultPaymentMethod)
	}
	sub := acct.Subscription()
	if sub == "" {
		return st, nil
	}
	sp := &stripe.SubscriptionRetrieveParams{}
	sp.AddExpand("default_payment_method")
	sb, err := s.sc.V1Subscriptions.Retrieve(ctx, sub, sp)
	if err != nil {
		return st, stripeErr("read the subscription of "+acct.OrgID, err)
	}
	if pm := card(sb.DefaultPaymentMethod); pm != nil {
		st.PaymentMethod = pm
	}
	if sb.Items != nil && len(sb.Items.Data) > 0 && sb.Items.Data[0].CurrentPeriodEnd > 0 {
		it := sb.Items.Data[0]
		st.CurrentPeriod = &Period{Start: time.Unix(it.CurrentPeriodStart, 0).UTC(), End: time.Unix(it.CurrentPeriodEnd, 0).UTC()}
	}
	inv, err := s.sc.V1Invoices.CreatePreview(ctx, &stripe.InvoiceCreatePreviewParams{Customer: stripe.String(acct.CustomerID()), Subscription: stripe.String(sub)})
	if err != nil {
		if notFound(err) {
			return st, nil // nothing to invoice next (a subscription ending)
		}
		return st, stripeErr("preview the next invoice of "+acct.OrgID, err)
	}
	when := inv.PeriodEnd
	if inv.NextPaymentAttempt > 0 {
		when = inv.NextPaymentAttempt
	}
	st.UpcomingInvoice = &UpcomingInvoice{AmountDue: inv.AmountDue, Currency: string(inv.Currency), Date: time.Unix(when, 0).UTC()}
	return st, nil
}

func card(pm *stripe.PaymentMethod) *PaymentMethod {
	if pm == nil || pm.Card == nil {
		return nil
	}
	return &PaymentMethod{Brand: string(pm.Card.Brand), Last4: pm.Card.Last4}
}

// Invoice is one of an organisation's invoices, as the console lists it.
type Invoice struct {
	ID        string    `json:"id"`
	Number    string    `json:"number"`
	Status    string    `json:"status"`
	AmountDue int64     `json:"amount_due" doc:"In the currency's smallest unit (cents)."`
	Currency  string    `json:"currency"`
	Created   time.Time `json:"created"`
	URL       string    `json:"url" doc:"Stripe's hosted invoice page."`
}

// invoiceIDRe is what a cursor of the invoices' pages may be.
var invoiceIDRe = regexp.MustCompile(`^in_[A-Za-z0-9]{1,250}$`)

// ValidInvoiceCursor reports whether after may name the last invoice of a
// page.
func ValidInvoiceCursor(after string) bool { return invoiceIDRe.MatchString(after) }

// Invoices lists the customer's invoices, newest first, limit at a time
// after the invoice after ("": the first page); next is the cursor of the
// next page ("": none).
func (s *Stripe) Invoices(ctx context.Context, acct store.BillingAccount, after string, limit int) (page []Invoice, next string, err error) {
	page = []Invoice{}
	if acct.CustomerID() == "" {
		return page, "", nil
	}
	p := &stripe.InvoiceListParams{Customer: stripe.String(acct.CustomerID())}
	// One more than the page: whether there is a next page, in one call.
	p.Limit = stripe.Int64(int64(limit + 1))
	if after != "" {
		p.StartingAfter = stripe.String(after)
	}
	for inv, err := range s.sc.V1Invoices.List(ctx, p) {
		if err != nil {
			return nil, "", stripeErr("list the invoices of "+acct.OrgID, err)
		}
		if len(page) == limit {
			next = page[len(page)-1].ID
			break
		}
		page = append(page, Invoice{ID: inv.ID, Number: inv.Number, Status: string(inv.Status), AmountDue: inv.AmountDue,
			Currency: string(inv.Currency), Created: time.Unix(inv.Created, 0).UTC(), URL: inv.HostedInvoiceURL})
	}
	return page, next, nil
}

// CancelSubscription cancels the subscription at once; one already gone
// is nothing to do.
func (s *Stripe) CancelSubscription(ctx context.Context, subscriptionID string) error {
	if subscriptionID == "" {
		return nil
	}
	p := &stripe.SubscriptionCancelParams{}
	p.SetIdempotencyKey(derivedKey("cancel", subscriptionID))
	if _, err := s.sc.V1Subscriptions.Cancel(ctx, subscriptionID, p); err != nil && !notFound(err) {
		return stripeErr("cancel subscription "+subscriptionID, err)
	}
	return nil
}

// CancelOrganization cancels the organisation's subscription, if it has
// one: what deleting the organisation does to its billing.
func (s *Stripe) CancelOrganization(ctx context.Context, orgID string) error {
	acct, err := store.BillingAccountOf(ctx, s.db, orgID)
	if err != nil {
		return err
	}
	sub := acct.Subscription()
	if sub == "" {
		return nil
	}
	if err := s.CancelSubscription(ctx, sub); err != nil {
		return err
	}
	return store.ForgetSubscription(ctx, s.db, orgID, sub)
}

// decimalRe is a non-negative decimal number, as a meter event's value.
var decimalRe = regexp.MustCompile(`^[0-9]{1,15}(\.[0-9]{1,6})?$`)

// ReportUsage reports one organisation-day's tenant hours to Stripe as a
// meter event of CP_STRIPE_METER_EVENT. Its identifier is derived from
// the organisation, the day (UTC) and the meter, so a retry of the same
// day is not counted twice (Stripe keeps identifiers for at least 24
// hours: a day is reported within the day after it). An organisation
// with no Stripe customer has nothing billed on usage: nothing is sent.
// tenantHours is a decimal number (such as "36" or "36.5").
func (s *Stripe) ReportUsage(ctx context.Context, orgID string, day time.Time, tenantHours string) error {
	if s == nil {
		return nil
	}
	if !decimalRe.MatchString(tenantHours) {
		return fmt.Errorf("report usage of %s: %q is not a non-negative decimal number", orgID, tenantHours)
	}
	acct, err := store.BillingAccountOf(ctx, s.db, orgID)
	if err != nil {
		return err
	}
	if acct.CustomerID() == "" {
		return nil
	}
	d := day.UTC().Truncate(24 * time.Hour)
	// The event is stamped at the day's last second (now, for today's).
	at := d.Add(24*time.Hour - time.Second)
	if now := time.Now().UTC(); at.After(now) {
		at = now
	}
	p := &stripe.BillingMeterEventCreateParams{
		EventName:  stripe.String(s.cfg.MeterEvent),
		Identifier: stripe.String(UsageIdentifier(orgID, d, s.cfg.MeterEvent)),
		Payload:    map[string]string{"stripe_customer_id": acct.CustomerID(), "value": tenantHours},
		Timestamp:  stripe.Int64(at.Unix()),
	}
	if _, err := s.sc.V1BillingMeterEvents.Create(ctx, p); err != nil {
		return stripeErr(fmt.Sprintf("report the usage of %s on %s", orgID, d.Format(time.DateOnly)), err)
	}
	return nil
}

// UsageIdentifier is the meter event identifier of an organisation-day:
// the same for every retry of that day on that meter.
func UsageIdentifier(orgID string, day time.Time, meter string) string {
	return "ia-usage-" + derivedKey(orgID, day.UTC().Format(time.DateOnly), meter)
}

// derivedKey is a short, stable key of its parts.
func derivedKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:20])
}
