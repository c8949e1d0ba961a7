package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/domain"
)

// ChainReport is what VerifyChain found of an organisation's chain.
type ChainReport struct {
	// Length and Head are the head as stored when the check began; the
	// events up to it are checked, those written since are not.
	Length int64
	Head   []byte
	// Checkpoint is where the check began: after what retention purged
	// (seq 0, the genesis, when nothing was).
	Checkpoint Checkpoint
	// Checked is how many events were found good, from the one after the
	// checkpoint.
	Checked int64
	// Unchained is how many events wait to be chained (an older
	// release's, during an upgrade): not part of the check.
	Unchained int
	// Problem is the chain's first bad event (nil: none).
	Problem *auditchain.Problem
}

// VerifyChain recomputes the organisation's chain from the database:
// every event after its checkpoint up to the head, in seq order, a page at
// a time, each hash from its content and the one before (the first's from
// the checkpoint's), then the last against the head. It names the first
// bad event: edited, deleted, reordered, or a head that is not the last
// event. Given the pool, it reads in one snapshot (a read-only repeatable
// read transaction), so a purge that commits meanwhile does not look like
// events deleted.
func VerifyChain(ctx context.Context, db bun.IDB, orgID string) (rep ChainReport, err error) {
	if pool, ok := db.(*bun.DB); ok {
		err = pool.RunInTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, func(ctx context.Context, tx bun.Tx) error {
			rep, err = VerifyChain(ctx, tx, orgID)
			return err
		})
		return rep, err
	}
	head, err := ReadChainHead(ctx, db, orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return rep, domain.Errorf(domain.CodeNotFound, "organization not found: %s", orgID)
	}
	if err != nil {
		return rep, err
	}
	rep.Length, rep.Head, rep.Checkpoint = head.Length, head.Head, head.Checkpoint
	if err := db.NewSelect().Model((*AuditEvent)(nil)).ColumnExpr("count(*)").
		Where("org_id = ? AND seq IS NULL", orgID).Scan(ctx, &rep.Unchained); err != nil {
		return rep, fmt.Errorf("count the unchained events of %s: %w", orgID, err)
	}
	v := auditchain.NewVerifierAfter(head.Checkpoint.Seq, head.Checkpoint.Hash)
	for after := head.Checkpoint.Seq; after < head.Length; {
		evs, err := ChainEvents(ctx, db, orgID, after, chainBatch)
		if err != nil {
			return rep, err
		}
		if len(evs) == 0 {
			break
		}
		recs := make([]auditchain.Record, 0, len(evs))
		for _, e := range evs {
			if e.Seq > head.Length {
				break // written since the head was read
			}
			r, err := recordOf(e)
			if err != nil {
				return rep, err
			}
			recs = append(recs, r)
			after = e.Seq
		}
		if rep.Problem, err = v.Feed(recs...); err != nil || rep.Problem != nil {
			rep.Checked = v.Checked()
			return rep, err
		}
		if len(recs) < len(evs) {
			break
		}
	}
	if rep.Problem, err = v.Close(); err == nil && rep.Problem == nil {
		rep.Problem = v.CheckHead(head.Length, head.Head)
	}
	rep.Checked = v.Checked()
	return rep, err
}

// recordOf is the event as the verifier reads it: its API view.
func recordOf(e AuditEvent) (auditchain.Record, error) {
	b, err := json.Marshal(e.View())
	if err != nil {
		return auditchain.Record{}, fmt.Errorf("event %s: %w", e.ID, err)
	}
	return auditchain.RecordOf(b)
}
