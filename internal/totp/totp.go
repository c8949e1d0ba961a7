// Package totp is the control plane's time-based one-time passwords
// (RFC 6238: SHA-1, 30-second steps, 6 digits, one step either side) and
// recovery codes. Codes are made and checked with pquerna/otp; what this
// package adds is the step a code matched, so a store can accept each
// step once (no replay within the window).
package totp

import (
	"crypto/rand"
	"crypto/subtle"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Issuer names the control plane in an authenticator app.
const Issuer = "IntelliAuth"

// Period is a step's length; Skew the steps either side a code may be of.
const (
	Period = 30 * time.Second
	Skew   = 1
)

var opts = totp.ValidateOpts{Period: uint(Period / time.Second), Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// New makes a secret (160 random bits, base32) for account and the
// otpauth:// URI an authenticator app reads from a QR code.
func New(account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: Issuer, AccountName: account, Period: opts.Period,
		SecretSize: 20, Digits: opts.Digits, Algorithm: opts.Algorithm, Rand: rand.Reader})
	if err != nil {
		return "", "", err
	}
	return key.Secret(), key.URL(), nil
}

// Step is the time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Match reports the step, within Skew of now's, whose code is code (its
// spaces ignored), comparing in constant time; ok is false for none.
// A caller accepts the step only if it is later than the last it accepted.
func Match(secret, code string, now time.Time) (step int64, ok bool) {
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != int(opts.Digits) {
		return 0, false
	}
	cur := Step(now)
	for d := int64(-Skew); d <= Skew; d++ {
		s := cur + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(Period/time.Second), 0), opts)
		if err != nil {
			return 0, false
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			step, ok = s, true // no early return: every step costs the same
		}
	}
	return step, ok
}

// Code is the code of secret at t (for tests and the dev tour).
func Code(secret string, t time.Time) (string, error) {
	return totp.GenerateCodeCustom(secret, t, opts)
}

// recoveryAlphabet has no letters that read like others (0/o, 1/l/i).
const recoveryAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

// RecoveryCodes is how many codes a set has.
const RecoveryCodes = 10

// NewRecoveryCode is 16 characters of recoveryAlphabet (79 random bits)
// in groups of four: xxxx-xxxx-xxxx-xxxx.
func NewRecoveryCode() string {
	var b strings.Builder
	for i := range 16 {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(recoveryAlphabet[randIndex(len(recoveryAlphabet))])
	}
	return b.String()
}

func randIndex(n int) int {
	var b [1]byte
	for {
		_, _ = rand.Read(b[:])
		// Rejection sampling: no character is likelier than another.
		if lim := 256 - 256%n; int(b[0]) < lim {
			return int(b[0]) % n
		}
	}
}

// NormalizeRecoveryCode is a code as typed, lower-cased, without spaces
// or dashes; "" when it cannot be a recovery code.
func NormalizeRecoveryCode(s string) string {
	s = strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(s))
	if len(s) != 16 {
		return ""
	}
	for _, r := range s {
		if !strings.ContainsRune(recoveryAlphabet, r) {
			return ""
		}
	}
	return s
}
