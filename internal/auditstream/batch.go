package auditstream

// A batch's bounds. Both are within what every receiver documents:
// Datadog takes at most 1,000 entries and 5 MB a request (1 MB an entry);
// Splunk's HEC takes 1 MB a request unless its administrator raised it.
const (
	MaxBatchEvents = 500
	MaxBatchBytes  = 1_000_000
)

// Batch is one request's worth of events, encoded for its target.
type Batch struct {
	// FirstID, LastID and their Seq are the batch's first and last
	// events: the idempotency key names the ids, and the stream's cursor
	// moves to LastID once the batch is delivered.
	FirstID, LastID   string
	FirstSeq, LastSeq int64
	Count             int
	ContentType       string
	Body              []byte
}

// IdempotencyKey is <stream id>/<first event id>/<last event id>: the
// same for every attempt at the batch, so a receiver can drop one it has.
func (b Batch) IdempotencyKey(streamID string) string {
	return streamID + "/" + b.FirstID + "/" + b.LastID
}

// Batches cuts events, in their order, into batches of at most
// MaxBatchEvents events and MaxBatchBytes bytes of body, encoded for t.
//
// An event whose entry alone is larger than MaxBatchBytes goes alone in
// its batch, whole: it is never split nor dropped, since a stream
// delivers every event in order. Audit events are a few KB; such an event
// is an anomaly that the receiver may refuse (the stream then fails
// visibly) and that Datadog, past its 1 MB per entry, truncates itself
// and still accepts, as it documents.
func Batches(t Target, events []Event) ([]Batch, error) {
	enc, err := encodingFor(t)
	if err != nil {
		return nil, err
	}
	var (
		out  []Batch
		body []byte
		cur  Batch
	)
	flush := func() {
		body = append(body, enc.close...)
		cur.Body, cur.ContentType = body, enc.contentType
		out = append(out, cur)
		body, cur = nil, Batch{}
	}
	for _, e := range events {
		entry, err := enc.entry(t, e)
		if err != nil {
			return nil, err
		}
		if cur.Count > 0 && (cur.Count == MaxBatchEvents ||
			len(body)+len(enc.sep)+len(entry)+len(enc.close) > MaxBatchBytes) {
			flush()
		}
		if cur.Count == 0 {
			body = append(make([]byte, 0, min(MaxBatchBytes, 64<<10)), enc.open...)
			cur.FirstID, cur.FirstSeq = e.ID, e.Seq
		} else {
			body = append(body, enc.sep...)
		}
		body = append(body, entry...)
		cur.LastID, cur.LastSeq = e.ID, e.Seq
		cur.Count++
	}
	if cur.Count > 0 {
		flush()
	}
	return out, nil
}
