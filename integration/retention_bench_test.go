package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// BenchmarkRetentionPurge purges an organisation of a million events (a
// year of them, events_bench_test.go's trail, in a database of its own so
// the other benchmarks' trail is left whole) down to a plan's window of
// 30 days, in batches of store.PurgeBatch paced as the retention
// activity paces them (workflows.DefaultRestFactor), and measures beside
// it what customers do: the events page (the first, and one 60,000
// events back, inside the window), whole exports (20 of 50,000 while the
// trail is that long, in the test process), and event writes of the
// organisation. The purge runs and rests in turns of 2 s;
// every request is counted on the side it ran beside, so with and without
// the purge are measured on the same machine at the same moments; the
// target is the purge costing pages and exports at most 1.2×. The chain
// then verifies from its checkpoint.
//
//	go test -run '^$' -bench RetentionPurge -benchtime 1x -timeout 30m ./integration
func BenchmarkRetentionPurge(b *testing.B) {
	shared := harness.Get(b)
	ctx := context.Background()
	url, db := shared.NewDatabase(b, true)
	h := shared.WithDatabase(url, db)
	if _, err := db.ExecContext(ctx, `INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute, audit_retention_days)
		VALUES ('bench-retention', 'Bench retention', 100000, 100, 1000000, 30)`); err != nil {
		b.Fatal(err)
	}
	end := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	created := end.AddDate(-1, 0, 0).Add(-time.Hour)
	org := store.Organization{ID: newIDAt(domain.PrefixOrganization, created, cryptoEntropy), Slug: "bench-retention",
		Name: "Bench Retention", PlanID: "bench-retention", CreatedAt: created, UpdatedAt: created}
	if _, err := db.NewInsert().Model(&org).Exec(ctx); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	seedTrail(b, h, org.ID, trailEvents, end.AddDate(-1, 0, 0), end)
	b.Logf("%d events seeded in %v", trailEvents, time.Since(t0).Round(100*time.Millisecond))
	admin := addPerson(b, h, org.ID, domain.RoleAdmin)
	addr := serve(b, api.New(api.Deps{DB: db, Temporal: h.Temporal, Log: h.Log}))
	c := eventsClient{base: "http://" + addr + "/api/v1/organizations/" + org.ID + "/events", token: admin.Token, http: &http.Client{}}
	const depth = 60_000
	deep := c.walk(b, "", depth)

	b.ResetTimer()
	// The purge runs 2 s, rests 2 s, and so on until it is done; the
	// customers' requests run all along, each counted with the purge or
	// without it by when it ran (one that straddled a switch is left out),
	// so both sides see the same machine, the same trail and the same
	// caches.
	var state purgeState
	purged, batches, purgeTime := int64(0), []time.Duration(nil), time.Duration(0)
	purging := make(chan struct{})
	state.set(false)
	go func() {
		defer close(purging)
		at := time.Now()
		for more := true; more; {
			state.set(true)
			on := time.Now()
			for more && time.Since(on) < 2*time.Second {
				t := time.Now()
				res, err := store.PurgeAuditTrail(ctx, db, store.PurgeInput{OrgID: org.ID, At: at})
				if err != nil {
					b.Error(err)
					return
				}
				batches = append(batches, time.Since(t))
				purged += int64(res.Deleted)
				if more = res.More; more {
					// Paced as the Schedule's runs are.
					time.Sleep(activities.PurgeRest(activities.RetentionInput{RestFactor: workflows.DefaultRestFactor}, time.Since(t)))
				}
			}
			purgeTime += time.Since(on)
			state.set(false)
			if more {
				time.Sleep(2 * time.Second)
			}
		}
	}()
	fig := measureCustomers(b, h, c, org.ID, deep, &state, purging)
	b.StopTimer()
	before, during := fig[0], fig[1]

	rep, err := store.VerifyChain(ctx, db, org.ID)
	if err != nil || rep.Problem != nil {
		b.Fatalf("the purged chain: %+v %v", rep, err)
	}
	var left int
	if err := db.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ?", org.ID).Scan(ctx, &left); err != nil {
		b.Fatal(err)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.Logf("purged %d events in %d batches in %v of purging: %.0f events/s; a batch p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d events left, the chain verifies from seq %d (%d checked)",
		purged, len(batches), purgeTime.Round(time.Millisecond), float64(purged)/purgeTime.Seconds(),
		ms(percentile(batches, 50)), ms(percentile(batches, 99)), ms(percentile(batches, 100)), left, rep.Checkpoint.Seq, rep.Checked)
	for _, m := range []struct {
		what          string
		before, after float64
		unit          string
	}{
		{"first page p50", ms(before.first50), ms(during.first50), "ms"},
		{"first page p99", ms(before.first99), ms(during.first99), "ms"},
		{"deep page p50", ms(before.deep50), ms(during.deep50), "ms"},
		{"deep page p99", ms(before.deep99), ms(during.deep99), "ms"},
		{"export", before.exportRate, during.exportRate, "events/s"},
		{"event write p50", ms(before.write50), ms(during.write50), "ms"},
		{"event write max", ms(before.writeMax), ms(during.writeMax), "ms"},
	} {
		b.Logf("%-16s without the purge %9.2f %-8s during it %9.2f %-8s (%.2f×)", m.what, m.before, m.unit, m.after, m.unit, m.after/m.before)
	}
	b.Logf("samples without / during the purge: %d / %d first pages, %d / %d deep pages, %d / %d events exported, %d / %d writes",
		before.firsts, during.firsts, before.deeps, during.deeps, before.exported, during.exported, before.writes, during.writes)
	b.ReportMetric(float64(purged)/purgeTime.Seconds(), "purged-events/s")
	b.ReportMetric(float64(during.first50)/float64(before.first50), "first-p50-ratio")
	b.ReportMetric(float64(during.deep50)/float64(before.deep50), "deep-p50-ratio")
	b.ReportMetric(before.exportRate/during.exportRate, "export-slowdown")
}

