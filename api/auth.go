package api

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/password"
	"github.com/intelliauth/controlplane/internal/store"
)

type signInRequest struct {
	Email    string `json:"email" jsonschema:"minLength=1,maxLength=254,pattern=noControl"`
	Password string `json:"password" jsonschema:"minLength=1,maxLength=1024"`
}

func (r *signInRequest) validate() []domain.FieldError {
	var fe fields
	r.Email = normalizeEmail(r.Email)
	fe.email(r.Email)
	return fe
}

type userView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func newUserView(u store.User) userView {
	return userView{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: u.CreatedAt}
}

// signInResponse is a session (token, its expiry, the user) or, when the
// user has a second factor, a challenge for the second step and no token.
type signInResponse struct {
	Token string `json:"token,omitempty" doc:"the bearer token (cpt_…); absent when mfa_required"`
	// ExpiresAt is the token's expiry, or the challenge's.
	ExpiresAt time.Time `json:"expires_at" doc:"when the token expires, or the challenge when mfa_required"`
	User      *userView `json:"user,omitempty" doc:"absent when mfa_required"`
	// MFARequired: the password was right and a second step is needed.
	MFARequired bool     `json:"mfa_required" doc:"true: no token yet; send the challenge with a second factor to POST /auth/sign-in/mfa or /auth/sign-in/webauthn"`
	Challenge   string   `json:"challenge,omitempty" doc:"single-use, for 5 minutes (cpc_…)"`
	Methods     []string `json:"methods,omitempty" doc:"the second factors the user has: totp, webauthn, recovery_code"`
}

// signIn exchanges an email and password for a bearer token. An unknown
// email and a wrong password get the same answer after the same work. A
// failure is counted by the throttle and logged for operators, and written
// to no organisation's audit trail: anyone who knows a member's email
// could otherwise write events, with a user agent of their choosing, into
// every organisation of the member.
func (s *Server) signIn(c *fiber.Ctx, _ *caller) error {
	var req signInRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	user, err := store.UserByEmail(ctx, s.db, req.Email)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	hash := s.dummyHash // an unknown email costs what a known one does
	if known {
		hash = user.PasswordHash
	}
	ok, err := s.checkThrottled(c, req.Email, req.Password, hash)
	if err != nil {
		return err
	}
	if !known || !ok {
		l := zerolog.Ctx(ctx).Info().Bool("known_email", known)
		if known {
			l = l.Str("user_id", user.ID)
		}
		l.Msg("sign-in failed")
		return domain.Errorf(domain.CodeUnauthenticated, "invalid email or password")
	}
	f, err := store.FactorsOf(ctx, s.db, user.ID)
	if err != nil {
		return err
	}
	if f.Any() {
		return s.challengeSignIn(c, user, f)
	}
	return s.startSession(c, user, "password", nil)
}

// startSession signs the user in by method once admit (nil: nothing),
// run in the session's transaction, lets it, and answers the session.
func (s *Server) startSession(c *fiber.Ctx, user store.User, method string, admit func(ctx context.Context, tx bun.Tx) error) error {
	token, sess, err := store.StartSession(c.UserContext(), s.db, user, s.sessionTTL, method, s.eventBase(c, nil), admit)
	if err != nil {
		return err
	}
	u := newUserView(user)
	return writeData(c, fiber.StatusOK, signInResponse{Token: token, ExpiresAt: sess.ExpiresAt, User: &u})
}

// checkThrottled checks pw against hash as an attempt on email from the
// client's address, under the sign-in throttle: the attempt is counted
// before the password is checked, so attempts at once cannot all pass a
// check of the count; a wrong password stays counted, a right one is given
// back. A throttled attempt is RATE_LIMITED with Retry-After.
func (s *Server) checkThrottled(c *fiber.Ctx, email, pw, hash string) (bool, error) {
	ctx := c.UserContext()
	slot, err := s.reserveAttempt(c, email, "failed sign-ins")
	if err != nil {
		return false, err
	}
	ok, err := s.verifyPassword(ctx, c, pw, hash)
	if err != nil {
		// No password was checked: the attempt is given back (a failure to
		// leaves it counted).
		if rerr := slot.Release(context.WithoutCancel(ctx), s.db); rerr != nil {
			zerolog.Ctx(ctx).Warn().Err(rerr).Msg("sign-in attempt not given back")
		}
		return false, err
	}
	if ok {
		if err := slot.Succeeded(ctx, s.db); err != nil {
			return false, err
		}
	}
	return ok, nil
}

// reserveAttempt takes an attempt of key from the client's address under
// the sign-in throttle, before the secret it carries is checked; one the
// throttle refuses is RATE_LIMITED with Retry-After ("too many <what>").
func (s *Server) reserveAttempt(c *fiber.Ctx, key, what string) (store.SignInSlot, error) {
	slot, wait, err := s.signInPolicy.Reserve(c.UserContext(), s.db, key, c.IP())
	if err != nil {
		return slot, err
	}
	if wait > 0 {
		return slot, rateLimited(c, wait, "too many "+what+"; try again later")
	}
	return slot, nil
}

