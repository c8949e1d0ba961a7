// Package activities is the control plane's I/O on behalf of workflows:
// every activity persists state and audit events through bun (Postgres) or
// acts on the data plane, and is safe to retry.
package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"

	"github.com/intelliauth/controlplane/internal/store"
)

// Activities holds the activities' dependencies; its methods are registered
// once on the worker.
type Activities struct {
	DB        *bun.DB
	DataPlane DataPlane
}

// Actor is who an audit event names: a member, an operator or the system
// (for the system, OnBehalfOf names the human who started the saga).
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email"`
	// Name is a service account's name.
	Name string `json:"name,omitempty"`
	// OnBehalfOf is, for a service account, the human who answers for it.
	OnBehalfOf *Actor `json:"on_behalf_of,omitempty"`
}

// RecordEventInput is one audit event to write.
type RecordEventInput struct {
	OrgID      string
	Action     string
	Actor      Actor
	OnBehalfOf *Actor
	TargetType string
	TargetID   string
	RequestID  string
	Data       json.RawMessage
	// DedupKey identifies the event across retries; when empty, the
	// workflow and activity ids are used, which a retry keeps.
	DedupKey string
}

// RecordEventResult says whether this attempt wrote the event or found it
// written by an earlier attempt.
type RecordEventResult struct {
	EventID  string
	Inserted bool
}

// RecordEvent writes an audit event exactly once, however often the
// activity is retried.
func (a *Activities) RecordEvent(ctx context.Context, in RecordEventInput) (RecordEventResult, error) {
	info := activity.GetInfo(ctx)
	key := in.DedupKey
	if key == "" {
		key = info.WorkflowExecution.ID + "/" + info.ActivityID
	}
	ev := &store.AuditEvent{
		OrgID:      in.OrgID,
		Action:     in.Action,
		ActorType:  in.Actor.Type,
		ActorID:    in.Actor.ID,
		ActorEmail: in.Actor.Email,
		TargetType: in.TargetType,
		TargetID:   in.TargetID,
		RequestID:  in.RequestID,
		WorkflowID: info.WorkflowExecution.ID,
		Data:       in.Data,
		DedupKey:   &key,
	}
	if in.OnBehalfOf != nil {
		b, err := json.Marshal(in.OnBehalfOf)
		if err != nil {
			return RecordEventResult{}, fmt.Errorf("encode on_behalf_of: %w", err)
		}
		ev.OnBehalfOf = b
	}
	inserted, err := store.InsertEvent(ctx, a.DB, ev)
	if err != nil {
		return RecordEventResult{}, err
	}
	if !inserted {
		if err := a.DB.NewSelect().Model((*store.AuditEvent)(nil)).Column("id").Where("dedup_key = ?", key).Scan(ctx, &ev.ID); err != nil {
			return RecordEventResult{}, fmt.Errorf("load audit event %s: %w", key, err)
		}
	}
	return RecordEventResult{EventID: ev.ID, Inserted: inserted}, nil
}
