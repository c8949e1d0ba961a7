package workflows

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
)

// retentionSchedule is the Schedule as this release writes it: daily,
// skipping a run while the last still runs, starting
// AuditRetentionWorkflow on taskQueue at the current revision.
func retentionSchedule(id, taskQueue string) client.ScheduleOptions {
	return client.ScheduleOptions{
		ID:            id,
		Spec:          client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: retentionEvery, Offset: retentionOffset}}},
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: retentionCatchupWindow,
		Note:          "audit retention (SPEC §9): purges events past each plan's window; docs/runbook.md, Audit retention",
		Action: &client.ScheduleWorkflowAction{
			ID:        RetentionWorkflowID,
			Workflow:  RetentionWorkflowType,
			Args:      []any{RetentionParams{Revision: RetentionRevisionCurrent}},
			TaskQueue: taskQueue,
		},
	}
}

// EnsureRetentionSchedule creates the retention Schedule (id:
// RetentionScheduleID; a test gives its own), or updates it to this
// release's (its timing, policy and action) when it exists: every worker
// calls it at start, so the Schedule follows the workers' release.
// Whether it is paused is the operators' and stays as it is.
func EnsureRetentionSchedule(ctx context.Context, c client.Client, id, taskQueue string) error {
	return ensureSchedule(ctx, c, retentionSchedule(id, taskQueue))
}

// ensureSchedule creates the Schedule, or updates the one there to want's
// timing, policy and action (its paused state is the operators' and stays
// as it is).
func ensureSchedule(ctx context.Context, c client.Client, want client.ScheduleOptions) error {
	var err error
	// Workers starting together race: one creates, the others update,
	// and an update that lost to another is tried again.
	for range 3 {
		if _, err = c.ScheduleClient().Create(ctx, want); !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			break
		}
		err = c.ScheduleClient().GetHandle(ctx, want.ID).Update(ctx, client.ScheduleUpdateOptions{
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
		return fmt.Errorf("create or update the schedule %s: %w", want.ID, err)
	}
	return nil
}
