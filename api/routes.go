package api

import (
	"encoding/hex"
	"errors"
	"strings"
	"time"

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
	// Scope is what a service account's scopes must hold to use an Org
	// route; "": no service account may.
	Scope domain.Scope
}

type route struct {
	Route
	handle func(*fiber.Ctx, *caller) error
}

// caller is who a request comes from: a member with a session, or a
// service account (then ServiceAccount is set, and UserID and Email are
// its accountable human's).
type caller struct {
	store.Principal
}

func (c *caller) role() domain.Role { return domain.Role(c.Role) }

// orgActive reports whether the caller's organisation takes changes: one
// being deleted is read and restored only.
func (c *caller) orgActive() bool {
	return c.Org == nil || c.Org.State == "" || c.Org.State == string(domain.OrgActive)
}

// sees reports whether the caller may see tenants of the environment: a
// member sees every one, a service account those of its environments.
func (c *caller) sees(environment string) bool {
	return c.ServiceAccount == nil || c.ServiceAccount.Sees(environment)
}

// seesRegion reports whether the caller may see tenants of the region: a
// member sees every one, a service account those of its regions.
func (c *caller) seesRegion(region string) bool {
	return c.ServiceAccount == nil || c.ServiceAccount.SeesRegion(region)
}

// regions is what a listing of tenants is limited to (nil: every region).
func (c *caller) regions() []string {
	if c.ServiceAccount == nil {
		return nil
	}
	return c.ServiceAccount.Regions
}

// environments is what a listing of tenants or events is limited to (nil:
// every environment).
func (c *caller) environments() []string {
	if c.ServiceAccount == nil {
		return nil
	}
	return c.ServiceAccount.Environments
}

// require refuses the request unless the caller's role allows the action;
// for checks that depend on the request (granting owner, changing plan).
func (c *caller) require(a domain.Action) error {
	if !domain.Allowed(c.role(), a) {
		return domain.Errorf(domain.CodeForbidden, "your role (%s) does not allow %s", c.Role, a)
	}
	return nil
}

// mayGrant refuses unless the caller's role may give (or take away) each
// role: the rule the organisation view's grantable_roles lists.
func (c *caller) mayGrant(roles ...domain.Role) error {
	for _, g := range roles {
		if !c.role().MayGrant(g) {
			if err := c.require(domain.ActionMembersManage); err != nil {
				return err
			}
			return c.require(domain.ActionOwnersManage)
		}
	}
	return nil
}

// authorize is the one rule of what a caller may do in its organisation: a
// member's role must allow the action; a service account's scopes must hold
// the scope (a route that names none is closed to it), and both its own role
// and its accountable member's role must allow the action.
func (c *caller) authorize(a domain.Action, scope domain.Scope) error {
	sa := c.ServiceAccount
	switch {
	case sa == nil:
		return c.require(a)
	case scope == "":
		return domain.Errorf(domain.CodeForbidden, "service accounts cannot use this route")
	case !sa.Has(scope):
		return domain.Errorf(domain.CodeForbidden, "this service account's scopes do not include %s", scope)
	case !domain.Allowed(domain.Role(sa.Role), a):
		return domain.Errorf(domain.CodeForbidden, "this service account's role (%s) does not allow %s", sa.Role, a)
	case !domain.Allowed(domain.Role(sa.HumanRole), a):
		return domain.Errorf(domain.CodeForbidden, "the role of this service account's accountable member (%s) does not allow %s", sa.HumanRole, a)
	}
	return nil
}

