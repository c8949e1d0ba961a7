package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// BillingAccount is a row of billing_accounts: an organisation's Stripe
// customer and where its subscription stands.
type BillingAccount struct {
	bun.BaseModel `bun:"table:billing_accounts"`

	OrgID            string     `bun:"org_id,pk"`
	StripeCustomerID *string    `bun:"stripe_customer_id"`
	SubscriptionID   *string    `bun:"subscription_id"`
	Status           string     `bun:"status"`
	PastDueSince     *time.Time `bun:"past_due_since"`
	GraceEndsAt      *time.Time `bun:"grace_ends_at"`
	StateEventAt     *time.Time `bun:"state_event_at"`
	UpdatedAt        time.Time  `bun:"updated_at"`
}

// CustomerID is the account's Stripe customer ("": none yet).
func (a BillingAccount) CustomerID() string {
	if a.StripeCustomerID == nil {
		return ""
	}
	return *a.StripeCustomerID
}

// Subscription is the account's subscription ("": none).
func (a BillingAccount) Subscription() string {
	if a.SubscriptionID == nil {
		return ""
	}
	return *a.SubscriptionID
}

// BillingEvent is a row of billing_events: a Stripe event's facts as
// received, and how it was applied.
type BillingEvent struct {
	bun.BaseModel `bun:"table:billing_events"`

	StripeEventID  string     `bun:"stripe_event_id,pk"`
	OrgID          string     `bun:"org_id"`
	Type           string     `bun:"type"`
	StripeCreated  time.Time  `bun:"stripe_created"`
	CustomerID     string     `bun:"customer_id"`
	SubscriptionID string     `bun:"subscription_id"`
	InvoiceID      string     `bun:"invoice_id"`
	PlanID         string     `bun:"plan_id"`
	Paid           bool       `bun:"paid"`
	ReceivedAt     time.Time  `bun:"received_at,nullzero,default:now()"`
	AppliedAt      *time.Time `bun:"applied_at"`
	Outcome        *string    `bun:"outcome"`
}

// BillingAccountOf returns the organisation's billing account; one never
// billed has status none and no customer.
func BillingAccountOf(ctx context.Context, db bun.IDB, orgID string) (BillingAccount, error) {
	a := BillingAccount{OrgID: orgID}
	err := db.NewSelect().Model(&a).WherePK().Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return BillingAccount{OrgID: orgID, Status: string(domain.BillingNone)}, nil
	}
	if err != nil {
		return a, fmt.Errorf("billing account of %s: %w", orgID, err)
	}
	return a, nil
}

// SetStripeCustomer records the organisation's Stripe customer unless it
// has one already, and returns the one it has: of two requests that made
// a customer at once (Stripe's idempotency key makes them the same one),
// the first recorded wins.
func SetStripeCustomer(ctx context.Context, db bun.IDB, orgID, customerID string) (string, error) {
	var got string
	err := db.NewRaw(`INSERT INTO billing_accounts (org_id, stripe_customer_id) VALUES (?, ?)
		ON CONFLICT (org_id) DO UPDATE SET stripe_customer_id = COALESCE(billing_accounts.stripe_customer_id, EXCLUDED.stripe_customer_id)
		RETURNING stripe_customer_id`, orgID, customerID).Scan(ctx, &got)
	if err != nil {
		return "", fmt.Errorf("record the Stripe customer of %s: %w", orgID, err)
	}
	return got, nil
}

// OrgOfStripeCustomer returns the organisation whose Stripe customer it
// is ("": none).
func OrgOfStripeCustomer(ctx context.Context, db bun.IDB, customerID string) (string, error) {
	if customerID == "" {
		return "", nil
	}
	var orgID string
	err := db.NewSelect().Table("billing_accounts").Column("org_id").Where("stripe_customer_id = ?", customerID).Scan(ctx, &orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("organisation of a Stripe customer: %w", err)
	}
	return orgID, nil
}

