package store

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/uptrace/bun"
)

// ServerKey returns the shared key of the name, creating a random one the
// first time any replica asks: every replica gets the same key.
func ServerKey(ctx context.Context, db bun.IDB, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("server key %s: %w", name, err)
	}
	var key []byte
	err := db.NewRaw(`WITH ins AS (
			INSERT INTO server_keys (name, key) VALUES (?, ?) ON CONFLICT (name) DO NOTHING RETURNING key)
		SELECT key FROM ins UNION ALL SELECT key FROM server_keys WHERE name = ? LIMIT 1`, name, fresh, name).Scan(ctx, &key)
	if err != nil {
		return nil, fmt.Errorf("server key %s: %w", name, err)
	}
	return key, nil
}
