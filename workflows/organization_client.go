package workflows

import (
	"context"
	"errors"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// The payloads of an organisation's deletion, named here so that the API
// depends on the saga through this package alone.
type (
	OrgResult          = activities.OrgResult
	OrganizationRecord = activities.OrganizationRecord
	OrgOperationRecord = activities.OrgOperationRecord
)

// OrgDeletion is a deletion to request: the organisation, the idempotency
// key every attempt carries, the slug the person typed, and who they are.
type OrgDeletion struct {
	OrgID   string
	Key     string
	Confirm string
	Request activities.Request
}

// DeleteOrganization starts the organisation's deletion workflow and its
// delete update together (Update-With-Start), or reaches the running one,
// and waits, within the bound, for the deletion to be written or refused.
// The update id is the key's, so a retry, or the same request sent twice
// at once, is one deletion.
func (c *Client) DeleteOrganization(ctx context.Context, in OrgDeletion) (activities.OrgResult, error) {
	if err := c.SetUp(ctx); err != nil {
		return activities.OrgResult{}, err
	}
	workflowID := OrganizationWorkflowID(in.OrgID)
	params := OrganizationParams{OrgID: in.OrgID, Grace: c.saga.OrgDeletionGrace, ReservationTimeout: c.saga.ReservationTimeout,
		Revision: OrgRevisionCurrent}
	start := c.temporal.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflowID,
		TaskQueue:                c.taskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		// Each deletion is a run; a restore ends it, and a later deletion
		// starts another.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		Memo:                  map[string]any{"request_id": in.Request.RequestID, "requested_by": requestedBy(in.Request.Actor)},
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrOrgID.ValueSet(in.OrgID), SearchAttrSagaStatus.ValueSet(SagaRunning)),
	}, OrganizationWorkflowType, params)
	ctx, cancel := context.WithTimeout(ctx, c.Bound)
	defer cancel()
	var res activities.OrgResult
	handle, err := c.temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID: DeletionUpdateID(in.Key), UpdateName: UpdateDelete,
			Args:         []any{DeletionRequest{Confirm: in.Confirm, Request: in.Request}},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	return res, c.orgError(ctx, err)
}

// RestoreOrganization sends the restore update to the organisation's
// running deletion; the update id is the key's.
func (c *Client) RestoreOrganization(ctx context.Context, orgID, key string, req activities.Request) (activities.OrgResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Bound)
	defer cancel()
	var res activities.OrgResult
	handle, err := c.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: OrganizationWorkflowID(orgID), UpdateID: RestoreUpdateID(key), UpdateName: UpdateRestore,
		Args: []any{RestoreRequest{Request: req}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = handle.Get(ctx, &res)
	}
	return res, c.orgError(ctx, err)
}

// OrganizationStatus asks the organisation's deletion where it is.
func (c *Client) OrganizationStatus(ctx context.Context, orgID string) (OrganizationStatus, error) {
	var st OrganizationStatus
	v, err := c.temporal.QueryWorkflow(ctx, OrganizationWorkflowID(orgID), "", QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	return st, c.orgError(ctx, err)
}

// orgError is domainError for an organisation: a closed or missing
// workflow means no deletion runs.
func (c *Client) orgError(ctx context.Context, err error) error {
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return domain.Errorf(domain.CodeConflict, "the organization's deletion is not running")
	}
	return c.domainError(ctx, err)
}

// EndNow gives a tenant a lifetime that is over, so its saga
// decommissions it at once with no grace period (as an ephemeral tenant's
// end): how an organisation's deletion ends its tenants. The update id is
// the key's, so a retry is one change.
func (c *Client) EndNow(ctx context.Context, workflowID, key string, at time.Time, req activities.Request) error {
	_, err := c.SetLifetime(ctx, workflowID, key, LifetimeRequest{ExpiresAt: &at, Request: req})
	return err
}

var _ activities.TenantSagas = (*Client)(nil)

// OrganizationRecordOf is an organisation row as the saga's answers carry it.
func OrganizationRecordOf(o store.Organization) OrganizationRecord {
	return activities.OrganizationRecordOf(o)
}

// OrgOperationRecordOf is an organisation's operation as the saga's answers
// carry it.
func OrgOperationRecordOf(op store.OrgOperation) OrgOperationRecord {
	return activities.OrgOperationRecordOf(op)
}
