package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/intelliauth/controlplane/internal/store"
)

// RetentionInput is one pass of audit retention over every organisation.
type RetentionInput struct {
	// At is the pass's now (the workflow's time when it started): an
	// attempt retried later purges against the same windows.
	At time.Time
	// BatchSize is how many events one transaction purges at most
	// (store.PurgeBatch when 0).
	BatchSize int
	// StreamWait bounds how long past its window an event waits for the
	// audit streams (store.StreamWait when 0).
	StreamWait time.Duration
	// Pause and RestFactor pace a long purge, so it leaves the database
	// (and the machine) to customers' requests: after each batch of an
	// organisation with more to purge, the pass rests RestFactor times as
	// long as the batch took, and at least Pause. A batch that takes
	// longer under load makes the rest longer too, so the purge keeps to
	// about 1/(1+RestFactor) of the time whatever the load.
	Pause      time.Duration
	RestFactor int
}

// PurgeRest is how long a pass of in rests after a batch that took
// batch.
func PurgeRest(in RetentionInput, batch time.Duration) time.Duration {
	return max(in.Pause, time.Duration(in.RestFactor)*batch)
}

// RetentionProgress is how far a pass got: the activity's heartbeat, from
// which a retried attempt (after a worker's restart) resumes, and its
// result.
type RetentionProgress struct {
	// After is the last organisation done (they go in id order); the one
	// after it is taken up again from its checkpoint.
	After string
	// Orgs is how many organisations were purged, Events how many events.
	Orgs   int
	Events int64
	// HeldByStreams counts the organisations whose events past the window
	// wait for an audit stream; StreamsOvertaken the streams that missed
	// events purged past the streams' bound.
	HeldByStreams    int
	StreamsOvertaken int
}

// purgeableOrgsPage is how many organisations a pass lists at a time.
const purgeableOrgsPage = 100

// PurgeAuditTrails purges every organisation's events past its plan's
// window (store.PurgeAuditTrail), organisation after organisation in id
// order, a batch per transaction, heartbeating its progress after each.
// A retried attempt resumes after the last organisation its heartbeat
// names; the one it was in is taken up again from its checkpoint, so
// nothing is purged twice or skipped.
func (a *Activities) PurgeAuditTrails(ctx context.Context, in RetentionInput) (RetentionProgress, error) {
	var p RetentionProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			p = RetentionProgress{}
		}
	}
	log := activity.GetLogger(ctx)
	for {
		orgs, err := store.PurgeableOrgs(ctx, a.DB, in.At, p.After, purgeableOrgsPage)
		if err != nil {
			return p, err
		}
		for _, org := range orgs {
			for {
				began := time.Now()
				res, err := store.PurgeAuditTrail(ctx, a.DB, store.PurgeInput{OrgID: org, At: in.At, Limit: in.BatchSize, StreamWait: in.StreamWait})
				if err != nil {
					return p, err
				}
				p.Events += int64(res.Deleted)
				if len(res.Overtaken) > 0 {
					p.StreamsOvertaken += len(res.Overtaken)
					log.Warn("audit events purged before streams delivered them (past the streams' bound)",
						"org_id", org, "streams", res.Overtaken, "purged_through_seq", res.Checkpoint.Seq)
				}
				activity.RecordHeartbeat(ctx, p)
				if !res.More {
					if res.HeldByStreams {
						p.HeldByStreams++
					}
					break
				}
				select {
				case <-ctx.Done():
					return p, ctx.Err()
				case <-time.After(PurgeRest(in, time.Since(began))):
				}
			}
			p.After = org
			p.Orgs++
			activity.RecordHeartbeat(ctx, p)
		}
		if len(orgs) < purgeableOrgsPage {
			return p, nil
		}
	}
}