// RecordBillingEvent stores a Stripe event as received, once: a delivery
// of an event stored before writes nothing and returns the stored one
// (stored false), applied or not, so the caller hands an event not yet
// applied to the workflow again.
func RecordBillingEvent(ctx context.Context, db bun.IDB, ev BillingEvent) (BillingEvent, bool, error) {
	res, err := db.NewInsert().Model(&ev).On("CONFLICT (stripe_event_id) DO NOTHING").Exec(ctx)
	if err != nil {
		return ev, false, fmt.Errorf("record Stripe event %s: %w", ev.StripeEventID, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return ev, true, nil
	}
	var stored BillingEvent
	if err := db.NewSelect().Model(&stored).Where("stripe_event_id = ?", ev.StripeEventID).Scan(ctx); err != nil {
		return ev, false, fmt.Errorf("read Stripe event %s: %w", ev.StripeEventID, err)
	}
	return stored, false, nil
}

// BillingEventByID returns a stored Stripe event.
func BillingEventByID(ctx context.Context, db bun.IDB, id string) (BillingEvent, error) {
	var ev BillingEvent
	err := db.NewSelect().Model(&ev).Where("stripe_event_id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return ev, domain.Errorf(domain.CodeNotFound, "Stripe event not found: %s", id)
	}
	if err != nil {
		return ev, fmt.Errorf("read Stripe event %s: %w", id, err)
	}
	return ev, nil
}

// PendingBillingEvents lists the organisation's events received and not
// applied yet, oldest first: what an operator re-drives.
func PendingBillingEvents(ctx context.Context, db bun.IDB, orgID string) ([]BillingEvent, error) {
	var evs []BillingEvent
	err := db.NewSelect().Model(&evs).Where("org_id = ? AND applied_at IS NULL", orgID).Order("received_at", "stripe_event_id").Limit(1000).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("pending Stripe events of %s: %w", orgID, err)
	}
	return evs, nil
}

// BillingApply is how an event is applied: the grace a failed payment
// gives, and the mail its owners are sent.
type BillingApply struct {
	Grace time.Duration
	// Mail writes the message to an owner whose organisation's payment
	// failed (nil: none sent).
	Mail func(o Organization, email string, graceEndsAt time.Time) OutboxMessage
}

// BillingApplied is what applying an event did, and where the
// organisation's billing stands after it.
type BillingApplied struct {
	Outcome string
	// Already: the event had been applied before (a retry, a
	// duplicate); nothing was written now.
	Already     bool
	Status      string
	GraceEndsAt *time.Time
}

// ApplyBillingEvent applies a stored Stripe event to its organisation, in
// one transaction that marks the event applied with its effect, so an
// event is applied once whatever retries or duplicates: a checkout paid
// moves the organisation to the plan bought; a failed payment makes it
// past_due (its grace ends after a.Grace) and mails its owners; an
// invoice paid makes a past_due organisation active again; a deleted
// subscription moves it to the free plan. An event older (Stripe's
// created) than the last one applied to the organisation's billing state
// is superseded, and an event about another subscription than the
// organisation's is ignored: both are recorded, neither changes anything.
func ApplyBillingEvent(ctx context.Context, db *bun.DB, eventID string, a BillingApply) (BillingApplied, error) {
	var out BillingApplied
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = BillingApplied{}
		var ev BillingEvent
		if err := tx.NewSelect().Model(&ev).Where("stripe_event_id = ?", eventID).For("UPDATE").Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return domain.Errorf(domain.CodeNotFound, "Stripe event not found: %s", eventID)
			}
			return fmt.Errorf("lock Stripe event %s: %w", eventID, err)
		}
		o, err := lockOrganization(ctx, tx, ev.OrgID)
		if err != nil {
			return err
		}
		acct, err := lockBillingAccount(ctx, tx, ev.OrgID)
		if err != nil {
			return err
		}
		out.Status, out.GraceEndsAt = acct.Status, acct.GraceEndsAt
		if ev.AppliedAt != nil {
			out.Outcome, out.Already = *ev.Outcome, true
			return nil
		}
		outcome, err := applyBillingEvent(ctx, tx, o, &acct, ev, a)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		if outcome == domain.BillingEventApplied {
			created := ev.StripeCreated
			acct.StateEventAt, acct.UpdatedAt = &created, now
			if _, err := tx.NewUpdate().Model(&acct).WherePK().Exec(ctx); err != nil {
				return fmt.Errorf("update billing account %s: %w", o.ID, err)
			}
		}
		if _, err := tx.NewUpdate().Model((*BillingEvent)(nil)).Set("applied_at = ?, outcome = ?", now, outcome).
			Where("stripe_event_id = ?", ev.StripeEventID).Exec(ctx); err != nil {
			return fmt.Errorf("mark Stripe event %s applied: %w", ev.StripeEventID, err)
		}
		out.Outcome, out.Status, out.GraceEndsAt = outcome, acct.Status, acct.GraceEndsAt
		return nil
	})
	return out, err
}

