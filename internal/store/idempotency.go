package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// IdempotencyRecord is a row of idempotency_records: the stored answer to a
// mutating request, by (scope, key).
type IdempotencyRecord struct {
	bun.BaseModel `bun:"table:idempotency_records"`

	Scope       string    `bun:"scope,pk"`
	Key         string    `bun:"key,pk"`
	Fingerprint []byte    `bun:"fingerprint"`
	State       string    `bun:"state"` // in_progress, done
	Status      int       `bun:"status"`
	Response    []byte    `bun:"response"`
	CreatedAt   time.Time `bun:"created_at,nullzero,default:now()"`
	ExpiresAt   time.Time `bun:"expires_at"`
}

// ClaimIdempotencyKey claims (scope, key) for a request. It returns
// claimed=true when this request is the first (it must then Complete or
// Release the claim), or the existing record otherwise. An expired record
// is replaced.
func ClaimIdempotencyKey(ctx context.Context, db bun.IDB, scope, key string, fingerprint []byte, ttl time.Duration) (claimed bool, existing IdempotencyRecord, err error) {
	if _, err := db.NewDelete().Model((*IdempotencyRecord)(nil)).Where("scope = ? AND key = ? AND expires_at < now()", scope, key).Exec(ctx); err != nil {
		return false, existing, fmt.Errorf("expire idempotency key: %w", err)
	}
	rec := IdempotencyRecord{Scope: scope, Key: key, Fingerprint: fingerprint, State: "in_progress", ExpiresAt: time.Now().Add(ttl)}
	res, err := db.NewInsert().Model(&rec).On("CONFLICT (scope, key) DO NOTHING").Exec(ctx)
	if err != nil {
		return false, existing, fmt.Errorf("claim idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, existing, nil
	}
	err = db.NewSelect().Model(&existing).Where("scope = ? AND key = ?", scope, key).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) { // released meanwhile: try again
		return ClaimIdempotencyKey(ctx, db, scope, key, fingerprint, ttl)
	}
	return false, existing, err
}

// CompleteIdempotencyKey stores the answer of a claimed request.
func CompleteIdempotencyKey(ctx context.Context, db bun.IDB, scope, key string, status int, response []byte) error {
	_, err := db.NewUpdate().Model((*IdempotencyRecord)(nil)).
		Set("state = 'done', status = ?, response = ?", status, response).
		Where("scope = ? AND key = ?", scope, key).Exec(ctx)
	return err
}

// ReleaseIdempotencyKey forgets a claim whose request failed on the
// server's side, so a retry runs it again.
func ReleaseIdempotencyKey(ctx context.Context, db bun.IDB, scope, key string) error {
	_, err := db.NewDelete().Model((*IdempotencyRecord)(nil)).Where("scope = ? AND key = ? AND state = 'in_progress'", scope, key).Exec(ctx)
	return err
}
