package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// ExportPlan is where an export of events stops and what it may charge
// for: the keyset of every per-th matching event, up to max of them.
type ExportPlan struct {
	// Bounds[i] is the keyset of the ((i+1)·per)-th event: an export of
	// i+1 chunks ends there.
	Bounds []Keyset
	// Count is the number of matching events, counted up to max+1.
	Count int
}

// PlanExport reads where an export of f, after the keyset position (zero:
// from the newest), would stop after each per events, up to max events
// (a multiple of per), so the API knows before the first byte how much it
// may send and where the next export starts. It reads the keys only (an
// index-only scan when the filter's index covers it), up to max+1 of them.
func PlanExport(ctx context.Context, db bun.IDB, f EventFilter, after Keyset, per, max int) (ExportPlan, error) {
	var rows []struct {
		OccurredAt time.Time `bun:"occurred_at"`
		ID         string    `bun:"id"`
		RN         int       `bun:"rn"`
		Last       bool      `bun:"last"`
	}
	// Every per-th key, and the last one (whose number is the count): one
	// window pass over the keys, looking one row ahead (a count over the
	// whole window would hold them all).
	err := db.NewRaw(`
		SELECT occurred_at, id, rn, last FROM (
			SELECT occurred_at, id, row_number() OVER w AS rn, lead(id) OVER w IS NULL AS last
			FROM (?) AS page
			WINDOW w AS (ORDER BY occurred_at DESC, id DESC)) AS numbered
		WHERE rn % ? = 0 OR last
		ORDER BY rn`, selectEvents(db, f, after, max+1, "occurred_at", "id"), per).Scan(ctx, &rows)
	if err != nil {
		return ExportPlan{}, fmt.Errorf("plan an export of the events of %s: %w", f.OrgID, err)
	}
	var p ExportPlan
	for _, r := range rows {
		if r.Last {
			p.Count = r.RN
		}
		if r.RN%per == 0 && r.RN <= max {
			p.Bounds = append(p.Bounds, Keyset{CreatedAt: r.OccurredAt, ID: r.ID})
		}
	}
	return p, nil
}

// ErrExportsBusy is StartExport's answer when the organisation, or the
// caller, runs as many exports as it may.
var ErrExportsBusy = errors.New("exports busy")

// StartExport takes a lease for one export of the organisation's events
// by caller, unless the organisation runs perOrg of them or the caller
// perCaller (ErrExportsBusy). Leases are counted under a transaction lock
// of the organisation, so two replicas cannot both take the last one; a
// lease not renewed within its ttl (its API died) no longer counts.
func StartExport(ctx context.Context, db bun.IDB, orgID, caller string, perOrg, perCaller int, ttl time.Duration) (id string, err error) {
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "event_exports/"+orgID); err != nil {
			return err
		}
		if _, err := tx.NewDelete().Table("event_exports").Where("org_id = ? AND expires_at < now()", orgID).Exec(ctx); err != nil {
			return err
		}
		var all, own int
		if err := tx.NewRaw("SELECT count(*), count(*) FILTER (WHERE caller = ?) FROM event_exports WHERE org_id = ?", caller, orgID).Scan(ctx, &all, &own); err != nil {
			return err
		}
		if all >= perOrg || own >= perCaller {
			return ErrExportsBusy
		}
		id = domain.NewID(domain.PrefixExport)
		_, err := tx.NewRaw("INSERT INTO event_exports (id, org_id, caller, expires_at) VALUES (?, ?, ?, now() + ? * interval '1 millisecond')",
			id, orgID, caller, ttl.Milliseconds()).Exec(ctx)
		return err
	})
	if err != nil && !errors.Is(err, ErrExportsBusy) {
		return "", fmt.Errorf("start an export of %s: %w", orgID, err)
	}
	return id, err
}

// RenewExport moves the lease's expiry ttl from now.
func RenewExport(ctx context.Context, db bun.IDB, id string, ttl time.Duration) error {
	if _, err := db.NewRaw("UPDATE event_exports SET expires_at = now() + ? * interval '1 millisecond' WHERE id = ?", ttl.Milliseconds(), id).Exec(ctx); err != nil {
		return fmt.Errorf("renew export %s: %w", id, err)
	}
	return nil
}

// EndExport gives the lease back.
func EndExport(ctx context.Context, db bun.IDB, id string) error {
	if _, err := db.NewDelete().Table("event_exports").Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("end export %s: %w", id, err)
	}
	return nil
}
