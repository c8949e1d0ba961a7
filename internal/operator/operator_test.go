package operator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/seal"
)

func ring(t *testing.T, id string) *seal.Ring {
	t.Helper()
	k, err := seal.NewKey(id)
	if err != nil {
		t.Fatal(err)
	}
	r, err := seal.ParseRing(k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAnAssertionHoldsOnlyForItsSubjectItsNameAndItsTime(t *testing.T) {
	keys, other := ring(t, "a"), ring(t, "b")
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	subject := Subject("tenant/org_1/k", "retry", "u-1")
	a, err := Stamp(keys, "alice@acme.test", subject, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(keys, subject, at.Add(time.Minute)); err != nil {
		t.Fatalf("the assertion as made: %v", err)
	}
	renamed := a
	renamed.Operator = "mallory@acme.test"
	moved := a
	moved.IssuedAt = at.Add(time.Hour)
	for name, c := range map[string]struct {
		a       Assertion
		keys    *seal.Ring
		subject string
		now     time.Time
		want    error
	}{
		"another workflow":           {a, keys, Subject("tenant/org_2/k", "retry", "u-1"), at, ErrForged},
		"another repair":             {a, keys, Subject("tenant/org_1/k", "compensate", "u-1"), at, ErrForged},
		"another update id":          {a, keys, Subject("tenant/org_1/k", "retry", "u-2"), at, ErrForged},
		"a name written over":        {renamed, keys, subject, at, ErrForged},
		"a time written over":        {moved, keys, subject, at.Add(time.Hour), ErrForged},
		"a ring without its key":     {a, other, subject, at, ErrForged},
		"none at all":                {Assertion{}, keys, subject, at, ErrMissing},
		"six minutes later":          {a, keys, subject, at.Add(6 * time.Minute), ErrStale},
		"from six minutes in future": {a, keys, subject, at.Add(-6 * time.Minute), ErrStale},
	} {
		if err := c.a.Verify(c.keys, c.subject, c.now); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestAnIdentityReadsBackOnlyAsTheGatewayWroteIt(t *testing.T) {
	keys := ring(t, "a")
	at := time.Now()
	subject := Subject("tenant/org_1/k", "terminate", "")
	a, err := Stamp(keys, "alice@acme.test", subject, at)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ParseIdentity(a.Identity())
	if !ok || got.Verify(keys, subject, at) != nil || got.Operator != "alice@acme.test" {
		t.Fatalf("ParseIdentity(%q) = %+v, %v", a.Identity(), got, ok)
	}
	forged := strings.Replace(a.Identity(), "operator:alice@acme.test", "operator:mallory@acme.test", 1)
	for _, id := range []string{"alice@acme.test", "operator:alice@acme.test", forged, IdentityPrefix + "x proof:{}"} {
		if got, ok := ParseIdentity(id); ok && got.Verify(keys, subject, at) == nil {
			t.Errorf("%q was taken as verified", id)
		}
	}
}

func TestANameIsPrintableAndShort(t *testing.T) {
	for _, bad := range []string{"", "a b", "ali\u200bce", "a\x00", strings.Repeat("a", 101)} {
		if _, err := Stamp(ring(t, "a"), bad, "s", time.Now()); err == nil {
			t.Errorf("%q was stamped", bad)
		}
	}
}
