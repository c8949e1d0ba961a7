// Package operator binds an operator's verified identity to what they do
// to a saga through Temporal. Operators reach Temporal only through the
// operator gateway (package opsgate), which verifies their client
// certificate and stamps each repair with an Assertion sealed under the key
// ring: the saga takes a repair only with a fresh assertion bound to its
// workflow, the update and its id, so an operator named in the audit trail
// is one a certificate proved, never a name typed into a payload.
package operator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"

	"github.com/intelliauth/controlplane/internal/seal"
)

// Header is the Temporal header an assertion travels in. Whatever a caller
// puts there is replaced by the gateway.
const Header = "intelliauth-operator"

// IdentityPrefix starts the identity the gateway writes on every request
// it forwards (and so on the history events they make: a terminate's, a
// reset's): "operator:<name> proof:<sealed>".
const IdentityPrefix = "operator:"

// Validity is how long an assertion may be used after the gateway made it
// (and how far the gateway's clock may run ahead of the worker's).
const Validity = 5 * time.Minute

// Assertion says that the gateway verified Operator's certificate and
// forwarded the request Subject names at IssuedAt. Proof seals the three
// under the key ring; Operator and IssuedAt are also in clear so a history
// read back (or replayed after a key left the ring) still names who acted.
type Assertion struct {
	Operator string    `json:"operator"`
	IssuedAt time.Time `json:"issued_at"`
	Proof    []byte    `json:"proof"`
}

// claims are what a proof seals.
type claims struct {
	Operator string    `json:"operator"`
	IssuedAt time.Time `json:"issued_at"`
}

// Subject is what an assertion is bound to: an update of one workflow with
// one update id, or a terminate or reset of one workflow.
func Subject(workflowID, what, id string) string {
	return "intelliauth/operator/v1\x00" + workflowID + "\x00" + what + "\x00" + id
}

// ValidName reports whether a certificate's name can name an operator: 1
// to 100 printable characters.
func ValidName(name string) bool {
	return name != "" && len(name) <= 100 && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) })
}

// Stamp makes the assertion that name acted on subject at now.
func Stamp(ring *seal.Ring, name, subject string, now time.Time) (Assertion, error) {
	if !ValidName(name) {
		return Assertion{}, errors.New("an operator's name is 1 to 100 printable characters without spaces")
	}
	c := claims{Operator: name, IssuedAt: now.UTC().Truncate(time.Millisecond)}
	b, _ := json.Marshal(c)
	proof, err := ring.Seal(b, []byte(subject))
	if err != nil {
		return Assertion{}, err
	}
	return Assertion{Operator: c.Operator, IssuedAt: c.IssuedAt, Proof: proof}, nil
}

// Errors of Verify, for the saga's refusal.
var (
	ErrMissing = errors.New("a repair needs an operator verified by the operator gateway: send it through the gateway with your client certificate (docs/runbook.md)")
	ErrForged  = errors.New("the operator assertion does not hold for this request: send it through the operator gateway")
	ErrStale   = errors.New("the operator assertion is stale: send the repair again through the operator gateway")
)

// Verify checks that a was sealed by a key of the ring for subject, that
// its clear fields are what it sealed, and that it is fresh at now.
func (a Assertion) Verify(ring *seal.Ring, subject string, now time.Time) error {
	if a.Operator == "" && len(a.Proof) == 0 {
		return ErrMissing
	}
	b, err := ring.Open(a.Proof, []byte(subject))
	if err != nil {
		return ErrForged
	}
	var c claims
	if err := json.Unmarshal(b, &c); err != nil || c.Operator != a.Operator || !c.IssuedAt.Equal(a.IssuedAt) || !ValidName(c.Operator) {
		return ErrForged
	}
	if now.Sub(c.IssuedAt) > Validity || c.IssuedAt.Sub(now) > Validity {
		return ErrStale
	}
	return nil
}

// Payload is a as a Temporal header payload (plain JSON: headers do not go
// through the payload codec, and the proof is sealed already).
func (a Assertion) Payload() (*commonpb.Payload, error) {
	return converter.GetDefaultDataConverter().ToPayload(a)
}

// FromPayload reads an assertion from its header payload.
func FromPayload(p *commonpb.Payload) (Assertion, error) {
	var a Assertion
	if err := converter.GetDefaultDataConverter().FromPayload(p, &a); err != nil {
		return Assertion{}, err
	}
	return a, nil
}

// Identity is the Temporal identity the gateway writes for a: the name, then
// the proof, which a reader verifies with ParseIdentity.
func (a Assertion) Identity() string {
	b, _ := json.Marshal(a)
	return IdentityPrefix + a.Operator + " proof:" + string(b)
}

// ParseIdentity reads an identity Identity wrote; ok is false for any other
// (a client's own identity, typed by whoever sent it).
func ParseIdentity(identity string) (a Assertion, ok bool) {
	rest, found := strings.CutPrefix(identity, IdentityPrefix)
	if !found {
		return Assertion{}, false
	}
	name, proof, found := strings.Cut(rest, " proof:")
	if !found {
		return Assertion{}, false
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(proof)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || a.Operator != name {
		return Assertion{}, false
	}
	return a, true
}

// String names the operator, for logs.
func (a Assertion) String() string {
	return fmt.Sprintf("operator %s at %s", a.Operator, a.IssuedAt.Format(time.RFC3339))
}
