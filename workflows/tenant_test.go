package workflows

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// fakes stands in for the activities: it records the data-plane steps, the
// recorded states and events and the operations begun, fails the steps it
// is told to, and delays on the workflow's clock the calls it is told to.
type fakes struct {
	mu     sync.Mutex
	steps  []string
	states []domain.State
	events []string
	begun  []activities.BeginInput
	loaded []activities.LoadInput
	// graceEnds are the grace periods' ends the records carried.
	graceEnds []time.Time

	// fail fails every attempt of a step; failFirst the first N.
	// reserveOutage fails the first N reservations as an unreachable
	// database would.
	reserveOutage int
	reserves      int
	fail          map[domain.Step]bool
	failFirst     map[domain.Step]int
	attempts      map[domain.Step]int
	// beginAfter delays BeginOperation by kind, stepAfter RunStep by step,
	// recordAfter Record by action.
	beginAfter  map[domain.OpKind]time.Duration
	stepAfter   map[domain.Step]time.Duration
	recordAfter map[string]time.Duration

	// rows are operations Postgres holds already, by update id: what
	// BeginOperation finds instead of writing one.
	rows map[string]activities.OperationRecord
	// stepOps are the operation ids the steps ran for, in order.
	stepOps []string
	// local and remote count the reservations' attempts as local and as
	// regular activities.
	local, remote int
	// recordBroken fails every attempt of a record of that action, as a
	// write that cannot succeed on retry does, until fixed is set.
	recordBroken map[string]bool
	fixed        bool
}

func (f *fakes) register(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.ReserveTenant, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.ReserveInput) (activities.OperationResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if activity.GetInfo(ctx).IsLocalActivity {
				f.local++
			} else {
				f.remote++
			}
			if f.reserves++; f.reserves <= f.reserveOutage {
				return activities.OperationResult{}, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
			}
			return activities.OperationResult{Operation: activities.OperationRecord{ID: in.OperationID}, RequestID: in.Request.RequestID}, nil
		})
	begin := func(_ context.Context, in activities.BeginInput) (activities.OperationResult, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.begun = append(f.begun, in)
		if row, ok := f.rows[in.UpdateID]; ok {
			return activities.OperationResult{Operation: row, RequestID: row.RequestID,
				Replayed: row.Status != string(domain.OpRunning) && row.Status != string(domain.OpStuck)}, nil
		}
		return activities.OperationResult{Operation: activities.OperationRecord{ID: in.OperationID, Kind: string(in.Kind)}, RequestID: in.Request.RequestID}, nil
	}
	for kind, d := range f.beginAfter {
		env.OnActivity(a.BeginOperation, mock.Anything, mock.MatchedBy(func(in activities.BeginInput) bool { return in.Kind == kind })).After(d).Return(begin)
	}
	env.OnActivity(a.BeginOperation, mock.Anything, mock.Anything).Return(begin)
	env.OnActivity(a.LoadOperation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LoadInput) (activities.OperationResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.loaded = append(f.loaded, in)
			return activities.OperationResult{Operation: activities.OperationRecord{ID: in.OperationID}, RequestID: in.RequestID}, nil
		})
	run := func(_ context.Context, in activities.StepInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		s := domain.Step(in.Step)
		f.steps = append(f.steps, in.Step)
		f.stepOps = append(f.stepOps, in.OperationID)
		if f.attempts == nil {
			f.attempts = map[domain.Step]int{}
		}
		f.attempts[s]++
		if f.fail[s] || f.attempts[s] <= f.failFirst[s] {
			return temporal.NewApplicationError("injected", "TEST")
		}
		return nil
	}
	for step, d := range f.stepAfter {
		env.OnActivity(a.RunStep, mock.Anything, mock.MatchedBy(func(in activities.StepInput) bool { return in.Step == string(step) })).After(d).Return(run)
	}
	env.OnActivity(a.RunStep, mock.Anything, mock.Anything).Return(run)
	record := func(_ context.Context, in activities.RecordInput) (activities.TenantRecord, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.recordBroken[in.Action] && !f.fixed {
			return activities.TenantRecord{}, temporal.NewNonRetryableApplicationError("the write cannot succeed", "PERMANENT", nil)
		}
		if in.State != "" {
			f.states = append(f.states, in.State)
		}
		if in.Action != "" {
			f.events = append(f.events, in.Action)
		}
		if in.GraceEndsAt != nil {
			f.graceEnds = append(f.graceEnds, *in.GraceEndsAt)
		}
		return activities.TenantRecord{}, nil
	}
	for action, d := range f.recordAfter {
		env.OnActivity(a.Record, mock.Anything, mock.MatchedBy(func(in activities.RecordInput) bool { return in.Action == action })).After(d).Return(record)
	}
	env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(record)
}

