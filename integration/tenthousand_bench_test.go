package integration

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/harness"
)

// BenchmarkTenThousandTenants fills one `controlplane dev` (on a database of
// the harness's Postgres) with CP_BENCH_TENANTS tenants (default 10,000)
// and measures, at the start (130 tenants, after a first round that warms
// the process) and again when it is full: a creation's answer and its time
// to active, the first page of tenants and a deep one (the page after 90%
// of them), a suspension's answer and its time to suspended, and the
// process's RSS. Its log has the table docs/performance.md shows.
//
//	go test -run '^$' -bench TenThousandTenants -benchtime 1x -timeout 60m ./integration
func BenchmarkTenThousandTenants(b *testing.B) {
	n := 10_000
	if v := os.Getenv("CP_BENCH_TENANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			b.Fatalf("CP_BENCH_TENANTS=%q: a number of 100 or more", v)
		}
	}
	h := harness.Get(b)
	dbURL, db := h.NewDatabase(b, false)
	env := append(devEnv(b), "CP_DATABASE_URL="+dbURL)
	p := startDev(b, env)
	if _, err := db.ExecContext(b.Context(), `INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute)
		VALUES ('unmetered', 'Unmetered', 1000000, 10, 1000000000) ON CONFLICT DO NOTHING`); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(b.Context(), "UPDATE organizations SET plan_id = 'unmetered'"); err != nil {
		b.Fatal(err)
	}
	c := signInDev(b, p.api)
	tenants := "/organizations/" + c.org + "/tenants"
	seq := 0
	name := func() string { seq++; return fmt.Sprintf("t%06d", seq) }

	type tenant struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	// wait polls the tenant until it is in state.
	wait := func(id, state string) {
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(5 * time.Millisecond) {
			var t tenant
			if code := c.call("GET", tenants+"/"+id, nil, &t); code != 200 {
				b.Fatalf("get %s: %d", id, code)
			}
			if t.State == state {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("tenant %s is %s after two minutes, want %s", id, t.State, state)
			}
		}
	}
	timed := func(f func()) time.Duration { t0 := time.Now(); f(); return time.Since(t0) }
	p50 := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

	type figures struct {
		tenants                                    int
		create, toActive, first, deep, suspend, to time.Duration
		rss                                        float64
	}
	// measure takes each figure as the median of 15 samples, one at a
	// time, with nothing else running.
	measure := func(count int) figures {
		f := figures{tenants: count}
		var create, active, first, deep, suspend, suspended []time.Duration
		var ids []string
		for range 15 {
			var t struct {
				Tenant tenant `json:"tenant"`
			}
			start := time.Now()
			if code := c.call("POST", tenants, map[string]string{"name": name(), "environment": "prod"}, &t); code != 202 {
				b.Fatalf("create: %d", code)
			}
			create = append(create, time.Since(start))
			wait(t.Tenant.ID, "active")
			active = append(active, time.Since(start))
			ids = append(ids, t.Tenant.ID)
		}
		// The cursor of the page after 90% of the tenants, by walking.
		cursor := ""
		for walked := 0; walked < count*9/10; {
			items, next := c.page(tenants + "?limit=200&cursor=" + url.QueryEscape(cursor))
			if next == "" {
				break
			}
			walked, cursor = walked+items, next
		}
		for range 15 {
			first = append(first, timed(func() {
				if code := c.call("GET", tenants+"?limit=50", nil, nil); code != 200 {
					b.Fatalf("first page: %d", code)
				}
			}))
			deep = append(deep, timed(func() {
				if code := c.call("GET", tenants+"?limit=50&cursor="+url.QueryEscape(cursor), nil, nil); code != 200 {
					b.Fatalf("deep page: %d", code)
				}
			}))
		}
		for _, id := range ids {
			start := time.Now()
			if code := c.call("POST", tenants+"/"+id+"/suspend", nil, nil); code != 202 {
				b.Fatalf("suspend: %d", code)
			}
			suspend = append(suspend, time.Since(start))
			wait(id, "suspended")
			suspended = append(suspended, time.Since(start))
		}
		f.create, f.toActive, f.first, f.deep, f.suspend, f.to = p50(create), p50(active), p50(first), p50(deep), p50(suspend), p50(suspended)
		f.rss = rssMiB(p.cmd.Process.Pid)
		return f
	}
	// fill creates tenants up to count with eight clients and waits until
	// none is provisioning.
	fill := func(count int) {
		var wg sync.WaitGroup
		next := make(chan string)
		for range 8 {
			wg.Go(func() {
				for n := range next {
					for attempt := 0; ; attempt++ {
						code := c.call("POST", tenants, map[string]string{"name": n, "environment": "prod"}, nil)
						if code == 202 {
							break
						}
						if attempt == 5 {
							b.Errorf("create %s: %d", n, code)
							break
						}
						time.Sleep(time.Second)
					}
				}
			})
		}
		for range count {
			next <- name()
		}
		close(next)
		wg.Wait()
		for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Second) {
			var left int
			if err := db.NewRaw("SELECT count(*) FROM tenants WHERE state = 'provisioning'").Scan(b.Context(), &left); err != nil {
				b.Fatal(err)
			}
			if left == 0 {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d tenants still provisioning after ten minutes", left)
			}
		}
	}

	b.ResetTimer()
	// A just-started process is slower than one that has served a while
	// (connection pools, Temporal's caches and task queues, Postgres's
	// plans and buffers), whatever the number of tenants: a first round,
	// not counted, warms them, and a hundred tenants more make the pages
	// measured at the start as full (50) as at the end. The start is
	// measured at rest, as the full installation is.
	measure(0)
	fill(100)
	b.Logf("at rest after %s", atRest(b))
	at := measure(130)
	started := time.Now()
	fill(n - 145)
	b.Logf("%d tenants created in %s", n-145, time.Since(started).Round(time.Second))
	// What the fill left behind runs out first (the audit chain's sweep,
	// the searches' writes, Postgres's autovacuum): the figures are those
	// of an installation of that size at rest, as the start's are.
	b.Logf("at rest after %s", atRest(b))
	full := measure(n)
	b.StopTimer()
	// Printed, not logged: a benchmark's log is cut after a few lines.
	fmt.Printf("\n| | start (130 tenants) | %d tenants | ratio |\n|---|---|---|---|\n"+
		"| create (answer), p50 | %s | %s | %.2f× |\n| create → active, p50 | %s | %s | %.2f× |\n"+
		"| first page (50), p50 | %s | %s | %.2f× |\n| deep page (50, after 90%%), p50 | %s | %s | %.2f× |\n"+
		"| suspend (answer), p50 | %s | %s | %.2f× |\n| suspend → suspended, p50 | %s | %s | %.2f× |\n| RSS | %.0f MiB | %.0f MiB | %.2f× |",
		n, ms(at.create), ms(full.create), ratio(full.create, at.create), ms(at.toActive), ms(full.toActive), ratio(full.toActive, at.toActive),
		ms(at.first), ms(full.first), ratio(full.first, at.first), ms(at.deep), ms(full.deep), ratio(full.deep, at.deep),
		ms(at.suspend), ms(full.suspend), ratio(full.suspend, at.suspend), ms(at.to), ms(full.to), ratio(full.to, at.to),
		at.rss, full.rss, full.rss/at.rss)
	fmt.Println()
	b.ReportMetric(ratio(full.create, at.create), "create-x")
	b.ReportMetric(ratio(full.toActive, at.toActive), "active-x")
	b.ReportMetric(ratio(full.first, at.first), "first-page-x")
	b.ReportMetric(at.rss, "rss-empty-MiB")
	b.ReportMetric(full.rss, "rss-MiB")
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// atRest waits a minute, then until the machine has been at least 90 %
// idle for five seconds (at most ten minutes more): what a phase of a
// benchmark leaves running (Postgres's autovacuum, Temporal's queues, the
// audit chain's sweep) is over before the next is measured. It returns
// how long it waited.
func atRest(b *testing.B) time.Duration {
	start := time.Now()
	time.Sleep(time.Minute)
	for deadline := time.Now().Add(10 * time.Minute); time.Now().Before(deadline); {
		idle0, total0 := machineTicks(b)
		time.Sleep(5 * time.Second)
		idle1, total1 := machineTicks(b)
		if float64(idle1-idle0) >= 0.9*float64(total1-total0) {
			break
		}
	}
	return time.Since(start).Round(time.Second)
}

// machineTicks are the machine's idle and total processor ticks so far
// (/proc/stat's first line).
func machineTicks(b *testing.B) (idle, total uint64) {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseUint(f, 10, 64)
		total += n
		if i == 3 || i == 4 { // idle and iowait
			idle += n
		}
	}
	return idle, total
}