// lockBillingAccount reads the organisation's billing account with its row
// locked, making it first when there is none.
func lockBillingAccount(ctx context.Context, tx bun.Tx, orgID string) (BillingAccount, error) {
	if _, err := tx.NewRaw("INSERT INTO billing_accounts (org_id) VALUES (?) ON CONFLICT (org_id) DO NOTHING", orgID).Exec(ctx); err != nil {
		return BillingAccount{}, fmt.Errorf("billing account of %s: %w", orgID, err)
	}
	var acct BillingAccount
	if err := tx.NewSelect().Model(&acct).Where("org_id = ?", orgID).For("UPDATE").Scan(ctx); err != nil {
		return acct, fmt.Errorf("lock billing account of %s: %w", orgID, err)
	}
	return acct, nil
}

// applyBillingEvent is the effect of one event on the organisation and its
// account (which the caller writes), and its outcome.
func applyBillingEvent(ctx context.Context, tx bun.Tx, o Organization, acct *BillingAccount, ev BillingEvent, a BillingApply) (string, error) {
	if o.State != "" && o.State != string(domain.OrgActive) {
		return domain.BillingEventIgnored, nil
	}
	if acct.StateEventAt != nil && ev.StripeCreated.Before(*acct.StateEventAt) {
		return domain.BillingEventSuperseded, nil
	}
	ours := ev.SubscriptionID != "" && ev.SubscriptionID == acct.Subscription()
	data := map[string]any{"stripe_event_id": ev.StripeEventID, "stripe_event_type": ev.Type}
	if ev.SubscriptionID != "" {
		data["subscription_id"] = ev.SubscriptionID
	}
	if ev.InvoiceID != "" {
		data["invoice_id"] = ev.InvoiceID
	}
	switch ev.Type {
	case domain.StripeCheckoutCompleted, domain.StripeCheckoutAsyncSucceeded:
		if !ev.Paid || ev.PlanID == "" || ev.SubscriptionID == "" {
			return domain.BillingEventIgnored, nil
		}
		if ok, err := planExists(ctx, tx, ev.PlanID); !ok {
			return domain.BillingEventIgnored, err
		}
		sub := ev.SubscriptionID
		acct.SubscriptionID, acct.Status, acct.PastDueSince, acct.GraceEndsAt = &sub, string(domain.BillingActive), nil, nil
		data["before"], data["after"] = map[string]any{"plan": o.PlanID}, map[string]any{"plan": ev.PlanID}
		if err := setPlan(ctx, tx, &o, ev.PlanID); err != nil {
			return "", err
		}
		return domain.BillingEventApplied, stripeEvent(ctx, tx, o, domain.ActionBillingSubscribed, ev, data)
	case domain.StripeInvoicePaymentFailed:
		if !ours {
			return domain.BillingEventIgnored, nil
		}
		if acct.Status == string(domain.BillingPastDue) {
			return domain.BillingEventApplied, nil // the grace runs from the first failure
		}
		since, ends := ev.StripeCreated, time.Now().UTC().Add(a.Grace).Truncate(time.Microsecond)
		acct.Status, acct.PastDueSince, acct.GraceEndsAt = string(domain.BillingPastDue), &since, &ends
		data["grace_ends_at"] = ends
		if err := mailOwners(ctx, tx, o, ends, a.Mail); err != nil {
			return "", err
		}
		return domain.BillingEventApplied, stripeEvent(ctx, tx, o, domain.ActionBillingPaymentFailed, ev, data)
	case domain.StripeInvoicePaid:
		if !ours {
			return domain.BillingEventIgnored, nil
		}
		if acct.Status != string(domain.BillingPastDue) {
			return domain.BillingEventApplied, nil
		}
		acct.Status, acct.PastDueSince, acct.GraceEndsAt = string(domain.BillingActive), nil, nil
		return domain.BillingEventApplied, stripeEvent(ctx, tx, o, domain.ActionBillingPaymentRecovered, ev, data)
	case domain.StripeSubscriptionUpdated:
		// Only a switch of plan is applied: any other update (a status
		// the invoice events carry) is ignored, so it never supersedes
		// an invoice event created just before it.
		if !ours || ev.PlanID == "" || ev.PlanID == o.PlanID {
			return domain.BillingEventIgnored, nil
		}
		if ok, err := planExists(ctx, tx, ev.PlanID); !ok {
			return domain.BillingEventIgnored, err
		}
		data["before"], data["after"] = map[string]any{"plan": o.PlanID}, map[string]any{"plan": ev.PlanID}
		if err := setPlan(ctx, tx, &o, ev.PlanID); err != nil {
			return "", err
		}
		return domain.BillingEventApplied, stripeEvent(ctx, tx, o, domain.ActionBillingPlanChanged, ev, data)
	case domain.StripeSubscriptionDeleted:
		if !ours {
			return domain.BillingEventIgnored, nil
		}
		acct.SubscriptionID, acct.Status, acct.PastDueSince, acct.GraceEndsAt = nil, string(domain.BillingCanceled), nil, nil
		data["before"], data["after"] = map[string]any{"plan": o.PlanID}, map[string]any{"plan": domain.FreePlan}
		if err := setPlan(ctx, tx, &o, domain.FreePlan); err != nil {
			return "", err
		}
		return domain.BillingEventApplied, stripeEvent(ctx, tx, o, domain.ActionBillingSubscriptionCanceled, ev, data)
	}
	return domain.BillingEventIgnored, nil
}

