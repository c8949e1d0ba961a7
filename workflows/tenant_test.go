package workflows

import (
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/intelliauth/controlplane/internal/domain"
)

func TestProvisionSuspendThenDecommissionAfterTheGracePeriod(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend, again, decom updateResult
	transition(env, time.Minute, domain.OpSuspend, "a", &suspend)
	transition(env, 2*time.Minute, domain.OpSuspend, "b", &again)
	transition(env, 3*time.Minute, domain.OpDecommission, "c", &decom)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if suspend.err != nil || decom.err != nil {
		t.Fatalf("suspend %v, decommission %v", suspend.err, decom.err)
	}
	if again.code() != domain.CodeConflict {
		t.Fatalf("suspending a suspended tenant: %v", again.err)
	}
	want := []string{"schema", "keys", "route", "suspend_route", "delete_route", "delete_keys", "drop_schema"}
	if !slices.Equal(f.steps, want) {
		t.Fatalf("steps = %v, want %v", f.steps, want)
	}
	wantStates := []domain.State{domain.StateActive, domain.StateSuspended, domain.StateDecommissioning, domain.StateDecommissioned}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
}

func TestACompensatedProvisioningUndoesEveryAttemptedStepInReverseTheFailedOneIncluded(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{fail: map[domain.Step]bool{domain.StepRoute: true}}
	f.register(env)
	provision(env)
	var stuck Status
	var comp updateResult
	queryAt(env, time.Hour, &stuck)
	sendRepair(env, time.Hour+time.Second, RepairCompensate, RepairRequest{Operator: "alice", OperationID: "op_1", Step: "route"}, &comp)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if comp.err != nil {
		t.Fatalf("compensate: %v", comp.err)
	}
	op := stuck.Operation
	if stuck.Saga != SagaStuck || op == nil || op.ID != "op_1" || op.Kind != domain.OpProvision || op.Step != "route" || !op.Stuck ||
		!slices.Equal(op.Repairs, []Repair{RepairRetry, RepairCompensate}) {
		t.Fatalf("status while stuck = %+v (operation %+v)", stuck, op)
	}
	// Two attempts of route (the bound), then route's own compensation
	// (it may have half-succeeded) and the others, in reverse.
	want := []string{"schema", "keys", "route", "route", "delete_route", "delete_keys", "drop_schema"}
	if !slices.Equal(f.steps, want) {
		t.Fatalf("steps = %v, want %v", f.steps, want)
	}
	if last := f.states[len(f.states)-1]; last != domain.StateFailed {
		t.Fatalf("states = %v", f.states)
	}
	for _, e := range []string{"tenant.saga_stuck", "tenant.saga_resolved", "tenant.provisioning_failed"} {
		if !slices.Contains(f.events, e) {
			t.Errorf("no %s in %v", e, f.events)
		}
	}
}

