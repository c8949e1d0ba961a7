package integration

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/codec"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/opsgate"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// lifecycle is an API with its own worker and task queue, a short grace
// period and bounded retries, and optional fault drills.
type lifecycle struct {
	srv *api.Server
	dp  *dataplane.Postgres
	// deps built srv, for another server on the same worker.
	deps api.Deps
}

func newLifecycle(t *testing.T, faults map[domain.Step]dataplane.Fault) lifecycle {
	t.Helper()
	return newLifecycleWith(t, faults, testSaga(2*time.Second), nil)
}

// newLifecycleWith is newLifecycle with saga settings, and the database the
// worker's activities write through (nil: the harness's).
func newLifecycleWith(t *testing.T, faults map[domain.Step]dataplane.Fault, saga config.Saga, activityDB *bun.DB) lifecycle {
	t.Helper()
	return newLifecycleOn(t, harness.Get(t), faults, saga, activityDB)
}

// newLifecycleOn is newLifecycleWith on the harness h (one with a database
// of its own, say).
func newLifecycleOn(t *testing.T, h *harness.Harness, faults map[domain.Step]dataplane.Fault, saga config.Saga, activityDB *bun.DB) lifecycle {
	t.Helper()
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	var plane dataplane.Plane = dp
	if faults != nil {
		plane = &dataplane.Faulty{Inner: dp, Faults: faults}
	}
	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterActivity(&activities.Activities{DB: cmp.Or(activityDB, h.DB), DataPlane: plane})
	})
	deps := api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, Saga: saga, WorkerBound: 2 * time.Second}
	return lifecycle{srv: api.New(deps), dp: dp, deps: deps}
}

// testSaga is the saga settings of the tests: two attempts per step and
// the grace period given.
func testSaga(grace time.Duration) config.Saga {
	s := config.DefaultSaga()
	s.StepMaxAttempts, s.DecommissionGrace = 2, grace
	return s
}

// waitStuck polls the tenant's status query until its saga is stuck on the
// step.
func waitStuck(t *testing.T, h *harness.Harness, workflowID string, step domain.Step) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := status(t, h, workflowID)
		if st.Saga == workflows.SagaStuck && st.Operation != nil && st.Operation.Stuck && st.Operation.Step == string(step) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stuck on %s: %+v", step, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func status(t *testing.T, h *harness.Harness, workflowID string) workflows.Status {
	t.Helper()
	v, err := h.Temporal.QueryWorkflow(context.Background(), workflowID, "", workflows.QueryStatus)
	if err != nil {
		t.Fatal(err)
	}
	var st workflows.Status
	if err := v.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// repair sends an operator's repair update and waits for its answer, as
// the operator gateway forwards it for in.Operator's certificate (none:
// as sent to the frontend without the gateway).
func repair(h *harness.Harness, workflowID string, r workflows.Repair, in workflows.RepairRequest) (workflows.RepairResult, error) {
	var res workflows.RepairResult
	dc := codec.DataConverter(h.Keys)
	args, err := dc.ToPayloads(in)
	if err != nil {
		return res, err
	}
	req := &workflowservice.UpdateWorkflowExecutionRequest{Namespace: harness.Namespace,
		WorkflowExecution: &commonpb.WorkflowExecution{WorkflowId: workflowID},
		WaitPolicy:        &updatepb.WaitPolicy{LifecycleStage: enumspb.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED},
		Request: &updatepb.Request{Meta: &updatepb.Meta{UpdateId: uuid.NewString()},
			Input: &updatepb.Input{Name: string(r), Args: args}}}
	if in.Operator != "" {
		gw := &opsgate.Gateway{Keys: h.Keys, Namespace: harness.Namespace}
		if _, err := gw.Stamp(req, in.Operator); err != nil {
			return res, err
		}
	}
	resp, err := h.Temporal.WorkflowService().UpdateWorkflowExecution(context.Background(), req)
	if err != nil {
		return res, err
	}
	if f := resp.GetOutcome().GetFailure(); f != nil {
		return res, errors.New(f.GetMessage())
	}
	err = dc.FromPayloads(resp.GetOutcome().GetSuccess(), &res)
	return res, err
}

