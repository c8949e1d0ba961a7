package store

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/uptrace/bun"
)

// ServerKey returns the shared key of the name, creating a random one the
// first time any replica asks: every replica gets the same key. Two
// statements: an insert that meets another replica's insert in progress
// waits for it and inserts nothing, and a read in that same statement
// would not see the other's row (its snapshot is older); the read after
// it does.
func ServerKey(ctx context.Context, db bun.IDB, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("server key %s: %w", name, err)
	}
	if _, err := db.NewRaw("INSERT INTO server_keys (name, key) VALUES (?, ?) ON CONFLICT (name) DO NOTHING", name, fresh).Exec(ctx); err != nil {
		return nil, fmt.Errorf("server key %s: %w", name, err)
	}
	var key []byte
	if err := db.NewRaw("SELECT key FROM server_keys WHERE name = ?", name).Scan(ctx, &key); err != nil {
		return nil, fmt.Errorf("server key %s: %w", name, err)
	}
	return key, nil
}
