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

// messagePrefix starts every signed head's message, so a signature over
// it means nothing else.
const messagePrefix = "intelliauth-audit-chain/v1"

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

// Sign returns the head of the organisation's chain (length events, the
// last's hash head) signed now with key, named keyID.
func Sign(key ed25519.PrivateKey, keyID, orgID string, length int64, head []byte, now time.Time) Head {
	at := now.UTC().Truncate(time.Second)
	sig := ed25519.Sign(key, Message(orgID, length, head, at))
	return Head{OrgID: orgID, Length: length, Head: hex.EncodeToString(head), SignedAt: at, KeyID: keyID,
		Signature: base64.StdEncoding.EncodeToString(sig)}
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
		if err != nil || !ed25519.Verify(pub, Message(h.OrgID, h.Length, head, h.SignedAt), sig) {
			return errors.New("the head's signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("no published key is named %q", h.KeyID)
}

// HeadBytes is the head's hash.
func (h Head) HeadBytes() ([]byte, error) {
	b, err := hex.DecodeString(h.Head)
	if err != nil || len(b) != HashSize {
		return nil, fmt.Errorf("head %q is not %d bytes in hex", h.Head, HashSize)
	}
	return b, nil
}
