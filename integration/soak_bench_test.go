package integration

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/loadgen"
)

// BenchmarkSoak runs the production shape (two api and two worker
// processes, temporal start-dev, Postgres) under steady mixed traffic for
// CP_SOAK_DURATION (default 10m), samples every process's RSS and
// goroutines twenty times, and prints them with the traffic's table. It fails
// when an answer was refused for anything but a designed 429, or when a
// process grew between the end of the warm-up (a fifth of the run) and the
// end by more than half. The workers keep at most 50 tenant workflows in
// memory each (CP_WORKFLOW_CACHE_SIZE=50, two tenants a second), so the
// run's tenants outgrow the caches within a minute and what follows shows
// whether memory stays bounded.
//
//	CP_SOAK_DURATION=10m go test -run '^$' -bench Soak -benchtime 1x -timeout 30m ./integration
func BenchmarkSoak(b *testing.B) {
	d := 10 * time.Minute
	if v := os.Getenv("CP_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("CP_SOAK_DURATION: %v", err)
		}
	}
	s := startShape(b, "CP_WORKFLOW_CACHE_SIZE=50")
	type proc struct {
		name, metrics string
		pid           int
	}
	procs := []proc{{"temporal start-dev", "", s.temporal.cmd.Process.Pid}}
	for i := range 2 {
		procs = append(procs, proc{fmt.Sprintf("api %d", i), s.apiMetrics[i], s.apis[i].cmd.Process.Pid},
			proc{fmt.Sprintf("worker %d", i), s.workerMetrics[i], s.workers[i].cmd.Process.Pid})
	}
	type sample struct{ rss, goroutines []float64 }
	take := func() sample {
		var out sample
		for _, p := range procs {
			out.rss = append(out.rss, rssMiB(p.pid))
			out.goroutines = append(out.goroutines, goroutines(p.metrics))
		}
		return out
	}

	done, wait := s.traffic(loadgen.Options{Duration: d, Concurrency: 16, Rate: 20, Retries: 3})
	b.ResetTimer()
	var samples []sample
	var at []time.Duration
	start := time.Now()
	tick := time.NewTicker(d / 20)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-tick.C:
			samples, at = append(samples, take()), append(at, time.Since(start))
		case <-done:
			samples, at = append(samples, take()), append(at, time.Since(start))
			running = false
		}
	}
	rep := wait()
	var table strings.Builder
	rep.WriteTable(&table)
	// Printed, not logged: a benchmark's log is cut to a few lines.
	fmt.Printf("traffic over %v:\n%s", d, table.String())

	var lines strings.Builder
	fmt.Fprintf(&lines, "%-8s", "at")
	for _, p := range procs {
		fmt.Fprintf(&lines, " %22s", p.name)
	}
	lines.WriteString("\n")
	for i, smp := range samples {
		fmt.Fprintf(&lines, "%-8s", at[i].Round(time.Second))
		for j := range procs {
			fmt.Fprintf(&lines, " %10.0f MiB %5.0f g", smp.rss[j], smp.goroutines[j])
		}
		lines.WriteString("\n")
	}
	fmt.Printf("RSS and goroutines (g; 0 where the process exports none):\n%s", lines.String())

	for _, st := range rep.Stats() {
		for code, n := range st.Errors {
			if code != "RATE_LIMITED" && code != "CONFLICT" {
				b.Errorf("%s: %d answers %s", st.Route, n, code)
			}
		}
	}
	warm := samples[len(samples)/5]
	end := samples[len(samples)-1]
	for j, p := range procs {
		if end.rss[j] > 1.5*warm.rss[j] {
			b.Errorf("%s: RSS grew from %.0f MiB after the warm-up to %.0f MiB", p.name, warm.rss[j], end.rss[j])
		}
		if warm.goroutines[j] > 0 && end.goroutines[j] > 1.5*warm.goroutines[j]+20 {
			b.Errorf("%s: goroutines grew from %.0f after the warm-up to %.0f", p.name, warm.goroutines[j], end.goroutines[j])
		}
	}
	b.ReportMetric(float64(len(rep.Results))/d.Seconds(), "req/s")
}

// rssMiB is the resident set size of a process, in MiB (0 when it cannot
// be read).
func rssMiB(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// goroutines reads go_goroutines from a metrics listener (0 when there is
// none).
func goroutines(addr string) float64 {
	if addr == "" {
		return 0
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(os.Stderr, "metrics of %s: %d %.300s\n", addr, resp.StatusCode, b)
		return 0
	}
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return n
		}
	}
	return 0
}
