// Package seal encrypts secrets at rest (tenants' private signing keys)
// with AES-256-GCM under a key ring from the configuration: the first key
// seals, every key opens, so keys rotate without downtime. Each key of the
// ring also gives signing keys (Ed25519, derived per purpose), the first
// signing.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Ring is an ordered set of keys: the first seals, all open.
type Ring struct {
	ids  []string
	aead map[string]cipher.AEAD
	// secrets are the keys themselves, which signing keys are derived
	// from.
	secrets map[string][]byte
}

var idPattern = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)

// prefix marks sealed data: "sealed:<key id>:" then nonce and ciphertext.
const prefix = "sealed:"

// ParseRing reads "<id>=<base64 of 32 bytes>[,<id>=<key>…]".
func ParseRing(spec string) (*Ring, error) {
	r := &Ring{aead: map[string]cipher.AEAD{}, secrets: map[string][]byte{}}
	for _, item := range strings.Split(spec, ",") {
		id, b64, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || !idPattern.MatchString(id) {
			return nil, fmt.Errorf("%q must be <id>=<base64 key>, the id of a-z, 0-9 and '-'", clip(item))
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("key %s must be 32 bytes in base64 (openssl rand -base64 32)", id)
		}
		if _, dup := r.aead[id]; dup {
			return nil, fmt.Errorf("key %s is given twice", id)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.ids, r.aead[id], r.secrets[id] = append(r.ids, id), gcm, key
	}
	return r, nil
}

// NewKey returns a fresh key in the form ParseRing reads, for id.
func NewKey(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return id + "=" + base64.StdEncoding.EncodeToString(key), nil
}

func clip(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

// Current is the id of the key that seals.
func (r *Ring) Current() string { return r.ids[0] }

// IDs are the ids of the ring's keys, the current one first.
func (r *Ring) IDs() []string { return append([]string(nil), r.ids...) }

// SigningKey is the Ed25519 key derived from the ring's key id for
// purpose: its seed is HKDF-SHA256 of the key, without salt, with the
// purpose as info. A key of the ring thus signs for each purpose with a
// key of its own, and its AES key is used for nothing else.
func (r *Ring) SigningKey(id, purpose string) (ed25519.PrivateKey, error) {
	secret, ok := r.secrets[id]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	}
	seed, err := hkdf.Key(sha256.New, secret, nil, purpose, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("derive the %s of key %s: %w", purpose, id, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Seal encrypts plaintext under the current key; context binds the
// ciphertext to what it belongs to (a tenant id), so it cannot be moved.
func (r *Ring) Seal(plaintext, context []byte) ([]byte, error) {
	id := r.Current()
	gcm := r.aead[id]
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append([]byte(prefix+id+":"), nonce...)
	return gcm.Seal(out, nonce, plaintext, context), nil
}

// ErrUnknownKey is returned for data sealed under a key the ring lacks.
var ErrUnknownKey = errors.New("sealed under a key that is not configured")

// Open decrypts what Seal made under any key of the ring.
func (r *Ring) Open(sealed, context []byte) ([]byte, error) {
	id, rest, ok := parse(sealed)
	if !ok {
		return nil, errors.New("not sealed data")
	}
	gcm, ok := r.aead[id]
	if !ok {
		return nil, fmt.Errorf("key %s: %w", id, ErrUnknownKey)
	}
	if len(rest) < gcm.NonceSize() {
		return nil, errors.New("sealed data too short")
	}
	return gcm.Open(nil, rest[:gcm.NonceSize()], rest[gcm.NonceSize():], context)
}

// KeyID returns the id of the key data was sealed under ("" when it is not
// sealed data).
func KeyID(data []byte) string {
	id, _, _ := parse(data)
	return id
}

func parse(data []byte) (id string, rest []byte, ok bool) {
	if !bytes.HasPrefix(data, []byte(prefix)) {
		return "", nil, false
	}
	idb, rest, ok := bytes.Cut(data[len(prefix):], []byte(":"))
	return string(idb), rest, ok
}
