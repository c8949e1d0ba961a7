package workflows

import (
	"context"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

// usageSchedule is the Schedule as this release writes it: daily after
// UTC midnight, skipping a run while the last still runs, starting
// UsageCloseWorkflow on taskQueue at the current revision.
func usageSchedule(id, taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: usageEvery, Offset: usageOffset}}},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: usageCatchupWindow,
		Note:          "usage close (SPEC §10): closes yesterday's metered usage of every organisation; docs/runbook.md, Usage close",
		Action: &client.ScheduleWorkflowAction{
			ID:        UsageWorkflowID,
			Workflow:  UsageCloseWorkflowType,
			Args:      []any{UsageParams{Revision: UsageRevisionCurrent}},
			TaskQueue: taskQueue,
		},
	}
}

// EnsureUsageSchedule creates the usage close Schedule (id:
// UsageScheduleID; a test gives its own), or updates it to this release's
// when it exists, as EnsureRetentionSchedule does: every worker calls it
// at start. Whether it is paused is the operators' and stays as it is.
func EnsureUsageSchedule(ctx context.Context, c client.Client, id, taskQueue string) error {
	return ensureSchedule(ctx, c, usageSchedule(id, taskQueue))
}
