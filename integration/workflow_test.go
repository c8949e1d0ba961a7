package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// recorder is an activity of the test: it writes an audit event under a
// dedup key, as the saga's records do.
type recorder struct{ db *bun.DB }

// recordInput is the event the test records.
type recordInput struct {
	OrgID, Action, RequestID, DedupKey string
	Data                               json.RawMessage
}

// recordResult says whether this attempt wrote the event or found it
// written by an earlier one.
type recordResult struct {
	EventID  string
	Inserted bool
}

func (r *recorder) Record(ctx context.Context, in recordInput) (recordResult, error) {
	ev := &store.AuditEvent{OrgID: in.OrgID, Action: in.Action, ActorType: "system", ActorID: "harness",
		TargetType: "organization", TargetID: in.OrgID, RequestID: in.RequestID,
		WorkflowID: activity.GetInfo(ctx).WorkflowExecution.ID, Data: in.Data, DedupKey: &in.DedupKey}
	inserted, err := store.InsertEvent(ctx, r.db, ev)
	if err != nil {
		return recordResult{}, err
	}
	if !inserted {
		if err := r.db.NewSelect().Model((*store.AuditEvent)(nil)).Column("id").Where("dedup_key = ?", in.DedupKey).Scan(ctx, &ev.ID); err != nil {
			return recordResult{}, err
		}
	}
	return recordResult{EventID: ev.ID, Inserted: inserted}, nil
}

// recordTwiceWorkflow runs the recorder twice with the same dedup key, as
// a retry after a lost result would.
func recordTwiceWorkflow(ctx workflow.Context, in recordInput) ([]recordResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var r *recorder
	var out []recordResult
	for range 2 {
		var res recordResult
		if err := workflow.ExecuteActivity(ctx, r.Record, in).Get(ctx, &res); err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

func TestAWorkflowOnRealTemporalWritesThroughBunExactlyOnce(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	org := newOrg(t, h)

	tq := harness.TaskQueue(t)
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflow(recordTwiceWorkflow)
		r.RegisterActivity(&recorder{db: h.DB})
	})

	in := recordInput{
		OrgID:     org.ID,
		Action:    "test.recorded",
		RequestID: "req-harness-1",
		Data:      json.RawMessage(`{"after":{"k":"v"}}`),
		DedupKey:  "harness/" + org.ID,
	}
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "harness-" + org.ID, TaskQueue: tq}, recordTwiceWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var results []recordResult
	if err := run.Get(ctx, &results); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if !results[0].Inserted || results[1].Inserted || results[0].EventID != results[1].EventID {
		t.Fatalf("results = %+v; want the first attempt to insert and the second to find the same event", results)
	}

	var events []store.AuditEvent
	if err := h.DB.NewSelect().Model(&events).Where("org_id = ? AND action = ?", org.ID, "test.recorded").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("%d events written, want 1", len(events))
	}
	ev := events[0]
	if ev.ID != results[0].EventID || ev.WorkflowID != run.GetID() || ev.RequestID != "req-harness-1" || ev.ActorType != "system" {
		t.Errorf("event = %+v", ev)
	}
}

func TestAuditEventsCannotBeUpdated(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	org := newOrg(t, h)
	ev := &store.AuditEvent{OrgID: org.ID, Action: "test.immutable", ActorType: "system"}
	if _, err := store.InsertEvent(ctx, h.DB, ev); err != nil {
		t.Fatal(err)
	}
	_, err := h.DB.NewUpdate().Model((*store.AuditEvent)(nil)).Set("action = 'test.changed'").Where("id = ?", ev.ID).Exec(ctx)
	if err == nil {
		t.Fatal("an audit event was updated")
	}
}
