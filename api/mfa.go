package api

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/internal/totp"
)

// A person's TOTP and recovery codes, and the second step of sign-in.

// totpEnrolment is a pending TOTP secret: what an authenticator app reads.
type totpEnrolment struct {
	Secret     string `json:"secret,omitempty" doc:"base32; absent in an answer replayed for a retried Idempotency-Key (enrol again)"`
	OtpauthURI string `json:"otpauth_uri,omitempty" doc:"otpauth://totp/… for a QR code; absent in a replayed answer"`
	Pending    bool   `json:"pending" doc:"true until POST /me/totp/confirm gets a right code"`
}

type totpConfirmRequest struct {
	Code string `json:"code" jsonschema:"minLength=1,maxLength=16" doc:"the authenticator app's current 6-digit code"`
}

func (r *totpConfirmRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

type recoveryCodesResponse struct {
	RecoveryCodes []string `json:"recovery_codes" doc:"ten codes, each good once; shown only in this answer (a replayed answer has none): store them where you would store a password"`
}

// enrolTOTP makes a new pending TOTP secret for the caller (replacing a
// pending one; recent authentication); a confirmed one must be removed
// first.
func (s *Server) enrolTOTP(c *fiber.Ctx, who *caller) error {
	// A new way in: a stolen session must not add its own (and hold the
	// person out with a second factor only the thief has).
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	secret, uri, err := totp.New(who.Email)
	if err != nil {
		return err
	}
	sealed, err := s.keys.Seal([]byte(secret), store.TOTPSealContext(who.UserID))
	if err != nil {
		return err
	}
	if err := store.StartTOTP(c.UserContext(), s.db, who.UserID, sealed); err != nil {
		return err
	}
	if err := keepForRetries(c, totpEnrolment{Pending: true}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, totpEnrolment{Secret: secret, OtpauthURI: uri, Pending: true})
}

// confirmTOTP turns the caller's pending secret on once a right code is
// given, and answers a new set of recovery codes.
func (s *Server) confirmTOTP(c *fiber.Ctx, who *caller) error {
	var req totpConfirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	codes, hashes := newRecoveryCodes(user.ID)
	err = store.ConfirmTOTP(ctx, s.db, user, hashes, s.eventBase(c, nil), func(sealed []byte, lastStep int64) (int64, error) {
		return s.matchTOTP(user.ID, sealed, req.Code, lastStep)
	})
	if errors.Is(err, errWrongCode) {
		// Not 401: the caller's session is fine, the code is not.
		return &domain.Error{Code: domain.CodeBadRequest, Message: "the code is wrong or expired: type the code the app shows now",
			FieldErrors: []domain.FieldError{{Field: "code", Message: "wrong or expired"}}}
	}
	if err != nil {
		return err
	}
	if err := keepForRetries(c, recoveryCodesResponse{RecoveryCodes: []string{}}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, recoveryCodesResponse{RecoveryCodes: codes})
}

// removeTOTP turns the caller's TOTP off (recent authentication).
func (s *Server) removeTOTP(c *fiber.Ctx, who *caller) error {
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	if err := store.RemoveTOTP(ctx, s.db, user, s.eventBase(c, nil)); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, factorRemovedResponse{Removed: true})
}

type factorRemovedResponse struct {
	Removed bool `json:"removed"`
}

// regenerateRecoveryCodes replaces the caller's recovery codes with a new
// set (recent authentication): the old set stops working.
func (s *Server) regenerateRecoveryCodes(c *fiber.Ctx, who *caller) error {
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	codes, hashes := newRecoveryCodes(user.ID)
	if err := store.RegenerateRecoveryCodes(ctx, s.db, user, hashes, s.eventBase(c, nil)); err != nil {
		return err
	}
	if err := keepForRetries(c, recoveryCodesResponse{RecoveryCodes: []string{}}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, recoveryCodesResponse{RecoveryCodes: codes})
}

func newRecoveryCodes(userID string) (codes []string, hashes [][]byte) {
	codes = make([]string, totp.RecoveryCodes)
	hashes = make([][]byte, totp.RecoveryCodes)
	for i := range codes {
		codes[i] = totp.NewRecoveryCode()
		hashes[i] = store.RecoveryCodeHash(userID, totp.NormalizeRecoveryCode(codes[i]))
	}
	return codes, hashes
}

// errWrongCode is the answer to a TOTP or recovery code that is wrong,
// used, or of a time step already used.
var errWrongCode = domain.Errorf(domain.CodeUnauthenticated, "invalid or already used code")

