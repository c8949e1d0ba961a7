package api

import (
	"cmp"
	"slices"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

type orgView struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
	Plan string `json:"plan"`
	Role string `json:"role,omitempty"`
	// Permissions are the actions the caller's role allows here, so a
	// client can offer only what will be allowed (the server still checks).
	Permissions []domain.Action `json:"permissions"`
	// GrantableRoles, ServiceAccountRoles and ServiceAccountScopes are what
	// the caller may give members and invitations, and service accounts:
	// the server's own rules, so a client offers only what it will allow.
	GrantableRoles       []domain.Role  `json:"grantable_roles" doc:"The roles the caller may give a member or an invitation, and the roles of members it may change or remove (empty without members.manage; owner only with owners.manage)."`
	ServiceAccountRoles  []domain.Role  `json:"service_account_roles" doc:"The roles the caller may give a service account (at most its own; empty without service_accounts.manage); it may change only accounts whose role is listed."`
	ServiceAccountScopes []domain.Scope `json:"service_account_scopes" doc:"Every scope a service account may hold."`
	// TenantDomain is the domain its tenants are served under: a tenant
	// is at <name>-<slug>.<tenant_domain>, so a client can show the
	// hostname a tenant will get before creating it.
	TenantDomain string `json:"tenant_domain"`
	// DefaultRegion is where its new tenants live unless a creation
	// chooses.
	DefaultRegion *string `json:"default_region" doc:"The region new tenants live in when a creation names none; null in an installation without regions."`
	// RequireMFA: members without a second factor are held at the door.
	RequireMFA bool            `json:"require_mfa" doc:"Members without a second factor get 403 MFA_REQUIRED on this organisation's routes until they enrol one; service accounts are not affected."`
	State      domain.OrgState `json:"state" doc:"deleting: its deletion was asked for; until deletion_due_at it can be restored (POST /organizations/{org_id}/restore, owners), its tenants are suspended, its service-account tokens and invitations do not work, and every change but a restore answers 409: permissions then lists only read, audit.read and (owners) organization.delete, and its tenants offer no actions."`
	// DeletionGraceSeconds is how long a deletion asked for now could be
	// restored, so a client shows its due date before it is asked for.
	DeletionGraceSeconds int64 `json:"deletion_grace_seconds" doc:"How long after DELETE /organizations/{org_id} the organisation can still be restored (CP_ORG_DELETION_GRACE)."`
	// DeletionDueAt is when a deletion's grace period ends.
	DeletionDueAt *time.Time `json:"deletion_due_at,omitempty" doc:"While deleting: when its tenants are decommissioned and its personal data erased, for good."`
	CreatedAt     time.Time  `json:"created_at"`
	UpdatedAt     time.Time  `json:"updated_at"`
}

