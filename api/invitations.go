package api

import (
	"fmt"
	"net/mail"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

type inviteRequest struct {
	Email string      `json:"email" jsonschema:"maxLength=254,format=email"`
	Role  domain.Role `json:"role"`
}

func (r *inviteRequest) validate() []domain.FieldError {
	var fe fields
	r.Email = normalizeEmail(r.Email)
	fe.mailbox("email", r.Email)
	return fe
}

// mailbox checks an address the server will send mail to: one address,
// as net/mail reads it and nothing else, of ASCII only.
func (fe *fields) mailbox(field, email string) {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		fe.add(field, "a valid email address")
	} else if !isASCII(email) {
		// Look-alike letters from other scripts and direction overrides
		// make one address read as another in a mail client.
		fe.add(field, "ASCII only: write an internationalised domain in its xn-- form")
	}
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// invitationMail is the message that carries an invitation's secret: a
// link to the console's accept page (under CP_CONSOLE_URL), with the
// secret in the fragment so it never reaches a server log. Its redacted
// body, kept once the mail is done, is the same message without the secret.
func (s *Server) invitationMail(org string) store.Mail {
	return func(inv store.Invitation, secret string) store.OutboxMessage {
		body := func(secret string) string {
			link := s.consoleURL + "/invitations/accept#token=" + secret
			return fmt.Sprintf("You have been invited to join %s on IntelliAuth as %s.\r\n\r\n"+
				"Accept the invitation: %s\r\n\r\n"+
				"Or, with the API: POST /api/v1/invitations/accept {\"token\": \"%s\", \"name\": \"…\", \"password\": \"…\"}\r\n\r\n"+
				"The invitation expires at %s.\r\n",
				org, inv.Role, link, secret, inv.ExpiresAt.Format(time.RFC1123))
		}
		return store.OutboxMessage{
			Recipient:    inv.Email,
			Subject:      "You are invited to " + org + " on IntelliAuth",
			Body:         body(secret),
			BodyRedacted: body(store.InvitationPrefix + "(redacted)"),
		}
	}
}

func (s *Server) invite(c *fiber.Ctx, who *caller) error {
	var req inviteRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if err := who.mayGrant(req.Role); err != nil {
		return err
	}
	if req.Role == domain.RoleOwner {
		if err := s.requireRecentAuth(who); err != nil {
			return err
		}
	}
	ctx := c.UserContext()
	org, err := store.OrgByID(ctx, s.db, who.OrgID)
	if err != nil {
		return err
	}
	inv, err := store.Invite(ctx, s.db, store.InviteInput{OrgID: who.OrgID, Email: req.Email, Role: req.Role, InvitedBy: who.UserID, TTL: s.invitationTTL},
		s.invitationMail(org.Name), s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, inv.View(time.Now()))
}

func (s *Server) listInvitations(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListInvitations(c.UserContext(), s.db, who.OrgID, after, limit)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]store.InvitationView, len(rows))
	for i, r := range rows {
		views[i] = r.View(now)
	}
	return writePage(c, views, limit, func(v store.InvitationView) store.Keyset { return store.Keyset{CreatedAt: v.CreatedAt, ID: v.ID} })
}

// ownerInvitations: only owners touch an invitation to become an owner.
func ownerInvitations(who *caller) func(store.Invitation) error {
	return func(inv store.Invitation) error {
		return who.mayGrant(domain.Role(inv.Role))
	}
}

func (s *Server) revokeInvitation(c *fiber.Ctx, who *caller) error {
	inv, err := store.Revoke(c.UserContext(), s.db, who.OrgID, c.Params("invitation_id"), ownerInvitations(who), s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, inv.View(time.Now()))
}

func (s *Server) resendInvitation(c *fiber.Ctx, who *caller) error {
	ctx := c.UserContext()
	org, err := store.OrgByID(ctx, s.db, who.OrgID)
	if err != nil {
		return err
	}
	inv, err := store.Resend(ctx, s.db, who.OrgID, c.Params("invitation_id"), s.invitationTTL, ownerInvitations(who), s.invitationMail(org.Name), s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, inv.View(time.Now()))
}

type acceptRequest struct {
	Token    string `json:"token" jsonschema:"minLength=1,maxLength=128"`
	Name     string `json:"name,omitempty" jsonschema:"maxLength=100"`
	Password string `json:"password" jsonschema:"minLength=12,maxLength=256"`
}

func (r *acceptRequest) validate() []domain.FieldError {
	var fe fields
	if r.Name != "" { // optional: an existing account keeps its name
		var p string
		if r.Name, p = domain.DisplayName(r.Name, 100); p != "" {
			fe.add("name", p)
		}
	}
	return fe
}

// acceptInvitation turns an invitation's secret into a membership, once.
// The secret is looked up first, so an unknown one costs no hashing; the
// password of an existing account is checked under the sign-in throttle.
func (s *Server) acceptInvitation(c *fiber.Ctx, _ *caller) error {
	var req acceptRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ctx := c.UserContext()
	_, user, err := store.PendingInvitation(ctx, s.db, req.Token)
	if err != nil {
		return err
	}
	in := store.AcceptInput{Secret: req.Token,
		RequestID: requestID(c), ClientAddr: c.IP(), UserAgent: userAgent(c)}
	if user != nil {
		ok, err := s.checkThrottled(c, user.Email, req.Password, user.PasswordHash)
		if err != nil {
			return err
		}
		if !ok {
			return domain.Errorf(domain.CodeUnauthenticated, "an account with this email exists; give its password to accept")
		}
		in.UserID, in.CheckedHash = user.ID, user.PasswordHash
	} else {
		if in.PasswordHash, err = s.hashPassword(ctx, c, req.Password); err != nil {
			return err
		}
		in.Name = req.Name
	}
	res, err := store.Accept(ctx, s.db, in)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, acceptResponse{Member: res.Member, UserCreated: res.UserCreated})
}

type acceptResponse struct {
	Member store.MemberView `json:"member"`
	// UserCreated is true when accepting created the user's account.
	UserCreated bool `json:"user_created"`
}
