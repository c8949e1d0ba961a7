package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// RateWindow is a scope's budget for the current minute after a
// reservation, on the database's clock, which every API replica shares.
type RateWindow struct {
	// Granted is how many of the requested requests were granted (0: the
	// budget is spent).
	Granted int
	// Used is the window's count after the reservation; it may exceed the
	// limit, since refused reservations are counted too.
	Used int64
	// ResetIn is how long the window has left.
	ResetIn time.Duration
}

// ReserveRequests takes up to n requests from the scope's budget of limit
// requests in the current minute, in one atomic statement: the row's count
// is raised by n and what fitted under the limit before the raise is
// granted.
func ReserveRequests(ctx context.Context, db bun.IDB, scope string, limit, n int) (RateWindow, error) {
	var used int64
	var resetMicros int64
	err := db.NewRaw(`
		INSERT INTO rate_limit_windows AS w (scope, window_start, used)
		VALUES (?, date_trunc('minute', now()), ?)
		ON CONFLICT (scope, window_start) DO UPDATE SET used = w.used + EXCLUDED.used
		RETURNING used, (extract(epoch FROM w.window_start + interval '1 minute' - now()) * 1e6)::bigint`,
		scope, n).Scan(ctx, &used, &resetMicros)
	if err != nil {
		return RateWindow{}, fmt.Errorf("reserve requests for %s: %w", scope, err)
	}
	before := used - int64(n)
	granted := min(int64(n), max(0, int64(limit)-before))
	return RateWindow{Granted: int(granted), Used: used, ResetIn: time.Duration(resetMicros) * time.Microsecond}, nil
}

// ForgetRateWindows deletes the windows that ended before the previous
// minute.
func ForgetRateWindows(ctx context.Context, db bun.IDB) error {
	if _, err := db.NewRaw(`DELETE FROM rate_limit_windows WHERE window_start < date_trunc('minute', now()) - interval '1 minute'`).Exec(ctx); err != nil {
		return fmt.Errorf("forget rate windows: %w", err)
	}
	return nil
}
