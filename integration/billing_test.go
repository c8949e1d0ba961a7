package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

func TestBillingOffAnswers404OnEveryBillingRouteAndOwnersChangePlansDirectly(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "free")
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: harness.TaskQueue(t), Keys: h.Keys})
	owner := w.People[domain.RoleOwner].Token
	for _, r := range []struct{ method, path string }{
		{"GET", orgPath(w, "/billing")}, {"POST", orgPath(w, "/billing/checkout")}, {"POST", orgPath(w, "/billing/portal")}, {"GET", orgPath(w, "/invoices")},
	} {
		var body any
		if r.path == orgPath(w, "/billing/checkout") {
			body = map[string]any{"plan": "team"}
		}
		// Absent for every member, whatever their role.
		for role, p := range w.People {
			if got := httpReq(t, srv, r.method, r.path, p.Token, body, "off-"+uniq()); got.Status != 404 || got.code() != "NOT_FOUND" {
				t.Errorf("%s %s as %s with billing off: %d %s, want 404", r.method, r.path, role, got.Status, got.Raw)
			}
		}
	}
	if got := deliver(t, srv, checkoutCompleted("evt_off", time.Now(), w.Org.ID, "cus_x", "sub_x", "team"), testWebhookSecret, time.Now()); got.Status != 404 {
		t.Errorf("the webhook with billing off: %d %s, want 404", got.Status, got.Raw)
	}
	if got := httpReq(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"plan": "team"}, "plan-"+uniq()); got.Status != 200 {
		t.Fatalf("PATCH plan with billing off: %d %s, want 200", got.Status, got.Raw)
	}
}

func TestWithBillingOnAPlanIsNotChangedDirectly(t *testing.T) {
	st := newBillingStack(t, time.Hour, false)
	got := httpReq(t, st.srv, "PATCH", orgPath(st.w, ""), st.w.People[domain.RoleOwner].Token, map[string]any{"plan": "team"}, "plan-"+uniq())
	if got.Status != 409 || got.code() != string(domain.CodePlanManagedByBilling) || !strings.Contains(got.Raw, "billing/checkout") {
		t.Fatalf("PATCH plan with billing on: %d %s, want 409 PLAN_MANAGED_BY_BILLING naming checkout", got.Status, got.Raw)
	}
	// A rename is not a plan change.
	if got := httpReq(t, st.srv, "PATCH", orgPath(st.w, ""), st.w.People[domain.RoleOwner].Token, map[string]any{"name": "Renamed"}, "name-"+uniq()); got.Status != 200 {
		t.Fatalf("a rename with billing on: %d %s", got.Status, got.Raw)
	}
}