func TestARepairIsRefusedUnlessItNamesTheStuckOperationAndStepAndIsNeverKeptForLater(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// suspend_route fails its first two attempts: the suspend is stuck once.
	f := &fakes{failFirst: map[domain.Step]int{domain.StepSuspendRoute: 2}}
	f.register(env)
	provision(env)
	var early, noOperator, wrongStep, wrongOp, cancel, suspend, retry, twice, decom updateResult
	// Nothing is stuck yet: refused, and not kept.
	sendRepair(env, time.Minute, RepairRetry, RepairRequest{Operator: "mallory", OperationID: "op_1", Step: "schema"}, &early)
	transition(env, 2*time.Minute, domain.OpSuspend, "s", &suspend)
	var stuck Status
	queryAt(env, 3*time.Hour, &stuck)
	sendRepair(env, 3*time.Hour, RepairRetry, RepairRequest{OperationID: "op_suspend_s", Step: "suspend_route"}, &noOperator)
	sendRepair(env, 3*time.Hour, RepairRetry, RepairRequest{Operator: "bob", OperationID: "op_suspend_s", Step: "schema"}, &wrongStep)
	sendRepair(env, 3*time.Hour, RepairRetry, RepairRequest{Operator: "bob", OperationID: "op_1", Step: "suspend_route"}, &wrongOp)
	sendRepair(env, 3*time.Hour, RepairCancel, RepairRequest{Operator: "bob", OperationID: "op_suspend_s", Step: "suspend_route"}, &cancel)
	sendRepair(env, 4*time.Hour, RepairRetry, RepairRequest{Operator: "bob", OperationID: "op_suspend_s", Step: "suspend_route"}, &retry)
	sendRepair(env, 4*time.Hour+time.Minute, RepairRetry, RepairRequest{Operator: "bob", OperationID: "op_suspend_s", Step: "suspend_route"}, &twice)
	transition(env, 5*time.Hour, domain.OpDecommission, "d", &decom)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if early.code() != domain.CodeConflict {
		t.Fatalf("a repair while nothing is stuck: %v", early.err)
	}
	// Had the early retry been kept, the stuck suspend would have been
	// retried at once and never be seen stuck.
	if stuck.Operation == nil || !stuck.Operation.Stuck || stuck.Operation.ID != "op_suspend_s" {
		t.Fatalf("status at 3h = %+v", stuck)
	}
	for name, u := range map[string]*updateResult{"no operator": &noOperator, "wrong step": &wrongStep, "wrong operation": &wrongOp, "cancel of a suspend": &cancel, "a second retry": &twice} {
		if u.err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if noOperator.code() != domain.CodeForbidden {
		t.Errorf("no operator: %v", noOperator.err)
	}
	if retry.err != nil || suspend.err != nil || decom.err != nil {
		t.Fatalf("retry %v, suspend %v, decommission %v", retry.err, suspend.err, decom.err)
	}
	if n := slices.Index(f.events, "tenant.saga_resolved"); n < 0 || slices.Index(f.events[n+1:], "tenant.saga_resolved") >= 0 {
		t.Fatalf("want one resolution: %v", f.events)
	}
}

func TestARestoreAcceptedJustBeforeTheGraceTimerFiresWinsAndNothingIsDestroyed(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// The restore's write takes longer than what is left of the grace
	// period.
	f := &fakes{beginAfter: map[domain.OpKind]time.Duration{domain.OpRestore: 10 * time.Second}}
	f.register(env)
	provision(env)
	var decom, restore, resume updateResult
	transition(env, time.Minute, domain.OpDecommission, "d", &decom)
	transition(env, time.Minute+72*time.Hour-time.Second, domain.OpRestore, "r", &restore)
	transition(env, 80*time.Hour, domain.OpResume, "u", &resume)
	var last updateResult
	transition(env, 81*time.Hour, domain.OpDecommission, "end", &last)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if decom.err != nil || restore.err != nil || resume.err != nil || last.err != nil {
		t.Fatalf("decommission %v, restore %v, resume %v, last %v", decom.err, restore.err, resume.err, last.err)
	}
	// Nothing was destroyed before the tenant was resumed.
	if i := slices.Index(f.steps, "resume_route"); i < 0 || slices.Contains(f.steps[:i], "delete_route") {
		t.Fatalf("the restored tenant was destroyed: steps %v", f.steps)
	}
	wantStates := []domain.State{domain.StateActive, domain.StateDecommissioning, domain.StateSuspended, domain.StateActive,
		domain.StateDecommissioning, domain.StateDecommissioned}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
}

func TestTheDecommissioningRecordSaysWhenTheGracePeriodEndsAsTheStatusDoes(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var decom updateResult
	transition(env, time.Minute, domain.OpDecommission, "d", &decom)
	var inGrace Status
	queryAt(env, 24*time.Hour, &inGrace)
	start := env.Now()
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if decom.err != nil {
		t.Fatalf("decommission: %v", decom.err)
	}
	if len(f.graceEnds) != 1 {
		t.Fatalf("records carried %d grace period ends, want the decommissioning one: %v", len(f.graceEnds), f.graceEnds)
	}
	ends := f.graceEnds[0]
	// Entered a minute in (and a moment for the suspension), for 72 h, to
	// the microsecond Postgres keeps.
	if lo, hi := start.Add(time.Minute+72*time.Hour).Truncate(time.Microsecond), start.Add(2*time.Minute+72*time.Hour); ends.Before(lo) || ends.After(hi) || ends != ends.Truncate(time.Microsecond) {
		t.Fatalf("grace period ends %v, want between %v and %v", ends, lo, hi)
	}
	if inGrace.Operation == nil || inGrace.Operation.GraceEndsAt == nil || !inGrace.Operation.GraceEndsAt.Equal(ends) {
		t.Fatalf("the status in the grace period says %+v, the record %v", inGrace.Operation, ends)
	}
}

func TestARestoreAfterDestructionBeganIsRefusedBeforeAnythingIsWritten(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{stepAfter: map[domain.Step]time.Duration{domain.StepDeleteRoute: time.Minute}}
	f.register(env)
	provision(env)
	var decom, restore updateResult
	transition(env, time.Minute, domain.OpDecommission, "d", &decom)
	transition(env, time.Minute+72*time.Hour+10*time.Second, domain.OpRestore, "r", &restore)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if restore.code() != domain.CodeConflict {
		t.Fatalf("restore during destruction: %v", restore.err)
	}
	if slices.Contains(f.begunKinds(), domain.OpRestore) {
		t.Fatalf("a refused restore was written: %v", f.begunKinds())
	}
	if f.states[len(f.states)-1] != domain.StateDecommissioned {
		t.Fatalf("states = %v", f.states)
	}
}

func TestCallingOffAStuckDecommissionEndsItsRestoreWithIt(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{failFirst: map[domain.Step]int{domain.StepSuspendRoute: 2}}
	f.register(env)
	provision(env)
	var decom1, restore1, cancel, decom2, restore2, resume, end updateResult
	transition(env, time.Minute, domain.OpDecommission, "d1", &decom1)
	// suspend_route is stuck: a restore is accepted, then an operator
	// calls the decommission off.
	transition(env, time.Hour, domain.OpRestore, "r1", &restore1)
	sendRepair(env, 2*time.Hour, RepairCancel, RepairRequest{Operator: "carol", OperationID: "op_decommission_d1", Step: "suspend_route"}, &cancel)
	// A new decommission waits out its grace period, and can be restored.
	transition(env, 3*time.Hour, domain.OpDecommission, "d2", &decom2)
	var inGrace Status
	queryAt(env, 4*time.Hour, &inGrace)
	transition(env, 5*time.Hour, domain.OpRestore, "r2", &restore2)
	transition(env, 6*time.Hour, domain.OpResume, "u", &resume)
	transition(env, 7*time.Hour, domain.OpDecommission, "end", &end)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	for name, u := range map[string]*updateResult{"decommission": &decom1, "restore": &restore1, "cancel": &cancel, "second decommission": &decom2,
		"second restore": &restore2, "resume": &resume, "last decommission": &end} {
		if u.err != nil {
			t.Errorf("%s: %v", name, u.err)
		}
	}
	if inGrace.State != domain.StateDecommissioning || inGrace.Operation == nil || inGrace.Operation.Phase != PhaseGracePeriod ||
		!slices.Equal(inGrace.Operation.Repairs, []Repair{RepairCancel}) {
		t.Fatalf("the second decommission is not in its grace period: %+v (%+v)", inGrace, inGrace.Operation)
	}
	// The cancelled decommission undid its attempted suspend_route: the
	// tenant stayed active.
	wantStates := []domain.State{domain.StateActive, domain.StateDecommissioning, domain.StateSuspended, domain.StateActive,
		domain.StateDecommissioning, domain.StateDecommissioned}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
	if !slices.Contains(f.events, "tenant.decommission_cancelled") || !slices.Contains(f.steps, "resume_route") {
		t.Fatalf("events %v, steps %v", f.events, f.steps)
	}
}

func TestARetryOfAnEarlierRunsRequestIsAnsweredNotRunAgain(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend, resume updateResult
	transition(env, time.Minute, domain.OpSuspend, "k1", &suspend)
	transition(env, 2*time.Minute, domain.OpResume, "k2", &resume)
	p := params()
	p.MaxOperationsPerRun = 2
	env.ExecuteWorkflow(TenantWorkflow, p)
	next := continuedAs(t, env)
	if next.Continued.State != domain.StateActive || next.Continued.Answered["suspend/k1"].OperationID != "op_suspend_k1" {
		t.Fatalf("next run = %+v", next.Continued)
	}

	// In the next run, the first request's retry is answered with its
	// operation, and nothing runs again.
	env2 := s.NewTestWorkflowEnvironment()
	f2 := &fakes{}
	f2.register(env2)
	var retry, end updateResult
	transition(env2, time.Minute, domain.OpSuspend, "k1", &retry)
	transition(env2, time.Hour, domain.OpDecommission, "end", &end)
	env2.ExecuteWorkflow(TenantWorkflow, next)
	mustComplete(t, env2)
	if retry.err != nil || end.err != nil {
		t.Fatalf("retry %v, end %v", retry.err, end.err)
	}
	if !slices.Equal(f2.states, []domain.State{domain.StateDecommissioning, domain.StateDecommissioned}) {
		t.Fatalf("the retried suspend ran again: states %v", f2.states)
	}
	if slices.Contains(f2.begunKinds(), domain.OpSuspend) || len(f2.loaded) != 1 || f2.loaded[0].RequestID != "req-k1" {
		t.Fatalf("begun %v, loaded %+v", f2.begunKinds(), f2.loaded)
	}
}
