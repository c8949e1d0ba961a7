package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/opsgate"
)

// TestAnOperatorIsWhomTheirCertificateNamesAndNobodyElse performs issue 23's
// finding 3 with the real `temporal` CLI against `controlplane dev`: a
// repair that names an operator in its payload, sent with no credentials,
// must be refused and leave nothing in the trail; through the operator
// gateway, only a client certificate of the operators' CA is let in, and
// the trail names the operator that certificate proves, whatever the
// payload says. A terminate and a reset, through the gateway or not, are
// written to the trail, verified or marked unverified.
func TestAnOperatorIsWhomTheirCertificateNamesAndNobodyElse(t *testing.T) {
	cli := temporalCLI(t)
	env := append(devEnv(t), "CP_FAULTS=keys=fail:3", "CP_STEP_MAX_ATTEMPTS=2", "CP_SAGA_WATCH_INTERVAL=200ms")
	p := startDev(t, env)
	op := newOperator(t, cli, env)
	d := signInDev(t, p.api)
	if !strings.Contains(p.out.String(), "Operators    "+lookup(env, "CP_OPERATOR_ADDR")) {
		t.Errorf("the banner does not say where the operator gateway is:\n%s", p.out.String())
	}

	id, wf := d.createTenant("alpha")
	stuck := op.stuckAt(wf, "keys")
	retry := strings.Replace(op.command("retry", stuck), op.cli+" ", "temporal ", 1)
	forged := strings.Replace(retry, `{"operation_id"`, `{"operator":"owner@acme.test","operation_id"`, 1)
	if forged == retry {
		t.Fatal("the runbook's retry has no operation_id to put an operator before")
	}

	// No credentials at all, straight to the frontend: refused by the saga.
	frontend := op.withoutCertificate(lookup(env, "CP_TEMPORAL_ADDRESS"), false)
	if out, err := frontend.try(forged, stuck); err == nil || !strings.Contains(out, "operator gateway") {
		t.Fatalf("a repair naming an operator, without credentials: %v\n%s", err, out)
	}
	// To the gateway without a client certificate, or with one of another
	// CA: no handshake, nothing forwarded.
	if out, err := op.withoutCertificate(op.address, true).try("status", stuck); err == nil {
		t.Fatalf("the gateway answered a CLI without a certificate:\n%s", out)
	}
	other, err := opsgate.NewCA("not the operators' CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := other.IssueOperator("owner@acme.test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "op.pem"), filepath.Join(dir, "op-key.pem")
	if err := os.WriteFile(certPath, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := op.withCertificate(certPath, keyPath).try(forged, stuck); err == nil {
		t.Fatalf("the gateway forwarded a repair from another CA's certificate:\n%s", out)
	}
	if n := d.countEvents(id, "tenant.saga_resolved"); n != 0 {
		t.Fatalf("refused repairs wrote %d resolutions", n)
	}
	// The gateway forwards what the runbook needs, and nothing else.
	if out, err := op.try("temporal workflow start --type TenantWorkflow --task-queue controlplane --workflow-id rogue", target{}); err == nil || !strings.Contains(out, "does not forward") {
		t.Fatalf("a start through the gateway: %v\n%s", err, out)
	}

	// With the operator's certificate: taken, and the trail names the
	// certificate's operator, not the payload's.
	if out := op.run(forged, stuck); !strings.Contains(out, stuck.operationID) {
		t.Fatalf("retry through the gateway answered:\n%s", out)
	}
	d.waitState(id, "active")
	resolved := d.events(id, "tenant.saga_resolved")
	if len(resolved) != 1 || actorOf(resolved[0]) != "operator/"+devOperatorName {
		t.Fatalf("tenant.saga_resolved = %s", toJSON(resolved))
	}

	// An operator sending the API's own update cannot act as a member.
	impersonation := "temporal workflow update execute --workflow-id '" + wf + "' --name transition " +
		`--input '{"Kind":"suspend","Request":{"Actor":{"Type":"member","ID":"mem_01M8XP2QFKXA13QSSPW08MQ13A"},"RequestID":"forged"}}'`
	if out, err := op.try(impersonation, target{}); err == nil || !strings.Contains(out, "acts as the operator") {
		t.Fatalf("a transition through the gateway acting as a member: %v\n%s", err, out)
	}

	// Terminate and reset through the gateway: each in the trail, with the
	// operator verified.
	op.run("temporal workflow terminate --workflow-id '"+wf+"' --reason 'operators test'", target{})
	terminated := d.eventually(id, "tenant.saga_terminated", 1)
	if actorOf(terminated[0]) != "operator/"+devOperatorName || dataOf(terminated[0])["verified"] != true || dataOf(terminated[0])["reason"] != "operators test" {
		t.Fatalf("tenant.saga_terminated = %s", toJSON(terminated))
	}
	op.run("reset", target{workflowID: wf})
	reset := d.eventually(id, "tenant.saga_reset", 1)
	if actorOf(reset[0]) != "operator/"+devOperatorName || dataOf(reset[0])["verified"] != true || !strings.HasSuffix(dataOf(reset[0])["reason"].(string), "runbook test") {
		t.Fatalf("tenant.saga_reset = %s", toJSON(reset))
	}
	op.eventually("status", target{workflowID: wf}, func(out string) bool { return strings.Contains(compact(out), `"saga":"idle"`) })

	// A terminate that did not come through the gateway is written too,
	// naming nobody: the identity its client claims is kept as a claim.
	frontend.run("temporal workflow terminate --workflow-id '"+wf+"' --reason 'rogue'", target{})
	terminated = d.eventually(id, "tenant.saga_terminated", 2)
	rogue := terminated[0]
	if actorOf(rogue) != "operator/unverified" || dataOf(rogue)["verified"] != false || dataOf(rogue)["identity"] == "" || dataOf(rogue)["reason"] != "rogue" {
		t.Fatalf("an unverified terminate = %s", toJSON(rogue))
	}
	if err := p.stop(t, syscall.SIGINT); err != nil {
		t.Fatalf("dev exited with %v", err)
	}
}

// devOperatorName is the operator dev's certificate names.
const devOperatorName = "operator@intelliauth.localhost"

// events are a tenant's audit events of one action, newest first.
func (d *devClient) events(tenantID, action string) []map[string]any {
	d.t.Helper()
	code, out := d.do("GET", "/organizations/"+d.org+"/events?target_id="+tenantID+"&action="+action, nil)
	if code != 200 {
		d.t.Fatalf("events: %d %v", code, out)
	}
	var evs []map[string]any
	for _, e := range out["data"].([]any) {
		evs = append(evs, e.(map[string]any))
	}
	return evs
}

// eventually waits until the tenant has n events of action.
func (d *devClient) eventually(tenantID, action string, n int) []map[string]any {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := d.events(tenantID, action)
		if len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%d %s events after 30s, want %d", len(evs), action, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func actorOf(ev map[string]any) string {
	a, _ := ev["actor"].(map[string]any)
	return a["type"].(string) + "/" + a["id"].(string)
}

func dataOf(ev map[string]any) map[string]any {
	m, _ := ev["data"].(map[string]any)
	return m
}