func (f *fakes) begunKinds() []domain.OpKind {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []domain.OpKind
	for _, b := range f.begun {
		out = append(out, b.Kind)
	}
	return out
}

func params() TenantParams {
	return TenantParams{TenantID: "tnt_1", OrgID: "org_1", Name: "prod", Hostname: "prod-acme.test", StepMaxAttempts: 2,
		DecommissionGrace: 72 * time.Hour, ReservationTimeout: 10 * time.Minute, MaxOperationsPerRun: 100, Revision: RevisionCurrent}
}

type updateResult struct {
	err  error
	done bool
}

func (u *updateResult) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { u.err, u.done = err, true },
		OnComplete: func(_ interface{}, err error) { u.err, u.done = errors.Join(u.err, err), true },
	}
}

// code returns the error code of a refused or failed update.
func (u *updateResult) code() domain.Code {
	var appErr *temporal.ApplicationError
	if errors.As(u.err, &appErr) {
		return domain.Code(appErr.Type())
	}
	return ""
}

func provision(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateProvision, "provision", (&updateResult{}).callbacks(), ProvisionRequest{OperationID: "op_1"})
	}, 0)
}

// transition sends a transition update at a moment, with update id
// <kind>/<key> as the API makes it.
func transition(env *testsuite.TestWorkflowEnvironment, at time.Duration, kind domain.OpKind, key string, res *updateResult) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateTransition, string(kind)+"/"+key, res.callbacks(),
			TransitionRequest{Kind: kind, OperationID: "op_" + string(kind) + "_" + key, Request: activities.Request{RequestID: "req-" + key}})
	}, at)
}

func sendRepair(env *testsuite.TestWorkflowEnvironment, at time.Duration, r Repair, in RepairRequest, res *updateResult) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(string(r), "", res.callbacks(), in)
	}, at)
}

func queryAt(env *testsuite.TestWorkflowEnvironment, at time.Duration, into *Status) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			_ = v.Get(into)
		}
	}, at)
}

func mustComplete(t *testing.T, env *testsuite.TestWorkflowEnvironment) {
	t.Helper()
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, err %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
}

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
	if noOperator.code() != domain.CodeBadRequest {
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

func continuedAs(t *testing.T, env *testsuite.TestWorkflowEnvironment) TenantParams {
	t.Helper()
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err = %v, want continue-as-new", err)
	}
	var next TenantParams
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Continued == nil || next.TenantID != "tnt_1" {
		t.Fatalf("next run = %+v", next)
	}
	return next
}

func TestATransitionAcceptedAsAnOperationFinishesRunsBeforeTheRunContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// The suspend's final record takes a minute: the API already reads
	// the tenant as suspended, and asks for a resume.
	f := &fakes{recordAfter: map[string]time.Duration{"tenant.suspended": time.Minute}}
	f.register(env)
	provision(env)
	var suspend, resume updateResult
	transition(env, time.Minute, domain.OpSuspend, "s", &suspend)
	transition(env, time.Minute+30*time.Second, domain.OpResume, "r", &resume)
	p := params()
	p.MaxOperationsPerRun = 1
	env.ExecuteWorkflow(TenantWorkflow, p)

	if suspend.err != nil || resume.err != nil {
		t.Fatalf("suspend %v, resume %v", suspend.err, resume.err)
	}
	next := continuedAs(t, env)
	if next.Continued.State != domain.StateActive || !slices.Equal(f.steps, []string{"schema", "keys", "route", "suspend_route", "resume_route"}) {
		t.Fatalf("next run %+v after steps %v", next.Continued, f.steps)
	}
}

