package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82"
	"github.com/stripe/stripe-go/v82/webhook"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// stripeMockVersion is the stripe-mock the billing tests run against:
// Stripe's official mock of its API (stateless: it answers fixtures).
const stripeMockVersion = "v0.203.0"

// testWebhookSecret signs the tests' webhook payloads.
const testWebhookSecret = "whsec_billingtestsecret"

var (
	stripeMockOnce sync.Once
	stripeMockURL  string
	stripeMockErr  error
)

// stripeMock starts one stripe-mock for the test process on a port the
// system picks, installing it with go install into the user cache when it
// is missing (the billing tests must run, never skip), and returns its URL.
func stripeMock(t testing.TB) string {
	t.Helper()
	stripeMockOnce.Do(func() {
		bin := stripeMockBinary(t)
		if bin == "" {
			return
		}
		// Both listeners on ports the system picks: stripe-mock's HTTPS
		// one defaults to :12112, which another test process may hold
		// (stripe-mock then exits).
		cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
		out, err := cmd.StdoutPipe()
		if err != nil {
			stripeMockErr = err
			return
		}
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			stripeMockErr = err
			return
		}
		harness.OnExit(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := make(chan string, 1)
		go func() {
			re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					addr <- m[1]
				}
			}
		}()
		select {
		case a := <-addr:
			stripeMockURL = "http://" + a
		case <-time.After(30 * time.Second):
			stripeMockErr = fmt.Errorf("stripe-mock did not say where it listens within 30 s")
		}
	})
	if stripeMockErr != nil || stripeMockURL == "" {
		t.Fatalf("stripe-mock is needed and could not be started: %v", stripeMockErr)
	}
	return stripeMockURL
}

// stripeMockBinary finds stripe-mock: on PATH, in GOPATH/bin, in the user
// cache, or installed there now.
func stripeMockBinary(t testing.TB) string {
	if p, err := exec.LookPath("stripe-mock"); err == nil {
		return p
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "stripe-mock"); isFile(p) {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "intelliauth-controlplane", "bin")
	if p := filepath.Join(bin, "stripe-mock"); isFile(p) {
		return p
	}
	cmd := exec.Command("go", "install", "github.com/stripe/stripe-mock@"+stripeMockVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		stripeMockErr = err
		t.Logf("go install stripe-mock: %s", out)
		return ""
	}
	return filepath.Join(bin, "stripe-mock")
}

// testBilling is billing configured against stripe-mock.
func testBilling(t testing.TB, grace time.Duration) config.Billing {
	return config.Billing{SecretKey: "sk_test_billingtests", WebhookSecret: testWebhookSecret,
		Prices: map[string]string{"team": "price_team", "enterprise": "price_enterprise"}, APIURL: stripeMock(t),
		MeterEvent: "tenant_hours", Grace: grace}
}

// billingStack is an organisation with an API whose billing is on
// (stripe-mock), and a worker of billing workflows a test may stop.
type billingStack struct {
	h      *harness.Harness
	w      world
	srv    *api.Server
	tq     string
	cfg    config.Billing
	stripe *billing.Stripe
	// stopWorker stops the worker, as a kill (nil: none started).
	stopWorker harness.StopWorker
}

func newBillingStack(t *testing.T, grace time.Duration, withWorker bool) *billingStack {
	t.Helper()
	h := harness.Get(t)
	st := &billingStack{h: h, w: newWorld(t, h, "free"), tq: harness.TaskQueue(t), cfg: testBilling(t, grace)}
	st.stripe = billing.New(st.cfg, h.DB, "https://console.example.test")
	st.srv = api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: st.tq, Keys: h.Keys, WorkerBound: 5 * time.Second,
		Billing: st.stripe, ConsoleURL: "https://console.example.test"})
	if withWorker {
		st.startWorker(t)
	}
	return st
}

// startWorker starts a worker of the stack's billing workflows.
func (st *billingStack) startWorker(t *testing.T) {
	t.Helper()
	st.stopWorker = st.h.StartStoppableWorker(t, st.tq, worker.Options{}, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(workflows.BillingWorkflow, workflow.RegisterOptions{Name: workflows.BillingWorkflowType})
		r.RegisterActivity(&activities.Billing{DB: st.h.DB, Stripe: st.stripe, ConsoleURL: "https://console.example.test"})
	})
}

