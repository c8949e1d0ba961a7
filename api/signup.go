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

// errSignUpClosed answers sign-up and verification on an installation
// whose organisations are made by its operators only (CP_SIGNUP=closed).
var errSignUpClosed = &domain.Error{Code: domain.CodeForbidden, Message: "sign-up is closed on this installation"}

type signUpRequest struct {
	Email        string           `json:"email" jsonschema:"maxLength=254,format=email"`
	Name         string           `json:"name" jsonschema:"minLength=1,maxLength=100"`
	Password     string           `json:"password" jsonschema:"minLength=12,maxLength=256"`
	Organization createOrgRequest `json:"organization"`
}

func (r *signUpRequest) validate() []domain.FieldError {
	var fe fields
	r.Email = normalizeEmail(r.Email)
	fe.mailbox("email", r.Email)
	var p string
	if r.Name, p = domain.DisplayName(r.Name, 100); p != "" {
		fe.add("name", p)
	}
	r.Organization.check(&fe, "organization.")
	return fe
}

type signUpResponse struct {
	Accepted bool   `json:"accepted"`
	Message  string `json:"message"`
}

// signUpAnswer is the one answer to a sign-up, whether or not the email
// has an account: nobody learns from it who has one.
var signUpAnswer = signUpResponse{Accepted: true,
	Message: "A mail is on its way to this address: follow its link to finish signing up. The link works once, for 24 hours, and nothing is created until then. " +
		"If the address already has an account, the mail says so instead."}

// signUp stores a sign-up and mails the link that verifies its email, or,
// when the email has an account, mails its owner that it has one; the
// same answer either way, after the same work. Requests are counted per
// email and per address under the sign-in throttle, since each sends a
// mail to an address the caller chose.
func (s *Server) signUp(c *fiber.Ctx, _ *caller) error {
	if !s.signUpOpen {
		return errSignUpClosed
	}
	var req signUpRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	_, err := s.reserveAttempt(c, "signup:"+req.Email, "sign-ups asked for")
	if err != nil {
		return err
	}
	// Whoever asks learns whether a slug is taken (GET
	// /organization-slugs/{slug} says it too), never whether an email is.
	taken, err := store.SlugTaken(ctx, s.db, req.Organization.Slug)
	if err != nil {
		return err
	}
	if taken {
		return store.SlugTakenError(req.Organization.Slug)
	}
	// A known email is hashed for too, so it costs what a new one does.
	hash, err := s.hashPassword(ctx, c, req.Password)
	if err != nil {
		return err
	}
	in := store.SignUp{Email: req.Email, Name: req.Name, PasswordHash: hash, OrgName: req.Organization.Name, OrgSlug: req.Organization.Slug}
	if err := store.RequestSignUp(ctx, s.db, in, store.SignUpMails{Verify: s.verifyMail, Known: s.accountExistsMail}, s.eventBase(c, nil)); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Msg("sign-up asked for")
	return writeData(c, fiber.StatusAccepted, signUpAnswer)
}

// verifyMail carries a sign-up's secret: a link to the console's page
// that verifies it, the secret in the fragment so it never reaches a
// server log. It holds nothing the caller wrote (no name, no organisation)
// since it goes to an address anyone may give.
func (s *Server) verifyMail(email, secret string, expires time.Time) store.OutboxMessage {
	body := func(secret string) string {
		return fmt.Sprintf("Someone (we hope you) signed up for IntelliAuth with %s.\r\n\r\n"+
			"Verify your email and create your organization: %s/verify-email#token=%s\r\n\r\n"+
			"The link works once, until %s. Until it is followed nothing is created: "+
			"if you did not sign up, ignore this mail and nothing will be.\r\n",
			email, s.consoleURL, secret, expires.Format(time.RFC1123))
	}
	return store.OutboxMessage{Recipient: email, Subject: "Verify your email to finish signing up for IntelliAuth",
		Body: body(secret), BodyRedacted: body(store.SignUpPrefix + "(redacted)")}
}

// accountExistsMail answers a sign-up with an email that has an account:
// no second account, and the ways in.
func (s *Server) accountExistsMail(email string) store.OutboxMessage {
	body := fmt.Sprintf("Someone (we hope you) tried to sign up for IntelliAuth with %s, which already has an account: "+
		"no second account was made.\r\n\r\n"+
		"Sign in: %s/sign-in\r\n"+
		"Forgot your password? Set a new one: %s/password-reset\r\n\r\n"+
		"Once signed in, you can create another organization from the organization menu. "+
		"If you did not try to sign up, ignore this mail: nothing has changed.\r\n",
		email, s.consoleURL, s.consoleURL)
	return store.OutboxMessage{Recipient: email, Subject: "You already have an IntelliAuth account", Body: body, BodyRedacted: body}
}

type verifyEmailRequest struct {
	Token string `json:"token" jsonschema:"minLength=1,maxLength=128,pattern=noControl"`
}

func (r *verifyEmailRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// verifyEmailResponse is the session of the person who just verified
// their email, and the organisation they own.
type verifyEmailResponse struct {
	Token        string    `json:"token" doc:"the bearer token (cpt_…)"`
	ExpiresAt    time.Time `json:"expires_at"`
	User         userView  `json:"user"`
	Organization orgView   `json:"organization"`
}

// verifyEmail turns a sign-up's secret into the person's user, their
// organisation and its owner, and signs them in, once. Attempts are
// counted per client address under the sign-in throttle (every key of
// them is the address's: a flood of wrong secrets from elsewhere holds
// nobody up); a right secret gives its attempt back.
func (s *Server) verifyEmail(c *fiber.Ctx, _ *caller) error {
	if !s.signUpOpen {
		return errSignUpClosed
	}
	var req verifyEmailRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	slot, err := s.reserveAttempt(c, "verify-email:"+c.IP(), "verification attempts")
	if err != nil {
		return err
	}
	v, err := store.VerifySignUp(ctx, s.db, req.Token, s.sessionTTL, s.eventBase(c, nil))
	if errors.Is(err, store.ErrSignUpInvalid) {
		zerolog.Ctx(ctx).Info().Msg("email verification refused: unknown, used or expired secret")
		return err
	}
	if err != nil {
		_ = slot.Release(context.WithoutCancel(ctx), s.db)
		return err
	}
	if err := slot.Succeeded(ctx, s.db); err != nil {
		return err
	}
	zerolog.Ctx(ctx).Info().Str("user_id", v.User.ID).Str("org_id", v.Org.ID).Msg("email verified: organization created")
	return writeData(c, fiber.StatusCreated, verifyEmailResponse{Token: v.Token, ExpiresAt: v.Session.ExpiresAt,
		User: newUserView(v.User), Organization: s.newOrgView(v.Org, v.Member.Role)})
}

// signUpSettings is what a client needs before anyone signs in to offer
// sign-up, or not.
type signUpSettings struct {
	Open         bool   `json:"open" doc:"Whether anyone may sign up here (CP_SIGNUP); when false, POST /auth/sign-up and /auth/verify-email answer 403."`
	TenantDomain string `json:"tenant_domain" doc:"The domain tenants are served under: a tenant is at <tenant>-<slug>.<tenant_domain>."`
}

func (s *Server) getSignUpSettings(c *fiber.Ctx, _ *caller) error {
	return writeData(c, fiber.StatusOK, signUpSettings{Open: s.signUpOpen, TenantDomain: s.domainBase})
}
