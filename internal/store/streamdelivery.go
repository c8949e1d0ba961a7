package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/intelliauth/controlplane/internal/domain"
)

// What a stream's delivery reads and writes: the events after its cursor,
// the cursor's compare-and-set, its failures and suspension, its delivery
// log, and what the workers' notifier reads to wake it.

// StreamForDelivery reads a stream by id, deleted or not (found false
// when no row has the id: its organisation was erased).
func StreamForDelivery(ctx context.Context, db bun.IDB, id string) (s AuditStream, found bool, err error) {
	err = db.NewSelect().Model(&s).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read audit stream %s: %w", id, err)
	}
	return s, true, nil
}

// ChainLength is how many events the organisation's chain has. Every event
// up to it is visible to a query that starts after this one: a head moves
// in the transaction that writes its events.
func ChainLength(ctx context.Context, db bun.IDB, orgID string) (int64, error) {
	var n int64
	if err := db.NewRaw("SELECT coalesce((SELECT length FROM audit_chains WHERE org_id = ?), 0)", orgID).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("read the audit chain of %s: %w", orgID, err)
	}
	return n, nil
}

// StreamEvents are up to limit of the organisation's events with seq in
// (after, upTo] that the filter takes (exact actions and families
// written family.*; none: every event), in seq order: one range of
// audit_events_org_seq_key, filtered.
func StreamEvents(ctx context.Context, db bun.IDB, orgID string, after, upTo int64, filter []string, limit int) ([]AuditEvent, error) {
	var evs []AuditEvent
	q := db.NewSelect().Model(&evs).Where("org_id = ? AND seq > ? AND seq <= ?", orgID, after, upTo).OrderExpr("seq").Limit(int64(limit))
	if len(filter) > 0 {
		var exact, prefixes []string
		for _, p := range filter {
			if family, ok := cutFamily(p); ok {
				prefixes = append(prefixes, family)
			} else {
				exact = append(exact, p)
			}
		}
		q = q.Where("(action = ANY(?::text[]) OR EXISTS (SELECT 1 FROM unnest(?::text[]) AS p (prefix) WHERE starts_with(action, p.prefix)))",
			pgdialect.Array(nonNil(exact)), pgdialect.Array(nonNil(prefixes)))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("read the events of %s after %d for a stream: %w", orgID, after, err)
	}
	return evs, nil
}

// cutFamily turns family.* into the prefix "family.".
func cutFamily(p string) (string, bool) {
	if len(p) > 2 && p[len(p)-2:] == ".*" {
		return p[:len(p)-1], true
	}
	return "", false
}

// Delivery is one attempt at a batch, as the delivery log keeps it.
type Delivery struct {
	bun.BaseModel `bun:"table:audit_stream_deliveries"`

	ID             string    `bun:"id,pk"`
	StreamID       string    `bun:"stream_id"`
	AttemptedAt    time.Time `bun:"attempted_at"`
	Outcome        string    `bun:"outcome"`
	FirstEventID   string    `bun:"first_event_id"`
	LastEventID    string    `bun:"last_event_id"`
	FirstSeq       int64     `bun:"first_seq"`
	LastSeq        int64     `bun:"last_seq"`
	EventCount     int       `bun:"event_count"`
	Bytes          int       `bun:"bytes"`
	IdempotencyKey string    `bun:"idempotency_key"`
	Status         int       `bun:"status"`
	LatencyMS      int       `bun:"latency_ms"`
	Attempt        int       `bun:"attempt"`
	Error          string    `bun:"error"`
}

// The outcomes of a delivery.
const (
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
	DeliveryTest      = "test"
)

func insertDelivery(ctx context.Context, tx bun.IDB, d *Delivery) error {
	d.ID = domain.NewID(domain.PrefixDelivery)
	d.Error = clip(d.Error, 500)
	if d.AttemptedAt.IsZero() {
		d.AttemptedAt = time.Now().UTC()
	}
	if _, err := tx.NewInsert().Model(d).Exec(ctx); err != nil {
		return fmt.Errorf("log a delivery of audit stream %s: %w", d.StreamID, err)
	}
	return nil
}

// CursorMove is what became of a stream whose cursor a delivery tried to
// move: Moved is false when the cursor was not where the delivery read it
// (a replay moved it) or the stream is deleted; Status and Version are the
// row's now, so a delivery stops when a person paused or changed it.
type CursorMove struct {
	Moved   bool
	Status  domain.StreamStatus
	Version int64
}

