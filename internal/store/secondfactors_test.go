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

// Challenges that ended over an hour ago are cleared by the next ones:
// the table does not grow with every sign-in ever begun.
func TestEndedChallengesAreClearedByNewOnes(t *testing.T) {
	ctx := context.Background()
	for range 25 {
		if _, _, err := store.CreateChallenge(ctx, testDB, store.PurposePasskeySignIn, "", nil, store.EventBase{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testDB.NewRaw("UPDATE auth_challenges SET expires_at = now() - interval '2 hours'").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	fresh, _, err := store.CreateChallenge(ctx, testDB, store.PurposePasskeySignIn, "", nil, store.EventBase{})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := store.CreateChallenge(ctx, testDB, store.PurposePasskeySignIn, "", nil, store.EventBase{}); err != nil {
			t.Fatal(err)
		}
	}
	var ended int
	if err := testDB.NewRaw("SELECT count(*) FROM auth_challenges WHERE expires_at < now()").Scan(ctx, &ended); err != nil {
		t.Fatal(err)
	}
	if ended != 0 {
		t.Fatalf("%d ended challenges left after four new ones", ended)
	}
	if _, err := store.LoadChallenge(ctx, testDB, fresh, store.PurposePasskeySignIn); err != nil {
		t.Fatalf("a live challenge was cleared: %v", err)
	}
}
