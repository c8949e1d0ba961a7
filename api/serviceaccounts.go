package api

import (
	"fmt"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// Service accounts: automation in an organisation with a controlled blast
// radius. Each has a role no higher than its creator's, scopes narrower
// than the role, optionally a set of environments, and a member who
// answers for it; its tokens expire, two may be valid at once, and each is
// revocable at once. docs/security.md says how the guard decides.

// minServiceTokenTTL is token_expires_in's and expires_in's minimum in
// the request schemas, checked again where a lifetime becomes a token.
const minServiceTokenTTL = time.Minute

// serviceAccountFields are the fields a creation sets and a change may.
type serviceAccountFields struct {
	Name         *string      `json:"name,omitempty" jsonschema:"minLength=1,maxLength=100"`
	Role         *domain.Role `json:"role,omitempty" doc:"No higher than the role of the member who sets it."`
	Environments *[]string    `json:"environments,omitempty" jsonschema:"maxItems=20,uniqueItems,itemMaxLength=32,itemPattern=environment" doc:"Environments of the tenants the account may see and act on; empty: every environment."`
	Regions      *[]string    `json:"regions,omitempty" jsonschema:"maxItems=50,uniqueItems,itemMaxLength=20,itemPattern=region" doc:"Regions of the tenants the account may see and act on (of GET /organizations/{org_id}/regions); empty: every region."`
	Scopes       *[]string    `json:"scopes,omitempty" jsonschema:"minItems=1,maxItems=10,uniqueItems" doc:"What the account may do."`
}

func (r *serviceAccountFields) check(fe *fields) {
	if r.Name != nil {
		var p string
		if *r.Name, p = domain.DisplayName(*r.Name, 100); p != "" {
			fe.add("name", p)
		}
	}
}

type createServiceAccountRequest struct {
	serviceAccountFields
	TokenExpiresIn int64 `json:"token_expires_in" jsonschema:"minimum=60,maximum=31622400" doc:"Seconds until the first token expires: required, at least 60, at most the server's bound (CP_SERVICE_TOKEN_MAX_TTL, 90 days by default)."`
}

// objectSchema: the fields an update may leave out, a creation needs.
func (createServiceAccountRequest) objectSchema(s *openapi3.Schema) {
	s.Required = append(s.Required, "name", "role", "scopes")
}

func (r *createServiceAccountRequest) validate() []domain.FieldError {
	var fe fields
	r.check(&fe)
	return fe
}

type updateServiceAccountRequest struct {
	serviceAccountFields
}

func (updateServiceAccountRequest) objectSchema(s *openapi3.Schema) { s.MinProps = 1 }

func (r *updateServiceAccountRequest) validate() []domain.FieldError {
	var fe fields
	r.check(&fe)
	return fe
}

type mintTokenRequest struct {
	ExpiresIn int64 `json:"expires_in" jsonschema:"minimum=60,maximum=31622400" doc:"Seconds until the token expires: required, at least 60, at most the server's bound (CP_SERVICE_TOKEN_MAX_TTL, 90 days by default)."`
}

func (r *mintTokenRequest) validate() []domain.FieldError {
	return nil // its schema bounds it; the server's maximum is tokenTTL's
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
	if req.Regions != nil {
		if err := s.knownRegions("regions", *req.Regions...); err != nil {
			return err
		}
		in.Regions = *req.Regions
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
	if req.Regions != nil {
		if err := s.knownRegions("regions", *req.Regions...); err != nil {
			return err
		}
	}
	ch := store.ServiceAccountChange{Name: req.Name, Role: req.Role, Environments: req.Environments, Regions: req.Regions, Scopes: req.Scopes}
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
