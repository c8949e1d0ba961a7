package opsgate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/operator"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// Watcher finds tenant sagas that Temporal's own controls ended, a terminate
// or a reset (which terminates the run it replaces), whoever sent them and
// by whatever path, and writes each to its organisation's audit trail once:
// `tenant.saga_terminated` or `tenant.saga_reset`, naming the operator when
// the gateway's sealed assertion proves who it was.
type Watcher struct {
	Service   workflowservice.WorkflowServiceClient
	Namespace string
	DB        *bun.DB
	Keys      *seal.Ring
	Log       zerolog.Logger
	// Lookback is how far back the first scan looks (a restart misses
	// nothing that ended within it).
	Lookback time.Duration
	since    time.Time
	// recorded are the runs written since the overlap of the scans began,
	// by close time: the next scan skips them rather than read their
	// histories again.
	recorded map[string]time.Time
}

// The audit actions the watcher writes.
const (
	ActionSagaTerminated = "tenant.saga_terminated"
	ActionSagaReset      = "tenant.saga_reset"
)

// resetterIdentity is the identity Temporal's history service writes on the
// run a reset terminates; the reset's reason is on it, its caller's
// identity is not (the gateway seals the operator into the reason).
const resetterIdentity = "history-service-resetter"

// Run scans every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	for {
		if err := w.Scan(ctx); err != nil && ctx.Err() == nil {
			w.Log.Warn().Err(err).Msg("saga watch: scan failed; next scan retries")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Scan records the sagas terminated since the last scan (the first looks
// Lookback back). It is idempotent: each event is keyed by the run.
func (w *Watcher) Scan(ctx context.Context) error {
	now := time.Now().UTC()
	since := w.since
	if since.IsZero() {
		lookback := w.Lookback
		if lookback == 0 {
			lookback = 24 * time.Hour
		}
		since = now.Add(-lookback)
	}
	query := fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Terminated' AND CloseTime >= '%s'",
		workflows.TenantWorkflowType, since.Format(time.RFC3339Nano))
	var token []byte
	for {
		resp, err := w.Service.ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: w.Namespace, Query: query, PageSize: 100, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list terminated sagas: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			runID := e.GetExecution().GetRunId()
			if _, done := w.recorded[runID]; done {
				continue
			}
			if err := w.record(ctx, e); err != nil {
				return err
			}
			if w.recorded == nil {
				w.recorded = map[string]time.Time{}
			}
			w.recorded[runID] = e.GetCloseTime().AsTime()
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	// Visibility may show a close a little late: the next scan overlaps.
	w.since = now.Add(-time.Minute)
	for runID, closed := range w.recorded {
		if closed.Before(w.since) {
			delete(w.recorded, runID)
		}
	}
	return nil
}

// record writes the audit event of one terminated run.
func (w *Watcher) record(ctx context.Context, e *workflowpb.WorkflowExecutionInfo) error {
	run := e.GetExecution()
	orgID := workflows.Keyword(e.GetSearchAttributes(), workflows.SearchAttrOrgID)
	tenantID := workflows.Keyword(e.GetSearchAttributes(), workflows.SearchAttrTenantID)
	if orgID == "" || tenantID == "" {
		return nil // a creation refused before it reserved anything: no tenant to name
	}
	hist, err := w.Service.GetWorkflowExecutionHistoryReverse(ctx, &workflowservice.GetWorkflowExecutionHistoryReverseRequest{
		Namespace: w.Namespace, Execution: run, MaximumPageSize: 1})
	if err != nil {
		return fmt.Errorf("read the end of %s: %w", run.GetWorkflowId(), err)
	}
	events := hist.GetHistory().GetEvents()
	if len(events) == 0 || events[0].GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED {
		return nil
	}
	attrs := events[0].GetWorkflowExecutionTerminatedEventAttributes()
	action, what, claimed, reason := ActionSagaTerminated, ActTerminate, attrs.GetIdentity(), attrs.GetReason()
	if claimed == resetterIdentity {
		action, what = ActionSagaReset, ActReset
		reason, claimed = splitReason(reason)
	}
	at := events[0].GetEventTime().AsTime()
	who, verified := w.verify(claimed, run.GetWorkflowId(), what, at)
	// A reset is keyed by the run it started, as the gateway keys the one
	// it forwards: one event, whichever writes first.
	keyRun := run.GetRunId()
	if what == ActReset {
		if desc, err := w.Service.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: w.Namespace, Execution: run}); err == nil && desc.GetWorkflowExtendedInfo().GetResetRunId() != "" {
			keyRun = desc.GetWorkflowExtendedInfo().GetResetRunId()
		}
	}
	data := map[string]any{"run_id": run.GetRunId(), "reason": domain.StorableText(reason, 500), "verified": verified}
	if !verified {
		data["identity"] = domain.StorableText(claimed, 200)
	}
	return w.write(ctx, endOf{orgID: orgID, tenantID: tenantID, workflowID: run.GetWorkflowId(), action: action,
		operator: who, data: data, key: "temporal/" + what + "/" + keyRun, at: at})
}

