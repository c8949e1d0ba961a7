package integration

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

// privateDatabase starts a Postgres cluster of the test's own (one it may
// stop and start again) with a migrated database, and returns the harness
// on it.
func privateDatabase(t *testing.T) (*harness.Harness, *pgcluster.Cluster) {
	t.Helper()
	ctx := context.Background()
	pg, err := pgcluster.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop() })
	if err := pg.CreateDatabase(ctx, "controlplane"); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, pg.URL("controlplane"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := schema.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	return harness.Get(t).WithDatabase(pg.URL("controlplane"), db), pg
}

// TestWhileItsDatabaseIsDownTheAPIAnswers503WithRetryAfter stops the
// control plane's Postgres under a running API and worker: every kind of
// request (a read, a sign-in, a creation, a transition) is answered 503
// UNAVAILABLE with Retry-After, never 500; once Postgres is back, the same
// requests succeed, the creation retried with its key is carried out once
// and its tenant is provisioned.
func TestWhileItsDatabaseIsDownTheAPIAnswers503WithRetryAfter(t *testing.T) {
	h, pg := privateDatabase(t)
	l := newLifecycleOn(t, h, nil, testSaga(time.Second), nil)
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "before")
	viewer, dev := w.People[domain.RoleViewer].Token, w.People[domain.RoleDeveloper].Token

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	requests := []struct {
		name string
		do   func() response
	}{
		{"read", func() response { return req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID), viewer, nil) }},
		{"list", func() response { return req(t, l.srv, "GET", orgPath(w, "/tenants"), viewer, nil) }},
		{"sign-in", func() response {
			return req(t, l.srv, "POST", "/api/v1/auth/sign-in", "", map[string]string{"email": w.People[domain.RoleViewer].Email, "password": testPassword})
		}},
		{"create", func() response {
			return httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), dev, map[string]string{"name": "during", "environment": "prod"}, "outage-create")
		}},
		{"suspend", func() response {
			return httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/suspend"), w.People[domain.RoleAdmin].Token, nil, "outage-suspend")
		}},
	}
	for _, r := range requests {
		got := r.do()
		secs, err := strconv.Atoi(got.Header.Get("Retry-After"))
		if got.Status != 503 || got.code() != string(domain.CodeUnavailable) || err != nil || secs < 1 {
			t.Errorf("%s while Postgres is down: %d %q Retry-After %q, want 503 UNAVAILABLE with Retry-After\n%s",
				r.name, got.Status, got.code(), got.Header.Get("Retry-After"), got.Raw)
		}
	}

	if err := pg.StartAgain(context.Background()); err != nil {
		t.Fatal(err)
	}
	var created lifecycleData
	eventually(t, func() bool {
		r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), dev, map[string]string{"name": "during", "environment": "prod"}, "outage-create")
		if r.Status == 202 {
			r.data(t, &created)
		}
		return r.Status == 202
	})
	l.waitState(t, w, created.Tenant.ID, domain.StateActive)
	if r := req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID), viewer, nil); r.Status != 200 {
		t.Fatalf("read after Postgres is back: %d %s", r.Status, r.Raw)
	}
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM tenants WHERE org_id = ? AND name = 'during'", w.Org.ID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("tenants named during = %d (%v), want 1", n, err)
	}
}

// TestADatabaseOutageLongerThanAStepsRetriesDoesNotMakeTheSagaStuck stops
// Postgres while a tenant's keys step is under way, for longer than the
// step's attempts last (two attempts here): the step waits for the
// database instead of spending its attempts on an outage, and the tenant
// is provisioned once Postgres is back, with no failed attempt recorded.
func TestADatabaseOutageLongerThanAStepsRetriesDoesNotMakeTheSagaStuck(t *testing.T) {
	h, pg := privateDatabase(t)
	l := newLifecycleOn(t, h, map[domain.Step]dataplane.Fault{domain.StepKeys: {Delay: time.Second}}, testSaga(time.Second), nil)
	w := newWorld(t, h, "team")
	d := l.accepted(t, w, "patient", "patient-key")
	// The schema step is done and the keys step has begun (its delay).
	eventually(t, func() bool {
		var op store.Operation
		err := h.DB.NewSelect().Model(&op).Where("id = ?", d.Operation.ID).Scan(context.Background())
		return err == nil && len(op.Steps) > 0 && op.Steps[0].Status == "done"
	})
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // two attempts, their backoff and their delays, over
	if err := pg.StartAgain(context.Background()); err != nil {
		t.Fatal(err)
	}
	tn := l.waitState(t, w, d.Tenant.ID, domain.StateActive)
	var op store.Operation
	if err := h.DB.NewSelect().Model(&op).Where("id = ?", d.Operation.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, s := range op.Steps {
		if s.Status != "done" || s.LastError != "" {
			t.Errorf("step %s: %s after %d attempts (%q); an outage is not a failed attempt", s.Name, s.Status, s.Attempts, s.LastError)
		}
	}
	if res := l.resources(t, tn); !res.Schema || !res.Keys || !res.Route {
		t.Fatalf("resources after the outage: %+v", res)
	}
}
