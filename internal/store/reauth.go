package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Reauthenticate notes that the person of the session of tokenHash proved
// again who they are, by method (password, totp, recovery_code, passkey):
// in one transaction it runs admit (nil: nothing), which checks what the
// proof rests on and whose error rolls everything back, sets the session's
// authenticated_at to now and writes user.reauthenticated in each of the
// user's organisations. It returns the new authenticated_at; a session
// that ended meanwhile is ErrNoSession.
func Reauthenticate(ctx context.Context, db *bun.DB, user User, tokenHash []byte, method string, b EventBase, admit func(ctx context.Context, tx bun.Tx) error) (time.Time, error) {
	var at time.Time
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if admit != nil {
			if err := admit(ctx, tx); err != nil {
				return err
			}
		}
		var id string
		err := tx.NewRaw(`UPDATE sessions SET authenticated_at = now()
			WHERE token_hash = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > now()
			RETURNING id, authenticated_at`, tokenHash, user.ID).Scan(ctx, &id, &at)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoSession
		}
		if err != nil {
			return fmt.Errorf("reauthenticate session: %w", err)
		}
		return insertUserEvents(ctx, tx, user, "user.reauthenticated", b, map[string]any{"method": method, "session_id": id})
	})
	return at, err
}
