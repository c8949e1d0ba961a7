package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// envTrail is an organisation whose newest events are about its prod
// tenants and whose few older ones are about one ci and one staging
// tenant: what a service account limited to ci reads is far back in the
// organisation's time order.
type envTrail struct {
	Org store.Organization
	// ByEnv are each environment's events, newest first.
	ByEnv map[string][]store.Keyset
}

const (
	envTrailProd  = 6000
	envTrailOther = 300 // each of ci and staging
)

func seedEnvTrail(t *testing.T) envTrail {
	t.Helper()
	ctx := context.Background()
	org := newOrg(t)
	now := time.Now().UTC()
	u := store.User{ID: domain.NewID(domain.PrefixUser), Email: "env-" + strings.ToLower(org.ID[len(org.ID)-8:]) + "@example.test",
		PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	if _, err := testDB.NewInsert().Model(&u).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	tenant := func(i int, env string) store.Tenant {
		tn := store.Tenant{ID: domain.NewID(domain.PrefixTenant), OrgID: org.ID, Name: fmt.Sprintf("%s-%02d", env, i), Environment: env,
			State: "active", Hostname: fmt.Sprintf("%s-%02d-%s.test", env, i, org.Slug), WorkflowID: "tenant/" + org.ID + "/" + domain.NewID(""),
			CreatedBy: u.ID, CreatedAt: now, UpdatedAt: now}
		if _, err := testDB.NewInsert().Model(&tn).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	var prod []store.Tenant
	for i := range 40 {
		prod = append(prod, tenant(i, "prod"))
	}
	ci, staging := tenant(0, "ci"), tenant(0, "staging")

	tr := envTrail{Org: org, ByEnv: map[string][]store.Keyset{}}
	start := now.Add(-24 * time.Hour)
	err := testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		add := func(at time.Time, tn store.Tenant) error {
			ev := &store.AuditEvent{OrgID: org.ID, Action: "tenant.suspended", ActorType: "system", ActorID: "saga",
				TargetType: "tenant", TargetID: tn.ID, OccurredAt: at}
			if _, err := store.InsertEvent(ctx, tx, ev); err != nil {
				return err
			}
			tr.ByEnv[tn.Environment] = append(tr.ByEnv[tn.Environment], store.Keyset{CreatedAt: ev.OccurredAt, ID: ev.ID})
			return nil
		}
		// ci and staging first, interleaved, then prod: the newest 6,000.
		for i := range 2 * envTrailOther {
			tn := ci
			if i%2 == 1 {
				tn = staging
			}
			if err := add(start.Add(time.Duration(i)*time.Second), tn); err != nil {
				return err
			}
		}
		for i := range envTrailProd {
			if err := add(start.Add(time.Hour+time.Duration(i)*time.Second), prod[i%len(prod)]); err != nil {
				return err
			}
		}
		// An event about the organisation, in no environment.
		_, err := store.InsertEvent(ctx, tx, &store.AuditEvent{OrgID: org.ID, Action: "organization.updated", ActorType: "system",
			ActorID: "test", TargetType: "organization", TargetID: org.ID, OccurredAt: now})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range tr.ByEnv {
		slices.Reverse(ids)
	}
	if _, err := testDB.ExecContext(ctx, "ANALYZE audit_events"); err != nil {
		t.Fatal(err)
	}
	if _, err := testDB.ExecContext(ctx, "ANALYZE tenants"); err != nil {
		t.Fatal(err)
	}
	return tr
}

// queryRecorder keeps the SQL of the queries run through its handle.
type queryRecorder struct {
	mu      sync.Mutex
	queries []string
}

func (r *queryRecorder) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (r *queryRecorder) AfterQuery(_ context.Context, ev *bun.QueryEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, ev.Query)
}

// planNode is a node of EXPLAIN (ANALYZE, FORMAT JSON).
type planNode struct {
	NodeType     string     `json:"Node Type"`
	RelationName string     `json:"Relation Name"`
	IndexName    string     `json:"Index Name"`
	ActualRows   float64    `json:"Actual Rows"`
	ActualLoops  float64    `json:"Actual Loops"`
	RemovedBy    float64    `json:"Rows Removed by Filter"`
	Plans        []planNode `json:"Plans"`
}

func (n planNode) walk(f func(planNode)) {
	f(n)
	for _, c := range n.Plans {
		c.walk(f)
	}
}

// explainListEvents runs store.ListEvents, then EXPLAIN ANALYZE of the
// statement it ran, and returns the events and the plan's root.
func explainListEvents(t *testing.T, f store.EventFilter, before store.Keyset, limit int) ([]store.AuditEvent, planNode, string) {
	t.Helper()
	ctx := context.Background()
	rec := &queryRecorder{}
	db := bun.NewDB(testDB.DB, pgdialect.New())
	db.AddQueryHook(rec)
	rows, err := store.ListEvents(ctx, db, f, before, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.queries) != 1 {
		t.Fatalf("ListEvents ran %d statements, want 1: %q", len(rec.queries), rec.queries)
	}
	var raw string
	if err := testDB.NewRaw("EXPLAIN (ANALYZE, FORMAT JSON) "+rec.queries[0]).Scan(ctx, &raw); err != nil {
		t.Fatalf("explain: %v\n%s", err, rec.queries[0])
	}
	var plans []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(raw), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain: %v %s", err, raw)
	}
	// The plan as text, to read a failure by.
	var lines []string
	if err := testDB.NewRaw("EXPLAIN ANALYZE "+rec.queries[0]).Scan(ctx, &lines); err != nil {
		t.Fatal(err)
	}
	text := rec.queries[0] + "\n" + strings.Join(lines, "\n")
	return rows, plans[0].Plan, text
}

