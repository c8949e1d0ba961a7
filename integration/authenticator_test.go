package integration

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	binenc "encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// softAuthenticator is a WebAuthn client and authenticator in one, in
// software, for tests that drive passkey ceremonies without a browser: it
// makes P-256 (ES256) discoverable credentials with "none" or "packed"
// self attestation and signs assertions, as a browser on origin would
// with a platform authenticator that verifies its user.
type softAuthenticator struct {
	t      *testing.T
	origin string
	// packed: attest with a packed self attestation instead of none.
	packed bool
	// userVerified is the UV flag it sets (true unless a test says).
	userVerified bool
	creds        []*softCredential
}

// softCredential is one credential the authenticator holds.
type softCredential struct {
	id         []byte
	key        *ecdsa.PrivateKey
	rpID       string
	userHandle []byte
	counter    uint32
}

func newSoftAuthenticator(t *testing.T, origin string) *softAuthenticator {
	return &softAuthenticator{t: t, origin: origin, userVerified: true}
}

var b64 = base64.RawURLEncoding

// creationOptions is what the authenticator reads of
// PublicKeyCredentialCreationOptions.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	ExcludeCredentials []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey      string `json:"residentKey"`
		UserVerification string `json:"userVerification"`
	} `json:"authenticatorSelection"`
}

// requestOptions is what it reads of PublicKeyCredentialRequestOptions.
type requestOptions struct {
	Challenge        string `json:"challenge"`
	RPID             string `json:"rpId"`
	UserVerification string `json:"userVerification"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

func (a *softAuthenticator) flags() byte {
	f := byte(flagUP)
	if a.userVerified {
		f |= flagUV
	}
	return f
}

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	b, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	if err != nil {
		a.t.Fatal(err)
	}
	return b
}

// create answers creation options (their JSON) as navigator.credentials.
// create would: a new credential for the options' relying party and user,
// as the PublicKeyCredential's JSON.
func (a *softAuthenticator) create(options json.RawMessage) (map[string]any, *softCredential) {
	a.t.Helper()
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		a.t.Fatalf("creation options: %v", err)
	}
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		a.t.Fatalf("user.id %q: %v", o.User.ID, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	cred := &softCredential{id: make([]byte, 32), key: key, rpID: o.RP.ID, userHandle: handle}
	_, _ = rand.Read(cred.id)

	x, y := make([]byte, 32), make([]byte, 32)
	key.PublicKey.X.FillBytes(x)
	key.PublicKey.Y.FillBytes(y)
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y})
	if err != nil {
		a.t.Fatal(err)
	}
	rpHash := sha256.Sum256([]byte(o.RP.ID))
	var auth bytes.Buffer
	auth.Write(rpHash[:])
	auth.WriteByte(a.flags() | flagAT)
	_ = binenc.Write(&auth, binenc.BigEndian, cred.counter)
	auth.Write(make([]byte, 16)) // AAGUID: none
	_ = binenc.Write(&auth, binenc.BigEndian, uint16(len(cred.id)))
	auth.Write(cred.id)
	auth.Write(cose)

	cdj := a.clientData("webauthn.create", o.Challenge)
	att := map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth.Bytes()}
	if a.packed {
		hash := sha256.Sum256(cdj)
		sig := a.sign(key, append(auth.Bytes(), hash[:]...))
		att["fmt"], att["attStmt"] = "packed", map[string]any{"alg": -7, "sig": sig}
	}
	attObj, err := webauthncbor.Marshal(att)
	if err != nil {
		a.t.Fatal(err)
	}
	a.creds = append(a.creds, cred)
	return map[string]any{
		"id": b64.EncodeToString(cred.id), "rawId": b64.EncodeToString(cred.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"attestationObject": b64.EncodeToString(attObj),
			"transports":        []string{"internal"},
		},
		"clientExtensionResults":  map[string]any{},
		"authenticatorAttachment": "platform",
	}, cred
}

// get answers request options (their JSON) as navigator.credentials.get
// would, with cred (nil: the first of its credentials the options allow,
// or of their relying party when they allow any).
func (a *softAuthenticator) get(options json.RawMessage, cred *softCredential) map[string]any {
	a.t.Helper()
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		a.t.Fatalf("request options: %v", err)
	}
	if cred == nil {
		for _, c := range a.creds {
			allowed := len(o.AllowCredentials) == 0
			for _, ac := range o.AllowCredentials {
				allowed = allowed || ac.ID == b64.EncodeToString(c.id)
			}
			if allowed && c.rpID == o.RPID {
				cred = c
				break
			}
		}
		if cred == nil {
			a.t.Fatalf("the authenticator holds no credential the options allow: %s", options)
		}
	}
	return a.assert(o.RPID, o.Challenge, cred)
}

// assert signs an assertion of cred for rpID on challenge, its counter
// moved on by one.
func (a *softAuthenticator) assert(rpID, challenge string, cred *softCredential) map[string]any {
	cred.counter++
	rpHash := sha256.Sum256([]byte(rpID))
	var auth bytes.Buffer
	auth.Write(rpHash[:])
	auth.WriteByte(a.flags())
	_ = binenc.Write(&auth, binenc.BigEndian, cred.counter)
	cdj := a.clientData("webauthn.get", challenge)
	hash := sha256.Sum256(cdj)
	sig := a.sign(cred.key, append(bytes.Clone(auth.Bytes()), hash[:]...))
	return map[string]any{
		"id": b64.EncodeToString(cred.id), "rawId": b64.EncodeToString(cred.id), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(cdj),
			"authenticatorData": b64.EncodeToString(auth.Bytes()),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(cred.userHandle),
		},
		"clientExtensionResults":  map[string]any{},
		"authenticatorAttachment": "platform",
	}
}

func (a *softAuthenticator) sign(key *ecdsa.PrivateKey, msg []byte) []byte {
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	return sig
}
