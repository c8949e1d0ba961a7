package integration

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// recordTwiceWorkflow runs the real RecordEvent activity twice with the same
// dedup key, as a retry after a lost result would.
func recordTwiceWorkflow(ctx workflow.Context, in activities.RecordEventInput) ([]activities.RecordEventResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3},
	})
	var a *activities.Activities
	var out []activities.RecordEventResult
	for range 2 {
		var r activities.RecordEventResult
		if err := workflow.ExecuteActivity(ctx, a.RecordEvent, in).Get(ctx, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
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
		r.RegisterActivity(&activities.Activities{DB: h.DB})
	})

	in := activities.RecordEventInput{
		OrgID:      org.ID,
		Action:     "test.recorded",
		Actor:      activities.Actor{Type: "system", ID: "harness"},
		OnBehalfOf: &activities.Actor{Type: "member", ID: "usr_x", Email: "someone@example.test"},
		TargetType: "organization",
		TargetID:   org.ID,
		RequestID:  "req-harness-1",
		Data:       json.RawMessage(`{"after":{"k":"v"}}`),
		DedupKey:   "harness/" + org.ID,
	}
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "harness-" + org.ID, TaskQueue: tq}, recordTwiceWorkflow, in)
	if err != nil {
		t.Fatal(err)
	}
	var results []activities.RecordEventResult
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
	var onBehalf activities.Actor
	if err := json.Unmarshal(ev.OnBehalfOf, &onBehalf); err != nil || onBehalf.Email != "someone@example.test" {
		t.Errorf("on_behalf_of = %s (%v)", ev.OnBehalfOf, err)
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
