package drift

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// Plane lists the data plane's resources by tenant id.
type Plane interface {
	All(ctx context.Context) (map[string]activities.Resources, error)
}

// Sources are the three places a snapshot is read from. The workflows
// compared are those of WorkflowType on TaskQueue in Namespace: one
// deployment's.
type Sources struct {
	DB           *bun.DB
	Temporal     client.Client
	Namespace    string
	TaskQueue    string
	WorkflowType string
	Plane        Plane
}

// Collect reads a snapshot. The order makes a change in flight look
// recent, never like drift: resources are read before the tenants (a
// resource is created after its tenant's row, so the row is seen), and
// workflows before the tenants (a workflow starts before its row is
// written). Compare's settle window then leaves out what is under way.
func Collect(ctx context.Context, src Sources) (Snapshot, error) {
	s := Snapshot{At: time.Now(), Closed: map[string]string{}}
	var err error
	if s.Resources, err = src.Plane.All(ctx); err != nil {
		return s, fmt.Errorf("data plane: %w", err)
	}
	if s.Workflows, err = runningWorkflows(ctx, src); err != nil {
		return s, fmt.Errorf("temporal: %w", err)
	}
	var rows []store.Tenant
	if err := src.DB.NewSelect().Model(&rows).Column("id", "org_id", "state", "workflow_id", "current_operation_id", "created_at", "updated_at").
		Order("id").Scan(ctx); err != nil {
		return s, fmt.Errorf("postgres: tenants: %w", err)
	}
	for _, r := range rows {
		t := Tenant{ID: r.ID, OrgID: r.OrgID, State: r.State, WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
		if r.CurrentOperationID != nil {
			t.CurrentOperationID = *r.CurrentOperationID
		}
		s.Tenants = append(s.Tenants, t)
	}
	var ops []store.Operation
	if err := src.DB.NewSelect().Model(&ops).Column("id", "tenant_id", "kind", "status", "started_at").
		Where("status IN (?)", bun.In([]domain.OpStatus{domain.OpRunning, domain.OpStuck})).Order("id").Scan(ctx); err != nil {
		return s, fmt.Errorf("postgres: operations: %w", err)
	}
	for _, o := range ops {
		s.Operations = append(s.Operations, Operation{ID: o.ID, TenantID: o.TenantID, Kind: o.Kind, Status: o.Status, StartedAt: o.StartedAt})
	}

	// What became of the workflows of live tenants that are not running.
	running := map[string]bool{}
	for _, w := range s.Workflows {
		running[w.ID] = true
	}
	for _, t := range s.Tenants {
		if ended(t.State) || running[t.WorkflowID] {
			continue
		}
		d, err := src.Temporal.DescribeWorkflowExecution(ctx, t.WorkflowID, "")
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			s.Closed[t.WorkflowID] = "not found"
		case err != nil:
			return s, fmt.Errorf("temporal: describe %s: %w", t.WorkflowID, err)
		default:
			s.Closed[t.WorkflowID] = "closed (" + d.GetWorkflowExecutionInfo().GetStatus().String() + ")"
		}
	}
	return s, nil
}

// runningWorkflows pages through the running workflows of the sources'
// type and task queue.
func runningWorkflows(ctx context.Context, src Sources) ([]Workflow, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND TaskQueue = '%s' AND ExecutionStatus = 'Running'", src.WorkflowType, src.TaskQueue)
	var out []Workflow
	var token []byte
	for {
		resp, err := src.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: src.Namespace, PageSize: 1000, NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			attrs := e.GetSearchAttributes()
			out = append(out, Workflow{
				ID:          e.GetExecution().GetWorkflowId(),
				TenantID:    keyword(attrs, workflows.SearchAttrTenantID.GetName()),
				SagaStatus:  keyword(attrs, workflows.SearchAttrSagaStatus.GetName()),
				TenantState: keyword(attrs, workflows.SearchAttrTenantState.GetName()),
				StartedAt:   e.GetStartTime().AsTime(),
			})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// keyword decodes a keyword search attribute ("" when it is not set).
func keyword(attrs *commonpb.SearchAttributes, name string) string {
	p, ok := attrs.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		return ""
	}
	return v
}