func (s *Server) newOrgView(o store.Organization, role string) orgView {
	r := domain.Role(role)
	perms, grantable, saRoles := domain.Permissions(r), r.Grantable(), r.ServiceAccountRoles()
	if o.State != "" && o.State != string(domain.OrgActive) {
		// Being deleted: read, and (owners) restore, only; the guard
		// refuses the rest.
		perms = slices.DeleteFunc(perms, func(a domain.Action) bool {
			return a != domain.ActionRead && a != domain.ActionAuditRead && a != domain.ActionOrganizationDelete
		})
		grantable, saRoles = []domain.Role{}, []domain.Role{}
	}
	return orgView{ID: o.ID, Slug: o.Slug, Name: o.Name, Plan: o.PlanID, Role: role, Permissions: perms,
		GrantableRoles: grantable, ServiceAccountRoles: saRoles, ServiceAccountScopes: domain.Scopes,
		TenantDomain: s.domainBase, DefaultRegion: s.defaultRegion(o), RequireMFA: o.RequireMFA, State: domain.OrgState(cmp.Or(o.State, string(domain.OrgActive))), DeletionDueAt: o.DeletionDueAt,
		DeletionGraceSeconds: int64(s.orgDeletionGrace / time.Second), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

func (s *Server) listOrganizations(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.OrgsOfUser(c.UserContext(), s.db, who.UserID, after.ID, limit)
	if err != nil {
		return err
	}
	views := make([]orgView, len(rows))
	for i, r := range rows {
		views[i] = s.newOrgView(r.Organization, r.Role)
	}
	return writePage(c, views, limit, func(o orgView) store.Keyset { return store.Keyset{ID: o.ID} })
}

// getOrganization answers from the row the guard read with the session.
func (s *Server) getOrganization(c *fiber.Ctx, who *caller) error {
	return writeData(c, fiber.StatusOK, s.newOrgView(*who.Org, who.Role))
}

type updateOrgRequest struct {
	Name          *string `json:"name,omitempty" jsonschema:"minLength=1,maxLength=100"`
	Plan          *string `json:"plan,omitempty" jsonschema:"minLength=1,maxLength=64,pattern=noControl"`
	RequireMFA    *bool   `json:"require_mfa,omitempty" doc:"true: members without a second factor get 403 MFA_REQUIRED here until they enrol one (owners only; the owner must have one; needs a recent authentication)"`
	DefaultRegion *string `json:"default_region,omitempty" jsonschema:"maxLength=20,pattern=region" doc:"Where new tenants live when a creation names no region: one of the installation's regions (GET /organizations/{org_id}/regions). Tenants already created stay where they are."`
}

func (updateOrgRequest) objectSchema(s *openapi3.Schema) { s.MinProps = 1 }

func (r *updateOrgRequest) validate() []domain.FieldError {
	var fe fields
	if r.Name != nil {
		var p string
		if *r.Name, p = domain.DisplayName(*r.Name, 100); p != "" {
			fe.add("name", p)
		}
	}
	return fe
}

// updateOrganization renames the organisation and, for an owner, changes
// its plan (with a recent authentication, when the plan is another); the
// audit event holds the before and after of what changed.
func (s *Server) updateOrganization(c *fiber.Ctx, who *caller) error {
	var req updateOrgRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if req.Plan != nil {
		if err := who.require(domain.ActionPlanChange); err != nil {
			return err
		}
		if s.billing != nil && *req.Plan != who.Org.PlanID {
			return errPlanManagedByBilling
		}
	}
	if req.RequireMFA != nil && *req.RequireMFA != who.Org.RequireMFA {
		if err := who.require(domain.ActionSecurityManage); err != nil {
			return err
		}
		if *req.RequireMFA {
			f, err := store.FactorsOf(c.UserContext(), s.db, who.UserID)
			if err != nil {
				return err
			}
			if !f.Any() {
				return domain.Errorf(domain.CodeConflict, "turn on a second factor for your own account (an authenticator app or a passkey) before requiring one of every member")
			}
		}
		if err := s.requireRecentAuth(who); err != nil {
			return err
		}
	}
	if req.DefaultRegion != nil {
		if err := s.knownRegions("default_region", *req.DefaultRegion); err != nil {
			return err
		}
	}
	ch := store.OrgChange{Name: req.Name, Plan: req.Plan, RequireMFA: req.RequireMFA, DefaultRegion: req.DefaultRegion, PlanCheck: func() error { return s.requireRecentAuth(who) }}
	o, err := store.UpdateOrganization(c.UserContext(), s.db, who.OrgID, ch, s.eventBase(c, who))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, s.newOrgView(o, who.Role))
}

// createOrgRequest is an organisation a customer asks for.
type createOrgRequest struct {
	Name string `json:"name" jsonschema:"minLength=1,maxLength=100"`
	Slug string `json:"slug" jsonschema:"maxLength=30,pattern=orgSlug" doc:"Names the organization in its tenants' hostnames (<tenant>-<slug>.<tenant_domain>): 3 to 30 of a-z, 0-9 and '-', not at either end; unique on the installation and never changed."`
}

func (r *createOrgRequest) check(fe *fields, prefix string) {
	var p string
	if r.Name, p = domain.DisplayName(r.Name, 100); p != "" {
		fe.add(prefix+"name", p)
	}
}

func (r *createOrgRequest) validate() []domain.FieldError {
	var fe fields
	r.check(&fe, "")
	return fe
}

// createOrganization makes another organisation, owned by the caller, on
// the free plan, unless the caller already belongs to as many as one
// person may.
func (s *Server) createOrganization(c *fiber.Ctx, who *caller) error {
	var req createOrgRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	org, m, err := store.CreateOrganization(c.UserContext(), s.db, who.UserID, req.Name, req.Slug, s.maxOrgsPerUser, s.eventBase(c, nil))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusCreated, s.newOrgView(org, m.Role))
}

// slugChecksPerMinute bounds the slug checks of one client address: a
// person typing needs a few, a crawler of slugs gets few.
const slugChecksPerMinute = 120

// slugView says whether a slug can name a new organisation.
type slugView struct {
	Slug      string `json:"slug"`
	Available bool   `json:"available" doc:"No organization has the slug now; the first to create one with it gets it (a sign-up holds nothing until its email is verified)."`
	// TenantDomain lets a client show the hostnames tenants will get.
	TenantDomain string `json:"tenant_domain" doc:"A tenant of an organization with this slug is at <tenant>-<slug>.<tenant_domain>."`
}

// getSlug says whether an organisation could be made with the slug, for a
// form to say so as the person types; each address may ask a few times a
// minute.
func (s *Server) getSlug(c *fiber.Ctx, _ *caller) error {
	slug := c.Params("slug")
	if p := domain.OrgSlugProblem(slug); p != "" {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid slug", FieldErrors: []domain.FieldError{{Field: "slug", Message: p}}}
	}
	if err := s.rateLimit(c, "slugs:"+c.IP(), slugChecksPerMinute); err != nil {
		return err
	}
	taken, err := store.SlugTaken(c.UserContext(), s.db, slug)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, slugView{Slug: slug, Available: !taken, TenantDomain: s.domainBase})
}
