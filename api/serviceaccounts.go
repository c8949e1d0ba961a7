package api

import (
	"fmt"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Service accounts: automation in an organisation with a controlled blast
// radius. Each has a role no higher than its creator's, scopes narrower
// than the role, optionally a set of environments, and a member who
// answers for it; its tokens expire, two may be valid at once, and each is
// revocable at once. docs/security.md says how the guard decides.

const (
	maxServiceAccountEnvironments = 20
	minServiceTokenTTL            = time.Minute
)

// serviceAccountFields are the fields a creation sets and a change may.
type serviceAccountFields struct {
	Name         *string      `json:"name,omitempty"`
	Role         *domain.Role `json:"role,omitempty" doc:"No higher than the role of the member who sets it."`
	Environments *[]string    `json:"environments,omitempty" doc:"Environments of the tenants the account may see and act on; empty: every environment."`
	Scopes       *[]string    `json:"scopes,omitempty" doc:"What the account may do: organization:read, members:read, tenants:read, tenants:create, tenants:suspend, tenants:resume, tenants:decommission, tenants:restore, events:read, audit-streams:manage."`
}

func (r *serviceAccountFields) check(fe *fields) {
	if r.Name != nil {
		var p string
		if *r.Name, p = domain.DisplayName(*r.Name, 100); p != "" {
			fe.add("name", p)
		}
	}
	if r.Role != nil && !r.Role.Valid() {
		fe.add("role", "one of owner, admin, developer, viewer")
	}
	if r.Environments != nil {
		envs := *r.Environments
		bad := len(envs) > maxServiceAccountEnvironments
		for i, e := range envs {
			bad = bad || !environmentPattern.MatchString(e) || slices.Contains(envs[:i], e)
		}
		if bad {
			fe.add("environments", fmt.Sprintf("at most %d distinct environments such as ci or staging", maxServiceAccountEnvironments))
		}
	}
	if r.Scopes != nil {
		bad := len(*r.Scopes) == 0
		for i, s := range *r.Scopes {
			bad = bad || !domain.Scope(s).Valid() || slices.Contains((*r.Scopes)[:i], s)
		}
		if bad {
			fe.add("scopes", "one or more distinct scopes of: organization:read, members:read, tenants:read, tenants:create, tenants:suspend, tenants:resume, tenants:decommission, tenants:restore, events:read, audit-streams:manage")
		}
	}
}

type createServiceAccountRequest struct {
	serviceAccountFields
	TokenExpiresIn int64 `json:"token_expires_in" doc:"Seconds until the first token expires: required, at least 60, at most the server's bound (CP_SERVICE_TOKEN_MAX_TTL, 90 days by default)."`
}

func (r *createServiceAccountRequest) validate() []domain.FieldError {
	var fe fields
	for field, missing := range map[string]bool{"name": r.Name == nil, "role": r.Role == nil, "scopes": r.Scopes == nil} {
		if missing {
			fe.add(field, "required")
		}
	}
	r.check(&fe)
	if r.TokenExpiresIn <= 0 {
		fe.add("token_expires_in", "required: seconds until the token expires")
	}
	return fe
}

type updateServiceAccountRequest struct {
	serviceAccountFields
}

func (r *updateServiceAccountRequest) validate() []domain.FieldError {
	var fe fields
	if r.Name == nil && r.Role == nil && r.Environments == nil && r.Scopes == nil {
		fe.add("name", "give name, role, environments or scopes")
	}
	r.check(&fe)
	return fe
}

type mintTokenRequest struct {
	ExpiresIn int64 `json:"expires_in" doc:"Seconds until the token expires: required, at least 60, at most the server's bound."`
}

func (r *mintTokenRequest) validate() []domain.FieldError {
	var fe fields
	if r.ExpiresIn <= 0 {
		fe.add("expires_in", "required: seconds until the token expires")
	}
	return fe
}

// tokenTTL checks a requested expiry against the server's bounds.
func (s *Server) tokenTTL(field string, seconds int64) (time.Duration, error) {
	ttl := time.Duration(seconds) * time.Second
	if seconds > int64(s.tokenMaxTTL/time.Second) || ttl < minServiceTokenTTL {
		return 0, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: []domain.FieldError{{Field: field,
			Message: fmt.Sprintf("from %d to %d seconds", int64(minServiceTokenTTL/time.Second), int64(s.tokenMaxTTL/time.Second))}}}
	}
	return ttl, nil
}

// createdServiceAccount is the answer to a creation or a new token: the
// token itself, shown this once.
type createdServiceAccount struct {
	ServiceAccount store.ServiceAccountView `json:"service_account"`
	Token          string                   `json:"token" doc:"The token (cps_…), shown this once; only its hash is kept. Empty in a retry's answer (Idempotent-Replayed: true): revoke the token by its id and mint another."`
}