func TestALongLivedTenantContinuesAsNewWithItsState(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend, resume updateResult
	transition(env, time.Minute, domain.OpSuspend, "a", &suspend)
	transition(env, 2*time.Minute, domain.OpResume, "b", &resume)
	p := params()
	p.MaxOperationsPerRun = 2
	env.ExecuteWorkflow(TenantWorkflow, p)
	next := continuedAs(t, env)
	if next.Continued.State != domain.StateActive || next.Continued.EventSeq != len(f.events) {
		t.Fatalf("next run = %+v after %d events", next.Continued, len(f.events))
	}

	// The next run takes transitions at once, with no provisioning.
	env2 := s.NewTestWorkflowEnvironment()
	f2 := &fakes{}
	f2.register(env2)
	var again, end updateResult
	transition(env2, time.Minute, domain.OpSuspend, "c", &again)
	transition(env2, time.Hour, domain.OpDecommission, "end", &end)
	env2.ExecuteWorkflow(TenantWorkflow, next)
	mustComplete(t, env2)
	if again.err != nil || f2.steps[0] != "suspend_route" {
		t.Fatalf("second run: err %v, steps %v", again.err, f2.steps)
	}
}

func TestACancellationRequestIsRefusedAndTheSagaGoesOn(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{stepAfter: map[domain.Step]time.Duration{domain.StepKeys: time.Minute}}
	f.register(env)
	provision(env)
	// Cancelled while a step runs, then again while idle.
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 30*time.Second)
	var st Status
	queryAt(env, time.Hour, &st)
	var suspend, decom updateResult
	transition(env, 2*time.Hour, domain.OpSuspend, "s", &suspend)
	transition(env, 3*time.Hour, domain.OpDecommission, "d", &decom)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if suspend.err != nil || decom.err != nil {
		t.Fatalf("suspend %v, decommission %v", suspend.err, decom.err)
	}
	if !st.CancelRequested || st.State != domain.StateActive {
		t.Fatalf("status after the cancellation request = %+v", st)
	}
	if slices.Contains(f.events, "tenant.saga_stuck") {
		t.Fatalf("a cancellation was taken for a stuck step: %v", f.events)
	}
}

func TestAnOperatorCancelInTheGracePeriodRestoresTheTenant(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var decom, wrong, cancel, resume, end updateResult
	transition(env, time.Minute, domain.OpDecommission, "d", &decom)
	sendRepair(env, 24*time.Hour, RepairCancel, RepairRequest{Operator: "bob", OperationID: "op_decommission_d", Step: "suspend_route"}, &wrong)
	sendRepair(env, 24*time.Hour+time.Second, RepairCancel, RepairRequest{Operator: "bob", OperationID: "op_decommission_d", Step: domain.StepGracePeriod}, &cancel)
	transition(env, 25*time.Hour, domain.OpResume, "u", &resume)
	transition(env, 26*time.Hour, domain.OpDecommission, "end", &end)
	env.ExecuteWorkflow(TenantWorkflow, params())

	mustComplete(t, env)
	if wrong.code() != domain.CodeConflict {
		t.Fatalf("a cancel naming the wrong step: %v", wrong.err)
	}
	if decom.err != nil || cancel.err != nil || resume.err != nil || end.err != nil {
		t.Fatalf("decommission %v, cancel %v, resume %v, end %v", decom.err, cancel.err, resume.err, end.err)
	}
	wantStates := []domain.State{domain.StateActive, domain.StateDecommissioning, domain.StateSuspended, domain.StateActive,
		domain.StateDecommissioning, domain.StateDecommissioned}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
	if !slices.Contains(f.events, "tenant.restored") {
		t.Fatalf("events = %v", f.events)
	}
}

func TestARefusedCreationEndsWithItsRefusal(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.ReserveTenant, mock.Anything, mock.Anything).Return(activities.OperationResult{},
		temporal.NewNonRetryableApplicationError("tenant quota reached", string(domain.CodeConflict), nil))
	provision(env)
	env.ExecuteWorkflow(TenantWorkflow, params())
	mustComplete(t, env)
	var res TenantResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Rejection == nil || res.Rejection.Code != domain.CodeConflict || res.Rejection.Name != "prod" {
		t.Fatalf("result = %+v", res)
	}
}

