package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/loadgen"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

// shape is the control plane as production runs it: Postgres (a cluster
// of the test's own, so a drill can restart it), Temporal (the real
// `temporal server start-dev` with a database file, as its own process, so
// a drill can restart it with its state), and two `controlplane api` and
// two `controlplane worker` processes sharing nothing but those two.
type shape struct {
	// root owns the processes; t is the drill under way, which checks.
	root, t      testing.TB
	pg           *pgcluster.Cluster
	db           *bun.DB // the test's own connection, for its checks
	dbURL        string
	cli          string
	temporalArgs []string
	temporal     *process
	env          []string
	apiAddrs     [2]string
	apis         [2]*process
	workers      [2]*process
	// The processes' metrics listeners, by index (a process started again
	// takes its predecessor's).
	apiMetrics, workerMetrics [2]string
}

// startShape starts the production shape, with more environment for the
// control plane's processes, and waits until both APIs are ready. The
// bootstrap organisation is on a plan whose quotas no drill reaches.
func startShape(t testing.TB, extraEnv ...string) *shape {
	t.Helper()
	ctx := context.Background()
	s := &shape{root: t, t: t, cli: temporalCLI(t)}
	var err error
	if s.pg, err = pgcluster.Start(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.pg.Stop() })
	if err := s.pg.CreateDatabase(ctx, "controlplane"); err != nil {
		t.Fatal(err)
	}
	s.dbURL = s.pg.URL("controlplane")

	ports := freeAddrs(t, 3)
	temporalAddr := ports[0]
	s.temporalArgs = []string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", port(temporalAddr),
		"--http-port", port(ports[1]), "--metrics-port", port(ports[2]), "--log-level", "warn",
		"--db-filename", filepath.Join(t.TempDir(), "temporal.db"),
		"--sqlite-pragma", "journal_mode=WAL", "--sqlite-pragma", "synchronous=NORMAL"}
	s.temporal = startProcess(t, os.Environ(), s.cli, s.temporalArgs...)

	ring, _ := seal.NewKey("k1")
	s.env = append(os.Environ(), "CP_DATABASE_URL="+s.dbURL, "CP_TEMPORAL_ADDRESS="+temporalAddr,
		"CP_KEY_ENCRYPTION_KEYS="+ring, "CP_DATA_DIR="+t.TempDir(), "CP_SMTP_ADDR=127.0.0.1:1", "CP_SMTP_FROM=noreply@acme.test",
		"CP_LOG_FORMAT=json", "CP_LOG_LEVEL=warn", "CP_USER_RATE_LIMIT=1000000", "CP_PUBLIC_RATE_LIMIT=1000000", "CP_TENANT_TRANSITIONS_PER_MINUTE=1000",
		"CP_BOOTSTRAP_ORG_NAME=Acme", "CP_BOOTSTRAP_ORG_SLUG=acme", "CP_BOOTSTRAP_OWNER_EMAIL=owner@acme.test",
		"CP_BOOTSTRAP_OWNER_PASSWORD=intelliauth-dev-password")
	s.env = append(s.env, extraEnv...)
	for _, args := range [][]string{{"migrate", "up"}, {"bootstrap"}, {"setup"}} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = s.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	if s.db, err = store.Open(ctx, s.dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.db.Close() })
	if _, err := s.db.ExecContext(ctx, `INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute)
		VALUES ('drills', 'Drills', 100000, 100, 1000000);
		UPDATE organizations SET plan_id = 'drills'`); err != nil {
		t.Fatal(err)
	}
	addrs := freeAddrs(t, 6)
	for i := range 2 {
		s.apiAddrs[i], s.apiMetrics[i], s.workerMetrics[i] = addrs[i], addrs[2+i], addrs[4+i]
		s.startAPI(i)
		s.startWorker(i)
	}
	for _, a := range s.apiAddrs {
		waitStatus(t, "http://"+a+"/readyz", 200)
	}
	return s
}

func (s *shape) startAPI(i int) {
	s.apis[i] = startProcess(s.root, append(s.env, "CP_HTTP_ADDR="+s.apiAddrs[i], "CP_METRICS_ADDR="+s.apiMetrics[i]), binary(s.root), "api")
}

func (s *shape) startWorker(i int) {
	s.workers[i] = startProcess(s.root, append(s.env, "CP_METRICS_ADDR="+s.workerMetrics[i]), binary(s.root), "worker")
}

// stop signals the process and waits for it to exit.
func (p *process) stop(t testing.TB, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not exit within 60s of %v", p.cmd.Path, sig)
	}
}

func (s *shape) baseURLs() []string {
	return []string{"http://" + s.apiAddrs[0], "http://" + s.apiAddrs[1]}
}

