package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// An organisation's audit streams, as people manage them: each is
// written with its audit event in one transaction. What a stream's
// delivery writes (its cursor, its failures, its delivery log) is in
// streamdelivery.go.

// MaxStreams is how many audit streams (not deleted) an organisation may
// have.
const MaxStreams = 20

// AuditStream is a row of audit_streams.
type AuditStream struct {
	bun.BaseModel `bun:"table:audit_streams"`

	ID       string  `bun:"id,pk"`
	OrgID    string  `bun:"org_id"`
	Name     string  `bun:"name"`
	Kind     string  `bun:"kind"`
	Endpoint string  `bun:"endpoint"`
	Format   *string `bun:"format"`
	// Actions is the filter: exact actions and families (tenant.*); empty:
	// every event.
	Actions []string `bun:"actions,array"`
	Status  string   `bun:"status"`
	// CursorSeq is the stream's place in its organisation's chain: every
	// event up to it was delivered or passed over by the filter;
	// CursorEventID is that event (nil before the first).
	CursorSeq     int64   `bun:"cursor_seq"`
	CursorEventID *string `bun:"cursor_event_id"`
	// InflightSeq is the last seq of the batch being sent (MarkInflight):
	// until the cursor passes it, every attempt sends that batch again.
	InflightSeq    *int64     `bun:"inflight_seq"`
	FailingSince   *time.Time `bun:"failing_since"`
	LastError      string     `bun:"last_error"`
	LastErrorAt    *time.Time `bun:"last_error_at"`
	LastDeliveryAt *time.Time `bun:"last_delivery_at"`
	// SecretSealed (https) and CredentialSealed (splunk_hec, datadog) are
	// sealed under the key ring with StreamSealContext.
	SecretSealed     []byte `bun:"secret_sealed"`
	CredentialSealed []byte `bun:"credential_sealed"`
	// Version counts the changes people made (PATCH, replay).
	Version   int64      `bun:"version"`
	CreatedBy string     `bun:"created_by"`
	CreatedAt time.Time  `bun:"created_at"`
	UpdatedAt time.Time  `bun:"updated_at"`
	DeletedAt *time.Time `bun:"deleted_at"`
}

// NewStream is a stream to create: its id (which its sealed values are
// bound to) and what the person asked for.
type NewStream struct {
	ID, OrgID, Name, Kind, Endpoint string
	Format                          *string
	Actions                         []string
	SecretSealed, CredentialSealed  []byte
	CreatedBy                       string
}

// CreateStream writes a stream and its audit_stream.created event. The
// organisation's row is locked while its streams are counted against
// MaxStreams, so creations at once cannot pass it. The stream starts at
// the head of its organisation's chain: it delivers what happens from now
// on, its own creation first (a replay delivers what came before).
func CreateStream(ctx context.Context, db *bun.DB, in NewStream, ev EventBase) (AuditStream, error) {
	s := AuditStream{ID: in.ID, OrgID: in.OrgID, Name: in.Name, Kind: in.Kind, Endpoint: in.Endpoint, Format: in.Format,
		Actions: nonNil(in.Actions), Status: string(domain.StreamActive), SecretSealed: in.SecretSealed, CredentialSealed: in.CredentialSealed,
		Version: 1, CreatedBy: in.CreatedBy}
	// As Postgres stores it: bun writes a zero time as it is, not the
	// column's default.
	s.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	s.UpdatedAt = s.CreatedAt
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// NO KEY UPDATE: creations of the organisation's streams wait for
		// each other, while an event of the organisation (whose foreign
		// key takes KEY SHARE) written under its chain's head lock does
		// not wait for this transaction, which takes that head next.
		var state string
		if err := tx.NewRaw("SELECT state FROM organizations WHERE id = ? FOR NO KEY UPDATE", in.OrgID).Scan(ctx, &state); err != nil {
			return fmt.Errorf("lock organisation %s: %w", in.OrgID, err)
		}
		if state != string(domain.OrgActive) {
			return domain.ErrOrgDeleting()
		}
		var n int
		if err := tx.NewSelect().Model((*AuditStream)(nil)).ColumnExpr("count(*)").
			Where("org_id = ? AND deleted_at IS NULL", in.OrgID).Scan(ctx, &n); err != nil {
			return fmt.Errorf("count audit streams of %s: %w", in.OrgID, err)
		}
		if n >= MaxStreams {
			return domain.Errorf(domain.CodeConflict, "audit stream quota reached: an organization may have %d streams; delete one first", MaxStreams)
		}
		if err := tx.NewRaw("SELECT coalesce((SELECT length FROM audit_chains WHERE org_id = ?), 0)", in.OrgID).Scan(ctx, &s.CursorSeq); err != nil {
			return fmt.Errorf("read the audit chain of %s: %w", in.OrgID, err)
		}
		if _, err := tx.NewInsert().Model(&s).Returning("*").Exec(ctx); err != nil {
			return fmt.Errorf("insert audit stream: %w", err)
		}
		_, err := InsertEvent(ctx, tx, ev.Event(domain.ActionStreamCreated, "audit_stream", s.ID, map[string]any{"after": streamFields(s)}))
		return err
	})
	return s, err
}