// planExists reports whether the plan an event names is one of ours.
func planExists(ctx context.Context, tx bun.Tx, id string) (bool, error) {
	if _, err := PlanByID(ctx, tx, id); err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// GraceEnd is what the end of an organisation's grace did.
type GraceEnd struct {
	// Ended: the organisation was still past_due with this grace, and
	// moved to the free plan.
	Ended bool
	// SubscriptionID is the subscription that ended with it, for Stripe
	// to cancel.
	SubscriptionID string
}

// EndBillingGrace moves a past_due organisation whose grace (the one that
// ends at graceEndsAt) ran out to the free plan, its subscription
// canceled, in one transaction with its audit event; an organisation paid
// meanwhile (or given another grace, or deleted) is left as it is.
// Idempotent: a second call finds it no longer past_due.
func EndBillingGrace(ctx context.Context, db *bun.DB, orgID string, graceEndsAt time.Time, workflowID string) (GraceEnd, error) {
	var out GraceEnd
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		out = GraceEnd{}
		o, err := lockOrganization(ctx, tx, orgID)
		if err != nil {
			return err
		}
		acct, err := lockBillingAccount(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if acct.Status != string(domain.BillingPastDue) || acct.GraceEndsAt == nil || !acct.GraceEndsAt.Equal(graceEndsAt) {
			return nil
		}
		out = GraceEnd{Ended: true, SubscriptionID: acct.Subscription()}
		data := map[string]any{"grace_ends_at": graceEndsAt, "before": map[string]any{"plan": o.PlanID}, "after": map[string]any{"plan": domain.FreePlan}}
		if out.SubscriptionID != "" {
			data["subscription_id"] = out.SubscriptionID
		}
		acct.SubscriptionID, acct.Status, acct.PastDueSince, acct.GraceEndsAt, acct.UpdatedAt = nil, string(domain.BillingCanceled), nil, nil, time.Now().UTC()
		if _, err := tx.NewUpdate().Model(&acct).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update billing account %s: %w", orgID, err)
		}
		if o.State == "" || o.State == string(domain.OrgActive) {
			if err := setPlan(ctx, tx, &o, domain.FreePlan); err != nil {
				return err
			}
		}
		key := fmt.Sprintf("billing/%s/grace/%d", orgID, graceEndsAt.UnixMicro())
		ev := &AuditEvent{OrgID: o.ID, Action: domain.ActionBillingGraceEnded, TargetType: "organization", TargetID: o.ID,
			WorkflowID: workflowID, DedupKey: &key, Data: mustJSON(data)}
		stripeActor(ev, o.ID)
		_, err = InsertEvent(ctx, tx, ev)
		return err
	})
	return out, err
}

