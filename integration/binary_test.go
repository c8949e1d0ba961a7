package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/controlplane once per test run: these tests run the
// real binary, as a user does.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv(envBinary); bin != "" {
			binPath = bin // a shard's, built once for the run (runShards)
			return
		}
		dir, err := os.MkdirTemp("", "cp-bin-")
		if err != nil {
			buildErr = err
			return
		}
		harness.OnExit(func() { _ = os.RemoveAll(dir) }) // 230 MB a run
		binPath = filepath.Join(dir, "controlplane")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/controlplane").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// freeAddrs returns n distinct free loopback addresses: every listener is
// held until all are taken, so the system cannot hand out one port twice.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

// devProcess is a running `controlplane dev`.
type devProcess struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
	env  []string
	api  string
	ui   string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devEnv is the environment of a dev process on free ports and its own data
// dir. Without Postgres binaries, it uses a database of the harness.
func devEnv(t testing.TB) []string {
	env := append(os.Environ(),
		"CP_DATA_DIR="+t.TempDir(),
		"CP_HTTP_ADDR="+freeAddr(t),
		"CP_METRICS_ADDR="+freeAddr(t),
		"CP_TEMPORAL_ADDRESS="+freeAddr(t),
		"CP_TEMPORAL_UI_ADDR="+freeAddr(t),
		"CP_OPERATOR_ADDR="+freeAddr(t),
		"CP_LOG_FORMAT=json",
		"CP_DATABASE_URL=",
	)
	if _, err := pgcluster.FindBinaries(); err != nil {
		url, _ := harness.Get(t).NewDatabase(t, false)
		env = append(env, "CP_DATABASE_URL="+url)
	}
	return env
}

func lookup(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}

// devListeners are the addresses of env that a dev process listens on.
var devListeners = []string{"CP_HTTP_ADDR", "CP_METRICS_ADDR", "CP_TEMPORAL_ADDRESS", "CP_TEMPORAL_UI_ADDR", "CP_OPERATOR_ADDR"}

// startDev starts `controlplane dev` and waits until it is ready. The free
// ports devEnv picked may be taken by another process before dev binds
// them (tests run in parallel); dev then stops at once saying so, and it is
// started again on other ports. The new addresses are written into env
// itself, so the caller's lookups see them.
func startDev(t testing.TB, env []string) *devProcess {
	t.Helper()
	for attempt := 1; ; attempt++ {
		p, err := launchDev(t, env)
		if err == nil {
			return p
		}
		if attempt < 4 && strings.Contains(p.out.String(), "address already in use") {
			t.Logf("controlplane dev: a port was taken before it bound it (%v); starting it on other ports", err)
			// The next process takes the same data dir: the Postgres the
			// first one started got the parent-death signal and may still
			// be writing its shutdown checkpoint there.
			if dir := lookup(env, "CP_DATA_DIR"); dir != "" {
				pgcluster.WaitForExit(filepath.Join(dir, "postgres"))
			}
			for i, kv := range env {
				if k, _, _ := strings.Cut(kv, "="); slices.Contains(devListeners, k) {
					env[i] = k + "=" + freeAddr(t)
				}
			}
			continue
		}
		t.Fatalf("controlplane dev exited before ready: %v\n%s", err, p.out.String())
	}
}

// launchDev starts one dev process; an error means it exited before ready.
func launchDev(t testing.TB, env []string) (*devProcess, error) {
	t.Helper()
	p := &devProcess{out: &syncBuffer{}, done: make(chan error, 1), env: env,
		api: lookup(env, "CP_HTTP_ADDR"), ui: lookup(env, "CP_TEMPORAL_UI_ADDR")}
	p.cmd = exec.Command(binary(t), "dev")
	p.cmd.Env = slices.Clone(env)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		// Its Postgres got the parent-death signal and is still writing its
		// shutdown checkpoint: the data dir is removed only after it exits.
		if dir := lookup(env, "CP_DATA_DIR"); dir != "" {
			pgcluster.WaitForExit(filepath.Join(dir, "postgres"))
		}
		if t.Failed() {
			t.Logf("controlplane dev output:\n%s", p.out.String())
		}
	})
	return p, p.waitReady(t)
}

