package integration

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/intelliauth/controlplane/internal/harness"
)

// TestTheConsoleShowsBillingFromStripe runs the control plane (dev) with
// billing on against stripe-mock: an owner's checkout makes the Stripe
// customer, Stripe's events (signed webhooks) make the organisation
// active on a plan and then past_due, and the billing page shows the
// plan, the failed payment with its grace's end, the card, the period,
// the next invoice and the invoices. Its screenshot is
// docs/console-billing.png.
func TestTheConsoleShowsBillingFromStripe(t *testing.T) {
	t.Parallel()
	// A database of the harness, to read the customer the checkout made.
	url, db := harness.Get(t).NewDatabase(t, false)
	env := append(devEnv(t), "CP_DATABASE_URL="+url, "CP_STRIPE_SECRET_KEY=sk_test_consolebilling", "CP_STRIPE_WEBHOOK_SECRET="+testWebhookSecret,
		"CP_STRIPE_PRICES=team=price_team,enterprise=price_enterprise", "CP_STRIPE_API_URL="+stripeMock(t))
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	billingPage := "/orgs/" + owner.org + "/billing"

	// The checkout makes the customer: stripe-mock's fixture id.
	code, out := owner.do("POST", "/organizations/"+owner.org+"/billing/checkout", map[string]any{"plan": "team"})
	if code != 200 {
		t.Fatalf("checkout: %d %v", code, out)
	}
	code, out = owner.do("GET", "/organizations/"+owner.org+"/billing", nil)
	if code != 200 {
		t.Fatalf("billing: %d %v", code, out)
	}
	var customer string
	if err := db.NewSelect().Table("billing_accounts").Column("stripe_customer_id").Where("org_id = ?", owner.org).Scan(context.Background(), &customer); err != nil {
		t.Fatal(err)
	}
	post := func(body []byte) {
		signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: testWebhookSecret, Timestamp: time.Now()})
		req, _ := http.NewRequest("POST", origin+"/api/v1/billing/stripe/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Stripe-Signature", signed.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
	}
	t0 := time.Now().Add(-time.Minute)
	post(checkoutCompleted("evt_console_co", t0, owner.org, customer, "sub_console", "team"))
	post(invoiceEvent("evt_console_failed", "invoice.payment_failed", t0.Add(10*time.Second), customer, "sub_console"))

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, out = owner.do("GET", "/organizations/"+owner.org+"/billing", nil)
		if d, _ := out["data"].(map[string]any); d != nil && d["status"] == "past_due" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the organisation is not past_due: %v", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	c := openConsole(t, origin)
	c.navigate("/sign-in?next=" + billingPage)
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/billing$`)
	c.waitFor("the Billing link", `[...document.querySelectorAll("header nav a")].some(a => a.innerText === "Billing")`)
	c.waitFor("the plan Team", `document.querySelector("[data-testid=billing-plan]")?.innerText === "Team"`)
	c.waitFor("the failed payment with its grace", `document.querySelector("[data-testid=past-due]")?.innerText.includes("Unless it is paid by")`)
	c.waitFor("the next invoice", `document.querySelector("[data-testid=upcoming-invoice]")?.innerText.includes(" on ")`)
	c.waitFor("the invoices", `document.querySelector("[data-testid=invoices] tbody tr")`)
	c.accessible("billing")
	c.screenshot("billing")
	if dir := os.Getenv("CP_CONSOLE_SCREENSHOTS"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "console-billing.png")); err == nil {
			_ = os.WriteFile(filepath.Join("..", "docs", "console-billing.png"), b, 0o644)
		}
	}
}
