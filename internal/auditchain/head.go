package auditchain

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// SigningPurpose is what the control plane's signing key of audit chains
// is derived for (seal.Ring.SigningKey's purpose): one key of the ring
// gives one signing key per purpose.
const SigningPurpose = "intelliauth-audit-chain/v1 signing key"

// The first line of a signed head's message says what the message is,
// so a signature over it means nothing else. v1 heads (before retention)
// sign the chain's length and last hash; v2 heads also sign the chain's
// checkpoint, where what is left of it starts.
const (
	messagePrefix   = "intelliauth-audit-chain/v1"
	messagePrefixV2 = "intelliauth-audit-chain/v2"
)

// checkpointTime is how a checkpoint's time is written in a v2 message:
// RFC 3339 in UTC with microseconds, what Postgres keeps.
const checkpointTime = "2006-01-02T15:04:05.000000Z"

// Checkpoint is where an organisation's chain starts after once retention
// purged its oldest events: the last purged event's seq, hash and time.
// The first event kept links to Hash as the first event of a chain links
// to the genesis. Seq 0 (Hash the genesis, OccurredAt null): nothing was
// purged.
type Checkpoint struct {
	Seq        int64      `json:"seq"`
	Hash       string     `json:"hash"`
	OccurredAt *time.Time `json:"occurred_at"`
}

// NewCheckpoint describes a checkpoint (seq 0 and a nil hash: none).
func NewCheckpoint(seq int64, hash []byte, at *time.Time) Checkpoint {
	if seq == 0 || len(hash) == 0 {
		return Checkpoint{Hash: hex.EncodeToString(Genesis)}
	}
	c := Checkpoint{Seq: seq, Hash: hex.EncodeToString(hash)}
	if at != nil {
		t := at.UTC().Truncate(time.Microsecond)
		c.OccurredAt = &t
	}
	return c
}

// HashBytes is the checkpoint's hash.
func (c Checkpoint) HashBytes() ([]byte, error) {
	b, err := hex.DecodeString(c.Hash)
	if err != nil || len(b) != HashSize {
		return nil, fmt.Errorf("checkpoint hash %q is not %d bytes in hex", c.Hash, HashSize)
	}
	return b, nil
}

// Head is an organisation's chain as GET /organizations/{org_id}/audit-chain
// answers it: how many events it has and the hash of the last, signed.
type Head struct {
	OrgID string `json:"org_id"`
	// Length is how many events the chain has; the last has seq Length.
	Length int64 `json:"length"`
	// Head is the last event's hash (hex), or the genesis (64 zeros) while
	// the chain has none.
	Head     string    `json:"head"`
	SignedAt time.Time `json:"signed_at"`
	// Checkpoint is where the chain starts after (retention purged the
	// events up to it); signed with the rest (v2). A head without one is
	// a v1 head, signed before retention.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	// KeyID names the key (GET /api/v1/audit-chain/keys) that signed.
	KeyID string `json:"key_id"`
	// Signature is the Ed25519 signature of Message, in base64.
	Signature string `json:"signature"`
}

// Message is what a head's signature signs, five lines joined by "\n"
// without a final one:
//
//	intelliauth-audit-chain/v1
//	<org_id>
//	<length, decimal>
//	<head, 64 lowercase hex digits>
//	<signed_at, RFC 3339 in UTC, whole seconds: 2026-12-03T10:00:00Z>
func Message(orgID string, length int64, head []byte, signedAt time.Time) []byte {
	return []byte(messagePrefix + "\n" + orgID + "\n" + strconv.FormatInt(length, 10) + "\n" +
		hex.EncodeToString(head) + "\n" + signedAt.UTC().Format(time.RFC3339))
}

