package integration

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// deliveredAll waits until the receiver has every event of want, then
// checks they came in chain order with no gap, and returns how many
// batches came again.
func deliveredAll(t *testing.T, rcv *receiver, want []string, within time.Duration) int {
	t.Helper()
	waitUntil(t, "every event delivered", within, func() bool {
		got, _ := rcv.firstReceipt(t)
		return len(got) >= len(want)
	})
	got, repeats := rcv.firstReceipt(t)
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("event %d is %s, want %s (of %d received, %d written)", i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("%d events received, want %d", len(got), len(want))
	}
	return repeats
}

func TestAStreamDeliversTenThousandEventsInOrderInSignedBatches(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	rcv := newReceiver(t)
	s, secret := st.create(t, map[string]any{"name": "SIEM", "kind": "https", "endpoint": rcv.url("/audit")})
	rcv.setSecret(secret)
	if !strings.HasPrefix(secret, "cpw_") || len(secret) < 40 {
		t.Fatalf("signing secret %q", secret)
	}
	st.writeEvents(t, 10_000, "member.added", "tenant.created", "invitation.created")
	want := st.chainAfter(t, s.CursorSeq) // its own creation first, then the 10,000
	if len(want) != 10_001 {
		t.Fatalf("%d events after the stream's cursor, want 10,001", len(want))
	}
	if repeats := deliveredAll(t, rcv, want, 3*time.Minute); repeats != 0 {
		t.Fatalf("%d batches came twice with no failure", repeats)
	}
	for i, rec := range rcv.requests() {
		if len(rec.Events) > auditstream.MaxBatchEvents || rec.Header.Get("Content-Type") != auditstream.ContentTypeNDJSON {
			t.Fatalf("request %d: %d events, %s", i, len(rec.Events), rec.Header.Get("Content-Type"))
		}
	}
	waitUntil(t, "the cursor at the last event", 30*time.Second, func() bool {
		got := st.get(t, s.ID)
		return got.Cursor != nil && *got.Cursor == want[len(want)-1] && got.Lag.Events == 0 && got.Status == "active" && got.LastDeliveryAt != nil
	})
	r := st.call(t, domain.RoleAdmin, "GET", "/audit-streams/"+s.ID+"/deliveries?limit=5", nil)
	var rows []map[string]any
	r.data(t, &rows)
	if r.Status != 200 || len(rows) != 5 || rows[0]["outcome"] != "delivered" || rows[0]["last_event_id"] != want[len(want)-1] ||
		rows[0]["idempotency_key"] != s.ID+"/"+rows[0]["first_event_id"].(string)+"/"+want[len(want)-1] {
		t.Fatalf("delivery log: %d %s", r.Status, r.Raw)
	}
}

func TestAReceiverDownThirtySecondsGetsEveryEventInOrderAndOnlyTheBatchInFlightAgainByItsKey(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	rcv := newReceiver(t)
	inFlight := make(chan string, 1)
	// The first batch of the events written below is recorded, then the
	// receiver goes down before it answers.
	rcv.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			inFlight <- r.Header.Get(auditstream.IdempotencyHeader)
			<-r.Context().Done()
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	s, secret := st.create(t, map[string]any{"name": "Webhook", "kind": "https", "endpoint": rcv.url("/hook")})
	rcv.setSecret(secret)
	waitUntil(t, "the stream's own creation delivered", 30*time.Second, func() bool { return len(rcv.requests()) == 1 })
	st.writeEvents(t, 1_200)
	want := st.chainAfter(t, s.CursorSeq)
	held := <-inFlight
	rcv.down()
	downAt := time.Now()

	failing := st.waitStatus(t, s.ID, "failing", 20*time.Second)
	if failing.LastError == nil || failing.FailingSince == nil {
		t.Fatalf("a failing stream: %+v", failing)
	}
	time.Sleep(time.Until(downAt.Add(30 * time.Second)))
	rcv.setAnswer(nil)
	rcv.up()

	if repeats := deliveredAll(t, rcv, want, time.Minute); repeats != 1 {
		t.Fatalf("%d batches came again, want 1 (the one in flight)", repeats)
	}
	again := 0
	for _, rec := range rcv.requests() {
		if rec.Key == held {
			again++
		}
	}
	if again != 2 {
		t.Fatalf("the batch in flight (%s) came %d times, want twice", held, again)
	}
	back := st.waitStatus(t, s.ID, "active", 10*time.Second)
	if back.FailingSince != nil {
		t.Fatalf("a stream that delivers again: %+v", back)
	}
	// The log has the attempts at the held batch, numbered, with why they failed.
	var rows []map[string]any
	st.call(t, domain.RoleOwner, "GET", "/audit-streams/"+s.ID+"/deliveries?limit=200", nil).data(t, &rows)
	attempts := 0
	for _, row := range rows {
		if row["idempotency_key"] == held && row["outcome"] == "failed" {
			attempts++
			if row["error"] == "" {
				t.Errorf("a failed attempt without its error: %v", row)
			}
		}
	}
	if attempts < 3 {
		t.Fatalf("%d failed attempts at the held batch logged, want several (backoff over 30 s)", attempts)
	}
}

