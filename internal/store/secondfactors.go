package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/seal"
)

// A person's second factors: a TOTP secret (sealed under the key ring by
// the caller; the store never sees it in the clear), recovery codes
// (stored hashed), passkeys; and the challenges of two-step sign-in and of
// passkey ceremonies.

// UserTOTP is a row of user_totp.
type UserTOTP struct {
	bun.BaseModel `bun:"table:user_totp"`

	UserID       string     `bun:"user_id,pk"`
	SecretSealed []byte     `bun:"secret_sealed"`
	CreatedAt    time.Time  `bun:"created_at,nullzero,default:now()"`
	ConfirmedAt  *time.Time `bun:"confirmed_at"`
	// LastStep is the last time step a code was accepted for.
	LastStep int64 `bun:"last_step"`
}

// RecoveryCode is a row of recovery_codes.
type RecoveryCode struct {
	bun.BaseModel `bun:"table:recovery_codes"`

	UserID    string     `bun:"user_id,pk"`
	CodeHash  []byte     `bun:"code_hash,pk"`
	CreatedAt time.Time  `bun:"created_at,nullzero,default:now()"`
	UsedAt    *time.Time `bun:"used_at"`
}

// WebAuthnCredential is a row of webauthn_credentials: a passkey.
type WebAuthnCredential struct {
	bun.BaseModel `bun:"table:webauthn_credentials"`

	ID           string `bun:"id,pk"`
	UserID       string `bun:"user_id"`
	CredentialID []byte `bun:"credential_id"`
	Name         string `bun:"name"`
	// Credential is go-webauthn's webauthn.Credential as JSON: the public
	// key, the signature counter, the flags and transports.
	Credential json.RawMessage `bun:"credential,type:jsonb"`
	CreatedAt  time.Time       `bun:"created_at,nullzero,default:now()"`
	LastUsedAt *time.Time      `bun:"last_used_at"`
}

// AuthChallenge is a row of auth_challenges.
type AuthChallenge struct {
	bun.BaseModel `bun:"table:auth_challenges"`

	SecretHash []byte `bun:"secret_hash,pk"`
	Purpose    string `bun:"purpose"`
	// UserID is empty for a passkey sign-in without a password.
	UserID string `bun:"user_id,nullzero"`
	// WebAuthn is the ceremony's session data (go-webauthn's SessionData).
	WebAuthn   json.RawMessage `bun:"webauthn,type:jsonb,nullzero"`
	CreatedAt  time.Time       `bun:"created_at,nullzero,default:now()"`
	ExpiresAt  time.Time       `bun:"expires_at"`
	UsedAt     *time.Time      `bun:"used_at"`
	ClientAddr string          `bun:"client_addr"`
	UserAgent  string          `bun:"user_agent"`
}

// What a challenge is for.
const (
	PurposeSignIn              = "sign_in"
	PurposePasskeySignIn       = "passkey_sign_in"
	PurposePasskeyRegistration = "passkey_registration"
)

// ChallengePrefix starts a challenge's secret; ChallengeTTL is how long it
// works.
const (
	ChallengePrefix = "cpc_"
	ChallengeTTL    = 5 * time.Minute
)

// ErrChallengeInvalid is the one answer to a challenge that is unknown,
// used, expired or of another purpose: which of them is not said.
var ErrChallengeInvalid = &domain.Error{Code: domain.CodeUnauthenticated, Message: "this sign-in challenge is invalid, used or expired; sign in again"}

// CreateChallenge stores a new challenge for purpose (userID "" for a
// passkey sign-in without a password), with a ceremony's session data
// when there is one, and returns its secret; b gives the request's
// address and user agent.
func CreateChallenge(ctx context.Context, db bun.IDB, purpose, userID string, webauthn json.RawMessage, b EventBase) (string, AuthChallenge, error) {
	secret, hash, err := NewSecret(ChallengePrefix)
	if err != nil {
		return "", AuthChallenge{}, err
	}
	ch := AuthChallenge{SecretHash: hash, Purpose: purpose, UserID: userID, WebAuthn: webauthn,
		ExpiresAt: time.Now().Add(ChallengeTTL).UTC(), ClientAddr: clip(b.ClientAddr, 100), UserAgent: clip(b.UserAgent, 512)}
	if _, err := db.NewInsert().Model(&ch).Exec(ctx); err != nil {
		return "", AuthChallenge{}, fmt.Errorf("insert challenge: %w", err)
	}
	// Each new challenge clears a few that ended over an hour ago, so the
	// table holds about the challenges of the last hour: no sweeper needed.
	if _, err := db.NewRaw(`DELETE FROM auth_challenges WHERE secret_hash IN
		(SELECT secret_hash FROM auth_challenges WHERE expires_at < now() - interval '1 hour' LIMIT 10)`).Exec(ctx); err != nil {
		return "", AuthChallenge{}, fmt.Errorf("clear ended challenges: %w", err)
	}
	return secret, ch, nil
}