// TestAnEnvironmentLimitedEventsPageIsAnIndexRangeScan (issue 23, finding
// 5): a service account limited to an environment made every events page
// read the organisation's trail from the newest event back until it found
// a page of its environment's (or to the end, for an environment with few
// events), 186–290 ms a page at 400,000 events. Each of its pages must be
// one range scan of an index on (org_id, environment, occurred_at, id)
// per environment, reading no more than the page: no sequential scan, no
// row read and thrown away by a filter.
func TestAnEnvironmentLimitedEventsPageIsAnIndexRangeScan(t *testing.T) {
	tr := seedEnvTrail(t)
	const limit = 50
	for _, envs := range [][]string{{"ci"}, {"ci", "staging"}} {
		var want []string
		var keys []store.Keyset
		for _, env := range envs {
			keys = append(keys, tr.ByEnv[env]...)
		}
		// Newest first across the environments (the times are distinct).
		slices.SortFunc(keys, func(a, b store.Keyset) int { return b.CreatedAt.Compare(a.CreatedAt) })
		for _, k := range keys {
			want = append(want, k.ID)
		}

		f := store.EventFilter{OrgID: tr.Org.ID, Environments: envs}
		var got []string
		var before store.Keyset
		for page := 0; ; page++ {
			rows, plan, text := explainListEvents(t, f, before, limit)
			var scans []planNode
			read := 0.0
			plan.walk(func(n planNode) {
				if n.RelationName != "audit_events" {
					return
				}
				scans = append(scans, n)
				read += n.ActualRows * max(n.ActualLoops, 1)
				if n.NodeType == "Seq Scan" || n.IndexName != "audit_events_org_environment_idx" || n.RemovedBy > 0 {
					t.Errorf("%v page %d: %s of audit_events (index %q) removing %.0f rows by filter; want a range scan of audit_events_org_environment_idx\n%s",
						envs, page, n.NodeType, n.IndexName, n.RemovedBy, text)
				}
			})
			if len(scans) == 0 {
				t.Fatalf("%v page %d: the plan reads no audit_events\n%s", envs, page, text)
			}
			if max := float64((limit + 1) * len(envs)); read > max {
				t.Errorf("%v page %d: the plan reads %.0f events for a page of %d; want at most %.0f\n%s", envs, page, read, limit, max, text)
			}
			if t.Failed() {
				return
			}
			more := len(rows) > limit
			if more {
				rows = rows[:limit]
			}
			for _, e := range rows {
				got = append(got, e.ID)
			}
			if !more {
				break
			}
			last := rows[len(rows)-1]
			before = store.Keyset{CreatedAt: last.OccurredAt, ID: last.ID}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%v: paged %d events, want the %d of those environments, newest first", envs, len(got), len(want))
		}
	}
}
