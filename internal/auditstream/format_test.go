package auditstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

// sample is two events as the API shows them; the first's JSON is
// indented and holds characters HTML escaping would change.
func sample() []Event {
	return []Event{
		{ID: "evt_01JGQ8Z0000000000000000001", Seq: 41, Action: "member.invited",
			OccurredAt: time.Date(2025, 1, 1, 12, 0, 0, 123456789, time.UTC),
			JSON: json.RawMessage(`{
  "id": "evt_01JGQ8Z0000000000000000001",
  "action": "member.invited",
  "actor": {"type": "user", "id": "usr_1"},
  "target": {"email": "a<b>&c@example.com"}
}`)},
		{ID: "evt_01JGQ8Z0000000000000000002", Seq: 42, Action: "tenant.created",
			OccurredAt: time.Date(2025, 1, 1, 12, 0, 1, 0, time.FixedZone("CET", 3600)),
			JSON:       json.RawMessage(`{"id":"evt_01JGQ8Z0000000000000000002","action":"tenant.created"}`)},
	}
}

func targets() map[string]Target {
	base := Target{StreamID: "ast_1", OrgID: "org_01JGQ8Z", Secret: []byte("s"), Credential: "c"}
	with := func(k Kind, f Format) Target { t := base; t.Kind, t.Format = k, f; return t }
	return map[string]Target{
		"ndjson":      with(KindHTTPS, FormatNDJSON),
		"cloudevents": with(KindHTTPS, FormatCloudEvents),
		"splunk_hec":  with(KindSplunkHEC, ""),
		"datadog":     with(KindDatadog, ""),
	}
}

func encode(t *testing.T, target Target, events []Event) Batch {
	t.Helper()
	bs, err := Batches(target, events)
	if err != nil || len(bs) != 1 {
		t.Fatalf("Batches: %d batches, %v", len(bs), err)
	}
	return bs[0]
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON fails unless a and b are the same JSON value.
func sameJSON(t *testing.T, what string, a, b []byte) {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("%s: %v in %s", what, err, a)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("%s: %v in %s", what, err, b)
	}
	if !reflect.DeepEqual(va, vb) {
		t.Fatalf("%s:\n%s\nwant the same JSON as\n%s", what, a, b)
	}
}

// splunkShape reads a HEC body as Splunk documents it: JSON event
// objects one after the other, each with an event and only the
// documented metadata keys, time a number of epoch seconds.
func splunkShape(body []byte) ([]map[string]json.RawMessage, error) {
	allowed := map[string]bool{"time": true, "host": true, "source": true, "sourcetype": true, "index": true, "fields": true, "event": true}
	var out []map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if obj["event"] == nil {
			return nil, errors.New("an object without event")
		}
		for k, v := range obj {
			if !allowed[k] {
				return nil, fmt.Errorf("undocumented key %q", k)
			}
			var n float64
			if k == "time" && json.Unmarshal(v, &n) != nil {
				return nil, fmt.Errorf("time %s is not a number", v)
			}
		}
		out = append(out, obj)
	}
	if len(out) == 0 {
		return nil, errors.New("no events")
	}
	return out, nil
}

// datadogShape reads a Logs API v2 body: an array of at most 1,000
// entries, 5 MB in all, whose documented fields are strings, message
// required.
func datadogShape(body []byte) ([]map[string]any, error) {
	if len(body) > 5_000_000 {
		return nil, errors.New("body over 5 MB")
	}
	var entries []map[string]any
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, err
	}
	if len(entries) == 0 || len(entries) > 1000 {
		return nil, fmt.Errorf("%d entries", len(entries))
	}
	for _, e := range entries {
		if _, ok := e["message"].(string); !ok {
			return nil, errors.New("message missing or not a string")
		}
		for _, k := range []string{"ddsource", "ddtags", "hostname", "service"} {
			if _, ok := e[k].(string); e[k] != nil && !ok {
				return nil, fmt.Errorf("%s is not a string", k)
			}
		}
	}
	return entries, nil
}

// cloudEventsShape reads a CloudEvents 1.0 JSON batch: an array of
// events with specversion 1.0, non-empty id, source and type, an RFC 3339
// time, and data as JSON when datacontenttype says JSON.
func cloudEventsShape(body []byte) ([]map[string]json.RawMessage, error) {
	var events []map[string]json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, err
	}
	for _, e := range events {
		str := func(k string) string {
			var s string
			_ = json.Unmarshal(e[k], &s)
			return s
		}
		if str("specversion") != "1.0" || str("id") == "" || str("source") == "" || str("type") == "" {
			return nil, errors.New("a required attribute is missing")
		}
		if _, err := time.Parse(time.RFC3339, str("time")); e["time"] != nil && err != nil {
			return nil, fmt.Errorf("time: %v", err)
		}
		if ct := str("datacontenttype"); e["data"] != nil && ct != "" && !strings.HasSuffix(ct, "json") {
			if str("data") == "" {
				return nil, errors.New("non-JSON data that is not a string")
			}
		}
	}
	return events, nil
}

