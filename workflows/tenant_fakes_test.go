package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/operator"
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

// repairOperators are the operators the operator gateway would have
// verified for the repairs sendRepair sends, by update id: the test
// environment sends updates without headers, so the saga asks these.
var (
	repairOperators sync.Map
	repairSeq       atomic.Int64
	trustRepairs    = operator.TrustedPropagator(func(id string) string {
		name, _ := repairOperators.Load(id)
		s, _ := name.(string)
		return s
	})
)

// sendRepair sends a repair at the time given, as if through the operator
// gateway from in.Operator's certificate ("": from no certificate).
func sendRepair(env *testsuite.TestWorkflowEnvironment, at time.Duration, r Repair, in RepairRequest, res *updateResult) {
	id := fmt.Sprintf("repair-%d", repairSeq.Add(1))
	repairOperators.Store(id, in.Operator)
	env.SetContextPropagators([]workflow.ContextPropagator{trustRepairs})
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(string(r), id, res.callbacks(), in)
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
