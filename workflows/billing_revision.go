package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// This file decides what a billing workflow run's code revision means, as
// stream_revision.go does for streams: a revision this worker does not
// know fails the workflow task (a worker that knows it takes it) instead
// of running the wrong way. docs/architecture.md ("Revisions") says how
// to add one: a constant, its behaviour here, recorded histories
// (workflows/testdata/billing-v<n>-*.json) and a replay test.
//
// The revisions:
//
//	1  Stripe events applied one at a time in the order their signals
//	   came (ApplyBillingEvent), a durable timer to a past_due grace's
//	   end (EndBillingGrace, then CancelBillingSubscription), the run
//	   ends after a week idle, continue-as-new every 500 events.
const (
	BillingRevisionEvents = 1
	// BillingRevisionCurrent is the revision new runs start at.
	BillingRevisionCurrent = BillingRevisionEvents
)

// knownBillingRevisions are the revisions this worker runs.
var knownBillingRevisions = []int{BillingRevisionEvents}

// billingRevisionOf reads the run's revision; an unknown one panics, which
// fails the workflow task until a worker that knows it takes it.
func billingRevisionOf(_ workflow.Context, p BillingParams) int {
	switch p.Revision {
	case BillingRevisionEvents:
		return p.Revision
	}
	panic(unknownRevision("billing workflow", p.Revision, knownBillingRevisions))
}

// BillingHistoryPrefix names the recorded histories of the current
// revision: workflows/testdata/<prefix>-<name>.json.
func BillingHistoryPrefix() string { return fmt.Sprintf("billing-v%d", BillingRevisionCurrent) }
