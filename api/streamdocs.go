package api

import (
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/store"
)

// streamRouteDocs are the audit streams' entries of routeDocs.
func streamRouteDocs(org string) map[string]doc {
	streams, stream := org+"/audit-streams", org+"/audit-streams/:stream_id"
	return map[string]doc{
		"POST " + streams: {id: "createAuditStream", summary: "Stream the organisation's audit events to a webhook, Splunk or Datadog",
			desc: "One workflow per stream delivers the events after its cursor (from the stream's creation on, its own audit_stream.created first; POST …/replay delivers what came before), " +
				"in order, at least once, in batches of at most 500 events and 1 MB. Each request carries Idempotency-Key: <stream id>/<first event id>/<last event id>, the same on every attempt at a batch, " +
				"so a receiver drops a batch it has (a batch is sent again only when a delivery's worker died before it moved the cursor). " +
				"An https stream posts NDJSON or a CloudEvents 1.0 batch signed with its secret (IntelliAuth-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>); " +
				"splunk_hec posts HEC events with Authorization: Splunk <token>; datadog posts Logs API v2 entries with DD-API-KEY. " +
				"The endpoint must be https and must not be, or resolve to, a loopback, private, link-local or metadata address (400; CP_STREAM_ALLOW_PRIVATE lifts loopback and private, and allows http there); " +
				"the address is checked again at each connection, redirects are not followed. " +
				fmt.Sprintf("At most %d streams per organisation (409). ", store.MaxStreams) +
				"A person needs a recent authentication (a stream sends the trail wherever it points); a service account limited to environments is refused (a stream carries every event). " +
				"Audited as audit_stream.created.",
			body: createStreamRequest{}, data: createdStream{}, status: fiber.StatusCreated, errs: []errorResponse{errReauth}},
		"GET " + streams: {id: "listAuditStreams", summary: "The organisation's audit streams, with their status, cursor and lag",
			data: streamView{}, list: true, query: listParams()},
		"GET " + stream: {id: "getAuditStream", summary: "One audit stream", data: streamView{}},
		"PATCH " + stream: {id: "updateAuditStream", summary: "Rename an audit stream, change its endpoint, actions or credential, pause or resume it",
			desc: "paused: true holds it (audit_stream.paused); paused: false lets a paused or suspended stream deliver again from its cursor (audit_stream.resumed), " +
				"with its whole CP_STREAM_SUSPEND_AFTER before it can be suspended again. A new endpoint is checked as at creation; no batch starts after the answer (one already being sent is sent once), and a delivery in flight reads the stream again. " +
				"A new endpoint or credential needs a person's recent authentication, as a creation does. " +
				"Audited as audit_stream.updated (before and after; a credential only as replaced).",
			body: updateStreamRequest{}, data: streamView{}, errs: []errorResponse{errReauth}},
		"DELETE " + stream: {id: "deleteAuditStream", summary: "Delete an audit stream; its workflow ends",
			desc: "Its secret and credential are erased with it. Audited as audit_stream.deleted.", data: streamView{}},
		"POST " + stream + "/replay": {id: "replayAuditStream", summary: "Deliver again from an event, or from a time",
			desc: "Moves the cursor back to just before the event (from_event_id) or the first event at or after since; a cursor already before it stays (a replay never skips an event). " +
				"A delivery in flight leaves the cursor to the replay. The receiver gets the events again with the same ids, in batches whose Idempotency-Key may differ from the first time's. " +
				"from_event_id of another organisation is 400. Audited as audit_stream.replayed.",
			body: replayStreamRequest{}, data: streamView{}},
		"POST " + stream + "/test": {id: "testAuditStream", summary: "Send one test event and answer with the receiver's status",
			desc: "A synthetic event (action audit_stream.test, not written to the trail) is sent as a delivery would send it (signed, with an Idempotency-Key, through the same address rules), " +
				"within 10 s. The answer is 200 whatever the receiver said: delivered, its status, the latency and the error. Logged in the delivery log (outcome test) and audited as audit_stream.tested.",
			data: streamTestResult{}},
		"GET " + stream + "/deliveries": {id: "listAuditStreamDeliveries", summary: "An audit stream's delivery log, newest first",
			desc: fmt.Sprintf("Each attempt at a batch: its events, status, latency, attempt and error. The last %d attempts of the last 7 days are kept.", store.KeptDeliveries),
			data: streamDeliveryView{}, list: true, query: listParams()},
	}
}
