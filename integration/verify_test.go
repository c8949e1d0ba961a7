package integration

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/drift"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// verifyRun is one run of `controlplane verify`.
type verifyRun struct {
	status   int
	out      string
	compared map[string]int
	findings []drift.Finding
}

// runVerify runs `controlplane verify -json` and more args against a
// database, a Temporal frontend and a task queue.
func runVerify(t testing.TB, dbURL, temporalAddr, taskQueue string, args ...string) verifyRun {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"verify"}, args...)...)
	cmd.Env = append(os.Environ(), "CP_DATABASE_URL="+dbURL, "CP_TEMPORAL_ADDRESS="+temporalAddr, "CP_TASK_QUEUE="+taskQueue,
		"CP_TEMPORAL_NAMESPACE="+harness.Namespace, "CP_LOG_FORMAT=json")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := verifyRun{out: stdout.String() + stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.status = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	if slices.Contains(args, "-json") && (r.status == 0 || r.status == 1) {
		var doc struct {
			Compared map[string]int  `json:"compared"`
			Findings []drift.Finding `json:"findings"`
		}
		if err := json.Unmarshal([]byte(stdout.String()), &doc); err != nil {
			t.Fatalf("verify -json printed %q: %v", stdout.String(), err)
		}
		r.compared, r.findings = doc.Compared, doc.Findings
	}
	return r
}

// TestVerifyListsEveryDisagreementMadeByHand provisions tenants on a
// database of their own, checks that `controlplane verify` finds nothing,
// then makes each kind of drift by hand (behind the control plane's back,
// as a bad manual repair or a lost write would) and checks that verify
// lists exactly those, with exit status 1.
func TestVerifyListsEveryDisagreementMadeByHand(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	dbURL, db := h.NewDatabase(t, true)
	hd := h.WithDatabase(dbURL, db)
	l := newLifecycleOn(t, hd, nil, testSaga(time.Second), nil)
	w := newWorld(t, hd, "team")
	tq := l.deps.TaskQueue
	names := []string{"routeless", "orphaned", "stale", "mislabelled", "ended"}
	tenants := map[string]string{} // name → id
	for _, n := range names {
		tn := l.createActive(t, w, n)
		tenants[n] = tn.ID
	}

	// In agreement: no drift (the saga status in Temporal's visibility
	// store may lag the last write by a moment).
	var clean verifyRun
	eventually(t, func() bool {
		clean = runVerify(t, dbURL, h.TemporalAddr, tq, "-settle", "0s", "-json")
		return clean.status == 0
	})
	if len(clean.findings) != 0 || clean.compared["tenants"] != len(names) || clean.compared["running_workflows"] != len(names) ||
		clean.compared["tenants_with_resources"] != len(names) {
		t.Fatalf("clean verify: %+v", clean)
	}
	if r := runVerify(t, dbURL, h.TemporalAddr, tq, "-settle", "0s"); r.status != 0 || !strings.Contains(r.out, "no drift") {
		t.Fatalf("clean verify, as text: %d %s", r.status, r.out)
	}

	// A route deleted by hand: the active tenant lacks it.
	exec1 := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec1("DELETE FROM dataplane.routes WHERE tenant_id = ?", tenants["routeless"])
	// A workflow terminated by hand: nothing carries the tenant any more.
	var orphaned string
	if err := db.NewRaw("SELECT workflow_id FROM tenants WHERE id = ?", tenants["orphaned"]).Scan(ctx, &orphaned); err != nil {
		t.Fatal(err)
	}
	if err := h.Temporal.TerminateWorkflow(ctx, orphaned, "", "drift drill"); err != nil {
		t.Fatal(err)
	}
	// An operation marked running again by hand while the saga is idle.
	var staleOp string
	if err := db.NewRaw("UPDATE operations SET status = 'running', ended_at = NULL WHERE tenant_id = ? RETURNING id", tenants["stale"]).Scan(ctx, &staleOp); err != nil {
		t.Fatal(err)
	}
	// A row set to suspended by hand: the idle saga says active and the
	// route is still enabled.
	exec1("UPDATE tenants SET state = 'suspended' WHERE id = ?", tenants["mislabelled"])
	// A row set to decommissioned by hand: its workflow still runs and its
	// resources are still there.
	exec1("UPDATE tenants SET state = 'decommissioned' WHERE id = ?", tenants["ended"])
	// A schema nobody owns.
	ghost := domain.NewID(domain.PrefixTenant)
	exec1("CREATE SCHEMA tenant_" + strings.ToLower(strings.TrimPrefix(ghost, "tnt_")))
	// A workflow started by hand with no tenant row (its provision update
	// never comes).
	stray := domain.NewID(domain.PrefixTenant)
	if _, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "tenant-" + stray, TaskQueue: tq}, workflows.TenantWorkflow,
		workflows.TenantParams{TenantID: stray, OrgID: w.Org.ID, Name: "stray", Environment: "prod", Hostname: "stray.example.test",
			StepMaxAttempts: 2, DecommissionGrace: time.Second, ReservationTimeout: time.Hour, MaxOperationsPerRun: 100}); err != nil {
		t.Fatal(err)
	}

	want := []string{
		drift.CodeOperationWithoutSaga + " " + tenants["stale"],
		drift.CodeResourceMissing + " " + tenants["routeless"],
		drift.CodeResourceWithoutTenant + " " + ghost,
		drift.CodeResourceWithoutTenant + " " + tenants["ended"],
		drift.CodeRouteMismatch + " " + tenants["mislabelled"],
		drift.CodeStateMismatch + " " + tenants["mislabelled"],
		drift.CodeTenantWithoutWorkflow + " " + tenants["orphaned"],
		drift.CodeWorkflowForEndedTenant + " " + tenants["ended"],
		drift.CodeWorkflowWithoutTenant + " " + stray,
	}
	slices.Sort(want)
	var got []string
	var r verifyRun
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last verify: status %d, findings %q\n%s", r.status, got, r.out)
		}
	})
	eventually(t, func() bool {
		r = runVerify(t, dbURL, h.TemporalAddr, tq, "-settle", "0s", "-json")
		got = nil
		for _, f := range r.findings {
			got = append(got, f.Code+" "+f.TenantID)
		}
		slices.Sort(got)
		return r.status == 1 && slices.Equal(got, want)
	})
	for _, f := range r.findings {
		if f.Code == drift.CodeOperationWithoutSaga && f.OperationID != staleOp {
			t.Errorf("operation finding names %s, want %s", f.OperationID, staleOp)
		}
		if f.Code == drift.CodeTenantWithoutWorkflow && !strings.Contains(f.Detail, "Terminated") {
			t.Errorf("tenant without workflow: %q does not say the workflow was terminated", f.Detail)
		}
	}
	text := runVerify(t, dbURL, h.TemporalAddr, tq, "-settle", "0s")
	if text.status != 1 || !strings.Contains(text.out, "9 disagreements") || !strings.Contains(text.out, "tenant_without_workflow") {
		t.Fatalf("verify as text: %d %s", text.status, text.out)
	}
	// With the default settle window, what was just changed by hand is
	// still taken for changes under way (but the ghost schema, which has
	// no row to date it, is not).
	if settled := runVerify(t, dbURL, h.TemporalAddr, tq, "-json"); settled.status != 1 || len(settled.findings) != 1 ||
		settled.findings[0].TenantID != ghost {
		t.Fatalf("verify with the default window: %d %+v", settled.status, settled.findings)
	}
}