// TestEveryStripeCallTheBillingMakesAnswersAgainstStripeMock exercises
// each call the billing makes (customer, checkout, portal, customer and
// subscription read, invoice preview, invoices, cancel, meter event)
// through the routes and functions that make it, against stripe-mock.
func TestEveryStripeCallTheBillingMakesAnswersAgainstStripeMock(t *testing.T) {
	st := newBillingStack(t, time.Hour, false)
	ctx := context.Background()
	owner, admin, dev := st.w.People[domain.RoleOwner].Token, st.w.People[domain.RoleAdmin].Token, st.w.People[domain.RoleDeveloper].Token

	if got := httpReq(t, st.srv, "GET", orgPath(st.w, "/billing"), admin, nil, ""); got.Status != 200 || !strings.Contains(got.Raw, `"status":"none"`) {
		t.Fatalf("GET billing of an organisation never billed: %d %s", got.Status, got.Raw)
	}
	if got := httpReq(t, st.srv, "GET", orgPath(st.w, "/billing"), dev, nil, ""); got.Status != 403 {
		t.Fatalf("a developer reads billing: %d %s, want 403", got.Status, got.Raw)
	}
	if got := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/checkout"), admin, map[string]any{"plan": "team"}, "co-"+uniq()); got.Status != 403 {
		t.Fatalf("an admin starts a checkout: %d %s, want 403", got.Status, got.Raw)
	}
	if got := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/checkout"), owner, map[string]any{"plan": "free"}, "co-"+uniq()); got.Status != 400 {
		t.Fatalf("a checkout of the free plan: %d %s, want 400", got.Status, got.Raw)
	}

	// The first checkout makes the customer (stripe-mock's fixture id,
	// shared by every creation: given back when the test ends).
	coKey := "co-" + uniq()
	co := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/checkout"), owner, map[string]any{"plan": "team"}, coKey)
	if again := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/checkout"), owner, map[string]any{"plan": "team"}, coKey); again.Status != 200 {
		t.Fatalf("the checkout's retry: %d %s", again.Status, again.Raw)
	}
	acct, _ := st.account(t)
	t.Cleanup(func() {
		st.h.DB.NewDelete().Model((*store.BillingAccount)(nil)).Where("org_id = ?", st.w.Org.ID).Exec(ctx)
	})
	if co.Status != 200 || !strings.Contains(co.Raw, `"url":"http`) || acct.CustomerID() == "" {
		t.Fatalf("checkout: %d %s, customer %q", co.Status, co.Raw, acct.CustomerID())
	}
	if got := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/portal"), owner, nil, "portal-"+uniq()); got.Status != 200 || !strings.Contains(got.Raw, `"url":"http`) {
		t.Fatalf("portal: %d %s", got.Status, got.Raw)
	}
	evs, err := store.ListEvents(ctx, st.h.DB, store.EventFilter{OrgID: st.w.Org.ID, Action: "billing.checkout_started"}, store.Keyset{}, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("billing.checkout_started events: %v %v", len(evs), err)
	}

	// With a subscription: the card, the period and the next invoice.
	if _, err := st.h.DB.NewUpdate().Model((*store.BillingAccount)(nil)).Set("subscription_id = 'sub_mock', status = 'active'").
		Where("org_id = ?", st.w.Org.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	got := httpReq(t, st.srv, "GET", orgPath(st.w, "/billing"), owner, nil, "")
	if got.Status != 200 || !strings.Contains(got.Raw, `"status":"active"`) || !strings.Contains(got.Raw, `"upcoming_invoice":{`) {
		t.Fatalf("GET billing with a subscription: %d %s", got.Status, got.Raw)
	}
	if got := httpReq(t, st.srv, "POST", orgPath(st.w, "/billing/checkout"), owner, map[string]any{"plan": "enterprise"}, "co-"+uniq()); got.Status != 409 {
		t.Fatalf("a checkout while subscribed: %d %s, want 409", got.Status, got.Raw)
	}
	inv := httpReq(t, st.srv, "GET", orgPath(st.w, "/invoices?limit=1"), admin, nil, "")
	if inv.Status != 200 || !strings.Contains(inv.Raw, `"id":"in_`) {
		t.Fatalf("invoices: %d %s", inv.Status, inv.Raw)
	}
	if got := httpReq(t, st.srv, "GET", orgPath(st.w, "/invoices?cursor=forged"), admin, nil, ""); got.Status != 400 {
		t.Fatalf("invoices with a forged cursor: %d %s, want 400", got.Status, got.Raw)
	}

	if err := st.stripe.ReportUsage(ctx, st.w.Org.ID, time.Now().Add(-24*time.Hour), "36.5"); err != nil {
		t.Fatalf("ReportUsage: %v", err)
	}
	if err := st.stripe.ReportUsage(ctx, st.w.Org.ID, time.Now(), "1e9"); err == nil {
		t.Fatal("ReportUsage took a value that is not a decimal number")
	}
	day := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	if a, b := billing.UsageIdentifier(st.w.Org.ID, day, "tenant_hours"), billing.UsageIdentifier(st.w.Org.ID, day.Add(8*time.Hour), "tenant_hours"); a != b {
		t.Fatalf("one day's usage has two identifiers: %s, %s", a, b)
	}
	if err := st.stripe.CancelOrganization(ctx, st.w.Org.ID); err != nil {
		t.Fatalf("cancel the subscription: %v", err)
	}
	if a, _ := st.account(t); a.Subscription() != "" || a.Status != "canceled" {
		t.Fatalf("after the cancellation: %+v", a)
	}
}

