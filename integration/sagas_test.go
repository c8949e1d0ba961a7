package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/telemetry"
	"github.com/intelliauth/controlplane/workflows"
)

// transition asks for a transition as a member, with an Idempotency-Key.
func (l lifecycle) transition(t *testing.T, w world, who domain.Role, tenantID, action, key string) response {
	t.Helper()
	return httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tenantID+"/"+action), w.People[who].Token, nil, key)
}

func (l lifecycle) createActive(t *testing.T, w world, name string) store.Tenant {
	t.Helper()
	return l.waitState(t, w, l.accepted(t, w, name, "").Tenant.ID, domain.StateActive)
}

// accepted creates a tenant (key "": a new Idempotency-Key) and returns
// the 202's tenant and operation.
func (l lifecycle) accepted(t *testing.T, w world, name, key string) lifecycleData {
	t.Helper()
	r := l.create(t, w, name, key)
	if r.Status != 202 {
		t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
	}
	var d lifecycleData
	r.data(t, &d)
	return d
}

// waitSagaCount waits until the saga metric of the task queue counts want
// sagas of the status, as an operator's alert on stuck sagas would see it.
func waitSagaCount(t *testing.T, h *harness.Harness, taskQueue, status string, want int64) {
	t.Helper()
	sagas := telemetry.NewSagas(h.Temporal, harness.Namespace, workflows.TenantWorkflowType, taskQueue, h.Log)
	sagas.MaxAge = 0
	var got map[string]int64
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got, err = sagas.Counts(context.Background()); err == nil && got[status] == want {
			return
		}
	}
	t.Fatalf("sagas on %s = %v (%v), want %s = %d", taskQueue, got, err, status, want)
}

func TestADestructionThatSticksCanOnlyBeRetriedAndEndsWithNothingLeft(t *testing.T) {
	h := harness.Get(t)
	saga := testSaga(time.Second)
	l := newLifecycleWith(t, map[domain.Step]dataplane.Fault{domain.StepDeleteKeys: {Fail: true, Count: 2}}, saga, nil)
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "doomed")
	if r := l.transition(t, w, domain.RoleAdmin, tn.ID, "decommission", ""); r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	st := waitStuck(t, h, tn.WorkflowID, domain.StepDeleteKeys)
	waitSagaCount(t, h, l.deps.TaskQueue, "stuck", 1)
	if st.Operation.Phase != workflows.PhaseDestroying || len(st.Operation.Repairs) != 1 || st.Operation.Repairs[0] != workflows.RepairRetry {
		t.Fatalf("status while destruction is stuck: %+v", st.Operation)
	}
	in := workflows.RepairRequest{Operator: "dora", OperationID: st.Operation.ID, Step: string(domain.StepDeleteKeys)}
	for _, r := range []workflows.Repair{workflows.RepairCompensate, workflows.RepairCancel} {
		if _, err := repair(h, tn.WorkflowID, r, in); err == nil || !strings.Contains(err.Error(), "does not apply") {
			t.Fatalf("%s during destruction: %v", r, err)
		}
	}
	if r := l.transition(t, w, domain.RoleAdmin, tn.ID, "restore", ""); r.Status != 409 {
		t.Fatalf("restore during destruction: %d %s", r.Status, r.Raw)
	}
	if res, err := repair(h, tn.WorkflowID, workflows.RepairRetry, in); err != nil || res.OperationID != st.Operation.ID || res.Step != "delete_keys" {
		t.Fatalf("retry: %+v %v", res, err)
	}
	gone := l.waitState(t, w, tn.ID, domain.StateDecommissioned)
	if res := l.resources(t, gone); res.Any() {
		t.Fatalf("decommissioned but resources remain: %+v", res)
	}
	waitSagaCount(t, h, l.deps.TaskQueue, "stuck", 0)
	recordHistory(t, h, tn.WorkflowID, "", "stuck-destruction")
	// The repair came through the operator gateway: its history carries the
	// assertion in the update's header (recorded once per revision).
	recordHistory(t, h, tn.WorkflowID, "", "stuck-destruction-verified")
}

