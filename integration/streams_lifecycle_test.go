package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// recordStream records a stream workflow's history (its latest run) as
// workflows/testdata/stream-v<n>-<name>.json (CP_RECORD_HISTORIES=1).
func recordStream(t *testing.T, st *streamStack, id, name string) {
	t.Helper()
	recordHistoryAs(t, st.h, workflows.StreamWorkflowID(id), "", workflows.StreamHistoryPrefix()+"-"+name)
}

// waitEnded waits until the stream's workflow has ended.
func waitEnded(t *testing.T, st *streamStack, id string) {
	t.Helper()
	waitUntil(t, "the stream's workflow ended", 30*time.Second, func() bool {
		d, err := st.h.Temporal.DescribeWorkflowExecution(context.Background(), workflows.StreamWorkflowID(id), "")
		return err == nil && d.GetWorkflowExecutionInfo().GetCloseTime() != nil
	})
}

func TestAPausedStreamResumesFromItsCursorAndAReplayResendsFromTheChosenEventOrTime(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	rcv := newReceiver(t)
	s, secret := st.create(t, map[string]any{"name": "Webhook", "kind": "https", "endpoint": rcv.url("/hook")})
	rcv.setSecret(secret)
	first := st.writeEvents(t, 10)
	deliveredAll(t, rcv, st.chainAfter(t, s.CursorSeq), 30*time.Second)

	if r := st.call(t, domain.RoleOwner, "PATCH", "/audit-streams/"+s.ID, map[string]any{"paused": true}); r.Status != 200 {
		t.Fatalf("pause: %d %s", r.Status, r.Raw)
	}
	before := len(rcv.requests())
	whilePaused := st.writeEvents(t, 5)
	time.Sleep(2 * time.Second)
	if n := len(rcv.requests()); n != before {
		t.Fatalf("a paused stream sent %d requests", n-before)
	}
	if paused := st.get(t, s.ID); paused.Status != "paused" || paused.Lag.Events < 5 {
		t.Fatalf("paused: %+v", paused)
	}
	if r := st.call(t, domain.RoleAdmin, "PATCH", "/audit-streams/"+s.ID, map[string]any{"paused": false}); r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Raw)
	}
	all := st.chainAfter(t, s.CursorSeq)
	deliveredAll(t, rcv, all, 30*time.Second)
	if !slices.Contains(all, whilePaused[0]) {
		t.Fatal("the events written while paused are not in the chain")
	}

	// A replay from the third event: from it on again, in order.
	mark := len(rcv.requests())
	r := st.call(t, domain.RoleOwner, "POST", "/audit-streams/"+s.ID+"/replay", map[string]any{"from_event_id": first[2]})
	if r.Status != 200 {
		t.Fatalf("replay: %d %s", r.Status, r.Raw)
	}
	from := slices.Index(all, first[2])
	waitUntil(t, "the replay delivered", 30*time.Second, func() bool { return len(replayed(rcv, mark)) >= len(all)-from })
	if got := replayed(rcv, mark); !slices.Equal(got[:len(all)-from], all[from:]) {
		t.Fatalf("replayed %v, want %v", got, all[from:])
	}

	// A replay by time: from the first event at or after it.
	var at time.Time
	if err := st.h.DB.NewSelect().Model((*store.AuditEvent)(nil)).Column("occurred_at").Where("id = ?", whilePaused[0]).Scan(context.Background(), &at); err != nil {
		t.Fatal(err)
	}
	mark = len(rcv.requests())
	if r := st.call(t, domain.RoleOwner, "POST", "/audit-streams/"+s.ID+"/replay", map[string]any{"since": at}); r.Status != 200 {
		t.Fatalf("replay since: %d %s", r.Status, r.Raw)
	}
	from = slices.Index(all, whilePaused[0])
	waitUntil(t, "the replay by time delivered", 30*time.Second, func() bool { return len(replayed(rcv, mark)) >= len(all)-from })
	if got := replayed(rcv, mark); got[0] != whilePaused[0] {
		t.Fatalf("the replay since %s began with %s, want %s", at, got[0], whilePaused[0])
	}

	if r := st.call(t, domain.RoleOwner, "DELETE", "/audit-streams/"+s.ID, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	waitEnded(t, st, s.ID)
	recordStream(t, st, s.ID, "paused-replayed-deleted")
}

