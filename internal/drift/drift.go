// Package drift compares what the three places that know about a tenant
// say about it: its row and operations in Postgres, its workflow in
// Temporal and its resources on the data plane. Each disagreement is a
// Finding an operator can act on. Compare is pure; Collect reads the three
// sources.
package drift

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/workflows"
)

// Codes of the disagreements, stable for scripts and alerts.
const (
	// A tenant that is not failed or decommissioned has no running
	// workflow: nothing will carry out its next operation.
	CodeTenantWithoutWorkflow = "tenant_without_workflow"
	// A running tenant workflow has no tenant row: a reservation that never
	// landed, or a row removed by hand.
	CodeWorkflowWithoutTenant = "workflow_without_tenant"
	// A running tenant workflow belongs to a failed or decommissioned
	// tenant.
	CodeWorkflowForEndedTenant = "workflow_for_ended_tenant"
	// An operation is running or stuck in Postgres while no saga carries
	// it: the workflow is gone or idle.
	CodeOperationWithoutSaga = "operation_without_saga"
	// Data-plane resources exist for a tenant with no row, or one that is
	// failed or decommissioned.
	CodeResourceWithoutTenant = "resource_without_tenant"
	// The data plane read has resources of a tenant that lives in another
	// region (or on the installation's own data plane).
	CodeResourceOutsideRegion = "resource_outside_its_region"
	// An active or suspended tenant with no operation under way lacks a
	// resource.
	CodeResourceMissing = "resource_missing"
	// An idle tenant's route is enabled while it is suspended, or disabled
	// while it is active.
	CodeRouteMismatch = "route_mismatch"
	// An idle saga's state differs from the tenant row's.
	CodeStateMismatch = "state_mismatch"
	// An active or suspended tenant's lifetime (expires_at) ended and no
	// decommission runs or waits: its saga missed or dropped its expiry,
	// or an operation holds it.
	CodeTenantPastLifetime = "tenant_past_lifetime"
	// A running tenant workflow's pending workflow task has failed or
	// timed out FailingTaskAttempt-1 times in a row: a non-determinism
	// error, a panic or a payload the worker cannot decode, which no retry
	// mends. Nothing of the saga runs, updates and queries included.
	CodeWorkflowTaskFailing = "workflow_task_failing"
	// A running tenant workflow's history has LongHistory events or more:
	// something retries in a loop inside the run, and Temporal terminates
	// the run at TerminatedHistory events.
	CodeWorkflowHistoryLong = "workflow_history_long"
)

// Codes of an organisation's disagreements (SPEC §8: nothing of a
// deleted organisation survives).
const (
	// A tenant of a deleted organisation is not decommissioned (or
	// failed): the deletion ended, or the row was written, without it.
	CodeTenantOfDeletedOrg = "tenant_of_deleted_organization"
	// The data plane has resources of a tenant of a deleted organisation.
	CodeResourceOfDeletedOrg = "resource_of_deleted_organization"
)

// FailingTaskAttempt is the attempt of a pending workflow task from which
// it is drift. Attempt 2 follows a single failure or timeout, which a
// worker killed mid-task or a deploy gives and the next attempt mends. A
// task that fails for good reaches attempt 3 one workflow-task timeout
// (10 s) after its first failure, as the SDK reports only the first
// failure and lets later ones time out; it is also where Temporal starts
// backing off the task's retries, its own mark of a task that is not
// failing by chance.
const FailingTaskAttempt = 3

// LongHistory is the length of a run's history, in events, from which it
// is drift. Temporal suggests continuing as new at 4,096 events, and the
// saga does so at its next idle moment (or after MaxOperationsPerRun
// operations), so a run well past that has had no idle moment: an
// operation or a write retries in a loop (a local activity's retries
// add to the history while an activity's do not). Temporal terminates a
// run at TerminatedHistory events: at the ~22 events a minute a retrying
// write adds, this leaves an operator more than a day.
const LongHistory = 10_000

// TerminatedHistory is the length at which Temporal terminates a run
// (limit.historyCount.error, 50 Ki events by default).
const TerminatedHistory = 51_200