// streamFields are what an audit event shows of a stream's settings:
// never a secret.
func streamFields(s AuditStream) map[string]any {
	return map[string]any{"name": s.Name, "kind": s.Kind, "endpoint": s.Endpoint, "format": s.Format, "actions": s.Actions}
}

// StreamByID returns a stream of the organisation that is not deleted.
func StreamByID(ctx context.Context, db bun.IDB, orgID, id string) (AuditStream, error) {
	var s AuditStream
	err := db.NewSelect().Model(&s).Where("org_id = ? AND id = ? AND deleted_at IS NULL", orgID, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return s, domain.Errorf(domain.CodeNotFound, "audit stream not found: %s", clip(id, 64))
	}
	if err != nil {
		return s, fmt.Errorf("read audit stream %s: %w", id, err)
	}
	return s, nil
}

// ListStreams returns up to limit+1 streams of the organisation after the
// keyset position, oldest first.
func ListStreams(ctx context.Context, db bun.IDB, orgID string, after Keyset, limit int) ([]AuditStream, error) {
	out := []AuditStream{}
	q := db.NewSelect().Model(&out).Where("org_id = ? AND deleted_at IS NULL", orgID).OrderExpr("created_at, id").Limit(int64(limit + 1))
	if after.ID != "" {
		q = q.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list audit streams of %s: %w", orgID, err)
	}
	return out, nil
}

// StreamLag is how far a stream is behind its organisation's chain.
type StreamLag struct {
	// Events counts the events after the cursor, whether or not the
	// filter takes them (a stream with nothing to deliver moves its
	// cursor past those it does not).
	Events int64
	// Oldest is when the first event after the cursor happened; nil when
	// there is none.
	Oldest *time.Time
}

// StreamLags returns the lag of each stream, by id, in one query: the
// chain's length and a point read of the event after each cursor.
func StreamLags(ctx context.Context, db bun.IDB, streams []AuditStream) (map[string]StreamLag, error) {
	out := map[string]StreamLag{}
	if len(streams) == 0 {
		return out, nil
	}
	ids := make([]string, len(streams))
	for i, s := range streams {
		ids[i] = s.ID
	}
	var rows []struct {
		ID     string     `bun:"id"`
		Events int64      `bun:"events"`
		Oldest *time.Time `bun:"oldest"`
	}
	err := db.NewRaw(`SELECT s.id, greatest(coalesce(c.length, 0) - s.cursor_seq, 0) AS events,
			(SELECT e.occurred_at FROM audit_events e WHERE e.org_id = s.org_id AND e.seq = s.cursor_seq + 1) AS oldest
		FROM audit_streams s LEFT JOIN audit_chains c ON c.org_id = s.org_id WHERE s.id IN (?)`, bun.In(ids)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("read the lag of %d audit streams: %w", len(ids), err)
	}
	for _, r := range rows {
		out[r.ID] = StreamLag{Events: r.Events, Oldest: r.Oldest}
	}
	return out, nil
}