func TestAnOperatorCancelsADecommissionInItsGracePeriod(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycleWith(t, nil, testSaga(time.Hour), nil)
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "spared")
	if r := l.transition(t, w, domain.RoleOwner, tn.ID, "decommission", ""); r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateDecommissioning)
	st := status(t, h, tn.WorkflowID)
	if st.Operation == nil || st.Operation.Phase != workflows.PhaseGracePeriod || st.Operation.Step != domain.StepGracePeriod || st.Operation.GraceEndsAt == nil {
		t.Fatalf("status in the grace period: %+v", st.Operation)
	}
	if _, err := repair(h, tn.WorkflowID, workflows.RepairCancel, workflows.RepairRequest{OperationID: st.Operation.ID, Step: domain.StepGracePeriod}); err == nil {
		t.Fatal("a cancel that names no operator was taken")
	}
	if _, err := repair(h, tn.WorkflowID, workflows.RepairCancel, workflows.RepairRequest{Operator: "erin", OperationID: st.Operation.ID, Step: domain.StepGracePeriod}); err != nil {
		t.Fatal(err)
	}
	back := l.waitState(t, w, tn.ID, domain.StateSuspended)
	if res := l.resources(t, back); !res.Schema || !res.Keys || !res.Route || res.RouteEnabled {
		t.Fatalf("restored without its resources: %+v", res)
	}
	var actor string
	if err := h.DB.NewRaw("SELECT actor_id FROM audit_events WHERE target_id = ? AND action = 'tenant.restored'", tn.ID).Scan(context.Background(), &actor); err != nil || actor != "erin" {
		t.Fatalf("tenant.restored actor = %q, %v", actor, err)
	}
	recordHistory(t, h, tn.WorkflowID, "", "cancel")
	// The repair came through the operator gateway: its history carries the
	// assertion in the update's header (recorded once per revision).
	recordHistory(t, h, tn.WorkflowID, "", "cancel-verified")
}

func TestADecommissionInItsGracePeriodShowsWhenTheGracePeriodEnds(t *testing.T) {
	h := harness.Get(t)
	const grace = time.Hour
	l := newLifecycleWith(t, nil, testSaga(grace), nil)
	w := newWorld(t, h, "team")
	viewer := w.People[domain.RoleViewer]
	tn := l.createActive(t, w, "graceful")
	before := time.Now()
	r := l.transition(t, w, domain.RoleAdmin, tn.ID, "decommission", "")
	if r.Status != 202 {
		t.Fatalf("decommission: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateDecommissioning)
	after := time.Now()

	var ops []store.Operation
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID+"/operations"), viewer.Token, nil).data(t, &ops)
	if len(ops) != 2 || ops[0].Kind != "provision" || ops[1].Kind != "decommission" {
		t.Fatalf("operations = %+v", ops)
	}
	if ops[0].GraceEndsAt != nil {
		t.Errorf("a provisioning has a grace period ending at %v", ops[0].GraceEndsAt)
	}
	ends := ops[1].GraceEndsAt
	// The workflow's clock is the Temporal server's, on this machine.
	if ends == nil || ends.Before(before.Add(grace-time.Second)) || ends.After(after.Add(grace+time.Second)) {
		t.Fatalf("grace_ends_at = %v, want within a second of %v…%v", ends, before.Add(grace), after.Add(grace))
	}
	// The API and the operators' status query say the same.
	if st := status(t, h, tn.WorkflowID); st.Operation == nil || st.Operation.GraceEndsAt == nil || !st.Operation.GraceEndsAt.Equal(*ends) {
		t.Fatalf("status query: %+v, the API: %v", st.Operation, ends)
	}

	// A restore answers with the decommission it called off, which keeps
	// the end of the grace period it was in.
	restore := l.transition(t, w, domain.RoleAdmin, tn.ID, "restore", "")
	if restore.Status != 202 {
		t.Fatalf("restore: %d %s", restore.Status, restore.Raw)
	}
	var d lifecycleData
	restore.data(t, &d)
	if d.Operation.ID != ops[1].ID || d.Operation.GraceEndsAt == nil || !d.Operation.GraceEndsAt.Equal(*ends) {
		t.Fatalf("the restore's answer: %+v", d.Operation)
	}
	l.waitState(t, w, tn.ID, domain.StateSuspended)
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID+"/operations"), viewer.Token, nil).data(t, &ops)
	if last := ops[len(ops)-1]; last.Status != "cancelled" || last.GraceEndsAt == nil || !last.GraceEndsAt.Equal(*ends) {
		t.Fatalf("the restored decommission: %+v", last)
	}
}

