package auditstream

import (
	"errors"
	"testing"
	"time"
)

var (
	signedAt = time.Unix(1735732800, 0)
	body     = []byte(`{"id":"evt_1"}` + "\n")
	secret   = []byte("whsec_test")
)

func TestSignIsStripesScheme(t *testing.T) {
	// HMAC-SHA256("whsec_test", "1735732800." + body), computed apart.
	want := "t=1735732800,v1=312430c4f9836dc23135d01c8400bd66dcd28929ecdd152d3bcb8eecffce355a"
	if got := Sign(secret, signedAt, body); got != want {
		t.Fatalf("Sign = %s\nwant   %s", got, want)
	}
}

func TestVerifyAcceptsWhatSignSigned(t *testing.T) {
	h := Sign(secret, signedAt, body)
	for _, now := range []time.Time{signedAt, signedAt.Add(DefaultTolerance), signedAt.Add(-time.Minute)} {
		if err := Verify(h, body, secret, 0, now); err != nil {
			t.Errorf("at %v: %v", now.Sub(signedAt), err)
		}
	}
	if err := Verify(" t=1735732800 , "+h[len("t=1735732800,"):], body, secret, time.Minute, signedAt); err != nil {
		t.Errorf("with spaces: %v", err)
	}
}

func TestVerifyAcceptsAnyOfSeveralSignaturesForSecretRotation(t *testing.T) {
	old, cur := []byte("whsec_old"), []byte("whsec_new")
	v1 := func(s []byte) string { h := Sign(s, signedAt, body); return h[len("t=1735732800,"):] }
	h := "t=1735732800," + v1(cur) + "," + v1(old) + ",v0=ignored"
	for _, s := range [][]byte{old, cur} {
		if err := Verify(h, body, s, time.Minute, signedAt); err != nil {
			t.Errorf("secret %s: %v", s, err)
		}
	}
	if err := Verify(h, body, []byte("whsec_other"), time.Minute, signedAt); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("another secret: %v", err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	h := Sign(secret, signedAt, body)
	cases := []struct {
		name   string
		header string
		body   []byte
		secret []byte
		now    time.Time
		want   error
	}{
		{"a changed body", h, []byte(`{"id":"evt_2"}` + "\n"), secret, signedAt, ErrSignatureMismatch},
		{"another secret", h, body, []byte("whsec_other"), signedAt, ErrSignatureMismatch},
		{"a replay after the tolerance", h, body, secret, signedAt.Add(DefaultTolerance + time.Second), ErrSignatureTooOld},
		{"a time too far ahead", h, body, secret, signedAt.Add(-DefaultTolerance - time.Second), ErrSignatureTooOld},
		{"a changed time", "t=1735732801" + h[len("t=1735732800"):], body, secret, signedAt, ErrSignatureMismatch},
		{"no header", "", body, secret, signedAt, ErrNoSignature},
		{"no time", h[len("t=1735732800,"):], body, secret, signedAt, ErrNoSignature},
		{"no v1", "t=1735732800,v0=abc", body, secret, signedAt, ErrNoSignature},
		{"two times", "t=1735732800," + h, body, secret, signedAt, ErrNoSignature},
		{"a time that is no number", "t=soon" + h[len("t=1735732800"):], body, secret, signedAt, ErrNoSignature},
		{"a v1 that is no hex", "t=1735732800,v1=zz", body, secret, signedAt, ErrNoSignature},
		{"a part without =", h + ",junk", body, secret, signedAt, ErrNoSignature},
	}
	for _, c := range cases {
		if err := Verify(c.header, c.body, c.secret, DefaultTolerance, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