// MoveCursor moves the stream's cursor from (where the delivery read it)
// to `to`, and logs the delivery d, in one transaction; d is nil when the
// events passed over were none of the filter's. A delivered batch names
// the stream's last delivered event, and ends a failure: a failing stream
// is active again.
func MoveCursor(ctx context.Context, db *bun.DB, streamID string, from, to int64, d *Delivery) (CursorMove, error) {
	var m CursorMove
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if d != nil {
			if err := insertDelivery(ctx, tx, d); err != nil {
				return err
			}
		}
		q := tx.NewUpdate().Model((*AuditStream)(nil)).Set("cursor_seq = ?, inflight_seq = CASE WHEN inflight_seq > ? THEN inflight_seq END", to, to).
			Where("id = ? AND cursor_seq = ? AND deleted_at IS NULL", streamID, from).Returning("status, version")
		if d != nil {
			q = q.Set("cursor_event_id = ?, last_delivery_at = ?", d.LastEventID, d.AttemptedAt).
				Set("status = CASE WHEN status = 'failing' THEN 'active' ELSE status END").
				Set("failing_since = CASE WHEN status = 'failing' THEN NULL ELSE failing_since END")
		}
		err := q.Scan(ctx, &m.Status, &m.Version)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("move the cursor of audit stream %s to %d: %w", streamID, to, err)
		}
		m.Moved = true
		return nil
	})
	return m, err
}

// MarkInflight notes, before a batch is sent, the last seq it carries,
// unless the stream is no longer as the delivery read it (s): its cursor
// moved (a replay), a person changed it (paused, its endpoint or filter:
// its version moved), it was suspended or deleted. Then it reports false
// and nothing is sent, so no batch starts after a change's answer; a
// batch already marked is sent once, and a later attempt, after whatever
// ended this one, sends the same batch.
func MarkInflight(ctx context.Context, db bun.IDB, s AuditStream, cursor, last int64) (bool, error) {
	res, err := db.NewUpdate().Model((*AuditStream)(nil)).Set("inflight_seq = ?", last).
		Where("id = ? AND cursor_seq = ? AND version = ? AND status IN ('active', 'failing') AND deleted_at IS NULL", s.ID, cursor, s.Version).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("mark the batch in flight of audit stream %s: %w", s.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// StreamFailure is a stream after a failed delivery.
type StreamFailure struct {
	Status domain.StreamStatus
	// Since is when its run of failures began.
	Since *time.Time
}

// RecordFailure logs a failed delivery and, unless a person paused the
// stream meanwhile, makes it failing (since now, when it was not) with the
// error as its last, in one transaction.
func RecordFailure(ctx context.Context, db *bun.DB, d *Delivery) (StreamFailure, error) {
	var f StreamFailure
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertDelivery(ctx, tx, d); err != nil {
			return err
		}
		err := tx.NewUpdate().Model((*AuditStream)(nil)).
			Set("status = 'failing', failing_since = coalesce(failing_since, ?), last_error = ?, last_error_at = ?", d.AttemptedAt, d.Error, d.AttemptedAt).
			Where("id = ? AND status IN ('active', 'failing') AND deleted_at IS NULL", d.StreamID).
			Returning("status, failing_since").Scan(ctx, &f.Status, &f.Since)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.NewSelect().Model((*AuditStream)(nil)).Column("status", "failing_since").Where("id = ?", d.StreamID).Scan(ctx, &f.Status, &f.Since)
		}
		if err != nil {
			return fmt.Errorf("record a failure of audit stream %s: %w", d.StreamID, err)
		}
		return nil
	})
	return f, err
}

// SuspendStream suspends a stream that is still failing since `since`,
// with its audit_stream.suspended event (the system acting, the key making
// a retried write one event); suspended is false when it was not (a person
// paused, resumed or deleted it meanwhile, or it delivered).
func SuspendStream(ctx context.Context, db *bun.DB, streamID string, since time.Time, workflowID, eventKey string) (suspended bool, err error) {
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var s AuditStream
		err := tx.NewUpdate().Model(&s).Set("status = 'suspended', updated_at = now()").
			Where("id = ? AND status = 'failing' AND failing_since = ? AND deleted_at IS NULL", streamID, since).
			Returning("*").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("suspend audit stream %s: %w", streamID, err)
		}
		suspended = true
		ev := &AuditEvent{OrgID: s.OrgID, Action: domain.ActionStreamSuspended, ActorType: "system", ActorID: "audit-stream",
			TargetType: "audit_stream", TargetID: s.ID, WorkflowID: workflowID, DedupKey: &eventKey,
			Data: mustJSON(map[string]any{"failing_since": since.UTC(), "last_error": s.LastError, "cursor_seq": s.CursorSeq})}
		_, err = InsertEvent(ctx, tx, ev)
		return err
	})
	return suspended, err
}

