package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// This file decides what a usage close run's code revision means, as
// retention_revision.go does for retention: an unknown revision fails
// the workflow task (a worker that knows it takes it) instead of running
// the wrong way. A new one needs a constant, its behaviour here, a
// recorded history (workflows/testdata/usage-v<n>-*.json) and a replay
// test.
//
// The revisions:
//
//	1  UsageDaysToClose, then for each day (oldest first) CloseUsageDay
//	   and ReportUsageDay.
const (
	UsageRevisionDays = 1
	// UsageRevisionCurrent is the revision the Schedule starts runs at.
	UsageRevisionCurrent = UsageRevisionDays
)

// knownUsageRevisions are the revisions this worker runs.
var knownUsageRevisions = []int{UsageRevisionDays}

// usageRevision is what the run's code revision means to this worker.
type usageRevision struct{ n int }

// usageRevisionOf reads the run's revision; an unknown one panics, which
// fails the workflow task until a worker that knows it takes it.
func usageRevisionOf(_ workflow.Context, p UsageParams) usageRevision {
	switch p.Revision {
	case UsageRevisionDays:
		return usageRevision{n: p.Revision}
	}
	panic(unknownRevision("usage close workflow", p.Revision, knownUsageRevisions))
}

// UsageHistoryPrefix names the recorded histories of the current
// revision: workflows/testdata/<prefix>-<name>.json.
func UsageHistoryPrefix() string { return fmt.Sprintf("usage-v%d", UsageRevisionCurrent) }
