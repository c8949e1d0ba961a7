package api

import (
	"crypto/subtle"
	"database/sql"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

type deleteOrgRequest struct {
	Confirm string `json:"confirm" jsonschema:"minLength=1,maxLength=64" doc:"The organisation's slug, typed exactly: the deletion is refused (400, field confirm) otherwise."`
}

func (r *deleteOrgRequest) validate() []domain.FieldError {
	return nil // its schema bounds it; the handler compares it with the slug
}

// orgOperationView is an organisation's own operation: a deletion or a
// restore.
type orgOperationView struct {
	ID     string           `json:"id"`
	Kind   domain.OrgOpKind `json:"kind"`
	Status string           `json:"status" doc:"running (or stuck, while a tenant's saga is stuck), succeeded, or cancelled (a deletion a restore called off)."`
	// DueAt, for a deletion, is when its grace period ends.
	DueAt       *time.Time `json:"due_at,omitempty" doc:"For a deletion: when its grace period ends, and its tenants are ended and the organisation's personal data erased."`
	RequestedBy string     `json:"requested_by" doc:"The id of the person who asked for it."`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	WorkflowID  string     `json:"workflow_id"`
	WorkflowURL string     `json:"workflow_url,omitempty" doc:"The organisation's saga in the Temporal UI, when the server knows its address."`
}

func (s *Server) orgOperationView(op workflows.OrgOperationRecord) orgOperationView {
	return orgOperationView{ID: op.ID, Kind: domain.OrgOpKind(op.Kind), Status: op.Status, DueAt: op.DueAt, RequestedBy: op.RequestedBy,
		StartedAt: op.StartedAt, EndedAt: op.EndedAt, WorkflowID: op.WorkflowID, WorkflowURL: s.workflowURL(op.WorkflowID)}
}

type orgLifecycleResponse struct {
	Organization orgView          `json:"organization"`
	Operation    orgOperationView `json:"operation"`
}

func (s *Server) writeOrgLifecycle(c *fiber.Ctx, who *caller, res workflows.OrgResult) error {
	if res.RequestID != requestID(c) {
		c.Set("Idempotent-Replayed", "true")
	}
	r := res.Organization
	o := store.Organization{ID: r.ID, Slug: r.Slug, Name: r.Name, PlanID: r.PlanID, State: r.State, RequireMFA: r.RequireMFA,
		DeletionDueAt: r.DeletionDueAt, DeletedAt: r.DeletedAt, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	return writeData(c, fiber.StatusAccepted, orgLifecycleResponse{Organization: s.newOrgView(o, who.Role), Operation: s.orgOperationView(res.Operation)})
}

// deleteOrganization asks for the organisation's deletion: its saga writes
// it (state deleting, due after CP_ORG_DELETION_GRACE) and answers at
// once. The idempotency key is the update id, so a retry, or the same
// request sent twice, is one deletion; a retry after the deletion began is
// answered from Postgres.
func (s *Server) deleteOrganization(c *fiber.Ctx, who *caller) error {
	var req deleteOrgRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	updateID := workflows.DeletionUpdateID(key)
	if res, ok, err := s.orgAnsweredBefore(c, updateID); err != nil || ok {
		if err != nil {
			return err
		}
		return s.writeOrgLifecycle(c, who, res)
	}
	if who.Org.State != string(domain.OrgActive) {
		return domain.ErrOrgDeleting()
	}
	if subtle.ConstantTimeCompare([]byte(req.Confirm), []byte(who.Org.Slug)) != 1 {
		return store.ConfirmSlugError()
	}
	if err := s.requireRecentAuth(who); err != nil {
		return err
	}
	res, err := s.tenants.DeleteOrganization(c.UserContext(), workflows.OrgDeletion{OrgID: who.OrgID, Key: key, Confirm: req.Confirm, Request: s.request(c, who)})
	if err != nil {
		return err
	}
	return s.writeOrgLifecycle(c, who, res)
}

// restoreOrganization calls off the organisation's deletion during its
// grace period: it is active again, its tenants suspended.
func (s *Server) restoreOrganization(c *fiber.Ctx, who *caller) error {
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	updateID := workflows.RestoreUpdateID(key)
	if res, ok, err := s.orgAnsweredBefore(c, updateID); err != nil || ok {
		if err != nil {
			return err
		}
		return s.writeOrgLifecycle(c, who, res)
	}
	if who.Org.State != string(domain.OrgDeleting) {
		return domain.Errorf(domain.CodeConflict, "the organization is not being deleted: there is nothing to restore")
	}
	res, err := s.tenants.RestoreOrganization(c.UserContext(), who.OrgID, key, s.request(c, who))
	if err != nil {
		return err
	}
	return s.writeOrgLifecycle(c, who, res)
}

// orgAnsweredBefore finds the operation an earlier attempt of the request
// wrote, with the organisation as it is now.
func (s *Server) orgAnsweredBefore(c *fiber.Ctx, updateID string) (workflows.OrgResult, bool, error) {
	orgID := c.Params("org_id")
	var op store.OrgOperation
	err := s.db.NewSelect().Model(&op).
		Where("org_id = ? AND workflow_id = ? AND update_id = ?", orgID, workflows.OrganizationWorkflowID(orgID), updateID).Scan(c.UserContext())
	if errors.Is(err, sql.ErrNoRows) {
		return workflows.OrgResult{}, false, nil
	}
	if err != nil {
		return workflows.OrgResult{}, false, err
	}
	o, err := store.OrgByID(c.UserContext(), s.db, orgID)
	if err != nil {
		return workflows.OrgResult{}, false, err
	}
	return workflows.OrgResult{Organization: workflows.OrganizationRecordOf(o), Operation: workflows.OrgOperationRecordOf(op),
		RequestID: op.RequestID, Replayed: true}, true, nil
}

// listOrgOperations lists the organisation's own operations, oldest first.
func (s *Server) listOrgOperations(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	rows, err := store.ListOrgOperations(c.UserContext(), s.db, who.OrgID, after, limit)
	if err != nil {
		return err
	}
	views := make([]orgOperationView, len(rows))
	for i, op := range rows {
		views[i] = s.orgOperationView(workflows.OrgOperationRecordOf(op))
	}
	return writePage(c, views, limit, func(o orgOperationView) store.Keyset { return store.Keyset{CreatedAt: o.StartedAt, ID: o.ID} })
}

// orgLifecycleRoute reports whether the route is one of the organisation's
// own lifecycle (deletion, restore): the routes that answer while it is
// being deleted, with their own rules.
func orgLifecycleRoute(r Route) bool {
	const org = "/api/v1/organizations/:org_id"
	return (r.Method == fiber.MethodDelete && r.Path == org) || (r.Method == fiber.MethodPost && r.Path == org+"/restore")
}
