package workflows

// versionSagas is the change id of the workflow's second version: repairs
// as updates, one commit point for restore, per-operation state, update
// ids kept across runs. Runs without its marker are version 1.
const versionSagas = "sagas-v2"

// versionLocalWrites is the change id of the writes a request waits for
// (reservation, beginning an operation) running as local activities, in the
// worker that runs the update, instead of as activity tasks queued behind
// the data-plane steps. Runs without its marker keep regular activities.
const versionLocalWrites = "local-writes"

// Revisions of the workflow code, given in TenantParams.Revision by the
// code that starts a run. A run started at RevisionInInput or later takes
// every change up to its revision from its input instead of from
// workflow.GetVersion, whose version markers (and the search-attribute
// write the SDK adds to each) cost a creation's first workflow task time;
// and it writes its search attributes only when they change. Runs started
// without a revision (0) keep the version markers they recorded. Workers are
// upgraded before the APIs that start runs at a new revision.
const (
	RevisionInInput = 4
	// RevisionCurrent is the revision new runs are started at.
	RevisionCurrent = RevisionInInput
)

// inInput reports whether the run takes its changes from its revision
// (RevisionInInput) rather than from version markers.
func (p TenantParams) inInput() bool { return p.Revision >= RevisionInInput }
