package auditstream

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is how far a signature's time may be from a
// receiver's clock; Verify uses it when given none.
const DefaultTolerance = 5 * time.Minute

// Verify's errors, for a receiver to answer 400 or 401 with.
var (
	ErrNoSignature       = errors.New("auditstream: no valid signature header")
	ErrSignatureTooOld   = errors.New("auditstream: signature timestamp outside the tolerance")
	ErrSignatureMismatch = errors.New("auditstream: no signature matches the body")
)

// Sign returns the IntelliAuth-Signature header of body sent at t:
// t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<unix seconds>.<body>")>,
// Stripe's scheme, so that a receiver can check the body and refuse a
// replay.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks an IntelliAuth-Signature header against body and secret,
// as a receiver does: the header has one t and one or more v1 values (a
// sender rotating its secret signs with both; any match is enough; other
// schemes are ignored), t is within tolerance of now (DefaultTolerance
// when tolerance ≤ 0), and the comparison takes constant time.
func Verify(header string, body []byte, secret []byte, tolerance time.Duration, now time.Time) error {
	var (
		ts     string
		hasTS  bool
		sigs   [][]byte
		unixTS int64
	)
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrNoSignature
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if hasTS || err != nil {
				return ErrNoSignature
			}
			ts, hasTS, unixTS = v, true, n
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil && len(sig) == sha256.Size {
				sigs = append(sigs, sig)
			}
		}
	}
	if !hasTS || len(sigs) == 0 {
		return ErrNoSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(unixTS, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureTooOld
	}
	want := mac(secret, ts, body)
	match := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			match = true
		}
	}
	if !match {
		return ErrSignatureMismatch
	}
	return nil
}