// verifyPassword runs argon2id within a bound on how many run at once, so
// sign-in floods cannot take every CPU: past the bound a caller waits a
// little, then is told to retry.
func (s *Server) verifyPassword(ctx context.Context, c *fiber.Ctx, pw, hash string) (ok bool, err error) {
	err = s.withHashSlot(ctx, c, func() error {
		s.metrics.hashes.WithLabelValues("verify").Inc()
		ok, err = password.Verify(pw, hash)
		return err
	})
	return ok, err
}

// hashPassword hashes a new password within the same bound.
func (s *Server) hashPassword(ctx context.Context, c *fiber.Ctx, pw string) (hash string, err error) {
	err = s.withHashSlot(ctx, c, func() error {
		s.metrics.hashes.WithLabelValues("hash").Inc()
		hash, err = password.Hash(pw, password.Default)
		return err
	})
	return hash, err
}

// withHashSlot runs fn, which hashes a password, once one of the slots for
// that is free.
func (s *Server) withHashSlot(ctx context.Context, c *fiber.Ctx, fn func() error) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-time.After(3 * time.Second):
		return rateLimited(c, time.Second, "the server is busy verifying passwords; retry shortly")
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return fn()
}

func (s *Server) signOut(c *fiber.Ctx, who *caller) error {
	ctx := c.UserContext()
	if err := store.RevokeSession(ctx, s.db, who.TokenHash); err != nil {
		return err
	}
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	if err := store.InsertUserEvent(ctx, s.db, user, "user.signed_out", s.eventBase(c, nil)); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, signOutResponse{SignedOut: true})
}

type signOutResponse struct {
	SignedOut bool `json:"signed_out"`
}

type meResponse struct {
	User        userView         `json:"user"`
	Memberships []membershipView `json:"memberships"`
	MFA         mfaView          `json:"mfa"`
}

// mfaView is what second factors the user has.
type mfaView struct {
	TOTP              bool `json:"totp" doc:"an authenticator app (TOTP) is on"`
	TOTPPending       bool `json:"totp_pending" doc:"an enrolment waits for its first code"`
	Passkeys          int  `json:"passkeys"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
	Enabled           bool `json:"enabled" doc:"the user has a second factor: sign-in has a second step"`
}

func newMFAView(f store.Factors) mfaView {
	return mfaView{TOTP: f.TOTP, TOTPPending: f.TOTPPending, Passkeys: f.Passkeys, RecoveryCodesLeft: f.RecoveryCodes, Enabled: f.Any()}
}

// membershipView is one of the caller's memberships, with what its role
// allows there.
type membershipView struct {
	store.Membership
	Permissions []domain.Action `json:"permissions"`
}

func (s *Server) me(c *fiber.Ctx, who *caller) error {
	ctx := c.UserContext()
	user, err := store.UserByID(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	ms, err := store.MembershipsOf(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	views := make([]membershipView, len(ms))
	for i, m := range ms {
		views[i] = membershipView{Membership: m, Permissions: domain.Permissions(domain.Role(m.Role))}
	}
	f, err := store.FactorsOf(ctx, s.db, who.UserID)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, meResponse{User: newUserView(user), Memberships: views, MFA: newMFAView(f)})
}

// eventBase is what every audit event of this request shares; who is nil
// before the caller is known (the organisation and actor are then set by
// the writer).
func (s *Server) eventBase(c *fiber.Ctx, who *caller) store.EventBase {
	b := store.EventBase{RequestID: requestID(c), ClientAddr: c.IP(), UserAgent: userAgent(c)}
	if who != nil {
		b.OrgID, b.ActorType, b.ActorID, b.ActorEmail = who.OrgID, "member", who.MemberID, who.Email
		if sa := who.ServiceAccount; sa != nil {
			b = store.ServiceActor(b, sa, who.Email)
		}
	}
	return b
}

func rateLimited(c *fiber.Ctx, wait time.Duration, msg string) error {
	secs := int(wait.Seconds() + 0.999)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(secs, 1)))
	return domain.Errorf(domain.CodeRateLimited, "%s", msg)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// email checks an email a caller signs in or asks a reset with, once
// normalised: something is left (its schema bounds the rest).
func (fe *fields) email(email string) {
	if email == "" {
		fe.add("email", "required")
	}
}

// clip keeps at most n bytes of text a caller sent, made storable
// (domain.StorableText): a header can carry a NUL or bytes that are not
// UTF-8, which Postgres refuses, and cutting must not split a character.
func clip(s string, n int) string { return domain.StorableText(s, n) }

// errReauthenticate is the answer to a guarded act of a person whose
// session has not proved who they are within the window.
var errReauthenticate = &domain.Error{Code: domain.CodeReauthenticationRequired,
	Message: "this act needs you to confirm who you are: POST /api/v1/auth/reauthenticate with your password or a second factor, then try again"}

// requireRecentAuth refuses a guarded act (SPEC §7: decommission, plan
// change, granting owner, …) unless the caller's session proved who its
// person is within the reauthentication window. Service accounts are not
// asked: a token is all they have.
func (s *Server) requireRecentAuth(who *caller) error {
	if who.ServiceAccount != nil || time.Since(who.AuthenticatedAt) <= s.reauthWindow {
		return nil
	}
	return errReauthenticate
}