func TestAPaidCheckoutMovesThePlanAuditedAsStripes(t *testing.T) {
	st := newBillingStack(t, time.Hour, true)
	cus := st.customer(t)
	now := time.Now()
	got := deliver(t, st.srv, checkoutCompleted("evt_co_"+uniq(), now, st.w.Org.ID, cus, "sub_"+uniq(), "team"), testWebhookSecret, now)
	if got.Status != 200 {
		t.Fatalf("webhook: %d %s", got.Status, got.Raw)
	}
	st.waitBilling(t, "active", "team", 20*time.Second)
	evs, err := store.ListEvents(context.Background(), st.h.DB, store.EventFilter{OrgID: st.w.Org.ID, Action: domain.ActionBillingSubscribed}, store.Keyset{}, 10)
	if err != nil || len(evs) != 1 || evs[0].ActorType != "system" || evs[0].ActorID != "stripe" || !strings.Contains(string(evs[0].OnBehalfOf), st.w.Org.ID) {
		t.Fatalf("billing.subscribed: %+v %v", evs, err)
	}
}

// TestAPlanSwitchedInThePortalMovesThePlan: the subscription's price
// changed to another plan's (a switch in Stripe's portal) moves the
// organisation to that plan, audited as Stripe's; an update that switches
// nothing, or to a price no plan has, changes nothing and supersedes
// nothing.
func TestAPlanSwitchedInThePortalMovesThePlan(t *testing.T) {
	st := newBillingStack(t, time.Hour, true)
	cus, sub := st.customer(t), "sub_"+uniq()
	t0 := time.Now().Add(-time.Minute)
	if got := deliver(t, st.srv, checkoutCompleted("evt_co_"+uniq(), t0, st.w.Org.ID, cus, sub, "team"), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("checkout: %d %s", got.Status, got.Raw)
	}
	st.waitBilling(t, "active", "team", 20*time.Second)
	same, other := "evt_same_"+uniq(), "evt_other_"+uniq()
	for _, p := range [][]byte{subscriptionUpdated(same, t0.Add(10*time.Second), cus, sub, "price_team"),
		subscriptionUpdated(other, t0.Add(20*time.Second), cus, sub, "price_nobodys")} {
		if got := deliver(t, st.srv, p, testWebhookSecret, time.Now()); got.Status != 200 {
			t.Fatalf("an update that switches nothing: %d %s", got.Status, got.Raw)
		}
	}
	switched := "evt_switch_" + uniq()
	if got := deliver(t, st.srv, subscriptionUpdated(switched, t0.Add(30*time.Second), cus, sub, "price_enterprise"), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("the switch: %d %s", got.Status, got.Raw)
	}
	st.waitBilling(t, "active", "enterprise", 20*time.Second)
	if got := st.outcome(t, same); got != domain.BillingEventIgnored {
		t.Fatalf("an update to the same plan: %q, want ignored", got)
	}
	if _, err := store.BillingEventByID(context.Background(), st.h.DB, other); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("an update to no plan's price was stored (%v): it is dropped", err)
	}
	// A failed payment created before the switch but delivered after it
	// is superseded; one created after it applies.
	late := "evt_late_" + uniq()
	if got := deliver(t, st.srv, invoiceEvent(late, "invoice.payment_failed", t0.Add(25*time.Second), cus, sub), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("a late failure: %d %s", got.Status, got.Raw)
	}
	for deadline := time.Now().Add(20 * time.Second); st.outcome(t, late) == ""; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the late failure was not applied within 20 s")
		}
	}
	if got := st.outcome(t, late); got != domain.BillingEventSuperseded {
		t.Fatalf("a failure created before the switch, delivered after it: %q, want superseded", got)
	}
	if a, plan := st.account(t); a.Status != "active" || plan != "enterprise" {
		t.Fatalf("after the late failure: %s on %s", a.Status, plan)
	}
	evs, err := store.ListEvents(context.Background(), st.h.DB, store.EventFilter{OrgID: st.w.Org.ID, Action: domain.ActionBillingPlanChanged}, store.Keyset{}, 10)
	if err != nil || len(evs) != 1 || evs[0].ActorType != "system" || evs[0].ActorID != "stripe" ||
		!strings.Contains(string(evs[0].Data), `"after": {"plan": "enterprise"}`) && !strings.Contains(string(evs[0].Data), `"after":{"plan":"enterprise"}`) {
		t.Fatalf("billing.plan_changed: %+v %v", evs, err)
	}
}