func TestTheShapeCheckersAcceptTheDocumentedExamples(t *testing.T) {
	if _, err := splunkShape(read(t, "splunk_hec.documented.json")); err != nil {
		t.Errorf("Splunk: %v", err)
	}
	if _, err := datadogShape(read(t, "datadog_logs_v2.documented.json")); err != nil {
		t.Errorf("Datadog: %v", err)
	}
	if _, err := cloudEventsShape(read(t, "cloudevents_batch.documented.json")); err != nil {
		t.Errorf("CloudEvents: %v", err)
	}
	if _, err := splunkShape([]byte(`[{"event":"x"}]`)); err == nil {
		t.Error("the Splunk checker takes an array")
	}
	if _, err := datadogShape([]byte(`[{"message":{"a":1}}]`)); err == nil {
		t.Error("the Datadog checker takes a message that is not a string")
	}
}

func TestNDJSONIsOneCompactEventPerLine(t *testing.T) {
	b := encode(t, targets()["ndjson"], sample())
	if b.ContentType != "application/x-ndjson" {
		t.Errorf("content type %s", b.ContentType)
	}
	lines := strings.Split(string(b.Body), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("%d lines: %q", len(lines), b.Body)
	}
	for i, e := range sample() {
		sameJSON(t, "line", []byte(lines[i]), e.JSON)
	}
	if !strings.Contains(lines[0], `"a<b>&c@example.com"`) {
		t.Errorf("the event's text was escaped: %s", lines[0])
	}
}

func TestCloudEventsIsADocumentedBatchOfOurEvents(t *testing.T) {
	b := encode(t, targets()["cloudevents"], sample())
	if b.ContentType != "application/cloudevents-batch+json" {
		t.Errorf("content type %s", b.ContentType)
	}
	got, err := cloudEventsShape(b.Body)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v: %s", err, b.Body)
	}
	for i, e := range sample() {
		want := fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/organizations/org_01JGQ8Z","type":"com.intelliauth.audit.%s","time":%q,"datacontenttype":"application/json","data":%s}`,
			e.ID, e.Action, e.OccurredAt.UTC().Format(time.RFC3339Nano), e.JSON)
		whole, _ := json.Marshal(got[i])
		sameJSON(t, "cloud event", whole, []byte(want))
	}
}

func TestSplunkHECIsDocumentedEventObjectsOneAfterTheOther(t *testing.T) {
	b := encode(t, targets()["splunk_hec"], sample())
	got, err := splunkShape(b.Body)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v: %s", err, b.Body)
	}
	if string(got[0]["time"]) != "1735732800.123" || string(got[1]["time"]) != "1735729201.000" {
		t.Errorf("times %s, %s", got[0]["time"], got[1]["time"])
	}
	for i, e := range sample() {
		sameJSON(t, "event", got[i]["event"], e.JSON)
		if string(got[i]["source"]) != `"intelliauth"` || string(got[i]["sourcetype"]) != `"intelliauth:audit"` {
			t.Errorf("source %s, sourcetype %s", got[i]["source"], got[i]["sourcetype"])
		}
	}
}

func TestDatadogIsADocumentedArrayWithTheEventAsMessage(t *testing.T) {
	b := encode(t, targets()["datadog"], sample())
	got, err := datadogShape(b.Body)
	if err != nil || len(got) != 2 {
		t.Fatalf("%v: %s", err, b.Body)
	}
	for i, e := range sample() {
		sameJSON(t, "message", []byte(got[i]["message"].(string)), e.JSON)
		if got[i]["ddsource"] != "intelliauth" || got[i]["service"] != "intelliauth-controlplane" ||
			got[i]["ddtags"] != "org_id:org_01JGQ8Z,action:"+e.Action {
			t.Errorf("entry %v", got[i])
		}
	}
}

func TestGoldenEncodings(t *testing.T) {
	for name, target := range targets() {
		b := encode(t, target, sample())
		path := filepath.Join("testdata", "golden", name+".txt")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Body, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to write it)", err)
		}
		if !bytes.Equal(b.Body, want) {
			t.Errorf("%s:\n%s\nwant\n%s", name, b.Body, want)
		}
	}
}
