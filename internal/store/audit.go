package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// InsertEvent writes an audit event in db (a transaction, usually the one of
// the change it records). An event whose DedupKey was written before is not
// written again; inserted says which happened.
func InsertEvent(ctx context.Context, db bun.IDB, ev *AuditEvent) (inserted bool, err error) {
	if ev.ID == "" {
		ev.ID = domain.NewID(domain.PrefixEvent)
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = time.Now().UTC()
	}
	res, err := db.NewInsert().Model(ev).On("CONFLICT (dedup_key) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("insert audit event %s: %w", ev.Action, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert audit event %s: %w", ev.Action, err)
	}
	return n == 1, nil
}
