package integration

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/seal"
)

// process is one process the test started, with its output for a failure.
type process struct {
	cmd *exec.Cmd
	out *syncBuffer
}

func startProcess(t testing.TB, env []string, name string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(name, args...), out: &syncBuffer{}}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s output:\n%s", name, strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestAPIAndWorkerRunAsTheirOwnProcessesAgainstATemporalNotSetUpYet runs the
// production shape: the real `temporal server start-dev` as its own process
// (it has no search attributes of ours), then `controlplane api` first, then
// `controlplane worker`. Until `controlplane setup` has run, /readyz is not
// ready and a creation is 503, never 500; after it, a tenant is created
// and provisioned.
func TestAPIAndWorkerRunAsTheirOwnProcessesAgainstATemporalNotSetUpYet(t *testing.T) {
	cli := temporalCLI(t)
	h := harness.Get(t)
	dbURL, _ := h.NewDatabase(t, false)
	ports := freeAddrs(t, 3)
	temporalAddr := ports[0]
	startProcess(t, os.Environ(), cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", port(temporalAddr),
		"--http-port", port(ports[1]), "--metrics-port", port(ports[2]), "--log-level", "warn")
	ring, _ := seal.NewKey("k1")
	apiAddr := freeAddr(t)
	env := append(os.Environ(), "CP_DATABASE_URL="+dbURL, "CP_TEMPORAL_ADDRESS="+temporalAddr, "CP_HTTP_ADDR="+apiAddr,
		"CP_KEY_ENCRYPTION_KEYS="+ring, "CP_DATA_DIR="+t.TempDir(), "CP_SMTP_ADDR=127.0.0.1:1", "CP_SMTP_FROM=noreply@acme.test", "CP_LOG_FORMAT=json", "CP_STEP_MAX_ATTEMPTS=2",
		"CP_BOOTSTRAP_ORG_NAME=Acme", "CP_BOOTSTRAP_ORG_SLUG=acme", "CP_BOOTSTRAP_OWNER_EMAIL=owner@acme.test",
		"CP_BOOTSTRAP_OWNER_PASSWORD=intelliauth-dev-password")
	for _, args := range [][]string{{"migrate", "up"}, {"bootstrap"}} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}

	// The API starts first, before any worker and before setup.
	apiMetrics, workerMetrics := freeAddr(t), freeAddr(t)
	startProcess(t, append(env, "CP_METRICS_ADDR="+apiMetrics), binary(t), "api")
	waitStatus(t, "http://"+apiAddr+"/healthz", 200)
	waitStatus(t, "http://"+apiAddr+"/readyz", 503)
	d := signInDev(t, apiAddr)
	create := func() (int, map[string]any) {
		return d.doKey("POST", "/organizations/"+d.org+"/tenants", "first-tenant", map[string]any{"name": "prod", "environment": "prod"})
	}
	if code, out := create(); code != 503 || !strings.Contains(toJSON(out), "UNAVAILABLE") {
		t.Fatalf("a creation before setup: %d %v", code, out)
	}

	startProcess(t, append(env, "CP_METRICS_ADDR="+workerMetrics), binary(t), "worker")
	// The image's healthcheck: each process answers on its metrics
	// listener; nothing answers where no process is.
	healthcheck := func(addr string) error {
		cmd := exec.Command(binary(t), "healthcheck")
		cmd.Env = append(os.Environ(), "CP_METRICS_ADDR="+addr)
		return cmd.Run()
	}
	eventually(t, func() bool { return healthcheck(apiMetrics) == nil && healthcheck(workerMetrics) == nil })
	if err := healthcheck(freeAddr(t)); err == nil {
		t.Fatal("healthcheck passed with no process to answer")
	}
	for range 2 { // idempotent
		cmd := exec.Command(binary(t), "setup")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("setup: %v\n%s", err, out)
		}
	}
	waitStatus(t, "http://"+apiAddr+"/readyz", 200)
	var id string
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out := create()
		if code == 202 {
			id = out["data"].(map[string]any)["tenant"].(map[string]any)["id"].(string)
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("a creation after setup: %d %v", code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	d.waitState(id, "active")
}

func waitStatus(t testing.TB, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		c := http.Client{Timeout: 5 * time.Second}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d (last: %v %v)", url, want, resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
