package integration

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/billing"
)

// stripeRecorder is a proxy in front of stripe-mock that keeps the body
// of every meter event sent through it.
type stripeRecorder struct {
	mu     sync.Mutex
	events []url.Values
}

func (r *stripeRecorder) meterEvents() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.events...)
}

func recordStripe(t *testing.T, upstream string) (*stripeRecorder, string) {
	t.Helper()
	target, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rec := &stripeRecorder{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/billing/meter_events" {
			body, _ := io.ReadAll(r.Body)
			form, err := url.ParseQuery(string(body))
			if err != nil {
				t.Errorf("a meter event's body: %v", err)
			}
			rec.mu.Lock()
			rec.events = append(rec.events, form)
			rec.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(body)))
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return rec, srv.URL
}

// TestAClosedDayIsReportedOnceForEachOrganisationWithAStripeCustomer: the
// daily close's report sends each closed organisation-day with a Stripe
// customer as one meter event whose value is the day's tenant_hours_total
// (the usage API's number), marks it reported, and sends nothing again on
// a retry; an organisation without a customer is not reported.
func TestAClosedDayIsReportedOnceForEachOrganisationWithAStripeCustomer(t *testing.T) {
	st := newBillingStack(t, time.Hour, false)
	ctx := context.Background()
	cfg := st.cfg
	rec, proxied := recordStripe(t, cfg.APIURL)
	cfg.APIURL = proxied
	stripe := billing.New(cfg, st.h.DB, "https://console.example.test")
	customer := st.customer(t)
	other := newWorld(t, st.h, "free")
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, org := range []string{st.w.Org.ID, other.Org.ID} {
		// 1.5 h in prod and 1,818 s in staging: 7,218 s, 2.005 h, billed 2.01.
		if _, err := st.h.DB.ExecContext(ctx, `INSERT INTO usage_days (org_id, day, tenant_seconds, peak_members, api_requests, operations)
			VALUES (?, ?::date, '{"prod": 5400, "staging": 1818}', 3, 10, 2)`, org, day.Format(time.DateOnly)); err != nil {
			t.Fatal(err)
		}
	}
	reported := func(org string) *time.Time {
		var at sql.NullTime
		if err := st.h.DB.QueryRowContext(ctx, `SELECT reported_at FROM usage_days WHERE org_id = ? AND day = ?::date`, org, day.Format(time.DateOnly)).Scan(&at); err != nil {
			t.Fatalf("usage day of %s: %v", org, err)
		}
		if !at.Valid {
			return nil
		}
		return &at.Time
	}
	if err := stripe.ReportClosedDay(ctx, day); err != nil {
		t.Fatalf("report: %v", err)
	}
	events := rec.meterEvents()
	if len(events) != 1 {
		t.Fatalf("%d meter events sent, want 1: %v", len(events), events)
	}
	ev := events[0]
	if ev.Get("event_name") != "tenant_hours" || ev.Get("payload[value]") != "2.01" || ev.Get("payload[stripe_customer_id]") != customer ||
		ev.Get("identifier") != billing.UsageIdentifier(st.w.Org.ID, day, "tenant_hours") ||
		ev.Get("timestamp") != "1780358399" {
		t.Fatalf("the meter event: %v", ev)
	}
	first := reported(st.w.Org.ID)
	if first == nil || reported(other.Org.ID) != nil {
		t.Fatalf("reported: ours %v, the organisation without a customer %v", first, reported(other.Org.ID))
	}
	if err := stripe.ReportClosedDay(ctx, day); err != nil {
		t.Fatalf("the report again: %v", err)
	}
	if n := len(rec.meterEvents()); n != 1 || !reported(st.w.Org.ID).Equal(*first) {
		t.Fatalf("the report again sent %d meter events in all, reported at %v (was %v)", n, reported(st.w.Org.ID), first)
	}
	if err := (*billing.Stripe)(nil).ReportClosedDay(ctx, day); err != nil {
		t.Fatalf("billing off: %v", err)
	}
}
