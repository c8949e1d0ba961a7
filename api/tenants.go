package api

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

var (
	tenantNamePattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{1,30}[a-z0-9])$`)
	environmentPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
)

type createTenantRequest struct {
	Name        string `json:"name" jsonschema:"maxLength=32,pattern=tenantName"`
	Environment string `json:"environment" jsonschema:"maxLength=32,pattern=environment"`
	ExpiresIn   *int64 `json:"expires_in,omitempty" jsonschema:"minimum=1,maximum=31622400" doc:"Makes the tenant ephemeral: seconds until its saga decommissions it, with no grace period (at most the server's bound, CP_TENANT_MAX_LIFETIME, 30 days by default). The plan's tenant quota counts it until then. Needs the power to decommission (tenant.destroy; a service account, tenants:decommission); POST /tenants/{tenant_id}/lifetime changes or clears it."`
	Region      string `json:"region,omitempty" jsonschema:"maxLength=20,pattern=region" doc:"Where the tenant's data lives: one of the installation's regions (GET /regions). Absent: the organisation's default region, or the installation's first. Fixed for the tenant's life; it is a label of its hostname (<name>-<organisation>.<region>.<domain>). An installation without regions refuses it."`
}

func (r *createTenantRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// tenantView is a tenant as the API shows it: a type of its own, so a
// database column or a workflow payload can change without changing the
// contract.
type tenantView struct {
	ID                 string          `json:"id"`
	OrgID              string          `json:"org_id"`
	Name               string          `json:"name"`
	Environment        string          `json:"environment"`
	State              string          `json:"state"`
	Hostname           string          `json:"hostname"`
	Region             *string         `json:"region" doc:"Where the tenant's data lives, fixed for its life; null for a tenant on the installation's own data plane (an installation without regions, or a tenant created before it had them)."`
	AdminURL           string          `json:"admin_url"`
	WorkflowID         string          `json:"workflow_id"`
	WorkflowURL        string          `json:"workflow_url,omitempty" doc:"The tenant's saga in the Temporal UI, for operators; absent when the server is not configured with its address (CP_TEMPORAL_UI_URL)."`
	CurrentOperationID *string         `json:"current_operation_id"`
	CreatedBy          string          `json:"created_by"`
	CreatedAt          time.Time       `json:"created_at"`
	UpdatedAt          time.Time       `json:"updated_at"`
	ExpiresAt          *time.Time      `json:"expires_at" doc:"When an ephemeral tenant is decommissioned by its saga; null for a tenant without a lifetime."`
	Actions            []domain.OpKind `json:"actions" doc:"The transitions the caller may start on the tenant now: those its state and running operation allow (restore only during a decommission's grace period) that the caller's role, or a service account's scopes and roles, permit. Each is POST /tenants/{tenant_id}/{action}. The saga decides for good: a transition offered here can still be refused when another request wins the race."`
	LifetimeEditable   bool            `json:"lifetime_editable" doc:"Whether the caller may give the tenant a new lifetime or clear it now (POST /tenants/{tenant_id}/lifetime): the power to decommission, and the tenant neither ended nor being decommissioned."`
}

// tenantView shows the tenant to the caller. running holds the operations
// running on the tenants being shown (store.RunningOperations); nil for an
// answer to a transition, which has just begun one.
func (s *Server) tenantView(t workflows.TenantRecord, who *caller, running map[string]store.Running) tenantView {
	now := tenantNow(t.State, t.CurrentOperationID, running)
	v := tenantView{ID: t.ID, OrgID: t.OrgID, Name: t.Name, Environment: t.Environment, State: t.State, Hostname: t.Hostname,
		AdminURL: "https://" + t.Hostname + "/admin", WorkflowID: t.WorkflowID, WorkflowURL: s.workflowURL(t.WorkflowID),
		CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt, ExpiresAt: t.ExpiresAt,
		Actions: actions(who, now, time.Now())}
	v.LifetimeEditable = lifetimeEditable(who, now)
	if t.Region != "" {
		region := t.Region
		v.Region = &region
	}
	if t.CurrentOperationID != "" {
		id := t.CurrentOperationID
		v.CurrentOperationID = &id
	}
	return v
}

// stepView is one step of an operation.
type stepView struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"` // pending, done, failed
	Attempts  int        `json:"attempts"`
	LastError string     `json:"last_error,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// operationView is a lifecycle operation as the API shows it.
type operationView struct {
	ID          string     `json:"id"`
	OrgID       string     `json:"org_id"`
	TenantID    string     `json:"tenant_id"`
	Kind        string     `json:"kind"`
	Status      string     `json:"status"`
	Steps       []stepView `json:"steps"`
	RequestedBy string     `json:"requested_by"`
	RequestID   string     `json:"request_id"`
	WorkflowID  string     `json:"workflow_id"`
	WorkflowURL string     `json:"workflow_url,omitempty" doc:"The saga that runs the operation, in the Temporal UI, for operators; absent when the server is not configured with its address (CP_TEMPORAL_UI_URL)."`
	UpdateID    string     `json:"update_id,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at"`
	// GraceEndsAt stays set once the grace period began, so a restored or
	// completed decommission still says when it would have ended.
	GraceEndsAt *time.Time `json:"grace_ends_at" doc:"For a decommission that has entered its grace period: when the period ends. The tenant can be restored until then, and its resources are destroyed no earlier. Null for other operations and before the grace period."`
}

func (s *Server) operationView(op workflows.OperationRecord) operationView {
	v := operationView{ID: op.ID, OrgID: op.OrgID, TenantID: op.TenantID, Kind: op.Kind, Status: op.Status, RequestedBy: op.RequestedBy,
		RequestID: op.RequestID, WorkflowID: op.WorkflowID, WorkflowURL: s.workflowURL(op.WorkflowID), UpdateID: op.UpdateID, StartedAt: op.StartedAt, EndedAt: op.EndedAt,
		GraceEndsAt: op.GraceEndsAt, Steps: make([]stepView, len(op.Steps))}
	for i, st := range op.Steps {
		v.Steps[i] = stepView{Name: st.Name, Status: st.Status, Attempts: st.Attempts, LastError: st.LastError, UpdatedAt: st.UpdatedAt}
	}
	return v
}

// workflowURL is the Temporal UI's page of a workflow, or empty when the
// server has no UI address.
func (s *Server) workflowURL(workflowID string) string {
	if s.temporalUIURL == "" || workflowID == "" {
		return ""
	}
	// A tenant's workflow id has slashes (tenant/<org>/<key>): escaped,
	// it stays one segment of the UI's path.
	return s.temporalUIURL + "/namespaces/" + url.PathEscape(s.namespace) + "/workflows/" + url.PathEscape(workflowID)
}

type lifecycleResponse struct {
	Tenant    tenantView    `json:"tenant"`
	Operation operationView `json:"operation"`
}

// writeLifecycle answers a lifecycle request with 202; an answer first
// made for another request is a replay.
func (s *Server) writeLifecycle(c *fiber.Ctx, who *caller, res workflows.OperationResult) error {
	if res.RequestID != requestID(c) {
		c.Set("Idempotent-Replayed", "true")
	}
	return writeData(c, fiber.StatusAccepted, lifecycleResponse{Tenant: s.tenantView(res.Tenant, who, nil), Operation: s.operationView(res.Operation)})
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

func (s *Server) request(c *fiber.Ctx, who *caller) workflows.Request {
	actor := domain.Actor{Type: "member", ID: who.MemberID, Email: who.Email}
	if sa := who.ServiceAccount; sa != nil {
		actor = domain.Actor{Type: "service_account", ID: sa.ID, Name: sa.Name,
			OnBehalfOf: &domain.Actor{Type: "member", ID: sa.HumanMemberID, Email: who.Email}, TokenID: sa.TokenID}
	}
	return workflows.Request{
		Actor:     actor,
		UserID:    who.UserID,
		RequestID: requestID(c), ClientAddr: c.IP(), UserAgent: userAgent(c),
	}
}

// createTenant starts the tenant's workflow with its provision update: the
// idempotency key is the workflow id, the update writes the tenant, and
// the name and quota checks answer at once.
func (s *Server) createTenant(c *fiber.Ctx, who *caller) error {
	var req createTenantRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	if !who.sees(req.Environment) {
		return domain.Errorf(domain.CodeForbidden, "this service account acts on tenants of environments %v only", who.environments())
	}
	if req.ExpiresIn != nil {
		if err := mayEnd(who); err != nil {
			return err
		}
	}
	in, err := s.creation(c, who, req)
	if err != nil {
		return err
	}
	if !who.seesRegion(in.Region) {
		return domain.Errorf(domain.CodeForbidden, "this service account acts on tenants of regions %v only", who.regions())
	}
	res, err := s.create(c.UserContext(), in)
	if err != nil {
		return err
	}
	return s.writeLifecycle(c, who, res)
}

// mayEnd refuses a caller who may not decommission: a lifetime ends the
// tenant with no grace period, so giving, changing or clearing one is
// deciding its end, which takes the decommission row's action and scope.
func mayEnd(who *caller) error {
	d := domain.MustTransition(domain.OpDecommission)
	err := who.authorize(d.Action, d.Scope)
	var why *domain.Error
	if errors.As(err, &why) {
		return domain.Errorf(domain.CodeForbidden, "a tenant with a lifetime is decommissioned when it ends, with no grace period: "+
			"setting one needs the power to decommission (%s)", why.Message)
	}
	return err
}

// lifetime bounds a lifetime in seconds to the server's maximum, as the
// end it gives from now.
func (s *Server) lifetime(seconds int64) (time.Duration, *time.Time, error) {
	if seconds > int64(s.tenantMaxLifetime/time.Second) {
		return 0, nil, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: []domain.FieldError{{Field: "expires_in",
			Message: fmt.Sprintf("at most %d seconds", int64(s.tenantMaxLifetime/time.Second))}}}
	}
	d := time.Duration(seconds) * time.Second
	at := time.Now().UTC().Add(d).Truncate(time.Microsecond)
	return d, &at, nil
}

// creation is the tenant a request asks for: its lifetime within the
// server's bound, its idempotency key and hostname, and who asks.
func (s *Server) creation(c *fiber.Ctx, who *caller, req createTenantRequest) (workflows.Create, error) {
	region, err := s.regionFor(who, req.Region)
	if err != nil {
		return workflows.Create{}, err
	}
	in := workflows.Create{OrgID: who.OrgID, Name: req.Name, Environment: req.Environment, Region: region, RegionChosen: req.Region != "",
		Hostname: tenantHostname(req.Name, who.Org.Slug, region, s.domainBase), Request: s.request(c, who)}
	if req.ExpiresIn != nil {
		if in.Lifetime, in.ExpiresAt, err = s.lifetime(*req.ExpiresIn); err != nil {
			return in, err
		}
	}
	in.Key, err = idempotencyKey(c)
	return in, err
}

// create answers a creation: the original answer for its own first
// request, the same answer for a retry (from the rows the creation wrote,
// one indexed read instead of a round trip through Temporal, once they
// exist), and 422 for another request that reuses the key.
func (s *Server) create(ctx context.Context, in workflows.Create) (workflows.OperationResult, error) {
	workflowID := workflows.WorkflowID(in.OrgID, in.Key)
	ans, found, err := store.CreatedTenant(ctx, s.db, workflowID)
	if err != nil {
		return workflows.OperationResult{}, err
	}
	res := workflows.ResultOf(ans)
	if !found {
		res, err = s.tenants.CreateTenant(ctx, in)
		if errors.Is(err, workflows.ErrEnded) {
			// The key's workflow has ended, with its tenant written.
			if ans, found, err = store.CreatedTenant(ctx, s.db, workflowID); err == nil && !found {
				err = domain.Errorf(domain.CodeConflict, "Idempotency-Key %s was used by a creation that did not complete", in.Key)
			}
			res = workflows.ResultOf(ans)
		}
		if err != nil {
			return workflows.OperationResult{}, err
		}
	}
	if res.Tenant.Name != in.Name || res.Tenant.Environment != in.Environment || (in.RegionChosen && res.Tenant.Region != in.Region) || !sameLifetime(in, res.Tenant) {
		return workflows.OperationResult{}, domain.Errorf(domain.CodeIdempotencyKeyReused, "Idempotency-Key %s was used for another request", in.Key)
	}
	return res, nil
}

// sameLifetime reports whether a creation's lifetime is the one the tenant
// was created with (for a tenant created before lifetimes were kept,
// whether both have one).
func sameLifetime(in workflows.Create, t workflows.TenantRecord) bool {
	if t.LifetimeSeconds != nil {
		return in.ExpiresAt != nil && int64(in.Lifetime/time.Second) == *t.LifetimeSeconds
	}
	return (in.ExpiresAt != nil) == (t.ExpiresAt != nil)
}

type lifetimeRequest struct {
	ExpiresIn *int64 `json:"expires_in" jsonschema:"minimum=1,maximum=31622400,nullable" doc:"Seconds from now until the tenant's saga decommissions it, with no grace period (at most CP_TENANT_MAX_LIFETIME); null: the tenant lives on with no lifetime."`
}

func (r *lifetimeRequest) validate() []domain.FieldError {
	return nil // its schema says it all
}

// setLifetime gives a tenant a new end, or none: its saga writes it and
// restarts the tenant's clock. It takes the power to decommission.
func (s *Server) setLifetime(c *fiber.Ctx, who *caller) error {
	var req lifetimeRequest
	if err := decode(c, &req); err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	t, err := s.visibleTenant(c, who)
	if err != nil {
		return err
	}
	if domain.State(t.State).Ended() {
		return domain.Errorf(domain.CodeConflict, "the tenant is %s: it has no lifetime to change", t.State)
	}
	var at *time.Time
	if req.ExpiresIn != nil {
		if _, at, err = s.lifetime(*req.ExpiresIn); err != nil {
			return err
		}
		// A lifetime schedules a decommission with no grace period.
		began := func() (bool, error) {
			return store.LifetimeChanged(c.UserContext(), s.db, t.WorkflowID, workflows.LifetimeUpdateID(key))
		}
		if err := s.requireRecentAuthUnless(who, began); err != nil {
			return err
		}
	}
	rec, err := s.tenants.SetLifetime(c.UserContext(), t.WorkflowID, key, workflows.LifetimeRequest{ExpiresAt: at, Request: s.request(c, who)})
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, s.tenantView(rec, who, nil))
}

// transition asks the tenant's workflow for an operation; the idempotency
// key is the update id, so it runs at most once.
func (s *Server) transition(kind domain.OpKind) func(*fiber.Ctx, *caller) error {
	return func(c *fiber.Ctx, who *caller) error {
		key, err := idempotencyKey(c)
		if err != nil {
			return err
		}
		t, err := s.visibleTenant(c, who)
		if err != nil {
			return err
		}
		// A retry of a request whose operation has ended is answered from
		// Postgres: the workflow keeps only recent answers across runs.
		if res, ok, err := s.answeredBefore(c, t, kind, key); err != nil || ok {
			if err != nil {
				return err
			}
			return s.writeLifecycle(c, who, res)
		}
		if domain.State(t.State).Ended() {
			return domain.Errorf(domain.CodeConflict, "cannot %s a tenant that is %s", kind, t.State)
		}
		if kind == domain.OpDecommission {
			began := func() (bool, error) { return s.transitionBegan(c, t, kind, key) }
			if err := s.requireRecentAuthUnless(who, began); err != nil {
				return err
			}
		}
		res, err := s.tenants.Transition(c.UserContext(), t.WorkflowID, kind, key, s.request(c, who))
		if err != nil {
			return err
		}
		return s.writeLifecycle(c, who, res)
	}
}

// transitionBegan reports whether an attempt of the transition with the
// key began an operation (running or ended): the workflow answers a retry
// from it and starts nothing.
func (s *Server) transitionBegan(c *fiber.Ctx, t store.Tenant, kind domain.OpKind, key string) (bool, error) {
	_, _, err := store.AnsweredOperation(c.UserContext(), s.db, t.ID, t.WorkflowID, workflows.TransitionUpdateID(kind, key), false)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// answeredBefore finds the ended operation an earlier attempt of the
// transition began (a restore's, the decommission it called off), as it is
// now. A running one is the workflow's to answer.
func (s *Server) answeredBefore(c *fiber.Ctx, t store.Tenant, kind domain.OpKind, key string) (workflows.OperationResult, bool, error) {
	op, requestID, err := store.AnsweredOperation(c.UserContext(), s.db, t.ID, t.WorkflowID, workflows.TransitionUpdateID(kind, key), kind == domain.OpRestore)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !domain.OpStatus(op.Status).Ended()) {
		return workflows.OperationResult{}, false, nil
	}
	if err != nil {
		return workflows.OperationResult{}, false, err
	}
	return workflows.OperationResult{Tenant: workflows.TenantRecordOf(t), Operation: workflows.OperationRecordOf(op), RequestID: requestID, Replayed: true}, true, nil
}

func (s *Server) listTenants(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	state := c.Query("state")
	if state != "" && !slices.Contains(domain.States, domain.State(state)) {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters",
			FieldErrors: []domain.FieldError{{Field: "state", Message: "one of provisioning, active, suspended, decommissioning, decommissioned, failed"}}}
	}
	rows, err := store.ListTenants(c.UserContext(), s.db, who.OrgID, state, who.environments(), who.regions(), after, limit)
	if err != nil {
		return err
	}
	var current []string
	for _, t := range rows {
		if t.CurrentOperationID != nil {
			current = append(current, *t.CurrentOperationID)
		}
	}
	running, err := store.RunningOperations(c.UserContext(), s.db, current)
	if err != nil {
		return err
	}
	views := make([]tenantView, len(rows))
	for i, t := range rows {
		views[i] = s.tenantView(workflows.TenantRecordOf(t), who, running)
	}
	return writePage(c, views, limit, func(v tenantView) store.Keyset { return store.Keyset{CreatedAt: v.CreatedAt, ID: v.ID} })
}

// visibleTenant is the route's {tenant_id} as the caller may see it: a
// tenant of an environment outside a service account's scope is not found.
func (s *Server) visibleTenant(c *fiber.Ctx, who *caller) (store.Tenant, error) {
	t, err := store.TenantByID(c.UserContext(), s.db, who.OrgID, c.Params("tenant_id"))
	if err == nil && (!who.sees(t.Environment) || !who.seesRegion(t.Region)) {
		return store.Tenant{}, domain.Errorf(domain.CodeNotFound, "tenant not found: %s", clipParam(c.Params("tenant_id")))
	}
	return t, err
}

func (s *Server) getTenant(c *fiber.Ctx, who *caller) error {
	t, err := s.visibleTenant(c, who)
	if err != nil {
		return err
	}
	var current []string
	if t.CurrentOperationID != nil {
		current = append(current, *t.CurrentOperationID)
	}
	running, err := store.RunningOperations(c.UserContext(), s.db, current)
	if err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, s.tenantView(workflows.TenantRecordOf(t), who, running))
}

// listOperations is the saga status view: each operation with its steps,
// attempts and last error, who started it and when.
func (s *Server) listOperations(c *fiber.Ctx, who *caller) error {
	after, limit, err := page(c)
	if err != nil {
		return err
	}
	t, err := s.visibleTenant(c, who)
	if err != nil {
		return err
	}
	rows, err := store.ListOperations(c.UserContext(), s.db, t.ID, after, limit)
	if err != nil {
		return err
	}
	views := make([]operationView, len(rows))
	for i, op := range rows {
		views[i] = s.operationView(workflows.OperationRecordOf(op))
	}
	return writePage(c, views, limit, func(o operationView) store.Keyset { return store.Keyset{CreatedAt: o.StartedAt, ID: o.ID} })
}
