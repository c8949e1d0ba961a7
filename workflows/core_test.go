package workflows

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// The tests of this file perform the saga core's defects that a review
// reproduced: each failed on the code before its fix.

const testWorkflowID = "tenant/org_1/key-1"

func newEnv() (*testsuite.TestWorkflowEnvironment, *fakes) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testWorkflowID})
	f := &fakes{}
	return env, f
}

// transitionAs sends a transition update as the API does since ids are
// derived: no operation id of its own.
func transitionAs(env *testsuite.TestWorkflowEnvironment, at time.Duration, kind domain.OpKind, key string, res *updateResult) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateTransition, string(kind)+"/"+key, res.callbacks(),
			TransitionRequest{Kind: kind, Request: activities.Request{RequestID: "req-" + key}})
	}, at)
}

func TestATransitionsOperationIDIsDerivedFromItsWorkflowAndUpdate(t *testing.T) {
	env, f := newEnv()
	f.register(env)
	provision(env)
	var suspend, end updateResult
	transitionAs(env, time.Minute, domain.OpSuspend, "k", &suspend)
	transitionAs(env, time.Hour, domain.OpDecommission, "end", &end)
	p := params()
	p.DecommissionGrace = time.Minute
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	want := domain.DerivedID(domain.PrefixOperation, testWorkflowID, "suspend/k")
	if suspend.err != nil || len(f.begun) == 0 || f.begun[0].OperationID != want {
		t.Fatalf("suspend %v; begun %+v, want operation %s", suspend.err, f.begun, want)
	}
}

// TestARowWrittenByALostUpdateIsRunWhenItsRetryArrives: Postgres holds a
// running operation of the update (its first attempt wrote it, then
// Temporal lost the update): the retry runs that operation, to its end.
func TestARowWrittenByALostUpdateIsRunWhenItsRetryArrives(t *testing.T) {
	env, f := newEnv()
	f.rows = map[string]activities.OperationRecord{
		"suspend/k": {ID: "op_lost", Kind: string(domain.OpSuspend), Status: string(domain.OpRunning), RequestID: "req-first"},
	}
	f.register(env)
	provision(env)
	var suspend, end updateResult
	transitionAs(env, time.Minute, domain.OpSuspend, "k", &suspend)
	transitionAs(env, time.Hour, domain.OpDecommission, "end", &end)
	p := params()
	p.DecommissionGrace = time.Minute
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	if suspend.err != nil {
		t.Fatal(suspend.err)
	}
	i := slices.Index(f.steps, string(domain.StepSuspendRoute))
	if i < 0 || f.stepOps[i] != "op_lost" {
		t.Fatalf("steps %v ran for %v: the lost update's operation op_lost was not run", f.steps, f.stepOps)
	}
	if !slices.Equal(f.states, []domain.State{domain.StateActive, domain.StateSuspended, domain.StateDecommissioning, domain.StateDecommissioned}) {
		t.Fatalf("states %v", f.states)
	}
}

// TestARestoreDuringAnEphemeralTenantsEndIsRefused: an expiry destroys with
// no grace period, so a restore could never be honoured: it is refused,
// never answered 202 and then ignored.
func TestARestoreDuringAnEphemeralTenantsEndIsRefused(t *testing.T) {
	env, f := newEnv()
	f.stepAfter = map[domain.Step]time.Duration{domain.StepSuspendRoute: 10 * time.Minute}
	f.register(env)
	provision(env)
	start := env.Now()
	var restore updateResult
	transitionAs(env, 2*time.Hour+5*time.Minute, domain.OpRestore, "r", &restore)
	p := params()
	p.Expiry = &Expiry{At: start.Add(2 * time.Hour), For: domain.Actor{Type: "member", ID: "mem_1"}, UserID: "usr_1"}
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	if restore.code() != domain.CodeConflict {
		t.Fatalf("a restore during the expiry's decommission: %v, want CONFLICT", restore.err)
	}
	if slices.Contains(f.events, "tenant.restored") || f.states[len(f.states)-1] != domain.StateDecommissioned {
		t.Fatalf("events %v, states %v", f.events, f.states)
	}
}

