package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// This file decides what an organisation workflow run's code revision
// means, as revision.go does for tenants: the saga asks it for behaviours
// named for what they do, and a revision this worker does not know fails
// the workflow task (a worker that knows it takes it) instead of running
// the wrong way. docs/architecture.md ("Revisions") says how to add one:
// a constant, its behaviour here, a recorded history
// (workflows/testdata/org-v<n>-*.json) and a replay test.
//
// The revisions:
//
//	1  the deletion: a grace period (tenants suspended through their own
//	   sagas), then each tenant ended through its saga with no grace
//	   period (its lifetime set to now), the wait for every tenant's end,
//	   and the erasure.
const (
	OrgRevisionDeletion = 1
	// OrgRevisionCurrent is the revision new runs start at.
	OrgRevisionCurrent = OrgRevisionDeletion
)

// knownOrgRevisions are the revisions this worker runs.
var knownOrgRevisions = []int{OrgRevisionDeletion}

// orgRevision is what the run's code revision means to this worker.
type orgRevision struct{ n int }

// orgRevisionOf reads the run's revision; an unknown one panics, which
// fails the workflow task until a worker that knows it takes it.
func orgRevisionOf(_ workflow.Context, p OrganizationParams) orgRevision {
	switch p.Revision {
	case OrgRevisionDeletion:
		return orgRevision{n: p.Revision}
	}
	panic(unknownRevision("organisation workflow", p.Revision, knownOrgRevisions))
}

// OrgHistoryPrefix names the recorded histories of the current revision:
// workflows/testdata/<prefix>-<name>.json.
func OrgHistoryPrefix() string { return fmt.Sprintf("org-v%d", OrgRevisionCurrent) }
