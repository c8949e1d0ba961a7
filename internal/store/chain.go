package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/intelliauth/controlplane/internal/auditchain"
)

// An organisation's audit events form a hash chain (internal/auditchain):
// an event's seq is its place, its hash links it to the one before. The
// chain's head (audit_chains: length and last hash) is one row per
// organisation, and its row lock orders the organisation's events: a
// writer locks it (lockHead), takes the next seq, and holds it until its
// transaction commits, so seq order is commit order and no seq is skipped
// (a transaction that rolls back gives its seqs back with the head). Each
// move of a head notes when it moved (updated_at, headMoved), for the
// notifier that wakes audit streams (WakeableStreams).

// headMoved is a head's updated_at when it moves: the time of the write
// (clock_timestamp(), not its transaction's start), kept when the head
// moved less than a second before. An indexed column that does not change
// leaves the update HOT, so a busy organisation's events pay for the
// index once a second, not each; the notifier looks back far further
// than that second.
const headMoved = "CASE WHEN c.updated_at > clock_timestamp() - interval '1 second' THEN c.updated_at ELSE clock_timestamp() END"

// chainBatch is how many events one statement chains or rewrites.
const chainBatch = 1000

// ChainHead is an organisation's chain head as stored.
type ChainHead struct {
	Length int64  `bun:"length"`
	Head   []byte `bun:"head"`
	// Backlog: events of the organisation are not chained yet.
	Backlog bool `bun:"backlog"`
	// Checkpoint is where the chain starts after: what retention purged
	// (ReadChainHead only).
	Checkpoint Checkpoint `bun:"embed:checkpoint_"`
	// RetentionDays is the organisation's plan's audit_retention_days,
	// and StartsAt when the first event kept occurred (nil: none is
	// kept) (ReadChainHead only).
	RetentionDays int        `bun:"retention_days"`
	StartsAt      *time.Time `bun:"starts_at"`
}

// lockHead locks the organisation's head, made on first use, until tx
// ends, and reads it: one statement.
func lockHead(ctx context.Context, tx bun.IDB, orgID string) (ChainHead, error) {
	var h ChainHead
	if err := lockChainHead.scan(ctx, tx, []any{orgID}, &h.Length, &h.Head, &h.Backlog); err != nil {
		return h, fmt.Errorf("lock the audit chain of %s: %w", orgID, err)
	}
	return h, nil
}

// lockChainHead locks an organisation's chain head, made at its first
// event, and reads it; prepared: every audit event runs it.
var lockChainHead = prepare(`INSERT INTO audit_chains AS c (org_id) VALUES ($1)
	ON CONFLICT (org_id) DO UPDATE SET org_id = EXCLUDED.org_id
	RETURNING c.length, c.head, EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = c.org_id AND e.seq IS NULL) AS backlog`)

// ReadChainHead is the organisation's head (length 0 and the genesis
// before its first event), whether events of it wait to be chained, its
// checkpoint, and how far back its trail goes: one statement, so they
// agree.
func ReadChainHead(ctx context.Context, db bun.IDB, orgID string) (ChainHead, error) {
	h := ChainHead{Head: auditchain.Genesis}
	err := db.NewRaw(`SELECT coalesce(c.length, 0) AS length, coalesce(c.head, ?0) AS head,
			EXISTS (SELECT 1 FROM audit_events e WHERE e.org_id = o.id AND e.seq IS NULL) AS backlog,
			coalesce(k.seq, 0) AS checkpoint_seq, coalesce(k.hash, ?0) AS checkpoint_hash, k.occurred_at AS checkpoint_occurred_at,
			p.audit_retention_days AS retention_days,
			(SELECT e.occurred_at FROM audit_events e WHERE e.org_id = o.id AND e.seq = coalesce(k.seq, 0) + 1) AS starts_at
		FROM organizations o JOIN plans p ON p.id = o.plan_id
		LEFT JOIN audit_chains c ON c.org_id = o.id LEFT JOIN audit_chain_checkpoints k ON k.org_id = o.id
		WHERE o.id = ?1`, auditchain.Genesis, orgID).Scan(ctx, &h)
	if err != nil {
		return h, fmt.Errorf("read the audit chain of %s: %w", orgID, err)
	}
	return h, nil
}

// canonical is the event's canonical form: its API view (with its seq),
// in RFC 8785 JSON, without its hash.
func (e *AuditEvent) canonical() ([]byte, error) {
	v := e.View()
	v.Hash = ""
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return auditchain.Canonical(b)
}

// storedJSON is a JSON column's value as an event stores it: in its
// canonical form, so what the chain's hash covers is what is stored, to
// the digit (a number jsonb keeps more exactly than a double is stored as
// the double). bun writes `\u0000` into the statement as `\\u0000` (see
// storableJSON); such an escaped backslash is written \u005c instead.
func storedJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	c, err := auditchain.CanonicalJSON(raw)
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(c, []byte(`\\u0000`), []byte(`\u005cu0000`)), nil
}

