// Package auditstream is what an audit stream sends: the wire formats of a
// batch of an organisation's audit events (NDJSON, CloudEvents, Splunk
// HEC, Datadog Logs), the cut of events into batches, the request's
// signature and idempotency key, and one delivery through internal/outbound.
// It keeps no state: the stream's workflow owns the cursor and the retries.
package auditstream

import (
	"encoding/json"
	"errors"
	"time"
)

// Event is one audit event as a stream carries it. JSON is the event as
// the public API shows it, already encoded (a JSON object).
type Event struct {
	ID         string
	Seq        int64
	Action     string
	OccurredAt time.Time
	JSON       json.RawMessage
}

// Kind is where a stream delivers.
type Kind string

// The kinds of stream.
const (
	// KindHTTPS posts to the customer's webhook, in Format.
	KindHTTPS Kind = "https"
	// KindSplunkHEC posts to a Splunk HTTP Event Collector (the full
	// collector URL, e.g. https://host:8088/services/collector/event).
	KindSplunkHEC Kind = "splunk_hec"
	// KindDatadog posts to Datadog's Logs API v2
	// (https://http-intake.logs.<site>/api/v2/logs).
	KindDatadog Kind = "datadog"
)

// Format is the body of an https stream; the other kinds have their own.
type Format string

// The formats of an https stream.
const (
	// FormatNDJSON is one event's JSON per line.
	FormatNDJSON Format = "ndjson"
	// FormatCloudEvents is a CloudEvents 1.0 JSON batch.
	FormatCloudEvents Format = "cloudevents"
)

// Headers of every request.
const (
	// SignatureHeader carries t=<unix>,v1=<hex HMAC-SHA256(secret, t "." body)>.
	SignatureHeader = "IntelliAuth-Signature"
	// IdempotencyHeader carries <stream id>/<first event id>/<last event id>,
	// the same on every attempt at one batch.
	IdempotencyHeader = "Idempotency-Key"
	// UserAgent names the control plane to receivers.
	UserAgent = "IntelliAuth-ControlPlane/1 (audit-stream)"
)

// Target is one stream's destination, as the stream's workflow knows it.
type Target struct {
	Kind   Kind
	Format Format // https only; ndjson when empty
	// Endpoint is the URL posted to, as the customer gave it (already
	// checked by outbound.ValidateEndpoint when it was saved).
	Endpoint string
	// Credential is the Splunk HEC token or the Datadog API key, unsealed.
	Credential string
	// Secret signs each request (IntelliAuth-Signature); https streams
	// have one, and the others are signed too when they do.
	Secret []byte
	// StreamID is the first part of each batch's idempotency key.
	StreamID string
	// OrgID tags Datadog entries (org_id:<id>).
	OrgID string
	// Source is CloudEvents' source; "/organizations/<OrgID>" when empty.
	Source string
}

// ErrUnknownTarget is the error of a Target whose kind or format this
// package does not know, or that lacks what its kind needs.
var ErrUnknownTarget = errors.New("auditstream: unknown kind or format")

func (t Target) source() string {
	if t.Source != "" {
		return t.Source
	}
	return "/organizations/" + t.OrgID
}

func (t Target) format() Format {
	if t.Format == "" {
		return FormatNDJSON
	}
	return t.Format
}
