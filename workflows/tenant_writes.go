package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// write runs one of the short writes a request waits for. A refusal is
// final (its error is non-retryable); anything else is an infrastructure
// failure, retried for as long as it lasts: the caller is answered 503 and
// its retry with the same key finds the same update. It runs as a local
// activity, so no data-plane step queued on the task queue can delay it.
func (w *tenant) write(ctx workflow.Context, activity, in any) workflow.Future {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second}
	return shortWrite(ctx, w.localWrites, retry, activity, in)
}

// shortWrite runs a short write in Postgres: as a local activity, in the
// worker that runs the workflow, or (runs that began before that change)
// as a regular activity.
func shortWrite(ctx workflow.Context, local bool, retry *temporal.RetryPolicy, activity, in any) workflow.Future {
	if local {
		// A local activity's retries end at its schedule-to-close timeout,
		// which defaults to one attempt's; an outage is outlasted instead.
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: WriteTimeout, ScheduleToCloseTimeout: answeredRetention, RetryPolicy: retry,
		}), activity, in)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: WriteTimeout, RetryPolicy: retry,
	}), activity, in)
}

// record applies a state or status change with its audit event; it retries
// until it succeeds, since the saga cannot go on without it.
func (w *tenant) record(ctx workflow.Context, in activities.RecordInput) {
	var a *activities.Activities
	in.TenantID = w.p.TenantID
	if in.Action != "" {
		w.seq++
		in.EventKey = fmt.Sprintf("%s/event/%d/%s", workflow.GetInfo(ctx).WorkflowExecution.ID, w.seq, in.Action)
	}
	// From revision 4 a local activity: no activity task's round trips
	// through the server.
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute}
	_ = shortWrite(ctx, w.p.inInput(), retry, a.Record, in).Get(ctx, nil)
	if in.State != "" {
		w.state = in.State
	}
	w.searchAttributes(ctx)
}

// finish writes the operation's final record and ends it; from the moment
// the record is being written, a transition may be accepted.
func (w *tenant) finish(ctx workflow.Context, in activities.RecordInput) {
	op := w.op
	op.finishing, op.final = true, w.state
	if in.State != "" {
		op.final = in.State
	}
	in.OperationID = op.id
	if in.Request == (activities.Request{}) {
		in.Request = op.req
	}
	if w.p.inInput() {
		// The saga's status after the operation goes with the record's
		// search attributes: one write instead of two.
		w.saga = SagaIdle
		if in.State == domain.StateFailed || in.State == domain.StateDecommissioned {
			w.saga = SagaDone
		}
	}
	w.record(ctx, in)
	w.log.Info("operation ended", "operation_id", op.id, "kind", string(op.kind), "status", string(in.Status), "state", string(w.state))
	w.op = nil
}
