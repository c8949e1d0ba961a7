package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// streamFakes stands in for a stream's activities: each delivery answers
// the next of script (the last one again when it runs out) and notes when
// it ran; a failure's FailingSince is the first failure's time.
type streamFakes struct {
	mu        sync.Mutex
	script    []activities.DeliverResult
	calls     []time.Duration
	attempts  []int
	since     *time.Time
	suspended []time.Time
	start     time.Time
	env       *testsuite.TestWorkflowEnvironment
}

func (f *streamFakes) register(env *testsuite.TestWorkflowEnvironment) {
	f.env, f.start = env, env.Now()
	var a *activities.Streams
	env.RegisterActivity(a)
	env.OnActivity(a.DeliverStream, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.DeliverInput) (activities.DeliverResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			now := f.env.Now()
			f.calls, f.attempts = append(f.calls, now.Sub(f.start)), append(f.attempts, in.Attempt)
			res := f.script[0]
			if len(f.script) > 1 {
				f.script = f.script[1:]
			}
			if res.Failed {
				if f.since == nil {
					f.since = &now
				}
				res.FailingSince = f.since
			} else {
				f.since = nil
			}
			return res, nil
		})
	env.OnActivity(a.SuspendStream, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SuspendInput) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.suspended = append(f.suspended, in.Since)
			return true, nil
		})
}

func streamParams() StreamParams {
	return StreamParams{StreamID: domain.NewID(domain.PrefixAuditStream), OrgID: "org_1", DeliveryQueue: "q-streams",
		SuspendAfter: 10 * time.Second, Revision: StreamRevisionCurrent}
}

var (
	caughtUp = activities.DeliverResult{Status: domain.StreamActive, CaughtUp: true}
	refused  = activities.DeliverResult{Status: domain.StreamFailing, Failed: true, Error: "receiver answered 503 Service Unavailable", HTTPStatus: 503}
	held     = activities.DeliverResult{Status: domain.StreamSuspended}
	gone     = activities.DeliverResult{Gone: true}
)

func wakeAt(env *testsuite.TestWorkflowEnvironment, at time.Duration) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalWake, nil) }, at)
}

func TestACaughtUpStreamSleepsUntilWokenAndAFailingOneBacksOffThenIsSuspendedUntilAPersonResumesIt(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &streamFakes{script: []activities.DeliverResult{caughtUp, refused, refused, refused, refused, refused, gone}}
	f.register(env)
	wakeAt(env, 30*time.Minute) // new events: the failures begin
	wakeAt(env, 90*time.Minute) // a person resumes the suspended stream
	var backingOff StreamStatus
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryStatus)
		if err == nil {
			_ = v.Get(&backingOff)
		}
	}, 30*time.Minute+2*time.Second)
	p := streamParams()
	env.ExecuteWorkflow(StreamWorkflow, p)
	mustComplete(t, env)

	// Caught up at 0, then woken at 30 min; the failures at 30 min + 0,
	// 1, 3, 7, 15 s (1, 2, 4, 8 s, each stretched by the stream's own
	// fraction, at most a fifth), the fifth beyond SuspendAfter: suspended
	// and held until the wake at 90 min, which finds it deleted.
	if len(f.calls) != 7 || f.calls[0] != 0 || f.calls[1] != 30*time.Minute || f.calls[6] != 90*time.Minute {
		t.Fatalf("deliveries at %v", f.calls)
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		gap := f.calls[i+2] - f.calls[i+1]
		if gap < want || gap > want+want/5 {
			t.Errorf("backoff %d: %s, want %s to %s", i+1, gap, want, want+want/5)
		}
	}
	if len(f.suspended) != 1 || f.attempts[5] != 5 || f.attempts[6] != 1 {
		t.Fatalf("suspended %v; attempts %v", f.suspended, f.attempts)
	}
	if backingOff.Phase != StreamPhaseBackoff || backingOff.Failures != 2 || backingOff.NextAttemptAt == nil || backingOff.LastError == "" {
		t.Fatalf("status while backing off: %+v", backingOff)
	}
}

func TestAReceiversRetryAfterIsHonoured(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	busy := refused
	busy.HTTPStatus, busy.RetryAfter = 429, 90*time.Second
	f := &streamFakes{script: []activities.DeliverResult{busy, gone}}
	f.register(env)
	env.ExecuteWorkflow(StreamWorkflow, streamParams())
	mustComplete(t, env)
	if len(f.calls) != 2 || f.calls[1] != 90*time.Second {
		t.Fatalf("deliveries at %v, want the second after 90 s", f.calls)
	}
}

func TestAStreamFarBehindContinuesAsNewWithItsFailuresInARow(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	more := activities.DeliverResult{Status: domain.StreamActive, Events: 500, Batches: 1}
	f := &streamFakes{script: []activities.DeliverResult{more}}
	f.register(env)
	env.ExecuteWorkflow(StreamWorkflow, streamParams())
	var can *workflow.ContinueAsNewError
	if !errors.As(env.GetWorkflowError(), &can) {
		t.Fatalf("the run ended with %v, want a continue-as-new", env.GetWorkflowError())
	}
	if len(f.calls) != streamLoopsPerRun {
		t.Fatalf("%d deliveries in the run, want %d", len(f.calls), streamLoopsPerRun)
	}
}

func TestAStreamRunOfAnUnknownRevisionIsRefused(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	(&streamFakes{script: []activities.DeliverResult{gone}}).register(env)
	p := streamParams()
	p.Revision = 99
	env.ExecuteWorkflow(StreamWorkflow, p)
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
		t.Fatalf("a run of revision 99: %v", err)
	}
}

func TestAHeldStreamWaitsForAWakeWithOneTimerAnHourAndNothingElse(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &streamFakes{script: []activities.DeliverResult{held, held, gone}}
	f.register(env)
	wakeAt(env, 90*time.Minute)
	env.ExecuteWorkflow(StreamWorkflow, streamParams())
	mustComplete(t, env)
	if len(f.calls) != 3 || f.calls[1] != streamIdleWake || f.calls[2] != 90*time.Minute {
		t.Fatalf("deliveries at %v, want 0, %s (its timer) and 90m (the wake)", f.calls, streamIdleWake)
	}
}
