package workflows

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// billingFakes stands in for the billing activities: an event id names
// the status it leaves (fail-…: past_due with the grace, anything else:
// active), each applied once.
type billingFakes struct {
	mu        sync.Mutex
	applied   []string
	ended     []time.Time
	cancelled []string
	env       *testsuite.TestWorkflowEnvironment
}

func (f *billingFakes) register(env *testsuite.TestWorkflowEnvironment, grace time.Duration) {
	f.env = env
	var a *activities.Billing
	env.RegisterActivity(a)
	env.OnActivity(a.ApplyBillingEvent, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyBillingEventInput) (activities.BillingEventResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.applied = append(f.applied, in.EventID)
			if len(in.EventID) > 5 && in.EventID[:5] == "fail-" {
				ends := f.env.Now().Add(grace)
				return activities.BillingEventResult{Outcome: domain.BillingEventApplied, Status: string(domain.BillingPastDue), GraceEndsAt: &ends}, nil
			}
			return activities.BillingEventResult{Outcome: domain.BillingEventApplied, Status: string(domain.BillingActive)}, nil
		})
	env.OnActivity(a.EndBillingGrace, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EndGraceInput) (activities.GraceEndResult, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.ended = append(f.ended, in.GraceEndsAt)
			return activities.GraceEndResult{Ended: true, SubscriptionID: "sub_1"}, nil
		})
	env.OnActivity(a.CancelBillingSubscription, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CancelSubscriptionInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.cancelled = append(f.cancelled, in.SubscriptionID)
			return nil
		})
}

func billingEnv(t *testing.T, grace time.Duration) (*testsuite.TestWorkflowEnvironment, *billingFakes) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(BillingWorkflow, workflow.RegisterOptions{Name: BillingWorkflowType})
	f := &billingFakes{}
	f.register(env, grace)
	return env, f
}

func signalAt(env *testsuite.TestWorkflowEnvironment, after time.Duration, id string) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalStripeEvent, BillingEventSignal{EventID: id}) }, after)
}

func TestAFailedPaymentsGraceEndsOnItsTimerAndTheSubscriptionIsCancelled(t *testing.T) {
	env, f := billingEnv(t, 14*24*time.Hour)
	signalAt(env, time.Second, "evt_co")
	signalAt(env, time.Minute, "fail-1")
	signalAt(env, time.Minute+time.Second, "fail-1") // a duplicate delivery
	env.ExecuteWorkflow(BillingWorkflowType, BillingParams{OrgID: domain.NewID(domain.PrefixOrganization), Grace: 14 * 24 * time.Hour, Revision: BillingRevisionCurrent})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.ended) != 1 || len(f.cancelled) != 1 || f.cancelled[0] != "sub_1" {
		t.Fatalf("grace ends %v, cancelled %v: want one each", f.ended, f.cancelled)
	}
	if len(f.applied) != 3 {
		t.Fatalf("applied %v: each signal is handed to the activity, which applies an event once", f.applied)
	}
}

func TestAPaymentWithinTheGraceCallsItsEndOff(t *testing.T) {
	env, f := billingEnv(t, time.Hour)
	signalAt(env, time.Second, "fail-1")
	signalAt(env, 30*time.Minute, "evt_paid")
	env.ExecuteWorkflow(BillingWorkflowType, BillingParams{OrgID: domain.NewID(domain.PrefixOrganization), Grace: time.Hour, Revision: BillingRevisionCurrent})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(f.ended) != 0 || len(f.cancelled) != 0 {
		t.Fatalf("the grace ended although paid: %v %v", f.ended, f.cancelled)
	}
}

func TestABillingRunOfAnUnknownRevisionFails(t *testing.T) {
	env, _ := billingEnv(t, time.Hour)
	env.ExecuteWorkflow(BillingWorkflowType, BillingParams{OrgID: domain.NewID(domain.PrefixOrganization), Grace: time.Hour, Revision: 99})
	if err := env.GetWorkflowError(); err == nil {
		t.Fatal("a run of revision 99 ran")
	}
}

func TestWhatContinueAsNewCarriesIsTakenUp(t *testing.T) {
	// The events queued are applied first.
	env, f := billingEnv(t, time.Hour)
	ends := env.Now().Add(2 * time.Hour)
	env.ExecuteWorkflow(BillingWorkflowType, BillingParams{OrgID: domain.NewID(domain.PrefixOrganization), Grace: time.Hour, Revision: BillingRevisionCurrent,
		Continued: &BillingContinued{Pending: []string{"evt_queued"}}})
	if err := env.GetWorkflowError(); err != nil || len(f.applied) != 1 || f.applied[0] != "evt_queued" {
		t.Fatalf("the queued event: %v %v", f.applied, err)
	}
	// A grace running still ends on its timer.
	env, f = billingEnv(t, time.Hour)
	ends = env.Now().Add(2 * time.Hour)
	env.ExecuteWorkflow(BillingWorkflowType, BillingParams{OrgID: domain.NewID(domain.PrefixOrganization), Grace: time.Hour, Revision: BillingRevisionCurrent,
		Continued: &BillingContinued{GraceEndsAt: &ends}})
	if err := env.GetWorkflowError(); err != nil || len(f.ended) != 1 || !f.ended[0].Equal(ends) {
		t.Fatalf("the carried grace: %v %v", f.ended, err)
	}
}