// waitReady waits for /readyz; it returns the process's exit when it ends
// first.
func (p *devProcess) waitReady(t testing.TB) error {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err // for whoever waits on it next
			return fmt.Errorf("exited: %v", err)
		default:
		}
		resp, err := http.Get("http://" + p.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("controlplane dev not ready within 90s")
	return nil
}

func (p *devProcess) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("controlplane dev did not stop within 60s")
		return nil
	}
}

func get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestDevRunsEverythingInOneProcessAndStopsCleanly(t *testing.T) {
	env := append(devEnv(t), "CP_SPARE_SCHEMAS=3")
	p := startDev(t, env)

	if code, body := get(t, "http://"+p.ui+"/"); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("Temporal UI = %d %.200s", code, body)
	}
	// The API's, the Temporal SDK's and the saga metrics, on one listener.
	code, body := get(t, "http://"+lookup(env, "CP_METRICS_ADDR")+"/metrics")
	for _, want := range []string{"controlplane_http_requests_total", "temporal_worker_task_slots_available{",
		`controlplane_sagas{status="stuck"} 0`, "controlplane_sagas_count_ok 1"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics = %d, lacks %s", code, want)
		}
	}
	// The worker makes its spare schemas once dev is quiet, and says so.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		_, body := get(t, "http://"+lookup(env, "CP_METRICS_ADDR")+"/metrics")
		if strings.Contains(body, `controlplane_spare_schemas{region=""} 3`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 3 spare schemas in /metrics after 30 s: %q", metricLines(body, "controlplane_spare_schemas"))
		}
	}
	if code, _ := get(t, "http://"+p.api+"/metrics"); code != 404 {
		t.Fatalf("/metrics on the public listener = %d", code)
	}
	// The binary serves the API's explorer and its document itself.
	if code, body := get(t, "http://"+p.api+"/api/docs"); code != 200 || !strings.Contains(body, "swagger-ui") {
		t.Fatalf("/api/docs = %d %.200s", code, body)
	}
	if code, body := get(t, "http://"+p.api+"/api/v1/openapi.json"); code != 200 || !strings.Contains(body, `"openapi":"3.1.0"`) {
		t.Fatalf("/api/v1/openapi.json = %d %.200s", code, body)
	}
	if out := p.out.String(); !strings.Contains(out, "http://"+p.api+"/api/docs") || !strings.Contains(out, "http://"+p.ui) || !strings.Contains(out, lookup(env, "CP_TEMPORAL_ADDRESS")) ||
		!strings.Contains(out, "Console      "+p.console()+"/\n") {
		t.Errorf("banner lacks the URLs:\n%s", out)
	}

	if err := p.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("dev exited with %v after SIGINT", err)
	}
	for _, line := range []string{"worker stopped", "temporal stopped"} {
		if !strings.Contains(p.out.String(), line) {
			t.Errorf("shutdown did not log %q", line)
		}
	}

	// The same data dir starts again, after a clean stop and after SIGKILL,
	// and bootstrap stays a no-op.
	again := startDev(t, env)
	if err := again.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL reported success")
	}
	third := startDev(t, env)
	if !strings.Contains(third.out.String(), "organisation exists, nothing changed") {
		t.Errorf("restart bootstrapped again:\n%s", third.out.String())
	}
	if err := third.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("dev exited with %v after SIGTERM", err)
	}
}

func TestMigrateUpDownUpThroughTheBinary(t *testing.T) {
	h := harness.Get(t)
	url, db := h.NewDatabase(t, false)
	env := append(os.Environ(), "CP_DATABASE_URL="+url, "CP_LOG_FORMAT=json")
	for _, dir := range []string{"up", "status", "down", "up"} {
		cmd := exec.Command(binary(t), "migrate", dir)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("migrate %s: %v\n%s", dir, err, out)
		}
	}
	var n int
	if err := db.NewRaw("SELECT count(*) FROM plans").Scan(context.Background(), &n); err != nil || n != 3 {
		t.Fatalf("plans after up/down/up = %d, %v", n, err)
	}
}

