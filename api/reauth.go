package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Recent authentication ("sudo mode"): a person's session proves who they
// are at sign-in; an irreversible or power-granting act (requireRecentAuth's
// callers, docs/security.md) needs that proof to be recent, and
// POST /auth/reauthenticate renews it without a new session.

// reauthenticatePath is the route that renews the proof.
const reauthenticatePath = "/api/v1/auth/reauthenticate"

// reauthenticateRequest is one proof of who the caller is: exactly one of
// a password, a code (TOTP or recovery) or a passkey assertion.
type reauthenticateRequest struct {
	Password   string          `json:"password,omitempty" jsonschema:"minLength=1,maxLength=1024" doc:"The account's password."`
	Code       string          `json:"code,omitempty" jsonschema:"minLength=1,maxLength=64,pattern=noControl" doc:"A TOTP code or a recovery code, for an account with a second factor."`
	Credential json.RawMessage `json:"credential,omitempty" jsonschema:"type=object" doc:"A passkey assertion (the PublicKeyCredential as JSON), for an account with a passkey."`
}

// given lists the proofs the request carries ("credential": null is none).
func (r *reauthenticateRequest) given() []string {
	var out []string
	if r.Password != "" {
		out = append(out, "password")
	}
	if r.Code != "" {
		out = append(out, "code")
	}
	if c := bytes.TrimSpace(r.Credential); len(c) > 0 && !bytes.Equal(c, []byte("null")) {
		out = append(out, "credential")
	}
	return out
}

func (r *reauthenticateRequest) validate() []domain.FieldError {
	var fe fields
	given := r.given()
	switch {
	case len(given) == 0:
		fe.add("password", "give one of password, code or credential")
	case len(given) > 1:
		for _, f := range given {
			fe.add(f, "give only one of password, code or credential")
		}
	}
	return fe
}

func (reauthenticateRequest) objectSchema(s *openapi3.Schema) {
	s.MinProps, s.MaxProps = 1, ptr(uint64(1))
}

type reauthenticateResponse struct {
	AuthenticatedAt      time.Time `json:"authenticated_at" doc:"When the session's person proved who they are: now."`
	ReauthenticatedUntil time.Time `json:"reauthenticated_until" doc:"Until when the session may do the acts that need a recent authentication (CP_REAUTH_WINDOW after authenticated_at)."`
}

// reauthenticate renews the proof of the caller's session: the caller's
// own password, checked under the sign-in throttle as a sign-in is. Only
// people reauthenticate (a service account's token is refused by the
// guard before this). A TOTP or recovery code does too
// (reauthenticateWithCode).
func (s *Server) reauthenticate(c *fiber.Ctx, who *caller) error {
	if who.ServiceAccount != nil {
		return domain.Errorf(domain.CodeForbidden, "only people reauthenticate; a service account's token is all it has")
	}
	var req reauthenticateRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.given()[0] == "credential" {
		return unavailableProof("credential", "a passkey is not available to this account: give your password")
	}
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	if req.given()[0] == "code" {
		return s.reauthenticateWithCode(c, who, user, req.Code)
	}
	ok, err := s.checkThrottled(c, normalizeEmail(user.Email), req.Password, user.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Msg("reauthentication failed")
		return domain.Errorf(domain.CodeUnauthenticated, "the password is not right")
	}
	at, err := store.Reauthenticate(ctx, s.db, user, who.TokenHash, "password", s.eventBase(c, nil), nil)
	if errors.Is(err, store.ErrNoSession) {
		return errUnauthenticated
	}
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, reauthenticateResponse{AuthenticatedAt: at, ReauthenticatedUntil: at.Add(s.reauthWindow)})
}

// reauthenticateWithCode renews the proof with a TOTP or recovery code,
// counted by the throttle of the second step of sign-in before it is
// checked, and accepted (a TOTP step once, a recovery code used up) in the
// transaction that renews the proof.
func (s *Server) reauthenticateWithCode(c *fiber.Ctx, who *caller, user store.User, code string) error {
	ctx := c.UserContext()
	f, err := store.FactorsOf(ctx, s.db, user.ID)
	if err != nil {
		return err
	}
	if !f.TOTP && f.RecoveryCodes == 0 {
		return unavailableProof("code", "a TOTP or recovery code is not available to this account: give your password")
	}
	slot, err := s.reserveAttempt(c, "mfa:"+user.Email, "failed sign-ins")
	if err != nil {
		return err
	}
	at, err := store.Reauthenticate(ctx, s.db, user, who.TokenHash, codeMethod(code), s.eventBase(c, nil), func(ctx context.Context, tx bun.Tx) error {
		_, err := s.checkCode(ctx, tx, user.ID, code)
		return err
	})
	if errors.Is(err, errWrongCode) {
		zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Msg("reauthentication failed")
		return domain.Errorf(domain.CodeUnauthenticated, "the code is not right, or was used already")
	}
	if errors.Is(err, store.ErrNoSession) {
		return errUnauthenticated
	}
	if err != nil {
		return err
	}
	if err := slot.Succeeded(ctx, s.db); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("reauthentication attempt not given back")
	}
	return writeData(c, fiber.StatusOK, reauthenticateResponse{AuthenticatedAt: at, ReauthenticatedUntil: at.Add(s.reauthWindow)})
}

// unavailableProof refuses a way of proving who one is that the account
// does not have.
func unavailableProof(field, msg string) error {
	return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
		FieldErrors: []domain.FieldError{{Field: field, Message: msg}}}
}

// carriesSecret reports whether a route's body is a secret that no stored
// answer may keep, even as the fingerprint of a request: a fast hash of a
// password is a password to whoever reads the table. Renewing the proof
// twice is harmless, so a retry simply runs again.
func carriesSecret(r Route) bool { return r.Path == reauthenticatePath }

// requireRecentAuthUnless is requireRecentAuth for an act whose retries
// carry its Idempotency-Key to Temporal: a retry of a request that already
// began (began reports it) changes nothing new, and gets its answer as the
// first attempt did, however long ago that proof was.
func (s *Server) requireRecentAuthUnless(who *caller, began func() (bool, error)) error {
	err := s.requireRecentAuth(who)
	if err == nil {
		return nil
	}
	ok, berr := began()
	if berr != nil {
		return berr
	}
	if ok {
		return nil
	}
	return err
}
