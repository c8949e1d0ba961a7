package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

// Streams are the activities of audit streams, registered on a task queue
// of their own so that a receiver holding its batches never takes a slot
// a tenant's saga waits for.
type Streams struct {
	DB *bun.DB
	// Keys open the streams' sealed secrets and credentials.
	Keys *seal.Ring
	// Client is outbound.NewClient's, for customers' endpoints.
	Client *http.Client
}

// scanWindow bounds the part of the chain one read of a stream's events
// covers: a filter that takes few events reads at most this many seqs at
// once, and moves the cursor past those it does not take.
const scanWindow = 10_000

// heartbeatEvery is how often a delivery says it is alive, also while a
// receiver holds a batch: a worker that died is noticed within the
// workflow's heartbeat timeout.
const heartbeatEvery = 2 * time.Second

// DeliverInput is one run of a stream's delivery.
type DeliverInput struct {
	StreamID string
	// Attempt is which attempt at the batch after the cursor this is: 1,
	// then one more for each failure before it.
	Attempt int
	// For bounds the run: it returns once it has delivered for this long.
	For time.Duration
}

// DeliverResult is how a run ended. A receiver's refusal is a result,
// never an error: the workflow decides the backoff.
type DeliverResult struct {
	// Gone: the stream was deleted (or its organisation erased).
	Gone   bool
	Status domain.StreamStatus
	// CaughtUp: the cursor reached the chain's head.
	CaughtUp bool
	// Events and Batches delivered by this run.
	Events, Batches int
	// Failed: a delivery failed (and was logged); Error says why in a
	// sentence fit for the customer, HTTPStatus is the receiver's (0:
	// none came), RetryAfter what it asked for, FailingSince when this
	// run of failures began.
	Failed       bool
	Error        string
	HTTPStatus   int
	RetryAfter   time.Duration
	FailingSince *time.Time
}

// DeliverStream delivers the stream's events after its cursor, in order,
// in batches (auditstream.Batches), each signed, and moves the cursor past
// each batch delivered, by a compare-and-set on where it read it, in the
// transaction that logs the delivery (a replay that moved it meanwhile
// wins: the run reads the stream again). It returns when the stream is
// caught up, paused, suspended or deleted, after a failed delivery, or
// once it has delivered for in.For. Each batch is marked in flight before
// it is sent (store.MarkInflight): a batch whose attempt ended without an
// answer (refused, timed out, its worker killed) is sent again, the same
// events with the same Idempotency-Key, by the next attempt.
func (a *Streams) DeliverStream(ctx context.Context, in DeliverInput) (DeliverResult, error) {
	stop := keepAlive(ctx)
	defer stop()
	start := time.Now()
	var res DeliverResult
	attempt := max(in.Attempt, 1)
	for {
		s, found, err := store.StreamForDelivery(ctx, a.DB, in.StreamID)
		if err != nil {
			return res, err
		}
		if !found || s.DeletedAt != nil {
			res.Gone = true
			return res, nil
		}
		res.Status = domain.StreamStatus(s.Status)
		if !res.Status.Delivering() {
			return res, nil
		}
		more, err := a.deliverOnce(ctx, s, attempt, &res)
		if err != nil || res.Failed || res.CaughtUp {
			if res.Batches > 0 || res.Failed {
				err = errors.Join(err, store.PruneStreamDeliveries(ctx, a.DB, s.ID))
			}
			return res, err
		}
		if more {
			attempt = 1
		}
		if time.Since(start) >= in.For {
			return res, store.PruneStreamDeliveries(ctx, a.DB, s.ID)
		}
	}
}

// deliverOnce reads one window of the stream's events after its cursor
// and delivers them, batch after batch, until one fails, the cursor is
// found moved, or a person changed the stream. It reports whether any
// batch was delivered.
func (a *Streams) deliverOnce(ctx context.Context, s store.AuditStream, attempt int, res *DeliverResult) (bool, error) {
	head, err := store.ChainLength(ctx, a.DB, s.OrgID)
	if err != nil {
		return false, err
	}
	if s.CursorSeq >= head {
		res.CaughtUp = true
		return false, nil
	}
	upTo := min(head, s.CursorSeq+scanWindow)
	if s.InflightSeq != nil && *s.InflightSeq <= head {
		// An attempt at a batch ended without its answer: this one sends
		// that batch again, cut the same way, with the same key.
		upTo = *s.InflightSeq
	}
	evs, err := store.StreamEvents(ctx, a.DB, s.OrgID, s.CursorSeq, upTo, s.Actions, auditstream.MaxBatchEvents)
	if err != nil {
		return false, err
	}
	// Fewer than asked for: none after them up to upTo is the filter's.
	through := upTo
	if len(evs) == auditstream.MaxBatchEvents {
		through = evs[len(evs)-1].Seq
	}
	if len(evs) == 0 {
		_, err := store.MoveCursor(ctx, a.DB, s.ID, s.CursorSeq, through, nil)
		return false, err
	}
	target, err := StreamTarget(s, a.Keys)
	if err != nil {
		// An operator's matter (a key left the ring): the stream fails,
		// visibly, and is retried as any failure.
		return false, a.fail(ctx, s, auditstream.Batch{FirstID: evs[0].ID, LastID: evs[0].ID, FirstSeq: evs[0].Seq, LastSeq: evs[0].Seq, Count: 1},
			attempt, auditstream.Result{Err: errors.New("the control plane cannot open this stream's secrets; its operators are told")}, res)
	}
	batches, err := auditstream.Batches(target, streamEvents(evs))
	if err != nil {
		return false, fmt.Errorf("encode the events of audit stream %s: %w", s.ID, err)
	}
	cursor := s.CursorSeq
	for i, b := range batches {
		if ok, err := store.MarkInflight(ctx, a.DB, s, cursor, b.LastSeq); err != nil || !ok {
			return res.Batches > 0, err // !ok: a replay, a person's change or a suspension overtook the read; read it again
		}
		r := auditstream.Deliver(ctx, a.Client, target, b)
		if ctx.Err() != nil {
			// The worker is stopping or the run timed out: Temporal runs
			// the activity again, which sends this batch again.
			return res.Batches > 0, fmt.Errorf("delivery of audit stream %s interrupted: %w", s.ID, ctx.Err())
		}
		if r.Err != nil {
			return res.Batches > 0, a.fail(ctx, s, b, attempt, r, res)
		}
		to := b.LastSeq
		if i == len(batches)-1 {
			to = through
		}
		m, err := store.MoveCursor(ctx, a.DB, s.ID, cursor, to, delivery(s, b, attempt, r, store.DeliveryDelivered))
		if err != nil {
			return res.Batches > 0, err
		}
		res.Events, res.Batches, attempt = res.Events+b.Count, res.Batches+1, 1
		activity.RecordHeartbeat(ctx, res.Events)
		if !m.Moved || m.Status != domain.StreamActive || m.Version != s.Version {
			break // a person replayed, paused or changed it: read it again
		}
		cursor = to
	}
	return true, nil
}