// customer gives the stack's organisation a Stripe customer of its own
// (stripe-mock answers every creation with the same fixture id).
func (st *billingStack) customer(t *testing.T) string {
	t.Helper()
	id := "cus_" + strings.ReplaceAll(uniq(), "-", "")
	if _, err := store.SetStripeCustomer(context.Background(), st.h.DB, st.w.Org.ID, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// stripeEvent is a Stripe event of the library's API version.
func stripeEvent(id, typ string, created time.Time, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": created.Unix(),
		"type": typ, "livemode": false, "pending_webhooks": 1, "data": map[string]any{"object": object}})
	return b
}

func checkoutCompleted(id string, created time.Time, orgID, customer, sub, plan string) []byte {
	return stripeEvent(id, "checkout.session.completed", created, map[string]any{"id": "cs_" + id, "object": "checkout.session",
		"mode": "subscription", "payment_status": "paid", "status": "complete", "client_reference_id": orgID, "customer": customer,
		"subscription": sub, "metadata": map[string]string{"org_id": orgID, "plan": plan}})
}

func invoiceEvent(id, typ string, created time.Time, customer, sub string) []byte {
	return stripeEvent(id, typ, created, map[string]any{"id": "in_" + id, "object": "invoice", "customer": customer,
		"parent": map[string]any{"type": "subscription_details", "subscription_details": map[string]any{"subscription": sub}}})
}

func subscriptionDeleted(id string, created time.Time, customer, sub string) []byte {
	return stripeEvent(id, "customer.subscription.deleted", created, map[string]any{"id": sub, "object": "subscription", "customer": customer, "status": "canceled"})
}

func subscriptionUpdated(id string, created time.Time, customer, sub, price string) []byte {
	return stripeEvent(id, "customer.subscription.updated", created, map[string]any{"id": sub, "object": "subscription", "customer": customer, "status": "active",
		"items": map[string]any{"object": "list", "data": []map[string]any{{"id": "si_" + id, "object": "subscription_item", "price": map[string]any{"id": price, "object": "price"}}}}})
}

// deliver posts a webhook delivery signed with secret at the time.
func deliver(t testing.TB, srv *api.Server, payload []byte, secret string, at time.Time) response {
	t.Helper()
	signed := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: at})
	r := httptest.NewRequest("POST", "/api/v1/billing/stripe/webhook", bytes.NewReader(payload))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Stripe-Signature", signed.Header)
	resp := testApp(t, srv, r, 30_000)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out.Env)
	}
	return out
}

// account reads the organisation's billing account and plan.
func (st *billingStack) account(t testing.TB) (store.BillingAccount, string) {
	t.Helper()
	a, err := store.BillingAccountOf(context.Background(), st.h.DB, st.w.Org.ID)
	if err != nil {
		t.Fatal(err)
	}
	var plan string
	if err := st.h.DB.NewSelect().Table("organizations").Column("plan_id").Where("id = ?", st.w.Org.ID).Scan(context.Background(), &plan); err != nil {
		t.Fatal(err)
	}
	return a, plan
}

// waitBilling waits until the organisation's billing status and plan are
// the ones given.
func (st *billingStack) waitBilling(t *testing.T, status, plan string, within time.Duration) store.BillingAccount {
	t.Helper()
	var a store.BillingAccount
	var p string
	waitUntil(t, fmt.Sprintf("billing %s on plan %s", status, plan), within, func() bool {
		a, p = st.account(t)
		return a.Status == status && p == plan
	})
	return a
}

// outcome reads how a stored Stripe event was applied ("": not yet).
func (st *billingStack) outcome(t testing.TB, id string) string {
	t.Helper()
	ev, err := store.BillingEventByID(context.Background(), st.h.DB, id)
	if err != nil {
		t.Fatalf("event %s: %v", id, err)
	}
	if ev.Outcome == nil {
		return ""
	}
	return *ev.Outcome
}
