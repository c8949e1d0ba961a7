package workflows

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/domain"
)

// replay replays one recorded history through the current workflow code.
func replay(file string) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(TenantWorkflow)
	r.RegisterWorkflowWithOptions(OrganizationWorkflow, workflow.RegisterOptions{Name: OrganizationWorkflowType})
	r.RegisterWorkflowWithOptions(StreamWorkflow, workflow.RegisterOptions{Name: StreamWorkflowType})
	r.RegisterWorkflowWithOptions(AuditRetentionWorkflow, workflow.RegisterOptions{Name: RetentionWorkflowType})
	r.RegisterWorkflowWithOptions(UsageCloseWorkflow, workflow.RegisterOptions{Name: UsageCloseWorkflowType})
	r.RegisterWorkflowWithOptions(BillingWorkflow, workflow.RegisterOptions{Name: BillingWorkflowType})
	return r.ReplayWorkflowHistoryFromJSONFile(nil, file)
}

func histories(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no recorded histories %s in testdata", pattern)
	}
	return files
}

// TestRecordedHistoriesReplay replays histories of real runs (recorded by
// the integration tests with CP_RECORD_HISTORIES=1) through the current
// workflow code: a change that would break running sagas fails here. Such a
// change must be guarded with workflow.GetVersion. The set only grows.
func TestRecordedHistoriesReplay(t *testing.T) {
	for _, f := range histories(t, "*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if err := replay(f); err != nil {
				t.Fatalf("replay: %v", err)
			}
		})
	}
}

// TestAnUnversionedChangeFailsTheReplay makes an incompatible change to
// the workflow without a version gate (provisioning gains a step, so a run
// issues a command its history does not have) and checks that the replay
// of every recorded provisioning that completed catches it.
func TestAnUnversionedChangeFailsTheReplay(t *testing.T) {
	row := &domain.Lifecycle[slices.IndexFunc(domain.Lifecycle, func(t domain.Transition) bool { return t.Kind == domain.OpProvision })]
	saved := row.Steps
	row.Steps = map[domain.State][]domain.Step{"": append(slices.Clone(saved[""]), domain.StepSchema)}
	defer func() { row.Steps = saved }()
	// Every revision's recorded provisionings that completed, the current
	// one's included.
	var files []string
	for _, name := range []string{"lifecycle", "stuck-destruction", "cancel", "region"} {
		files = append(files, histories(t, "v*-"+name+".json")...)
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.HasPrefix(filepath.Base(f), HistoryPrefix()+"-") }) {
		t.Fatalf("no recorded history of the current revision (%s) among %v", HistoryPrefix(), files)
	}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "v1-") {
			continue // version 1 is frozen in tenant_v1.go, which reads its own step lists
		}
		if err := replay(f); err == nil {
			t.Errorf("%s replays through a workflow that provisions another step", f)
		}
	}
}

// TestAnOrganizationRunOfAnUnknownRevisionIsLeftAlone replays every
// recorded organisation history with its start input's revision changed
// to one this worker does not know: the replay fails (the worker refuses
// the task, so a worker that knows the revision takes it) instead of
// running the wrong code.
func TestAnOrganizationRunOfAnUnknownRevisionIsLeftAlone(t *testing.T) {
	for _, f := range histories(t, "org-v*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			hist, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var p OrganizationParams
			if err := json.Unmarshal(in.Data, &p); err != nil {
				t.Fatal(err)
			}
			if p.Revision != OrgRevisionCurrent && !slices.Contains(knownOrgRevisions, p.Revision) {
				t.Fatalf("recorded at revision %d, which this worker does not know", p.Revision)
			}
			p.Revision = 99
			if in.Data, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(OrganizationWorkflow, workflow.RegisterOptions{Name: OrganizationWorkflowType})
			err = r.ReplayWorkflowHistory(nil, hist)
			if err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
				t.Fatalf("a run of revision 99 replays: %v", err)
			}
		})
	}
}