func TestVerifyTellsUsageAndUnreadableSourcesApartFromDrift(t *testing.T) {
	h := harness.Get(t)
	dbURL, _ := h.NewDatabase(t, true)
	tq := harness.TaskQueue(t)
	for _, args := range [][]string{{"-bogus"}, {"extra"}, {"-settle", "soon"}} {
		if r := runVerify(t, dbURL, h.TemporalAddr, tq, args...); r.status != 2 {
			t.Errorf("verify %v: status %d, want 2 (usage)\n%s", args, r.status, r.out)
		}
	}
	if r := runVerify(t, dbURL, freeAddr(t), tq); r.status != 3 || !strings.Contains(r.out, "temporal") {
		t.Errorf("verify with no Temporal: status %d, want 3\n%s", r.status, r.out)
	}
	bad := strings.Replace(dbURL, "/cp_test_", "/cp_missing_", 1)
	if r := runVerify(t, bad, h.TemporalAddr, tq); r.status != 3 {
		t.Errorf("verify with no database: status %d, want 3\n%s", r.status, r.out)
	}
	// The data plane's tables do not exist yet in a database no worker
	// has used: that is a source that cannot be read, not drift.
	if r := runVerify(t, dbURL, h.TemporalAddr, tq); r.status != 3 || !strings.Contains(r.out, "data plane") {
		t.Errorf("verify before any worker ran: status %d, want 3\n%s", r.status, r.out)
	}
}
