package api

import (
	"encoding/hex"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Access is who may call a route.
type Access string

// The kinds of access.
const (
	// Public routes need no token (sign-in, accepting an invitation).
	Public Access = "public"
	// User routes need a valid session.
	User Access = "user"
	// Org routes need a valid session of a member of {org_id} whose role
	// allows the route's action.
	Org Access = "org"
)

// Route describes one route of the API: what the server registers and what
// the authorisation test walks.
type Route struct {
	Method string
	Path   string
	Access Access
	// Action is the policy action an Org route requires.
	Action domain.Action
	// SelfAllowed lets a member act on its own {member_id} without the
	// action (leaving the organisation).
	SelfAllowed bool
}

type route struct {
	Route
	handle func(*fiber.Ctx, *caller) error
}

// caller is the authenticated human behind a request.
type caller struct {
	store.Principal
}

func (c *caller) role() domain.Role { return domain.Role(c.Role) }

// require refuses the request unless the caller's role allows the action;
// for checks that depend on the request (granting owner, changing plan).
func (c *caller) require(a domain.Action) error {
	if !domain.Allowed(c.role(), a) {
		return domain.Errorf(domain.CodeForbidden, "your role (%s) does not allow %s", c.Role, a)
	}
	return nil
}

// table is every route of the API.
func (s *Server) table() []route {
	const v1 = "/api/v1"
	const org = v1 + "/organizations/:org_id"
	return []route{
		{Route{"POST", v1 + "/auth/sign-in", Public, "", false}, s.signIn},
		{Route{"POST", v1 + "/auth/sign-out", User, "", false}, s.signOut},
		{Route{"GET", v1 + "/me", User, "", false}, s.me},
		{Route{"GET", v1 + "/organizations", User, "", false}, s.listOrganizations},
		{Route{"GET", org, Org, domain.ActionRead, false}, s.getOrganization},
		{Route{"PATCH", org, Org, domain.ActionOrganizationWrite, false}, s.updateOrganization},
		{Route{"GET", org + "/usage", Org, domain.ActionRead, false}, s.getUsage},
		{Route{"GET", v1 + "/plans", User, "", false}, s.listPlans},
		{Route{"GET", org + "/members", Org, domain.ActionRead, false}, s.listMembers},
		{Route{"PATCH", org + "/members/:member_id", Org, domain.ActionMembersManage, false}, s.changeRole},
		{Route{"DELETE", org + "/members/:member_id", Org, domain.ActionMembersManage, true}, s.removeMember},
		{Route{"POST", org + "/invitations", Org, domain.ActionMembersManage, false}, s.invite},
		{Route{"GET", org + "/invitations", Org, domain.ActionRead, false}, s.listInvitations},
		{Route{"DELETE", org + "/invitations/:invitation_id", Org, domain.ActionMembersManage, false}, s.revokeInvitation},
		{Route{"POST", org + "/invitations/:invitation_id/resend", Org, domain.ActionMembersManage, false}, s.resendInvitation},
		{Route{"POST", v1 + "/invitations/accept", Public, "", false}, s.acceptInvitation},
		{Route{"POST", org + "/tenants", Org, domain.ActionTenantWrite, false}, s.createTenant},
		{Route{"GET", org + "/tenants", Org, domain.ActionRead, false}, s.listTenants},
		{Route{"GET", org + "/tenants/:tenant_id", Org, domain.ActionRead, false}, s.getTenant},
		{Route{"POST", org + "/tenants/:tenant_id/suspend", Org, domain.ActionTenantWrite, false}, s.transition(domain.OpSuspend)},
		{Route{"POST", org + "/tenants/:tenant_id/resume", Org, domain.ActionTenantWrite, false}, s.transition(domain.OpResume)},
		{Route{"POST", org + "/tenants/:tenant_id/decommission", Org, domain.ActionTenantDestroy, false}, s.transition(domain.OpDecommission)},
		{Route{"POST", org + "/tenants/:tenant_id/restore", Org, domain.ActionTenantDestroy, false}, s.transition(domain.OpRestore)},
		{Route{"GET", org + "/tenants/:tenant_id/operations", Org, domain.ActionRead, false}, s.listOperations},
		{Route{"GET", org + "/events", Org, domain.ActionAuditRead, false}, s.listEvents},
		{Route{"GET", v1 + "/openapi.json", Public, "", false}, s.openAPIJSON},
	}
}

// Routes lists the API's routes with their access rules.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.table() {
		out = append(out, r.Route)
	}
	return out
}

