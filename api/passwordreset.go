package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

type passwordResetRequest struct {
	Email string `json:"email" jsonschema:"minLength=1,maxLength=254,pattern=noControl"`
}

func (r *passwordResetRequest) validate() []domain.FieldError {
	var fe fields
	r.Email = normalizeEmail(r.Email)
	fe.email(r.Email)
	return fe
}

type passwordResetResponse struct {
	Accepted bool   `json:"accepted"`
	Message  string `json:"message"`
}

// resetAnswer is the one answer to a reset request, whether or not the
// email has an account: nobody learns from it who has one.
var resetAnswer = passwordResetResponse{Accepted: true,
	Message: "If an account has this email, a link to set a new password is on its way. It works once, for 30 minutes."}

// requestPasswordReset mails a reset link to the account of an email, if
// there is one, under the sign-in throttle (per email, per address): the
// same answer either way, and an unknown email costs the same round trips.
func (s *Server) requestPasswordReset(c *fiber.Ctx, _ *caller) error {
	var req passwordResetRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	// Every request is counted: there is no right answer to give back.
	_, err := s.reserveAttempt(c, "reset:"+req.Email, "password resets asked for")
	if err != nil {
		return err
	}
	if err := store.RequestPasswordReset(ctx, s.db, req.Email, s.resetMail, s.eventBase(c, nil)); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Msg("password reset asked for")
	return writeData(c, fiber.StatusAccepted, resetAnswer)
}

// resetMail carries a reset's secret: a link to the console's reset page,
// the secret in the fragment so it never reaches a server log.
func (s *Server) resetMail(user store.User, secret string, expires time.Time) store.OutboxMessage {
	body := func(secret string) string {
		return fmt.Sprintf("Someone (we hope you) asked to set a new password for %s on IntelliAuth.\r\n\r\n"+
			"Set a new password: %s/password-reset#token=%s\r\n\r\n"+
			"The link works once, until %s. Setting a new password signs you out everywhere.\r\n"+
			"If you did not ask for this, ignore this mail: your password stays as it is.\r\n",
			user.Email, s.consoleURL, secret, expires.Format(time.RFC1123))
	}
	return store.OutboxMessage{Recipient: user.Email, Subject: "Set a new IntelliAuth password",
		Body: body(secret), BodyRedacted: body(store.PasswordResetPrefix + "(redacted)")}
}

type passwordResetConfirmRequest struct {
	Token    string `json:"token" jsonschema:"minLength=1,maxLength=128,pattern=noControl"`
	Password string `json:"password" jsonschema:"minLength=12,maxLength=256"`
}

func (r *passwordResetConfirmRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

type passwordResetConfirmResponse struct {
	PasswordReset bool `json:"password_reset"`
	// SessionsEnded says every session of the user was ended.
	SessionsEnded bool `json:"sessions_ended"`
}

// confirmPasswordReset sets a new password with a reset's secret, once,
// and ends every session of the user. Attempts are counted per address
// under the sign-in throttle; a right secret gives its attempt back.
func (s *Server) confirmPasswordReset(c *fiber.Ctx, _ *caller) error {
	var req passwordResetConfirmRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	slot, err := s.reserveAttempt(c, "reset-confirm:"+c.IP(), "password reset attempts")
	if err != nil {
		return err
	}
	// An unknown, used or expired secret costs no hashing.
	err = store.CheckPasswordReset(ctx, s.db, req.Token)
	var hash string
	if err == nil {
		hash, err = s.hashPassword(ctx, c, req.Password)
	}
	var user store.User
	if err == nil {
		user, err = store.ConfirmPasswordReset(ctx, s.db, req.Token, hash, s.eventBase(c, nil))
	}
	if errors.Is(err, store.ErrResetInvalid) {
		zerolog.Ctx(ctx).Info().Msg("password reset refused: unknown, used or expired secret")
		return err
	}
	if err != nil {
		_ = slot.Release(context.WithoutCancel(ctx), s.db)
		return err
	}
	if err := slot.Succeeded(ctx, s.db); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("user_id", user.ID).Msg("password reset")
	return writeData(c, fiber.StatusOK, passwordResetConfirmResponse{PasswordReset: true, SessionsEnded: true})
}
