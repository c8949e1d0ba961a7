package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/temporalserver"
	"github.com/intelliauth/controlplane/workflows"
)

// rawLocalWorkflow is rawWorkflow whose update runs its activity as a local
// activity, as the tenant workflow runs the writes a request waits for.
func rawLocalWorkflow(ctx workflow.Context) error {
	return rawSaga(ctx, func(ctx workflow.Context) error {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
		return workflow.ExecuteLocalActivity(lctx, rawNoop).Get(ctx, nil)
	})
}

// Sizes of the burst benchmark: sequential calls per kind, then a burst.
const (
	burstSequential = 100
	burstTotal      = 200
	burstInflight   = 50
	// burstSpares is the spare schemas of dev-spares: as many as the
	// tenants it creates (warm-up, sequential, burst).
	burstSpares = 10 + burstSequential + burstTotal
	// burstBound is the API's bound on a creation (workflows.DefaultBound):
	// a call slower than it would have been answered 503.
	burstBound = workflows.DefaultBound
)

// burstFigures are one kind of call's figures: sequential latency and a
// burst's rate, latency and calls over the bound (or answered 503).
type burstFigures struct {
	seqP50, seqP99     time.Duration
	rate               float64
	burstP50, burstP99 time.Duration
	over               int
	// cpu is the processor time the burst took per call, in the processes
	// that serve it: less sensitive, though not immune, to what else the
	// machine runs than the rate.
	cpu time.Duration
	// machine is the whole machine's processor time per call over the
	// same span (Postgres included, for dev): on two cores shared by
	// everything, what the rate is made of.
	machine time.Duration
}

func (f burstFigures) row(name string) string {
	return fmt.Sprintf("| %-46s | %8v | %8v | %6.1f/s | %8v | %8v | %4d | %6v | %7v |", name,
		f.seqP50.Round(100*time.Microsecond), f.seqP99.Round(100*time.Microsecond), f.rate,
		f.burstP50.Round(time.Millisecond), f.burstP99.Round(time.Millisecond), f.over, f.cpu.Round(100*time.Microsecond), f.machine.Round(100*time.Microsecond))
}

// cpuTime is the processor time, user and system, the processes have used
// so far (zero where /proc cannot tell).
func cpuTime(pids ...int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The fields after the command name, which is in parentheses and
		// may hold spaces; utime and stime are the 14th and 15th fields,
		// in clock ticks of 1/100 s.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		for _, v := range f[11:13] {
			n, _ := strconv.ParseInt(v, 10, 64)
			total += time.Duration(n) * 10 * time.Millisecond
		}
	}
	return total
}

// machineCPU is the processor time of the whole machine (every process,
// user and system) since boot, from /proc/stat.
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var total time.Duration
	// user nice system (idle iowait skipped) irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		total += time.Duration(n) * 10 * time.Millisecond
	}
	return total
}

// burst runs total calls of one with inflight at once and returns each
// call's latency and the rate of calls answered.
func burst(total, inflight int, one func(i int) (time.Duration, bool)) (lat []time.Duration, rate float64) {
	lat = make([]time.Duration, total)
	ok := make([]bool, total)
	sem := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range total {
		sem <- struct{}{}
		wg.Go(func() { defer func() { <-sem }(); lat[i], ok[i] = one(i) })
	}
	wg.Wait()
	n := 0
	for _, o := range ok {
		if o {
			n++
		}
	}
	return lat, float64(n) / time.Since(t0).Seconds()
}

