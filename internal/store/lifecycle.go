package store

import (
	"context"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// Running is what a client needs to know of the operation running on a
// tenant to say which transitions the tenant accepts now.
type Running struct {
	ID          string     `bun:"id"`
	Kind        string     `bun:"kind"`
	GraceEndsAt *time.Time `bun:"grace_ends_at"`
}

// RunningOperations returns, by id, the operations of ids (tenants'
// current_operation_id) that are still running, in one read.
func RunningOperations(ctx context.Context, db bun.IDB, ids []string) (map[string]Running, error) {
	out := map[string]Running{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Running
	err := db.NewSelect().TableExpr("operations").Column("id", "kind", "grace_ends_at").
		Where("id IN (?)", bun.In(ids)).Where("status IN (?)", bun.In([]domain.OpStatus{domain.OpRunning, domain.OpStuck})).
		Scan(ctx, &rows)
	for _, r := range rows {
		out[r.ID] = r
	}
	return out, err
}

// notEnded is the SQL condition that the tenant state in col is not an
// ended one (domain.State.Ended): the tenant holds its name, its hostname
// and a place in the quota. The partial unique indexes on tenants' names
// and hostnames hold the same condition (a test compares them).
func notEnded(col string) string {
	quoted := make([]string, 0, 2)
	for _, s := range domain.EndedStates() {
		quoted = append(quoted, "'"+string(s)+"'")
	}
	return col + " NOT IN (" + strings.Join(quoted, ", ") + ")"
}
