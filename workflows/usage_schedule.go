package workflows

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
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
	want := usageSchedule(id, taskQueue)
	var err error
	for range 3 {
		if _, err = c.ScheduleClient().Create(ctx, want); !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			break
		}
		err = c.ScheduleClient().GetHandle(ctx, id).Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				s := in.Description.Schedule
				s.Spec, s.Action = &want.Spec, want.Action
				s.Policy = &client.SchedulePolicies{Overlap: want.Overlap, CatchupWindow: want.CatchupWindow}
				return &client.ScheduleUpdate{Schedule: &s}, nil
			},
		})
		if err == nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("create or update the schedule %s: %w", id, err)
	}
	return nil
}