func TestAWorkerKilledMidBatchLeavesTheBatchToTheNextWorkerWithItsKey(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	rcv := newReceiver(t)
	inFlight := make(chan string, 1)
	rcv.setAnswer(func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			inFlight <- r.Header.Get(auditstream.IdempotencyHeader)
			<-r.Context().Done() // the worker dies while it waits
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	s, secret := st.create(t, map[string]any{"name": "Webhook", "kind": "https", "endpoint": rcv.url("/hook")})
	rcv.setSecret(secret)
	waitUntil(t, "the stream's own creation delivered", 30*time.Second, func() bool { return len(rcv.requests()) == 1 })
	st.writeEvents(t, 1_200)
	want := st.chainAfter(t, s.CursorSeq)
	held := <-inFlight
	st.stopDeliveries()
	st.startDeliveries(t)

	if repeats := deliveredAll(t, rcv, want, time.Minute); repeats != 1 {
		t.Fatalf("%d batches came again, want 1 (the one in flight)", repeats)
	}
	if got := rcv.requests(); got[2].Key != held {
		t.Fatalf("the next worker sent %s first, want the batch in flight %s", got[2].Key, held)
	}
}

func TestASlowReceiverAndAHugeAnswerHoldNoWorkerFromTheOtherStreams(t *testing.T) {
	t.Parallel()
	cfg := harness.Streams()
	cfg.Timeout = time.Second
	st := newStreamStack(t, cfg)
	slow, huge, fine := newReceiver(t), newReceiver(t), newReceiver(t)
	slow.setAnswer(func(_ int, w http.ResponseWriter, r *http.Request) {
		select { // longer than the delivery timeout
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	chunk := []byte(strings.Repeat("x", 64<<10))
	huge.setAnswer(func(_ int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK) // then an endless body
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	slowS, slowSecret := st.create(t, map[string]any{"name": "Slow", "kind": "https", "endpoint": slow.url("/")})
	hugeS, hugeSecret := st.create(t, map[string]any{"name": "Huge", "kind": "https", "endpoint": huge.url("/")})
	fineS, fineSecret := st.create(t, map[string]any{"name": "Fine", "kind": "https", "endpoint": fine.url("/")})
	slow.setSecret(slowSecret)
	huge.setSecret(hugeSecret)
	fine.setSecret(fineSecret)
	st.writeEvents(t, 300)

	deliveredAll(t, fine, st.chainAfter(t, fineS.CursorSeq), 30*time.Second)
	deliveredAll(t, huge, st.chainAfter(t, hugeS.CursorSeq), 30*time.Second)
	failing := st.waitStatus(t, slowS.ID, "failing", 20*time.Second)
	if failing.LastError == nil || !strings.Contains(*failing.LastError, "timed out") {
		t.Fatalf("the slow stream's last error: %v", failing.LastError)
	}
	waitUntil(t, "the slow receiver's batch retried", 20*time.Second, func() bool {
		reqs := slow.requests()
		return len(reqs) >= 2 && reqs[0].Key == reqs[1].Key
	})
}