// replayed is the events of the receiver's requests from the mark on.
func replayed(rcv *receiver, mark int) []string {
	var out []string
	for _, rec := range rcv.requests()[mark:] {
		for _, e := range rec.Events {
			out = append(out, e.ID)
		}
	}
	return out
}

func TestAFailingStreamIsSuspendedAfterItsTimeAndAnOwnersResumeDeliversAgain(t *testing.T) {
	t.Parallel()
	cfg := harness.Streams()
	cfg.SuspendAfter = 4 * time.Second
	st := newStreamStack(t, cfg)
	rcv := newReceiver(t)
	rcv.setAnswer(func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "index full", http.StatusInternalServerError)
	})
	s, secret := st.create(t, map[string]any{"name": "Webhook", "kind": "https", "endpoint": rcv.url("/hook")})
	rcv.setSecret(secret)
	failing := st.waitStatus(t, s.ID, "failing", 20*time.Second)
	if failing.LastError == nil || !strings.Contains(*failing.LastError, "500") || !strings.Contains(*failing.LastError, "index full") || failing.FailingSince == nil {
		t.Fatalf("failing: %+v", failing)
	}
	suspended := st.waitStatus(t, s.ID, "suspended", 30*time.Second)
	if suspended.FailingSince == nil || suspended.FailingSince.Sub(*failing.FailingSince) != 0 {
		t.Fatalf("suspended: %+v", suspended)
	}
	var evs []store.AuditEvent
	if err := st.h.DB.NewSelect().Model(&evs).Where("org_id = ? AND target_id = ? AND action = ?", st.w.Org.ID, s.ID, domain.ActionStreamSuspended).
		Scan(context.Background()); err != nil || len(evs) != 1 || evs[0].ActorType != "system" {
		t.Fatalf("suspended events: %+v %v", evs, err)
	}
	time.Sleep(2 * time.Second)
	held := len(rcv.requests())
	time.Sleep(3 * time.Second)
	if n := len(rcv.requests()); n != held {
		t.Fatalf("a suspended stream sent %d requests", n-held)
	}

	rcv.setAnswer(nil)
	if r := st.call(t, domain.RoleOwner, "PATCH", "/audit-streams/"+s.ID, map[string]any{"paused": false}); r.Status != 200 {
		t.Fatalf("resume: %d %s", r.Status, r.Raw)
	}
	deliveredAll(t, rcv, st.chainAfter(t, s.CursorSeq), 30*time.Second)
	if back := st.waitStatus(t, s.ID, "active", 10*time.Second); back.FailingSince != nil || back.Lag.Events != 0 {
		t.Fatalf("resumed: %+v", back)
	}
	if r := st.call(t, domain.RoleOwner, "DELETE", "/audit-streams/"+s.ID, nil); r.Status != 200 {
		t.Fatalf("delete: %d %s", r.Status, r.Raw)
	}
	waitEnded(t, st, s.ID)
	recordStream(t, st, s.ID, "failing-suspended-resumed")
}

func TestALifecycleWebhookGetsOnlyItsActionsAndIsNeverBehind(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	rcv := newReceiver(t)
	s, secret := st.create(t, map[string]any{"name": "CI", "kind": "https", "endpoint": rcv.url("/ci"),
		"actions": []string{"tenant.provisioned", "tenant.provisioning_failed"}})
	rcv.setSecret(secret)
	ids := st.writeEvents(t, 60, "member.added", "tenant.provisioned", "tenant.create_requested", "tenant.provisioning_failed", "tenant.provisioned_x")
	var want []string
	for i, id := range ids {
		if a := i % 5; a == 1 || a == 3 {
			want = append(want, id)
		}
	}
	deliveredAll(t, rcv, want, 30*time.Second)
	waitUntil(t, "the cursor past the events it does not take", 10*time.Second, func() bool { return st.get(t, s.ID).Lag.Events == 0 })
}

