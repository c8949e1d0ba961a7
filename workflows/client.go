package workflows

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/domain"
)

// Client is how the API drives tenant workflows: workflow and update ids,
// start options, and Temporal's answers turned into domain errors. It is
// the only place outside the worker that calls Temporal for tenants.
type Client struct {
	temporal  client.Client
	namespace string
	taskQueue string
	saga      config.Saga
	// setUp is set once the namespace was seen with its search attributes.
	setUp atomic.Bool
	// Bound is how long a request waits for a worker; past it the answer
	// is UNAVAILABLE, and a retry with the same key finds the same
	// workflow and update.
	Bound time.Duration
	// Streams are the settings the audit streams' workflows it starts are
	// given (config.DefaultStreams unless set).
	Streams config.Streams
	// Billing is the settings the billing workflows it starts are given
	// (the grace).
	Billing config.Billing
}

// DefaultBound is how long the synchronous part of a lifecycle request
// waits for a worker.
const DefaultBound = 5 * time.Second

// NewClient returns a Client that starts tenant workflows of the namespace
// on the task queue with the saga settings.
func NewClient(tc client.Client, namespace, taskQueue string, saga config.Saga) *Client {
	return &Client{temporal: tc, namespace: namespace, taskQueue: taskQueue, saga: saga, Bound: DefaultBound, Streams: config.DefaultStreams(),
		Billing: config.Billing{Grace: config.DefaultBillingGrace}}
}

// ErrNotSetUp says that the namespace lacks the search attributes tenant
// workflows carry: `controlplane setup` has not run against it.
var ErrNotSetUp = &domain.Error{Code: domain.CodeUnavailable, RetryAfter: 5 * time.Second,
	Message: "the Temporal namespace is not set up for tenants yet (controlplane setup); retry shortly"}

// SetUp reports whether the namespace has the search attributes; once it
// has, the answer is kept.
func (c *Client) SetUp(ctx context.Context) error {
	if c.setUp.Load() {
		return nil
	}
	missing, err := MissingSearchAttributes(ctx, c.temporal, c.namespace)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return ErrNotSetUp
	}
	c.setUp.Store(true)
	return nil
}

// MissingSearchAttributes lists the tenant search attributes the namespace
// lacks, by name and type.
func MissingSearchAttributes(ctx context.Context, tc client.Client, namespace string) (map[string]enumspb.IndexedValueType, error) {
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return nil, fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range SearchAttributes() {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	return missing, nil
}

// WorkflowID is the workflow id of the tenant created with an idempotency
// key in an organisation.
func WorkflowID(orgID, key string) string {
	return "tenant/" + orgID + "/" + key
}

// ErrEnded says that the key's workflow ended with a tenant of its own,
// which the caller reads from the database.
var ErrEnded = errors.New("the creation's workflow has ended")

// TenantID is the id of the tenant a creation's workflow writes: derived
// from its workflow id, so every attempt of the request (and a workflow
// started again with the same id) names the same tenant.
func TenantID(workflowID string) string {
	return domain.DerivedID(domain.PrefixTenant, workflowID)
}

// TransitionUpdateID is the update id of a transition requested with an
// idempotency key: Temporal, the workflow and operations.update_id know a
// request's attempts by it.
func TransitionUpdateID(kind domain.OpKind, key string) string {
	return string(kind) + "/" + key
}

// Create is a tenant to create. Its id and its operation's are derived
// from the workflow id (WorkflowID of OrgID and Key), never minted per
// attempt.
type Create struct {
	OrgID       string
	Key         string
	Name        string
	Environment string
	Hostname    string
	Request     activities.Request
	// ExpiresAt makes the tenant ephemeral: its saga decommissions it then,
	// Lifetime after the request.
	ExpiresAt *time.Time
	Lifetime  time.Duration
	// Region is where the tenant's data plane is (empty: the
	// installation's own); RegionChosen says the request named it, so a
	// retry naming another is another request.
	Region       string
	RegionChosen bool
}

// CreateTenant starts the tenant's workflow and its provision update
// together (Update-With-Start) and waits, within the bound, for the
// tenant to be written or refused.
func (c *Client) CreateTenant(ctx context.Context, in Create) (activities.OperationResult, error) {
	if err := c.SetUp(ctx); err != nil {
		return activities.OperationResult{}, err
	}
	workflowID := WorkflowID(in.OrgID, in.Key)
	params := TenantParams{
		TenantID: TenantID(workflowID), OrgID: in.OrgID, Name: in.Name, Environment: in.Environment, Hostname: in.Hostname, Region: in.Region,
		StepMaxAttempts: c.saga.StepMaxAttempts, DecommissionGrace: c.saga.DecommissionGrace,
		ReservationTimeout: c.saga.ReservationTimeout, MaxOperationsPerRun: c.saga.MaxOperationsPerRun,
		Revision: RevisionCurrent,
	}
	if in.ExpiresAt != nil {
		params.Expiry = &Expiry{At: *in.ExpiresAt, Lifetime: in.Lifetime, For: in.Request.Actor, UserID: in.Request.UserID}
	}
	start := c.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// A key whose workflow ended with a tenant, or with a refusal,
		// stays used; one whose workflow failed before any tenant was
		// written may be used again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		Memo:                  map[string]any{"request_id": in.Request.RequestID, "requested_by": requestedBy(in.Request.Actor)},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			SearchAttrOrgID.ValueSet(in.OrgID), SearchAttrTenantID.ValueSet(params.TenantID),
			SearchAttrTenantState.ValueSet(string(domain.StateProvisioning)), SearchAttrSagaStatus.ValueSet(SagaRunning)),
	}, TenantWorkflow, params)

	ctx, cancel := context.WithTimeout(ctx, c.Bound)
	defer cancel()
	var res activities.OperationResult
	handle, err := c.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: UpdateProvision, UpdateName: UpdateProvision,
			Args:         []any{ProvisionRequest{Request: in.Request}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return res, c.ended(ctx, workflowID, in)
	}
	return res, c.domainError(ctx, err)
}