// LoadChallenge returns the challenge of secret if it is of purpose and
// can still be used (ErrChallengeInvalid if not), without using it.
func LoadChallenge(ctx context.Context, db bun.IDB, secret, purpose string) (AuthChallenge, error) {
	var ch AuthChallenge
	err := db.NewSelect().Model(&ch).
		Where("secret_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > now()", HashSecret(secret), purpose).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return AuthChallenge{}, ErrChallengeInvalid
	}
	if err != nil {
		return AuthChallenge{}, fmt.Errorf("load challenge: %w", err)
	}
	return ch, nil
}

// UseChallenge uses the challenge of secret up and returns it, if it is of
// purpose and can still be used (ErrChallengeInvalid if not): of two uses
// at once, one gets it. In a transaction with what the challenge admits,
// a rollback gives it back.
func UseChallenge(ctx context.Context, db bun.IDB, secret, purpose string) (AuthChallenge, error) {
	var ch AuthChallenge
	_, err := db.NewUpdate().Model(&ch).Set("used_at = now()").
		Where("secret_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > now()", HashSecret(secret), purpose).
		Returning("*").Exec(ctx)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && ch.SecretHash == nil) {
		return AuthChallenge{}, ErrChallengeInvalid
	}
	if err != nil {
		return AuthChallenge{}, fmt.Errorf("use challenge: %w", err)
	}
	return ch, nil
}

// Factors is what second factors a user has.
type Factors struct {
	// TOTP is a confirmed TOTP secret; TOTPPending one not confirmed yet.
	TOTP        bool
	TOTPPending bool
	Passkeys    int
	// RecoveryCodes is how many unused recovery codes are left.
	RecoveryCodes int
}

// Any reports whether the user has a second factor (recovery codes alone
// are not one: they come with TOTP or a passkey).
func (f Factors) Any() bool { return f.TOTP || f.Passkeys > 0 }

// FactorsOf reads the user's second factors in one query.
func FactorsOf(ctx context.Context, db bun.IDB, userID string) (Factors, error) {
	var f Factors
	var confirmed sql.NullBool
	err := db.NewRaw(`SELECT
			(SELECT confirmed_at IS NOT NULL FROM user_totp WHERE user_id = ?),
			(SELECT count(*) FROM webauthn_credentials WHERE user_id = ?),
			(SELECT count(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL)`,
		userID, userID, userID).Scan(ctx, &confirmed, &f.Passkeys, &f.RecoveryCodes)
	if err != nil {
		return Factors{}, fmt.Errorf("second factors: %w", err)
	}
	f.TOTP = confirmed.Valid && confirmed.Bool
	f.TOTPPending = confirmed.Valid && !confirmed.Bool
	return f, nil
}

// hasFactorSQL is true when the user of the column user_id has a second
// factor: what an organisation requiring MFA asks of its members.
const hasFactorSQL = `(EXISTS (SELECT 1 FROM user_totp t WHERE t.user_id = %[1]s AND t.confirmed_at IS NOT NULL)
	OR EXISTS (SELECT 1 FROM webauthn_credentials w WHERE w.user_id = %[1]s))`

// RecoveryCodeHash is what is stored of a user's recovery code (already
// normalised): bound to the user, so equal codes of two users differ.
func RecoveryCodeHash(userID, code string) []byte { return HashSecret(userID + ":" + code) }

// replaceRecoveryCodes makes hashes the user's only recovery codes, in tx.
func replaceRecoveryCodes(ctx context.Context, tx bun.IDB, userID string, hashes [][]byte) error {
	if _, err := tx.NewDelete().Model((*RecoveryCode)(nil)).Where("user_id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("delete recovery codes: %w", err)
	}
	if len(hashes) == 0 {
		return nil
	}
	rows := make([]RecoveryCode, len(hashes))
	for i, h := range hashes {
		rows[i] = RecoveryCode{UserID: userID, CodeHash: h}
	}
	if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
		return fmt.Errorf("insert recovery codes: %w", err)
	}
	return nil
}

// ErrNoTOTP: the user has no confirmed TOTP (or, for ConfirmTOTP, no
// pending one).
var ErrNoTOTP = errors.New("no TOTP secret")

// errTOTPEnabled refuses a new enrolment over a confirmed secret.
var errTOTPEnabled = domain.Errorf(domain.CodeConflict, "TOTP is already on for this account; remove it first to enrol another authenticator")