// fail logs a failed delivery and makes the stream failing.
func (a *Streams) fail(ctx context.Context, s store.AuditStream, b auditstream.Batch, attempt int, r auditstream.Result, res *DeliverResult) error {
	f, err := store.RecordFailure(ctx, a.DB, delivery(s, b, attempt, r, store.DeliveryFailed))
	if err != nil {
		return err
	}
	res.Failed, res.Error, res.HTTPStatus, res.RetryAfter = true, r.Err.Error(), r.Status, r.RetryAfter
	res.Status, res.FailingSince = f.Status, f.Since
	return nil
}

func delivery(s store.AuditStream, b auditstream.Batch, attempt int, r auditstream.Result, outcome string) *store.Delivery {
	d := &store.Delivery{StreamID: s.ID, Outcome: outcome, FirstEventID: b.FirstID, LastEventID: b.LastID, FirstSeq: b.FirstSeq, LastSeq: b.LastSeq,
		EventCount: b.Count, Bytes: len(b.Body), IdempotencyKey: b.IdempotencyKey(s.ID), Status: r.Status,
		LatencyMS: int(r.Latency / time.Millisecond), Attempt: attempt, AttemptedAt: time.Now().UTC()}
	if r.Err != nil {
		d.Error = r.Err.Error()
	}
	return d
}

// streamEvents are the events as a stream carries them: each as the API
// shows it.
func streamEvents(evs []store.AuditEvent) []auditstream.Event {
	out := make([]auditstream.Event, len(evs))
	for i, e := range evs {
		b, _ := json.Marshal(e.View()) // a view of strings, times and JSON the database gave back
		out[i] = auditstream.Event{ID: e.ID, Seq: e.Seq, Action: e.Action, OccurredAt: e.OccurredAt, JSON: b}
	}
	return out
}

// StreamTarget is where and how a stream delivers, its secret and
// credential opened with the key ring.
func StreamTarget(s store.AuditStream, keys *seal.Ring) (auditstream.Target, error) {
	t := auditstream.Target{Kind: auditstream.Kind(s.Kind), Endpoint: s.Endpoint, StreamID: s.ID, OrgID: s.OrgID}
	if s.Format != nil {
		t.Format = auditstream.Format(*s.Format)
	}
	if s.SecretSealed != nil {
		secret, err := keys.Open(s.SecretSealed, store.StreamSealContext(s.ID, store.SealedSecret))
		if err != nil {
			return t, fmt.Errorf("open the secret of audit stream %s: %w", s.ID, err)
		}
		t.Secret = secret
	}
	if s.CredentialSealed != nil {
		credential, err := keys.Open(s.CredentialSealed, store.StreamSealContext(s.ID, store.SealedCredential))
		if err != nil {
			return t, fmt.Errorf("open the credential of audit stream %s: %w", s.ID, err)
		}
		t.Credential = string(credential)
	}
	return t, nil
}

// keepAlive heartbeats every heartbeatEvery until stopped, so a run that
// waits on a receiver is not taken for a dead worker's.
func keepAlive(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// SuspendInput is a stream to suspend: still failing since Since.
type SuspendInput struct {
	StreamID   string
	Since      time.Time
	WorkflowID string
	EventKey   string
}

// SuspendStream suspends a stream that has failed since in.Since, with its
// audit_stream.suspended event (store.SuspendStream); false when a person
// acted on it meanwhile or it delivered.
func (a *Streams) SuspendStream(ctx context.Context, in SuspendInput) (bool, error) {
	return store.SuspendStream(ctx, a.DB, in.StreamID, in.Since, in.WorkflowID, in.EventKey)
}