type lifecycleData struct {
	Tenant    store.Tenant    `json:"tenant"`
	Operation store.Operation `json:"operation"`
}

func (l lifecycle) create(t *testing.T, w world, name, key string) response {
	t.Helper()
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), w.People[domain.RoleDeveloper].Token, map[string]any{"name": name, "environment": "prod"}, key)
	return r
}

// waitState polls the tenant until it reaches the state.
func (l lifecycle) waitState(t *testing.T, w world, id string, state domain.State) store.Tenant {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var tn store.Tenant
	for time.Now().Before(deadline) {
		r := req(t, l.srv, "GET", orgPath(w, "/tenants/"+id), w.People[domain.RoleViewer].Token, nil)
		if r.Status != 200 {
			t.Fatalf("get tenant: %d %s", r.Status, r.Raw)
		}
		r.data(t, &tn)
		if tn.State == string(state) {
			return tn
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("tenant %s is %s after 60s, want %s", id, tn.State, state)
	return tn
}

func (l lifecycle) resources(t *testing.T, tn store.Tenant) dataplane.Resources {
	t.Helper()
	r, err := l.dp.Inspect(context.Background(), dataplane.Ref{TenantID: tn.ID, OrgID: tn.OrgID, Hostname: tn.Hostname})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestATenantLivesItsWholeLifecycleThroughHTTP(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	dev, admin := w.People[domain.RoleDeveloper], w.People[domain.RoleAdmin]

	r := l.create(t, w, "prod", "")
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Raw)
	}
	var created lifecycleData
	r.data(t, &created)
	if created.Tenant.State != "provisioning" || created.Tenant.Hostname != "prod-"+w.Org.Slug+".intelliauth.localhost" || created.Operation.Kind != "provision" {
		t.Fatalf("created = %+v", created)
	}
	// Read your writes: listed at once.
	if r := req(t, l.srv, "GET", orgPath(w, "/tenants?state=provisioning"), dev.Token, nil); !strings.Contains(r.Raw, created.Tenant.ID) {
		if r2 := req(t, l.srv, "GET", orgPath(w, "/tenants"), dev.Token, nil); !strings.Contains(r2.Raw, created.Tenant.ID) {
			t.Fatalf("not listed at once: %s", r2.Raw)
		}
	}
	if r := l.create(t, w, "prod", ""); r.Status != 409 || !strings.Contains(r.Env.Error.Message, "taken") {
		t.Fatalf("a second tenant with the name: %d %s", r.Status, r.Raw)
	}
	tn := l.waitState(t, w, created.Tenant.ID, domain.StateActive)
	if res := l.resources(t, tn); !res.Schema || !res.Keys || !res.Route || !res.RouteEnabled {
		t.Fatalf("active without its resources: %+v", res)
	}

	steps := []struct {
		who    person
		action string
		status int
		state  domain.State
	}{
		{dev, "resume", 409, ""},
		{dev, "suspend", 202, domain.StateSuspended},
		{dev, "suspend", 409, ""},
		{dev, "resume", 202, domain.StateActive},
		{dev, "decommission", 403, ""},
		{admin, "restore", 409, ""},
		{admin, "decommission", 202, domain.StateDecommissioning},
		{admin, "restore", 202, domain.StateSuspended},
		{admin, "decommission", 202, domain.StateDecommissioned},
		{admin, "resume", 409, ""},
	}
	for i, s := range steps {
		r := req(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/"+s.action), s.who.Token, nil)
		if r.Status != s.status {
			t.Fatalf("step %d %s by %s: %d %s", i, s.action, s.who.Role, r.Status, r.Raw)
		}
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("step %d %s: a first request answered as a replay", i, s.action)
		}
		if s.state != "" {
			l.waitState(t, w, tn.ID, s.state)
		}
		if s.state == domain.StateSuspended {
			if res := l.resources(t, tn); res.RouteEnabled || !res.Route {
				t.Fatalf("suspended but routed: %+v", res)
			}
		}
	}
	if res := l.resources(t, tn); res.Any() {
		t.Fatalf("decommissioned but resources remain: %+v", res)
	}

	var ops []store.Operation
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+tn.ID+"/operations"), dev.Token, nil).data(t, &ops)
	var kinds []string
	for _, op := range ops {
		kinds = append(kinds, op.Kind+":"+op.Status)
	}
	want := "provision:succeeded suspend:succeeded resume:succeeded decommission:cancelled decommission:succeeded"
	if strings.Join(kinds, " ") != want {
		t.Fatalf("operations = %v\nwant %s", kinds, want)
	}
	var actions []string
	if err := h.DB.NewRaw("SELECT action FROM audit_events WHERE target_id = ? ORDER BY occurred_at, id", tn.ID).Scan(context.Background(), &actions); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"tenant.create_requested", "tenant.provisioned", "tenant.suspended", "tenant.resumed", "tenant.decommission_requested", "tenant.restored", "tenant.decommissioned"} {
		if !strings.Contains(strings.Join(actions, " "), a) {
			t.Errorf("no %s event in %v", a, actions)
		}
	}
	recordHistory(t, h, tn.WorkflowID, "", "lifecycle")
	// The name is free again.
	if r := l.create(t, w, "prod", ""); r.Status != 202 {
		t.Fatalf("the name after decommission: %d %s", r.Status, r.Raw)
	}
}

