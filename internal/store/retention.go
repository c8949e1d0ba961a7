package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/auditchain"
)

// Retention (SPEC §9): each plan keeps an organisation's events for its
// audit_retention_days; older events are purged, oldest first, a batch
// per short transaction (PurgeAuditTrail). What is purged is always a
// prefix of the organisation's chain, summarised by its checkpoint
// (audit_chain_checkpoints: the last purged event's seq, hash and time),
// from which what is left verifies as from a genesis.
//
// Locks. A purge takes no lock an event writer waits for: writers lock
// the chain's head and append after it, and a purge deletes events the
// head has passed and that are committed (seq order is commit order), so
// the two ends of the chain never meet in a lock. What a purge must
// exclude is another purge of the organisation and the erasure's
// rewrite of its chain (which recomputes hashes from the checkpoint):
// both take the organisation's retention lock (lockRetention, a
// transaction's advisory lock) before anything else of its trail. Readers
// that need the checkpoint and the events to agree (VerifyChain) read
// them in one snapshot.

// StreamWait bounds how long past its organisation's window an event
// waits for the audit streams that are active or failing to deliver it:
// an event older than the window plus this is purged whatever the
// streams' cursors say.
const StreamWait = 7 * 24 * time.Hour

// PurgeBatch is how many events one purge transaction deletes at most.
const PurgeBatch = 2000

// Checkpoint is what retention purged of an organisation's chain: every
// event up to Seq, the last of which had Hash and occurred at OccurredAt.
// Seq 0: nothing was purged (Hash is the genesis, OccurredAt nil).
type Checkpoint struct {
	Seq        int64      `bun:"seq"`
	Hash       []byte     `bun:"hash"`
	OccurredAt *time.Time `bun:"occurred_at"`
}

// PurgeInput is one purge step of an organisation.
type PurgeInput struct {
	OrgID string
	// At is the purge's now: events that occurred before At minus the
	// plan's retention are past their window.
	At time.Time
	// Limit is how many events the step deletes at most (PurgeBatch when
	// 0).
	Limit int
	// StreamWait is how long past the window events wait for the streams
	// (StreamWait when 0).
	StreamWait time.Duration
}

// PurgeResult is what a purge step did.
type PurgeResult struct {
	// Deleted is how many events it purged; Checkpoint is where the chain
	// now starts after.
	Deleted    int
	Checkpoint Checkpoint
	// More: the next step has events to purge (this one stopped at its
	// limit).
	More bool
	// HeldByStreams: events past the window are kept for a stream that
	// has not delivered them yet (within StreamWait).
	HeldByStreams bool
	// Overtaken are the streams (active or failing) whose cursor is
	// before the new checkpoint: events past the window and StreamWait
	// were purged before they delivered them, and they miss the events
	// from their cursor up to the checkpoint.
	Overtaken []string
}

// lockRetention takes the organisation's retention lock until tx ends:
// one purge at a time, and no purge during the erasure's rewrite of the
// chain.
func lockRetention(ctx context.Context, tx bun.IDB, orgID string) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "audit_retention/"+orgID); err != nil {
		return fmt.Errorf("lock the retention of %s: %w", orgID, err)
	}
	return nil
}

// ChainCheckpoint is the organisation's checkpoint: where its chain
// starts after (Seq 0 and the genesis while nothing was purged).
func ChainCheckpoint(ctx context.Context, db bun.IDB, orgID string) (Checkpoint, error) {
	return readCheckpoint(ctx, db, orgID)
}

// readCheckpoint is the organisation's checkpoint (Seq 0 and the genesis
// before its first purge).
func readCheckpoint(ctx context.Context, db bun.IDB, orgID string) (Checkpoint, error) {
	var cs []Checkpoint
	if err := db.NewRaw("SELECT seq, hash, occurred_at FROM audit_chain_checkpoints WHERE org_id = ?", orgID).Scan(ctx, &cs); err != nil {
		return Checkpoint{}, fmt.Errorf("read the audit chain checkpoint of %s: %w", orgID, err)
	}
	if len(cs) == 0 {
		return Checkpoint{Hash: auditchain.Genesis}, nil
	}
	return cs[0], nil
}

