package workflows

import (
	"path/filepath"
	"slices"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/intelliauth/controlplane/internal/domain"
)

// replay replays one recorded history through the current workflow code.
func replay(file string) error {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(TenantWorkflow)
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
// the workflow without a version gate (provisioning's steps in another
// order) and checks that the replay of recorded histories catches it.
func TestAnUnversionedChangeFailsTheReplay(t *testing.T) {
	saved := slices.Clone(domain.ProvisionSteps)
	domain.ProvisionSteps[0], domain.ProvisionSteps[1] = domain.ProvisionSteps[1], domain.ProvisionSteps[0]
	defer copy(domain.ProvisionSteps, saved)
	for _, f := range histories(t, "v2-*.json") {
		if err := replay(f); err == nil {
			t.Errorf("%s replays through a workflow whose steps changed order", filepath.Base(f))
		}
	}
}
