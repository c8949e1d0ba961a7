package workflows

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

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
