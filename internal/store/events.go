package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// EventFilter selects an organisation's audit events.
type EventFilter struct {
	OrgID string
	// Action is an exact action, or a prefix ending in '*' (tenant.*).
	Action  string
	ActorID string
	// ActorType: member, operator, system or service_account.
	ActorType string
	TargetID  string
	// Environments, when set, limits the events to those about tenants of
	// these environments (what a service account scoped to them may see).
	Environments []string
	Since        time.Time // inclusive; zero: no bound
	Until        time.Time // exclusive; zero: no bound
}

// EventView is an audit event as the API shows it.
type EventView struct {
	ID         string          `json:"id"`
	OrgID      string          `json:"org_id"`
	Action     string          `json:"action"`
	Actor      EventActor      `json:"actor"`
	OnBehalfOf json.RawMessage `json:"on_behalf_of,omitempty"`
	Target     EventTarget     `json:"target"`
	RequestID  string          `json:"request_id,omitempty"`
	WorkflowID string          `json:"workflow_id,omitempty"`
	ClientAddr string          `json:"client_addr,omitempty"`
	UserAgent  string          `json:"user_agent,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	// Seq and Hash are the event's place in its organisation's chain.
	Seq  int64  `json:"seq,omitempty" doc:"The event's place in its organisation's hash chain: 1, 2, 3, … without gaps, in the order events were committed. Absent only for an event written by an older release during an upgrade, until it is chained."`
	Hash string `json:"hash,omitempty" doc:"SHA-256 (hex) of the previous event's hash (32 zero bytes before the first) followed by this event's canonical form: this object without hash, in RFC 8785 JSON canonicalization (docs/architecture.md, Audit trail)."`
}

// EventActor is who did it: the domain.Actor an event's actor columns
// hold, as the API's event view shows it (the on_behalf_of column is
// beside it in EventView). A contract of its own: its email is left out
// when empty, which the actor in workflow payloads, whose JSON is in their
// histories, cannot do.
type EventActor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email,omitempty"`
	// Name is a service account's name.
	Name string `json:"name,omitempty"`
	// TokenID is the token a service account's request came with.
	TokenID string `json:"token_id,omitempty" doc:"For a service account, the token its request came with."`
}

// EventTarget is what it was done to.
type EventTarget struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// View returns the API's view of the event: what its hash covers (with
// Seq, without Hash), so the view is what a reader verifies.
func (e AuditEvent) View() EventView {
	v := EventView{ID: e.ID, OrgID: e.OrgID, Action: e.Action,
		Actor:      EventActor{Type: e.ActorType, ID: e.ActorID, Email: e.ActorEmail, Name: e.ActorName, TokenID: e.ActorTokenID},
		OnBehalfOf: e.OnBehalfOf, Target: EventTarget{Type: e.TargetType, ID: e.TargetID},
		RequestID: e.RequestID, WorkflowID: e.WorkflowID, ClientAddr: e.ClientAddr, UserAgent: e.UserAgent,
		Data: e.Data, OccurredAt: e.OccurredAt.UTC(), Seq: e.Seq}
	if e.Hash != nil {
		v.Hash = hex.EncodeToString(e.Hash)
	}
	return v
}

// ListEvents returns up to limit+1 events matching f, newest first, before
// the keyset position (zero: from the newest). Each filter has an index
// that starts with (org_id, …) and ends with (occurred_at, id), so a page
// costs the same at any depth: an exact action, a family of actions
// (tenant.*), an actor, a target, an environment. A deeper prefix
// (tenant.saga_*) is read through the family's index and filtered.
func ListEvents(ctx context.Context, db bun.IDB, f EventFilter, before Keyset, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	if err := selectEvents(db, f, before, limit+1).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list events of %s: %w", f.OrgID, err)
	}
	return out, nil
}

// selectEvents is the query of up to limit events matching f, newest
// first, before the keyset position, with the columns given (none: all).
//
// Environments are read one range of audit_events_org_environment_idx
// each (the environment is the event's own column, the environment of the
// tenant it is about), the ranges merged by time: a reader limited to
// environments reads its page, never the organisation's other events
// (issue 23, finding 5). Postgres cannot read an IN list on the index's
// second column in the order of the third, hence one LATERAL range per
// environment, each stopping after limit rows.
func selectEvents(db bun.IDB, f EventFilter, before Keyset, limit int, columns ...string) *bun.SelectQuery {
	q := db.NewSelect().Model((*AuditEvent)(nil)).Column(columns...).
		Where("org_id = ?", f.OrgID).OrderExpr("occurred_at DESC, id DESC").Limit(int64(limit))
	if prefix, ok := strings.CutSuffix(f.Action, "*"); ok {
		if family, _, ok := strings.Cut(prefix, "."); ok {
			// The prefix's family (tenant for tenant.* and tenant.saga_*):
			// the expression of audit_events_org_family_idx, so one range
			// scan in time order, filtered by the LIKE below.
			q = q.Where("split_part(action, '.', 1) = ?", family)
		}
		q = q.Where("action LIKE ?", escapeLike(prefix)+"%")
	} else if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.ActorID != "" {
		q = q.Where("actor_id = ?", f.ActorID)
	}
	if f.ActorType != "" {
		q = q.Where("actor_type = ?", f.ActorType)
	}
	if f.TargetID != "" {
		q = q.Where("target_id = ?", f.TargetID)
	}
	if !f.Since.IsZero() {
		q = q.Where("occurred_at >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		q = q.Where("occurred_at < ?", f.Until)
	}
	if before.ID != "" {
		q = q.Where("(occurred_at, id) < (?, ?)", before.CreatedAt, before.ID)
	}
	if len(f.Environments) == 0 {
		return q
	}
	q = q.Where("environment = env.name")
	return db.NewSelect().Model((*AuditEvent)(nil)).Column(columns...).
		ModelTableExpr("unnest(?::text[]) AS env (name) CROSS JOIN LATERAL (?) AS audit_event", pgdialect.Array(f.Environments), q).
		OrderExpr("audit_event.occurred_at DESC, audit_event.id DESC").Limit(int64(limit))
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// ListUserEvents are the events about the user (target user) in the
// organisations of orgIDs, newest first, before the keyset position: a
// person's own account events (signing in and out, a password reset, a
// session ended), each as every organisation of theirs recorded it.
func ListUserEvents(ctx context.Context, db bun.IDB, userID string, orgIDs []string, before Keyset, limit int) ([]AuditEvent, error) {
	out := []AuditEvent{}
	if len(orgIDs) == 0 {
		return out, nil
	}
	q := db.NewSelect().Model(&out).
		Where("org_id IN (?) AND target_type = 'user' AND target_id = ?", bun.In(orgIDs), userID).
		OrderExpr("occurred_at DESC, id DESC").Limit(int64(limit + 1))
	if before.ID != "" {
		q = q.Where("(occurred_at, id) < (?, ?)", before.CreatedAt, before.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list events of user %s: %w", userID, err)
	}
	return out, nil
}
