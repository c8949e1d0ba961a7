package drift

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/activities"
)

var (
	now  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old  = now.Add(-time.Hour)
	just = now.Add(-5 * time.Second)
	all  = activities.Resources{Schema: true, Keys: true, Route: true, RouteEnabled: true}
)

// consistent is a snapshot in which the three sources agree: an active
// tenant, a suspended one, one provisioning, one decommissioned and one
// failed.
func consistent() Snapshot {
	suspended := all
	suspended.RouteEnabled = false
	return Snapshot{
		At: now,
		Tenants: []Tenant{
			{ID: "tnt_A", OrgID: "org_1", State: "active", WorkflowID: "wf-A", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_S", OrgID: "org_1", State: "suspended", WorkflowID: "wf-S", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_P", OrgID: "org_1", State: "provisioning", WorkflowID: "wf-P", CurrentOperationID: "op_P", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_D", OrgID: "org_1", State: "decommissioned", WorkflowID: "wf-D", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_F", OrgID: "org_1", State: "failed", WorkflowID: "wf-F", CreatedAt: old, UpdatedAt: old},
		},
		Operations: []Operation{{ID: "op_P", TenantID: "tnt_P", Kind: "provision", Status: "stuck", StartedAt: old}},
		Workflows: []Workflow{
			{ID: "wf-A", TenantID: "tnt_A", SagaStatus: "idle", TenantState: "active", StartedAt: old},
			{ID: "wf-S", TenantID: "tnt_S", SagaStatus: "idle", TenantState: "suspended", StartedAt: old},
			{ID: "wf-P", TenantID: "tnt_P", SagaStatus: "stuck", TenantState: "provisioning", StartedAt: old},
		},
		Closed: map[string]string{},
		// The provisioning tenant has its schema so far.
		Resources: map[string]activities.Resources{"tnt_A": all, "tnt_S": suspended, "tnt_P": {Schema: true}},
	}
}

func codes(f []Finding) []string {
	var out []string
	for _, x := range f {
		out = append(out, x.Code+" "+cmp.Or(x.OperationID, x.TenantID))
	}
	return out
}

func TestAConsistentSnapshotHasNoFindings(t *testing.T) {
	if f := Compare(consistent(), time.Minute); len(f) != 0 {
		t.Fatalf("findings = %+v", f)
	}
}

func TestEachDisagreementIsFoundWithItsCode(t *testing.T) {
	cases := []struct {
		name  string
		drift func(s *Snapshot)
		want  []string
	}{
		{"an active tenant's workflow is gone", func(s *Snapshot) {
			s.Workflows = slices.DeleteFunc(s.Workflows, func(w Workflow) bool { return w.ID == "wf-A" })
			s.Closed["wf-A"] = "closed (Terminated)"
		}, []string{"tenant_without_workflow tnt_A"}},
		{"a workflow has no tenant row", func(s *Snapshot) {
			s.Workflows = append(s.Workflows, Workflow{ID: "wf-X", TenantID: "tnt_X", SagaStatus: "running", StartedAt: old})
		}, []string{"workflow_without_tenant tnt_X"}},
		{"a decommissioned tenant's workflow still runs", func(s *Snapshot) {
			s.Workflows = append(s.Workflows, Workflow{ID: "wf-D", TenantID: "tnt_D", SagaStatus: "idle", StartedAt: old})
		}, []string{"workflow_for_ended_tenant tnt_D"}},
		{"an operation is stuck with no workflow behind it", func(s *Snapshot) {
			s.Workflows = slices.DeleteFunc(s.Workflows, func(w Workflow) bool { return w.ID == "wf-P" })
			s.Closed["wf-P"] = "not found"
		}, []string{"operation_without_saga op_P", "tenant_without_workflow tnt_P"}},
		{"an operation runs while the saga is idle", func(s *Snapshot) {
			s.Operations = append(s.Operations, Operation{ID: "op_A", TenantID: "tnt_A", Kind: "suspend", Status: "running", StartedAt: old})
		}, []string{"operation_without_saga op_A"}},
		{"a failed tenant left its schema behind", func(s *Snapshot) {
			s.Resources["tnt_F"] = activities.Resources{Schema: true}
		}, []string{"resource_without_tenant tnt_F"}},
		{"resources of a tenant nobody knows", func(s *Snapshot) {
			s.Resources["tnt_Z"] = activities.Resources{Keys: true, Route: true}
		}, []string{"resource_without_tenant tnt_Z"}},
		{"an active tenant lost its route", func(s *Snapshot) {
			r := s.Resources["tnt_A"]
			r.Route, r.RouteEnabled = false, false
			s.Resources["tnt_A"] = r
		}, []string{"resource_missing tnt_A"}},
		{"a suspended tenant's route is enabled", func(s *Snapshot) {
			s.Resources["tnt_S"] = all
		}, []string{"route_mismatch tnt_S"}},
		{"an idle saga disagrees with the row", func(s *Snapshot) {
			s.Workflows[0].TenantState = "suspended"
		}, []string{"state_mismatch tnt_A"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := consistent()
			c.drift(&s)
			got := codes(Compare(s, time.Minute))
			if !slices.Equal(got, c.want) {
				t.Fatalf("findings = %q, want %q", got, c.want)
			}
		})
	}
}

func TestWhatChangedWithinTheSettleWindowIsNotDrift(t *testing.T) {
	s := consistent()
	// A creation in flight: the workflow has started, its row is not
	// written yet.
	s.Workflows = append(s.Workflows, Workflow{ID: "wf-N", TenantID: "tnt_N", SagaStatus: "running", StartedAt: just})
	// A decommission that just ended: the resources are gone and the row
	// says so, the workflow is finishing.
	s.Workflows = append(s.Workflows, Workflow{ID: "wf-D", TenantID: "tnt_D", SagaStatus: "done", StartedAt: old})
	s.Tenants[3].UpdatedAt = just
	// A suspension that just ended: the route is disabled, the row says
	// suspended, the saga has not said idle yet.
	s.Tenants[0].State, s.Tenants[0].UpdatedAt = "suspended", just
	r := s.Resources["tnt_A"]
	r.RouteEnabled = false
	s.Resources["tnt_A"] = r
	// An operation that just began.
	s.Operations = append(s.Operations, Operation{ID: "op_S", TenantID: "tnt_S", Kind: "resume", Status: "running", StartedAt: just})
	if f := Compare(s, time.Minute); len(f) != 0 {
		t.Fatalf("findings = %+v", f)
	}
	// The same, once the window has passed, is drift.
	if f := Compare(s, time.Second); len(f) == 0 {
		t.Fatal("no findings with a one-second window")
	}
}
