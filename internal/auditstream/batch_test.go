package auditstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// events makes n events whose JSON is about size bytes.
func events(n, size int) []Event {
	out := make([]Event, n)
	for i := range out {
		id := fmt.Sprintf("evt_%06d", i+1)
		pad := strings.Repeat("x", max(0, size-60))
		out[i] = Event{ID: id, Seq: int64(i + 1), Action: "member.invited", OccurredAt: time.Unix(1735732800, 0),
			JSON: json.RawMessage(fmt.Sprintf(`{"id":%q,"action":"member.invited","pad":%q}`, id, pad))}
	}
	return out
}

// entries decodes a batch of any format back to its events' ids.
func entries(t *testing.T, name string, b Batch) []string {
	t.Helper()
	var ids []string
	add := func(raw []byte) {
		var e struct{ ID string }
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ids = append(ids, e.ID)
	}
	switch name {
	case "ndjson":
		for _, l := range strings.Split(strings.TrimSuffix(string(b.Body), "\n"), "\n") {
			add([]byte(l))
		}
	case "cloudevents":
		evs, err := cloudEventsShape(b.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			add(e["data"])
		}
	case "splunk_hec":
		evs, err := splunkShape(b.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			add(e["event"])
		}
	case "datadog":
		evs, err := datadogShape(b.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			add([]byte(e["message"].(string)))
		}
	}
	return ids
}

// checkCut fails unless batches hold evs in order, each within bounds,
// with the right ids, seqs and counts.
func checkCut(t *testing.T, name string, bs []Batch, evs []Event) {
	t.Helper()
	next := 0
	for i, b := range bs {
		ids := entries(t, name, b)
		if len(ids) != b.Count || b.Count > MaxBatchEvents {
			t.Fatalf("%s batch %d: %d entries, Count %d", name, i, len(ids), b.Count)
		}
		if len(b.Body) > MaxBatchBytes && b.Count > 1 {
			t.Fatalf("%s batch %d: %d bytes for %d events", name, i, len(b.Body), b.Count)
		}
		first, last := evs[next], evs[next+b.Count-1]
		if b.FirstID != first.ID || b.LastID != last.ID || b.FirstSeq != first.Seq || b.LastSeq != last.Seq {
			t.Fatalf("%s batch %d: %s..%s (%d..%d), want %s..%s", name, i, b.FirstID, b.LastID, b.FirstSeq, b.LastSeq, first.ID, last.ID)
		}
		for j, id := range ids {
			if id != evs[next+j].ID {
				t.Fatalf("%s batch %d entry %d is %s, want %s", name, i, j, id, evs[next+j].ID)
			}
		}
		next += b.Count
	}
	if next != len(evs) {
		t.Fatalf("%s: %d of %d events in batches", name, next, len(evs))
	}
}

func TestBatchesHoldAtMost500Events(t *testing.T) {
	evs := events(1201, 100)
	for name, target := range targets() {
		bs, err := Batches(target, evs)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 3 || bs[0].Count != 500 || bs[1].Count != 500 || bs[2].Count != 201 {
			t.Fatalf("%s: %d batches", name, len(bs))
		}
		checkCut(t, name, bs, evs)
	}
}

func TestBatchesHoldAtMostAMegabyte(t *testing.T) {
	evs := events(10, 300_000)
	for name, target := range targets() {
		bs, err := Batches(target, evs)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) < 4 {
			t.Fatalf("%s: 3 MB in %d batches", name, len(bs))
		}
		checkCut(t, name, bs, evs)
		for i, b := range bs {
			if len(b.Body) > MaxBatchBytes {
				t.Fatalf("%s batch %d: %d bytes", name, i, len(b.Body))
			}
		}
	}
}

func TestAnEventLargerThanABatchGoesAloneAndWhole(t *testing.T) {
	evs := append(events(1, 100), events(2, MaxBatchBytes+10)...)
	evs[1].ID, evs[1].Seq, evs[2].ID, evs[2].Seq = "evt_big", 2, "evt_after", 3
	evs[1].JSON = json.RawMessage(strings.Replace(string(evs[1].JSON), "evt_000001", "evt_big", 1))
	evs[2].JSON = json.RawMessage(`{"id":"evt_after"}`)
	for name, target := range targets() {
		bs, err := Batches(target, evs)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != 3 || bs[1].Count != 1 || len(bs[1].Body) <= MaxBatchBytes {
			t.Fatalf("%s: %d batches", name, len(bs))
		}
		checkCut(t, name, bs, evs)
	}
}

func TestBatchesOfNothingIsNoBatch(t *testing.T) {
	bs, err := Batches(targets()["ndjson"], nil)
	if err != nil || len(bs) != 0 {
		t.Fatalf("%d batches, %v", len(bs), err)
	}
}

func TestBatchesRefusesAnUnknownTargetAndInvalidJSON(t *testing.T) {
	if _, err := Batches(Target{Kind: "kafka"}, events(1, 100)); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("kind kafka: %v", err)
	}
	if _, err := Batches(Target{Kind: KindHTTPS, Format: "xml"}, events(1, 100)); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("format xml: %v", err)
	}
	bad := events(2, 100)
	bad[1].JSON = json.RawMessage(`{"id":`)
	if _, err := Batches(targets()["splunk_hec"], bad); err == nil || !strings.Contains(err.Error(), "evt_000002") {
		t.Errorf("invalid JSON: %v", err)
	}
}

func TestAnHTTPSStreamWithoutFormatIsNDJSON(t *testing.T) {
	b := encode(t, Target{Kind: KindHTTPS}, events(1, 100))
	if b.ContentType != ContentTypeNDJSON {
		t.Fatalf("content type %s", b.ContentType)
	}
}

func TestTheBoundsAreWithinDatadogsDocumentedLimits(t *testing.T) {
	if MaxBatchEvents > 1000 || MaxBatchBytes > 5_000_000 {
		t.Fatalf("%d events, %d bytes: over Datadog's 1,000 entries or 5 MB", MaxBatchEvents, MaxBatchBytes)
	}
}

func TestTheIdempotencyKeyNamesStreamFirstAndLast(t *testing.T) {
	b := Batch{FirstID: "evt_1", LastID: "evt_9"}
	if got := b.IdempotencyKey("ast_1"); got != "ast_1/evt_1/evt_9" {
		t.Fatal(got)
	}
}
