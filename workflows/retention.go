package workflows

import (
	"cmp"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
)

// AuditRetentionWorkflow is one pass of audit retention, started by the
// Schedule (RetentionScheduleID): every organisation's events past its
// plan's window are purged, up to where its audit streams have
// delivered (within their bound), by one heartbeating activity that
// resumes where its last attempt stopped. Its windows are measured from
// the run's start, so a retried attempt purges against the same ones.
func AuditRetentionWorkflow(ctx workflow.Context, p RetentionParams) (activities.RetentionProgress, error) {
	retentionRevisionOf(ctx, p)
	if err := p.validate(); err != nil {
		return activities.RetentionProgress{}, err
	}
	var a *activities.Activities
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    retentionAttempt,
		ScheduleToCloseTimeout: retentionPass,
		HeartbeatTimeout:       retentionHeartbeat,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: retentionHeartbeat, BackoffCoefficient: 2, MaximumInterval: 30 * retentionHeartbeat},
	})
	var done activities.RetentionProgress
	err := workflow.ExecuteActivity(ctx, a.PurgeAuditTrails, activities.RetentionInput{
		At: workflow.Now(ctx), BatchSize: p.BatchSize, StreamWait: p.StreamWait, Pause: p.Pause, RestFactor: cmp.Or(p.RestFactor, DefaultRestFactor),
	}).Get(ctx, &done)
	if err != nil {
		return done, err
	}
	workflow.GetLogger(ctx).Info("audit retention pass done", "orgs", done.Orgs, "events", done.Events,
		"held_by_streams", done.HeldByStreams, "streams_overtaken", done.StreamsOvertaken)
	return done, nil
}