func TestARetryAfterTheWorkflowContinuedAsNewIsAnsweredNotRunAgain(t *testing.T) {
	h := harness.Get(t)
	saga := testSaga(time.Hour)
	saga.MaxOperationsPerRun = 2
	l := newLifecycleWith(t, nil, saga, nil)
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "enduring")
	first := describeRun(t, h, tn.WorkflowID)
	suspend := l.transition(t, w, domain.RoleDeveloper, tn.ID, "suspend", "suspend-once")
	if suspend.Status != 202 {
		t.Fatalf("suspend: %d %s", suspend.Status, suspend.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateSuspended)
	if r := l.transition(t, w, domain.RoleDeveloper, tn.ID, "resume", ""); r.Status != 202 {
		t.Fatalf("resume: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateActive)
	deadline := time.Now().Add(30 * time.Second)
	for describeRun(t, h, tn.WorkflowID) == first {
		if time.Now().After(deadline) {
			t.Fatal("the workflow did not continue as new after two operations")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The suspend's retry reaches the new run: the same answer, and the
	// tenant stays active.
	again := l.transition(t, w, domain.RoleDeveloper, tn.ID, "suspend", "suspend-once")
	if again.Status != 202 || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry after continue-as-new: %d %s", again.Status, again.Raw)
	}
	var a, b lifecycleData
	suspend.data(t, &a)
	again.data(t, &b)
	if a.Operation.ID != b.Operation.ID {
		t.Fatalf("the retry began operation %s, the first request %s", b.Operation.ID, a.Operation.ID)
	}
	time.Sleep(500 * time.Millisecond)
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM operations WHERE tenant_id = ? AND kind = 'suspend'", tn.ID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("suspend operations = %d, %v", n, err)
	}
	if got := l.waitState(t, w, tn.ID, domain.StateActive); got.CurrentOperationID != nil {
		t.Fatalf("an operation runs after the retry: %+v", got)
	}
	recordHistory(t, h, tn.WorkflowID, first, "continued")
	// A new request runs in the new run.
	if r := l.transition(t, w, domain.RoleDeveloper, tn.ID, "suspend", "suspend-twice"); r.Status != 202 || r.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("a new suspend: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateSuspended)
	recordHistory(t, h, tn.WorkflowID, "", "after-continue")
}

func describeRun(t *testing.T, h *harness.Harness, workflowID string) string {
	t.Helper()
	d, err := h.Temporal.DescribeWorkflowExecution(context.Background(), workflowID, "")
	if err != nil {
		t.Fatal(err)
	}
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

func TestADatabaseOutageIsAnswered503AndTheSameKeyWorksAfterwards(t *testing.T) {
	h := harness.Get(t)
	proxy, url := newDatabaseProxy(t, h.DatabaseURL)
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l := newLifecycleWith(t, nil, testSaga(time.Hour), db)
	w := newWorld(t, h, "team")
	tn := l.createActive(t, w, "steady")

	// The workers' database fails over for longer than a request waits.
	proxy.setDown(true)
	outage := time.Now()
	created := l.create(t, w, "during", "create-during-outage")
	suspended := l.transition(t, w, domain.RoleDeveloper, tn.ID, "suspend", "suspend-during-outage")
	for name, r := range map[string]response{"create": created, "suspend": suspended} {
		if r.Status != 503 || r.code() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%s during the outage: %d %s", name, r.Status, r.Raw)
		}
	}
	time.Sleep(time.Until(outage.Add(8 * time.Second)))
	proxy.setDown(false)

	// The same keys work once it is back.
	var c lifecycleData
	eventually(t, func() bool {
		r := l.create(t, w, "during", "create-during-outage")
		if r.Status == 202 {
			r.data(t, &c)
		}
		return r.Status == 202
	})
	l.waitState(t, w, c.Tenant.ID, domain.StateActive)
	eventually(t, func() bool {
		return l.transition(t, w, domain.RoleDeveloper, tn.ID, "suspend", "suspend-during-outage").Status == 202
	})
	l.waitState(t, w, tn.ID, domain.StateSuspended)
	// Nothing is left behind: the tenant takes the next operation.
	if r := l.transition(t, w, domain.RoleDeveloper, tn.ID, "resume", ""); r.Status != 202 {
		t.Fatalf("resume after the outage: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateActive)
}

// eventually retries ok for up to 60 s.
func eventually(t testing.TB, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("never happened")
		}
		time.Sleep(250 * time.Millisecond)
	}
}