// purgeState says whether the purge is running, and how long it ran and
// rested so far.
type purgeState struct {
	mu      sync.Mutex
	on      bool
	since   time.Time
	spent   [2]time.Duration // resting, running
	changes int
}

func (s *purgeState) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.since.IsZero() {
		s.spent[index(s.on)] += now.Sub(s.since)
	}
	s.on, s.since = on, now
	s.changes++
}

// now is whether the purge runs, and a count that moves at each switch.
func (s *purgeState) now() (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.on, s.changes
}

func index(on bool) int {
	if on {
		return 1
	}
	return 0
}

// customerFigures are what customers saw without the purge, or beside it.
type customerFigures struct {
	first50, first99, deep50, deep99 time.Duration
	exportRate                       float64
	write50, writeMax                time.Duration
	firsts, deeps, exported, writes  int
}

// measureCustomers runs, until done is closed, three customers at once:
// pages (the first and the one at deep, in turn), whole exports one after
// the other, and one event write of the organisation every 20 ms; each
// request is counted on the side of the purge it ran beside (a request
// that saw the purge start or stop is left out), each exported line on
// the side of the moment it arrived. It returns the figures without the
// purge and beside it.
func measureCustomers(b *testing.B, h *harness.Harness, c eventsClient, orgID, deep string, state *purgeState, done <-chan struct{}) [2]customerFigures {
	b.Helper()
	var (
		mu                    sync.Mutex
		firsts, deeps, writes [2][]time.Duration
		exported              [2]int
		wg                    sync.WaitGroup
	)
	timed := func(into *[2][]time.Duration, f func()) {
		on, n := state.now()
		t := time.Now()
		f()
		el := time.Since(t)
		if on2, n2 := state.now(); on2 == on && n2 == n {
			mu.Lock()
			into[index(on)] = append(into[index(on)], el)
			mu.Unlock()
		}
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := 0; !closed(done); i++ {
			if i%2 == 0 {
				timed(&firsts, func() { c.get(b, "", "") })
			} else {
				timed(&deeps, func() { c.get(b, "", deep) })
			}
		}
	}()
	go func() {
		defer wg.Done()
		for !closed(done) {
			exportTrail(b, c.base, c.token, func([]byte) {
				if closed(done) {
					return // past the measurement's end
				}
				on, _ := state.now()
				mu.Lock()
				exported[index(on)]++
				mu.Unlock()
			})
		}
	}()
	go func() {
		defer wg.Done()
		every(20*time.Millisecond, done, func() {
			timed(&writes, func() {
				ev := &store.AuditEvent{OrgID: orgID, Action: "member.updated", ActorType: "system", ActorID: "bench", Data: json.RawMessage(`{"after":{"n":1}}`)}
				if _, err := store.InsertEvent(context.Background(), h.DB, ev); err != nil {
					b.Error(err)
				}
			})
		})
	}()
	<-done
	state.set(false)
	wg.Wait()
	var out [2]customerFigures
	for i := range out {
		out[i] = customerFigures{first50: percentile(firsts[i], 50), first99: percentile(firsts[i], 99), deep50: percentile(deeps[i], 50), deep99: percentile(deeps[i], 99),
			exportRate: float64(exported[i]) / state.spent[i].Seconds(), write50: percentile(writes[i], 50), writeMax: percentile(writes[i], 100),
			firsts: len(firsts[i]), deeps: len(deeps[i]), exported: exported[i], writes: len(writes[i])}
	}
	return out
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
