package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// temporalCLIVersion is the operator CLI the runbook documents.
const temporalCLIVersion = "v1.5.1"

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// temporalCLI finds the real `temporal` binary, installing it with go
// install into the user cache when it is missing: the runbook test must
// run, never skip.
func temporalCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		if p, err := exec.LookPath("temporal"); err == nil {
			cliPath = p
			return
		}
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		if p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "temporal"); isFile(p) {
			cliPath = p
			return
		}
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		bin := filepath.Join(cache, "intelliauth-controlplane", "bin")
		if p := filepath.Join(bin, "temporal"); isFile(p) {
			cliPath = p
			return
		}
		cmd := exec.Command("go", "install", "github.com/temporalio/cli/cmd/temporal@"+temporalCLIVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = err
			t.Logf("go install temporal: %s", out)
			return
		}
		cliPath = filepath.Join(bin, "temporal")
	})
	if cliErr != nil || cliPath == "" {
		t.Fatalf("the temporal CLI is needed and could not be installed: %v", cliErr)
	}
	return cliPath
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// runbookCommands reads the commands of docs/runbook.md by their marker.
func runbookCommands(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)```sh\n# runbook:(\\S+)\n(.*?)\n```")
	out := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = strings.TrimSpace(m[2])
	}
	for _, want := range []string{"find-all", "find-org", "describe", "status", "show", "retry", "compensate", "cancel"} {
		if out[want] == "" {
			t.Fatalf("docs/runbook.md has no runbook:%s block", want)
		}
	}
	return out
}

// operator runs runbook commands against a dev server.
type operator struct {
	t        *testing.T
	cli      string
	address  string
	commands map[string]string
}

func (o operator) run(name, workflowID, orgID string) string {
	o.t.Helper()
	cmd := strings.NewReplacer("<workflow-id>", workflowID, "<org-id>", orgID, "<you>", "runbook-test").Replace(o.commands[name])
	cmd = strings.Replace(cmd, "temporal ", o.cli+" ", 1)
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+o.address, "TEMPORAL_NAMESPACE=default")
	out, err := c.CombinedOutput()
	if err != nil {
		o.t.Fatalf("runbook:%s (%s): %v\n%s", name, cmd, err, out)
	}
	return string(out)
}

// eventually runs a runbook command until its output satisfies ok.
func (o operator) eventually(name, workflowID, orgID string, ok func(string) bool) string {
	o.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := o.run(name, workflowID, orgID)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("runbook:%s never showed what was expected; last output:\n%s", name, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type devClient struct {
	t     *testing.T
	base  string
	token string
	org   string
}

func (d *devClient) do(method, path string, body any) (int, map[string]any) {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if d.token != "" {
		req.Header.Set("Authorization", "Bearer "+d.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func signInDev(t *testing.T, api string) *devClient {
	d := &devClient{t: t, base: "http://" + api + "/api/v1"}
	code, out := d.do("POST", "/auth/sign-in", map[string]any{"email": "owner@acme.test", "password": "intelliauth-dev-password"})
	if code != 200 {
		t.Fatalf("sign-in: %d %v", code, out)
	}
	d.token = out["data"].(map[string]any)["token"].(string)
	_, orgs := d.do("GET", "/organizations", nil)
	d.org = orgs["data"].([]any)[0].(map[string]any)["id"].(string)
	return d
}

func (d *devClient) createTenant(name string) (id, workflowID string) {
	d.t.Helper()
	code, out := d.do("POST", "/organizations/"+d.org+"/tenants", map[string]any{"name": name, "environment": "prod"})
	if code != 202 {
		d.t.Fatalf("create %s: %d %v", name, code, out)
	}
	tn := out["data"].(map[string]any)["tenant"].(map[string]any)
	return tn["id"].(string), tn["workflow_id"].(string)
}

func (d *devClient) waitState(id, state string) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, out := d.do("GET", "/organizations/"+d.org+"/tenants/"+id, nil)
		got, _ := out["data"].(map[string]any)["state"].(string)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("tenant %s is %q, want %s", id, got, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTheRunbookRepairsStuckSagasWithTheRealCLI runs docs/runbook.md's
// commands with the real temporal binary against `controlplane dev` with
// fault drills: find, inspect, and each repair signal.
func TestTheRunbookRepairsStuckSagasWithTheRealCLI(t *testing.T) {
	cli := temporalCLI(t)
	env := append(devEnv(t), "CP_FAULTS=keys=fail:3", "CP_STEP_MAX_ATTEMPTS=2", "CP_DECOMMISSION_GRACE=1h")
	p := startDev(t, env)
	op := operator{t: t, cli: cli, address: lookup(env, "CP_TEMPORAL_ADDRESS"), commands: runbookCommands(t)}
	d := signInDev(t, p.api)

	a, wfA := d.createTenant("alpha")
	b, wfB := d.createTenant("bravo")
	stuck := func(wf string) func(string) bool { return func(out string) bool { return strings.Contains(out, wf) } }
	op.eventually("find-all", "", "", func(out string) bool { return stuck(wfA)(out) && stuck(wfB)(out) })
	op.eventually("find-org", "", d.org, stuck(wfA))
	if out := op.run("find-org", "", "org_00000000000000000000000000"); strings.Contains(out, wfA) {
		t.Fatalf("another organisation's filter lists this saga:\n%s", out)
	}
	if out := op.run("describe", wfA, d.org); !strings.Contains(out, "SagaStatus") || !strings.Contains(out, `\"stuck\"`) {
		t.Fatalf("describe:\n%s", out)
	}
	if out := op.run("status", wfA, d.org); !strings.Contains(out, `"StuckStep": "keys"`) && !strings.Contains(out, `"StuckStep":"keys"`) {
		t.Fatalf("status:\n%s", out)
	}
	if out := op.run("show", wfA, d.org); !strings.Contains(out, "fault drill") {
		t.Fatalf("show does not carry the step's error:\n%s", out)
	}

	// retry: keys fails a third time, then passes; alpha becomes active.
	op.run("retry", wfA, d.org)
	d.waitState(a, "active")
	// compensate: bravo's completed schema step is undone; it ends failed.
	op.run("compensate", wfB, d.org)
	d.waitState(b, "failed")
	op.eventually("find-all", "", "", func(out string) bool { return !stuck(wfA)(out) && !stuck(wfB)(out) })

	// cancel: a decommission in its grace period is called off.
	if code, out := d.do("POST", "/organizations/"+d.org+"/tenants/"+a+"/decommission", nil); code != 202 {
		t.Fatalf("decommission: %d %v", code, out)
	}
	d.waitState(a, "decommissioning")
	op.run("cancel", wfA, d.org)
	d.waitState(a, "suspended")

	_, events := d.do("GET", "/organizations/"+d.org+"/tenants/"+a+"/operations", nil)
	if !strings.Contains(toJSON(events), `"status":"cancelled"`) {
		t.Errorf("operations after cancel: %s", toJSON(events))
	}
	if err := p.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("dev exited with %v", err)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
