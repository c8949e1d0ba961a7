package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
)

// localWriteBound bounds a local write's retries, from revision 5: a local
// activity that outlasts a workflow task heartbeats the task, each
// heartbeat growing the history, so an outage is waited out instead by a
// regular activity, whose retries the server schedules with no event.
const localWriteBound = 30 * time.Second

// write runs one of the short writes a request waits for. A refusal is
// final (its error is non-retryable); anything else is an infrastructure
// failure, retried for as long as it lasts: the caller is answered 503 and
// its retry with the same key finds the same update. It runs as a local
// activity, so no data-plane step queued on the task queue can delay it.
func (w *tenant) write(ctx workflow.Context, activity, in, out any) error {
	retry := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumInterval: 5 * time.Second}
	return w.shortWrite(ctx, w.rev.localWrites, retry, activity, in, out)
}

// shortWrite runs a short write in Postgres: as a local activity, in the
// worker that runs the workflow, or (runs that began before that change)
// as a regular activity. From revision 5 the local attempts are bounded
// and the write goes on as a regular activity; before, the local
// activity's retries ran for answeredRetention.
func (w *tenant) shortWrite(ctx workflow.Context, local bool, retry *temporal.RetryPolicy, activity, in, out any) error {
	if !local {
		return regularWrite(ctx, retry, activity, in, out)
	}
	if !w.rev.boundedLocalWrites() {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: WriteTimeout, ScheduleToCloseTimeout: answeredRetention, RetryPolicy: retry,
		}), activity, in).Get(ctx, out)
	}
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: WriteTimeout, ScheduleToCloseTimeout: localWriteBound, RetryPolicy: retry,
	}), activity, in).Get(ctx, out)
	if err == nil || final(err) {
		return err
	}
	w.log.Warn("a local write outlasted its bound: it goes on as an activity", "error", rootCause(err))
	return regularWrite(ctx, retry, activity, in, out)
}

// regularWrite runs a write as an activity retried until it succeeds or
// is refused.
func regularWrite(ctx workflow.Context, retry *temporal.RetryPolicy, activity, in, out any) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: WriteTimeout, RetryPolicy: retry,
	}), activity, in).Get(ctx, out)
}

// final reports whether a write's error will not change on retry: a
// refusal, or a write that cannot succeed as it is.
func final(err error) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.NonRetryable()
}

// record applies a state or status change with its audit event; the saga
// cannot go on without it. An outage is waited out; from revision 5 a write
// that cannot succeed as it is sticks the saga, visibly, until an
// operator's retry (older revisions went on without it after
// answeredRetention).
func (w *tenant) record(ctx workflow.Context, in activities.RecordInput) {
	var a *activities.Activities
	in.TenantID = w.p.TenantID
	if in.Action != "" {
		w.seq++
		in.EventKey = w.eventKey(ctx, in.Action)
	}
	// From revision 4 a local activity: no activity task's round trips
	// through the server.
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute}
	for {
		err := w.shortWrite(ctx, w.rev.localRecords(), retry, a.Record, in, nil)
		if err == nil || !w.rev.stuckOnBrokenRecords() {
			break
		}
		w.stuckOnRecord(ctx, in, err)
	}
	if in.State != "" {
		w.state = in.State
	}
	w.searchAttributes(ctx)
}

// eventKey identifies the saga's next audit event for good: a retried
// write, a replay and a reset of the latest run write it once. From
// revision 5 the key names the run by its id before any reset, so a reset
// of an earlier run, whose events number on from that run's, cannot take
// the keys of the runs that followed it.
func (w *tenant) eventKey(ctx workflow.Context, action string) string {
	info := workflow.GetInfo(ctx)
	if w.rev.eventKeysPerRun() {
		return fmt.Sprintf("%s/%s/event/%d/%s", info.WorkflowExecution.ID, info.OriginalRunID, w.seq, action)
	}
	return fmt.Sprintf("%s/event/%d/%s", info.WorkflowExecution.ID, w.seq, action)
}

// stuckOnRecord makes a record that cannot be written the operation's stuck
// step: the status, the search attribute and the log say so, and the saga
// waits for an operator's retry (after a fix: a migration, a repaired row).
func (w *tenant) stuckOnRecord(ctx workflow.Context, in activities.RecordInput, err error) {
	op := w.op
	if op == nil {
		// Every record belongs to an operation; wait and write again.
		_ = workflow.Sleep(ctx, time.Minute)
		return
	}
	step, saga := op.step, w.saga
	op.step, w.saga = stepRecord, SagaStuck
	w.searchAttributes(ctx)
	w.log.Error("saga stuck: a record cannot be written", "operation_id", op.id, "action", in.Action, "error", rootCause(err))
	taken := awaitRepair(ctx, op, RepairRetry)
	w.log.Info("record retried by an operator", "operation_id", op.id, "operator", taken.operator)
	op.step, w.saga = step, saga
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
	if w.rev.statusWithFinalRecord() {
		// The saga's status after the operation goes with the record's
		// search attributes: one write instead of two.
		w.saga = SagaIdle
		if in.State.Ended() {
			w.saga = SagaDone
		}
	}
	w.record(ctx, in)
	w.log.Info("operation ended", "operation_id", op.id, "kind", string(op.kind), "status", string(in.Status), "state", string(w.state))
	w.op = nil
}