// table is every route of the API.
func (s *Server) table() []route {
	const v1 = "/api/v1"
	const org = v1 + "/organizations/:org_id"
	routes := []route{
		{Route{"POST", v1 + "/auth/sign-in", Public, "", false, ""}, s.signIn},
		{Route{"POST", v1 + "/auth/sign-out", User, "", false, ""}, s.signOut},
		{Route{"POST", v1 + "/auth/sign-in/mfa", Public, "", false, ""}, s.signInMFA},
		{Route{"POST", v1 + "/auth/password-reset", Public, "", false, ""}, s.requestPasswordReset},
		{Route{"POST", v1 + "/auth/password-reset/confirm", Public, "", false, ""}, s.confirmPasswordReset},
		{Route{"GET", v1 + "/auth/sign-up", Public, "", false, ""}, s.getSignUpSettings},
		{Route{"POST", v1 + "/auth/sign-up", Public, "", false, ""}, s.signUp},
		{Route{"POST", v1 + "/auth/verify-email", Public, "", false, ""}, s.verifyEmail},
		{Route{"GET", v1 + "/organization-slugs/:slug", Public, "", false, ""}, s.getSlug},
		{Route{"POST", reauthenticatePath, User, "", false, ""}, s.reauthenticate},
		{Route{"GET", v1 + "/me", User, "", false, ""}, s.me},
		{Route{"POST", v1 + "/me/totp", User, "", false, ""}, s.enrolTOTP},
		{Route{"POST", v1 + "/me/totp/confirm", User, "", false, ""}, s.confirmTOTP},
		{Route{"DELETE", v1 + "/me/totp", User, "", false, ""}, s.removeTOTP},
		{Route{"POST", v1 + "/me/recovery-codes", User, "", false, ""}, s.regenerateRecoveryCodes},
		{Route{"GET", v1 + "/me/sessions", User, "", false, ""}, s.listSessions},
		{Route{"GET", v1 + "/me/events", User, "", false, ""}, s.listMyEvents},
		{Route{"DELETE", v1 + "/me/sessions", User, "", false, ""}, s.endOtherSessions},
		{Route{"DELETE", v1 + "/me/sessions/:session_id", User, "", false, ""}, s.endSession},
		{Route{"POST", v1 + "/me/webauthn/registration/options", User, "", false, ""}, s.beginPasskeyRegistration},
		{Route{"POST", v1 + "/me/webauthn/credentials", User, "", false, ""}, s.registerPasskey},
		{Route{"GET", v1 + "/me/webauthn/credentials", User, "", false, ""}, s.listPasskeys},
		{Route{"DELETE", v1 + "/me/webauthn/credentials/:passkey_id", User, "", false, ""}, s.removePasskey},
		{Route{"POST", v1 + "/auth/sign-in/webauthn/options", Public, "", false, ""}, s.passkeySignInOptions},
		{Route{"POST", v1 + "/auth/sign-in/webauthn", Public, "", false, ""}, s.passkeySignIn},
		{Route{"GET", v1 + "/organizations", User, "", false, ""}, s.listOrganizations},
		{Route{"POST", v1 + "/organizations", User, "", false, ""}, s.createOrganization},
		{Route{"GET", org, Org, domain.ActionRead, false, domain.ScopeOrganizationRead}, s.getOrganization},
		{Route{"PATCH", org, Org, domain.ActionOrganizationWrite, false, ""}, s.updateOrganization},
		{Route{"DELETE", org, Org, domain.ActionOrganizationDelete, false, ""}, s.deleteOrganization},
		{Route{"POST", org + "/restore", Org, domain.ActionOrganizationDelete, false, ""}, s.restoreOrganization},
		{Route{"GET", org + "/operations", Org, domain.ActionRead, false, domain.ScopeOrganizationRead}, s.listOrgOperations},
		{Route{"GET", org + "/usage", Org, domain.ActionRead, false, domain.ScopeOrganizationRead}, s.getUsage},
		{Route{"GET", v1 + "/plans", User, "", false, ""}, s.listPlans},
		{Route{"GET", org + "/members", Org, domain.ActionRead, false, domain.ScopeMembersRead}, s.listMembers},
		{Route{"PATCH", org + "/members/:member_id", Org, domain.ActionMembersManage, false, ""}, s.changeRole},
		{Route{"DELETE", org + "/members/:member_id", Org, domain.ActionMembersManage, true, ""}, s.removeMember},
		{Route{"POST", org + "/invitations", Org, domain.ActionMembersManage, false, ""}, s.invite},
		{Route{"GET", org + "/invitations", Org, domain.ActionRead, false, domain.ScopeMembersRead}, s.listInvitations},
		{Route{"DELETE", org + "/invitations/:invitation_id", Org, domain.ActionMembersManage, false, ""}, s.revokeInvitation},
		{Route{"POST", org + "/invitations/:invitation_id/resend", Org, domain.ActionMembersManage, false, ""}, s.resendInvitation},
		{Route{"POST", v1 + "/invitations/accept", Public, "", false, ""}, s.acceptInvitation},
		{Route{"POST", org + "/tenants", Org, domain.ActionTenantWrite, false, domain.ScopeTenantsCreate}, s.createTenant},
		{Route{"GET", org + "/tenants", Org, domain.ActionRead, false, domain.ScopeTenantsRead}, s.listTenants},
		{Route{"GET", org + "/regions", Org, domain.ActionRead, false, domain.ScopeTenantsRead}, s.listRegions},
		{Route{"GET", org + "/tenants/:tenant_id", Org, domain.ActionRead, false, domain.ScopeTenantsRead}, s.getTenant},
		{Route{"GET", org + "/tenants/:tenant_id/operations", Org, domain.ActionRead, false, domain.ScopeTenantsRead}, s.listOperations},
		{Route{"GET", org + "/events", Org, domain.ActionAuditRead, false, domain.ScopeEventsRead}, s.listEvents},
		{Route{"GET", org + "/audit-chain", Org, domain.ActionAuditRead, false, domain.ScopeEventsRead}, s.getAuditChain},
		{Route{"GET", auditChainKeysPath, Public, "", false, ""}, s.getAuditChainKeys},
		{Route{"GET", org + "/service-accounts", Org, domain.ActionRead, false, ""}, s.listServiceAccounts},
		{Route{"POST", org + "/service-accounts", Org, domain.ActionServiceAccountsManage, false, ""}, s.createServiceAccount},
		{Route{"GET", org + "/service-accounts/:service_account_id", Org, domain.ActionRead, false, ""}, s.getServiceAccount},
		{Route{"PATCH", org + "/service-accounts/:service_account_id", Org, domain.ActionServiceAccountsManage, false, ""}, s.updateServiceAccount},
		{Route{"DELETE", org + "/service-accounts/:service_account_id", Org, domain.ActionServiceAccountsManage, false, ""}, s.deleteServiceAccount},
		{Route{"POST", org + "/service-accounts/:service_account_id/take-over", Org, domain.ActionServiceAccountsManage, false, ""}, s.takeOverServiceAccount},
		{Route{"POST", org + "/service-accounts/:service_account_id/tokens", Org, domain.ActionServiceAccountsManage, false, ""}, s.mintServiceToken},
		{Route{"DELETE", org + "/service-accounts/:service_account_id/tokens/:token_id", Org, domain.ActionServiceAccountsManage, false, ""}, s.revokeServiceToken},
		{Route{"GET", v1 + "/openapi.json", Public, "", false, ""}, s.openAPIJSON},
		// Billing on Stripe (SPEC §10); every route answers 404 when it is off.
		{Route{"GET", org + "/billing", Org, domain.ActionBillingRead, false, ""}, s.getBilling},
		{Route{"POST", org + "/billing/checkout", Org, domain.ActionBillingManage, false, ""}, s.startCheckout},
		{Route{"POST", org + "/billing/portal", Org, domain.ActionBillingManage, false, ""}, s.openPortal},
		{Route{"GET", org + "/invoices", Org, domain.ActionBillingRead, false, ""}, s.listInvoices},
		{Route{"POST", stripeWebhookPath, Public, "", false, ""}, s.stripeWebhook},
	}
	// An organisation's audit streams carry its whole trail out.
	const streams, stream = org + "/audit-streams", org + "/audit-streams/:stream_id"
	for _, r := range []struct {
		method, path string
		handle       func(*fiber.Ctx, *caller) error
	}{
		{"POST", streams, s.createStream}, {"GET", streams, s.listStreams}, {"GET", stream, s.getStream},
		{"PATCH", stream, s.updateStream}, {"DELETE", stream, s.deleteStream}, {"POST", stream + "/replay", s.replayStream},
		{"POST", stream + "/test", s.testStream}, {"GET", stream + "/deliveries", s.listStreamDeliveries},
	} {
		routes = append(routes, route{Route{r.method, r.path, Org, domain.ActionAuditStreamsManage, false, domain.ScopeAuditStreamsManage}, r.handle})
	}
	// A tenant's lifetime is decided by whoever may decommission it.
	d := domain.MustTransition(domain.OpDecommission)
	routes = append(routes, route{Route{"POST", org + "/tenants/:tenant_id/lifetime", Org, d.Action, false, d.Scope}, s.setLifetime})
	// A tenant's transitions are the lifecycle table's rows.
	for _, t := range domain.Requested() {
		routes = append(routes, route{Route{"POST", transitionPath(org, t), Org, t.Action, false, t.Scope},
			s.limitTransitions(s.transition(t.Kind))})
	}
	return routes
}

