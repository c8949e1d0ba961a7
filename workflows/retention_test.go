package workflows

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"

	"github.com/intelliauth/controlplane/activities"
)

func TestARetentionRunPurgesAtItsStartTimeWithTheScheduledSettings(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var a *activities.Activities
	env.RegisterActivity(a)
	var got activities.RetentionInput
	env.OnActivity(a.PurgeAuditTrails, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.RetentionInput) (activities.RetentionProgress, error) {
			got = in
			return activities.RetentionProgress{After: "org_z", Orgs: 2, Events: 4000}, nil
		})
	env.ExecuteWorkflow(AuditRetentionWorkflow, RetentionParams{Revision: RetentionRevisionCurrent, BatchSize: 500, Pause: time.Second})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("completed %v: %v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	var done activities.RetentionProgress
	if err := env.GetWorkflowResult(&done); err != nil || done.Events != 4000 || done.Orgs != 2 {
		t.Fatalf("result %+v %v", done, err)
	}
	if !got.At.Equal(start) || got.BatchSize != 500 || got.Pause != time.Second || got.StreamWait != 0 || got.RestFactor != DefaultRestFactor {
		t.Fatalf("the activity was given %+v", got)
	}
}

func TestARetentionRunOfAnUnknownRevisionIsRefused(t *testing.T) {
	for _, rev := range []int{0, 99} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		var a *activities.Activities
		env.RegisterActivity(a)
		env.ExecuteWorkflow(AuditRetentionWorkflow, RetentionParams{Revision: rev})
		if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "is unknown to this worker") {
			t.Fatalf("revision %d: %v", rev, err)
		}
	}
}

func TestTheRetentionScheduleRunsDailyOneAtATimeAtTheCurrentRevision(t *testing.T) {
	s := retentionSchedule(RetentionScheduleID, "cp")
	if s.ID != RetentionScheduleID || len(s.Spec.Intervals) != 1 || s.Spec.Intervals[0].Every != 24*time.Hour || s.Overlap.String() != "Skip" {
		t.Fatalf("schedule %+v", s)
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != RetentionWorkflowType || a.TaskQueue != "cp" || len(a.Args) != 1 ||
		a.Args[0].(RetentionParams).Revision != RetentionRevisionCurrent {
		t.Fatalf("action %+v", s.Action)
	}
}