func TestAFailedPaymentMakesItPastDueMailsItsOwnersAndMovesItToFreeAfterTheGrace(t *testing.T) {
	st := newBillingStack(t, 2*time.Second, true)
	cus, sub := st.customer(t), "sub_"+uniq()
	t0 := time.Now().Add(-time.Minute)
	if got := deliver(t, st.srv, checkoutCompleted("evt_co_"+uniq(), t0, st.w.Org.ID, cus, sub, "enterprise"), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("checkout: %d %s", got.Status, got.Raw)
	}
	st.waitBilling(t, "active", "enterprise", 20*time.Second)
	if got := deliver(t, st.srv, invoiceEvent("evt_fail_"+uniq(), "invoice.payment_failed", t0.Add(10*time.Second), cus, sub), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("payment failed: %d %s", got.Status, got.Raw)
	}
	a := st.waitBilling(t, "past_due", "enterprise", 20*time.Second)
	if a.GraceEndsAt == nil {
		t.Fatal("past_due without the grace's end")
	}
	got := httpReq(t, st.srv, "GET", orgPath(st.w, "/billing"), st.w.People[domain.RoleOwner].Token, nil, "")
	if got.Status != 200 || !strings.Contains(got.Raw, `"grace_ends_at":"`) {
		t.Fatalf("GET billing while past_due: %d %s", got.Status, got.Raw)
	}
	var mails int
	if err := st.h.DB.NewSelect().Table("outbox").ColumnExpr("count(*)").Where("recipient = ? AND subject LIKE 'Payment failed%'", st.w.People[domain.RoleOwner].Email).Scan(context.Background(), &mails); err != nil || mails != 1 {
		t.Fatalf("the owner's mail: %d %v", mails, err)
	}
	// The durable timer: free after the grace, nothing destroyed.
	st.waitBilling(t, "canceled", "free", 20*time.Second)
	evs, err := store.ListEvents(context.Background(), st.h.DB, store.EventFilter{OrgID: st.w.Org.ID, Action: domain.ActionBillingGraceEnded}, store.Keyset{}, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("billing.grace_ended: %d %v", len(evs), err)
	}
	recordHistoryAs(t, st.h, workflows.BillingWorkflowID(st.w.Org.ID), "", workflows.BillingHistoryPrefix()+"-past-due-grace-ended")
}

