package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestATurnIsOneHolderAtATimeAndAWaiterGivesUpWithItsContext: a second
// taker of a key's turn waits until the first releases it, and one whose
// context ends first is told so and never holds it.
func TestATurnIsOneHolderAtATimeAndAWaiterGivesUpWithItsContext(t *testing.T) {
	tr := newTurns()
	release, err := tr.take(context.Background(), "org_a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := tr.take(ctx, "org_a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second taker while the turn is held: %v, want the context's end", err)
	}
	got := make(chan struct{})
	go func() {
		r, err := tr.take(context.Background(), "org_a")
		if err == nil {
			r()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second taker got the turn before the first released it")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the turn was released and the waiter did not get it")
	}
}
