package auditstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Content types of the bodies.
const (
	ContentTypeNDJSON      = "application/x-ndjson"
	ContentTypeCloudEvents = "application/cloudevents-batch+json"
	ContentTypeJSON        = "application/json"
)

// What the entries of the SIEM formats name us as.
const (
	// CloudEventTypePrefix is followed by the event's action:
	// com.intelliauth.audit.member.invited.
	CloudEventTypePrefix = "com.intelliauth.audit."
	SplunkSource         = "intelliauth"
	SplunkSourceType     = "intelliauth:audit"
	DatadogSource        = "intelliauth"
	DatadogService       = "intelliauth-controlplane"
)

// encoding is one format: how an event becomes an entry, and how entries
// are framed into a body (open, entries joined by sep, close).
type encoding struct {
	contentType      string
	open, sep, close string
	entry            func(t Target, e Event) ([]byte, error)
}

func encodingFor(t Target) (encoding, error) {
	switch t.Kind {
	case KindHTTPS:
		switch t.format() {
		case FormatNDJSON:
			// Each entry ends with its newline, the last one too.
			return encoding{contentType: ContentTypeNDJSON, entry: ndjsonEntry}, nil
		case FormatCloudEvents:
			return encoding{contentType: ContentTypeCloudEvents, open: "[", sep: ",", close: "]", entry: cloudEvent}, nil
		}
	case KindSplunkHEC:
		// HEC reads a batch as event objects one after the other, not
		// an array.
		return encoding{contentType: ContentTypeJSON, entry: splunkEvent}, nil
	case KindDatadog:
		return encoding{contentType: ContentTypeJSON, open: "[", sep: ",", close: "]", entry: datadogEntry}, nil
	}
	return encoding{}, fmt.Errorf("%w: kind %q, format %q", ErrUnknownTarget, t.Kind, t.Format)
}

// marshal is json.Marshal without HTML escaping, so that an event's JSON
// reaches the receiver as the API shows it, whitespace aside.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// compact checks an event's JSON and removes its insignificant whitespace
// (an NDJSON line must not break).
func compact(e Event) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, e.JSON); err != nil {
		return nil, fmt.Errorf("event %s: invalid JSON: %w", e.ID, err)
	}
	return b.Bytes(), nil
}

func ndjsonEntry(_ Target, e Event) ([]byte, error) {
	b, err := compact(e)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// cloudEvent is an event in CloudEvents 1.0's JSON format, its data the
// event as the API shows it.
func cloudEvent(t Target, e Event) ([]byte, error) {
	data, err := compact(e)
	if err != nil {
		return nil, err
	}
	return marshal(struct {
		SpecVersion     string          `json:"specversion"`
		ID              string          `json:"id"`
		Source          string          `json:"source"`
		Type            string          `json:"type"`
		Time            string          `json:"time"`
		DataContentType string          `json:"datacontenttype"`
		Data            json.RawMessage `json:"data"`
	}{"1.0", e.ID, t.source(), CloudEventTypePrefix + e.Action, e.OccurredAt.UTC().Format(time.RFC3339Nano), ContentTypeJSON, data})
}

// splunkEvent is an event in HEC's JSON event format: time in epoch
// seconds with milliseconds, our source and sourcetype, the event as the
// API shows it. host and index are left to the token's defaults.
func splunkEvent(_ Target, e Event) ([]byte, error) {
	data, err := compact(e)
	if err != nil {
		return nil, err
	}
	ms := e.OccurredAt.UnixMilli()
	return marshal(struct {
		Time       json.Number     `json:"time"`
		Source     string          `json:"source"`
		SourceType string          `json:"sourcetype"`
		Event      json.RawMessage `json:"event"`
	}{json.Number(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)), SplunkSource, SplunkSourceType, data})
}

// datadogEntry is an entry of the Logs API v2: message is a string, as
// documented, holding the event's JSON. No timestamp attribute is sent:
// Datadog drops entries dated more than 18 hours back, which a replay
// would be; the event's own time is in its JSON.
func datadogEntry(t Target, e Event) ([]byte, error) {
	data, err := compact(e)
	if err != nil {
		return nil, err
	}
	return marshal(struct {
		DDSource string `json:"ddsource"`
		DDTags   string `json:"ddtags"`
		Service  string `json:"service"`
		Message  string `json:"message"`
	}{DatadogSource, "org_id:" + tagValue(t.OrgID) + ",action:" + tagValue(e.Action), DatadogService, string(data)})
}

// tagValue keeps a tag value from splitting the tag list.
func tagValue(s string) string {
	return strings.NewReplacer(",", "_", " ", "_").Replace(s)
}
