package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// PasswordResetPrefix starts a password reset's secret.
const PasswordResetPrefix = "cpr_"

// PasswordResetTTL is how long a reset's secret works.
const PasswordResetTTL = 30 * time.Minute

// PasswordReset is a row of password_resets: a secret, stored as its
// SHA-256, that sets a user's password once before it expires.
type PasswordReset struct {
	bun.BaseModel `bun:"table:password_resets"`

	SecretHash []byte     `bun:"secret_hash,pk"`
	UserID     string     `bun:"user_id"`
	CreatedAt  time.Time  `bun:"created_at,nullzero,default:now()"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	UsedAt     *time.Time `bun:"used_at"`
	ClientAddr string     `bun:"client_addr"`
	UserAgent  string     `bun:"user_agent"`
}

// ResetMail is the message that carries a reset's secret to its user.
type ResetMail func(user User, secret string, expires time.Time) OutboxMessage

// RequestPasswordReset makes a reset for the user of email, ends the
// user's earlier unused ones, and queues its mail, in one transaction;
// b gives the request's address and user agent. An unknown email does
// nothing and says nothing: the caller answers alike.
func RequestPasswordReset(ctx context.Context, db *bun.DB, email string, mail ResetMail, b EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		user, err := UserByEmail(ctx, tx, email)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		secret, hash, err := NewSecret(PasswordResetPrefix)
		if err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model((*PasswordReset)(nil)).Set("used_at = now()").
			Where("user_id = ? AND used_at IS NULL", user.ID).Exec(ctx); err != nil {
			return fmt.Errorf("end earlier resets: %w", err)
		}
		r := PasswordReset{SecretHash: hash, UserID: user.ID, ExpiresAt: time.Now().Add(PasswordResetTTL).UTC(),
			ClientAddr: clip(b.ClientAddr, 64), UserAgent: clip(b.UserAgent, 512)}
		if _, err := tx.NewInsert().Model(&r).Exec(ctx); err != nil {
			return fmt.Errorf("insert password reset: %w", err)
		}
		// No audit event: the caller is not authenticated, and could
		// otherwise write events into every organisation of the user.
		msg := mail(user, secret, r.ExpiresAt)
		if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
			return fmt.Errorf("queue the reset mail: %w", err)
		}
		return nil
	})
}

// ErrResetInvalid is the one answer to a reset secret that is unknown,
// used or expired: which of them is not said.
var ErrResetInvalid = &domain.Error{Code: domain.CodeUnauthenticated, Message: "this password reset link is invalid, used or expired; ask for a new one"}

// CheckPasswordReset says whether secret is a reset that can still be
// used (ErrResetInvalid if not), so an unknown secret costs no password
// hashing; ConfirmPasswordReset checks again in its transaction.
func CheckPasswordReset(ctx context.Context, db bun.IDB, secret string) error {
	ok, err := db.NewSelect().Model((*PasswordReset)(nil)).
		Where("secret_hash = ? AND used_at IS NULL AND expires_at > now()", HashSecret(secret)).Exists(ctx)
	if err != nil {
		return fmt.Errorf("load password reset: %w", err)
	}
	if !ok {
		return ErrResetInvalid
	}
	return nil
}

// ConfirmPasswordReset sets the password of the reset's user to hash,
// uses the reset up, ends every session of the user and every other reset
// of theirs, and writes user.password_reset in each of their
// organisations, in one transaction: of two confirmations at once, one
// wins.
func ConfirmPasswordReset(ctx context.Context, db *bun.DB, secret, hash string, b EventBase) (User, error) {
	var user User
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var r PasswordReset
		err := tx.NewSelect().Model(&r).Where("secret_hash = ?", HashSecret(secret)).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (r.UsedAt != nil || !time.Now().Before(r.ExpiresAt))) {
			return ErrResetInvalid
		}
		if err != nil {
			return fmt.Errorf("load password reset: %w", err)
		}
		if _, err := tx.NewUpdate().Model((*PasswordReset)(nil)).Set("used_at = now()").
			Where("user_id = ? AND used_at IS NULL", r.UserID).Exec(ctx); err != nil {
			return fmt.Errorf("use password reset: %w", err)
		}
		if _, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ?, updated_at = now()", hash).
			Where("id = ?", r.UserID).Exec(ctx); err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		if _, err := tx.NewUpdate().Model((*Session)(nil)).Set("revoked_at = now()").
			Where("user_id = ? AND revoked_at IS NULL", r.UserID).Exec(ctx); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		if user, err = UserByID(ctx, tx, r.UserID); err != nil {
			return err
		}
		return insertUserEvents(ctx, tx, user, "user.password_reset", b)
	})
	return user, err
}