func TestTheSameEventTwiceAndOutOfOrderIsAppliedOnceAndInOrder(t *testing.T) {
	st := newBillingStack(t, time.Hour, true)
	cus, sub := st.customer(t), "sub_"+uniq()
	t0 := time.Now().Add(-time.Minute)
	co := "evt_co_" + uniq()
	deliver(t, st.srv, checkoutCompleted(co, t0, st.w.Org.ID, cus, sub, "team"), testWebhookSecret, time.Now())
	st.waitBilling(t, "active", "team", 20*time.Second)
	// A payment failed, then paid; Stripe delivers the paid first.
	failed, paid := "evt_fail_"+uniq(), "evt_paid_"+uniq()
	failedBody, paidBody := invoiceEvent(failed, "invoice.payment_failed", t0.Add(10*time.Second), cus, sub), invoiceEvent(paid, "invoice.paid", t0.Add(20*time.Second), cus, sub)
	if got := deliver(t, st.srv, paidBody, testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("paid: %d %s", got.Status, got.Raw)
	}
	waitUntil(t, "the paid invoice applied", 20*time.Second, func() bool { return st.outcome(t, paid) != "" })
	if got := deliver(t, st.srv, failedBody, testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("failed: %d %s", got.Status, got.Raw)
	}
	waitUntil(t, "the failure recorded", 20*time.Second, func() bool { return st.outcome(t, failed) != "" })
	if o := st.outcome(t, failed); o != domain.BillingEventSuperseded {
		t.Fatalf("the older failure delivered late: %s, want superseded", o)
	}
	// The same deliveries again: recognised, applied once.
	for _, body := range [][]byte{paidBody, failedBody, checkoutCompleted(co, t0, st.w.Org.ID, cus, sub, "team")} {
		if got := deliver(t, st.srv, body, testWebhookSecret, time.Now()); got.Status != 200 || !strings.Contains(got.Raw, `"duplicate":true`) {
			t.Fatalf("a duplicate delivery: %d %s", got.Status, got.Raw)
		}
	}
	a, plan := st.account(t)
	if a.Status != "active" || plan != "team" {
		t.Fatalf("after the late failure: %s on %s, want active on team", a.Status, plan)
	}
	var n int
	if err := st.h.DB.NewSelect().Table("audit_events").ColumnExpr("count(*)").Where("org_id = ? AND action LIKE 'billing.%'", st.w.Org.ID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("billing audit events: %d %v, want the subscription's only", n, err)
	}
	// An old subscription's deletion does not end the new one.
	if got := deliver(t, st.srv, subscriptionDeleted("evt_del_"+uniq(), time.Now(), cus, "sub_old"), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("deleted: %d %s", got.Status, got.Raw)
	}
	del := "evt_del_" + uniq()
	deliver(t, st.srv, subscriptionDeleted(del, time.Now(), cus, sub), testWebhookSecret, time.Now())
	st.waitBilling(t, "canceled", "free", 20*time.Second)
	recordHistoryAs(t, st.h, workflows.BillingWorkflowID(st.w.Org.ID), "", workflows.BillingHistoryPrefix()+"-out-of-order-duplicates-deleted")
}

func TestAForgedOrStaleSignatureIsRefusedWithNothingStored(t *testing.T) {
	st := newBillingStack(t, time.Hour, false)
	cus := st.customer(t)
	for name, tc := range map[string]struct {
		secret string
		at     time.Time
	}{
		"forged": {"whsec_anothersecret", time.Now()},
		"stale":  {testWebhookSecret, time.Now().Add(-10 * time.Minute)},
	} {
		id := "evt_bad_" + uniq()
		got := deliver(t, st.srv, checkoutCompleted(id, time.Now(), st.w.Org.ID, cus, "sub_x", "team"), tc.secret, tc.at)
		if got.Status != 400 || got.code() != "BAD_REQUEST" || strings.Contains(got.Raw, "whsec") {
			t.Errorf("%s: %d %s, want 400", name, got.Status, got.Raw)
		}
		if _, err := store.BillingEventByID(context.Background(), st.h.DB, id); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("%s: the event was stored: %v", name, err)
		}
	}
	// No signature at all, and a body that is not an event.
	if got := deliver(t, st.srv, []byte(`{"nope":`), testWebhookSecret, time.Now()); got.Status != 400 {
		t.Errorf("a broken body: %d %s", got.Status, got.Raw)
	}
}