// RecordReset writes the reset the gateway forwarded for operator, which
// started run newRunID of the workflow.
func (w *Watcher) RecordReset(ctx context.Context, workflowID, newRunID, operator, reason string) error {
	desc, err := w.Service.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{Namespace: w.Namespace,
		Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID, RunId: newRunID}})
	if err != nil {
		return fmt.Errorf("describe the reset run of %s: %w", workflowID, err)
	}
	attrs := desc.GetWorkflowExecutionInfo().GetSearchAttributes()
	orgID, tenantID := workflows.Keyword(attrs, workflows.SearchAttrOrgID), workflows.Keyword(attrs, workflows.SearchAttrTenantID)
	if orgID == "" || tenantID == "" {
		return nil
	}
	data := map[string]any{"run_id": newRunID, "reason": domain.StorableText(reason, 500), "verified": true}
	return w.write(ctx, endOf{orgID: orgID, tenantID: tenantID, workflowID: workflowID, action: ActionSagaReset,
		operator: operator, data: data, key: "temporal/" + ActReset + "/" + newRunID, at: time.Now().UTC()})
}

// endOf is a saga's end by Temporal's controls, as the trail records it.
type endOf struct {
	orgID, tenantID, workflowID, action, operator, key string
	data                                               map[string]any
	at                                                 time.Time
}

func (w *Watcher) write(ctx context.Context, e endOf) error {
	ev := &store.AuditEvent{OrgID: e.orgID, Action: e.action, ActorType: "operator", ActorID: e.operator,
		TargetType: "tenant", TargetID: e.tenantID, WorkflowID: e.workflowID, DedupKey: &e.key, OccurredAt: e.at.UTC()}
	ev.Data, _ = json.Marshal(e.data)
	inserted, err := store.InsertEvent(ctx, w.DB, ev)
	if err != nil {
		return err
	}
	if inserted {
		w.Log.Warn().Str("workflow_id", e.workflowID).Str("action", e.action).Str("operator", e.operator).
			Interface("verified", e.data["verified"]).Msg("saga watch: a tenant's saga was ended or reset by Temporal's controls")
	}
	return nil
}

// verify reads the gateway's assertion from what the history holds for who
// ended the run; an identity the gateway did not seal names nobody.
func (w *Watcher) verify(claimed, workflowID, what string, at time.Time) (string, bool) {
	a, ok := operator.ParseIdentity(claimed)
	if ok && a.Verify(w.Keys, operator.Subject(workflowID, what, ""), at) == nil {
		return a.Operator, true
	}
	return "unverified", false
}

// splitReason separates a reset's reason from the assertion the gateway
// appended to it.
func splitReason(reason string) (string, string) {
	if strings.HasPrefix(reason, operator.IdentityPrefix) {
		return "", reason
	}
	i := strings.LastIndex(reason, " "+operator.IdentityPrefix)
	if i < 0 {
		return reason, ""
	}
	return reason[:i], reason[i+1:]
}