// TestAWorkerRefusesARevisionItDoesNotKnow: a run of a newer revision fails
// its workflow task (a panic), so a worker that knows it takes it; nothing
// runs the old way.
func TestAWorkerRefusesARevisionItDoesNotKnow(t *testing.T) {
	for _, rev := range []int{RevisionCurrent + 1, 2} {
		env, f := newEnv()
		f.register(env)
		provision(env)
		p := params()
		p.Revision = rev
		env.ExecuteWorkflow(TenantWorkflow, p)
		var panicked *temporal.PanicError
		if err := env.GetWorkflowError(); !errors.As(err, &panicked) || !strings.Contains(err.Error(), "revision") {
			t.Errorf("revision %d: err = %v, want the task failed on an unknown revision", rev, err)
		}
		if f.reserves != 0 || len(f.steps) != 0 {
			t.Errorf("revision %d ran: %d reservations, steps %v", rev, f.reserves, f.steps)
		}
	}
}

// TestARunContinuesAsNewAtTheCurrentRevisionCarryingABoundedState: a
// developer cycling suspend and resume cannot grow what a run hands the
// next; older retries are answered from Postgres.
func TestARunContinuesAsNewAtTheCurrentRevisionCarryingABoundedState(t *testing.T) {
	env, f := newEnv()
	f.register(env)
	provision(env)
	const ops = 2 * maxAnswered
	results := make([]updateResult, ops)
	for i := range ops {
		kind := domain.OpSuspend
		if i%2 == 1 {
			kind = domain.OpResume
		}
		transitionAs(env, time.Duration(i+1)*time.Minute, kind, "k"+string(rune('a'+i%26))+strings.Repeat("x", i/26), &results[i])
	}
	p := params()
	p.Revision = RevisionInInput
	p.MaxOperationsPerRun = ops
	env.ExecuteWorkflow(TenantWorkflow, p)
	for i := range results {
		if results[i].err != nil {
			t.Fatalf("transition %d: %v", i, results[i].err)
		}
	}
	next := continuedAs(t, env)
	if n := len(next.Continued.Answered); n > maxAnswered {
		t.Errorf("the next run carries %d answered updates, more than %d", n, maxAnswered)
	}
	if next.Revision != RevisionCurrent {
		t.Errorf("the next run is at revision %d, want %d", next.Revision, RevisionCurrent)
	}
}

// TestAnOperatorsCancelOfAnExpiryHoldsAcrossContinueAsNew: the expiry's
// decommission, stuck and called off by an operator, is not begun again by
// the next run (and its id is derived, so a reset finds its row).
func TestAnOperatorsCancelOfAnExpiryHoldsAcrossContinueAsNew(t *testing.T) {
	env, f := newEnv()
	f.fail = map[domain.Step]bool{domain.StepSuspendRoute: true}
	f.register(env)
	provision(env)
	start := env.Now()
	expiryOp := domain.DerivedID(domain.PrefixOperation, testWorkflowID, "expiry")
	var cancel updateResult
	sendRepair(env, 3*time.Hour, RepairCancel, RepairRequest{Operator: "alice", OperationID: expiryOp, Step: string(domain.StepSuspendRoute)}, &cancel)
	p := params()
	p.MaxOperationsPerRun = 1
	p.Expiry = &Expiry{At: start.Add(2 * time.Hour), For: domain.Actor{Type: "member", ID: "mem_1"}, UserID: "usr_1"}
	env.ExecuteWorkflow(TenantWorkflow, p)
	if cancel.err != nil {
		t.Fatalf("cancel: %v", cancel.err)
	}
	if len(f.begun) != 1 || f.begun[0].OperationID != expiryOp {
		t.Fatalf("begun %+v, want the expiry's decommission as %s", f.begun, expiryOp)
	}
	next := continuedAs(t, env)

	env2, f2 := newEnv()
	f2.register(env2)
	var end updateResult
	transitionAs(env2, time.Hour, domain.OpDecommission, "end", &end)
	next.DecommissionGrace = time.Minute
	env2.ExecuteWorkflow(TenantWorkflow, next)
	mustComplete(t, env2)
	if kinds := f2.begunKinds(); !slices.Equal(kinds, []domain.OpKind{domain.OpDecommission}) || f2.begun[0].OperationID == expiryOp {
		t.Fatalf("the next run began %+v: the cancelled expiry ran again", f2.begun)
	}
}