// StreamChange is what a person changes of a stream; nil fields stay.
type StreamChange struct {
	Name     *string
	Endpoint *string
	Actions  *[]string
	// Paused holds the stream (true), or lets a paused or suspended one
	// deliver again from its cursor (false).
	Paused *bool
	// CredentialSealed replaces a splunk_hec or datadog stream's
	// credential (sealed with StreamSealContext).
	CredentialSealed []byte
}

// ChangeStream applies a change with its events, in one transaction:
// audit_stream.updated (before and after) for the settings, and
// audit_stream.paused or audit_stream.resumed (with the status it left)
// for a pause or a resume. A resume clears the failure's start, so a
// suspended stream gets its whole CP_STREAM_SUSPEND_AFTER again.
func ChangeStream(ctx context.Context, db *bun.DB, orgID, id string, ch StreamChange, ev EventBase) (AuditStream, error) {
	var s AuditStream
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if s, err = lockStream(ctx, tx, orgID, id); err != nil {
			return err
		}
		before := streamFields(s)
		set := map[string]any{}
		if ch.Name != nil && *ch.Name != s.Name {
			s.Name, set["name"] = *ch.Name, *ch.Name
		}
		if ch.Endpoint != nil && *ch.Endpoint != s.Endpoint {
			s.Endpoint, set["endpoint"] = *ch.Endpoint, *ch.Endpoint
		}
		if ch.Actions != nil && !slices.Equal(*ch.Actions, s.Actions) {
			// The batch in flight was cut by the old filter: the next is
			// cut by the new one.
			s.Actions, set["actions"], s.InflightSeq = nonNil(*ch.Actions), nonNil(*ch.Actions), nil
		}
		credential := ch.CredentialSealed != nil
		if credential {
			s.CredentialSealed = ch.CredentialSealed
		}
		var evs []*AuditEvent
		if len(set) > 0 || credential {
			data := map[string]any{"before": before, "after": streamFields(s)}
			if credential {
				data["credential"] = "replaced"
			}
			evs = append(evs, ev.Event(domain.ActionStreamUpdated, "audit_stream", s.ID, data))
		}
		from := domain.StreamStatus(s.Status)
		switch {
		case ch.Paused == nil:
		case *ch.Paused && from != domain.StreamPaused:
			s.Status = string(domain.StreamPaused)
			evs = append(evs, ev.Event(domain.ActionStreamPaused, "audit_stream", s.ID, map[string]any{"status_before": from}))
		case !*ch.Paused && (from == domain.StreamPaused || from == domain.StreamSuspended):
			s.Status, s.FailingSince = string(domain.StreamActive), nil
			evs = append(evs, ev.Event(domain.ActionStreamResumed, "audit_stream", s.ID, map[string]any{"status_before": from, "cursor_seq": s.CursorSeq}))
		}
		if len(evs) == 0 {
			return nil
		}
		s.Version++
		if _, err := tx.NewUpdate().Model(&s).Column("name", "endpoint", "actions", "inflight_seq", "credential_sealed", "status", "failing_since", "version").
			Set("updated_at = now()").WherePK().Returning("updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("change audit stream %s: %w", id, err)
		}
		return insertEvents(ctx, tx, evs)
	})
	return s, err
}

// lockStream reads a stream of the organisation that is not deleted and
// locks its row until tx ends.
func lockStream(ctx context.Context, tx bun.Tx, orgID, id string) (AuditStream, error) {
	var s AuditStream
	err := tx.NewSelect().Model(&s).Where("org_id = ? AND id = ? AND deleted_at IS NULL", orgID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return s, domain.Errorf(domain.CodeNotFound, "audit stream not found: %s", clip(id, 64))
	}
	if err != nil {
		return s, fmt.Errorf("lock audit stream %s: %w", id, err)
	}
	return s, nil
}

