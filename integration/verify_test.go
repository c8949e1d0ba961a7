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

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/dataplane"
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
	names := []string{"routeless", "orphaned", "stale", "mislabelled", "ended", "overdue"}
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
	// A lifetime given by hand, over an hour ago: the saga, which was never
	// told, does not end the tenant.
	exec1("UPDATE tenants SET expires_at = now() - interval '1 hour' WHERE id = ?", tenants["overdue"])
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
		drift.CodeTenantPastLifetime + " " + tenants["overdue"],
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
	if text.status != 1 || !strings.Contains(text.out, "10 disagreements") || !strings.Contains(text.out, "tenant_without_workflow") {
		t.Fatalf("verify as text: %d %s", text.status, text.out)
	}
	// With the default settle window, what was just changed by hand is
	// still taken for changes under way; but the ghost schema, which has
	// no row to date it, is not, nor the lifetime that ended an hour ago.
	settled := runVerify(t, dbURL, h.TemporalAddr, tq, "-json")
	got = nil
	for _, f := range settled.findings {
		got = append(got, f.Code+" "+f.TenantID)
	}
	slices.Sort(got)
	if want := []string{drift.CodeResourceWithoutTenant + " " + ghost, drift.CodeTenantPastLifetime + " " + tenants["overdue"]}; settled.status != 1 ||
		!slices.Equal(got, want) {
		t.Fatalf("verify with the default window: %d %q, want %q", settled.status, got, want)
	}
}

// staleTemporal answers as a Temporal whose visibility store has not caught
// up with a workflow's continue-as-new: its list leaves the workflow out
// and, when latestRunID is set, a describe of the workflow's latest run
// answers that run, which continued as new.
type staleTemporal struct {
	client.Client
	workflowID, latestRunID string
}

func (c staleTemporal) ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	resp, err := c.Client.ListWorkflow(ctx, req)
	if err == nil {
		resp.Executions = slices.DeleteFunc(resp.Executions, func(e *workflowpb.WorkflowExecutionInfo) bool {
			return e.GetExecution().GetWorkflowId() == c.workflowID
		})
	}
	return resp, err
}

func (c staleTemporal) DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	if workflowID == c.workflowID && runID == "" && c.latestRunID != "" {
		runID = c.latestRunID
	}
	return c.Client.DescribeWorkflowExecution(ctx, workflowID, runID)
}

// TestVerifyFollowsATenantsWorkflowFromRunToRun checks that a tenant whose
// workflow continued as new is not taken for one without a workflow while
// Temporal's list has not caught up with the new run.
func TestVerifyFollowsATenantsWorkflowFromRunToRun(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	dbURL, db := h.NewDatabase(t, true)
	hd := h.WithDatabase(dbURL, db)
	saga := testSaga(time.Hour)
	saga.MaxOperationsPerRun = 2
	l := newLifecycleOn(t, hd, nil, saga, nil)
	w := newWorld(t, hd, "team")
	tn := l.createActive(t, w, "enduring")
	first := describeRun(t, h, tn.WorkflowID)
	// Two operations end the run (MaxOperationsPerRun).
	for _, op := range []struct {
		kind string
		then domain.State
	}{{"suspend", domain.StateSuspended}, {"resume", domain.StateActive}} {
		if r := l.transition(t, w, domain.RoleDeveloper, tn.ID, op.kind, ""); r.Status != 202 {
			t.Fatalf("%s: %d %s", op.kind, r.Status, r.Raw)
		}
		l.waitState(t, w, tn.ID, op.then)
	}
	eventually(t, func() bool { return describeRun(t, h, tn.WorkflowID) != first })
	src := drift.Sources{DB: db, Temporal: h.Temporal, Namespace: harness.Namespace, TaskQueue: l.deps.TaskQueue,
		WorkflowType: workflows.TenantWorkflowType, Plane: l.dp}
	var findings []drift.Finding
	collect := func() []drift.Finding {
		t.Helper()
		snap, err := drift.Collect(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		findings = drift.Compare(snap, 0)
		return findings
	}
	// Once the list has caught up, there is no drift.
	eventually(t, func() bool { return len(collect()) == 0 })

	for _, c := range []struct {
		name     string
		temporal staleTemporal
	}{
		{"the list leaves out the new run", staleTemporal{Client: h.Temporal, workflowID: tn.WorkflowID}},
		{"describe answers the run that continued as new", staleTemporal{Client: h.Temporal, workflowID: tn.WorkflowID, latestRunID: first}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src.Temporal = c.temporal
			if f := collect(); len(f) != 0 {
				t.Fatalf("findings = %+v", f)
			}
		})
	}
}

// TestVerifyFindsASagaWhoseWorkflowTaskKeepsFailing runs a tenant workflow
// on a worker whose code for it panics, as a build that broke determinism
// does on every replay, and checks that verify names it with the panic.
func TestVerifyFindsASagaWhoseWorkflowTaskKeepsFailing(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	dbURL, db := h.NewDatabase(t, true)
	if err := (&dataplane.Postgres{DB: db, Keys: testKeys()}).Init(ctx); err != nil {
		t.Fatal(err)
	}
	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(workflow.Context, workflows.TenantParams) error {
			panic("drift drill: this build cannot run tenant sagas")
		}, workflow.RegisterOptions{Name: workflows.TenantWorkflowType})
	})
	id := domain.NewID(domain.PrefixTenant)
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "tenant-" + id, TaskQueue: tq,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SearchAttrTenantID.ValueSet(id))}, workflows.TenantWorkflowType,
		workflows.TenantParams{TenantID: id, OrgID: "org_drill", Name: "broken", Environment: "prod", Hostname: "broken.example.test",
			StepMaxAttempts: 2, DecommissionGrace: time.Second, ReservationTimeout: time.Hour, MaxOperationsPerRun: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "drift drill over") })

	var r verifyRun
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last verify: status %d, findings %+v\n%s", r.status, r.findings, r.out)
		}
	})
	var failing drift.Finding
	eventually(t, func() bool {
		r = runVerify(t, dbURL, h.TemporalAddr, tq, "-settle", "0s", "-json")
		for _, f := range r.findings {
			if f.Code == drift.CodeWorkflowTaskFailing {
				failing = f
			}
		}
		return r.status == 1 && failing.Code != ""
	})
	if failing.TenantID != id || failing.WorkflowID != run.GetID() || !strings.Contains(failing.Detail, "drift drill: this build cannot run tenant sagas") {
		t.Fatalf("finding %+v", failing)
	}
	// The workflow has no tenant row either; nothing else is drift.
	if len(r.findings) != 2 {
		t.Fatalf("findings %+v", r.findings)
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