// StartTOTP stores sealed as the user's pending TOTP secret, replacing a
// pending one; a confirmed one is refused (409).
func StartTOTP(ctx context.Context, db bun.IDB, userID string, sealed []byte) error {
	res, err := db.NewRaw(`INSERT INTO user_totp (user_id, secret_sealed) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = now(), last_step = 0
		WHERE user_totp.confirmed_at IS NULL`, userID, sealed).Exec(ctx)
	if err != nil {
		return fmt.Errorf("start TOTP: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errTOTPEnabled
	}
	return nil
}

// TOTPCheck is given the sealed secret and the last accepted step, and
// returns the step a code matched (later than lastStep) or an error.
type TOTPCheck func(sealed []byte, lastStep int64) (int64, error)

// AcceptTOTP checks a code against the user's confirmed secret, in db (a
// transaction when the acceptance admits something): the row is locked,
// so of two requests with the same code one is accepted, and the matched
// step is kept so that code is never accepted again. ErrNoTOTP: none.
func AcceptTOTP(ctx context.Context, db bun.IDB, userID string, check TOTPCheck) error {
	return acceptTOTP(ctx, db, userID, true, check)
}

func acceptTOTP(ctx context.Context, db bun.IDB, userID string, confirmed bool, check TOTPCheck) error {
	var t UserTOTP
	q := db.NewSelect().Model(&t).Where("user_id = ?", userID).For("UPDATE")
	if confirmed {
		q = q.Where("confirmed_at IS NOT NULL")
	} else {
		q = q.Where("confirmed_at IS NULL")
	}
	err := q.Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNoTOTP
	}
	if err != nil {
		return fmt.Errorf("load TOTP: %w", err)
	}
	step, err := check(t.SecretSealed, t.LastStep)
	if err != nil {
		return err
	}
	if _, err := db.NewUpdate().Model((*UserTOTP)(nil)).Set("last_step = ?, confirmed_at = coalesce(confirmed_at, now())", step).
		Where("user_id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("accept TOTP step: %w", err)
	}
	return nil
}

// errNoPendingTOTP refuses a confirmation without an enrolment.
var errNoPendingTOTP = domain.Errorf(domain.CodeConflict, "no TOTP enrolment to confirm: POST /me/totp first")

// ConfirmTOTP turns the user's pending secret on when check accepts the
// code, makes hashes the user's recovery codes, and writes
// user.mfa_enrolled, in one transaction.
func ConfirmTOTP(ctx context.Context, db *bun.DB, user User, hashes [][]byte, b EventBase, check TOTPCheck) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		err := acceptTOTP(ctx, tx, user.ID, false, check)
		if errors.Is(err, ErrNoTOTP) {
			return errNoPendingTOTP
		}
		if err != nil {
			return err
		}
		if err := replaceRecoveryCodes(ctx, tx, user.ID, hashes); err != nil {
			return err
		}
		return insertUserEvents(ctx, tx, user, "user.mfa_enrolled", b, map[string]any{"method": "totp"})
	})
}

// RemoveTOTP turns the user's TOTP off (a pending enrolment too) and
// writes user.mfa_removed; with no passkey left, the recovery codes go
// too. NOT_FOUND when there is nothing to remove.
func RemoveTOTP(ctx context.Context, db *bun.DB, user User, b EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var removed []UserTOTP
		if _, err := tx.NewDelete().Model(&removed).Where("user_id = ?", user.ID).Returning("confirmed_at").Exec(ctx); err != nil {
			return fmt.Errorf("remove TOTP: %w", err)
		}
		if len(removed) == 0 {
			return domain.Errorf(domain.CodeNotFound, "TOTP is not on for this account")
		}
		if err := dropRecoveryCodesWithoutFactor(ctx, tx, user.ID); err != nil {
			return err
		}
		if removed[0].ConfirmedAt == nil {
			return nil // an enrolment never finished: nothing was on
		}
		return insertUserEvents(ctx, tx, user, "user.mfa_removed", b, map[string]any{"method": "totp"})
	})
}

// dropRecoveryCodesWithoutFactor deletes the user's recovery codes when
// they have no second factor left: codes that recover nothing must not
// stand in for one.
func dropRecoveryCodesWithoutFactor(ctx context.Context, tx bun.IDB, userID string) error {
	f, err := FactorsOf(ctx, tx, userID)
	if err != nil {
		return err
	}
	if f.Any() {
		return nil
	}
	return replaceRecoveryCodes(ctx, tx, userID, nil)
}