// Routes lists the API's routes with their access rules.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.table() {
		out = append(out, r.Route)
	}
	return out
}

// errMFARequired holds a member without a second factor at the door of an
// organisation that requires one: they can still reach /me and enrol.
var errMFARequired = &domain.Error{Code: domain.CodeMFARequired,
	Message: "this organization requires two-step sign-in: turn on an authenticator app or a passkey for your account (/me) to go on"}

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
		authenticate := store.Authenticate
		if strings.HasPrefix(token, store.ServiceTokenPrefix) {
			authenticate = store.AuthenticateServiceAccount
		}
		p, err := authenticate(c.UserContext(), s.db, token, orgID)
		if errors.Is(err, store.ErrNoSession) {
			return s.authFailure(c)
		}
		if err != nil {
			return err
		}
		who := &caller{p}
		if p.ServiceAccount != nil {
			if s.routeOff(r.Route) && p.OrgID == orgID {
				return errNoRoute
			}
			if err := s.admitServiceAccount(c, r.Route, who); err != nil {
				return err
			}
			return s.handle(c, r, who)
		}
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
			// A feature that is off is absent for every member, whatever
			// their role.
			if s.routeOff(r.Route) {
				return errNoRoute
			}
			// The organisation's budget is charged only once the caller is
			// known to be a member: nobody else can spend it. Each member
			// has a share of it first, so no single member can spend what
			// the others need.
			limit := s.planLimit(c, p.Org.PlanID)
			if err := s.rateLimit(c, "member:"+p.MemberID, memberShare(limit)); err != nil {
				return err
			}
			if err := s.rateLimit(c, orgScopePrefix+p.OrgID, limit); err != nil {
				return err
			}
			if p.NeedsSecondFactor {
				return errMFARequired
			}
			self := r.SelfAllowed && c.Params("member_id") == p.MemberID
			if !self {
				if err := who.authorize(r.Action, r.Scope); err != nil {
					return err
				}
			}
			// An organisation being deleted is read, and restored, only.
			if p.Org.State != string(domain.OrgActive) && c.Method() != fiber.MethodGet && !orgLifecycleRoute(r.Route) {
				return domain.ErrOrgDeleting()
			}
		}
		return s.handle(c, r, who)
	}
}

