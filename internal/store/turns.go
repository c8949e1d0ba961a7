package store

import (
	"context"
	"hash/maphash"

	"github.com/uptrace/bun"
)

// turns queues, inside one process, the transactions that would otherwise
// wait in Postgres for the same row lock: each of them waits there holding
// a connection, and so a Postgres backend, and a burst on one organisation
// would open a backend for every waiter. Here they wait for their turn
// without one, and only the turn's holder waits for the lock, behind the
// other processes' holders. The row lock is still what makes them one after
// the other; a turn only keeps the queue out of Postgres.
//
// Keys share a fixed number of turns (a hash picks one), so the map never
// grows; two organisations that share a turn take it one after the other,
// which a reservation's few milliseconds make no matter.
type turns struct {
	seed  maphash.Seed
	slots [64]chan struct{}
}

func newTurns() *turns {
	t := &turns{seed: maphash.MakeSeed()}
	for i := range t.slots {
		t.slots[i] = make(chan struct{}, 1)
	}
	return t
}

// take waits for key's turn, or for ctx to end; release gives it back.
func (t *turns) take(ctx context.Context, key string) (release func(), err error) {
	slot := t.slots[maphash.String(t.seed, key)%uint64(len(t.slots))]
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// orgPlanTurns are the turns of the transactions that lock an
// organisation's plan (LockPlan) to check a quota.
var orgPlanTurns = newTurns()

// inPlanTurn runs fn in a transaction once the organisation's turn is
// taken: for a transaction that locks its plan (LockPlan) first thing.
func inPlanTurn(ctx context.Context, db bun.IDB, orgID string, fn func(context.Context, bun.Tx) error) error {
	release, err := orgPlanTurns.take(ctx, orgID)
	if err != nil {
		return err
	}
	defer release()
	return db.RunInTx(ctx, nil, fn)
}