// TestAnExpiryWhoseRowEndedInAnEarlierRunIsNotRunAgain: after a reset, the
// expiry finds its operation (derived id) ended, and leaves the tenant be.
func TestAnExpiryWhoseRowEndedInAnEarlierRunIsNotRunAgain(t *testing.T) {
	env, f := newEnv()
	f.rows = map[string]activities.OperationRecord{
		"expiry": {ID: domain.DerivedID(domain.PrefixOperation, testWorkflowID, "expiry"), Kind: string(domain.OpDecommission), Status: string(domain.OpCancelled)},
	}
	f.register(env)
	provision(env)
	start := env.Now()
	var end updateResult
	transitionAs(env, 5*time.Hour, domain.OpDecommission, "end", &end)
	p := params()
	p.DecommissionGrace = time.Minute
	p.Expiry = &Expiry{At: start.Add(2 * time.Hour), For: domain.Actor{Type: "member", ID: "mem_1"}, UserID: "usr_1"}
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	if !end.done || end.err != nil {
		t.Fatalf("the member's decommission after the lifetime: done %v, %v", end.done, end.err)
	}
	endOp := domain.DerivedID(domain.PrefixOperation, testWorkflowID, "decommission/end")
	for i, op := range f.stepOps[3:] {
		if op != endOp {
			t.Fatalf("step %s ran for %s: the ended expiry ran again (steps %v)", f.steps[3+i], op, f.steps)
		}
	}
}

// TestALocalWriteThatKeepsFailingGoesOnAsAnActivity: an outage outlasting
// the local attempts' bound is waited out by a regular activity, whose
// retries do not grow the history.
func TestALocalWriteThatKeepsFailingGoesOnAsAnActivity(t *testing.T) {
	env, f := newEnv()
	f.reserveOutage = 1000
	f.register(env)
	provision(env)
	var end updateResult
	transitionAs(env, 3*time.Hour, domain.OpDecommission, "end", &end)
	p := params()
	p.DecommissionGrace = time.Minute
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	if f.local == 0 || f.local > 30 || f.remote == 0 {
		t.Fatalf("%d local and %d regular attempts, want a bounded few local ones, then regular", f.local, f.remote)
	}
}

// TestARecordThatCannotSucceedSticksTheSagaVisibly: a record whose write
// fails for good is neither dropped nor retried blindly: the saga is stuck
// on it, says so, and an operator's retry writes it once fixed.
func TestARecordThatCannotSucceedSticksTheSagaVisibly(t *testing.T) {
	env, f := newEnv()
	f.recordBroken = map[string]bool{"tenant.suspended": true}
	f.register(env)
	provision(env)
	var suspend, retry, end updateResult
	var stuck Status
	transitionAs(env, time.Minute, domain.OpSuspend, "s", &suspend)
	queryAt(env, time.Hour, &stuck)
	env.RegisterDelayedCallback(func() {
		f.mu.Lock()
		f.fixed = true
		f.mu.Unlock()
	}, time.Hour+time.Second)
	suspendOp := domain.DerivedID(domain.PrefixOperation, testWorkflowID, "suspend/s")
	sendRepair(env, time.Hour+2*time.Second, RepairRetry, RepairRequest{Operator: "alice", OperationID: suspendOp, Step: stepRecord}, &retry)
	transitionAs(env, 2*time.Hour, domain.OpDecommission, "end", &end)
	p := params()
	p.DecommissionGrace = time.Minute
	env.ExecuteWorkflow(TenantWorkflow, p)
	mustComplete(t, env)
	if stuck.Saga != SagaStuck || stuck.Operation == nil || stuck.Operation.Step != stepRecord || !slices.Equal(stuck.Operation.Repairs, []Repair{RepairRetry}) {
		t.Fatalf("status while the record fails: %+v (operation %+v)", stuck, stuck.Operation)
	}
	if retry.err != nil || end.err != nil {
		t.Fatalf("retry %v, decommission %v", retry.err, end.err)
	}
	if !slices.Contains(f.events, "tenant.suspended") {
		t.Fatalf("the record was dropped: events %v", f.events)
	}
}
