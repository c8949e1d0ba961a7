package integration

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
func temporalCLI(t testing.TB) string {
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
	for _, want := range []string{"find-all", "find-org", "describe", "status", "show", "retry", "compensate", "cancel", "reset"} {
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
	// codec and codecAuth are the dev server's codec endpoint and its
	// Authorization header, which the runbook has operators export.
	codec, codecAuth string
	// tls is the CLI's client certificate for the operator gateway and
	// the CA of the gateway's own (none: the CLI sends no certificate).
	tls []string
}

// newOperator is an operator of the dev server started with env: its
// Temporal frontend, and its codec endpoint (on the Temporal UI's
// listener) with the token dev keeps in its data dir.
func newOperator(t *testing.T, cli string, env []string) operator {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(lookup(env, "CP_DATA_DIR"), "codec-token"))
	if err != nil {
		t.Fatalf("dev's codec token: %v", err)
	}
	certs := filepath.Join(lookup(env, "CP_DATA_DIR"), "operator")
	return operator{t: t, cli: cli, address: lookup(env, "CP_OPERATOR_ADDR"), commands: runbookCommands(t),
		codec: "http://" + lookup(env, "CP_TEMPORAL_UI_ADDR") + "/codec", codecAuth: "Bearer " + strings.TrimSpace(string(token)),
		tls: []string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH=" + filepath.Join(certs, "ca.pem"),
			"TEMPORAL_TLS_CLIENT_CERT_PATH=" + filepath.Join(certs, "operator.pem"), "TEMPORAL_TLS_CLIENT_KEY_PATH=" + filepath.Join(certs, "operator-key.pem")}}
}

// withoutCertificate is the operator's CLI pointed at address with no
// client certificate: TLS to the gateway only trusting its CA (tls), or
// the dev frontend itself in plaintext.
func (o operator) withoutCertificate(address string, tls bool) operator {
	ca := o.tls[0]
	o.address, o.tls = address, nil
	if tls {
		o.tls = []string{"TEMPORAL_TLS=true", ca}
	}
	return o
}

// withCertificate is the operator's CLI with another client certificate.
func (o operator) withCertificate(cert, key string) operator {
	o.tls = []string{o.tls[0], "TEMPORAL_TLS_CLIENT_CERT_PATH=" + cert, "TEMPORAL_TLS_CLIENT_KEY_PATH=" + key}
	return o
}

// target is what a runbook command's placeholders stand for.
type target struct {
	workflowID, orgID, operationID, step string
}

func (o operator) command(name string, tg target) string {
	cmd := strings.NewReplacer("<workflow-id>", tg.workflowID, "<org-id>", tg.orgID, "<you>", "runbook-test",
		"<operation-id>", tg.operationID, "<step>", tg.step, "<why>", "runbook test").Replace(o.commands[name])
	return strings.Replace(cmd, "temporal ", o.cli+" ", 1)
}

// try runs a runbook command (or, when name is not a block, the temporal
// command line given) and returns its output and error.
func (o operator) try(name string, tg target) (string, error) {
	o.t.Helper()
	cmd := name
	if _, ok := o.commands[name]; ok {
		cmd = o.command(name, tg)
	} else {
		cmd = strings.Replace(cmd, "temporal ", o.cli+" ", 1)
	}
	c := exec.Command("sh", "-c", cmd)
	c.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+o.address, "TEMPORAL_NAMESPACE=default",
		"TEMPORAL_CODEC_ENDPOINT="+o.codec, "TEMPORAL_CODEC_AUTH="+o.codecAuth)
	c.Env = append(c.Env, o.tls...)
	out, err := c.CombinedOutput()
	return string(out), err
}