// ended answers a creation whose workflow has closed: the refusal it
// ended with, given again, or ErrEnded when it wrote a tenant.
func (c *Client) ended(ctx context.Context, workflowID string, in Create) error {
	var result TenantResult
	if err := c.temporal.GetWorkflow(ctx, workflowID, "").Get(ctx, &result); err != nil {
		return c.domainError(ctx, err)
	}
	rej := result.Rejection
	if rej == nil {
		return ErrEnded
	}
	if rej.Name != in.Name || rej.Environment != in.Environment {
		return domain.Errorf(domain.CodeIdempotencyKeyReused, "Idempotency-Key %s was used for another request", in.Key)
	}
	switch rej.Code {
	case domain.CodeConflict, domain.CodeNotFound, domain.CodeBadRequest:
		return &domain.Error{Code: rej.Code, Message: rej.Message}
	}
	return fmt.Errorf("creation %s refused: %s", workflowID, rej.Message)
}

// Transition asks a tenant's workflow for an operation. The update id is
// the kind and the idempotency key, so Temporal (and, across runs, the
// workflow) runs it at most once; the workflow derives the operation's id
// from it.
func (c *Client) Transition(ctx context.Context, workflowID string, kind domain.OpKind, key string, req activities.Request) (activities.OperationResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Bound)
	defer cancel()
	var res activities.OperationResult
	handle, err := c.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateID: TransitionUpdateID(kind, key), UpdateName: UpdateTransition,
		Args:         []any{TransitionRequest{Kind: kind, Request: req}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	return res, c.domainError(ctx, err)
}

// SetLifetime gives a tenant a new end (nil: none). The update id is the
// idempotency key's, so a retry in the same run changes it once.
func (c *Client) SetLifetime(ctx context.Context, workflowID, key string, r LifetimeRequest) (activities.TenantRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Bound)
	defer cancel()
	var res activities.TenantRecord
	handle, err := c.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateID: LifetimeUpdateID(key), UpdateName: UpdateLifetime,
		Args: []any{r}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	return res, c.domainError(ctx, err)
}

// domainError turns what Temporal answered into the API's errors: an
// update's refusal keeps its code, a closed workflow is a conflict, and no
// answer within the bound is UNAVAILABLE to retry.
func (c *Client) domainError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch code := domain.Code(appErr.Type()); code {
		case domain.CodeConflict, domain.CodeNotFound, domain.CodeBadRequest:
			return &domain.Error{Code: code, Message: appErr.Message()}
		}
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return domain.Errorf(domain.CodeConflict, "the tenant's lifecycle has ended; no operation can run on it")
	}
	if retryLater(err) {
		return &domain.Error{Code: domain.CodeUnavailable, RetryAfter: c.Bound,
			Message: "Temporal is briefly unavailable; retry with the same Idempotency-Key"}
	}
	var deadline *serviceerror.DeadlineExceeded
	var canceled *serviceerror.Canceled
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &deadline) || errors.As(err, &canceled) {
		return &domain.Error{Code: domain.CodeUnavailable, RetryAfter: c.Bound,
			Message: "no worker answered within " + c.Bound.String() + "; retry with the same Idempotency-Key"}
	}
	return err
}

// retryLater reports whether Temporal's answer means "not now": the
// server is unavailable or busy, the workflow cannot take the update yet
// (WorkflowNotReady), or the update was aborted before it was accepted
// (its workflow task failed, the server restarted). The request may not
// have reached the workflow; its retry with the same key finds what it
// began, if anything.
func retryLater(err error) bool {
	var (
		unavailable *serviceerror.Unavailable
		exhausted   *serviceerror.ResourceExhausted
		notReady    *serviceerror.WorkflowNotReady
		aborted     *serviceerror.Aborted
		multi       *serviceerror.MultiOperationAborted
		lost        *client.WorkflowUpdateServiceTimeoutOrCanceledError
	)
	return errors.As(err, &unavailable) || errors.As(err, &exhausted) || errors.As(err, &notReady) ||
		errors.As(err, &aborted) || errors.As(err, &multi) || errors.As(err, &lost)
}

// requestedBy names the requester in a workflow's memo: a member's email,
// or a service account's name and id.
func requestedBy(a domain.Actor) string {
	if a.Type == "service_account" {
		return a.Name + " (" + a.ID + ")"
	}
	return a.Email
}

// RegionServed reports whether a worker of the region polled its task
// queue within the last within.
func (c *Client) RegionServed(ctx context.Context, region string, within time.Duration) (bool, error) {
	resp, err := c.temporal.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
		Namespace:     c.namespace,
		TaskQueue:     &taskqueuepb.TaskQueue{Name: RegionTaskQueue(c.taskQueue, region), Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
		TaskQueueType: enumspb.TASK_QUEUE_TYPE_ACTIVITY,
	})
	if err != nil {
		return false, err
	}
	for _, p := range resp.GetPollers() {
		if t := p.GetLastAccessTime(); t != nil && time.Since(t.AsTime()) < within {
			return true, nil
		}
	}
	return false, nil
}