// PurgeAuditTrail purges, in one short transaction, up to in.Limit of the
// organisation's oldest events (in chain order) that are past its plan's
// window and that every stream active or failing has delivered (its
// cursor at or past them), or that are past the window by more than
// StreamWait; it stops at the first event that is not, so what it
// purges is a prefix of the chain. It moves the checkpoint to the last
// purged event, then deletes the events up to it (the triggers accept
// nothing else).
func PurgeAuditTrail(ctx context.Context, db *bun.DB, in PurgeInput) (PurgeResult, error) {
	limit, wait := in.Limit, in.StreamWait
	if limit <= 0 {
		limit = PurgeBatch
	}
	if wait <= 0 {
		wait = StreamWait
	}
	var res PurgeResult
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res = PurgeResult{}
		if err := lockRetention(ctx, tx, in.OrgID); err != nil {
			return err
		}
		var days int
		if err := tx.NewRaw("SELECT p.audit_retention_days FROM organizations o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?",
			in.OrgID).Scan(ctx, &days); err != nil {
			return fmt.Errorf("read the retention of %s: %w", in.OrgID, err)
		}
		from, err := readCheckpoint(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		res.Checkpoint = from
		floor, streams, err := StreamFloor(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		var evs []Checkpoint
		if err := tx.NewRaw("SELECT seq, hash, occurred_at FROM audit_events WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?",
			in.OrgID, from.Seq, limit+1).Scan(ctx, &evs); err != nil {
			return fmt.Errorf("read the oldest events of %s: %w", in.OrgID, err)
		}
		window := in.At.Add(-time.Duration(days) * 24 * time.Hour)
		purgeable := func(e Checkpoint) bool {
			switch {
			case !e.OccurredAt.Before(window):
				return false
			case streams && e.Seq > floor && !e.OccurredAt.Before(window.Add(-wait)):
				res.HeldByStreams = true
				return false
			}
			return true
		}
		n := 0
		for n < len(evs) && n < limit && purgeable(evs[n]) {
			n++
		}
		if n == 0 {
			return nil
		}
		res.More = n == limit && len(evs) > limit && purgeable(evs[limit])
		to := evs[n-1]
		if _, err := tx.ExecContext(ctx, "SELECT set_config('controlplane.purge', ?, true)", in.OrgID); err != nil {
			return fmt.Errorf("allow the purge of %s: %w", in.OrgID, err)
		}
		if _, err := tx.NewRaw(`INSERT INTO audit_chain_checkpoints AS k (org_id, seq, hash, occurred_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (org_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, occurred_at = EXCLUDED.occurred_at, purged_at = now()`,
			in.OrgID, to.Seq, to.Hash, to.OccurredAt).Exec(ctx); err != nil {
			return fmt.Errorf("move the audit chain checkpoint of %s to %d: %w", in.OrgID, to.Seq, err)
		}
		r, err := tx.NewRaw("DELETE FROM audit_events WHERE org_id = ? AND seq > ? AND seq <= ?", in.OrgID, from.Seq, to.Seq).Exec(ctx)
		if err != nil {
			return fmt.Errorf("purge events %d–%d of %s: %w", from.Seq+1, to.Seq, in.OrgID, err)
		}
		if d, err := r.RowsAffected(); err != nil || d != int64(n) {
			return fmt.Errorf("purge events %d–%d of %s: %d deleted, want %d (%v)", from.Seq+1, to.Seq, in.OrgID, d, n, err)
		}
		res.Deleted, res.Checkpoint = n, to
		if streams && floor < to.Seq {
			if err := tx.NewRaw(`SELECT id FROM audit_streams WHERE org_id = ? AND deleted_at IS NULL
				AND status IN ('active', 'failing') AND cursor_seq < ? ORDER BY id`, in.OrgID, to.Seq).Scan(ctx, &res.Overtaken); err != nil {
				return fmt.Errorf("list the streams of %s the purge overtook: %w", in.OrgID, err)
			}
		}
		return nil
	})
	return res, err
}

// PurgeableOrgs are up to limit organisations after the id after, in id
// order, whose oldest event (the first after their checkpoint) is past
// their plan's window at at: those a purge has something to look at.
func PurgeableOrgs(ctx context.Context, db bun.IDB, at time.Time, after string, limit int) ([]string, error) {
	var ids []string
	err := db.NewRaw(`SELECT o.id FROM organizations o JOIN plans p ON p.id = o.plan_id
		LEFT JOIN audit_chain_checkpoints k ON k.org_id = o.id
		WHERE o.id > ? AND EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = o.id AND e.seq = coalesce(k.seq, 0) + 1
			AND e.occurred_at < ?::timestamptz - make_interval(days => p.audit_retention_days))
		ORDER BY o.id LIMIT ?`, after, at, limit).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("list the organisations with events past their retention: %w", err)
	}
	return ids, nil
}