// Tenant is what the check needs of a tenant row.
type Tenant struct {
	ID, OrgID, State, WorkflowID string
	CurrentOperationID           string
	CreatedAt, UpdatedAt         time.Time
	// ExpiresAt is an ephemeral tenant's end of life (zero: none).
	ExpiresAt time.Time
	// Region is where its data plane is ("": the installation's own).
	Region string
}

// Organization is what the check needs of an organisation that is not
// active (deleting or deleted).
type Organization struct {
	ID, State string
	UpdatedAt time.Time
}

// Operation is an operation Postgres says is running or stuck.
type Operation struct {
	ID, TenantID, Kind, Status string
	StartedAt                  time.Time
}

// Workflow is a running tenant workflow as Temporal's visibility store
// lists it, with its pending workflow task as describe shows it.
type Workflow struct {
	ID          string
	TenantID    string
	SagaStatus  string
	TenantState string
	StartedAt   time.Time
	// RunID is the run listed (or described) as running.
	RunID string
	// TaskAttempt is the attempt of its pending workflow task (0: none is
	// pending), TaskFailure what its last failed workflow task said ("":
	// not known).
	TaskAttempt int32
	TaskFailure string
	// HistoryLength is how many events the run's history has (0: not
	// described); PendingActivities, for a run whose history is long,
	// what its pending activities say ("": none is pending).
	HistoryLength     int64
	PendingActivities string
}

// Snapshot is the three sources read at one time (At). Closed has, for
// each live tenant whose workflow is not running, the status of that
// workflow's latest run as Temporal describes it
// (WORKFLOW_EXECUTION_STATUS_UNSPECIFIED: not found). A run that continued
// as new, or one running that the list did not show, is a workflow between
// two runs: it is alive.
type Snapshot struct {
	At      time.Time
	Tenants []Tenant
	// Organizations are those being deleted or deleted.
	Organizations []Organization
	Operations    []Operation
	Workflows     []Workflow
	Closed        map[string]enumspb.WorkflowExecutionStatus
	// Resources are those of one data plane: Region's ("": the
	// installation's own); only its tenants are compared with it.
	Resources map[string]dataplane.Resources
	Region    string
}

// regionName names a region in a finding.
func regionName(region string) string {
	if region == "" {
		return "the installation's own data plane"
	}
	return "region " + region
}

// betweenRuns reports whether a workflow the list does not show running
// is alive all the same: Temporal's list has not caught up with its
// continue-as-new.
func (s Snapshot) betweenRuns(id string) bool {
	st, ok := s.Closed[id]
	return ok && (st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || st == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW)
}

// workflowIs says what became of a workflow that is not running, for a
// finding's detail.
func (s Snapshot) workflowIs(id string) string {
	switch st, ok := s.Closed[id]; {
	case !ok:
		return "not running"
	case st == enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED:
		return "not found"
	default:
		return "closed (" + st.String() + ")"
	}
}

// Finding is one disagreement.
type Finding struct {
	Code        string `json:"code"`
	TenantID    string `json:"tenant_id,omitempty"`
	OrgID       string `json:"org_id,omitempty"`
	WorkflowID  string `json:"workflow_id,omitempty"`
	OperationID string `json:"operation_id,omitempty"`
	Detail      string `json:"detail"`
}

// ended reports whether a tenant's life is over: nothing of it should run
// or exist on the data plane.
func ended(state string) bool { return domain.State(state).Ended() }

// atRest reports whether a tenant is in a state no operation is needed to
// reach or leave: it should have all its resources, and end when its
// lifetime does.
func atRest(state string) bool {
	return state == string(domain.StateActive) || state == string(domain.StateSuspended)
}