type mintedToken struct {
	store.ServiceTokenView
	Token string `json:"token" doc:"The token (cps_…), shown this once; only its hash is kept. Empty in a retry's answer (Idempotent-Replayed: true): revoke the token by its id and mint another."`
}

// notAbove refuses a role above the caller's own.
func notAbove(role domain.Role, who *caller) error {
	if !role.AtMost(who.role()) {
		return domain.Errorf(domain.CodeForbidden, "a service account's role (%s) cannot be higher than yours (%s)", role, who.Role)
	}
	return nil
}

// mayManage refuses a change to an account whose role is above the
// caller's: an admin does not steer an owner's automation.
func mayManage(who *caller) func(store.ServiceAccount) error {
	return func(sa store.ServiceAccount) error { return notAbove(domain.Role(sa.Role), who) }
}

func (s *Server) createServiceAccount(c *fiber.Ctx, who *caller) error {
	var req createServiceAccountRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ttl, err := s.tokenTTL("token_expires_in", req.TokenExpiresIn)
	if err != nil {
		return err
	}
	if err := notAbove(*req.Role, who); err != nil {
		return err
	}
	// A creation mints the account's first token.
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	me, err := store.MemberByID(c.UserContext(), s.db, who.OrgID, who.MemberID)
	if err != nil {
		return err
	}
	in := store.NewServiceAccount{OrgID: who.OrgID, Name: *req.Name, Role: *req.Role, Scopes: *req.Scopes, Accountable: me, TokenTTL: ttl}
	if req.Environments != nil {
		in.Environments = *req.Environments
	}
	v, token, err := store.CreateServiceAccount(c.UserContext(), s.db, in, s.eventBase(c, who))
	if err != nil {
		return err
	}
	if err := keepForRetries(c, createdServiceAccount{ServiceAccount: v}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, createdServiceAccount{ServiceAccount: v, Token: token})
}

func (s *Server) listServiceAccounts(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListServiceAccounts(c.UserContext(), s.db, who.OrgID, after, limit)
	if err != nil {
		return err
	}
	return writePage(c, rows, limit, func(v store.ServiceAccountView) store.Keyset { return store.Keyset{CreatedAt: v.CreatedAt, ID: v.ID} })
}

func (s *Server) getServiceAccount(c *fiber.Ctx, who *caller) error {
	v, err := store.ServiceAccountByID(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

func (s *Server) updateServiceAccount(c *fiber.Ctx, who *caller) error {
	var req updateServiceAccountRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Role != nil {
		if err := notAbove(*req.Role, who); err != nil {
			return err
		}
	}
	ch := store.ServiceAccountChange{Name: req.Name, Role: req.Role, Environments: req.Environments, Scopes: req.Scopes}
	v, err := store.ChangeServiceAccount(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"), ch, mayManage(who), "service_account.updated", s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

// takeOverServiceAccount makes the caller the account's accountable human:
// how an account whose human left works again, or changes hands.
func (s *Server) takeOverServiceAccount(c *fiber.Ctx, who *caller) error {
	me, err := store.MemberByID(c.UserContext(), s.db, who.OrgID, who.MemberID)
	if err != nil {
		return err
	}
	v, err := store.ChangeServiceAccount(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"),
		store.ServiceAccountChange{TakeOver: &me}, mayManage(who), "service_account.taken_over", s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

func (s *Server) deleteServiceAccount(c *fiber.Ctx, who *caller) error {
	v, err := store.DeleteServiceAccount(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"), mayManage(who), s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}

// mintServiceToken adds a token (rotation: mint, deploy, revoke the old);
// minting needs a recent authentication, as creating an account does.
func (s *Server) mintServiceToken(c *fiber.Ctx, who *caller) error {
	var req mintTokenRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	ttl, err := s.tokenTTL("expires_in", req.ExpiresIn)
	if err != nil {
		return err
	}
	minter := store.MemberView{ID: who.MemberID, OrgID: who.OrgID, UserID: who.UserID, Email: who.Email}
	check := func(sa store.ServiceAccount) error {
		if err := mayManage(who)(sa); err != nil {
			return err
		}
		return s.requireRecentAuth(who)
	}
	v, token, err := store.MintServiceToken(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"), minter, ttl, check, s.eventBase(c, who))
	if err != nil {
		return err
	}
	if err := keepForRetries(c, mintedToken{ServiceTokenView: v}); err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, mintedToken{ServiceTokenView: v, Token: token})
}

func (s *Server) revokeServiceToken(c *fiber.Ctx, who *caller) error {
	v, err := store.RevokeServiceToken(c.UserContext(), s.db, who.OrgID, c.Params("service_account_id"), c.Params("token_id"), s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, v)
}
