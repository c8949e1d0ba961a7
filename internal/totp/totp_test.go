package totp

import (
	"strings"
	"testing"
	"time"
)

// RFC 6238's test secret ("12345678901234567890" in base32) and its SHA-1
// vectors, cut to six digits.
const rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

func TestCodesAreRFC6238sAndMatchWithinOneStepEitherSide(t *testing.T) {
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "287082"}, {1111111109, "081804"}, {1234567890, "005924"}, {2000000000, "279037"}} {
		at := time.Unix(v.unix, 0)
		got, err := Code(rfcSecret, at)
		if err != nil || got != v.code {
			t.Fatalf("code at %d = %q (%v), RFC 6238 says %s", v.unix, got, err, v.code)
		}
		for d := -Skew; d <= Skew; d++ {
			step, ok := Match(rfcSecret, v.code, at.Add(time.Duration(d)*Period))
			if !ok || step != Step(at) {
				t.Fatalf("%s at %+d steps: step %d ok %v, want %d", v.code, d, step, ok, Step(at))
			}
		}
		if _, ok := Match(rfcSecret, v.code, at.Add(2*Period)); ok {
			t.Fatalf("%s matched two steps later", v.code)
		}
	}
	at := time.Unix(1234567890, 0)
	for _, bad := range []string{"", "00592", "0059244", "abcdef", "005925"} {
		if _, ok := Match(rfcSecret, bad, at); ok {
			t.Fatalf("%q matched", bad)
		}
	}
	if _, ok := Match(rfcSecret, "005 924", at); !ok {
		t.Fatal("a code typed with a space did not match")
	}
}

func TestANewSecretIsOneAnAppReads(t *testing.T) {
	secret, uri, err := New("person@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(secret) != 32 || !strings.HasPrefix(uri, "otpauth://totp/IntelliAuth:person@example.test?") ||
		!strings.Contains(uri, "secret="+secret) || !strings.Contains(uri, "issuer=IntelliAuth") {
		t.Fatalf("secret %q, uri %q", secret, uri)
	}
	code, _ := Code(secret, time.Now())
	if _, ok := Match(secret, code, time.Now()); !ok {
		t.Fatal("a new secret's code does not match")
	}
}

func TestRecoveryCodesAreRandomReadableAndTypedLoosely(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := NewRecoveryCode()
		if len(c) != 19 || strings.Count(c, "-") != 3 || seen[c] {
			t.Fatalf("recovery code %q", c)
		}
		seen[c] = true
		n := NormalizeRecoveryCode(" " + strings.ToUpper(strings.ReplaceAll(c, "-", " ")) + " ")
		if n != strings.ReplaceAll(c, "-", "") {
			t.Fatalf("%q normalised to %q", c, n)
		}
	}
	for _, bad := range []string{"", "123456", "0000-0000-0000-0000", "llll-iiii-oooo-1111", "abcd-efgh-jkmn-pqrs-t"} {
		if NormalizeRecoveryCode(bad) != "" {
			t.Fatalf("%q was taken for a recovery code", bad)
		}
	}
}
