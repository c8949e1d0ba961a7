package dataplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Spare schemas: a tenant's schema is 18 relation files (four tables,
// their indexes, their TOAST tables), and creating files is most of what
// a creation costs the database. A data plane can hold schemas with the
// baseline tables ready (spare_<hex>, listed in dataplane.spare_schemas);
// the schema step then claims one (a row of dataplane.tenant_schemas: no
// file, no catalog change) instead of creating one. Workers refill them
// while no creation is running, so a burst of creations takes them and
// the files are made in the quiet after it (CP_SPARE_SCHEMAS).

// baseline is the version of the baseline tables baselineDDL creates. A
// spare of another version is dropped, never given to a tenant: change it
// with baselineDDL.
const baseline = 1

// baselineDDL creates schema s with a tenant's baseline tables, or
// completes it.
func baselineDDL(s string) string {
	return fmt.Sprintf(`
		CREATE SCHEMA IF NOT EXISTS %[1]s;
		CREATE TABLE IF NOT EXISTS %[1]s.users (
			id            text PRIMARY KEY,
			email         text NOT NULL UNIQUE,
			password_hash text NOT NULL DEFAULT '',
			created_at    timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS %[1]s.groups (
			id   text PRIMARY KEY,
			name text NOT NULL UNIQUE
		);
		CREATE TABLE IF NOT EXISTS %[1]s.applications (
			id            text PRIMARY KEY,
			name          text NOT NULL,
			redirect_uris text[] NOT NULL DEFAULT '{}'
		);
		CREATE TABLE IF NOT EXISTS %[1]s.sessions (
			token_hash bytea PRIMARY KEY,
			user_id    text NOT NULL REFERENCES %[1]s.users (id) ON DELETE CASCADE,
			expires_at timestamptz NOT NULL
		);`, s)
}

// claimSpare gives the tenant the oldest spare schema of the current
// baseline in tx, by a row of dataplane.tenant_schemas (the spare keeps
// its name), unless the tenant has a schema already (a claimed spare, or
// legacy: tenant_<id>). It reports whether the tenant's schema is a
// spare, claimed now or by an earlier attempt: then it is whole. Concurrent
// claims take different spares; a claim rolled back leaves its spare in
// the list; two attempts for one tenant at once cannot both claim (the
// second's row conflicts, and its statement, the spare's removal with
// it, fails).
func claimSpare(ctx context.Context, tx bun.Tx, tenantID, legacy string) (bool, error) {
	var spared bool
	err := tx.NewRaw(`WITH spare AS (
			DELETE FROM dataplane.spare_schemas WHERE name = (
				SELECT name FROM dataplane.spare_schemas WHERE baseline = ?
				ORDER BY created_at, name LIMIT 1 FOR UPDATE SKIP LOCKED)
			AND NOT EXISTS (SELECT 1 FROM dataplane.tenant_schemas WHERE tenant_id = ?)
			AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?)
			RETURNING name),
		claimed AS (INSERT INTO dataplane.tenant_schemas (tenant_id, schema) SELECT ?, name FROM spare RETURNING schema)
		SELECT EXISTS (SELECT 1 FROM claimed) OR EXISTS (SELECT 1 FROM dataplane.tenant_schemas WHERE tenant_id = ?)`,
		baseline, tenantID, legacy, tenantID, tenantID).Scan(ctx, &spared)
	if err != nil {
		return false, fmt.Errorf("claim a spare schema for %s: %w", tenantID, err)
	}
	return spared, nil
}

// spareLock is the advisory lock the processes filling one data plane's
// spares take turns on, so that together they stop at the target.
const spareLock = 7411100003

// Spares counts the spare schemas of the current baseline.
func (d *Postgres) Spares(ctx context.Context) (int, error) {
	return countSpares(ctx, d.DB)
}

func countSpares(ctx context.Context, db bun.IDB) (int, error) {
	var n int
	if err := db.NewRaw("SELECT count(*) FROM dataplane.spare_schemas WHERE baseline = ?", baseline).Scan(ctx, &n); err != nil {
		return 0, fmt.Errorf("count spare schemas: %w", err)
	}
	return n, nil
}

// FillSpares drops the spare schemas of an older baseline, then creates
// spares, one transaction each, until the data plane holds target. It
// gives way to creations: it returns, with what it made, when this process
// ran a schema step within the last quiet (or ctx ends); the next call
// goes on.
func (d *Postgres) FillSpares(ctx context.Context, target int, quiet time.Duration) (created int, err error) {
	var stale []string
	if err := d.DB.NewRaw("SELECT name FROM dataplane.spare_schemas WHERE baseline <> ?", baseline).Scan(ctx, &stale); err != nil {
		return 0, fmt.Errorf("list stale spare schemas: %w", err)
	}
	for _, name := range stale {
		if err := d.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			res, err := tx.NewRaw("DELETE FROM dataplane.spare_schemas WHERE name = ?", name).Exec(ctx)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil // claimed or dropped meanwhile
			}
			_, err = tx.ExecContext(ctx, "DROP SCHEMA IF EXISTS "+name+" CASCADE")
			return err
		}); err != nil {
			return 0, fmt.Errorf("drop stale spare schema %s: %w", name, err)
		}
	}
	for ctx.Err() == nil && time.Since(time.Unix(0, d.lastSchema.Load())) >= quiet {
		done := false
		err := d.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", spareLock); err != nil {
				return err
			}
			n, err := countSpares(ctx, tx)
			if err != nil {
				return err
			}
			if n >= target {
				done = true
				return nil
			}
			name, err := spareName()
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, baselineDDL(name)); err != nil {
				return err
			}
			_, err = tx.NewRaw("INSERT INTO dataplane.spare_schemas (name, baseline) VALUES (?, ?)", name, baseline).Exec(ctx)
			return err
		})
		if err != nil {
			return created, fmt.Errorf("create a spare schema: %w", err)
		}
		if done {
			return created, nil
		}
		created++
	}
	return created, ctx.Err()
}

// spareName is a new spare schema's name: spare_ and 16 random bytes in
// hex, never a tenant's (tenant_…).
func spareName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "spare_" + hex.EncodeToString(b[:]), nil
}
