package integration

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// inviteEmail creates a pending invitation of email directly and returns
// its secret.
func inviteEmail(t *testing.T, h *harness.Harness, w world, email string) string {
	t.Helper()
	var secret string
	_, err := store.Invite(context.Background(), h.DB, store.InviteInput{OrgID: w.Org.ID, Email: email, Role: domain.RoleViewer, InvitedBy: w.People[domain.RoleOwner].UserID, TTL: time.Hour},
		func(inv store.Invitation, s string) store.OutboxMessage {
			secret = s
			return store.OutboxMessage{Recipient: inv.Email, Subject: "test", Body: "test"}
		}, store.EventBase{OrgID: w.Org.ID, ActorType: "system", ActorID: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

var passwordHashesRe = regexp.MustCompile(`(?m)^controlplane_password_hashes_total\{op="(\w+)"\} (\d+)$`)

// passwordHashes is how many argon2id computations the server ran.
func passwordHashes(t *testing.T, srv *api.Server) int {
	t.Helper()
	_, _, body := call(t, srv, "GET", "/metrics", nil)
	n := 0
	for _, m := range passwordHashesRe.FindAllStringSubmatch(string(body), -1) {
		v, _ := strconv.Atoi(m[2])
		n += v
	}
	return n
}

func TestAnUnknownInvitationTokenIsAnsweredWithoutHashingAPassword(t *testing.T) {
	srv := newAPI(t)
	before := passwordHashes(t, srv)
	for _, token := range []string{
		"garbage",
		store.InvitationPrefix + strings.Repeat("A", 43), // the form of a secret
	} {
		r := req(t, srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": token, "name": "X", "password": testPassword})
		if r.Status != 404 || r.code() != "NOT_FOUND" {
			t.Fatalf("%s: %d %s", token, r.Status, r.Raw)
		}
	}
	if after := passwordHashes(t, srv); after != before {
		t.Fatalf("%d passwords were hashed for unknown tokens", after-before)
	}
}

func TestWrongPasswordsOnAcceptCountWithSignInsThrottle(t *testing.T) {
	h := harness.Get(t)
	home, other := newWorld(t, h, "team"), newWorld(t, h, "team")
	// An existing account is invited to another organisation: accepting
	// needs its password.
	victim := home.People[domain.RoleViewer].Email
	secret := inviteEmail(t, h, other, victim)
	base := servedAPI(t, api.Deps{})
	attacker := newCaller(base)
	accept := func(c caller, pw string) response {
		return c.post(t, "/api/v1/invitations/accept", map[string]any{"token": secret, "password": pw}, nil)
	}

	limit := store.DefaultSignInPolicy.Pair.Limit
	for i := range limit {
		if r := accept(attacker, "guess-number-"+strconv.Itoa(i)); r.Status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.Status, r.Raw)
		}
	}
	if r := accept(attacker, "one-guess-too-many"); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("past the limit: %d %s", r.Status, r.Raw)
	}
	// One throttle: signing in from there is refused too.
	if r := attacker.signIn(t, victim, testPassword); r.Status != 429 {
		t.Fatalf("sign-in after failed accepts: %d %s", r.Status, r.Raw)
	}
	// The account's owner, elsewhere, accepts.
	if r := accept(newCaller(base), testPassword); r.Status != 201 {
		t.Fatalf("the owner of the account: %d %s", r.Status, r.Raw)
	}
}

func TestAcceptRefusesAnAccountThatChangedSinceItsPasswordWasChecked(t *testing.T) {
	h := harness.Get(t)
	home, other := newWorld(t, h, "team"), newWorld(t, h, "team")
	viewer := home.People[domain.RoleViewer]
	tests := []struct {
		name string
		in   store.AcceptInput
	}{
		{"a password changed after the check", store.AcceptInput{UserID: viewer.UserID, CheckedHash: "$argon2id$an-older-hash"}},
		{"an account created after the lookup found none", store.AcceptInput{Name: "New", PasswordHash: passwordHash(t)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Secret = inviteEmail(t, h, other, viewer.Email)
			defer h.DB.NewRaw("UPDATE invitations SET status = 'revoked' WHERE token_hash = ?", store.HashSecret(tt.in.Secret)).Exec(context.Background())
			_, err := store.Accept(context.Background(), h.DB, tt.in)
			if domain.ErrorCode(err) != domain.CodeConflict || !strings.Contains(err.Error(), "changed") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
