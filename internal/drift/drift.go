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

	"github.com/intelliauth/controlplane/activities"
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
	// An active or suspended tenant with no operation under way lacks a
	// resource.
	CodeResourceMissing = "resource_missing"
	// An idle tenant's route is enabled while it is suspended, or disabled
	// while it is active.
	CodeRouteMismatch = "route_mismatch"
	// An idle saga's state differs from the tenant row's.
	CodeStateMismatch = "state_mismatch"
)

// Tenant is what the check needs of a tenant row.
type Tenant struct {
	ID, OrgID, State, WorkflowID string
	CurrentOperationID           string
	CreatedAt, UpdatedAt         time.Time
}

// Operation is an operation Postgres says is running or stuck.
type Operation struct {
	ID, TenantID, Kind, Status string
	StartedAt                  time.Time
}

// Workflow is a running tenant workflow as Temporal's visibility store
// lists it.
type Workflow struct {
	ID          string
	TenantID    string
	SagaStatus  string
	TenantState string
	StartedAt   time.Time
}

// Snapshot is the three sources read at one time (At). Closed has, for
// each live tenant whose workflow is not running, what Temporal says of
// that workflow ("not found", or its close status).
type Snapshot struct {
	At         time.Time
	Tenants    []Tenant
	Operations []Operation
	Workflows  []Workflow
	Closed     map[string]string
	Resources  map[string]activities.Resources
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
func ended(state string) bool {
	return state == string(domain.StateFailed) || state == string(domain.StateDecommissioned)
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
		case !ended(t.State) && !ok && settled(t.CreatedAt):
			status := cmp.Or(s.Closed[t.WorkflowID], "not running")
			out = append(out, Finding{Code: CodeTenantWithoutWorkflow, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; its workflow is %s", t.State, status)})
		case ended(t.State) && ok && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeWorkflowForEndedTenant, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; its workflow still runs (saga %s)", t.State, w.SagaStatus)})
		case ok && w.SagaStatus == workflows.SagaIdle && t.CurrentOperationID == "" && w.TenantState != t.State && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeStateMismatch, TenantID: t.ID, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant row says %s; its idle saga says %s", t.State, w.TenantState)})
		}
	}

	for _, w := range s.Workflows {
		if _, ok := byWorkflow[w.ID]; !ok && settled(w.StartedAt) {
			out = append(out, Finding{Code: CodeWorkflowWithoutTenant, TenantID: w.TenantID, WorkflowID: w.ID,
				Detail: fmt.Sprintf("workflow started %s has no tenant row (saga %s)", w.StartedAt.UTC().Format(time.RFC3339), w.SagaStatus)})
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
		case !running:
			why = "the tenant's workflow is " + cmp.Or(s.Closed[t.WorkflowID], "not running")
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
		case ended(t.State) && settled(t.UpdatedAt):
			out = append(out, Finding{Code: CodeResourceWithoutTenant, TenantID: id, OrgID: t.OrgID, WorkflowID: t.WorkflowID,
				Detail: fmt.Sprintf("tenant is %s; the data plane still has %s", t.State, has(r))})
		}
	}
	for _, t := range s.Tenants {
		live := t.State == string(domain.StateActive) || t.State == string(domain.StateSuspended)
		if !live || t.CurrentOperationID != "" || !settled(t.UpdatedAt) {
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
	slices.SortStableFunc(out, func(a, b Finding) int {
		return strings.Compare(a.Code+"\x00"+a.TenantID+"\x00"+a.OperationID, b.Code+"\x00"+b.TenantID+"\x00"+b.OperationID)
	})
	return out
}

// has names the resources that exist; lacks those that do not ("" when
// none).
func has(r activities.Resources) string   { return resources(r, true) }
func lacks(r activities.Resources) string { return resources(r, false) }

func resources(r activities.Resources, exist bool) string {
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
