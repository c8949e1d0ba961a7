package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// ThrottleRule limits the attempts of one key within a fixed window that
// begins at the key's first attempt. A zero Window means no rule.
type ThrottleRule struct {
	Window time.Duration
	// Limit is the attempts a window allows (0: no limit); past it, the key
	// is refused until the window ends.
	Limit int
	// From the Free-th attempt of a window on (0: never), each next attempt
	// waits Delay, doubled at each attempt, at most MaxDelay.
	Free     int
	Delay    time.Duration
	MaxDelay time.Duration
}

// SignInPolicy is the sign-in throttle: a rule per email from one client
// address (Pair), per email from anywhere (Email) and per client address
// for any email (Address). Password checks count, once checked and wrong;
// a right password gives its attempt back.
type SignInPolicy struct {
	Pair    ThrottleRule
	Email   ThrottleRule
	Address ThrottleRule
	// KnownFor exempts a pair that signed in from the Email and Address
	// rules for that long (0: never), so a flood elsewhere does not stop a
	// user where they signed in before; the Pair rule still applies.
	KnownFor time.Duration
}

// DefaultSignInPolicy: within 15 minutes, 10 failures for one email or 50
// from one client address refuse it until the 15 minutes are over.
var DefaultSignInPolicy = SignInPolicy{
	Email:   ThrottleRule{Window: 15 * time.Minute, Limit: 10},
	Address: ThrottleRule{Window: 15 * time.Minute, Limit: 50},
}

// SignInSlot is an attempt taken before a password is checked. A wrong
// password leaves it taken; a right one calls Succeeded; an attempt that
// checked no password (it failed before) calls Release.
type SignInSlot struct {
	taken []takenKey
	pair  string // the pair's key, when the policy has a Pair rule
	known time.Duration
}

type takenKey struct {
	key         string
	windowStart time.Time
}

// errRefused rolls back the reservation of the keys taken before a refusal.
var errRefused = errors.New("sign-in attempt refused")

// Reserve takes an attempt of email from addr under every rule, in one
// transaction whose INSERT … ON CONFLICT statements take the keys' row
// locks: concurrent attempts serialise key by key (always in the order
// pair, email, address, so they cannot deadlock), and an attempt past a
// limit or before a delay is over takes nothing. A refused attempt gets how
// long to wait.
func (p SignInPolicy) Reserve(ctx context.Context, db *bun.DB, email, addr string) (SignInSlot, time.Duration, error) {
	slot := SignInSlot{known: p.KnownFor}
	var wait time.Duration
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		slot.taken = slot.taken[:0]
		known := false
		if p.Pair.Window > 0 {
			slot.pair = "pair:" + addr + " " + email
			t, w, k, err := take(ctx, tx, slot.pair, p.Pair)
			if err != nil || w > 0 {
				wait = w
				return cmp.Or(err, errRefused)
			}
			slot.taken = append(slot.taken, t)
			known = k
		}
		if known {
			return nil
		}
		for _, kr := range []struct {
			key  string
			rule ThrottleRule
		}{{"email:" + email, p.Email}, {"addr:" + addr, p.Address}} {
			if kr.rule.Window == 0 {
				continue
			}
			t, w, _, err := take(ctx, tx, kr.key, kr.rule)
			if err != nil || w > 0 {
				wait = w
				return cmp.Or(err, errRefused)
			}
			slot.taken = append(slot.taken, t)
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		return SignInSlot{}, wait, nil
	}
	if err != nil {
		return SignInSlot{}, 0, err
	}
	return slot, 0, nil
}