// The delivery log's bounds per stream.
const (
	KeptDeliveries   = 1000
	KeptDeliveriesOf = 7 * 24 * time.Hour
)

// PruneStreamDeliveries deletes the stream's delivery log rows beyond its
// newest KeptDeliveries or older than KeptDeliveriesOf.
func PruneStreamDeliveries(ctx context.Context, db bun.IDB, streamID string) error {
	_, err := db.NewRaw(`DELETE FROM audit_stream_deliveries WHERE stream_id = ? AND (attempted_at < now() - ?::interval
		OR (attempted_at, id) < (SELECT attempted_at, id FROM audit_stream_deliveries WHERE stream_id = ?
			ORDER BY attempted_at DESC, id DESC OFFSET ? LIMIT 1))`,
		streamID, fmt.Sprintf("%d seconds", int64(KeptDeliveriesOf/time.Second)), streamID, KeptDeliveries-1).Exec(ctx)
	if err != nil {
		return fmt.Errorf("prune the delivery log of audit stream %s: %w", streamID, err)
	}
	return nil
}

// ListStreamDeliveries returns up to limit+1 of the stream's delivery log
// rows, newest first, before the keyset position.
func ListStreamDeliveries(ctx context.Context, db bun.IDB, streamID string, before Keyset, limit int) ([]Delivery, error) {
	out := []Delivery{}
	q := db.NewSelect().Model(&out).Where("stream_id = ?", streamID).OrderExpr("attempted_at DESC, id DESC").Limit(int64(limit + 1))
	if before.ID != "" {
		q = q.Where("(attempted_at, id) < (?, ?)", before.CreatedAt, before.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list the deliveries of audit stream %s: %w", streamID, err)
	}
	return out, nil
}

// RecordTest logs the test button's delivery and writes its
// audit_stream.tested event (the receiver's status), in one transaction.
func RecordTest(ctx context.Context, db *bun.DB, d *Delivery, ev EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		d.Outcome = DeliveryTest
		if err := insertDelivery(ctx, tx, d); err != nil {
			return err
		}
		_, err := InsertEvent(ctx, tx, ev.Event(domain.ActionStreamTested, "audit_stream", d.StreamID,
			map[string]any{"status": d.Status, "latency_ms": d.LatencyMS, "error": d.Error}))
		return err
	})
}

// WakeableStream is a stream that is active and behind its organisation's
// chain, whose head moved recently.
type WakeableStream struct {
	ID     string `bun:"id"`
	OrgID  string `bun:"org_id"`
	Length int64  `bun:"length"`
}

// WakeableStreams lists the active streams behind a chain whose head
// moved within the last `within` by the database's clock (so no worker's
// clock matters): a range of audit_chains_updated_idx, then each such
// organisation's streams.
func WakeableStreams(ctx context.Context, db bun.IDB, within time.Duration) ([]WakeableStream, error) {
	var out []WakeableStream
	err := db.NewRaw(`SELECT s.id, s.org_id, c.length FROM audit_chains c
		JOIN audit_streams s ON s.org_id = c.org_id AND s.deleted_at IS NULL AND s.status = 'active' AND s.cursor_seq < c.length
		WHERE c.updated_at >= clock_timestamp() - ?::interval ORDER BY s.id`, fmt.Sprintf("%d microseconds", within.Microseconds())).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("list audit streams to wake: %w", err)
	}
	return out, nil
}

// DeliveringStreams lists every stream that is active or failing, by id
// and organisation: those whose workflow must run.
func DeliveringStreams(ctx context.Context, db bun.IDB) ([]WakeableStream, error) {
	var out []WakeableStream
	if err := db.NewRaw(`SELECT id, org_id, cursor_seq AS length FROM audit_streams
		WHERE deleted_at IS NULL AND status IN ('active', 'failing') ORDER BY id`).Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list delivering audit streams: %w", err)
	}
	return out, nil
}

// StreamFloor is the lowest cursor of the organisation's streams that are
// active or failing (ok false when it has none): retention keeps the
// events after it, within its own bound.
func StreamFloor(ctx context.Context, db bun.IDB, orgID string) (floor int64, ok bool, err error) {
	var v sql.NullInt64
	if err := db.NewRaw(`SELECT min(cursor_seq) FROM audit_streams WHERE org_id = ? AND deleted_at IS NULL AND status IN ('active', 'failing')`,
		orgID).Scan(ctx, &v); err != nil {
		return 0, false, fmt.Errorf("read the stream floor of %s: %w", orgID, err)
	}
	return v.Int64, v.Valid, nil
}
