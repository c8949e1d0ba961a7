// Package schema is the control plane's database: versioned SQL migrations
// embedded in the binary, applied with bun's migrate package.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

//go:embed migrations/*.sql
var files embed.FS

// migrationLockID is the Postgres advisory lock that serialises migrators,
// so replicas starting together apply each migration once. Unlike a lock row,
// an advisory lock is released when its holder dies.
const migrationLockID = 7_411_100_001

// Status is one migration and whether it is applied.
type Status struct {
	Name    string
	Comment string
	Applied bool
	Group   int64
}

func migrator(db *bun.DB) (*migrate.Migrator, error) {
	ms := migrate.NewMigrations()
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		return nil, err
	}
	if err := ms.Discover(sub); err != nil {
		return nil, fmt.Errorf("discover migrations: %w", err)
	}
	return migrate.NewMigrator(db, ms, migrate.WithMarkAppliedOnSuccess(true)), nil
}

// Up applies every pending migration and returns the names applied.
func Up(ctx context.Context, db *bun.DB) ([]string, error) {
	var applied []string
	err := locked(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
		for _, mg := range group.Migrations {
			applied = append(applied, mg.String())
		}
		return nil
	})
	return applied, err
}

// Down rolls back the last group of applied migrations and returns their
// names.
func Down(ctx context.Context, db *bun.DB) ([]string, error) {
	var rolled []string
	err := locked(ctx, db, func(m *migrate.Migrator) error {
		group, err := m.Rollback(ctx)
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		for _, mg := range group.Migrations {
			rolled = append(rolled, mg.String())
		}
		return nil
	})
	return rolled, err
}

// List returns every known migration with its status.
func List(ctx context.Context, db *bun.DB) ([]Status, error) {
	var out []Status
	err := locked(ctx, db, func(m *migrate.Migrator) error {
		ms, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("migration status: %w", err)
		}
		for _, mg := range ms {
			out = append(out, Status{Name: mg.Name, Comment: mg.Comment, Applied: mg.IsApplied(), Group: mg.GroupID})
		}
		return nil
	})
	return out, err
}

// Pending reports how many migrations are not applied.
func Pending(ctx context.Context, db *bun.DB) (int, error) {
	st, err := List(ctx, db)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range st {
		if !s.Applied {
			n++
		}
	}
	return n, nil
}

func locked(ctx context.Context, db *bun.DB, fn func(*migrate.Migrator) error) error {
	m, err := migrator(db)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock connection: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockID); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrationLockID) //nolint:errcheck // released with the connection anyway
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("create migration tables: %w", err)
	}
	return fn(m)
}