// RegenerateRecoveryCodes makes hashes the user's recovery codes (the old
// set stops working) and writes user.recovery_codes_regenerated; refused
// (409) without a second factor.
func RegenerateRecoveryCodes(ctx context.Context, db *bun.DB, user User, hashes [][]byte, b EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		f, err := FactorsOf(ctx, tx, user.ID)
		if err != nil {
			return err
		}
		if !f.Any() {
			return domain.Errorf(domain.CodeConflict, "recovery codes come with a second factor: enrol TOTP or a passkey first")
		}
		if err := replaceRecoveryCodes(ctx, tx, user.ID, hashes); err != nil {
			return err
		}
		return insertUserEvents(ctx, tx, user, "user.recovery_codes_regenerated", b)
	})
}

// UseRecoveryCode uses up the user's unused recovery code of hash; false
// when there is none (wrong or used).
func UseRecoveryCode(ctx context.Context, db bun.IDB, userID string, hash []byte) (bool, error) {
	res, err := db.NewUpdate().Model((*RecoveryCode)(nil)).Set("used_at = now()").
		Where("user_id = ? AND code_hash = ? AND used_at IS NULL", userID, hash).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("use recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// TOTPSealContext binds a sealed TOTP secret to its user: moved to
// another user's row, it does not open.
func TOTPSealContext(userID string) []byte { return []byte("totp:" + userID) }

// ResealTOTP seals again, under the ring's current key, every TOTP secret
// sealed under another, as tenants' signing keys are at a worker's start:
// rotation is adding a key at the front of the ring, restarting, then
// removing the old key. It returns how many it resealed, and how many are
// sealed under a key the ring lacks (left as they are).
func ResealTOTP(ctx context.Context, db bun.IDB, ring *seal.Ring) (resealed, unreadable int, err error) {
	var rows []UserTOTP
	current := []byte("sealed:" + ring.Current() + ":")
	if err := db.NewSelect().Model(&rows).Column("user_id", "secret_sealed").
		Where("substring(secret_sealed from 1 for ?) <> ?", len(current), current).Scan(ctx); err != nil {
		return 0, 0, fmt.Errorf("find TOTP secrets to reseal: %w", err)
	}
	for _, r := range rows {
		secret, err := ring.Open(r.SecretSealed, TOTPSealContext(r.UserID))
		if errors.Is(err, seal.ErrUnknownKey) {
			unreadable++
			continue
		}
		if err != nil {
			return resealed, unreadable, fmt.Errorf("open the TOTP secret of %s: %w", r.UserID, err)
		}
		sealed, err := ring.Seal(secret, TOTPSealContext(r.UserID))
		if err != nil {
			return resealed, unreadable, err
		}
		// Only if unchanged: an enrolment since the read keeps its own.
		if _, err := db.NewUpdate().Model((*UserTOTP)(nil)).Set("secret_sealed = ?", sealed).
			Where("user_id = ? AND secret_sealed = ?", r.UserID, r.SecretSealed).Exec(ctx); err != nil {
			return resealed, unreadable, fmt.Errorf("reseal the TOTP secret of %s: %w", r.UserID, err)
		}
		resealed++
	}
	return resealed, unreadable, nil
}

// RemoveSecondFactors is an operator's act for a person who lost every
// second factor and every recovery code: it removes their TOTP, passkeys
// and recovery codes, ends every session of theirs, and writes
// user.mfa_removed (method all, the reason) with the operator as actor in
// each of their organisations, in one transaction. It returns the user;
// NOT_FOUND for an unknown email.
func RemoveSecondFactors(ctx context.Context, db *bun.DB, email, operator, reason string) (User, error) {
	var user User
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if user, err = UserByEmail(ctx, tx, email); errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.CodeNotFound, "no account has this email")
		} else if err != nil {
			return err
		}
		for _, m := range []any{(*UserTOTP)(nil), (*WebAuthnCredential)(nil), (*RecoveryCode)(nil)} {
			if _, err := tx.NewDelete().Model(m).Where("user_id = ?", user.ID).Exec(ctx); err != nil {
				return fmt.Errorf("remove second factors: %w", err)
			}
		}
		if _, err := tx.NewUpdate().Model((*Session)(nil)).Set("revoked_at = now()").
			Where("user_id = ? AND revoked_at IS NULL", user.ID).Exec(ctx); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		ms, err := MembershipsOf(ctx, tx, user.ID)
		if err != nil {
			return err
		}
		b := EventBase{ActorType: "operator", ActorID: operator}
		for _, m := range ms {
			b.OrgID = m.OrgID
			if _, err := InsertEvent(ctx, tx, b.Event("user.mfa_removed", "user", user.ID, map[string]any{"method": "all", "reason": reason})); err != nil {
				return err
			}
		}
		return nil
	})
	return user, err
}
