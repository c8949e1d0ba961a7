package workflows

import (
	"fmt"
	"hash/fnv"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// StreamWorkflow delivers one audit stream for its whole life (SPEC §9):
// it runs DeliverStream, which delivers the events after the stream's
// cursor for up to a minute and says how it ended; then, caught up, it
// waits for a wake signal (or its long timer); failing, it backs off
// (Retry-After honoured) and, once the stream has failed for
// SuspendAfter, suspends it; paused or suspended, it waits for a wake
// (a person's resume). It ends when the stream is deleted, and continues
// as new every streamLoopsPerRun runs. The cursor, the status and the
// delivery log are in Postgres: the workflow holds only its failures in a
// row.
func StreamWorkflow(ctx workflow.Context, p StreamParams) error {
	streamRevisionOf(ctx, p)
	if err := p.validate(); err != nil {
		return err
	}
	s := &stream{p: p, phase: StreamPhaseDelivering, log: log.With(workflow.GetLogger(ctx), "stream_id", p.StreamID, "org_id", p.OrgID)}
	if c := p.Continued; c != nil {
		s.failures = c.Failures
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (StreamStatus, error) { return s.status(), nil }); err != nil {
		return err
	}
	s.wake = workflow.GetSignalChannel(ctx, SignalWake)
	for loop := 0; ; loop++ {
		if loop >= streamLoopsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			// A wake not taken yet is made up by the next run, which
			// begins with a delivery.
			s.drain()
			next := p
			next.Revision, next.Continued = StreamRevisionCurrent, &StreamContinued{Failures: s.failures}
			s.log.Info("stream continues as new", "loops", loop)
			return workflow.NewContinueAsNewError(ctx, StreamWorkflowType, next)
		}
		s.phase = StreamPhaseDelivering
		res, err := s.deliver(ctx)
		if temporal.IsCanceledError(err) || ctx.Err() != nil {
			// The workflow was cancelled: it ends, and the next wake of
			// its stream starts it again (SignalWithStart).
			return err
		}
		if err != nil {
			// Not a receiver's refusal (those are results): what Temporal
			// gave up retrying. Backed off as a failure, never a spin.
			res = activities.DeliverResult{Status: domain.StreamActive, Failed: true, Error: "the delivery could not run; it is retried"}
		}
		woken := s.drain()
		switch {
		case res.Gone:
			s.log.Info("stream deleted: its workflow ends")
			return nil
		case res.Failed:
			s.failed(ctx, res)
		case !res.Status.Delivering():
			s.failures, s.nextAttempt = 0, nil
			s.phase = StreamPhaseHeld
			s.await(ctx, streamIdleWake)
		case res.CaughtUp:
			s.failures, s.nextAttempt = 0, nil
			if !woken {
				s.phase = StreamPhaseIdle
				s.await(ctx, streamIdleWake)
			}
		default:
			// The run's minute is over and there is more: go on.
			s.failures, s.nextAttempt = 0, nil
		}
	}
}

// stream is one run's state.
type stream struct {
	p     StreamParams
	log   log.Logger
	wake  workflow.ReceiveChannel
	phase string
	// failures counts the failed deliveries in a row.
	failures    int
	nextAttempt *time.Time
	lastError   string
	delivered   int
}

// deliver runs one delivery. An error of the activity (the database
// unreachable, a worker gone) is Temporal's to retry, for as long as it
// lasts; a receiver's refusal is the result's.
func (s *stream) deliver(ctx workflow.Context) (activities.DeliverResult, error) {
	var a *activities.Streams
	opts := workflow.ActivityOptions{
		TaskQueue:           s.p.DeliveryQueue,
		StartToCloseTimeout: streamRunFor + 5*time.Minute,
		HeartbeatTimeout:    deliverHeartbeat,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}
	var res activities.DeliverResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.DeliverStream,
		activities.DeliverInput{StreamID: s.p.StreamID, Attempt: s.failures + 1, For: streamRunFor}).Get(ctx, &res)
	if err != nil {
		s.log.Warn("a delivery run ended in an error", "error", rootCause(err))
		return res, err
	}
	s.delivered += res.Events
	return res, nil
}

// failed backs off after a failed delivery, or suspends the stream once it
// has failed for SuspendAfter.
func (s *stream) failed(ctx workflow.Context, res activities.DeliverResult) {
	s.failures++
	s.lastError = res.Error
	if res.Status == domain.StreamFailing && res.FailingSince != nil && workflow.Now(ctx).Sub(*res.FailingSince) >= s.p.SuspendAfter {
		if s.suspend(ctx, *res.FailingSince) {
			s.log.Warn("stream suspended after failing too long", "failing_since", *res.FailingSince, "last_error", res.Error)
			s.failures, s.nextAttempt, s.phase = 0, nil, StreamPhaseHeld
			s.await(ctx, streamIdleWake)
			return
		}
	}
	wait := max(s.backoff(), res.RetryAfter)
	at := workflow.Now(ctx).Add(wait)
	s.phase, s.nextAttempt = StreamPhaseBackoff, &at
	s.log.Info("stream delivery failed", "failures", s.failures, "retry_in", wait, "error", res.Error)
	s.await(ctx, wait)
}

// suspend writes the suspension, with its event, unless a person acted on
// the stream meanwhile; it reports whether it was written.
func (s *stream) suspend(ctx workflow.Context, since time.Time) bool {
	var a *activities.Streams
	info := workflow.GetInfo(ctx)
	opts := workflow.ActivityOptions{
		TaskQueue:           s.p.DeliveryQueue,
		StartToCloseTimeout: WriteTimeout,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	}
	var done bool
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), a.SuspendStream, activities.SuspendInput{
		StreamID: s.p.StreamID, Since: since, WorkflowID: info.WorkflowExecution.ID,
		// One suspension per run of failures, whatever retries or replays.
		EventKey: fmt.Sprintf("%s/suspended/%d", info.WorkflowExecution.ID, since.UnixMicro()),
	}).Get(ctx, &done)
	if err != nil {
		s.log.Error("the suspension could not be written", "error", rootCause(err))
		return false
	}
	return done
}

// backoff is the wait after the failures so far: 1 s doubling to 5
// minutes, stretched by the stream's own fraction (deterministic: from its
// id).
func (s *stream) backoff() time.Duration {
	d := streamBackoffFirst
	for i := 1; i < s.failures && d < streamBackoffMax; i++ {
		d *= 2
	}
	d = min(d, streamBackoffMax)
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.p.StreamID))
	return d + d*time.Duration(h.Sum32()%200)/1000
}

// await waits for a wake signal or the timeout, whichever comes first; the
// timer is cancelled when a wake comes.
func (s *stream) await(ctx workflow.Context, d time.Duration) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(tctx, d)
	sel := workflow.NewSelector(ctx)
	sel.AddReceive(s.wake, func(c workflow.ReceiveChannel, more bool) { c.Receive(ctx, nil) })
	sel.AddFuture(timer, func(workflow.Future) {})
	sel.Select(ctx)
	s.drain()
}

// drain takes every wake already sent and reports whether there was one.
func (s *stream) drain() bool {
	woken := false
	for s.wake.ReceiveAsync(nil) {
		woken = true
	}
	return woken
}

func (s *stream) status() StreamStatus {
	return StreamStatus{StreamID: s.p.StreamID, Phase: s.phase, Failures: s.failures, NextAttemptAt: s.nextAttempt,
		LastError: s.lastError, Delivered: s.delivered}
}
