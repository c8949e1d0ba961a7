package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// This file decides what a retention run's code revision means, as
// revision.go does for tenants and organization_revision.go for
// organisations: an unknown revision fails the workflow task (a worker
// that knows it takes it) instead of running the wrong way. A new one
// needs a constant, its behaviour here, a recorded history
// (workflows/testdata/retention-v<n>-*.json) and a replay test.
//
// The revisions:
//
//	1  one pass: PurgeAuditTrails over every organisation, at the run's
//	   start time, resumed from its heartbeat when retried.
const (
	RetentionRevisionPass = 1
	// RetentionRevisionCurrent is the revision the Schedule starts runs
	// at.
	RetentionRevisionCurrent = RetentionRevisionPass
)

// knownRetentionRevisions are the revisions this worker runs.
var knownRetentionRevisions = []int{RetentionRevisionPass}

// retentionRevision is what the run's code revision means to this
// worker.
type retentionRevision struct{ n int }

// retentionRevisionOf reads the run's revision; an unknown one panics,
// which fails the workflow task until a worker that knows it takes it.
func retentionRevisionOf(_ workflow.Context, p RetentionParams) retentionRevision {
	switch p.Revision {
	case RetentionRevisionPass:
		return retentionRevision{n: p.Revision}
	}
	panic(fmt.Sprintf("retention workflow revision %d is unknown to this worker, which runs revisions %v: "+
		"the task is left to a worker that knows it (docs/runbook.md, Rolling back workers)", p.Revision, knownRetentionRevisions))
}

// RetentionHistoryPrefix names the recorded histories of the current
// revision: workflows/testdata/<prefix>-<name>.json.
func RetentionHistoryPrefix() string { return fmt.Sprintf("retention-v%d", RetentionRevisionCurrent) }