func TestAnInfrastructureFailureOfTheReservationIsRetriedNotTakenForARefusal(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// Postgres is away for the first 8 attempts (the unit-test
	// environment caps retries at 10).
	f := &fakes{reserveOutage: 8}
	f.register(env)
	var created, end updateResult
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateProvision, "provision", created.callbacks(), ProvisionRequest{OperationID: "op_1"})
	}, 0)
	transition(env, 2*time.Hour, domain.OpDecommission, "end", &end)
	env.ExecuteWorkflow(TenantWorkflow, params())
	mustComplete(t, env)
	if created.err != nil || end.err != nil || f.reserves != 9 {
		t.Fatalf("create %v after %d attempts, end %v", created.err, f.reserves, end.err)
	}
}

// TestAnEphemeralTenantIsDecommissionedWhenItsLifetimeEnds: a tenant
// created with a lifetime is decommissioned by its saga when the lifetime
// ends, with no grace period, as the system acting for whoever created it.
func TestAnEphemeralTenantIsDecommissionedWhenItsLifetimeEnds(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend updateResult
	transition(env, time.Minute, domain.OpSuspend, "a", &suspend)
	start := env.Now()
	bot := domain.Actor{Type: "service_account", ID: "sa_1", Name: "ci-bot", OnBehalfOf: &domain.Actor{Type: "member", ID: "mem_1", Email: "a@x.test"}}
	p := params()
	p.Expiry = &Expiry{At: start.Add(2 * time.Hour), For: bot, UserID: "usr_1"}
	env.ExecuteWorkflow(TenantWorkflow, p)

	mustComplete(t, env)
	if suspend.err != nil {
		t.Fatal(suspend.err)
	}
	if took := env.Now().Sub(start); took < 2*time.Hour || took > 3*time.Hour {
		t.Fatalf("decommissioned %v after the start, want at the end of its 2h lifetime with no grace period", took)
	}
	want := []string{"schema", "keys", "route", "suspend_route", "delete_route", "delete_keys", "drop_schema"}
	if !slices.Equal(f.steps, want) {
		t.Fatalf("steps = %v, want %v", f.steps, want)
	}
	wantStates := []domain.State{domain.StateActive, domain.StateSuspended, domain.StateDecommissioning, domain.StateDecommissioned}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
	if kinds := f.begunKinds(); !slices.Equal(kinds, []domain.OpKind{domain.OpSuspend, domain.OpDecommission}) {
		t.Fatalf("operations begun: %v", kinds)
	}
	got := f.begun[1].Request
	if got.Actor.Type != "system" || got.Actor.OnBehalfOf == nil || got.Actor.OnBehalfOf.ID != "sa_1" || got.Actor.OnBehalfOf.OnBehalfOf.ID != "mem_1" || got.UserID != "usr_1" {
		t.Fatalf("the expiry's request: %+v", got)
	}
}

// TestAnEphemeralTenantDecommissionedBeforeItsEndIsLeftAlone: a member's
// decommission that completes before the lifetime ends leaves nothing for
// the expiry to do, and the workflow ends without waiting for it.
func TestAnEphemeralTenantDecommissionedBeforeItsEndIsLeftAlone(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var decom updateResult
	transition(env, time.Minute, domain.OpDecommission, "a", &decom)
	start := env.Now()
	p := params()
	p.Expiry = &Expiry{At: start.Add(30 * 24 * time.Hour), For: domain.Actor{Type: "member", ID: "mem_1"}, UserID: "usr_1"}
	env.ExecuteWorkflow(TenantWorkflow, p)

	mustComplete(t, env)
	if kinds := f.begunKinds(); !slices.Equal(kinds, []domain.OpKind{domain.OpDecommission}) {
		t.Fatalf("operations begun: %v", kinds)
	}
	if took := env.Now().Sub(start); took > 4*24*time.Hour {
		t.Fatalf("the workflow ran %v, waiting for a lifetime that no longer matters", took)
	}
}
