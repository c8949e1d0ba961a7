package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
)

// UsageCloseResult is what a close run did.
type UsageCloseResult struct {
	// Days are the days closed, oldest first (UTC midnights).
	Days []time.Time
	// Orgs is how many organisation-days were closed over them.
	Orgs int
}

// UsageCloseWorkflow is one run of the daily usage close, started by the
// Schedule (UsageScheduleID): every day not closed yet up to yesterday
// (the oldest first, at most UsageMaxDays) is closed for every
// organisation, then reported to the billing engine, one day after the
// other. Each step is an activity that a retry or another worker can take
// up again: a closed organisation-day is never rewritten, and a day is
// marked closed only once all of its organisations are.
func UsageCloseWorkflow(ctx workflow.Context, p UsageParams) (UsageCloseResult, error) {
	usageRevisionOf(ctx, p)
	if err := p.validate(); err != nil {
		return UsageCloseResult{}, err
	}
	var a *activities.Activities
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, RetryPolicy: retry})
	var days []time.Time
	if err := workflow.ExecuteActivity(short, a.UsageDaysToClose, activities.UsageDaysInput{Limit: UsageMaxDays}).Get(ctx, &days); err != nil {
		return UsageCloseResult{}, err
	}
	closing := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    usageAttempt,
		ScheduleToCloseTimeout: usageDayClose,
		HeartbeatTimeout:       usageHeartbeat,
		RetryPolicy:            retry,
	})
	reporting := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Minute, RetryPolicy: retry})
	var res UsageCloseResult
	for _, day := range days {
		var closed activities.UsageCloseProgress
		if err := workflow.ExecuteActivity(closing, a.CloseUsageDay, activities.UsageDayInput{Day: day, PageSize: p.PageSize}).Get(ctx, &closed); err != nil {
			return res, err
		}
		if err := workflow.ExecuteActivity(reporting, a.ReportUsageDay, activities.UsageDayInput{Day: day}).Get(ctx, nil); err != nil {
			return res, err
		}
		res.Days = append(res.Days, day)
		res.Orgs += closed.Orgs
	}
	workflow.GetLogger(ctx).Info("usage close done", "days", len(res.Days), "orgs", res.Orgs)
	return res, nil
}
