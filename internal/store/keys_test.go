package store_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Replicas asking for a key none has made yet, at once, all get the one key
// that was stored: none gets an error or a key of its own.
func TestReplicasAskingForANewServerKeyAtOnceAllGetTheOneStored(t *testing.T) {
	ctx := context.Background()
	const callers = 16
	for round := range 20 {
		name := fmt.Sprintf("test-%s-%d", domain.NewID("k"), round)
		keys := make([][]byte, callers)
		errs := make([]error, callers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				<-start
				keys[i], errs[i] = store.ServerKey(ctx, testDB, name)
			})
		}
		close(start)
		wg.Wait()
		var stored []byte
		if err := testDB.NewRaw("SELECT key FROM server_keys WHERE name = ?", name).Scan(ctx, &stored); err != nil {
			t.Fatal(err)
		}
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("round %d, caller %d: %v", round, i, errs[i])
			}
			if len(stored) != 32 || !bytes.Equal(keys[i], stored) {
				t.Fatalf("round %d, caller %d got a key that is not the one stored", round, i)
			}
		}
	}
}
