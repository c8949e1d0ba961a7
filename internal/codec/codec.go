// Package codec encrypts Temporal payloads (workflow and activity inputs
// and results, memos, markers) with AES-256-GCM under the key ring of
// internal/seal, so the Temporal server and its database hold no personal
// data in clear; and serves the remote codec protocol through which the
// Temporal UI and CLI show them decoded to operators.
package codec

import (
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/intelliauth/controlplane/internal/seal"
)

// The metadata of an encoded payload: the encoding names it (Temporal's
// samples and tools use the same), the key id says which key of the ring
// sealed it, so a ring with an older key still opens it after a rotation.
const (
	Encoding      = "binary/encrypted"
	MetadataKeyID = "encryption-key-id"
)

// payloadContext is the associated data of every payload: a tenant's signing key
// is sealed with its tenant id instead, so neither can be opened as the
// other through the codec endpoint.
var payloadContext = []byte("intelliauth/temporal-payload/v1")

// Codec is a converter.PayloadCodec that seals each payload whole (its
// metadata and data) under the ring's current key.
type Codec struct {
	ring *seal.Ring
}

// New returns the codec of a key ring.
func New(ring *seal.Ring) *Codec { return &Codec{ring: ring} }

// DataConverter is Temporal's default converter with the codec after it:
// what every client of the control plane (API, worker, verify, setup)
// dials with.
func DataConverter(ring *seal.Ring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), New(ring))
}

// Encode seals every payload.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		sealed, err := c.ring.Seal(plain, payloadContext)
		if err != nil {
			return nil, fmt.Errorf("encode payload: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(Encoding),
				MetadataKeyID:              []byte(seal.KeyID(sealed)),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode opens the payloads this codec sealed and passes every other one
// through as it is: histories written before payloads were encrypted (and
// the recorded ones the replay tests read) stay readable, and so do the
// inputs an operator's CLI sends without a codec.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != Encoding {
			out[i] = p
			continue
		}
		plain, err := c.ring.Open(p.GetData(), payloadContext)
		if err != nil {
			return nil, fmt.Errorf("decode payload sealed under key %q: %w", p.GetMetadata()[MetadataKeyID], err)
		}
		out[i] = &commonpb.Payload{}
		if err := proto.Unmarshal(plain, out[i]); err != nil {
			return nil, fmt.Errorf("decode payload: %w", err)
		}
	}
	return out, nil
}