func TestBootstrapCommandCreatesOnceThenIsANoOp(t *testing.T) {
	h := harness.Get(t)
	url, db := h.NewDatabase(t, true)
	env := append(os.Environ(), "CP_DATABASE_URL="+url, "CP_LOG_FORMAT=json",
		"CP_BOOTSTRAP_ORG_NAME=Globex", "CP_BOOTSTRAP_ORG_SLUG=globex",
		"CP_BOOTSTRAP_OWNER_EMAIL=hank@globex.test", "CP_BOOTSTRAP_OWNER_PASSWORD=a-long-enough-password")
	for i, want := range []string{"organisation and owner created", "organisation exists, nothing changed"} {
		cmd := exec.Command(binary(t), "bootstrap")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("bootstrap run %d: %v\n%s", i+1, err, out)
		}
		if strings.Contains(string(out), "a-long-enough-password") {
			t.Fatal("bootstrap logged the password")
		}
	}
	var orgs []store.Organization
	if err := db.NewSelect().Model(&orgs).Scan(context.Background()); err != nil || len(orgs) != 1 || orgs[0].Slug != "globex" {
		t.Fatalf("organisations = %+v, %v", orgs, err)
	}
}

func TestInvalidConfigurationIsReportedAllAtOnceBeforeAnythingStarts(t *testing.T) {
	cmd := exec.Command(binary(t), "api")
	cmd.Env = append(os.Environ(), "CP_DATABASE_URL=", "CP_HTTP_ADDR=nope", "CP_LOG_LEVEL=loud", "CP_FAULTS=schema=fail")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2\n%s", err, out)
	}
	for _, key := range []string{"CP_DATABASE_URL", "CP_HTTP_ADDR", "CP_LOG_LEVEL", "CP_FAULTS"} {
		if !strings.Contains(string(out), key+": ") {
			t.Errorf("output does not name %s:\n%s", key, out)
		}
	}
}

func TestDevKilledMidSagaFinishesItAfterARestartWithNothingTwice(t *testing.T) {
	h := harness.Get(t)
	url, db := h.NewDatabase(t, false)
	env := append(devEnv(t), "CP_DATABASE_URL="+url, "CP_FAULTS=keys=delay:4s")
	p := startDev(t, env)
	d := signInDev(t, p.api)
	id, _ := d.createTenant("survivor")
	// Kill while the keys step sleeps in its fault drill.
	time.Sleep(1500 * time.Millisecond)
	if err := p.stop(t, syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL reported success")
	}

	again := startDev(t, env)
	d = signInDev(t, again.api)
	d.waitState(id, "active")

	ctx := context.Background()
	var counts []struct {
		Action string `bun:"action"`
		N      int    `bun:"n"`
	}
	if err := db.NewRaw("SELECT action, count(*) AS n FROM audit_events WHERE target_id = ? GROUP BY action", id).Scan(ctx, &counts); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, c := range counts {
		seen[c.Action] = c.N
		if c.N != 1 {
			t.Errorf("%s written %d times", c.Action, c.N)
		}
	}
	if seen["tenant.create_requested"] != 1 || seen["tenant.provisioned"] != 1 {
		t.Errorf("events = %v", seen)
	}
	var keys, routes int
	if err := db.NewRaw("SELECT (SELECT count(*) FROM dataplane.signing_keys WHERE tenant_id = ?), (SELECT count(*) FROM dataplane.routes WHERE tenant_id = ?)", id, id).Scan(ctx, &keys, &routes); err != nil {
		t.Fatal(err)
	}
	if keys != 1 || routes != 1 {
		t.Fatalf("keys = %d, routes = %d; want one of each", keys, routes)
	}
	if err := again.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("dev exited with %v", err)
	}
}

// metricLines are the lines of a metrics page that start with name.
func metricLines(body, name string) []string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			out = append(out, l)
		}
	}
	return out
}
