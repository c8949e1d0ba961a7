package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// This file decides what a stream workflow run's code revision means, as
// revision.go does for tenants and organization_revision.go for
// organisations: a revision this worker does not know fails the workflow
// task (a worker that knows it takes it) instead of running the wrong
// way. docs/architecture.md ("Revisions") says how to add one: a
// constant, its behaviour here, recorded histories
// (workflows/testdata/stream-v<n>-*.json) and a replay test.
//
// The revisions:
//
//	1  delivery runs of a minute on the streams' task queue, a wake
//	   signal or an hour's timer between them, backoff from 1 s to 5 min
//	   while failing, suspension after SuspendAfter, continue-as-new
//	   every 200 runs.
const (
	StreamRevisionDelivery = 1
	// StreamRevisionCurrent is the revision new runs start at.
	StreamRevisionCurrent = StreamRevisionDelivery
)

// knownStreamRevisions are the revisions this worker runs.
var knownStreamRevisions = []int{StreamRevisionDelivery}

// streamRevisionOf reads the run's revision; an unknown one panics, which
// fails the workflow task until a worker that knows it takes it.
func streamRevisionOf(_ workflow.Context, p StreamParams) int {
	switch p.Revision {
	case StreamRevisionDelivery:
		return p.Revision
	}
	panic(unknownRevision("stream workflow", p.Revision, knownStreamRevisions))
}

// StreamHistoryPrefix names the recorded histories of the current
// revision: workflows/testdata/<prefix>-<name>.json.
func StreamHistoryPrefix() string { return fmt.Sprintf("stream-v%d", StreamRevisionCurrent) }