// Compare lists the disagreements of the snapshot. What changed less than
// settle before the snapshot is left out: a saga between two writes is not
// drift.
func Compare(s Snapshot, settle time.Duration) []Finding {
	settled := func(t time.Time) bool { return s.At.Sub(t) >= settle }
	tenants := map[string]Tenant{}
	byWorkflow := map[string]Tenant{}
	for _, t := range s.Tenants {
		tenants[t.ID] = t
		byWorkflow[t.WorkflowID] = t
	}
	running := map[string]Workflow{}
	for _, w := range s.Workflows {
		running[w.ID] = w
	}
	var out []Finding

	for _, t := range s.Tenants {
		w, ok := running[t.WorkflowID]
		switch {
		case !ended(t.State) && !ok && !s.betweenRuns(t.WorkflowID) && settled(t.CreatedAt):
			out = append(out, Finding{Code: CodeTenantWithoutWorkflow, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; its workflow is %s", t.State, s.workflowIs(t.WorkflowID))})
		case ended(t.State) && ok && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeWorkflowForEndedTenant, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; its workflow still runs (saga %s)", t.State, w.SagaStatus)})
		case ok && w.SagaStatus == workflows.SagaIdle && t.CurrentOperationID == "" && w.TenantState != t.State && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeStateMismatch, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant row says %s; its idle saga says %s", t.State, w.TenantState)})
		}
	}

	for _, w := range s.Workflows {
		t, ok := byWorkflow[w.ID]
		if !ok && settled(w.StartedAt) {
			out = append(out, Finding{Code: CodeWorkflowWithoutTenant, TenantID: w.TenantID, WorkflowID: w.ID,
				Detail: fmt.Sprintf("workflow started %s has no tenant row (saga %s)", w.StartedAt.UTC().Format(time.RFC3339), w.SagaStatus)})
		}
		// The attempt count is this check's settle window: see
		// FailingTaskAttempt.
		if w.TaskAttempt >= FailingTaskAttempt {
			detail := fmt.Sprintf("its workflow task is at attempt %d: nothing of the saga runs, requests and repairs included", w.TaskAttempt)
			if w.TaskFailure != "" {
				detail += "; it failed with: " + w.TaskFailure
			}
			out = append(out, Finding{Code: CodeWorkflowTaskFailing, TenantID: cmp.Or(t.ID, w.TenantID), OrgID: t.OrgID, WorkflowID: w.ID, Detail: detail})
		}
		if w.HistoryLength >= LongHistory {
			out = append(out, Finding{Code: CodeWorkflowHistoryLong, TenantID: cmp.Or(t.ID, w.TenantID), OrgID: t.OrgID, WorkflowID: w.ID,
				Detail: longHistory(w)})
		}
	}

	for _, op := range s.Operations {
		if !settled(op.StartedAt) {
			continue
		}
		t, ok := tenants[op.TenantID]
		var why string
		switch w, running := running[t.WorkflowID]; {
		case !ok:
			why = "its tenant has no row"
		case !running && s.betweenRuns(t.WorkflowID):
			// Its next run carries it.
		case !running:
			why = "the tenant's workflow is " + s.workflowIs(t.WorkflowID)
		case w.SagaStatus == workflows.SagaIdle:
			why = "the tenant's saga is idle"
		}
		if why != "" {
			out = append(out, Finding{Code: CodeOperationWithoutSaga, TenantID: op.TenantID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				OperationID: op.ID, Detail: fmt.Sprintf("%s operation is %s but %s", op.Kind, op.Status, why)})
		}
	}

	for _, id := range slices.Sorted(maps.Keys(s.Resources)) {
		r := s.Resources[id]
		if !r.Any() {
			continue
		}
		t, ok := tenants[id]
		switch {
		case !ok:
			out = append(out, Finding{Code: CodeResourceWithoutTenant, TenantID: id, Detail: "no tenant row; the data plane has " + has(r)})
		case t.Region != s.Region:
			out = append(out, Finding{Code: CodeResourceOutsideRegion, TenantID: id, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant lives in %s; %s has %s", regionName(t.Region), regionName(s.Region), has(r))})
		case ended(t.State) && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeResourceWithoutTenant, TenantID: id, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; the data plane still has %s", t.State, has(r))})
		}
	}
	for _, t := range s.Tenants {
		if !atRest(t.State) || t.CurrentOperationID != "" || !settled(t.UpdatedAt) || t.Region != s.Region {
			continue
		}
		r := s.Resources[t.ID]
		if missing := lacks(r); missing != "" {
			out = append(out, Finding{Code: CodeResourceMissing, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; the data plane lacks %s", t.State, missing)})
			continue
		}
		if active := t.State == string(domain.StateActive); r.RouteEnabled != active {
			out = append(out, Finding{Code: CodeRouteMismatch, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; its route is %s", t.State, map[bool]string{true: "enabled", false: "disabled"}[r.RouteEnabled])})
		}
	}
	out = append(out, pastLifetime(s, settled)...)
	out = append(out, deletedOrgs(s, settled)...)
	slices.SortStableFunc(out, func(a, b Finding) int {
		return strings.Compare(a.Code+"\x00"+a.TenantID+"\x00"+a.OperationID, b.Code+"\x00"+b.TenantID+"\x00"+b.OperationID)
	})
	return out
}

// longHistory says how long a run's history is and what may be growing it.
func longHistory(w Workflow) string {
	detail := fmt.Sprintf("its run's history has %d events (Temporal terminates a run at %d; saga %s): something retries in a loop",
		w.HistoryLength, TerminatedHistory, w.SagaStatus)
	if w.PendingActivities != "" {
		return detail + "; pending: " + w.PendingActivities
	}
	return detail + "; no activity is pending: look for a local activity (a write the saga waits for) retrying within its workflow tasks"
}

// pastLifetime lists the tenants at rest whose lifetime ended (settled
// ago) with no decommission running or stuck: the saga expires a tenant
// by beginning a decommission as soon as no other operation holds it.
func pastLifetime(s Snapshot, settled func(time.Time) bool) []Finding {
	decommissioning := map[string]bool{}
	holding := map[string]Operation{}
	for _, op := range s.Operations {
		if op.Kind == string(domain.OpDecommission) {
			decommissioning[op.TenantID] = true
		} else {
			holding[op.TenantID] = op
		}
	}
	var out []Finding
	for _, t := range s.Tenants {
		if !atRest(t.State) || t.ExpiresAt.IsZero() || !settled(t.ExpiresAt) || decommissioning[t.ID] {
			continue
		}
		detail := fmt.Sprintf("tenant is %s; its lifetime ended at %s and no decommission runs", t.State, t.ExpiresAt.UTC().Format(time.RFC3339))
		if op, ok := holding[t.ID]; ok {
			detail += fmt.Sprintf(" (its %s operation %s is %s)", op.Kind, op.ID, op.Status)
		}
		out = append(out, Finding{Code: CodeTenantPastLifetime, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID, Detail: detail})
	}
	return out
}

// deletedOrgs lists what survives a deleted organisation (settled ago):
// a tenant that is not ended, and any data-plane resource of its tenants.
func deletedOrgs(s Snapshot, settled func(time.Time) bool) []Finding {
	deleted := map[string]bool{}
	for _, o := range s.Organizations {
		if o.State == string(domain.OrgDeleted) && settled(o.UpdatedAt) {
			deleted[o.ID] = true
		}
	}
	var out []Finding
	for _, t := range s.Tenants {
		if !deleted[t.OrgID] {
			continue
		}
		if !ended(t.State) {
			out = append(out, Finding{Code: CodeTenantOfDeletedOrg, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("the organisation is deleted; its tenant is %s", t.State)})
		}
		if r := s.Resources[t.ID]; r.Any() {
			out = append(out, Finding{Code: CodeResourceOfDeletedOrg, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: "the organisation is deleted; the data plane still has " + has(r)})
		}
	}
	return out
}

// has names the resources that exist; lacks those that do not ("" when
// none).
func has(r dataplane.Resources) string   { return resources(r, true) }
func lacks(r dataplane.Resources) string { return resources(r, false) }

func resources(r dataplane.Resources, exist bool) string {
	var parts []string
	for _, p := range []struct {
		name string
		ok   bool
	}{{"its schema", r.Schema}, {"its signing keys", r.Keys}, {"its route", r.Route}} {
		if p.ok == exist {
			parts = append(parts, p.name)
		}
	}
	return strings.Join(parts, ", ")
}
