package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/internal/domain"
)

// This file decides what a run's code revision means. It is the only reader
// of TenantParams.Revision and the only caller of workflow.GetVersion; the
// saga asks it for behaviours named for what they do. docs/architecture.md
// ("Revisions") says how to add one.
//
// The revisions:
//
//	0  runs started before revisions were given: their changes come from
//	   the version markers they recorded (versionSagas: version 1, frozen in
//	   tenant_v1.go, or later; versionLocalWrites).
//	4  changes come from the input, no markers; search attributes written
//	   only when they change; the saga's records as local activities; an
//	   operation's final record carries the saga's next status. (Expiry was
//	   added to the input while 4 was current, without a revision of its
//	   own; every worker in service since knows it.)
//	5  local writes bounded, then regular activities (retries that do not
//	   grow the history); a record that cannot succeed sticks the saga
//	   instead of being dropped; an expiry's operation id is derived, and
//	   the expiry's decision is carried across runs; a run continues as new
//	   at the current revision; audit event keys name the run.
//	6  a restore (or an operator's cancel in the grace period) of a tenant
//	   whose lifetime ended during the grace period ends the lifetime, so
//	   the tenant lives on instead of being decommissioned a moment later.
//	   (Lifetime changes, the "lifetime" update, are taken by runs of every
//	   revision from 4: a new kind of message, which an older worker
//	   refuses.)
//	7  a tenant may live in a region (TenantParams.Region): its data-plane
//	   steps run on the region's task queue, on workers that hold only
//	   that region's data plane, and their outcome is recorded by the
//	   control plane's worker. A run without a region behaves as 6.
//	8  the wait for the provision request (ReservationTimeout) cancels its
//	   timer when the request arrives, or starts none when it came with
//	   the start: a run no longer wakes, replayed from its history, when
//	   that timer would have fired.
const (
	RevisionInInput      = 4
	RevisionSagaCore     = 5
	RevisionRestoreKeeps = 6
	RevisionRegions      = 7
	RevisionWaitEnds     = 8
	// RevisionCurrent is the revision new runs start at and continued runs
	// move to.
	RevisionCurrent = RevisionWaitEnds
)

// versionSagas is the change id of the workflow's second version: repairs
// as updates, one commit point for restore, per-operation state, update
// ids kept across runs. Runs without its marker are version 1.
const versionSagas = "sagas-v2"

// versionLocalWrites is the change id of the writes a request waits for
// (reservation, beginning an operation) running as local activities, in the
// worker that runs the update, instead of as activity tasks queued behind
// the data-plane steps. Runs without its marker keep regular activities.
const versionLocalWrites = "local-writes"

// revision is what the run's code revision means to this worker.
type revision struct {
	n int
	// legacy: version 1, run by tenant_v1.go.
	legacy bool
	// localWrites: the writes a request waits for run as local activities.
	localWrites bool
}

// knownRevisions are the revisions this worker runs.
var knownRevisions = []int{0, RevisionInInput, RevisionSagaCore, RevisionRestoreKeeps, RevisionRegions, RevisionWaitEnds}

// revisionOf reads the run's revision. A revision this worker does not know
// panics, which fails the workflow task: the task is retried until a worker
// that knows the revision takes it, and nothing runs the wrong way. A run's
// first task reads it before anything else.
func revisionOf(ctx workflow.Context, p TenantParams) revision {
	switch p.Revision {
	case 0:
		if workflow.GetVersion(ctx, versionSagas, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
			return revision{legacy: true}
		}
		return revision{localWrites: workflow.GetVersion(ctx, versionLocalWrites, workflow.DefaultVersion, 1) == 1}
	case RevisionInInput, RevisionSagaCore, RevisionRestoreKeeps, RevisionRegions, RevisionWaitEnds:
		return revision{n: p.Revision, localWrites: true}
	}
	panic(unknownRevision("tenant workflow", p.Revision, knownRevisions))
}

// unknownRevision is what a worker panics with, failing the workflow task,
// when a run of what carries a revision it does not know: the task is
// retried until a worker that knows the revision takes it. Every
// workflow's revision gate ends with it.
func unknownRevision(what string, rev int, known []int) string {
	return fmt.Sprintf("%s revision %d is unknown to this worker, which runs revisions %v: "+
		"the task is left to a worker that knows it (docs/runbook.md, Rolling back workers)", what, rev, known)
}

// inInput: the run's changes come from its revision, not from markers.
func (r revision) inInput() bool { return r.n >= RevisionInInput }

// indexesOnlyChanges: a search-attribute write that would change nothing
// is not sent.
func (r revision) indexesOnlyChanges() bool { return r.n >= RevisionInInput }

// localRecords: the saga's records run as local activities.
func (r revision) localRecords() bool { return r.n >= RevisionInInput }

// statusWithFinalRecord: an operation's final record also writes the
// saga's next status.
func (r revision) statusWithFinalRecord() bool { return r.n >= RevisionInInput }

// boundedLocalWrites: a local write retries for localWriteBound, then goes
// on as a regular activity; a record is never dropped.
func (r revision) boundedLocalWrites() bool { return r.n >= RevisionSagaCore }

// stuckOnBrokenRecords: a record whose write cannot succeed sticks the saga
// until an operator's retry.
func (r revision) stuckOnBrokenRecords() bool { return r.n >= RevisionSagaCore }

// derivedExpiry: an expiry's operation id is derived from the workflow id,
// and its decision is carried to the next run.
func (r revision) derivedExpiry() bool { return r.n >= RevisionSagaCore }

// eventKeysPerRun: an audit event's key names the run (its id before any
// reset) as well as the event's number.
func (r revision) eventKeysPerRun() bool { return r.n >= RevisionSagaCore }

// restoreEndsAnEndedLifetime: a restore that wins the grace period of a
// tenant whose lifetime ended meanwhile ends the lifetime with it.
func (r revision) restoreEndsAnEndedLifetime() bool { return r.n >= RevisionRestoreKeeps }

// inRegion: a run with a region runs its data-plane steps on the region's
// task queue. A run of an earlier revision has no region.
func (r revision) inRegion(p TenantParams) bool { return r.n >= RevisionRegions && p.Region != "" }

// waitEnds: the wait for the provision request leaves no timer behind.
func (r revision) waitEnds() bool { return r.n >= RevisionWaitEnds }

// stepsSince are the steps added to a row of domain.Lifecycle after runs
// were already carrying it out, with the revision that added them: a run of
// an older revision goes on without them. Adding a step is a row's field
// here and there, and a revision (docs/architecture.md, "Adding a step").
var stepsSince = map[domain.Step]int{}

// steps are those of the lifecycle table's list a run of this revision
// runs: the list less the steps a later revision added.
func (r revision) steps(list []domain.Step) []domain.Step {
	out := make([]domain.Step, 0, len(list))
	for _, s := range list {
		if since, added := stepsSince[s]; !added || r.n >= since {
			out = append(out, s)
		}
	}
	return out
}

// continuedAt is the revision the run's next run starts at: the current
// one. The next run's history is empty and its state is the Continued
// struct every revision reads, so no recorded command can disagree.
func (r revision) continuedAt() int { return RevisionCurrent }

// HistoryPrefix names the recorded histories of the current revision:
// workflows/testdata/<prefix>-<name>.json.
func HistoryPrefix() string { return fmt.Sprintf("v%d", RevisionCurrent) }
