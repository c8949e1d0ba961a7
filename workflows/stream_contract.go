package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/intelliauth/controlplane/internal/domain"
)

// StreamWorkflowType is an audit stream's workflow type name, as
// visibility queries name it (WorkflowType='AuditStreamWorkflow').
const StreamWorkflowType = "AuditStreamWorkflow"

// SignalWake tells a stream's workflow to look at its stream again: new
// events (the workers' notifier), or a person's change (a resume, a
// replay, an edit, a deletion). Wakes coalesce; one lost is made up by
// the workflow's long timer. Its status query is QueryStatus.
const SignalWake = "wake"

// StreamWorkflowID is the workflow id of a stream: one per stream, for its
// whole life.
func StreamWorkflowID(streamID string) string { return "audit-stream/" + streamID }

// StreamTaskQueue is the task queue of the streams' deliveries beside the
// workers' queue: a slot pool of their own (CP_STREAM_DELIVERIES), so a
// receiver that holds its batches never takes a tenant saga's slot.
func StreamTaskQueue(taskQueue string) string { return taskQueue + "-streams" }

// What a stream's workflow does between deliveries.
const (
	// streamRunFor bounds one delivery run: the workflow records each run,
	// so a stream far behind is a run a minute, not one per batch.
	streamRunFor = time.Minute
	// streamIdleWake is the long timer of a stream with nothing to do: a
	// wake that was lost is made up within it, and an idle stream costs
	// one timer, nothing else.
	streamIdleWake = time.Hour
	// streamLoopsPerRun bounds a run's history: it continues as new after
	// so many deliveries (or when Temporal suggests it).
	streamLoopsPerRun = 200
	// The backoff of a failing stream: 1 s, doubling, at most 5 minutes,
	// stretched by up to a fifth by the stream's id, so the streams of one
	// receiver that fell over do not retry in step.
	streamBackoffFirst = time.Second
	streamBackoffMax   = 5 * time.Minute
	// deliverHeartbeat is how soon a delivery whose worker died is run
	// again elsewhere.
	deliverHeartbeat = 10 * time.Second
)

// Phases of a stream's workflow, as its status query shows them.
const (
	StreamPhaseDelivering = "delivering"
	StreamPhaseIdle       = "idle"
	StreamPhaseBackoff    = "backoff"
	StreamPhaseHeld       = "held" // paused or suspended: waits for a person
)

// StreamParams starts a stream's workflow. Every setting is given by the
// starter (from the configuration), and carried across continue-as-new.
type StreamParams struct {
	StreamID string
	OrgID    string
	// DeliveryQueue is the task queue its deliveries run on
	// (StreamTaskQueue of the workers').
	DeliveryQueue string
	// SuspendAfter is how long the stream may fail before it is suspended
	// (CP_STREAM_SUSPEND_AFTER).
	SuspendAfter time.Duration
	// Revision is the workflow code the run was started at
	// (StreamRevisionCurrent).
	Revision int
	// Continued is the state a run hands the next one whole.
	Continued *StreamContinued
}

// StreamContinued is what a stream's workflow carries across
// continue-as-new: the failures in a row so far, so the backoff goes on
// where it was.
type StreamContinued struct {
	Failures int
}

func (p StreamParams) validate() error {
	var bad []string
	if !domain.ValidID(domain.PrefixAuditStream, p.StreamID) || p.OrgID == "" {
		bad = append(bad, "stream and organisation ids are required")
	}
	if p.DeliveryQueue == "" || p.SuspendAfter <= 0 {
		bad = append(bad, "DeliveryQueue and a positive SuspendAfter are required")
	}
	if bad != nil {
		return temporal.NewNonRetryableApplicationError("invalid stream workflow parameters: "+strings.Join(bad, "; "), "INVALID_PARAMS", nil)
	}
	return nil
}

// StreamStatus is what a stream's status query answers.
type StreamStatus struct {
	StreamID string `json:"stream_id"`
	Phase    string `json:"phase"`
	// Failures is the failed deliveries in a row; NextAttemptAt, in
	// backoff, when the next is.
	Failures      int        `json:"failures"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	// Delivered counts the events this run delivered.
	Delivered int `json:"delivered"`
}
