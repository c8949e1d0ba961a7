package api

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// streamView is an audit stream as the API shows it: never its secret
// or credential.
type streamView struct {
	ID       string              `json:"id"`
	OrgID    string              `json:"org_id"`
	Name     string              `json:"name"`
	Kind     auditstream.Kind    `json:"kind"`
	Endpoint string              `json:"endpoint"`
	Format   *auditstream.Format `json:"format" doc:"https: ndjson or cloudevents; null for splunk_hec and datadog, which have their own."`
	Actions  []string            `json:"actions" doc:"Exact actions and families (tenant.*) it delivers; empty: every event."`
	Status   domain.StreamStatus `json:"status" doc:"active: delivering; paused: held by a person; failing: its receiver refuses or cannot be reached, and it retries with backoff; suspended: it failed for CP_STREAM_SUSPEND_AFTER (24 h by default) and waits for a person to resume it (PATCH paused: false)."`
	Cursor   *string             `json:"cursor" doc:"The last event delivered (after a replay, the event before the replay's start); null before the first."`
	// CursorSeq is the cursor's place in the organisation's chain.
	CursorSeq      int64      `json:"cursor_seq" doc:"The stream's place in the organisation's audit chain (an event's seq): every event up to it was delivered, or passed over by the actions filter."`
	Lag            streamLag  `json:"lag"`
	LastError      *string    `json:"last_error" doc:"What the last failed delivery met, in a sentence (the receiver's status and the start of its answer, or what failed on the way); null when none failed."`
	LastErrorAt    *time.Time `json:"last_error_at"`
	FailingSince   *time.Time `json:"failing_since" doc:"When its current run of failures began; null unless failing or suspended."`
	LastDeliveryAt *time.Time `json:"last_delivery_at"`
	HasCredential  bool       `json:"has_credential" doc:"Whether a credential (HEC token, Datadog key) is set; it is never shown."`
	CreatedBy      string     `json:"created_by"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

// streamLag is how far behind a stream is.
type streamLag struct {
	Events  int64 `json:"events" doc:"Events after the cursor, whether or not the filter takes them (a stream with nothing to deliver moves its cursor past the others)."`
	Seconds int64 `json:"seconds" doc:"How long ago the first event after the cursor happened; 0 when there is none."`
}

func (s *Server) streamView(ctx context.Context, st store.AuditStream) (streamView, error) {
	vs, err := s.streamViews(ctx, []store.AuditStream{st})
	if err != nil {
		return streamView{}, err
	}
	return vs[0], nil
}

// streamViews are the streams' views with their lags, read in one query.
func (s *Server) streamViews(ctx context.Context, sts []store.AuditStream) ([]streamView, error) {
	lags, err := store.StreamLags(ctx, s.db, sts)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]streamView, len(sts))
	for i, st := range sts {
		out[i] = streamViewOf(st, lags[st.ID], now)
	}
	return out, nil
}

// streamViewOf is the stream's view with its lag at now (none for a
// deleted stream).
func streamViewOf(st store.AuditStream, lag store.StreamLag, now time.Time) streamView {
	v := streamView{ID: st.ID, OrgID: st.OrgID, Name: st.Name, Kind: auditstream.Kind(st.Kind), Endpoint: st.Endpoint,
		Actions: st.Actions, Status: domain.StreamStatus(st.Status), Cursor: st.CursorEventID, CursorSeq: st.CursorSeq,
		LastErrorAt: st.LastErrorAt, FailingSince: st.FailingSince, LastDeliveryAt: st.LastDeliveryAt,
		HasCredential: st.CredentialSealed != nil, CreatedBy: st.CreatedBy, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}
	if st.Format != nil {
		f := auditstream.Format(*st.Format)
		v.Format = &f
	}
	if v.Actions == nil {
		v.Actions = []string{}
	}
	if st.LastError != "" {
		v.LastError = &st.LastError
	}
	if st.DeletedAt == nil {
		v.Lag.Events = lag.Events
		if lag.Oldest != nil {
			v.Lag.Seconds = max(0, int64(now.Sub(*lag.Oldest)/time.Second))
		}
	}
	return v
}

// streamDeliveryView is a row of a stream's delivery log.
type streamDeliveryView struct {
	ID          string    `json:"id"`
	AttemptedAt time.Time `json:"attempted_at"`
	Outcome     string    `json:"outcome" doc:"delivered, failed, or test (the test button's event)."`
	// The batch: its first and last events and their seqs.
	FirstEventID   string `json:"first_event_id"`
	LastEventID    string `json:"last_event_id"`
	FirstSeq       int64  `json:"first_seq" doc:"0 for a test event."`
	LastSeq        int64  `json:"last_seq"`
	Events         int    `json:"events"`
	Bytes          int    `json:"bytes"`
	IdempotencyKey string `json:"idempotency_key" doc:"The batch's Idempotency-Key header, <stream id>/<first event id>/<last event id>: the same on every attempt at the batch."`
	Status         int    `json:"status" doc:"The receiver's HTTP status; 0 when none came."`
	LatencyMS      int    `json:"latency_ms"`
	Attempt        int    `json:"attempt" doc:"Which attempt at this batch: 1, then one more for each failure before it."`
	Error          string `json:"error" doc:"Why it failed; empty when it did not."`
}

func (s *Server) listStreamDeliveries(c *fiber.Ctx, who *caller) error {
	if err := forStreams(who); err != nil {
		return err
	}
	before, limit, err := page(c)
	if err != nil {
		return err
	}
	st, err := store.StreamByID(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"))
	if err != nil {
		return err
	}
	rows, err := store.ListStreamDeliveries(c.UserContext(), s.db, st.ID, before, limit)
	if err != nil {
		return err
	}
	views := make([]streamDeliveryView, len(rows))
	for i, d := range rows {
		views[i] = streamDeliveryView{ID: d.ID, AttemptedAt: d.AttemptedAt, Outcome: d.Outcome, FirstEventID: d.FirstEventID, LastEventID: d.LastEventID,
			FirstSeq: d.FirstSeq, LastSeq: d.LastSeq, Events: d.EventCount, Bytes: d.Bytes, IdempotencyKey: d.IdempotencyKey, Status: d.Status,
			LatencyMS: d.LatencyMS, Attempt: d.Attempt, Error: d.Error}
	}
	return writePage(c, views, limit, func(v streamDeliveryView) store.Keyset { return store.Keyset{CreatedAt: v.AttemptedAt, ID: v.ID} })
}

// streamTestResult is the receiver's answer to the test event.
type streamTestResult struct {
	Delivered bool    `json:"delivered" doc:"Whether the receiver took it (a 2xx)."`
	Status    int     `json:"status" doc:"The receiver's HTTP status; 0 when none came."`
	LatencyMS int64   `json:"latency_ms"`
	Error     *string `json:"error" doc:"Why it was not delivered; null when it was."`
	EventID   string  `json:"event_id" doc:"The test event's id (action audit_stream.test; it is not written to the trail)."`
}

// streamTestTimeout bounds the test button's delivery.
const streamTestTimeout = 10 * time.Second

// testStream sends one synthetic event (audit_stream.test, never written
// to the trail) to the stream's receiver as a delivery would, through the
// same client rules, and answers with the receiver's status. The attempt
// is logged (outcome test) and audited (audit_stream.tested).
func (s *Server) testStream(c *fiber.Ctx, who *caller) error {
	if err := forStreams(who); err != nil {
		return err
	}
	st, err := store.StreamByID(c.UserContext(), s.db, who.OrgID, c.Params("stream_id"))
	if err != nil {
		return err
	}
	target, err := workflows.StreamTarget(st, s.keys)
	if err != nil {
		return err
	}
	b := s.eventBase(c, who)
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := store.AuditEvent{ID: domain.NewID(domain.PrefixEvent), OrgID: st.OrgID, Action: domain.ActionStreamTest,
		ActorType: b.ActorType, ActorID: b.ActorID, ActorEmail: b.ActorEmail, ActorName: b.ActorName, ActorTokenID: b.ActorTokenID, OnBehalfOf: b.OnBehalfOf,
		TargetType: "audit_stream", TargetID: st.ID, RequestID: b.RequestID, OccurredAt: now,
		Data: json.RawMessage(`{"test":true,"message":"A test event of this audit stream: it is not in the audit trail."}`)}
	body, err := json.Marshal(ev.View())
	if err != nil {
		return err
	}
	batches, err := auditstream.Batches(target, []auditstream.Event{{ID: ev.ID, Action: ev.Action, OccurredAt: now, JSON: body}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), streamTestTimeout)
	defer cancel()
	r := auditstream.Deliver(ctx, s.streamClient, target, batches[0])
	res := streamTestResult{Delivered: r.Err == nil, Status: r.Status, LatencyMS: r.Latency.Milliseconds(), EventID: ev.ID}
	d := &store.Delivery{StreamID: st.ID, FirstEventID: ev.ID, LastEventID: ev.ID, EventCount: 1, Bytes: len(batches[0].Body),
		IdempotencyKey: batches[0].IdempotencyKey(st.ID), Status: r.Status, LatencyMS: int(r.Latency.Milliseconds()), Attempt: 1}
	if r.Err != nil {
		msg := r.Err.Error()
		res.Error, d.Error = &msg, msg
	}
	if err := store.RecordTest(c.UserContext(), s.db, d, b); err != nil {
		return err
	}
	return writeData(c, fiber.StatusOK, res)
}
