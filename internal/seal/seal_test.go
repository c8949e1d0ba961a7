package seal

import (
	"bytes"
	"errors"
	"testing"
)

func ring(t *testing.T, ids ...string) *Ring {
	t.Helper()
	var spec []string
	for _, id := range ids {
		k, err := NewKey(id)
		if err != nil {
			t.Fatal(err)
		}
		spec = append(spec, k)
	}
	r, err := ParseRing(join(spec))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestSealedDataOpensOnlyWithItsKeyAndItsContext(t *testing.T) {
	r := ring(t, "k1")
	secret := []byte("a private key seed of 32 bytes!!")
	sealed, err := r.Seal(secret, []byte("tnt_A"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) || KeyID(sealed) != "k1" {
		t.Fatalf("sealed = %q", sealed)
	}
	if got, err := r.Open(sealed, []byte("tnt_A")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := r.Open(sealed, []byte("tnt_B")); err == nil {
		t.Fatal("opened under another tenant's context")
	}
	if _, err := ring(t, "k1").Open(sealed, []byte("tnt_A")); err == nil {
		t.Fatal("opened with another key of the same id")
	}
}

func TestARotatedRingSealsWithTheNewKeyAndOpensWithBoth(t *testing.T) {
	oldKey, _ := NewKey("2026-01")
	newKey, _ := NewKey("2026-06")
	old, _ := ParseRing(oldKey)
	sealed, _ := old.Seal([]byte("s"), nil)
	rotated, err := ParseRing(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealed, nil); err != nil || string(got) != "s" {
		t.Fatalf("old data under the rotated ring: %q %v", got, err)
	}
	resealed, _ := rotated.Seal([]byte("s"), nil)
	if KeyID(resealed) != "2026-06" {
		t.Fatalf("sealed under %s", KeyID(resealed))
	}
	retired, _ := ParseRing(newKey)
	if _, err := retired.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("data under a retired key: %v", err)
	}
}

func TestBadRingsAreRefused(t *testing.T) {
	for _, spec := range []string{"", "k1", "K1=AAAA", "k1=AAAA", "k1=" + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,k1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="} {
		if _, err := ParseRing(spec); err == nil {
			t.Errorf("%q accepted", spec)
		}
	}
}

func TestEachKeyOfTheRingSignsWithAKeyOfItsOwnPerPurposeThatARotationKeeps(t *testing.T) {
	oldKey, _ := NewKey("2026-01")
	newKey, _ := NewKey("2026-06")
	old, _ := ParseRing(oldKey)
	rotated, _ := ParseRing(newKey + "," + oldKey)
	if ids := rotated.IDs(); len(ids) != 2 || ids[0] != "2026-06" || ids[1] != "2026-01" {
		t.Fatalf("IDs = %v, want the current first", ids)
	}
	before, err := old.SigningKey("2026-01", "chain")
	if err != nil {
		t.Fatal(err)
	}
	after, err := rotated.SigningKey("2026-01", "chain")
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the old key's signing key changed with the rotation: %v", err)
	}
	current, _ := rotated.SigningKey("2026-06", "chain")
	other, _ := rotated.SigningKey("2026-01", "another purpose")
	if bytes.Equal(current, before) || bytes.Equal(other, before) {
		t.Fatal("two keys or two purposes gave one signing key")
	}
	if _, err := old.SigningKey("2026-06", "chain"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("a key the ring lacks: %v", err)
	}
}