func TestConcurrentIdenticalCreatesMakeOneTenant(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	key := "create-" + uniq()
	const n = 50
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() { results[i] = l.create(t, w, "staging", key) })
	}
	wg.Wait()
	ids := map[string]bool{}
	replayed := 0
	for _, r := range results {
		if r.Status != 202 {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		var d lifecycleData
		r.data(t, &d)
		ids[d.Tenant.ID] = true
		if r.Header.Get("Idempotent-Replayed") == "true" {
			replayed++
		}
	}
	var tenants int
	if err := h.DB.NewRaw("SELECT count(*) FROM tenants WHERE org_id = ?", w.Org.ID).Scan(context.Background(), &tenants); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || tenants != 1 || replayed != n-1 {
		t.Fatalf("ids = %v, tenants = %d, replayed = %d", ids, tenants, replayed)
	}
	var workflows int
	if err := h.DB.NewRaw("SELECT count(DISTINCT workflow_id) FROM operations WHERE org_id = ?", w.Org.ID).Scan(context.Background(), &workflows); err != nil || workflows != 1 {
		t.Fatalf("workflows = %d, %v", workflows, err)
	}
	// Every answer is the same body but for its own meta.
	first := results[0].Env.Data
	for _, r := range results[1:] {
		if string(r.Env.Data) != string(first) {
			t.Fatalf("answers differ:\n%s\n%s", first, r.Env.Data)
		}
	}
	// Later, after provisioning, a retry still gets the original answer.
	var d lifecycleData
	results[0].data(t, &d)
	l.waitState(t, w, d.Tenant.ID, domain.StateActive)
	if r := l.create(t, w, "staging", key); r.Status != 202 || string(r.Env.Data) != string(first) || r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a late retry: %d %s\nwant %s", r.Status, r.Env.Data, first)
	}
	if r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants"), w.People[domain.RoleOwner].Token, map[string]any{"name": "other", "environment": "prod"}, key); r.Status != 422 || r.code() != "IDEMPOTENCY_KEY_REUSED" {
		t.Fatalf("key reuse: %d %s", r.Status, r.Raw)
	}
}

func TestAFailedProvisioningStepIsStuckThenCompensatedWithNothingLeft(t *testing.T) {
	for i, step := range domain.MustTransition(domain.OpProvision).StepsFrom("") {
		t.Run("at "+string(step), func(t *testing.T) { failAt(t, step, i) })
	}
}

