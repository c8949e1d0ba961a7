package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Throttle is the sign-in brute-force policy: within Window, a key (an
// email or a client address) with Limit failures is locked for Window.
type Throttle struct {
	Window time.Duration
	Limit  int
}

// Locked returns how long the longest lock among keys has left (zero: none)
// and the most failures any key has in its window.
func (t Throttle) Locked(ctx context.Context, db bun.IDB, keys ...string) (time.Duration, int, error) {
	var rows []struct {
		Failures    int          `bun:"failures"`
		WindowStart time.Time    `bun:"window_start"`
		LockedUntil sql.NullTime `bun:"locked_until"`
	}
	if err := db.NewRaw("SELECT failures, window_start, locked_until FROM sign_in_failures WHERE key IN (?)", bun.In(keys)).Scan(ctx, &rows); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, 0, fmt.Errorf("read sign-in failures: %w", err)
	}
	now := time.Now()
	var wait time.Duration
	most := 0
	for _, r := range rows {
		if r.LockedUntil.Valid && r.LockedUntil.Time.After(now) {
			wait = max(wait, r.LockedUntil.Time.Sub(now))
		}
		if now.Sub(r.WindowStart) < t.Window {
			most = max(most, r.Failures)
		}
	}
	return wait, most, nil
}

// Fail counts a failure against each key, locking those that reach the
// limit.
func (t Throttle) Fail(ctx context.Context, db bun.IDB, keys ...string) error {
	for _, k := range keys {
		_, err := db.NewRaw(`
			INSERT INTO sign_in_failures AS f (key, failures, window_start) VALUES (?, 1, now())
			ON CONFLICT (key) DO UPDATE SET
				failures     = CASE WHEN f.window_start < now() - ?::interval THEN 1 ELSE f.failures + 1 END,
				window_start = CASE WHEN f.window_start < now() - ?::interval THEN now() ELSE f.window_start END,
				locked_until = CASE WHEN f.window_start >= now() - ?::interval AND f.failures + 1 >= ? THEN now() + ?::interval ELSE f.locked_until END`,
			k, t.Window.String(), t.Window.String(), t.Window.String(), t.Limit, t.Window.String()).Exec(ctx)
		if err != nil {
			return fmt.Errorf("count sign-in failure: %w", err)
		}
	}
	return nil
}

// Clear forgets the failures of key, after a successful sign-in.
func (t Throttle) Clear(ctx context.Context, db bun.IDB, key string) error {
	if _, err := db.NewDelete().TableExpr("sign_in_failures").Where("key = ?", key).Exec(ctx); err != nil {
		return fmt.Errorf("clear sign-in failures: %w", err)
	}
	return nil
}