// load drives mixed traffic at both APIs for d, as a careful client does
// (a mutation answered 503 or not at all is retried with its key at the
// other API), while fault runs once the traffic has begun.
func (s *shape) load(d time.Duration, fault func()) loadgen.Report {
	s.t.Helper()
	done, wait := s.traffic(loadgen.Options{Duration: d, Concurrency: 8, Rate: 10,
		Mix: map[string]int{"create": 3, "get": 2, "list": 1, "suspend": 1}, Retries: 30, RetryWait: 2 * time.Second})
	time.Sleep(d / 4)
	fault()
	<-done
	return wait()
}

// traffic starts the load generator at both APIs as the bootstrap owner.
// done is closed when the run ends; wait returns its report.
func (s *shape) traffic(o loadgen.Options) (done <-chan struct{}, wait func() loadgen.Report) {
	o.BaseURLs, o.Email, o.Password = s.baseURLs(), "owner@acme.test", "intelliauth-dev-password"
	ch := make(chan struct{})
	var rep loadgen.Report
	var err error
	go func() {
		defer close(ch)
		rep, err = loadgen.Run(context.Background(), o)
	}()
	return ch, func() loadgen.Report {
		s.t.Helper()
		<-ch
		if err != nil {
			s.t.Fatal(err)
		}
		return rep
	}
}

// answered counts the results of a report with the status (0: none).
func answered(rep loadgen.Report, status int) int {
	n := 0
	for _, r := range rep.Results {
		if r.Status == status {
			n++
		}
	}
	return n
}

