package workflows

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// orgFakes stands in for an organisation deletion's activities: it records
// what the saga asked for, and the watch answers from watches in turn.
type orgFakes struct {
	mu       sync.Mutex
	calls    []string
	events   []string
	watches  []activities.TenantsLeft
	suspends int
}

func (f *orgFakes) note(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *orgFakes) register(env *testsuite.TestWorkflowEnvironment) {
	var a *activities.Activities
	env.RegisterActivity(a)
	env.OnActivity(a.BeginOrgDeletion, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.OrgInput) (activities.OrgResult, error) {
			f.note("begin")
			due := in.DueAt
			return activities.OrgResult{Organization: activities.OrganizationRecord{ID: in.OrgID, State: "deleting", DeletionDueAt: &due},
				Operation: activities.OrgOperationRecord{ID: in.OperationID, Kind: "deletion", Status: "running", DueAt: &due}}, nil
		})
	env.OnActivity(a.RestoreOrg, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.OrgInput) (activities.OrgResult, error) {
			f.note("restore")
			return activities.OrgResult{Organization: activities.OrganizationRecord{ID: in.OrgID, State: "active"},
				Operation: activities.OrgOperationRecord{ID: in.OperationID, Kind: "restore", Status: "succeeded"}}, nil
		})
	env.OnActivity(a.SuspendOrgTenants, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.OrgTenantsInput) error {
			f.mu.Lock()
			f.suspends++
			f.mu.Unlock()
			return nil
		})
	env.OnActivity(a.EndOrgTenants, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.OrgTenantsInput) error {
			f.note("end:" + in.Key)
			return nil
		})
	env.OnActivity(a.WatchOrgTenants, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.WatchInput) (activities.TenantsLeft, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			next := f.watches[0]
			if len(f.watches) > 1 {
				f.watches = f.watches[1:]
			}
			return next, nil
		})
	env.OnActivity(a.RecordOrg, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.OrgRecordInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.events = append(f.events, in.Action)
			return nil
		})
	env.OnActivity(a.EraseOrganization, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.EraseInput) (activities.ErasureResult, error) {
			f.note("erase")
			return activities.ErasureResult{Erased: 1}, nil
		})
}

func orgParams() OrganizationParams {
	return OrganizationParams{OrgID: "org_1", Grace: time.Hour, ReservationTimeout: time.Minute, Revision: OrgRevisionCurrent}
}

func orgUpdate(env *testsuite.TestWorkflowEnvironment, at time.Duration, name, id string, arg any, res *updateResult) {
	env.RegisterDelayedCallback(func() { env.UpdateWorkflow(name, id, res.callbacks(), arg) }, at)
}

func orgQueryAt(env *testsuite.TestWorkflowEnvironment, at time.Duration, out *OrganizationStatus) {
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			_ = v.Get(out)
		}
	}, at)
}

func TestADeletionWaitsOutItsGraceThenEndsTheTenantsWaitsForTheStuckOneAndErases(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &orgFakes{watches: []activities.TenantsLeft{{Left: 2, Stuck: []string{"tnt_S"}}, {Left: 1, Stuck: []string{}}, {Left: 0, Stuck: []string{}}}}
	f.register(env)
	var del, other, late updateResult
	var inGrace OrganizationStatus
	orgUpdate(env, 0, UpdateDelete, DeletionUpdateID("k"), DeletionRequest{Confirm: "acme", Request: activities.Request{Actor: domain.Actor{Type: "member", ID: "mem_1"}}}, &del)
	orgUpdate(env, time.Minute, UpdateDelete, DeletionUpdateID("other"), DeletionRequest{Confirm: "acme"}, &other)
	orgQueryAt(env, 30*time.Minute, &inGrace)
	orgUpdate(env, time.Hour+time.Nanosecond, UpdateRestore, RestoreUpdateID("late"), RestoreRequest{}, &late)
	env.ExecuteWorkflow(OrganizationWorkflow, orgParams())

	mustComplete(t, env)
	var res OrganizationResult
	if err := env.GetWorkflowResult(&res); err != nil || res.State != "deleted" {
		t.Fatalf("result %+v %v", res, err)
	}
	if del.err != nil || other.code() != domain.CodeConflict {
		t.Fatalf("the deletion %v; another while it runs %v", del.err, other.err)
	}
	if inGrace.Phase != OrgPhaseGrace || inGrace.DueAt == nil || inGrace.Saga != SagaRunning {
		t.Fatalf("status in the grace period: %+v", inGrace)
	}
	if late.done && late.err == nil {
		t.Fatal("a restore after the due time was taken")
	}
	opID := domain.DerivedID(domain.PrefixOperation, "default-test-workflow-id", DeletionUpdateID("k"))
	want := []string{"begin", "end:organization-deletion-" + opID, "erase"}
	if !slices.Equal(f.calls, want) || f.suspends == 0 {
		t.Fatalf("calls = %v (suspends %d), want %v", f.calls, f.suspends, want)
	}
	if !slices.Equal(f.events, []string{"organization.saga_stuck", "organization.saga_resolved"}) {
		t.Fatalf("events = %v", f.events)
	}
}

func TestARestoreInTheGracePeriodEndsTheRunAndNoTenantIsEnded(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &orgFakes{watches: []activities.TenantsLeft{{}}}
	f.register(env)
	var del, restore, again updateResult
	orgUpdate(env, 0, UpdateDelete, DeletionUpdateID("k"), DeletionRequest{Confirm: "acme"}, &del)
	orgUpdate(env, 30*time.Minute, UpdateRestore, RestoreUpdateID("r"), RestoreRequest{}, &restore)
	orgUpdate(env, 30*time.Minute+time.Second, UpdateRestore, RestoreUpdateID("r2"), RestoreRequest{}, &again)
	env.ExecuteWorkflow(OrganizationWorkflow, orgParams())

	mustComplete(t, env)
	var res OrganizationResult
	if err := env.GetWorkflowResult(&res); err != nil || res.State != "active" {
		t.Fatalf("result %+v %v", res, err)
	}
	if del.err != nil || restore.err != nil {
		t.Fatalf("delete %v, restore %v", del.err, restore.err)
	}
	if !slices.Equal(f.calls, []string{"begin", "restore"}) {
		t.Fatalf("calls = %v", f.calls)
	}
	if again.done && again.err == nil {
		t.Fatal("a second restore was taken")
	}
}

func TestARunWhoseDeleteNeverArrivesEnds(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	(&orgFakes{}).register(env)
	env.ExecuteWorkflow(OrganizationWorkflow, orgParams())
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() == nil {
		t.Fatalf("completed %v, err %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
}