// documentedKeys are the keys the receiver's documentation shows in its
// entries (internal/auditstream/testdata).
func documentedKeys(t *testing.T, file string) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "auditstream", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var v any
		if err := dec.Decode(&v); err == io.EOF {
			return keys
		} else if err != nil {
			t.Fatal(err)
		}
		entries, ok := v.([]any)
		if !ok {
			entries = []any{v}
		}
		for _, e := range entries {
			for k := range e.(map[string]any) {
				keys[k] = true
			}
		}
	}
}

func TestSplunkHECAndDatadogStreamsPostTheirDocumentedShapesWithTheirCredentials(t *testing.T) {
	t.Parallel()
	st := newStreamStack(t, harness.Streams())
	hec, dd := newReceiver(t), newReceiver(t)
	hecS, _ := st.create(t, map[string]any{"name": "Splunk", "kind": "splunk_hec", "endpoint": hec.url("/services/collector/event"), "credential": "hec-token-1"})
	ddS, _ := st.create(t, map[string]any{"name": "Datadog", "kind": "datadog", "endpoint": dd.url("/api/v2/logs"), "credential": "dd-key-1"})
	if got := st.get(t, ddS.ID); strings.Contains(st.call(t, domain.RoleOwner, "GET", "/audit-streams/"+ddS.ID, nil).Raw, "dd-key-1") || got.Status != "active" {
		t.Fatal("a stream's credential is shown")
	}
	st.writeEvents(t, 20, "tenant.suspended", "member.added")
	wantHEC, wantDD := st.chainAfter(t, hecS.CursorSeq), st.chainAfter(t, ddS.CursorSeq)

	hecKeys, ddKeys := documentedKeys(t, "splunk_hec.documented.json"), documentedKeys(t, "datadog_logs_v2.documented.json")
	var gotHEC, gotDD []string
	waitUntil(t, "both delivered", 30*time.Second, func() bool {
		gotHEC, gotDD = nil, nil
		for _, rec := range hec.requests() {
			if rec.Header.Get("Authorization") != "Splunk hec-token-1" || rec.Header.Get(auditstream.SignatureHeader) != "" {
				t.Fatalf("HEC headers: %v", rec.Header)
			}
			dec := json.NewDecoder(bytes.NewReader(rec.Body)) // events one after the other, no array
			for dec.More() {
				var e map[string]any
				if err := dec.Decode(&e); err != nil {
					t.Fatalf("HEC body: %v in %s", err, rec.Body)
				}
				for k := range e {
					if !hecKeys[k] {
						t.Fatalf("HEC key %q is not documented (%v)", k, slices.Sorted(maps.Keys(hecKeys)))
					}
				}
				ev, _ := e["event"].(map[string]any)
				if e["sourcetype"] != auditstream.SplunkSourceType || e["time"] == nil || ev == nil {
					t.Fatalf("HEC event: %v", e)
				}
				gotHEC = append(gotHEC, ev["id"].(string))
			}
		}
		for _, rec := range dd.requests() {
			if rec.Header.Get("DD-API-KEY") != "dd-key-1" || rec.Header.Get("Content-Type") != auditstream.ContentTypeJSON {
				t.Fatalf("Datadog headers: %v", rec.Header)
			}
			var entries []map[string]any
			if err := json.Unmarshal(rec.Body, &entries); err != nil {
				t.Fatalf("Datadog body: %v in %s", err, rec.Body)
			}
			for _, e := range entries {
				for k := range e {
					if !ddKeys[k] {
						t.Fatalf("Datadog key %q is not documented (%v)", k, slices.Sorted(maps.Keys(ddKeys)))
					}
				}
				var ev struct{ ID string }
				msg, _ := e["message"].(string)
				if err := json.Unmarshal([]byte(msg), &ev); err != nil || !strings.Contains(e["ddtags"].(string), "org_id:"+st.w.Org.ID) {
					t.Fatalf("Datadog entry: %v", e)
				}
				gotDD = append(gotDD, ev.ID)
			}
		}
		return len(gotHEC) >= len(wantHEC) && len(gotDD) >= len(wantDD)
	})
	if !slices.Equal(gotHEC, wantHEC) || !slices.Equal(gotDD, wantDD) {
		t.Fatalf("HEC got %d events, want %d; Datadog got %d, want %d", len(gotHEC), len(wantHEC), len(gotDD), len(wantDD))
	}
}