// settled waits until no tenant is being provisioned and no operation is
// open, then checks the invariants every drill must leave true:
//   - every tenant is active or suspended (the traffic suspends some),
//     none failed (no drill makes a step fail) and none is missing;
//   - each has exactly one tenant.provisioned or tenant.provisioning_failed
//     event;
//   - no answer was a 500 (or any 5xx other than 503), no Idempotency-Key
//     had two effects, and answers with no response at all only where
//     allowed;
//   - `controlplane verify` finds no drift.
func (s *shape) settled(name string, rep loadgen.Report, networkErrorsAllowed bool) {
	t := s.t
	t.Helper()
	ctx := context.Background()
	var summary strings.Builder
	rep.WriteTable(&summary)
	t.Logf("%s: traffic\n%s", name, summary.String())
	for _, r := range rep.Results {
		switch {
		case r.Status >= 500 && r.Status != 503:
			t.Errorf("%s: %s answered %d %s", name, r.Route, r.Status, r.Code)
		case r.Status == 503 && r.Code != "UNAVAILABLE":
			t.Errorf("%s: %s answered 503 %s", name, r.Route, r.Code)
		case r.Status == 0 && !networkErrorsAllowed:
			t.Errorf("%s: %s had no answer", name, r.Route)
		}
	}
	if twice := rep.Twice(); len(twice) > 0 {
		t.Errorf("%s: Idempotency-Keys carried out twice: %v", name, twice)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var open int
		if err := s.db.NewRaw(`SELECT (SELECT count(*) FROM tenants WHERE state IN ('provisioning', 'decommissioning') OR current_operation_id IS NOT NULL)
			+ (SELECT count(*) FROM operations WHERE status IN ('running', 'stuck'))`).Scan(ctx, &open); err == nil && open == 0 && s.sagasAtRest() {
			break
		}
		if time.Now().After(deadline) {
			var rows []struct {
				ID, State string
				Op        *string `bun:"current_operation_id"`
			}
			_ = s.db.NewRaw("SELECT id, state, current_operation_id FROM tenants WHERE state = 'provisioning' OR current_operation_id IS NOT NULL").Scan(ctx, &rows)
			t.Fatalf("%s: sagas still open 3 minutes after the traffic: %+v", name, rows)
		}
		time.Sleep(500 * time.Millisecond)
	}

	var states []struct {
		State string
		N     int
	}
	if err := s.db.NewRaw("SELECT state, count(*) AS n FROM tenants GROUP BY state").Scan(ctx, &states); err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.State != "active" && st.State != "suspended" {
			t.Errorf("%s: %d tenants %s", name, st.N, st.State)
		}
	}
	var missing []string
	for key, effects := range rep.Effects {
		id, _, _ := strings.Cut(effects[0], "/")
		var n int
		if err := s.db.NewRaw("SELECT count(*) FROM tenants WHERE id = ?", id).Scan(ctx, &n); err != nil || n != 1 {
			missing = append(missing, key+"→"+id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: answered 202 but no tenant: %v", name, missing)
	}
	var uneven []struct {
		ID string
		N  int
	}
	if err := s.db.NewRaw(`SELECT t.id, count(e.id) AS n FROM tenants t
		LEFT JOIN audit_events e ON e.target_id = t.id AND e.action IN ('tenant.provisioned', 'tenant.provisioning_failed')
		GROUP BY t.id HAVING count(e.id) <> 1`).Scan(ctx, &uneven); err != nil {
		t.Fatal(err)
	}
	if len(uneven) > 0 {
		t.Errorf("%s: tenants without exactly one provisioning outcome event: %+v", name, uneven)
	}

	var v verifyRun
	temporalAddr := lookup(s.env, "CP_TEMPORAL_ADDRESS")
	deadline = time.Now().Add(60 * time.Second)
	for {
		v = runVerify(t, s.dbURL, temporalAddr, "controlplane", "-settle", "0s", "-json")
		if v.status == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if v.status != 0 {
		t.Errorf("%s: verify found drift (status %d): %+v\n%s", name, v.status, v.findings, v.out)
	}
	t.Logf("%s: all settled; verify compared %v", name, v.compared)
}

// sagasAtRest reports whether Temporal lists no open tenant workflow whose
// saga is running: a creation whose client gave up while its update was
// admitted (a killed worker's task times out first) reserves its tenant
// later, when Postgres showed nothing open already.
func (s *shape) sagasAtRest() bool {
	out, err := exec.Command(s.cli, "workflow", "count", "--address", lookup(s.env, "CP_TEMPORAL_ADDRESS"),
		"--query", "ExecutionStatus='Running' AND SagaStatus='running'").CombinedOutput()
	return err == nil && strings.TrimSpace(string(out)) == "Total: 0"
}

// TestTheProductionShapeSurvivesItsFaultCampaign runs the drills one after
// another on one production shape, each under traffic from the load
// generator, and checks the invariants after each: a worker killed
// mid-step, Postgres restarted mid-saga, the Temporal server restarted
// mid-saga, and an API killed mid-request.
func TestTheProductionShapeSurvivesItsFaultCampaign(t *testing.T) {
	s := startShape(t)
	const traffic = 16 * time.Second

	t.Run("a worker is killed mid-step", func(t *testing.T) {
		s.t = t
		// Steps are milliseconds long: to kill a worker while it surely
		// runs some, worker 1 is stopped, the routes table is locked so
		// the route steps of new tenants wait (on worker 0, the only one
		// left), worker 1 comes back, worker 0 is killed, and the lock is
		// released: worker 1 must take over the steps worker 0 died in.
		s.workers[1].stop(t, syscall.SIGTERM)
		tx, err := s.db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(context.Background(), "LOCK TABLE dataplane.routes IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			t.Fatal(err)
		}
		rep := s.load(traffic, func() {
			eventually(t, func() bool {
				var waiting int
				err := s.db.NewRaw("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'dataplane.routes'::regclass").Scan(context.Background(), &waiting)
				return err == nil && waiting >= 3
			})
			s.startWorker(1)
			s.workers[0].stop(t, syscall.SIGKILL)
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
		})
		s.settled("worker killed", rep, false)
		var retried int
		if err := s.db.NewRaw(`SELECT count(*) FROM operations o, jsonb_array_elements(o.steps) st
			WHERE st->>'name' = 'route' AND (st->>'attempts')::int >= 2`).Scan(context.Background(), &retried); err != nil {
			t.Fatal(err)
		}
		if retried == 0 {
			t.Error("no route step was attempted again: the killed worker ran none")
		}
		t.Logf("worker killed: %d route steps the killed worker was running were finished by the other", retried)
		s.startWorker(0)
	})
	t.Run("Postgres restarts mid-saga", func(t *testing.T) {
		s.t = t
		rep := s.load(traffic, func() {
			if err := s.pg.Stop(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3 * time.Second)
			if err := s.pg.StartAgain(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
		s.settled("postgres restarted", rep, false)
		t.Logf("postgres restarted: %d answers were 503 while it was down", answered(rep, 503))
	})
	t.Run("the Temporal server restarts mid-saga", func(t *testing.T) {
		s.t = t
		rep := s.load(traffic, func() {
			s.temporal.stop(t, syscall.SIGTERM)
			time.Sleep(2 * time.Second)
			s.temporal = startProcess(s.root, os.Environ(), s.cli, s.temporalArgs...)
		})
		s.settled("temporal restarted", rep, false)
	})
	t.Run("an API is killed mid-request", func(t *testing.T) {
		s.t = t
		rep := s.load(traffic, func() { s.apis[0].stop(t, syscall.SIGKILL) })
		// Requests sent to the dead API have no answer; every mutation
		// among them was retried at the other with its key.
		s.settled("api killed", rep, true)
		t.Logf("api killed: %d requests had no answer", answered(rep, 0))
		s.startAPI(0)
		waitStatus(t, "http://"+s.apiAddrs[0]+"/readyz", 200)
	})
}
