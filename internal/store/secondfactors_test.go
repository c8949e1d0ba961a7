package store_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

func ring(t *testing.T, specs ...string) *seal.Ring {
	t.Helper()
	spec := ""
	for i, s := range specs {
		if i > 0 {
			spec += ","
		}
		spec += s
	}
	r, err := seal.ParseRing(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A rotation of the key ring seals every TOTP secret again under the new
// key, each still bound to its own user; one under a key the ring lacks is
// counted and left as it is.
func TestTOTPSecretsAreSealedAgainUnderTheRingsNewKey(t *testing.T) {
	ctx := context.Background()
	oldKey, _ := seal.NewKey("old")
	newKey, _ := seal.NewKey("new")
	lostKey, _ := seal.NewKey("lost")
	before, after, lost := ring(t, oldKey), ring(t, newKey, oldKey), ring(t, lostKey)

	users := make([]string, 3)
	for i := range users {
		now := time.Now().UTC()
		u := store.User{ID: domain.NewID(domain.PrefixUser), Email: "reseal-" + strings.ToLower(domain.NewID("")[14:]) + "@example.test", Name: "r", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
		if _, err := testDB.NewInsert().Model(&u).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		users[i] = u.ID
		by := before
		if i == 2 {
			by = lost
		}
		sealed, err := by.Seal([]byte("SECRET"+u.ID), store.TOTPSealContext(u.ID))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.StartTOTP(ctx, testDB, u.ID, sealed); err != nil {
			t.Fatal(err)
		}
	}
	n, unreadable, err := store.ResealTOTP(ctx, testDB, after)
	if err != nil {
		t.Fatal(err)
	}
	// Other tests' secrets may be in the table too: at least these.
	if n < 2 || unreadable < 1 {
		t.Fatalf("resealed %d, unreadable %d", n, unreadable)
	}
	for _, id := range users[:2] {
		var sealed []byte
		if err := testDB.NewRaw("SELECT secret_sealed FROM user_totp WHERE user_id = ?", id).Scan(ctx, &sealed); err != nil {
			t.Fatal(err)
		}
		if seal.KeyID(sealed) != "new" {
			t.Fatalf("sealed under %q", seal.KeyID(sealed))
		}
		got, err := ring(t, newKey).Open(sealed, store.TOTPSealContext(id))
		if err != nil || !bytes.Equal(got, []byte("SECRET"+id)) {
			t.Fatalf("opened %q, %v", got, err)
		}
		if _, err := ring(t, newKey).Open(sealed, store.TOTPSealContext(users[2])); err == nil {
			t.Fatal("a secret opened as another user's")
		}
	}
	if n, _, err := store.ResealTOTP(ctx, testDB, after); err != nil || n != 0 {
		t.Fatalf("a second pass resealed %d (%v)", n, err)
	}
}
