package workflows

import (
	"context"
	"errors"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

// WakeStream signals the stream's workflow to look at its stream again,
// starting it if it is not running (SignalWithStart): how the API starts a
// stream it created and wakes one a person changed, and how the workers'
// notifier wakes one behind its chain. Idempotent: a workflow that runs
// takes one more wake, which coalesces with the others.
func (c *Client) WakeStream(ctx context.Context, streamID, orgID string) error {
	params := StreamParams{StreamID: streamID, OrgID: orgID, DeliveryQueue: StreamTaskQueue(c.taskQueue),
		SuspendAfter: c.Streams.SuspendAfter, Revision: StreamRevisionCurrent}
	_, err := c.temporal.SignalWithStartWorkflow(ctx, StreamWorkflowID(streamID), SignalWake, nil, client.StartWorkflowOptions{
		ID:        StreamWorkflowID(streamID),
		TaskQueue: c.taskQueue,
		// A stream deleted and its workflow ended: a late wake starts a
		// run that finds it deleted and ends.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(SearchAttrOrgID.ValueSet(orgID)),
	}, StreamWorkflowType, params)
	if err != nil {
		return c.domainError(ctx, err)
	}
	return nil
}

// EndStream wakes the workflow of a stream that was deleted, so it ends at
// once; a workflow that does not run has nothing to end.
func (c *Client) EndStream(ctx context.Context, streamID string) error {
	err := c.temporal.SignalWorkflow(ctx, StreamWorkflowID(streamID), "", SignalWake, nil)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return c.domainError(ctx, err)
}

// StreamStatus asks a stream's workflow where it is.
func (c *Client) StreamStatus(ctx context.Context, streamID string) (StreamStatus, error) {
	var st StreamStatus
	v, err := c.temporal.QueryWorkflow(ctx, StreamWorkflowID(streamID), "", QueryStatus)
	if err == nil {
		err = v.Get(&st)
	}
	return st, c.domainError(ctx, err)
}

// StreamTarget is where and how a stream delivers, its secret and
// credential opened with the key ring: what its deliveries and the API's
// test button send with.
func StreamTarget(s store.AuditStream, keys *seal.Ring) (auditstream.Target, error) {
	return activities.StreamTarget(s, keys)
}
