// Package auditchain is the audit trail's tamper evidence: the canonical
// form of an event, the hash that links it to the one before, the signed
// message of a chain's head, and the verifier that recomputes a chain and
// names its first bad event. It knows events only as the JSON the API
// shows, so a customer's export and the database are checked alike.
package auditchain

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/gowebpki/jcs"
)

// HashSize is the size of an event's hash and of a chain's head.
const HashSize = sha256.Size

// Genesis is the hash before an organisation's first event: 32 zero
// bytes.
var Genesis = make([]byte, HashSize)

// Link returns the hash of an event whose canonical form is canonical and
// whose predecessor's hash is prev: SHA-256(prev ‖ canonical).
func Link(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// Canonical is the canonical form of an event, given as the JSON object
// the API shows (an item of GET /organizations/{org_id}/events, a line of
// its NDJSON export): the object without its "hash" member, in the JSON
// Canonicalization Scheme (RFC 8785): members sorted by their UTF-16 code
// units, no whitespace, strings with the fewest escapes, numbers as
// ECMAScript prints them. Its "seq" member is part of it.
func Canonical(event []byte) ([]byte, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(event, &members); err != nil {
		return nil, fmt.Errorf("an event is a JSON object: %w", err)
	}
	if members == nil {
		return nil, errors.New("an event is a JSON object, not null")
	}
	delete(members, "hash")
	b, err := json.Marshal(members)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(b)
}

// CanonicalJSON is a JSON document in the JSON Canonicalization Scheme.
// A document with a key given twice keeps the last (as Postgres's jsonb
// does). A number beyond the range of a double is an error: RFC 8785
// (I-JSON) has none.
func CanonicalJSON(doc []byte) ([]byte, error) {
	out, err := jcs.Transform(doc)
	if err == nil {
		return out, nil
	}
	// jcs refuses a key given twice; decoding into a map keeps the last.
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if derr := d.Decode(&v); derr != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	b, merr := json.Marshal(v)
	if merr != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	if out, err = jcs.Transform(b); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return out, nil
}