// failAt makes every attempt of one provisioning step fail, compensates the
// stuck saga, and checks that nothing of the tenant is left.
func failAt(t *testing.T, step domain.Step, index int) {
	h := harness.Get(t)
	l := newLifecycle(t, map[domain.Step]dataplane.Fault{step: {Fail: true}})
	w := newWorld(t, h, "team")
	d := l.accepted(t, w, "broken", "")
	wfID := d.Tenant.WorkflowID
	// Stuck after its bounded retries.
	st := waitStuck(t, h, wfID, step)
	var ops []store.Operation
	req(t, l.srv, "GET", orgPath(w, "/tenants/"+d.Tenant.ID+"/operations"), w.People[domain.RoleViewer].Token, nil).data(t, &ops)
	if len(ops) != 1 || ops[0].Status != "stuck" || ops[0].Steps[index].Attempts != 2 || !strings.Contains(ops[0].Steps[index].LastError, "fault drill") {
		t.Fatalf("operations = %+v", ops)
	}
	if _, err := repair(h, wfID, workflows.RepairCompensate, workflows.RepairRequest{Operator: "test-operator", OperationID: st.Operation.ID, Step: string(step)}); err != nil {
		t.Fatal(err)
	}
	tn := l.waitState(t, w, d.Tenant.ID, domain.StateFailed)
	if res := l.resources(t, tn); res.Any() {
		t.Fatalf("a failed tenant left resources: %+v", res)
	}
	if step == "route" {
		recordHistory(t, h, tn.WorkflowID, "", "compensated")
		// The repair came through the operator gateway: its history carries the
		// assertion in the update's header (recorded once per revision).
		recordHistory(t, h, tn.WorkflowID, "", "compensated-verified")
	}
	var actor string
	if err := h.DB.NewRaw("SELECT actor_id FROM audit_events WHERE target_id = ? AND action = 'tenant.saga_resolved'", tn.ID).Scan(context.Background(), &actor); err != nil || actor != "test-operator" {
		t.Fatalf("saga_resolved actor = %q, %v", actor, err)
	}
}

func TestARequestNeverHangsWhenNoWorkerIsUp(t *testing.T) {
	h := harness.Get(t)
	tq := harness.TaskQueue(t) // no worker polls it yet
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, TaskQueue: tq, Saga: testSaga(time.Hour)})
	w := newWorld(t, h, "team")
	key := "no-worker-" + uniq()
	start := time.Now()
	r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), w.People[domain.RoleOwner].Token, map[string]any{"name": "patient", "environment": "prod"}, key)
	if r.Status != 503 || r.code() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" || time.Since(start) > 15*time.Second {
		t.Fatalf("without a worker: %d %s after %v", r.Status, r.Raw, time.Since(start))
	}
	// A worker comes back; the retry with the same key creates the tenant once.
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterActivity(&activities.Activities{DB: h.DB, DataPlane: &dataplane.Postgres{DB: h.DB, Keys: testKeys()}})
	})
	r = httpReq(t, srv, "POST", orgPath(w, "/tenants"), w.People[domain.RoleOwner].Token, map[string]any{"name": "patient", "environment": "prod"}, key)
	if r.Status != 202 {
		t.Fatalf("retry with a worker: %d %s", r.Status, r.Raw)
	}
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM tenants WHERE org_id = ?", w.Org.ID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("tenants = %d, %v", n, err)
	}
}

func TestATenantHostnameCannotBeTakenFromAnotherOrganisation(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	victim := newWorld(t, h, "team")
	// "prod-x" in org s and "prod" in org x-s would share prod-x-s.<base>.
	squatter := newWorldSlug(t, h, "team", "x-"+victim.Org.Slug)
	tn := l.createActive(t, victim, "prod-x")
	r := l.create(t, squatter, "prod", "")
	if r.Status != 409 || !strings.Contains(r.Env.Error.Message, tn.Hostname) {
		t.Fatalf("a second tenant at %s: %d %s", tn.Hostname, r.Status, r.Raw)
	}
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM tenants WHERE org_id = ?", squatter.Org.ID).Scan(context.Background(), &n); err != nil || n != 0 {
		t.Fatalf("the refused tenant was written: %d %v", n, err)
	}
	// The victim's tenant still routes to itself.
	if res := l.resources(t, tn); !res.Route || !res.RouteEnabled {
		t.Fatalf("the victim's route: %+v", res)
	}
}

