package drift

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// Plane lists the data plane's resources by tenant id.
type Plane interface {
	All(ctx context.Context) (map[string]dataplane.Resources, error)
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
	// Plane is the data plane of Region ("": the installation's own).
	Plane  Plane
	Region string
}

// Collect reads a snapshot. The order makes a change in flight look
// recent, never like drift: resources are read before the tenants (a
// resource is created after its tenant's row, so the row is seen), and
// workflows before the tenants (a workflow starts before its row is
// written). Compare's settle window then leaves out what is under way.
//
// Besides one list, it describes each running workflow (for its history's
// length and its pending workflow task; at most describeConcurrency at a
// time) and the latest run of each live tenant's workflow the list does
// not show.
func Collect(ctx context.Context, src Sources) (Snapshot, error) {
	s := Snapshot{At: time.Now(), Closed: map[string]enumspb.WorkflowExecutionStatus{}, Region: src.Region}
	var err error
	if s.Resources, err = src.Plane.All(ctx); err != nil {
		return s, fmt.Errorf("data plane: %w", err)
	}
	if s.Workflows, err = runningWorkflows(ctx, src); err != nil {
		return s, fmt.Errorf("temporal: %w", err)
	}
	if err := describeAll(ctx, src, s.Workflows); err != nil {
		return s, fmt.Errorf("temporal: %w", err)
	}
	var rows []store.Tenant
	if err := src.DB.NewSelect().Model(&rows).Column("id", "org_id", "state", "workflow_id", "current_operation_id", "created_at", "updated_at", "expires_at", "region").
		Order("id").Scan(ctx); err != nil {
		return s, fmt.Errorf("postgres: tenants: %w", err)
	}
	for _, r := range rows {
		t := Tenant{ID: r.ID, OrgID: r.OrgID, State: r.State, WorkflowID: r.WorkflowID, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Region: r.Region}
		if r.CurrentOperationID != nil {
			t.CurrentOperationID = *r.CurrentOperationID
		}
		if r.ExpiresAt != nil {
			t.ExpiresAt = *r.ExpiresAt
		}
		s.Tenants = append(s.Tenants, t)
	}
	var orgs []store.Organization
	if err := src.DB.NewSelect().Model(&orgs).Column("id", "state", "updated_at").Where("state <> ?", domain.OrgActive).
		Order("id").Scan(ctx); err != nil {
		return s, fmt.Errorf("postgres: organisations: %w", err)
	}
	for _, o := range orgs {
		s.Organizations = append(s.Organizations, Organization{ID: o.ID, State: o.State, UpdatedAt: o.UpdatedAt})
	}
	var ops []store.Operation
	if err := src.DB.NewSelect().Model(&ops).Column("id", "tenant_id", "kind", "status", "started_at").
		Where("status IN (?)", bun.In([]domain.OpStatus{domain.OpRunning, domain.OpStuck})).Order("id").Scan(ctx); err != nil {
		return s, fmt.Errorf("postgres: operations: %w", err)
	}
	for _, o := range ops {
		s.Operations = append(s.Operations, Operation{ID: o.ID, TenantID: o.TenantID, Kind: o.Kind, Status: o.Status, StartedAt: o.StartedAt})
	}

	// What became of the workflows of live tenants that the list does not
	// show running. The list lags: a workflow that continued as new may be
	// missing from it, its new run running.
	running := map[string]bool{}
	for _, w := range s.Workflows {
		running[w.ID] = true
	}
	for _, t := range s.Tenants {
		if ended(t.State) || running[t.WorkflowID] {
			continue
		}
		d, err := latestRun(ctx, src, t.WorkflowID)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			s.Closed[t.WorkflowID] = enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
		case err != nil:
			return s, fmt.Errorf("temporal: %w", err)
		case d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
			w := workflowOf(d.GetWorkflowExecutionInfo())
			if err := described(ctx, src, &w, d); err != nil {
				return s, fmt.Errorf("temporal: %w", err)
			}
			s.Workflows = append(s.Workflows, w)
		default:
			s.Closed[t.WorkflowID] = d.GetWorkflowExecutionInfo().GetStatus()
		}
	}
	return s, nil
}

// maxRunsFollowed bounds how far latestRun follows a chain of runs.
const maxRunsFollowed = 5

// latestRun describes the latest run of a workflow. When Temporal answers
// a run that continued as new, it follows the chain to the run that came
// next (at most maxRunsFollowed of them); a run it cannot find yet leaves
// the last one found, continued as new.
func latestRun(ctx context.Context, src Sources, workflowID string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	d, err := src.Temporal.DescribeWorkflowExecution(ctx, workflowID, "")
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", workflowID, err)
	}
	for range maxRunsFollowed {
		info := d.GetWorkflowExecutionInfo()
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
			break
		}
		next, err := nextRun(ctx, src, workflowID, info.GetExecution().GetRunId())
		if err != nil {
			return nil, err
		}
		if next == "" {
			break
		}
		nd, err := src.Temporal.DescribeWorkflowExecution(ctx, workflowID, next)
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describe %s run %s: %w", workflowID, next, err)
		}
		d = nd
	}
	return d, nil
}