func TestAnEventReceivedWhileNoWorkerRunsIsAppliedWhenOneStarts(t *testing.T) {
	st := newBillingStack(t, time.Hour, false)
	cus := st.customer(t)
	id := "evt_co_" + uniq()
	if got := deliver(t, st.srv, checkoutCompleted(id, time.Now(), st.w.Org.ID, cus, "sub_"+uniq(), "team"), testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("webhook with no worker: %d %s", got.Status, got.Raw)
	}
	time.Sleep(time.Second)
	if o := st.outcome(t, id); o != "" {
		t.Fatalf("applied with no worker: %s", o)
	}
	st.startWorker(t)
	st.waitBilling(t, "active", "team", 30*time.Second)
	if o := st.outcome(t, id); o != domain.BillingEventApplied {
		t.Fatalf("outcome %q", o)
	}
}

func TestTheWebhookAnswers503WhenTemporalIsUnreachableAndTheRetryAppliesTheStoredEvent(t *testing.T) {
	st := newBillingStack(t, time.Hour, true)
	cus := st.customer(t)
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Namespace: harness.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	down := api.New(api.Deps{DB: st.h.DB, Temporal: dead, Log: st.h.Log, TaskQueue: st.tq, Keys: st.h.Keys, WorkerBound: 2 * time.Second, Billing: st.stripe})
	id := "evt_co_" + uniq()
	body := checkoutCompleted(id, time.Now(), st.w.Org.ID, cus, "sub_"+uniq(), "team")
	if got := deliver(t, down, body, testWebhookSecret, time.Now()); got.Status != 503 || got.code() != "UNAVAILABLE" {
		t.Fatalf("webhook with Temporal down: %d %s, want 503", got.Status, got.Raw)
	}
	if o := st.outcome(t, id); o != "" {
		t.Fatalf("applied with Temporal down: %s", o)
	}
	// Stripe's retry reaches a replica that reaches Temporal.
	if got := deliver(t, st.srv, body, testWebhookSecret, time.Now()); got.Status != 200 {
		t.Fatalf("the retry: %d %s", got.Status, got.Raw)
	}
	st.waitBilling(t, "active", "team", 20*time.Second)
}

// TestADeletedOrganizationsSubscriptionIsCancelled deletes an organisation
// with a subscription: when its deletion becomes final, the saga's
// EndOrgTenants cancels the subscription in Stripe (stripe-mock) and the
// organisation's billing says so.
func TestADeletedOrganizationsSubscriptionIsCancelled(t *testing.T) {
	h := harness.Get(t)
	l := newOrgLifecycle(t, nil, orgSaga(time.Second))
	stripe := billing.New(testBilling(t, time.Hour), h.DB, "https://console.example.test")
	h.StartWorker(t, l.deps.TaskQueue, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterWorkflowWithOptions(workflows.OrganizationWorkflow, workflow.RegisterOptions{Name: workflows.OrganizationWorkflowType})
		r.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: l.dp, Stripe: stripe,
			Tenants: workflows.NewClient(h.Temporal, harness.Namespace, l.deps.TaskQueue, l.deps.Saga)})
	})
	w := newWorld(t, h, "team")
	ctx := context.Background()
	if _, err := store.SetStripeCustomer(ctx, h.DB, w.Org.ID, "cus_"+strings.ReplaceAll(uniq(), "-", "")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DB.NewUpdate().Model((*store.BillingAccount)(nil)).Set("subscription_id = 'sub_deleted_org', status = 'active'").Where("org_id = ?", w.Org.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if r := l.deleteOrg(t, w, domain.RoleOwner, w.Org.Slug, "del-"+uniq()); r.Status != 202 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	waitUntil(t, "the subscription cancelled", 60*time.Second, func() bool {
		a, err := store.BillingAccountOf(ctx, h.DB, w.Org.ID)
		return err == nil && a.Subscription() == "" && a.Status == "canceled"
	})
}