// rawBurst measures Update-With-Start of rawLocalWorkflow and rawWorkflow
// against the Temporal frontend at addr, with a worker of this process on
// its own task queue; pids are the processes whose processor time the calls
// cost (this one and the server's).
func rawBurst(b *testing.B, addr string, pids ...int) (local, regular burstFigures) {
	ctx := context.Background()
	var tc client.Client
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		if tc, err = client.Dial(client.Options{HostPort: addr, Namespace: harness.Namespace, Logger: logging.Temporal(harness.Get(b).Log)}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("dial temporal at %s: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer tc.Close()
	tq := "burst-" + uniq()
	wk := worker.New(tc, tq, worker.Options{})
	wk.RegisterWorkflow(rawWorkflow)
	wk.RegisterWorkflow(rawLocalWorkflow)
	wk.RegisterActivity(rawNoop)
	if err := wk.Start(); err != nil {
		b.Fatal(err)
	}
	defer wk.Stop()

	run := uniq()
	call := func(wf any, id string) (time.Duration, error) {
		t0 := time.Now()
		start := tc.NewWithStartWorkflowOperation(client.StartWorkflowOptions{ID: id, TaskQueue: tq,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING}, wf)
		hd, err := tc.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start,
			UpdateOptions: client.UpdateWorkflowOptions{UpdateID: "go", UpdateName: "go", WaitForStage: client.WorkflowUpdateStageCompleted}})
		if err == nil {
			err = hd.Get(ctx, nil)
		}
		return time.Since(t0), err
	}
	must := func(d time.Duration, err error) time.Duration {
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	// Every workflow a phase started is finished before the next phase,
	// so no phase pays for another's trailing activities.
	settle := func(prefix string, n int) {
		for i := range n {
			if err := tc.GetWorkflow(ctx, fmt.Sprintf("%s-%d", prefix, i), "").Get(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	// The first calls start the task queue and the worker's caches.
	for i := range 10 {
		must(call(rawLocalWorkflow, fmt.Sprintf("warm-%s-%d", run, i)))
		must(call(rawWorkflow, fmt.Sprintf("warmr-%s-%d", run, i)))
	}
	settle("warm-"+run, 10)
	settle("warmr-"+run, 10)

	var seqL, seqR []time.Duration
	for i := range burstSequential {
		seqL = append(seqL, must(call(rawLocalWorkflow, fmt.Sprintf("seql-%s-%d", run, i))))
		seqR = append(seqR, must(call(rawWorkflow, fmt.Sprintf("seqr-%s-%d", run, i))))
	}
	settle("seql-"+run, burstSequential)
	settle("seqr-"+run, burstSequential)
	figures := func(seq []time.Duration, wf any, prefix string) burstFigures {
		cpu0, m0 := cpuTime(pids...), machineCPU()
		lat, rate := burst(burstTotal, burstInflight, func(i int) (time.Duration, bool) {
			d, err := call(wf, fmt.Sprintf("%s-%d", prefix, i))
			if err != nil {
				b.Error(err)
			}
			return d, err == nil
		})
		settle(prefix, burstTotal)
		f := summarize(seq, lat, rate)
		f.cpu = (cpuTime(pids...) - cpu0) / burstTotal
		f.machine = (machineCPU() - m0) / burstTotal
		return f
	}
	local = figures(seqL, rawLocalWorkflow, "burstl-"+run)
	regular = figures(seqR, rawWorkflow, "burstr-"+run)
	return local, regular
}

func summarize(seq, lat []time.Duration, rate float64) burstFigures {
	f := burstFigures{seqP50: percentile(seq, 50), seqP99: percentile(seq, 99), rate: rate,
		burstP50: percentile(lat, 50), burstP99: percentile(lat, 99)}
	for _, d := range lat {
		if d > burstBound {
			f.over++
		}
	}
	return f
}

// devCreator creates tenants through a dev process's API as its bootstrap
// owner.
type devCreator struct {
	http        *http.Client
	base, token string
}

func (d devCreator) call(method, path, key string, body any) (int, map[string]any, error) {
	return sendJSON(d.http, method, d.base+path, d.token, key, body)
}

// devFigures are the creations' figures on a dev process.
type devFigures struct {
	seqP50, seqP99        time.Duration
	rate                  float64
	burstP50, burstP99    time.Duration
	accepted, unavailable int
	// provisioned is the rate of the burst's tenants reaching active, and
	// cpu the dev process's processor time per tenant until then.
	provisioned float64
	// postgres is the processor time of the database's Postgres processes
	// per tenant, over the same span (part of machine).
	cpu, machine, postgres time.Duration
}

// devBurst measures POST …/tenants on a real `controlplane dev` whose
// Postgres is a fresh database of the local server and whose organisation
// is on a plan with room for every tenant.
func devBurst(b *testing.B, spares int) devFigures {
	h := harness.Get(b)
	url, db := h.NewDatabase(b, false)
	env := append(devEnv(b), "CP_DATABASE_URL="+url, fmt.Sprintf("CP_SPARE_SCHEMAS=%d", spares))
	p := startDev(b, env)
	ctx := context.Background()
	// atLeast waits until query counts n rows, for at most limit.
	atLeast := func(n int, what string, limit time.Duration, query string, args ...any) {
		for deadline := time.Now().Add(limit); ; time.Sleep(100 * time.Millisecond) {
			var got int
			if err := db.NewRaw(query, args...).Scan(ctx, &got); err != nil {
				b.Fatal(err)
			}
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d %s after %v", got, n, what, limit)
			}
		}
	}
	// The spare schemas are made once dev is up: the burst starts with
	// them all ready, as after a quiet time.
	if spares > 0 {
		atLeast(spares, "spare schemas", 2*time.Minute, "SELECT count(*) FROM dataplane.spare_schemas")
	}
	for _, q := range []string{
		"INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES ('bench', 'Bench', 100000, 100, 100000) ON CONFLICT DO NOTHING",
		"UPDATE organizations SET plan_id = 'bench'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	d := devCreator{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * burstInflight}}, base: "http://" + p.api + "/api/v1"}
	code, out, err := d.call("POST", "/auth/sign-in", "", map[string]any{"email": "owner@acme.test", "password": "intelliauth-dev-password"})
	if err != nil || code != 200 {
		b.Fatalf("sign-in: %d %v %v", code, out, err)
	}
	d.token = out["data"].(map[string]any)["token"].(string)
	_, orgs, _ := d.call("GET", "/organizations", "", nil)
	org := orgs["data"].([]any)[0].(map[string]any)["id"].(string)

	run := uniq()
	create := func(name string) (time.Duration, int) {
		t0 := time.Now()
		code, out, err := d.call("POST", "/organizations/"+org+"/tenants", "k-"+name, map[string]any{"name": name, "environment": "prod"})
		el := time.Since(t0)
		if err != nil {
			b.Errorf("create %s: %v", name, err)
		} else if code != 202 && code != 503 {
			b.Errorf("create %s: %d %v", name, code, out)
		}
		return el, code
	}
	for i := range 10 {
		create(fmt.Sprintf("w%s%d", run[:6], i))
	}
	checkpoint(b)
	var seq []time.Duration
	for i := range burstSequential {
		el, code := create(fmt.Sprintf("s%s%d", run[:6], i))
		if code != 202 {
			b.Fatalf("sequential create %d: %d", i, code)
		}
		seq = append(seq, el)
	}
	f := devFigures{seqP50: percentile(seq, 50), seqP99: percentile(seq, 99)}
	// active waits until n tenants whose names start with prefix are
	// provisioned.
	active := func(prefix string, n int) {
		atLeast(n, "tenants "+prefix+"… active", 5*time.Minute, "SELECT count(*) FROM tenants WHERE name LIKE ? AND state = 'active'", prefix+"%")
	}
	active("w"+run[:6], 10)
	active("s"+run[:6], burstSequential)
	checkpoint(b)
	var mu sync.Mutex
	t0, cpu0, m0, pg0 := time.Now(), cpuTime(p.cmd.Process.Pid), machineCPU(), pgCPU(b, db)
	lat, rate := burst(burstTotal, burstInflight, func(i int) (time.Duration, bool) {
		el, code := create(fmt.Sprintf("b%s%d", run[:6], i))
		mu.Lock()
		defer mu.Unlock()
		if code == 202 {
			f.accepted++
		} else {
			f.unavailable++
		}
		return el, code == 202
	})
	f.rate, f.burstP50, f.burstP99 = rate, percentile(lat, 50), percentile(lat, 99)
	active("b"+run[:6], f.accepted)
	f.provisioned = float64(f.accepted) / time.Since(t0).Seconds()
	f.cpu = (cpuTime(p.cmd.Process.Pid) - cpu0) / time.Duration(max(f.accepted, 1))
	f.machine = (machineCPU() - m0) / time.Duration(max(f.accepted, 1))
	f.postgres = pgCPUSince(b, db, pg0) / time.Duration(max(f.accepted, 1))
	return f
}

// BenchmarkBurst measures, side by side, what a burst of creations costs
// Temporal and the control plane on two cores:
//
//   - a raw Update-With-Start whose update runs one no-op activity, local
//     or regular (then three regular no-op activities, as a creation's
//     saga continues): 100 sequential calls of each, then a burst of 200
//     with 50 in flight (rate of answers, latency, calls over the API's
//     5 s bound), against (embedded) the server of internal/temporalserver
//     on a SQLite file, started as `controlplane dev` starts it, in this
//     process with the worker; and against (cli) `temporal server
//     start-dev` on a SQLite file in WAL mode with synchronous=NORMAL, as
//     its own process (skipped when the CLI is not installed);
//   - (dev) POST …/tenants on the real `controlplane dev` (its Postgres a
//     fresh database of the harness's server, its organisation on a plan
//     with room for every tenant), each with its own Idempotency-Key: 100
//     sequential, then 200 with 50 in flight, counting the answers 503,
//     then waiting for the burst's tenants to be active; and (dev-spares)
//     the same with a spare schema ready for each of its tenants
//     (CP_SPARE_SCHEMAS), made before the first call.
//
// Each part starts from a checkpoint of the harness's Postgres, so that it
// does not pay for flushing what an earlier part wrote.
//
// The table it logs has, per kind of call, the sequential p50 and p99, the
// burst's rate, p50 and p99, the calls over the bound (or answered 503)
// and the processor time per call.
//
// Run it with
//
//	go test -run '^$' -bench Burst -benchtime 1x -timeout 30m ./integration
//
// (-bench 'Burst/embedded' and so on runs one part).
func BenchmarkBurst(b *testing.B) {
	var embL, embR, cliL, cliR *burstFigures
	var dev, devSpares *devFigures
	b.Run("embedded", func(b *testing.B) {
		srv, err := temporalserver.Start(temporalserver.Options{
			FrontendAddr:     "127.0.0.1:0",
			DatabaseFile:     filepath.Join(b.TempDir(), "temporal.db"),
			Namespace:        harness.Namespace,
			SearchAttributes: workflows.SearchAttributes(),
			// At dev's default level; its lines are not kept.
			Log: logging.New(io.Discard, "info", "json"),
		})
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Stop()
		checkpoint(b)
		l, r := rawBurst(b, srv.FrontendAddr(), os.Getpid())
		embL, embR = &l, &r
		reportBurst(b, l, "local")
		reportBurst(b, r, "regular")
	})
	b.Run("cli", func(b *testing.B) {
		cli := temporalCLI(b)
		if v, err := exec.Command(cli, "--version").Output(); err == nil {
			b.Logf("%s", bytes.TrimSpace(v))
		}
		ports := freeAddrs(b, 2)
		addr := ports[0]
		var out syncBuffer
		cmd := exec.Command(cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", port(addr),
			"--metrics-port", port(ports[1]), "--db-filename", filepath.Join(b.TempDir(), "temporal.db"),
			"--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=NORMAL")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			_ = cmd.Process.Kill()
			if err := cmd.Wait(); err != nil && !errors.As(err, new(*exec.ExitError)) {
				b.Logf("temporal server start-dev: %v\n%s", err, out.String())
			}
		}()
		checkpoint(b)
		l, r := rawBurst(b, addr, os.Getpid(), cmd.Process.Pid)
		cliL, cliR = &l, &r
		reportBurst(b, l, "local")
		reportBurst(b, r, "regular")
	})
	for _, d := range []struct {
		name   string
		spares int
		f      **devFigures
	}{{"dev", 0, &dev}, {"dev-spares", burstSpares, &devSpares}} {
		b.Run(d.name, func(b *testing.B) {
			f := devBurst(b, d.spares)
			*d.f = &f
			b.ReportMetric(ms(f.seqP50), "seq-p50-ms")
			b.ReportMetric(f.rate, "burst-creates/s")
			b.ReportMetric(ms(f.burstP50), "burst-p50-ms")
			b.ReportMetric(float64(f.unavailable), "burst-503s")
			b.ReportMetric(f.provisioned, "active/s")
			b.ReportMetric(ms(f.cpu), "cpu-ms/tenant")
			b.ReportMetric(ms(f.machine), "machine-ms/tenant")
			b.ReportMetric(ms(f.postgres), "postgres-ms/tenant")
		})
	}

	b.Logf("%d sequential calls, then %d with %d in flight; over: calls slower than %v (raw) or answered 503 (POST /tenants); cpu: processor time per call of the processes serving the burst, to the workflows' end; machine: the whole machine's", burstSequential, burstTotal, burstInflight, burstBound)
	b.Logf("| %-46s | seq p50  | seq p99  | burst    | p50      | p99      | over | cpu    | machine |", "")
	b.Logf("|%s|", strings.Repeat("-", 126))
	for _, r := range []struct {
		name string
		f    *burstFigures
	}{
		{"embedded (SQLite file): raw, local activity", embL},
		{"embedded (SQLite file): raw, regular activity", embR},
		{"temporal server start-dev: raw, local", cliL},
		{"temporal server start-dev: raw, regular", cliR},
	} {
		if r.f != nil {
			b.Logf("%s", r.f.row(r.name))
		}
	}
	for _, d := range []struct {
		name string
		f    *devFigures
	}{{"controlplane dev", dev}, {fmt.Sprintf("dev, %d spare schemas", burstSpares), devSpares}} {
		if d.f == nil {
			continue
		}
		f := d.f
		b.Logf("%s", burstFigures{seqP50: f.seqP50, seqP99: f.seqP99, rate: f.rate, burstP50: f.burstP50,
			burstP99: f.burstP99, over: f.unavailable, cpu: f.cpu, machine: f.machine}.row(d.name+": POST …/tenants"))
		b.Logf("%s: the burst's %d tenants active at %.1f/s; Postgres's processor time %v a tenant", d.name, f.accepted, f.provisioned, f.postgres.Round(100*time.Microsecond))
		if embL != nil {
			b.Logf("%s: POST …/tenants sequential p50 is %.2f× the raw local p50 on the embedded server, the burst's rate %.2f× raw local's",
				d.name, float64(f.seqP50)/float64(embL.seqP50), f.rate/embL.rate)
		}
	}
	if embL != nil && cliL != nil {
		b.Logf("embedded ÷ start-dev burst rate: local %.2f, regular %.2f", embL.rate/cliL.rate, embR.rate/cliR.rate)
	}
}

func reportBurst(b *testing.B, f burstFigures, kind string) {
	b.ReportMetric(ms(f.seqP50), kind+"-seq-p50-ms")
	b.ReportMetric(f.rate, kind+"-burst/s")
	b.ReportMetric(float64(f.over), kind+"-over-5s")
	b.ReportMetric(ms(f.cpu), kind+"-cpu-ms/call")
	b.ReportMetric(ms(f.machine), kind+"-machine-ms/call")
}

// checkpoint writes out the harness's Postgres before a measurement, so
// that the files an earlier part created (tenants' schemas, spares) are
// not flushed in the middle of this one.
func checkpoint(b *testing.B) {
	if _, err := harness.Get(b).DB.ExecContext(context.Background(), "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
