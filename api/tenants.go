package api

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// workerBound is how long the synchronous part of a lifecycle request waits
// for a worker; past it the API answers 503 with Retry-After, and a retry
// with the same Idempotency-Key picks up the same workflow and update.
const workerBound = 5 * time.Second

var (
	tenantNamePattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{1,30}[a-z0-9])$`)
	environmentPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
)

type createTenantRequest struct {
	Name        string `json:"name"`
	Environment string `json:"environment"`
}

func (r *createTenantRequest) validate() []domain.FieldError {
	var fe fields
	if !tenantNamePattern.MatchString(r.Name) {
		fe.add("name", "a DNS label of 3 to 32 characters: a-z, 0-9 and '-', not at either end")
	}
	if !environmentPattern.MatchString(r.Environment) {
		fe.add("environment", "1 to 32 characters: a-z, 0-9 and '-' (e.g. prod, staging, uat)")
	}
	return fe
}

// tenantView is a tenant as the API shows it.
type tenantView struct {
	store.Tenant
	AdminURL string `json:"admin_url"`
}

func newTenantView(t store.Tenant) tenantView {
	return tenantView{Tenant: t, AdminURL: "https://" + t.Hostname + "/admin"}
}

type lifecycleResponse struct {
	Tenant    tenantView      `json:"tenant"`
	Operation store.Operation `json:"operation"`
}

// idempotencyKey returns the request's Idempotency-Key, or a fresh one
// when it has none.
func idempotencyKey(c *fiber.Ctx) (string, error) {
	key, err := requestKey(c)
	if err == nil && key == "" {
		key = domain.NewID("")
	}
	return key, err
}

func (s *Server) request(c *fiber.Ctx, who *caller) activities.Request {
	return activities.Request{
		Actor:     activities.Actor{Type: "member", ID: who.MemberID, Email: who.Email},
		UserID:    who.UserID,
		RequestID: requestID(c), ClientAddr: c.IP(), UserAgent: clip(c.Get(fiber.HeaderUserAgent), 512),
	}
}

// createTenant starts the tenant's workflow with its provision update
// (Update-With-Start): the idempotency key is the workflow id, the update
// writes the tenant, and the name and quota checks answer at once.
func (s *Server) createTenant(c *fiber.Ctx, who *caller) error {
	var req createTenantRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	workflowID := "tenant/" + who.OrgID + "/" + key
	// A retry of a creation that got its answer is answered from the rows
	// it wrote: one indexed read instead of a round trip through Temporal.
	if res, ok, err := s.createdBefore(c, workflowID); err != nil {
		return err
	} else if ok {
		return s.replayCreate(c, req, key, res)
	}
	params := workflows.TenantParams{
		TenantID: domain.NewID(domain.PrefixTenant), OrgID: who.OrgID, Name: req.Name, Environment: req.Environment,
		Hostname:        req.Name + "-" + who.Org.Slug + "." + s.domainBase,
		StepMaxAttempts: s.stepMaxAttempts, DecommissionGrace: s.decommissionGrace,
	}
	start := s.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                s.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A finished tenant's key stays used: a late retry must not create
		// a second tenant.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		Memo:                  map[string]any{"request_id": requestID(c), "requested_by": who.Email},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrOrgID.ValueSet(who.OrgID), workflows.SearchAttrTenantID.ValueSet(params.TenantID),
			workflows.SearchAttrTenantState.ValueSet(string(domain.StateProvisioning)), workflows.SearchAttrSagaStatus.ValueSet(workflows.SagaRunning)),
	}, workflows.TenantWorkflow, params)

	ctx, cancel := context.WithTimeout(c.UserContext(), workerBound)
	defer cancel()
	var res activities.ReserveResult
	handle, err := s.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: workflows.UpdateProvision, UpdateName: workflows.UpdateProvision,
			Args:         []any{workflows.ProvisionRequest{OperationID: domain.NewID(domain.PrefixOperation), Request: s.request(c, who)}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// The key's workflow has ended without a tenant of its own.
		if res, ok, err := s.createdBefore(c, workflowID); err != nil || ok {
			if err != nil {
				return err
			}
			return s.replayCreate(c, req, key, res)
		}
		return domain.Errorf(domain.CodeConflict, "Idempotency-Key %s was used by a creation that did not complete", key)
	} else if err != nil {
		return s.temporalError(c, err)
	}
	return s.replayCreate(c, req, key, res)
}

// createdBefore finds the tenant and provisioning operation a creation with
// this workflow id wrote, as the creation answered them: the tenant in
// provisioning, the operation running with its steps pending.
func (s *Server) createdBefore(c *fiber.Ctx, workflowID string) (activities.ReserveResult, bool, error) {
	var res activities.ReserveResult
	ctx := c.UserContext()
	err := s.db.NewSelect().Model(&res.Tenant).Where("workflow_id = ?", workflowID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return res, false, nil
	}
	if err != nil {
		return res, false, err
	}
	ops, err := store.ListOperations(ctx, s.db, res.Tenant.ID, store.Keyset{}, 1)
	if err != nil || len(ops) == 0 {
		return res, false, err
	}
	op := ops[0]
	res.Tenant.State, res.Tenant.CurrentOperationID, res.Tenant.UpdatedAt = string(domain.StateProvisioning), &op.ID, res.Tenant.CreatedAt
	names := make([]string, len(op.Steps))
	for i, st := range op.Steps {
		names[i] = st.Name
	}
	op.Status, op.Steps, op.EndedAt = string(domain.OpRunning), store.StepNames(names...), nil
	res.Operation = op
	return res, true, nil
}

// replayCreate answers a creation: the original answer for its own first
// request, the same answer marked replayed for a retry, and 422 for another
// request that reuses the key.
func (s *Server) replayCreate(c *fiber.Ctx, req createTenantRequest, key string, res activities.ReserveResult) error {
	if res.Tenant.Name != req.Name || res.Tenant.Environment != req.Environment {
		return domain.Errorf(domain.CodeIdempotencyKeyReused, "Idempotency-Key %s was used for another request", key)
	}
	if res.Operation.RequestID != requestID(c) {
		c.Set("Idempotent-Replayed", "true")
	}
	return writeData(c, fiber.StatusAccepted, lifecycleResponse{Tenant: newTenantView(res.Tenant), Operation: res.Operation})
}

// temporalError turns what Temporal answered into the API's errors: an
// update's refusal keeps its code, a missing worker is 503 to retry.
func (s *Server) temporalError(c *fiber.Ctx, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() != "" {
		switch code := domain.Code(appErr.Type()); code {
		case domain.CodeConflict, domain.CodeNotFound, domain.CodeBadRequest:
			return &domain.Error{Code: code, Message: appErr.Message()}
		}
	}
	var done *serviceerror.NotFound
	if errors.As(err, &done) {
		return domain.Errorf(domain.CodeConflict, "the tenant's lifecycle has ended; no operation can run on it")
	}
	var dl *serviceerror.DeadlineExceeded
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(c.UserContext().Err(), context.DeadlineExceeded) || errors.As(err, &dl) {
		c.Set(fiber.HeaderRetryAfter, "5")
		return domain.Errorf(domain.CodeUnavailable, "no worker answered within %s; retry with the same Idempotency-Key", workerBound)
	}
	return err
}

// transition asks the tenant's workflow for an operation; the idempotency
// key is the update id, so Temporal runs it at most once.
func (s *Server) transition(kind domain.OpKind) func(*fiber.Ctx, *caller) error {
	return func(c *fiber.Ctx, who *caller) error {
		key, err := idempotencyKey(c)
		if err != nil {
			return err
		}
		t, err := store.TenantByID(c.UserContext(), s.db, who.OrgID, c.Params("tenant_id"))
		if err != nil {
			return err
		}
		if t.State == string(domain.StateDecommissioned) || t.State == string(domain.StateFailed) {
			return domain.Errorf(domain.CodeConflict, "cannot %s a tenant that is %s", kind, t.State)
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), workerBound)
		defer cancel()
		opts := client.UpdateWorkflowOptions{
			WorkflowID: t.WorkflowID, UpdateID: string(kind) + "/" + key, UpdateName: workflows.UpdateTransition,
			Args:         []any{workflows.TransitionRequest{Kind: kind, OperationID: domain.NewID(domain.PrefixOperation), Request: s.request(c, who)}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		}
		var res activities.ReserveResult
		for attempt := 0; ; attempt++ {
			handle, err := s.temporal.UpdateWorkflow(ctx, opts)
			if err == nil {
				err = handle.Get(ctx, &res)
			}
			if err == nil {
				break
			}
			// An operation's last write is visible a moment before its
			// workflow moves on: when the database says nothing runs, the
			// workflow's "still running" is about to clear.
			if attempt < 20 && s.finishing(c, t.ID, err) {
				if serr := sleep(ctx, 25*time.Millisecond); serr == nil {
					continue
				}
			}
			return s.temporalError(c, err)
		}
		if res.Operation.RequestID != requestID(c) {
			c.Set("Idempotent-Replayed", "true")
		}
		return writeData(c, fiber.StatusAccepted, lifecycleResponse{Tenant: newTenantView(res.Tenant), Operation: res.Operation})
	}
}

// finishing reports whether err is the workflow's "operation … is running"
// while the tenant's row says no operation runs.
func (s *Server) finishing(c *fiber.Ctx, tenantID string, err error) bool {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != string(domain.CodeConflict) || !strings.Contains(appErr.Message(), "is running on this tenant") {
		return false
	}
	var current *string
	if qerr := s.db.NewSelect().Model((*store.Tenant)(nil)).Column("current_operation_id").Where("id = ?", tenantID).Scan(c.UserContext(), &current); qerr != nil {
		return false
	}
	return current == nil
}

func (s *Server) listTenants(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	state := c.Query("state")
	switch domain.State(state) {
	case "", domain.StateProvisioning, domain.StateActive, domain.StateSuspended, domain.StateDecommissioning, domain.StateDecommissioned, domain.StateFailed:
	default:
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters",
			FieldErrors: []domain.FieldError{{Field: "state", Message: "one of provisioning, active, suspended, decommissioning, decommissioned, failed"}}}
	}
	rows, err := store.ListTenants(c.UserContext(), s.db, who.OrgID, state, after, limit)
	if err != nil {
		return err
	}
	views := make([]tenantView, len(rows))
	for i, t := range rows {
		views[i] = newTenantView(t)
	}
	return writePage(c, views, limit, func(v tenantView) store.Keyset { return store.Keyset{CreatedAt: v.CreatedAt, ID: v.ID} })
}

func (s *Server) getTenant(c *fiber.Ctx, who *caller) error {
	t, err := store.TenantByID(c.UserContext(), s.db, who.OrgID, c.Params("tenant_id"))
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, newTenantView(t))
}

// listOperations is the saga status view: each operation with its steps,
// attempts and last error, who started it and when.
func (s *Server) listOperations(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	t, err := store.TenantByID(c.UserContext(), s.db, who.OrgID, c.Params("tenant_id"))
	if err != nil {
		return err
	}
	rows, err := store.ListOperations(c.UserContext(), s.db, t.ID, after, limit)
	if err != nil {
		return err
	}
	return writePage(c, rows, limit, func(o store.Operation) store.Keyset { return store.Keyset{CreatedAt: o.StartedAt, ID: o.ID} })
}
