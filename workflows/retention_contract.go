package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Audit retention (SPEC §9) is a Temporal Schedule that starts
// AuditRetentionWorkflow daily; each run purges every organisation's
// events past its plan's window, a batch per short transaction, in one
// heartbeating activity (activities.PurgeAuditTrails).

// RetentionWorkflowType is the retention workflow's type name.
const RetentionWorkflowType = "AuditRetentionWorkflow"

// RetentionScheduleID is the Schedule that starts retention runs; each
// run's workflow id is RetentionWorkflowID followed by the time it was
// due (the Schedule appends it).
const (
	RetentionScheduleID = "audit-retention"
	RetentionWorkflowID = "audit-retention"
)

// The Schedule's timing: daily at 03:00 UTC, a run skipped while the
// last still runs, and a run missed while Temporal was down taken up to
// a day late.
const (
	retentionEvery         = 24 * time.Hour
	retentionOffset        = 3 * time.Hour
	retentionCatchupWindow = 24 * time.Hour
)

// A pass is one activity; an attempt runs at most retentionAttempt, is
// given to another worker when it stops heartbeating for
// retentionHeartbeat (it resumes from its heartbeat), and the pass gives
// up within a day, before the next is due.
const (
	retentionAttempt   = 6 * time.Hour
	retentionHeartbeat = time.Minute
	retentionPass      = 23 * time.Hour
)

// RetentionParams is a retention run's input, as the Schedule gives it.
type RetentionParams struct {
	// Revision is the workflow code the Schedule was written for
	// (RetentionRevisionCurrent); a worker refuses one it does not know.
	Revision int
	// BatchSize is how many events one transaction purges at most
	// (store.PurgeBatch when 0).
	BatchSize int
	// StreamWait bounds how long events past their window wait for the
	// audit streams (store.StreamWait when 0).
	StreamWait time.Duration
	// Pause and RestFactor pace the purge (activities.RetentionInput):
	// after a batch it rests RestFactor times as long as the batch took
	// (DefaultRestFactor when 0), and at least Pause.
	Pause      time.Duration
	RestFactor int
}

// DefaultRestFactor keeps a purge to about a fifth of the time: pages
// and exports beside a purge at full speed took 1.4× as long on two
// cores (docs/performance.md, Audit retention).
const DefaultRestFactor = 4

func (p RetentionParams) validate() error {
	var bad []string
	if p.BatchSize < 0 || p.StreamWait < 0 || p.Pause < 0 || p.RestFactor < 0 {
		bad = append(bad, "BatchSize, StreamWait, Pause and RestFactor must not be negative")
	}
	if bad != nil {
		return temporal.NewNonRetryableApplicationError("invalid retention parameters: "+strings.Join(bad, "; "), "INVALID_PARAMS", nil)
	}
	return nil
}