// handle runs an admitted request: a mutation that no workflow keys is
// answered once per Idempotency-Key, unless its body is a secret.
func (s *Server) handle(c *fiber.Ctx, r route, who *caller) error {
	if err := queryErrors(c, r.Route); err != nil {
		return err
	}
	if c.Method() == fiber.MethodGet || workflowBacked(r.Route) || carriesSecret(r.Route) || billingLink(r.Route) {
		return r.handle(c, who)
	}
	return s.storedIdempotency(c, idempotencyScope(r.Access, who), func() error { return r.handle(c, who) })
}

// admitServiceAccount is the guard's rule for a service-account token: a
// route of its own organisation only (another organisation's is 404, as
// for a non-member); refused while no human answers for the account, or
// once the member who minted the token may no longer mint it (such a
// token is revoked in the transaction that removes or demotes them: this
// is the check behind it); then, after its share of the budget the
// organisation's service accounts spend together (serviceAccountsShare),
// the route's scope must be among the account's, and the route's action
// allowed both to the account's role and to its accountable human's role
// today.
func (s *Server) admitServiceAccount(c *fiber.Ctx, r Route, who *caller) error {
	sa := who.ServiceAccount
	if r.Access != Org || who.Org == nil {
		// Outside its organisation, the account's requests are charged as
		// a user's are outside theirs: probing other organisations costs
		// its own budget, not theirs.
		if err := s.rateLimit(c, "sa:"+sa.ID+":outside", s.userRPM); err != nil {
			return err
		}
		if r.Access != Org {
			return domain.Errorf(domain.CodeForbidden, "a service-account token is for the routes of its organization only")
		}
		return domain.Errorf(domain.CodeNotFound, "organization not found: %s", who.OrgID)
	}
	if sa.HumanMemberID == "" {
		return domain.Errorf(domain.CodeForbidden, "service account %s has no accountable member (they left or were removed): an owner or admin must take it over", sa.ID)
	}
	if !domain.Role(sa.MinterRole).MayMint(domain.Role(sa.Role)) {
		return domain.Errorf(domain.CodeForbidden, "the member who minted this token may no longer mint it (they left, were removed or lost the role): mint another")
	}
	limit := s.planLimit(c, who.Org.PlanID)
	pool := serviceAccountsShare(limit)
	for _, b := range []struct {
		scope string
		limit int
	}{{"sa:" + sa.ID, memberShare(pool)}, {"service-accounts:" + who.OrgID, pool}, {orgScopePrefix + who.OrgID, limit}} {
		if err := s.rateLimit(c, b.scope, b.limit); err != nil {
			return err
		}
	}
	if err := who.authorize(r.Action, r.Scope); err != nil {
		return err
	}
	if sa.LastUsedAt == nil || time.Since(*sa.LastUsedAt) > time.Minute {
		if err := store.TouchServiceToken(c.UserContext(), s.db, sa.TokenID, c.IP()); err != nil {
			return err
		}
	}
	return nil
}

// memberShare is the most of an organisation's budget one member may
// spend in a window; also the most of the service accounts' part one
// account may (no one principal spends what the others need).
func memberShare(orgLimit int) int {
	if orgLimit <= 0 {
		return 0
	}
	return max(orgLimit/2, 1)
}

// serviceAccountsShare is the most of an organisation's budget its
// service accounts may spend together in a window: half, so however many
// there are, the members always have the other half (the owner is never
// locked out of their own organisation by automation).
func serviceAccountsShare(orgLimit int) int { return memberShare(orgLimit) }

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
	if access == Org && who.ServiceAccount != nil {
		return "org:" + who.OrgID + "/sa:" + who.ServiceAccount.ID
	}
	if access == Org {
		return "org:" + who.OrgID + "/user:" + who.UserID
	}
	return "user:" + who.UserID + "/session:" + hex.EncodeToString(who.TokenHash[:8])
}

// workflowBacked reports whether the route's Idempotency-Key maps to a
// Temporal workflow or update id rather than to a stored answer.
func workflowBacked(r Route) bool {
	return (r.Method == fiber.MethodPost && strings.Contains(r.Path, "/tenants")) || orgLifecycleRoute(r)
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