// take takes one attempt of key under rule, or says how long to wait. It
// also says whether the key is a pair that signed in recently.
func take(ctx context.Context, tx bun.Tx, key string, r ThrottleRule) (takenKey, time.Duration, bool, error) {
	var row struct {
		WindowStart time.Time `bun:"window_start"`
		Known       bool      `bun:"known"`
	}
	// ?0 key, ?1 window, ?2 limit, ?3 free, ?4 delay, ?5 max delay; n is
	// the attempt's number in its window.
	const n = `(CASE WHEN a.window_start <= now() - ?1 * interval '1 second' THEN 1 ELSE a.attempts + 1 END)`
	err := tx.NewRaw(`
		INSERT INTO sign_in_attempts AS a (key, attempts, window_start, next_at)
		VALUES (?0, 1, now(), CASE WHEN ?3 > 0 AND 1 >= ?3 THEN now() + ?4 * interval '1 second' END)
		ON CONFLICT (key) DO UPDATE SET
			attempts     = `+n+`,
			window_start = CASE WHEN a.window_start <= now() - ?1 * interval '1 second' THEN now() ELSE a.window_start END,
			next_at      = CASE WHEN ?3 > 0 AND `+n+` >= ?3
			                    THEN now() + least(?4 * power(2, least(`+n+` - ?3, 30)), ?5) * interval '1 second' END
		WHERE a.window_start <= now() - ?1 * interval '1 second'
		   OR ((?2 = 0 OR a.attempts < ?2) AND (a.next_at IS NULL OR a.next_at <= now()))
		RETURNING window_start, coalesce(known_until > now(), false) AS known`,
		key, r.Window.Seconds(), r.Limit, r.Free, r.Delay.Seconds(), r.MaxDelay.Seconds()).Scan(ctx, &row)
	if err == nil {
		return takenKey{key: key, windowStart: row.WindowStart}, 0, row.Known, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return takenKey{}, 0, false, fmt.Errorf("take a sign-in attempt: %w", err)
	}
	// Refused: the row is locked by this transaction, so it is as the
	// refusal saw it.
	var wait float64
	if err := tx.NewRaw(`
		SELECT greatest(
			CASE WHEN ?1 > 0 AND attempts >= ?1 THEN extract(epoch FROM window_start + ?0 * interval '1 second' - now()) ELSE 0 END,
			coalesce(extract(epoch FROM next_at - now()), 0))
		FROM sign_in_attempts WHERE key = ?2`, r.Window.Seconds(), r.Limit, key).Scan(ctx, &wait); err != nil {
		return takenKey{}, 0, false, fmt.Errorf("read a refused sign-in attempt: %w", err)
	}
	return takenKey{}, max(time.Duration(wait*float64(time.Second)), time.Millisecond), false, nil
}

// Succeeded gives the attempt back after a right password: the pair's
// failures are forgotten and it is known for KnownFor; the email and the
// address get back the attempt they counted (if their window is the same),
// so successes never count against them.
func (s SignInSlot) Succeeded(ctx context.Context, db bun.IDB) error {
	for _, t := range s.taken {
		var err error
		if t.key == s.pair {
			_, err = db.NewRaw(`UPDATE sign_in_attempts SET attempts = 0, next_at = NULL,
				known_until = CASE WHEN ? > 0 THEN now() + ? * interval '1 second' ELSE known_until END WHERE key = ?`,
				s.known.Seconds(), s.known.Seconds(), t.key).Exec(ctx)
		} else {
			err = giveBack(ctx, db, t)
		}
		if err != nil {
			return fmt.Errorf("give back a sign-in attempt: %w", err)
		}
	}
	return nil
}

// Release gives the attempt back when no password was checked.
func (s SignInSlot) Release(ctx context.Context, db bun.IDB) error {
	for _, t := range s.taken {
		if err := giveBack(ctx, db, t); err != nil {
			return fmt.Errorf("release a sign-in attempt: %w", err)
		}
	}
	return nil
}

func giveBack(ctx context.Context, db bun.IDB, t takenKey) error {
	_, err := db.NewRaw(`UPDATE sign_in_attempts SET attempts = greatest(attempts - 1, 0) WHERE key = ? AND window_start = ?`,
		t.key, t.windowStart).Exec(ctx)
	return err
}
