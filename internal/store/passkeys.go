package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// A person's passkeys: registering one uses its ceremony's challenge up in
// the transaction that stores it; removing the last second factor takes
// the recovery codes with it; a sign-in notes the passkey's new signature
// counter.

// ErrPasskeyNotFound is a passkey that is not the person's, or none.
var ErrPasskeyNotFound = &domain.Error{Code: domain.CodeNotFound, Message: "no such passkey"}

// PasskeysOf lists the user's passkeys, oldest first.
func PasskeysOf(ctx context.Context, db bun.IDB, userID string) ([]WebAuthnCredential, error) {
	var out []WebAuthnCredential
	if err := db.NewSelect().Model(&out).Where("user_id = ?", userID).OrderExpr("created_at, id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

// PasskeyByCredentialID is the passkey of an authenticator's credential
// id, of any user (ErrPasskeyNotFound if none).
func PasskeyByCredentialID(ctx context.Context, db bun.IDB, credentialID []byte) (WebAuthnCredential, error) {
	var pk WebAuthnCredential
	err := db.NewSelect().Model(&pk).Where("credential_id = ?", credentialID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return WebAuthnCredential{}, ErrPasskeyNotFound
	}
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("load passkey: %w", err)
	}
	return pk, nil
}

// ErrPasskeyRegistered is an authenticator's credential that is already
// someone's passkey.
var ErrPasskeyRegistered = &domain.Error{Code: domain.CodeConflict, Message: "this passkey is already registered"}

// RegisterPasskey stores pk (its ID is made here) as the user's passkey
// once the registration challenge of secret is used up, in one
// transaction, and writes user.passkey_registered in each of the user's
// organisations. The challenge must be the user's and a registration's
// (ErrChallengeInvalid if not).
func RegisterPasskey(ctx context.Context, db *bun.DB, user User, secret string, pk WebAuthnCredential, b EventBase) (WebAuthnCredential, error) {
	pk.ID, pk.UserID = domain.NewID(domain.PrefixPasskey), user.ID
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ch, err := UseChallenge(ctx, tx, secret, PurposePasskeyRegistration)
		if err != nil {
			return err
		}
		if ch.UserID != user.ID {
			return ErrChallengeInvalid
		}
		if _, err := tx.NewInsert().Model(&pk).Returning("*").Exec(ctx); IsUniqueViolation(err, "webauthn_credentials_credential_id_key") {
			return ErrPasskeyRegistered
		} else if err != nil {
			return fmt.Errorf("insert passkey: %w", err)
		}
		return insertUserEvents(ctx, tx, user, "user.passkey_registered", b, map[string]any{"passkey_id": pk.ID, "name": pk.Name})
	})
	return pk, err
}

// RemovePasskey deletes the user's passkey id (ErrPasskeyNotFound when it
// is not theirs) and writes user.passkey_removed, in one transaction;
// when it was the user's last second factor, their recovery codes go
// too (they are a way back to a second factor there no longer is).
func RemovePasskey(ctx context.Context, db *bun.DB, user User, id string, b EventBase) (WebAuthnCredential, error) {
	var pk WebAuthnCredential
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model(&pk).Where("id = ? AND user_id = ?", id, user.ID).Returning("*").Exec(ctx)
		if err != nil {
			return fmt.Errorf("delete passkey: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrPasskeyNotFound
		}
		f, err := FactorsOf(ctx, tx, user.ID)
		if err != nil {
			return err
		}
		codesDeleted := false
		if !f.Any() && f.RecoveryCodes > 0 {
			if err := replaceRecoveryCodes(ctx, tx, user.ID, nil); err != nil {
				return err
			}
			codesDeleted = true
		}
		return insertUserEvents(ctx, tx, user, "user.passkey_removed", b,
			map[string]any{"passkey_id": pk.ID, "name": pk.Name, "recovery_codes_deleted": codesDeleted})
	})
	return pk, err
}

// LockPasskey reads the passkey id in tx and holds its row until tx ends:
// of two sign-ins with one passkey at once, the second sees the counter
// the first wrote.
func LockPasskey(ctx context.Context, tx bun.IDB, id string) (WebAuthnCredential, error) {
	var pk WebAuthnCredential
	err := tx.NewSelect().Model(&pk).Where("id = ?", id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return WebAuthnCredential{}, ErrPasskeyNotFound
	}
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("lock passkey: %w", err)
	}
	return pk, nil
}

// PasskeyUsed stores the passkey's credential as a sign-in left it (its
// signature counter, its flags) and when it was used, in tx.
func PasskeyUsed(ctx context.Context, tx bun.IDB, id string, credential json.RawMessage) error {
	if _, err := tx.NewUpdate().Model((*WebAuthnCredential)(nil)).
		Set("credential = ?", string(credential)).Set("last_used_at = now()").
		Where("id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("note passkey use: %w", err)
	}
	return nil
}

// AttachCeremony keeps a passkey ceremony's state on the challenge of
// secret, if it is of purpose and can still be used (ErrChallengeInvalid
// if not); a later ceremony on the same challenge replaces it.
func AttachCeremony(ctx context.Context, db bun.IDB, secret, purpose string, ceremony json.RawMessage) (AuthChallenge, error) {
	var ch AuthChallenge
	_, err := db.NewUpdate().Model(&ch).Set("webauthn = ?", string(ceremony)).
		Where("secret_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > now()", HashSecret(secret), purpose).
		Returning("*").Exec(ctx)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && ch.SecretHash == nil) {
		return AuthChallenge{}, ErrChallengeInvalid
	}
	if err != nil {
		return AuthChallenge{}, fmt.Errorf("attach a ceremony to a challenge: %w", err)
	}
	return ch, nil
}

// LoadSignInCeremony returns the challenge of secret if it is a sign-in's
// (the second step after a password, or a passkey sign-in without one)
// that has a passkey ceremony and can still be used (ErrChallengeInvalid
// if not), without using it.
func LoadSignInCeremony(ctx context.Context, db bun.IDB, secret string) (AuthChallenge, error) {
	var ch AuthChallenge
	err := db.NewSelect().Model(&ch).
		Where("secret_hash = ? AND purpose IN (?, ?) AND webauthn IS NOT NULL AND used_at IS NULL AND expires_at > now()",
			HashSecret(secret), PurposeSignIn, PurposePasskeySignIn).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthChallenge{}, ErrChallengeInvalid
	}
	if err != nil {
		return AuthChallenge{}, fmt.Errorf("load challenge: %w", err)
	}
	return ch, nil
}