func (o operator) run(name string, tg target) string {
	o.t.Helper()
	out, err := o.try(name, tg)
	if err != nil {
		o.t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return out
}

// eventually runs a runbook command until its output satisfies ok.
func (o operator) eventually(name string, tg target, ok func(string) bool) string {
	o.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := o.run(name, tg)
		if ok(out) {
			return out
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("%s never showed what was expected; last output:\n%s", name, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var (
	statusOperation = regexp.MustCompile(`"id":\s*"(op_[0-9A-Za-z]+)"`)
	statusStep      = regexp.MustCompile(`"step":\s*"([a-z_]+)"`)
)

// stuckAt runs the status query until the saga is stuck (or, for a
// decommission, in its grace period) and returns the operation and step a
// repair names.
func (o operator) stuckAt(workflowID, want string) target {
	o.t.Helper()
	out := o.eventually("status", target{workflowID: workflowID}, func(out string) bool {
		m := statusStep.FindStringSubmatch(out)
		return m != nil && m[1] == want && (strings.Contains(compact(out), `"stuck":true`) || want == "grace_period")
	})
	return target{workflowID: workflowID, operationID: statusOperation.FindStringSubmatch(out)[1], step: want}
}

func compact(s string) string {
	return strings.Join(strings.Fields(s), "")
}

type devClient struct {
	t     testing.TB
	base  string
	token string
	org   string
}

func (d *devClient) do(method, path string, body any) (int, map[string]any) {
	d.t.Helper()
	return d.doKey(method, path, "", body)
}

// countEvents counts a tenant's audit events of one action.
func (d *devClient) countEvents(tenantID, action string) int {
	d.t.Helper()
	code, out := d.do("GET", "/organizations/"+d.org+"/events?target_id="+tenantID+"&action="+action, nil)
	if code != 200 {
		d.t.Fatalf("events: %d %v", code, out)
	}
	return len(out["data"].([]any))
}

func (d *devClient) doKey(method, path, key string, body any) (int, map[string]any) {
	d.t.Helper()
	code, out, err := sendJSON(http.DefaultClient, method, d.base+path, d.token, key, body)
	if err != nil {
		d.t.Fatal(err)
	}
	return code, out
}

// sendJSON sends body as JSON with an optional bearer token and
// Idempotency-Key, and decodes the JSON answer.
func sendJSON(client *http.Client, method, url, token, key string, body any) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

func signInDev(t testing.TB, api string) *devClient {
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
// fault drills: find, inspect, each repair, a repair sent when nothing is
// stuck, and what cancel, terminate and reset do to a tenant.
func TestTheRunbookRepairsStuckSagasWithTheRealCLI(t *testing.T) {
	cli := temporalCLI(t)
	env := append(devEnv(t), "CP_FAULTS=keys=fail:3", "CP_STEP_MAX_ATTEMPTS=2", "CP_DECOMMISSION_GRACE=1h")
	p := startDev(t, env)
	op := newOperator(t, cli, env)
	d := signInDev(t, p.api)

	a, wfA := d.createTenant("alpha")
	b, wfB := d.createTenant("bravo")
	lists := func(wfs ...string) func(string) bool {
		return func(out string) bool {
			for _, wf := range wfs {
				if !strings.Contains(out, wf) {
					return false
				}
			}
			return true
		}
	}
	op.eventually("find-all", target{}, lists(wfA, wfB))
	op.eventually("find-org", target{orgID: d.org}, lists(wfA))
	if out := op.run("find-org", target{orgID: "org_00000000000000000000000000"}); strings.Contains(out, wfA) {
		t.Fatalf("another organisation's filter lists this saga:\n%s", out)
	}
	if out := op.run("describe", target{workflowID: wfA}); !strings.Contains(out, "SagaStatus") || !strings.Contains(out, `\"stuck\"`) {
		t.Fatalf("describe:\n%s", out)
	}
	stuckA := op.stuckAt(wfA, "keys")
	if out := compact(op.run("status", stuckA)); !strings.Contains(out, `"kind":"provision"`) || !strings.Contains(out, `"repairs":["retry","compensate"]`) {
		t.Fatalf("status of a stuck provisioning:\n%s", out)
	}
	if out := op.run("show", stuckA); !strings.Contains(out, "fault drill") {
		t.Fatalf("show does not carry the step's error:\n%s", out)
	}

	// A repair that names another step is refused.
	if out, err := op.try("compensate", target{workflowID: wfA, operationID: stuckA.operationID, step: "route"}); err == nil || !strings.Contains(out, "is stuck on step keys, not") {
		t.Fatalf("a repair of the wrong step: %v\n%s", err, out)
	}
	// retry: keys fails a third time, then passes; alpha becomes active.
	if out := op.run("retry", stuckA); !strings.Contains(out, stuckA.operationID) {
		t.Fatalf("retry answered:\n%s", out)
	}
	d.waitState(a, "active")
	// The same retry again: nothing is stuck, so it is refused and the
	// history does not change.
	before := history(t, op, wfA)
	if out, err := op.try("retry", stuckA); err == nil || !strings.Contains(out, "nothing is stuck") {
		t.Fatalf("a retry when nothing is stuck: %v\n%s", err, out)
	}
	if after := history(t, op, wfA); len(after) != len(before) {
		t.Fatalf("a refused repair changed the history: %d events, then %d", len(before), len(after))
	}

	// compensate: bravo's attempted steps are undone; it ends failed, its
	// saga done, and the find commands no longer list it.
	op.run("compensate", op.stuckAt(wfB, "keys"))
	d.waitState(b, "failed")
	op.eventually("find-all", target{}, func(out string) bool { return !strings.Contains(out, wfA) && !strings.Contains(out, wfB) })
	if out := op.run("describe", target{workflowID: wfB}); !strings.Contains(out, `\"done\"`) {
		t.Fatalf("describe of a failed tenant:\n%s", out)
	}
	// A refused creation closes with its saga done, not running.
	if code, out := d.doKey("POST", "/organizations/"+d.org+"/tenants", "refused-alpha", map[string]any{"name": "alpha", "environment": "prod"}); code != 409 {
		t.Fatalf("a second alpha: %d %v", code, out)
	}
	if out := op.run("describe", target{workflowID: "tenant/" + d.org + "/refused-alpha"}); !strings.Contains(out, `\"done\"`) || strings.Contains(out, `\"running\"`) {
		t.Fatalf("describe of a refused creation:\n%s", out)
	}

	// cancel: Temporal's cancellation is refused, and the saga goes on.
	op.run("temporal workflow cancel --workflow-id '"+wfA+"'", target{})
	op.eventually("status", target{workflowID: wfA}, func(out string) bool { return strings.Contains(compact(out), `"cancel_requested":true`) })
	if code, out := d.do("POST", "/organizations/"+d.org+"/tenants/"+a+"/suspend", nil); code != 202 {
		t.Fatalf("suspend after a cancellation request: %d %v", code, out)
	}
	d.waitState(a, "suspended")

	// reset: the suspend's last record runs again in a new run, and its
	// audit event is still written once.
	op.run(fmt.Sprintf("temporal workflow reset --workflow-id '%s' --event-id %d --reason 'runbook test'", wfA, lastRecordTask(t, op, wfA)), target{})
	op.eventually("status", target{workflowID: wfA}, func(out string) bool { return strings.Contains(compact(out), `"saga":"idle"`) })
	if n := d.countEvents(a, "tenant.suspended"); n != 1 {
		t.Fatalf("tenant.suspended written %d times after a reset", n)
	}

	// cancel in the grace period: the decommission is called off.
	if code, out := d.do("POST", "/organizations/"+d.org+"/tenants/"+a+"/decommission", nil); code != 202 {
		t.Fatalf("decommission: %d %v", code, out)
	}
	d.waitState(a, "decommissioning")
	inGrace := op.stuckAt(wfA, "grace_period")
	if out := compact(op.run("status", inGrace)); !strings.Contains(out, `"repairs":["cancel"]`) {
		t.Fatalf("status in the grace period:\n%s", out)
	}
	op.run("cancel", inGrace)
	d.waitState(a, "suspended")
	_, ops := d.do("GET", "/organizations/"+d.org+"/tenants/"+a+"/operations", nil)
	if !strings.Contains(toJSON(ops), `"status":"cancelled"`) {
		t.Errorf("operations after cancel: %s", toJSON(ops))
	}

	// terminate strands the tenant; the runbook's reset brings it back.
	op.run("temporal workflow terminate --workflow-id '"+wfA+"' --reason 'runbook test'", target{})
	op.run("reset", target{workflowID: wfA})
	op.eventually("status", target{workflowID: wfA}, func(out string) bool { return strings.Contains(compact(out), `"saga":"idle"`) })
	if code, out := d.do("POST", "/organizations/"+d.org+"/tenants/"+a+"/resume", nil); code != 202 {
		t.Fatalf("resume after a reset: %d %v", code, out)
	}
	d.waitState(a, "active")

	if err := p.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("dev exited with %v", err)
	}
}

// historyEvent is an event of `temporal workflow show -o json`.
type historyEvent struct {
	EventID   string `json:"eventId"`
	EventType string `json:"eventType"`
	Scheduled *struct {
		ActivityType struct {
			Name string `json:"name"`
		} `json:"activityType"`
	} `json:"activityTaskScheduledEventAttributes"`
	Marker *struct {
		Details struct {
			Data struct {
				Payloads []struct {
					// Data is base64 text, or the decoded JSON object
					// when the CLI shows payloads decoded.
					Data json.RawMessage `json:"data"`
				} `json:"payloads"`
			} `json:"data"`
		} `json:"details"`
	} `json:"markerRecordedEventAttributes"`
}

// localActivity is the activity type a local activity's marker records
// ("" for another event).
func (ev historyEvent) localActivity() string {
	if ev.Marker == nil || len(ev.Marker.Details.Data.Payloads) == 0 {
		return ""
	}
	raw := []byte(ev.Marker.Details.Data.Payloads[0].Data)
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw, _ = base64.StdEncoding.DecodeString(text)
	}
	var m struct{ ActivityType string }
	_ = json.Unmarshal(raw, &m)
	return m.ActivityType
}

// history reads a workflow's history with the CLI.
func history(t *testing.T, op operator, workflowID string) []historyEvent {
	t.Helper()
	out := op.run("temporal workflow show --workflow-id '"+workflowID+"' -o json", target{})
	var h struct {
		Events []historyEvent `json:"events"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("history: %v\n%.2000s", err, out)
	}
	return h.Events
}

// lastRecordTask returns the id of the workflow task that scheduled the
// workflow's last Record activity, or that recorded its last Record local
// activity (its marker follows the task's completion): a reset to it runs
// that record again.
func lastRecordTask(t *testing.T, op operator, workflowID string) int {
	t.Helper()
	task, found := 0, 0
	for _, ev := range history(t, op, workflowID) {
		id, _ := strconv.Atoi(ev.EventID)
		switch {
		case strings.HasSuffix(ev.EventType, "WORKFLOW_TASK_COMPLETED") || ev.EventType == "WorkflowTaskCompleted":
			task = id
		case ev.Scheduled != nil && ev.Scheduled.ActivityType.Name == "Record", ev.localActivity() == "Record":
			found = task
		}
	}
	if found == 0 {
		t.Fatalf("no Record activity in the history of %s", workflowID)
	}
	return found
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTheRunbookFindsADeletionHeldByAStuckTenantWithTheRealCLI: an
// organisation whose tenant is stuck in provisioning is deleted; once due,
// the runbook's commands (real temporal binary, through the operator
// gateway) find the organisation's saga stuck, name the tenant that holds
// it, and the tenant's repair lets the deletion finish on its own.
func TestTheRunbookFindsADeletionHeldByAStuckTenantWithTheRealCLI(t *testing.T) {
	cli := temporalCLI(t)
	env := append(devEnv(t), "CP_FAULTS=keys=fail:3", "CP_STEP_MAX_ATTEMPTS=2", "CP_ORG_DELETION_GRACE=3s")
	p := startDev(t, env)
	op := newOperator(t, cli, env)
	for _, want := range []string{"org-find", "org-status"} {
		if op.commands[want] == "" {
			t.Fatalf("docs/runbook.md has no runbook:%s block", want)
		}
	}
	d := signInDev(t, p.api)
	tenantID, wf := d.createTenant("alpha")
	stuck := op.stuckAt(wf, "keys")

	_, org := d.do("GET", "/organizations/"+d.org, nil)
	slug := org["data"].(map[string]any)["slug"].(string)
	if code, out := d.do("DELETE", "/organizations/"+d.org, map[string]any{"confirm": slug}); code != 202 {
		t.Fatalf("delete: %d %v", code, out)
	}
	orgWF := "organization/" + d.org
	op.eventually("org-find", target{}, func(out string) bool { return strings.Contains(out, orgWF) })
	out := compact(op.eventually("org-status", target{orgID: d.org}, func(out string) bool {
		return strings.Contains(compact(out), `"stuck_tenants":["`+tenantID+`"]`)
	}))
	if !strings.Contains(out, `"saga":"stuck"`) || !strings.Contains(out, `"phase":"ending_tenants"`) {
		t.Fatalf("org-status of a deletion held by a stuck tenant:\n%s", out)
	}
	op.eventually("find-org", target{orgID: d.org}, func(out string) bool { return strings.Contains(out, wf) })
	// The tenant's repair (keys fails a third time, then passes): it is
	// provisioned, its lifetime is over, it is decommissioned, and the
	// deletion finishes.
	op.run("retry", stuck)
	op.eventually("org-status", target{orgID: d.org}, func(out string) bool {
		return strings.Contains(compact(out), `"saga":"done"`) && strings.Contains(compact(out), `"phase":"done"`)
	})
	if out := op.run("org-find", target{}); strings.Contains(out, orgWF) {
		t.Fatalf("a finished deletion is still listed stuck:\n%s", out)
	}
	// The owner belonged nowhere else: their account, and its sessions, are gone.
	if code, _ := d.do("GET", "/organizations/"+d.org, nil); code != 401 {
		t.Fatalf("the erased owner's session answers %d", code)
	}
}

// TestTheRunbookDescribesAndTriggersTheRetentionScheduleWithTheRealCLI:
// dev's worker made the Schedule; an operator describes it through the
// gateway, triggers it, and sees the run complete.
func TestTheRunbookDescribesAndTriggersTheRetentionScheduleWithTheRealCLI(t *testing.T) {
	cli := temporalCLI(t)
	env := devEnv(t)
	startDev(t, env)
	op := newOperator(t, cli, env)
	for _, want := range []string{"retention-describe", "retention-trigger", "retention-runs"} {
		if op.commands[want] == "" {
			t.Fatalf("docs/runbook.md has no runbook:%s block", want)
		}
	}
	if out := op.run("retention-describe", target{}); !strings.Contains(out, "AuditRetentionWorkflow") {
		t.Fatalf("retention-describe does not show the workflow it starts:\n%s", out)
	}
	op.run("retention-trigger", target{})
	op.eventually("retention-runs", target{}, func(out string) bool { return strings.Contains(out, "Completed") })
}