// setPlan moves the organisation to the plan (the row locked by the
// caller).
func setPlan(ctx context.Context, tx bun.Tx, o *Organization, plan string) error {
	if o.PlanID == plan {
		return nil
	}
	o.PlanID, o.UpdatedAt = plan, time.Now().UTC()
	if _, err := tx.NewUpdate().Model(o).Column("plan_id", "updated_at").WherePK().Exec(ctx); err != nil {
		return fmt.Errorf("move organisation %s to plan %s: %w", o.ID, plan, err)
	}
	return nil
}

// stripeActor names Stripe as the event's actor: the system's "stripe",
// acting on behalf of the organisation, its customer.
func stripeActor(ev *AuditEvent, orgID string) {
	ev.ActorType, ev.ActorID = "system", "stripe"
	raw, _ := json.Marshal(domain.Actor{Type: "organization", ID: orgID})
	ev.OnBehalfOf = raw
}

// stripeEvent writes the audit event of a Stripe event's effect, once per
// Stripe event.
func stripeEvent(ctx context.Context, tx bun.Tx, o Organization, action string, ev BillingEvent, data map[string]any) error {
	key := "billing/" + ev.StripeEventID
	e := &AuditEvent{OrgID: o.ID, Action: action, TargetType: "organization", TargetID: o.ID, DedupKey: &key,
		Data: mustJSON(data), WorkflowID: "billing/" + o.ID}
	stripeActor(e, o.ID)
	_, err := InsertEvent(ctx, tx, e)
	return err
}

// mailOwners writes a message to each owner of the organisation into the
// outbox, in the transaction of the change it tells of.
func mailOwners(ctx context.Context, tx bun.Tx, o Organization, graceEndsAt time.Time, mail func(Organization, string, time.Time) OutboxMessage) error {
	if mail == nil {
		return nil
	}
	var emails []string
	err := tx.NewRaw(`SELECT u.email FROM members m JOIN users u ON u.id = m.user_id
		WHERE m.org_id = ? AND m.role = 'owner' ORDER BY u.email`, o.ID).Scan(ctx, &emails)
	if err != nil {
		return fmt.Errorf("owners of %s: %w", o.ID, err)
	}
	for _, e := range emails {
		msg := mail(o, e, graceEndsAt)
		if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
			return fmt.Errorf("mail owner of %s: %w", o.ID, err)
		}
	}
	return nil
}

// ForgetSubscription records that the organisation's subscription was
// cancelled by the control plane (its deletion): status canceled, no
// subscription. Another subscription recorded meanwhile is left alone.
func ForgetSubscription(ctx context.Context, db bun.IDB, orgID, subscriptionID string) error {
	_, err := db.NewUpdate().Model((*BillingAccount)(nil)).
		Set("subscription_id = NULL, status = 'canceled', past_due_since = NULL, grace_ends_at = NULL, updated_at = now()").
		Where("org_id = ? AND subscription_id = ?", orgID, subscriptionID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("forget the subscription of %s: %w", orgID, err)
	}
	return nil
}
