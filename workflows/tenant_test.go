package workflows

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// fakes stands in for the activities: it records the data-plane steps and
// the recorded states, and fails the steps it is told to.
type fakes struct {
	mu     sync.Mutex
	steps  []string
	states []domain.State
	events []string
	fail   map[string]bool
}

func (f *fakes) register(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.ReserveTenant, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReserveInput) (activities.ReserveResult, error) {
			return activities.ReserveResult{Tenant: in.Tenant, Operation: store.Operation{ID: in.OperationID}}, nil
		})
	env.OnActivity(a.BeginOperation, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.BeginInput) (activities.ReserveResult, error) {
			return activities.ReserveResult{Operation: store.Operation{ID: in.OperationID, Kind: string(in.Kind)}}, nil
		})
	env.OnActivity(a.RunStep, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StepInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.steps = append(f.steps, in.Step)
			if f.fail[in.Step] {
				return temporal.NewApplicationError("injected", "TEST")
			}
			return nil
		})
	env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RecordInput) (store.Tenant, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if in.State != "" {
				f.states = append(f.states, in.State)
			}
			if in.Action != "" {
				f.events = append(f.events, in.Action)
			}
			return store.Tenant{}, nil
		})
}

func params() TenantParams {
	return TenantParams{TenantID: "tnt_1", OrgID: "org_1", Name: "prod", Hostname: "prod-acme.test", StepMaxAttempts: 2, DecommissionGrace: 72 * time.Hour}
}

type updateResult struct{ err error }

func (u *updateResult) callbacks() *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { u.err = err },
		OnComplete: func(_ interface{}, err error) { u.err = errors.Join(u.err, err) },
	}
}

func provision(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateProvision, "provision", (&updateResult{}).callbacks(), ProvisionRequest{OperationID: "op_1"})
	}, 0)
}

func transition(env *testsuite.TestWorkflowEnvironment, at time.Duration, kind domain.OpKind, res *updateResult) {
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateTransition, string(kind)+"-"+at.String(), res.callbacks(), TransitionRequest{Kind: kind, OperationID: "op_" + string(kind)})
	}, at)
}

func TestProvisionSuspendThenDecommissionAfterTheGracePeriod(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend, again, decom updateResult
	transition(env, time.Minute, domain.OpSuspend, &suspend)
	transition(env, 2*time.Minute, domain.OpSuspend, &again)
	transition(env, 3*time.Minute, domain.OpDecommission, &decom)
	env.ExecuteWorkflow(TenantWorkflow, params())

	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v, err %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	if suspend.err != nil || decom.err != nil {
		t.Fatalf("suspend %v, decommission %v", suspend.err, decom.err)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(again.err, &appErr) || appErr.Type() != string(domain.CodeConflict) {
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

func TestAFailedStepIsStuckAndCompensateUndoesCompletedStepsInReverse(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{fail: map[string]bool{"route": true}}
	f.register(env)
	provision(env)
	var status Status
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			_ = v.Get(&status)
		}
		env.SignalWorkflow(SignalCompensate, OperatorSignal{Operator: "alice"})
	}, time.Hour)
	env.ExecuteWorkflow(TenantWorkflow, params())

	if status.Saga != SagaStuck || status.StuckStep != "route" {
		t.Fatalf("status while stuck = %+v", status)
	}
	// Two attempts of route (the bound), then the compensations in reverse.
	want := []string{"schema", "keys", "route", "route", "delete_keys", "drop_schema"}
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

func TestACancelSignalDuringTheGracePeriodRestoresTheTenant(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var decom, resume updateResult
	transition(env, time.Minute, domain.OpDecommission, &decom)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalCancel, OperatorSignal{Operator: "bob"}) }, 24*time.Hour)
	transition(env, 25*time.Hour, domain.OpResume, &resume)
	env.RegisterDelayedCallback(func() { env.CancelWorkflow() }, 200*time.Hour)
	env.ExecuteWorkflow(TenantWorkflow, params())

	if decom.err != nil || resume.err != nil {
		t.Fatalf("decommission %v, resume %v", decom.err, resume.err)
	}
	if slices.Contains(f.steps, "drop_schema") {
		t.Fatalf("a restored tenant lost its resources: %v", f.steps)
	}
	wantStates := []domain.State{domain.StateActive, domain.StateDecommissioning, domain.StateSuspended, domain.StateActive}
	if !slices.Equal(f.states, wantStates) {
		t.Fatalf("states = %v, want %v", f.states, wantStates)
	}
	if !slices.Contains(f.events, "tenant.restored") {
		t.Fatalf("events = %v", f.events)
	}
}

func TestALongLivedTenantContinuesAsNewWithItsState(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakes{}
	f.register(env)
	provision(env)
	var suspend, resume updateResult
	transition(env, time.Minute, domain.OpSuspend, &suspend)
	transition(env, 2*time.Minute, domain.OpResume, &resume)
	p := params()
	p.MaxOperationsPerRun = 2
	env.ExecuteWorkflow(TenantWorkflow, p)

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("err = %v, want continue-as-new", err)
	}
	var next TenantParams
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Continued == nil || next.Continued.State != domain.StateActive || next.TenantID != "tnt_1" {
		t.Fatalf("next run = %+v", next)
	}

	// The next run takes transitions at once, with no provisioning.
	env2 := s.NewTestWorkflowEnvironment()
	f2 := &fakes{}
	f2.register(env2)
	var again updateResult
	transition(env2, time.Minute, domain.OpSuspend, &again)
	env2.RegisterDelayedCallback(func() { env2.CancelWorkflow() }, time.Hour)
	env2.ExecuteWorkflow(TenantWorkflow, next)
	if again.err != nil || len(f2.steps) != 1 || f2.steps[0] != "suspend_route" {
		t.Fatalf("second run: err %v, steps %v", again.err, f2.steps)
	}
}