// TestARetentionRunOfAnUnknownRevisionIsLeftAlone replays every recorded
// retention history with its input's revision changed to one this worker
// does not know, and expects the refusal, as for organisations.
func TestARetentionRunOfAnUnknownRevisionIsLeftAlone(t *testing.T) {
	for _, f := range histories(t, "retention-v*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			hist, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var p RetentionParams
			if err := json.Unmarshal(in.Data, &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(knownRetentionRevisions, p.Revision) {
				t.Fatalf("recorded at revision %d, which this worker does not know", p.Revision)
			}
			p.Revision = 99
			if in.Data, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(AuditRetentionWorkflow, workflow.RegisterOptions{Name: RetentionWorkflowType})
			err = r.ReplayWorkflowHistory(nil, hist)
			if err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
				t.Fatalf("a run of revision 99 replays: %v", err)
			}
		})
	}
}

// TestAUsageCloseRunOfAnUnknownRevisionIsLeftAlone replays every
// recorded usage close history with its input's revision changed to one
// this worker does not know, and expects the refusal, as for retention.
func TestAUsageCloseRunOfAnUnknownRevisionIsLeftAlone(t *testing.T) {
	for _, f := range histories(t, "usage-v*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			hist, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var p UsageParams
			if err := json.Unmarshal(in.Data, &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(knownUsageRevisions, p.Revision) {
				t.Fatalf("recorded at revision %d, which this worker does not know", p.Revision)
			}
			p.Revision = 99
			if in.Data, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(UsageCloseWorkflow, workflow.RegisterOptions{Name: UsageCloseWorkflowType})
			err = r.ReplayWorkflowHistory(nil, hist)
			if err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
				t.Fatalf("a run of revision 99 replays: %v", err)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAStreamRunOfAnUnknownRevisionIsLeftAlone is the organisation's test
// for the recorded stream histories: at a revision the worker does not
// know, their replay fails instead of running the wrong code.
func TestAStreamRunOfAnUnknownRevisionIsLeftAlone(t *testing.T) {
	for _, f := range histories(t, "stream-v*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			hist, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var p StreamParams
			if err := json.Unmarshal(in.Data, &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(knownStreamRevisions, p.Revision) {
				t.Fatalf("recorded at revision %d, which this worker does not know", p.Revision)
			}
			p.Revision = 99
			if in.Data, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(StreamWorkflow, workflow.RegisterOptions{Name: StreamWorkflowType})
			err = r.ReplayWorkflowHistory(nil, hist)
			if err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
				t.Fatalf("a run of revision 99 replays: %v", err)
			}
		})
	}
}

// TestABillingRunOfAnUnknownRevisionIsLeftAlone is the organisation's test
// for the recorded billing histories: at a revision the worker does not
// know, their replay fails instead of running the wrong code.
func TestABillingRunOfAnUnknownRevisionIsLeftAlone(t *testing.T) {
	for _, f := range histories(t, "billing-v*.json") {
		t.Run(filepath.Base(f), func(t *testing.T) {
			hist, err := client.HistoryFromJSON(mustOpen(t, f), client.HistoryJSONOptions{})
			if err != nil {
				t.Fatal(err)
			}
			in := hist.Events[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
			var p BillingParams
			if err := json.Unmarshal(in.Data, &p); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(knownBillingRevisions, p.Revision) {
				t.Fatalf("recorded at revision %d, which this worker does not know", p.Revision)
			}
			p.Revision = 99
			if in.Data, err = json.Marshal(p); err != nil {
				t.Fatal(err)
			}
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(BillingWorkflow, workflow.RegisterOptions{Name: BillingWorkflowType})
			err = r.ReplayWorkflowHistory(nil, hist)
			if err == nil || !strings.Contains(err.Error(), "revision 99 is unknown") {
				t.Fatalf("a run of revision 99 replays: %v", err)
			}
		})
	}
}