// MessageV2 is what a v2 head's signature signs, eight lines joined by
// "\n" without a final one:
//
//	intelliauth-audit-chain/v2
//	<org_id>
//	<length, decimal>
//	<head, 64 lowercase hex digits>
//	<checkpoint seq, decimal: 0 when nothing was purged>
//	<checkpoint hash, 64 lowercase hex digits: the genesis when seq is 0>
//	<checkpoint occurred_at, RFC 3339 in UTC with microseconds: 2026-12-03T10:00:00.000000Z; empty when seq is 0>
//	<signed_at, RFC 3339 in UTC, whole seconds: 2026-12-03T10:00:00Z>
func MessageV2(orgID string, length int64, head []byte, cp Checkpoint, signedAt time.Time) []byte {
	at := ""
	if cp.OccurredAt != nil {
		at = cp.OccurredAt.UTC().Format(checkpointTime)
	}
	return []byte(messagePrefixV2 + "\n" + orgID + "\n" + strconv.FormatInt(length, 10) + "\n" +
		hex.EncodeToString(head) + "\n" + strconv.FormatInt(cp.Seq, 10) + "\n" + cp.Hash + "\n" + at + "\n" +
		signedAt.UTC().Format(time.RFC3339))
}

// message is what the head's signature signs: v2 with a checkpoint, v1
// without.
func (h Head) message(head []byte) []byte {
	if h.Checkpoint != nil {
		return MessageV2(h.OrgID, h.Length, head, *h.Checkpoint, h.SignedAt)
	}
	return Message(h.OrgID, h.Length, head, h.SignedAt)
}

// Sign returns the head of the organisation's chain (length events, the
// last's hash head, starting after the checkpoint cp) signed now with
// key, named keyID: a v2 head.
func Sign(key ed25519.PrivateKey, keyID, orgID string, length int64, head []byte, cp Checkpoint, now time.Time) Head {
	h := Head{OrgID: orgID, Length: length, Head: hex.EncodeToString(head), Checkpoint: &cp, SignedAt: now.UTC().Truncate(time.Second), KeyID: keyID}
	h.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, h.message(head)))
	return h
}

// PublicKey is a public key of the control plane that signs heads.
type PublicKey struct {
	KeyID string `json:"key_id"`
	// Algorithm is Ed25519.
	Algorithm string `json:"algorithm"`
	// PublicKey is the 32-byte Ed25519 public key in base64.
	PublicKey string `json:"public_key"`
}

// PublicKeyOf describes key's public half, named keyID.
func PublicKeyOf(keyID string, key ed25519.PrivateKey) PublicKey {
	return PublicKey{KeyID: keyID, Algorithm: "Ed25519",
		PublicKey: base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))}
}

// Verify checks the head's signature with the key of keys its KeyID
// names.
func (h Head) Verify(keys []PublicKey) error {
	for _, k := range keys {
		if k.KeyID != h.KeyID {
			continue
		}
		pub, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil || len(pub) != ed25519.PublicKeySize || k.Algorithm != "Ed25519" {
			return fmt.Errorf("key %s is not an Ed25519 public key", k.KeyID)
		}
		head, err := h.HeadBytes()
		if err != nil {
			return err
		}
		sig, err := base64.StdEncoding.DecodeString(h.Signature)
		if err != nil || !ed25519.Verify(pub, h.message(head), sig) {
			return errors.New("the head's signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("no published key is named %q", h.KeyID)
}

// GetCheckpoint is the head's checkpoint: none purged (seq 0) for a nil
// head or a v1 head.
func (h *Head) GetCheckpoint() Checkpoint {
	if h == nil || h.Checkpoint == nil {
		return NewCheckpoint(0, nil, nil)
	}
	return *h.Checkpoint
}

// HeadBytes is the head's hash.
func (h Head) HeadBytes() ([]byte, error) {
	b, err := hex.DecodeString(h.Head)
	if err != nil || len(b) != HashSize {
		return nil, fmt.Errorf("head %q is not %d bytes in hex", h.Head, HashSize)
	}
	return b, nil
}
