package drift

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/intelliauth/controlplane/internal/dataplane"
)

var (
	now  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	old  = now.Add(-time.Hour)
	just = now.Add(-5 * time.Second)
	all  = dataplane.Resources{Schema: true, Keys: true, Route: true, RouteEnabled: true}
)

// consistent is a snapshot in which the three sources agree: an active
// tenant, a suspended one with an hour of its lifetime left, one
// provisioning, one decommissioned when its lifetime ended and one failed.
func consistent() Snapshot {
	suspended := all
	suspended.RouteEnabled = false
	return Snapshot{
		At: now,
		Tenants: []Tenant{
			{ID: "tnt_A", OrgID: "org_1", State: "active", WorkflowID: "wf-A", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_S", OrgID: "org_1", State: "suspended", WorkflowID: "wf-S", CreatedAt: old, UpdatedAt: old, ExpiresAt: now.Add(time.Hour)},
			{ID: "tnt_P", OrgID: "org_1", State: "provisioning", WorkflowID: "wf-P", CurrentOperationID: "op_P", CreatedAt: old, UpdatedAt: old},
			{ID: "tnt_D", OrgID: "org_1", State: "decommissioned", WorkflowID: "wf-D", CreatedAt: old, UpdatedAt: old, ExpiresAt: old},
			{ID: "tnt_F", OrgID: "org_1", State: "failed", WorkflowID: "wf-F", CreatedAt: old, UpdatedAt: old},
		},
		Operations: []Operation{{ID: "op_P", TenantID: "tnt_P", Kind: "provision", Status: "stuck", StartedAt: old}},
		// A deleted organisation, with nothing left.
		Organizations: []Organization{{ID: "org_9", State: "deleted", UpdatedAt: old}},
		Workflows: []Workflow{
			{ID: "wf-A", TenantID: "tnt_A", SagaStatus: "idle", TenantState: "active", StartedAt: old},
			{ID: "wf-S", TenantID: "tnt_S", SagaStatus: "idle", TenantState: "suspended", StartedAt: old},
			{ID: "wf-P", TenantID: "tnt_P", SagaStatus: "stuck", TenantState: "provisioning", StartedAt: old},
		},
		Closed: map[string]enumspb.WorkflowExecutionStatus{},
		// The provisioning tenant has its schema so far.
		Resources: map[string]dataplane.Resources{"tnt_A": all, "tnt_S": suspended, "tnt_P": {Schema: true}},
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
			s.Closed["wf-A"] = enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED
		}, []string{"tenant_without_workflow tnt_A"}},
		{"a workflow has no tenant row", func(s *Snapshot) {
			s.Workflows = append(s.Workflows, Workflow{ID: "wf-X", TenantID: "tnt_X", SagaStatus: "running", StartedAt: old})
		}, []string{"workflow_without_tenant tnt_X"}},
		{"a decommissioned tenant's workflow still runs", func(s *Snapshot) {
			s.Workflows = append(s.Workflows, Workflow{ID: "wf-D", TenantID: "tnt_D", SagaStatus: "idle", StartedAt: old})
		}, []string{"workflow_for_ended_tenant tnt_D"}},
		{"an operation is stuck with no workflow behind it", func(s *Snapshot) {
			s.Workflows = slices.DeleteFunc(s.Workflows, func(w Workflow) bool { return w.ID == "wf-P" })
			s.Closed["wf-P"] = enumspb.WORKFLOW_EXECUTION_STATUS_UNSPECIFIED
		}, []string{"operation_without_saga op_P", "tenant_without_workflow tnt_P"}},
		{"an operation runs while the saga is idle", func(s *Snapshot) {
			s.Operations = append(s.Operations, Operation{ID: "op_A", TenantID: "tnt_A", Kind: "suspend", Status: "running", StartedAt: old})
		}, []string{"operation_without_saga op_A"}},
		{"a failed tenant left its schema behind", func(s *Snapshot) {
			s.Resources["tnt_F"] = dataplane.Resources{Schema: true}
		}, []string{"resource_without_tenant tnt_F"}},
		{"resources of a tenant nobody knows", func(s *Snapshot) {
			s.Resources["tnt_Z"] = dataplane.Resources{Keys: true, Route: true}
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
		{"a deleted organisation's tenant lives on", func(s *Snapshot) {
			s.Tenants[0].OrgID = "org_9"
		}, []string{"resource_of_deleted_organization tnt_A", "tenant_of_deleted_organization tnt_A"}},
		{"a deleted organisation's decommissioned tenant left resources behind", func(s *Snapshot) {
			s.Tenants[3].OrgID = "org_9"
			s.Resources["tnt_D"] = dataplane.Resources{Keys: true}
		}, []string{"resource_of_deleted_organization tnt_D", "resource_without_tenant tnt_D"}},
		{"a suspended tenant outlived its lifetime", func(s *Snapshot) {
			s.Tenants[1].ExpiresAt = old
		}, []string{"tenant_past_lifetime tnt_S"}},
		{"an active tenant outlived its lifetime while a suspend holds it", func(s *Snapshot) {
			s.Tenants[0].ExpiresAt, s.Tenants[0].CurrentOperationID = old, "op_A"
			s.Workflows[0].SagaStatus = "running"
			s.Operations = append(s.Operations, Operation{ID: "op_A", TenantID: "tnt_A", Kind: "suspend", Status: "running", StartedAt: old})
		}, []string{"tenant_past_lifetime tnt_A"}},
		{"a tenant's workflow task keeps failing", func(s *Snapshot) {
			s.Workflows[0].TaskAttempt, s.Workflows[0].TaskFailure = 3, "nondeterministic workflow definition"
		}, []string{"workflow_task_failing tnt_A"}},
		{"the workflow task of a workflow without a tenant row keeps failing", func(s *Snapshot) {
			s.Workflows = append(s.Workflows, Workflow{ID: "wf-X", TenantID: "tnt_X", SagaStatus: "running", StartedAt: old, TaskAttempt: 7})
		}, []string{"workflow_task_failing tnt_X", "workflow_without_tenant tnt_X"}},
		{"a tenant's workflow history grows in a loop", func(s *Snapshot) {
			s.Workflows[2].HistoryLength = 23_000
		}, []string{"workflow_history_long tnt_P"}},
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

func TestATenantBetweenTwoRunsOfItsWorkflowIsNotDrift(t *testing.T) {
	for _, latest := range []enumspb.WorkflowExecutionStatus{enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING} {
		t.Run("the latest run is "+latest.String(), func(t *testing.T) {
			// The list does not show the workflows of the active tenant and of
			// the provisioning one (whose operation is stuck): their runs
			// continued as new, and the list has not caught up.
			s := consistent()
			s.Workflows = slices.DeleteFunc(s.Workflows, func(w Workflow) bool { return w.ID == "wf-A" || w.ID == "wf-P" })
			s.Closed["wf-A"], s.Closed["wf-P"] = latest, latest
			if f := Compare(s, time.Minute); len(f) != 0 {
				t.Fatalf("findings = %+v", f)
			}
		})
	}
}

func TestAnExpiryUnderWayOrJustDueIsNotDrift(t *testing.T) {
	cases := []struct {
		name  string
		drift func(s *Snapshot)
	}{
		{"its decommission is running", func(s *Snapshot) {
			s.Tenants[0].ExpiresAt, s.Tenants[0].CurrentOperationID = old, "op_A"
			s.Workflows[0].SagaStatus = "running"
			s.Operations = append(s.Operations, Operation{ID: "op_A", TenantID: "tnt_A", Kind: "decommission", Status: "running", StartedAt: old})
		}},
		{"its decommission is stuck (the saga says so)", func(s *Snapshot) {
			s.Tenants[0].ExpiresAt, s.Tenants[0].CurrentOperationID = old, "op_A"
			s.Workflows[0].SagaStatus = "stuck"
			s.Operations = append(s.Operations, Operation{ID: "op_A", TenantID: "tnt_A", Kind: "decommission", Status: "stuck", StartedAt: old})
		}},
		{"its lifetime ended within the settle window", func(s *Snapshot) {
			s.Tenants[0].ExpiresAt = just
		}},
		{"it is being decommissioned", func(s *Snapshot) {
			s.Tenants[1].State, s.Tenants[1].ExpiresAt = "decommissioning", old
			s.Workflows[1].TenantState = "decommissioning"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := consistent()
			c.drift(&s)
			for _, f := range Compare(s, time.Minute) {
				if f.Code == CodeTenantPastLifetime {
					t.Fatalf("finding %+v", f)
				}
			}
		})
	}
}

func TestAWorkflowTaskIsFailingFromItsThirdAttemptAndTheFindingSaysWhy(t *testing.T) {
	s := consistent()
	s.Workflows[0].TaskAttempt = FailingTaskAttempt - 1
	if f := Compare(s, time.Minute); len(f) != 0 {
		t.Fatalf("a task at attempt %d: findings = %+v", FailingTaskAttempt-1, f)
	}
	s.Workflows[0].TaskAttempt, s.Workflows[0].TaskFailure = FailingTaskAttempt, "[TMPRL1100] nondeterministic workflow definition"
	f := Compare(s, time.Minute)
	if len(f) != 1 || f[0].Code != CodeWorkflowTaskFailing || f[0].WorkflowID != "wf-A" || f[0].OrgID != "org_1" ||
		!strings.Contains(f[0].Detail, "attempt 3") || !strings.Contains(f[0].Detail, "TMPRL1100") {
		t.Fatalf("findings = %+v", f)
	}
}

func TestAHistoryIsLongFromLongHistoryEventsAndTheFindingSaysWhatIsPending(t *testing.T) {
	s := consistent()
	s.Workflows[2].HistoryLength = LongHistory - 1
	if f := Compare(s, time.Minute); len(f) != 0 {
		t.Fatalf("a history of %d events: findings = %+v", LongHistory-1, f)
	}
	s.Workflows[2].HistoryLength, s.Workflows[2].PendingActivities = LongHistory, "RunStep at attempt 412, last failure: the data plane did not answer in time"
	f := Compare(s, time.Minute)
	if len(f) != 1 || f[0].Code != CodeWorkflowHistoryLong || f[0].WorkflowID != "wf-P" || f[0].OrgID != "org_1" ||
		!strings.Contains(f[0].Detail, "10000 events") || !strings.Contains(f[0].Detail, "51200") || !strings.Contains(f[0].Detail, "RunStep at attempt 412") {
		t.Fatalf("findings = %+v", f)
	}
	// With no activity pending, what grows it is a local activity.
	s.Workflows[2].PendingActivities = ""
	if f := Compare(s, time.Minute); len(f) != 1 || !strings.Contains(f[0].Detail, "local activity") {
		t.Fatalf("findings = %+v", f)
	}
}

func TestPendingActivitiesNameTypeAttemptAndLastFailure(t *testing.T) {
	d := &workflowservice.DescribeWorkflowExecutionResponse{PendingActivities: []*workflowpb.PendingActivityInfo{
		{ActivityType: &commonpb.ActivityType{Name: "RunStep"}, Attempt: 412, LastFailure: &failurepb.Failure{Message: "the data plane refused the step"}},
		{ActivityType: &commonpb.ActivityType{Name: "Record"}, Attempt: 1},
	}}
	want := "RunStep at attempt 412, last failure: the data plane refused the step; Record at attempt 1"
	if got := pendingActivities(d); got != want {
		t.Fatalf("pendingActivities = %q, want %q", got, want)
	}
	if got := pendingActivities(&workflowservice.DescribeWorkflowExecutionResponse{}); got != "" {
		t.Fatalf("none pending: %q", got)
	}
}

// A data plane is compared with its own region's tenants only: a tenant of
// eu is neither missing from the installation's own data plane nor from
// us's, and its resources on another region's data plane are found as out
// of their region.
func TestEachRegionsDataPlaneIsComparedWithItsOwnTenants(t *testing.T) {
	s := consistent()
	s.Tenants = append(s.Tenants, Tenant{ID: "tnt_E", OrgID: "org_1", State: "active", WorkflowID: "wf-E", CreatedAt: old, UpdatedAt: old, Region: "eu"})
	s.Workflows = append(s.Workflows, Workflow{ID: "wf-E", TenantID: "tnt_E", SagaStatus: "idle", TenantState: "active", StartedAt: old})
	if f := Compare(s, time.Minute); len(f) != 0 {
		t.Fatalf("the installation's own data plane, an eu tenant elsewhere: %v", codes(f))
	}
	eu := s
	eu.Region, eu.Resources = "eu", map[string]dataplane.Resources{"tnt_E": all}
	if f := Compare(eu, time.Minute); len(f) != 0 {
		t.Fatalf("eu's data plane with its tenant: %v", codes(f))
	}
	eu.Resources = map[string]dataplane.Resources{}
	if got := codes(Compare(eu, time.Minute)); !slices.Equal(got, []string{CodeResourceMissing + " tnt_E"}) {
		t.Fatalf("eu's data plane without its tenant: %v", got)
	}
	us := s
	us.Region, us.Resources = "us", map[string]dataplane.Resources{"tnt_E": {Schema: true}}
	f := Compare(us, time.Minute)
	if got := codes(f); !slices.Equal(got, []string{CodeResourceOutsideRegion + " tnt_E"}) || !strings.Contains(f[0].Detail, "lives in region eu; region us has") {
		t.Fatalf("us's data plane with an eu tenant's schema: %v %v", got, f)
	}
}