// DeleteStream deletes a stream with its audit_stream.deleted event: its
// row stays, without its sealed secret and credential, and its workflow
// ends when it next reads it.
func DeleteStream(ctx context.Context, db *bun.DB, orgID, id string, ev EventBase) (AuditStream, error) {
	var s AuditStream
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if s, err = lockStream(ctx, tx, orgID, id); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model(&s).Set("deleted_at = now(), updated_at = now(), secret_sealed = NULL, credential_sealed = NULL").
			WherePK().Returning("deleted_at, updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("delete audit stream %s: %w", id, err)
		}
		s.SecretSealed, s.CredentialSealed = nil, nil
		_, err = InsertEvent(ctx, tx, ev.Event(domain.ActionStreamDeleted, "audit_stream", s.ID, map[string]any{"before": streamFields(s), "cursor_seq": s.CursorSeq}))
		return err
	})
	return s, err
}

// Replay says where a replay starts: at an event of the organisation, or
// at the first event at or after a time.
type Replay struct {
	FromEventID string
	Since       time.Time
}

// replaySinceWindow bounds the events a replay by time reads to find its
// start: of the first ones at or after the time, the one first in the
// chain (an event's time and its place in the chain agree but for
// transactions that overlapped).
const replaySinceWindow = 1000

// ReplayStream moves the stream's cursor back to just before the replay's
// start, with an audit_stream.replayed event, and bumps its version: a
// delivery in flight then finds the cursor moved and leaves it. A cursor
// already before the start stays (a replay never skips an event).
func ReplayStream(ctx context.Context, db *bun.DB, orgID, id string, r Replay, ev EventBase) (AuditStream, error) {
	var s AuditStream
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if s, err = lockStream(ctx, tx, orgID, id); err != nil {
			return err
		}
		var start sql.NullInt64
		data := map[string]any{"cursor_seq_before": s.CursorSeq}
		if r.FromEventID != "" {
			err := tx.NewRaw("SELECT seq FROM audit_events WHERE org_id = ? AND id = ?", orgID, r.FromEventID).Scan(ctx, &start)
			if errors.Is(err, sql.ErrNoRows) {
				return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
					FieldErrors: []domain.FieldError{{Field: "from_event_id", Message: "not an event of this organization"}}}
			}
			if err != nil {
				return fmt.Errorf("read event %s: %w", r.FromEventID, err)
			}
			if !start.Valid {
				return domain.Errorf(domain.CodeConflict, "event %s is not chained yet; retry in a minute", r.FromEventID)
			}
			data["from_event_id"] = r.FromEventID
		} else {
			if err := tx.NewRaw(`SELECT min(seq) FROM (SELECT seq FROM audit_events WHERE org_id = ? AND occurred_at >= ?
					ORDER BY occurred_at, id LIMIT ?) AS first`, orgID, r.Since, replaySinceWindow).Scan(ctx, &start); err != nil {
				return fmt.Errorf("find the events of %s since %s: %w", orgID, r.Since, err)
			}
			data["since"] = r.Since.UTC()
		}
		if start.Valid && start.Int64-1 < s.CursorSeq {
			s.CursorSeq = start.Int64 - 1
		}
		data["cursor_seq_after"] = s.CursorSeq
		s.Version, s.InflightSeq = s.Version+1, nil
		if _, err := tx.NewUpdate().Model(&s).Column("cursor_seq", "inflight_seq", "version").
			Set("cursor_event_id = (SELECT id FROM audit_events WHERE org_id = ? AND seq = ?)", orgID, s.CursorSeq).
			Set("updated_at = now()").WherePK().Returning("cursor_event_id, updated_at").Exec(ctx); err != nil {
			return fmt.Errorf("replay audit stream %s: %w", id, err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event(domain.ActionStreamReplayed, "audit_stream", s.ID, data))
		return err
	})
	return s, err
}