// chainBacklog chains, after head (locked in tx), the organisation's
// events not chained yet, oldest first ((occurred_at, id) order), at most
// limit (0: all), and moves the head past them. It returns the new head
// and how many it chained.
func chainBacklog(ctx context.Context, tx bun.IDB, orgID string, head ChainHead, limit int) (ChainHead, int, error) {
	n := 0
	for limit == 0 || n < limit {
		batch := chainBatch
		if limit > 0 {
			batch = min(batch, limit-n)
		}
		var evs []AuditEvent
		if err := tx.NewSelect().Model(&evs).Where("org_id = ? AND seq IS NULL", orgID).
			OrderExpr("occurred_at, id").Limit(int64(batch)).Scan(ctx); err != nil {
			return head, n, fmt.Errorf("read the unchained events of %s: %w", orgID, err)
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			evs[i].Seq = head.Length + 1
			c, err := evs[i].canonical()
			if err != nil {
				return head, n, fmt.Errorf("chain event %s: %w", evs[i].ID, err)
			}
			evs[i].Hash = auditchain.Link(head.Head, c)
			head.Length, head.Head = evs[i].Seq, evs[i].Hash
		}
		if err := setChained(ctx, tx, evs, "e.seq IS NULL"); err != nil {
			return head, n, err
		}
		n += len(evs)
		if len(evs) < batch {
			break
		}
	}
	head.Backlog = false
	return head, n, moveHead(ctx, tx, orgID, head)
}

// setChained writes the events' seq and hash, where cond holds.
func setChained(ctx context.Context, tx bun.IDB, evs []AuditEvent, cond string) error {
	ids, seqs, hashes := make([]string, len(evs)), make([]int64, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		ids[i], seqs[i], hashes[i] = e.ID, e.Seq, hex.EncodeToString(e.Hash)
	}
	res, err := tx.NewRaw(`UPDATE audit_events AS e SET seq = v.seq, hash = decode(v.hash, 'hex')
		FROM unnest(?::text[], ?::bigint[], ?::text[]) AS v (id, seq, hash) WHERE e.id = v.id AND `+cond,
		pgdialect.Array(ids), pgdialect.Array(seqs), pgdialect.Array(hashes)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("chain %d events: %w", len(evs), err)
	}
	if n, err := res.RowsAffected(); err != nil || n != int64(len(evs)) {
		return fmt.Errorf("chain %d events: %d written (%v)", len(evs), n, err)
	}
	return nil
}

func moveHead(ctx context.Context, tx bun.IDB, orgID string, head ChainHead) error {
	if _, err := tx.NewRaw("UPDATE audit_chains AS c SET length = ?, head = ?, updated_at = "+headMoved+" WHERE org_id = ?", head.Length, head.Head, orgID).Exec(ctx); err != nil {
		return fmt.Errorf("move the audit chain head of %s: %w", orgID, err)
	}
	return nil
}

// ChainBacklogs chains every organisation's events not chained yet (those
// written before the chain existed, or by a replica of the previous
// release during an upgrade), oldest first, chainBatch events a
// transaction under the organisation's head. `controlplane migrate up`
// runs it after the migrations, and each worker once a minute; the next
// event of an organisation chains what is left of its own first. It
// returns how many it chained.
func ChainBacklogs(ctx context.Context, db *bun.DB) (int, error) {
	var orgs []string
	if err := db.NewRaw("SELECT DISTINCT org_id FROM audit_events WHERE seq IS NULL").Scan(ctx, &orgs); err != nil {
		return 0, fmt.Errorf("list the organisations with unchained events: %w", err)
	}
	total := 0
	for _, org := range orgs {
		for {
			n := 0
			err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				head, err := lockHead(ctx, tx, org)
				if err != nil || !head.Backlog {
					return err
				}
				_, n, err = chainBacklog(ctx, tx, org, head, chainBatch)
				return err
			})
			total += n
			if err != nil {
				return total, err
			}
			if n < chainBatch {
				break
			}
		}
	}
	return total, nil
}

// rechain computes the organisation's chain again from its first event
// (after its checkpoint, if retention purged some) and writes the hashes
// that change, and the head: after the erasure's pseudonyms replaced
// names and emails in the events, the one rewrite the chain has (the
// trigger allows it in the erasure's transaction only, which holds the
// retention lock, so no purge moves the checkpoint meanwhile).
func rechain(ctx context.Context, tx bun.Tx, orgID string) error {
	head, err := lockHead(ctx, tx, orgID)
	if err != nil {
		return err
	}
	if head.Backlog {
		if head, _, err = chainBacklog(ctx, tx, orgID, head, 0); err != nil {
			return err
		}
	}
	from, err := readCheckpoint(ctx, tx, orgID)
	if err != nil {
		return err
	}
	prev, after := from.Hash, from.Seq
	for {
		evs, err := ChainEvents(ctx, tx, orgID, after, chainBatch)
		if err != nil {
			return err
		}
		var changed []AuditEvent
		for _, e := range evs {
			c, err := e.canonical()
			if err != nil {
				return fmt.Errorf("chain event %s: %w", e.ID, err)
			}
			if h := auditchain.Link(prev, c); !bytes.Equal(h, e.Hash) {
				e.Hash = h
				changed = append(changed, e)
			}
			prev, after = e.Hash, e.Seq
		}
		if len(changed) > 0 {
			if err := setChained(ctx, tx, changed, "e.seq = v.seq"); err != nil {
				return err
			}
		}
		if len(evs) < chainBatch {
			break
		}
	}
	head.Length, head.Head = after, prev
	return moveHead(ctx, tx, orgID, head)
}

// ChainEvents are up to limit of the organisation's chained events after
// seq after, in seq order: the chain as a verifier (or a stream after its
// cursor) reads it, one range of audit_events_org_seq_key.
func ChainEvents(ctx context.Context, db bun.IDB, orgID string, after int64, limit int) ([]AuditEvent, error) {
	var evs []AuditEvent
	if err := db.NewSelect().Model(&evs).Where("org_id = ? AND seq > ?", orgID, after).
		OrderExpr("seq").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("read the audit chain of %s after %d: %w", orgID, after, err)
	}
	return evs, nil
}