var errUnauthenticated = domain.Errorf(domain.CodeUnauthenticated, "missing, invalid, expired or revoked bearer token")

// guard is the one place a route's access rule is enforced: the token is
// resolved, with the membership of {org_id} in the same query, and the
// role is checked against the policy table. A caller who is not a member of
// the organisation gets NOT_FOUND, as if it did not exist.
func (s *Server) guard(r route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if r.Access == Public {
			if err := s.rateLimit(c, "addr:"+c.IP(), s.publicRPM); err != nil {
				return err
			}
			return r.handle(c, nil)
		}
		token, ok := bearer(c)
		if !ok {
			return s.authFailure(c)
		}
		orgID := ""
		if r.Access == Org {
			orgID = c.Params("org_id")
			if !domain.ValidID(domain.PrefixOrganization, orgID) {
				return domain.Errorf(domain.CodeNotFound, "organization not found: %s", clipParam(orgID))
			}
		}
		p, err := store.Authenticate(c.UserContext(), s.db, token, orgID)
		if errors.Is(err, store.ErrNoSession) {
			return s.authFailure(c)
		}
		if err != nil {
			return err
		}
		who := &caller{p}
		// A non-member's request is charged to the user, like the routes
		// outside an organisation: probing other organisations costs the
		// prober's own budget.
		if r.Access == User || p.MemberID == "" {
			if err := s.rateLimit(c, "user:"+p.UserID, s.userRPM); err != nil {
				return err
			}
		}
		if r.Access == Org {
			if p.MemberID == "" {
				return domain.Errorf(domain.CodeNotFound, "organization not found: %s", orgID)
			}
			// The organisation's budget is charged only once the caller is
			// known to be a member: nobody else can spend it. Each member
			// has a share of it first, so no single member can spend what
			// the others need.
			limit := s.planLimit(c, p.Org.PlanID)
			if err := s.rateLimit(c, "member:"+p.MemberID, memberShare(limit)); err != nil {
				return err
			}
			if err := s.rateLimit(c, "org:"+p.OrgID, limit); err != nil {
				return err
			}
			self := r.SelfAllowed && c.Params("member_id") == p.MemberID
			if !self {
				if err := who.require(r.Action); err != nil {
					return err
				}
			}
		}
		if c.Method() == fiber.MethodGet || workflowBacked(r.Route) {
			return r.handle(c, who)
		}
		return s.storedIdempotency(c, idempotencyScope(r.Access, who), func() error { return r.handle(c, who) })
	}
}

// memberShare is the most of an organisation's budget one member may
// spend in a window.
func memberShare(orgLimit int) int {
	if orgLimit <= 0 {
		return 0
	}
	return max(orgLimit/2, 1)
}

// authFailure answers a missing or invalid token, charging the client
// address's budget of failures: guessing tokens is limited, while a valid
// token from the same address (a shared NAT) is not refused for it.
func (s *Server) authFailure(c *fiber.Ctx) error {
	if err := s.rateLimit(c, "authfail:"+c.IP(), s.publicRPM); err != nil {
		return err
	}
	return errUnauthenticated
}

// idempotencyScope is whose keys a stored answer belongs to: the member in
// the organisation, or, outside one, the session (a sign-out with one token
// is not another token's). One caller's answer is never given to another.
func idempotencyScope(access Access, who *caller) string {
	if access == Org {
		return "org:" + who.OrgID + "/user:" + who.UserID
	}
	return "user:" + who.UserID + "/session:" + hex.EncodeToString(who.TokenHash[:8])
}

// workflowBacked reports whether the route's Idempotency-Key maps to a
// Temporal workflow or update id rather than to a stored answer.
func workflowBacked(r Route) bool {
	return r.Method == fiber.MethodPost && strings.Contains(r.Path, "/tenants")
}

func bearer(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// clipParam keeps a caller-supplied path value short in a message.
func clipParam(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