// TestACreationWritesNoVersionMarkersAndNoSearchAttributeTwice reads a
// provisioning's history: a run started at the current revision records no
// version marker (each costs a marker and a search-attribute write in the
// creation's first workflow task), and every search-attribute write
// changes what the previous one, or the start, said.
func TestACreationWritesNoVersionMarkersAndNoSearchAttributeTwice(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	tn := l.waitState(t, w, l.accepted(t, w, "indexed", "").Tenant.ID, domain.StateActive)

	keys := []string{workflows.SearchAttrTenantState.GetName(), workflows.SearchAttrSagaStatus.GetName()}
	said := map[string]string{}
	read := func(fields map[string]*commonpb.Payload) map[string]string {
		out := map[string]string{}
		for _, k := range keys {
			if p, ok := fields[k]; ok {
				var v string
				if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
					t.Fatal(err)
				}
				out[k] = v
			}
		}
		return out
	}
	// The row says active before the saga's next workflow task writes the
	// search attributes: read the history until it has.
	var upserts int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		said, upserts = map[string]string{}, 0
		var errs []string
		for _, ev := range workflowHistory(t, h, tn.WorkflowID, "").Events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				said = read(ev.GetWorkflowExecutionStartedEventAttributes().GetSearchAttributes().GetIndexedFields())
			case enumspb.EVENT_TYPE_MARKER_RECORDED:
				if name := ev.GetMarkerRecordedEventAttributes().GetMarkerName(); name == "Version" {
					errs = append(errs, fmt.Sprintf("event %d: a version marker", ev.GetEventId()))
				}
			case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
				upserts++
				fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
				now := read(fields)
				if maps.Equal(now, said) || len(now) == 0 {
					errs = append(errs, fmt.Sprintf("event %d writes search attributes that say what they said: %v", ev.GetEventId(), slices.Collect(maps.Keys(fields))))
				}
				maps.Copy(said, now)
			}
		}
		if said[workflows.SearchAttrTenantState.GetName()] == string(domain.StateActive) || time.Now().After(deadline) {
			for _, e := range errs {
				t.Error(e)
			}
			break
		}
	}
	if upserts == 0 || said[workflows.SearchAttrTenantState.GetName()] != string(domain.StateActive) {
		t.Fatalf("the search attributes end as %v after %d writes, want the tenant active", said, upserts)
	}
}

// A creation's wait for its provision request (ReservationTimeout) ends when
// the request arrives: no timer is left to fire later, which for a burst
// of 10,000 creations would have been 10,000 workflow tasks ten minutes
// on, most of them replaying a history the worker's cache no longer held.
func TestACreatedTenantsRunLeavesNoTimerToFire(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	w := newWorld(t, h, "team")
	tn := l.waitState(t, w, l.accepted(t, w, "timers", "").Tenant.ID, domain.StateActive)
	pending := map[int64]time.Duration{}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		clear(pending)
		var idle bool
		for _, ev := range workflowHistory(t, h, tn.WorkflowID, "").Events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_TIMER_STARTED:
				pending[ev.GetEventId()] = ev.GetTimerStartedEventAttributes().GetStartToFireTimeout().AsDuration()
			case enumspb.EVENT_TYPE_TIMER_FIRED:
				delete(pending, ev.GetTimerFiredEventAttributes().GetStartedEventId())
			case enumspb.EVENT_TYPE_TIMER_CANCELED:
				delete(pending, ev.GetTimerCanceledEventAttributes().GetStartedEventId())
			case enumspb.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
				fields := ev.GetUpsertWorkflowSearchAttributesEventAttributes().GetSearchAttributes().GetIndexedFields()
				if p, ok := fields[workflows.SearchAttrSagaStatus.GetName()]; ok {
					var v string
					if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
						t.Fatal(err)
					}
					idle = v == workflows.SagaIdle
				}
			}
		}
		// The provisioning is over once the saga says it is idle.
		if idle || time.Now().After(deadline) {
			break
		}
	}
	if len(pending) > 0 {
		t.Fatalf("the run of an active tenant with no lifetime has timers left to fire (started event: timeout): %v", pending)
	}
}
