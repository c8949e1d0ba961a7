// Package streamwake wakes audit streams' workflows when their
// organisation's audit chain moves, so an idle stream costs nothing but
// its cursor (and one long timer): one query a second for the whole
// installation, per worker, instead of a poll per stream.
package streamwake

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/store"
)

// Defaults of a Notifier.
const (
	// DefaultEvery is how often it looks.
	DefaultEvery = time.Second
	// DefaultWithin is how far back each look reaches: a head's time is
	// when it moved, before its transaction committed, so a look reaches
	// back past the longest such transaction it expects. A wake missed
	// beyond it is made up by the stream's long timer.
	DefaultWithin = 15 * time.Second
)

// Notifier wakes the active streams behind a chain that moved. Each look
// lists them with the chain's length; a stream woken at a length is not
// woken again until the chain grows past it, so a stream that delivers
// for a while is woken once. Replicas each run one: a duplicate wake
// coalesces in the workflow.
type Notifier struct {
	DB *bun.DB
	// Wake signals a stream's workflow, starting it if it is not running
	// (workflows.Client.WakeStream).
	Wake  func(ctx context.Context, streamID, orgID string) error
	Log   zerolog.Logger
	Every time.Duration
	// Within is how far back a look reaches.
	Within time.Duration

	// woken is the chain length each stream of the last look was woken at.
	woken map[string]int64
}

// Run looks every Every until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.every())
	defer t.Stop()
	for {
		if _, err := n.Look(ctx); err != nil && ctx.Err() == nil {
			n.Log.Warn().Err(err).Msg("audit streams not woken; the next look tries again")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) every() time.Duration {
	if n.Every > 0 {
		return n.Every
	}
	return DefaultEvery
}

// Look wakes the streams behind a chain that moved lately and were not
// woken at its length yet, and returns how many it woke.
func (n *Notifier) Look(ctx context.Context) (int, error) {
	within := n.Within
	if within <= 0 {
		within = DefaultWithin
	}
	behind, err := store.WakeableStreams(ctx, n.DB, within)
	if err != nil {
		return 0, err
	}
	seen := make(map[string]int64, len(behind))
	woke := 0
	var firstErr error
	for _, s := range behind {
		if at, ok := n.woken[s.ID]; ok && at >= s.Length {
			seen[s.ID] = at
			continue
		}
		if err := n.Wake(ctx, s.ID, s.OrgID); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue // the next look wakes it
		}
		seen[s.ID] = s.Length
		woke++
	}
	// Only the streams of this look: one caught up, or whose chain did not
	// move lately, is forgotten.
	n.woken = seen
	return woke, firstErr
}

// WakeAll wakes every stream that is active or failing, starting the
// workflow of any that has none (a start the API could not make, a
// workflow an operator terminated): what a worker does once at start. It
// returns how many it woke.
func WakeAll(ctx context.Context, db *bun.DB, wake func(ctx context.Context, streamID, orgID string) error) (int, error) {
	streams, err := store.DeliveringStreams(ctx, db)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range streams {
		if err := wake(ctx, s.ID, s.OrgID); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
