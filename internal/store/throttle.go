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
	// KnownFor is how long a pair stays known after a right password (0:
	// never known). A known pair is spared the Email rule's delays and the
	// Address rule, so neither a flood of guesses from elsewhere nor other
	// failures behind the same address stop a user where they signed in
	// before; the Pair rule and the Email rule's Limit still apply.
	KnownFor time.Duration
}

// DefaultSignInPolicy throttles without handing anyone a button that locks
// another person out (OWASP ASVS 4.0 V2.2.1):
//
//   - One email from one client address: 10 failures in 15 minutes, then
//     refused until the 15 minutes are over. Only that client is stopped;
//     the account's owner elsewhere is not.
//   - One email from anywhere: 30 failures an hour freely, then each attempt
//     waits 1 s after the one before, doubled each time, at most 60 s: a
//     short wait, never a lock. That is at most 94 checks an hour from
//     addresses where the user never signed in, under ASVS's 100, and the
//     hard limit of 100 an hour holds for every address.
//   - One client address: 300 failures in 15 minutes for any emails (a
//     shared NAT's users mistype, but not that often), then refused until
//     the 15 minutes are over; successes do not count, and users who signed
//     in at the address in the last 30 days are spared.
var DefaultSignInPolicy = SignInPolicy{
	Pair:     ThrottleRule{Window: 15 * time.Minute, Limit: 10},
	Email:    ThrottleRule{Window: time.Hour, Limit: 100, Free: 30, Delay: time.Second, MaxDelay: time.Minute},
	Address:  ThrottleRule{Window: 15 * time.Minute, Limit: 300},
	KnownFor: 30 * 24 * time.Hour,
}

// SignInSlot is an attempt taken before a password is checked. A wrong
// password leaves it taken; a right one calls Succeeded; an attempt that
// checked no password (it failed before) calls Release.
type SignInSlot struct {
	taken []takenKey
	pair  string // the key of the email and address pair
	known time.Duration
}

type takenKey struct {
	key         string
	windowStart time.Time
	free        int // the rule's Free
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
		// try takes key under rule; a refusal ends the transaction, so
		// nothing taken before it stays taken.
		try := func(key string, rule ThrottleRule, known bool) (bool, error) {
			if rule.Window == 0 {
				return false, nil
			}
			t, w, k, err := take(ctx, tx, key, rule, known)
			if err != nil || w > 0 {
				wait = w
				return false, cmp.Or(err, errRefused)
			}
			slot.taken = append(slot.taken, t)
			return k, nil
		}
		slot.pair = "pair:" + addr + " " + email
		known, err := try(slot.pair, p.Pair, false)
		if err != nil {
			return err
		}
		if _, err := try("email:"+email, p.Email, known); err != nil {
			return err
		}
		if known {
			return nil
		}
		_, err = try("addr:"+addr, p.Address, false)
		return err
	})
	if errors.Is(err, errRefused) {
		return SignInSlot{}, wait, nil
	}
	if err != nil {
		return SignInSlot{}, 0, err
	}
	return slot, 0, nil
}

// take takes one attempt of key under rule, or says how long to wait. An
// attempt of a known pair counts towards the Limit, but neither waits for
// a delay nor makes others wait. It also says whether the key is a pair
// that is known.
func take(ctx context.Context, tx bun.Tx, key string, r ThrottleRule, known bool) (takenKey, time.Duration, bool, error) {
	var row struct {
		WindowStart time.Time `bun:"window_start"`
		Known       bool      `bun:"known"`
	}
	// ?0 key, ?1 window, ?2 limit, ?3 free, ?4 delay, ?5 max delay, ?6
	// known; n is the attempt's number in its window.
	const n = `(CASE WHEN a.window_start <= now() - ?1 * interval '1 second' THEN 1 ELSE a.attempts + 1 END)`
	err := tx.NewRaw(`
		INSERT INTO sign_in_attempts AS a (key, attempts, window_start, next_at)
		VALUES (?0, 1, now(), CASE WHEN ?3 > 0 AND 1 >= ?3 THEN now() + ?4 * interval '1 second' END)
		ON CONFLICT (key) DO UPDATE SET
			attempts     = `+n+`,
			window_start = CASE WHEN a.window_start <= now() - ?1 * interval '1 second' THEN now() ELSE a.window_start END,
			next_at      = CASE WHEN ?6 THEN a.next_at
			                    WHEN ?3 > 0 AND `+n+` >= ?3
			                    THEN now() + least(?4 * power(2, least(`+n+` - ?3, 30)), ?5) * interval '1 second' END
		WHERE a.window_start <= now() - ?1 * interval '1 second'
		   OR ((?2 = 0 OR a.attempts < ?2) AND (?6 OR a.next_at IS NULL OR a.next_at <= now()))
		RETURNING window_start, coalesce(known_until > now(), false) AS known`,
		key, r.Window.Seconds(), r.Limit, r.Free, r.Delay.Seconds(), r.MaxDelay.Seconds(), known).Scan(ctx, &row)
	if err == nil {
		return takenKey{key: key, windowStart: row.WindowStart, free: r.Free}, 0, row.Known, nil
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

// Succeeded gives the attempt back after a right password, to every key
// (in the window it was taken in), so successes never count; the failures
// before it still do until their window ends, so a right password among
// guesses lets no more guesses through. The pair is known for KnownFor.
func (s SignInSlot) Succeeded(ctx context.Context, db bun.IDB) error {
	for _, t := range s.taken {
		if err := giveBack(ctx, db, t); err != nil {
			return fmt.Errorf("give back a sign-in attempt: %w", err)
		}
	}
	if s.known > 0 && len(s.taken) > 0 && s.taken[0].key == s.pair {
		if _, err := db.NewRaw(`UPDATE sign_in_attempts SET known_until = now() + ? * interval '1 second' WHERE key = ?`,
			s.known.Seconds(), s.pair).Exec(ctx); err != nil {
			return fmt.Errorf("mark a sign-in pair known: %w", err)
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

// giveBack uncounts an attempt, and the delay it started if the key is
// back under its free attempts.
func giveBack(ctx context.Context, db bun.IDB, t takenKey) error {
	_, err := db.NewRaw(`UPDATE sign_in_attempts SET attempts = greatest(attempts - 1, 0),
			next_at = CASE WHEN attempts - 1 < ? THEN NULL ELSE next_at END
		WHERE key = ? AND window_start = ?`,
		t.free, t.key, t.windowStart).Exec(ctx)
	return err
}

// signInAttemptsKept is how long a key is kept after its window began:
// longer than any rule's window.
const signInAttemptsKept = 24 * time.Hour

// ForgetSignInAttempts deletes the keys whose window is long over and that
// neither delay an attempt nor are a known pair.
func ForgetSignInAttempts(ctx context.Context, db bun.IDB) error {
	if _, err := db.NewRaw(`DELETE FROM sign_in_attempts WHERE window_start < now() - ? * interval '1 second'
		AND coalesce(next_at, '-infinity') < now() AND coalesce(known_until, '-infinity') < now()`,
		signInAttemptsKept.Seconds()).Exec(ctx); err != nil {
		return fmt.Errorf("forget sign-in attempts: %w", err)
	}
	return nil
}
