package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/workflows"
)

// TestAWorkerGivenARevisionItDoesNotKnowFailsTheTaskInsteadOfRunningIt
// starts, on a real Temporal, a tenant run of a revision newer than this
// build's: the worker fails its workflow task again and again (so a worker
// that knows the revision can take it), writes nothing, and the run stays
// open with its history intact.
func TestAWorkerGivenARevisionItDoesNotKnowFailsTheTaskInsteadOfRunningIt(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflow(workflows.TenantWorkflow)
		r.RegisterActivity(&activities.Activities{DB: h.DB})
	})
	id := domain.NewID(domain.PrefixTenant)
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "tenant/revision-drill/" + id, TaskQueue: tq},
		workflows.TenantWorkflow, workflows.TenantParams{TenantID: id, OrgID: "org_drill", Name: "newer", Environment: "prod",
			Hostname: "newer.example.test", StepMaxAttempts: 2, DecommissionGrace: time.Second, ReservationTimeout: time.Hour,
			MaxOperationsPerRun: 100, Revision: workflows.RevisionCurrent + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Temporal.TerminateWorkflow(context.Background(), run.GetID(), "", "revision drill over") })

	var failures int
	var cause string
	eventually(t, func() bool {
		failures, cause = 0, ""
		hist := workflowHistory(t, h, run.GetID(), run.GetRunID())
		for _, ev := range hist.Events {
			switch ev.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_TASK_FAILED:
				failures++
				cause = ev.GetWorkflowTaskFailedEventAttributes().GetFailure().GetMessage()
			case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, enumspb.EVENT_TYPE_MARKER_RECORDED, enumspb.EVENT_TYPE_TIMER_STARTED:
				t.Fatalf("the run of an unknown revision issued a command: %v", ev.GetEventType())
			}
		}
		return failures >= 1
	})
	if !strings.Contains(cause, "unknown to this worker") {
		t.Fatalf("the task failed with %q", cause)
	}
	desc, err := h.Temporal.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("the run is %v, want running (waiting for a worker that knows its revision)", st)
	}
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM tenants WHERE id = ?", id).Scan(ctx, &n); err != nil || n != 0 {
		t.Fatalf("tenant rows: %d, %v", n, err)
	}
	t.Logf("%d failed workflow tasks: %s", failures, cause)
}