// matchTOTP opens the sealed secret and returns the step code matches if
// it is later than lastStep; errWrongCode otherwise.
func (s *Server) matchTOTP(userID string, sealed []byte, code string, lastStep int64) (int64, error) {
	secret, err := s.keys.Open(sealed, store.TOTPSealContext(userID))
	if err != nil {
		return 0, err
	}
	step, ok := totp.Match(string(secret), code, time.Now())
	if !ok || step <= lastStep {
		return 0, errWrongCode
	}
	return step, nil
}

// checkCode accepts code as the user's second factor in tx: a TOTP code
// (of a step not accepted before) or an unused recovery code, which it
// uses up. It returns the method, or errWrongCode.
func (s *Server) checkCode(ctx context.Context, tx bun.IDB, userID, code string) (string, error) {
	if rc := totp.NormalizeRecoveryCode(code); rc != "" {
		ok, err := store.UseRecoveryCode(ctx, tx, userID, store.RecoveryCodeHash(userID, rc))
		if err != nil {
			return "", err
		}
		if !ok {
			return "", errWrongCode
		}
		return "recovery_code", nil
	}
	err := store.AcceptTOTP(ctx, tx, userID, func(sealed []byte, lastStep int64) (int64, error) {
		return s.matchTOTP(userID, sealed, code, lastStep)
	})
	if errors.Is(err, store.ErrNoTOTP) {
		return "", errWrongCode
	}
	if err != nil {
		return "", err
	}
	return "totp", nil
}

// codeMethod is what kind of second factor code is: a recovery code has
// 16 characters of its alphabet, a TOTP code 6 digits.
func codeMethod(code string) string {
	if totp.NormalizeRecoveryCode(code) != "" {
		return "recovery_code"
	}
	return "totp"
}

type signInMFARequest struct {
	Challenge string `json:"challenge" jsonschema:"minLength=1,maxLength=128" doc:"the challenge POST /auth/sign-in answered"`
	Code      string `json:"code" jsonschema:"minLength=1,maxLength=32" doc:"a TOTP code, or one of the recovery codes"`
}

func (r *signInMFARequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// signInMFA is the second step of a sign-in: the challenge the password
// earned and a TOTP or recovery code give a session. The challenge is used
// up by the sign-in it admits, in the session's transaction; a wrong code
// leaves it to the throttle, which counts attempts on the user's email as
// sign-in does (under a key of its own), before the code is checked.
func (s *Server) signInMFA(c *fiber.Ctx, _ *caller) error {
	var req signInMFARequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	ch, err := store.LoadChallenge(ctx, s.db, req.Challenge, store.PurposeSignIn)
	if err != nil {
		return err
	}
	user, err := store.UserByID(ctx, s.db, ch.UserID)
	if err != nil {
		return err
	}
	slot, err := s.reserveAttempt(c, "mfa:"+user.Email, "failed sign-ins")
	if err != nil {
		return err
	}
	err = s.startSession(c, user, codeMethod(req.Code), func(ctx context.Context, tx bun.Tx) error {
		if _, err := store.UseChallenge(ctx, tx, req.Challenge, store.PurposeSignIn); err != nil {
			return err
		}
		_, err := s.checkCode(ctx, tx, user.ID, req.Code)
		return err
	})
	if errors.Is(err, errWrongCode) {
		zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Msg("second step of sign-in failed")
		return err
	}
	if err != nil {
		return err
	}
	if err := slot.Succeeded(ctx, s.db); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("second-step attempt not given back")
	}
	return nil
}

// challengeSignIn answers a right password of a user with a second
// factor: a challenge for the second step, and no token.
func (s *Server) challengeSignIn(c *fiber.Ctx, user store.User, f store.Factors) error {
	secret, ch, err := store.CreateChallenge(c.UserContext(), s.db, store.PurposeSignIn, user.ID, nil, s.eventBase(c, nil))
	if err != nil {
		return err
	}
	var methods []string
	if f.TOTP {
		methods = append(methods, "totp")
	}
	if f.Passkeys > 0 {
		methods = append(methods, "webauthn")
	}
	if f.RecoveryCodes > 0 {
		methods = append(methods, "recovery_code")
	}
	return writeData(c, fiber.StatusOK, signInResponse{MFARequired: true, Challenge: secret, Methods: methods, ExpiresAt: ch.ExpiresAt})
}
