package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
)

// InsertEvent writes an audit event in db (a transaction, usually the one of
// the change it records; given the database itself, it makes one), as
// the next link of its organisation's chain: it locks the chain's head
// until the transaction ends, chains first any events of the organisation
// left unchained, then writes the event with its seq and hash and moves
// the head, two statements. A transaction that writes events of several
// organisations writes them in org_id order (insertUserEvents), and
// writes its events after its other writes, so that no transaction waits
// for a head while holding a row another waits for before a head. An
// event whose DedupKey was written before is not written again; inserted
// says which happened. Every text of the event is made storable first
// (see storable), whoever built it.
func InsertEvent(ctx context.Context, db bun.IDB, ev *AuditEvent) (inserted bool, err error) {
	if d, ok := db.(*bun.DB); ok {
		err := d.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			inserted, err = InsertEvent(ctx, tx, ev)
			return err
		})
		return inserted, err
	}
	if err := ev.storable(); err != nil {
		return false, fmt.Errorf("insert audit event %s: %w", ev.Action, err)
	}
	if ev.ID == "" {
		ev.ID = domain.NewID(domain.PrefixEvent)
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = time.Now()
	}
	// As Postgres stores it, so the hash covers what is read back.
	ev.OccurredAt = ev.OccurredAt.UTC().Truncate(time.Microsecond)
	if ev.OnBehalfOf, err = storedJSON(ev.OnBehalfOf); err != nil {
		return false, fmt.Errorf("insert audit event %s: on_behalf_of: %w", ev.Action, err)
	}
	if ev.Data, err = storedJSON(ev.Data); err != nil {
		return false, fmt.Errorf("insert audit event %s: data: %w", ev.Action, err)
	}
	head, err := lockHead(ctx, db, ev.OrgID)
	if err != nil {
		return false, err
	}
	if head.Backlog {
		if head, _, err = chainBacklog(ctx, db, ev.OrgID, head, 0); err != nil {
			return false, err
		}
	}
	ev.Seq = head.Length + 1
	c, err := ev.canonical()
	if err != nil {
		return false, fmt.Errorf("insert audit event %s: %w", ev.Action, err)
	}
	ev.Hash = auditchain.Link(head.Head, c)
	n, err := insertChainedEvent.exec(ctx, db, ev.ID, ev.OrgID, ev.Action, ev.ActorType, ev.ActorID, ev.ActorEmail, ev.ActorName,
		jsonArg(ev.OnBehalfOf), ev.TargetType, ev.TargetID, ev.RequestID, ev.WorkflowID, ev.ClientAddr, ev.UserAgent, jsonArg(ev.Data),
		ev.DedupKey, ev.OccurredAt, ev.ActorTokenID, ev.Seq, ev.Hash)
	if err != nil {
		return false, fmt.Errorf("insert audit event %s: %w", ev.Action, err)
	}
	if n == 0 {
		ev.Seq, ev.Hash = 0, nil // the event written before holds its own
	}
	return n == 1, nil
}

// insertChainedEvent writes an event (unless its dedup key was written
// before) and moves its organisation's chain head to it, in one
// statement; prepared: every audit event runs it.
var insertChainedEvent = prepare(`WITH e AS (
	INSERT INTO audit_events (id, org_id, action, actor_type, actor_id, actor_email, actor_name, on_behalf_of, target_type, target_id,
		request_id, workflow_id, client_addr, user_agent, data, dedup_key, occurred_at, actor_token_id, seq, hash)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18, $19, $20)
	ON CONFLICT (dedup_key) DO NOTHING
	RETURNING org_id, seq, hash)
UPDATE audit_chains AS c SET length = e.seq, head = e.hash, updated_at = ` + headMoved + ` FROM e WHERE c.org_id = e.org_id`)

// jsonArg is a JSON column's value for a prepared statement: its text
// (a []byte would be sent as bytea), or NULL when empty, as bun writes a
// nullzero column.
func jsonArg(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return string(v)
}

// insertEvents writes events in tx, in order (InsertEvent).
func insertEvents(ctx context.Context, tx bun.IDB, evs []*AuditEvent) error {
	for _, ev := range evs {
		if _, err := InsertEvent(ctx, tx, ev); err != nil {
			return err
		}
	}
	return nil
}

// storable makes every text column of the event, and every string and key
// of its JSON columns, domain.StorableText. An event records what callers
// sent (a User-Agent, a name): text Postgres refuses would make the write
// fail on every retry, and with it the change the event belongs to, for
// as long as its writer retries (a saga: days).
func (ev *AuditEvent) storable() error {
	for _, s := range []*string{&ev.ID, &ev.OrgID, &ev.Action, &ev.ActorType, &ev.ActorID, &ev.ActorEmail, &ev.ActorName, &ev.ActorTokenID,
		&ev.TargetType, &ev.TargetID, &ev.RequestID, &ev.WorkflowID, &ev.ClientAddr, &ev.UserAgent} {
		*s = domain.StorableText(*s, 0)
	}
	if ev.DedupKey != nil {
		key := domain.StorableText(*ev.DedupKey, 0)
		ev.DedupKey = &key
	}
	var err error
	if ev.OnBehalfOf, err = storableJSON(ev.OnBehalfOf); err != nil {
		return fmt.Errorf("on_behalf_of: %w", err)
	}
	if ev.Data, err = storableJSON(ev.Data); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

// EventBase is what every audit event of one request shares: the
// organisation, the actor and where the request came from.
type EventBase struct {
	OrgID      string
	ActorType  string
	ActorID    string
	ActorEmail string
	ActorName  string
	// ActorTokenID is the token a service account's request came with.
	ActorTokenID string
	// OnBehalfOf is the human a service account acts for (nil: none).
	OnBehalfOf json.RawMessage
	RequestID  string
	ClientAddr string
	UserAgent  string
}

// Event returns the event of action on the target with data (nil: none).
func (b EventBase) Event(action, targetType, targetID string, data map[string]any) *AuditEvent {
	ev := &AuditEvent{
		OrgID: b.OrgID, Action: action,
		ActorType: b.ActorType, ActorID: b.ActorID, ActorEmail: b.ActorEmail, ActorName: b.ActorName, ActorTokenID: b.ActorTokenID, OnBehalfOf: b.OnBehalfOf,
		TargetType: targetType, TargetID: targetID,
		RequestID: b.RequestID, ClientAddr: b.ClientAddr, UserAgent: b.UserAgent,
	}
	if data != nil {
		ev.Data = mustJSON(data)
	}
	return ev
}

// InsertUserEvent records a user-level action (signing in or out) in every
// organisation the user belongs to, naming the user's membership there.
func InsertUserEvent(ctx context.Context, db *bun.DB, user User, action string, b EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return insertUserEvents(ctx, tx, user, action, b)
	})
}

// insertUserEvents writes a user-level action in every organisation the
// user belongs to, in tx (the transaction of the change it records): one
// event per organisation for each of datas (none: one event without data).
func insertUserEvents(ctx context.Context, tx bun.IDB, user User, action string, b EventBase, datas ...map[string]any) error {
	ms, err := MembershipsOf(ctx, tx, user.ID)
	if err != nil {
		return err
	}
	if len(datas) == 0 {
		datas = []map[string]any{nil}
	}
	for _, m := range ms {
		b.OrgID, b.ActorType, b.ActorID, b.ActorEmail = m.OrgID, "member", m.MemberID, user.Email
		for _, data := range datas {
			if _, err := InsertEvent(ctx, tx, b.Event(action, "user", user.ID, data)); err != nil {
				return err
			}
		}
	}
	return nil
}