// nextRun reads the run a run continued as, from its close event.
func nextRun(ctx context.Context, src Sources, workflowID, runID string) (string, error) {
	it := src.Temporal.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("close event of %s run %s: %w", workflowID, runID, err)
		}
		if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
			return a.GetNewExecutionRunId(), nil
		}
	}
	return "", nil
}

// describeConcurrency bounds the describes Collect has in flight, so a
// check of many tenants does not load Temporal's frontend.
const describeConcurrency = 8

// describeAll describes the listed workflows, describeConcurrency at a
// time, for their histories' lengths and pending workflow tasks.
func describeAll(ctx context.Context, src Sources, ws []Workflow) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ws))
	slots := make(chan struct{}, describeConcurrency)
	var wg sync.WaitGroup
	for i := range ws {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			d, err := src.Temporal.DescribeWorkflowExecution(ctx, ws[i].ID, ws[i].RunID)
			var notFound *serviceerror.NotFound
			switch {
			case errors.As(err, &notFound):
				// Gone since the list: nothing is pending.
			case err != nil:
				errs[i] = fmt.Errorf("describe %s: %w", ws[i].ID, err)
				cancel()
			default:
				errs[i] = described(ctx, src, &ws[i], d)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// described sets what a run's description says: the length of its
// history and, when it is long, what its pending activities say; its
// pending workflow task and, when it is failing, what its last failure
// said.
func described(ctx context.Context, src Sources, w *Workflow, d *workflowservice.DescribeWorkflowExecutionResponse) error {
	w.HistoryLength = d.GetWorkflowExecutionInfo().GetHistoryLength()
	if w.HistoryLength >= LongHistory {
		w.PendingActivities = pendingActivities(d)
	}
	w.TaskAttempt = d.GetPendingWorkflowTask().GetAttempt()
	if w.TaskAttempt < FailingTaskAttempt {
		return nil
	}
	failure, err := taskFailure(ctx, src, w.ID, w.RunID)
	if err != nil {
		failure = "(its history could not be read: " + err.Error() + ")"
	}
	w.TaskFailure = failure
	return nil
}

// pendingActivities says, for each pending activity of a run, its type,
// its attempt and its last failure.
func pendingActivities(d *workflowservice.DescribeWorkflowExecutionResponse) string {
	var out []string
	for _, a := range d.GetPendingActivities() {
		s := fmt.Sprintf("%s at attempt %d", a.GetActivityType().GetName(), a.GetAttempt())
		if f := a.GetLastFailure(); f != nil {
			s += ", last failure: " + f.GetMessage()
		}
		out = append(out, s)
	}
	return strings.Join(out, "; ")
}

// taskFailurePage is how many events, from the end of a history,
// taskFailure reads: a failing run's last events are its failed task's and
// the signals and updates sent to it since.
const taskFailurePage = 50

// taskFailure says what the latest failed workflow task of a run said.
// Temporal writes only the first failure or timeout of a run of attempts
// (later ones are transient), so that is the one found: the failure that
// began the run of attempts. One page read from the end of the history,
// whatever its length; "" when the page has none.
func taskFailure(ctx context.Context, src Sources, workflowID, runID string) (string, error) {
	resp, err := src.Temporal.WorkflowService().GetWorkflowExecutionHistoryReverse(ctx, &workflowservice.GetWorkflowExecutionHistoryReverseRequest{
		Namespace: src.Namespace, Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: runID}, MaximumPageSize: taskFailurePage,
	})
	if err != nil {
		return "", err
	}
	for _, ev := range resp.GetHistory().GetEvents() {
		if a := ev.GetWorkflowTaskFailedEventAttributes(); a != nil {
			return fmt.Sprintf("%s (%s)", a.GetFailure().GetMessage(), a.GetCause()), nil
		}
		if a := ev.GetWorkflowTaskTimedOutEventAttributes(); a != nil {
			return fmt.Sprintf("a workflow task timed out (%s)", a.GetTimeoutType()), nil
		}
		if ev.GetWorkflowTaskCompletedEventAttributes() != nil {
			break
		}
	}
	return "", nil
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
			out = append(out, workflowOf(e))
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out, nil
		}
	}
}

// workflowOf is a run as the list or a describe gives it.
func workflowOf(e *workflowpb.WorkflowExecutionInfo) Workflow {
	attrs := e.GetSearchAttributes()
	return Workflow{
		ID:          e.GetExecution().GetWorkflowId(),
		RunID:       e.GetExecution().GetRunId(),
		TenantID:    workflows.Keyword(attrs, workflows.SearchAttrTenantID),
		SagaStatus:  workflows.Keyword(attrs, workflows.SearchAttrSagaStatus),
		TenantState: workflows.Keyword(attrs, workflows.SearchAttrTenantState),
		StartedAt:   e.GetStartTime().AsTime(),
	}
}
