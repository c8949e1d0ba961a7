package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/seal"
)

// An audit stream's secrets: an https stream's signing secret and a
// splunk_hec or datadog stream's credential, sealed under the key ring by
// the API (the store never sees them in the clear) and opened by its
// deliveries.

// What a stream's sealed values are, in their seal context.
const (
	SealedSecret     = "secret"
	SealedCredential = "credential"
)

// StreamSealContext binds a stream's sealed secret or credential to its
// stream and column: moved to another row, or to the other column, it
// does not open.
func StreamSealContext(streamID, what string) []byte {
	return []byte("audit-stream:" + what + ":" + streamID)
}

// ResealStreams seals again, under the ring's current key, every stream's
// secret and credential sealed under another (as ResealTOTP does for TOTP
// secrets, at a worker's start). It returns how many values it resealed,
// and how many are sealed under a key the ring lacks (left as they are).
func ResealStreams(ctx context.Context, db bun.IDB, ring *seal.Ring) (resealed, unreadable int, err error) {
	var rows []AuditStream
	current := []byte("sealed:" + ring.Current() + ":")
	n := len(current)
	if err := db.NewSelect().Model(&rows).Column("id", "secret_sealed", "credential_sealed").
		Where("deleted_at IS NULL AND (substring(secret_sealed from 1 for ?) <> ? OR substring(credential_sealed from 1 for ?) <> ?)", n, current, n, current).
		Scan(ctx); err != nil {
		return 0, 0, fmt.Errorf("find audit stream secrets to reseal: %w", err)
	}
	for _, r := range rows {
		for _, v := range []struct {
			column, what string
			sealed       []byte
		}{{"secret_sealed", SealedSecret, r.SecretSealed}, {"credential_sealed", SealedCredential, r.CredentialSealed}} {
			if v.sealed == nil || seal.KeyID(v.sealed) == ring.Current() {
				continue
			}
			plain, err := ring.Open(v.sealed, StreamSealContext(r.ID, v.what))
			if errors.Is(err, seal.ErrUnknownKey) {
				unreadable++
				continue
			}
			if err != nil {
				return resealed, unreadable, fmt.Errorf("open the %s of audit stream %s: %w", v.what, r.ID, err)
			}
			sealed, err := ring.Seal(plain, StreamSealContext(r.ID, v.what))
			if err != nil {
				return resealed, unreadable, err
			}
			// Only if unchanged: a change since the read keeps its own.
			if _, err := db.NewRaw("UPDATE audit_streams SET "+v.column+" = ? WHERE id = ? AND "+v.column+" = ?", sealed, r.ID, v.sealed).
				Exec(ctx); err != nil {
				return resealed, unreadable, fmt.Errorf("reseal the %s of audit stream %s: %w", v.what, r.ID, err)
			}
			resealed++
		}
	}
	return resealed, unreadable, nil
}
