package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/mail"
	"github.com/intelliauth/controlplane/internal/store"
)

func signIn(t *testing.T, email, pw string) response {
	t.Helper()
	return req(t, sharedAPI(t), "POST", "/api/v1/auth/sign-in", "", map[string]any{"email": email, "password": pw})
}

func TestSignInGivesATokenThatIsStoredOnlyAsAHash(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	resp := signIn(t, strings.ToUpper(owner.Email), testPassword)
	if resp.Status != 200 {
		t.Fatalf("sign-in = %d %s", resp.Status, resp.Raw)
	}
	var got struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
		User      struct{ ID, Email string }
	}
	resp.data(t, &got)
	if !strings.HasPrefix(got.Token, store.TokenPrefix) || len(got.Token) < 40 || got.User.ID != owner.UserID {
		t.Fatalf("sign-in data = %+v", got)
	}
	if d := time.Until(got.ExpiresAt); d < 11*time.Hour || d > 13*time.Hour {
		t.Errorf("expires in %v, want the 12h default", d)
	}
	// The raw token appears in no row of any table.
	var tables []string
	if err := h.DB.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").Scan(context.Background(), &tables); err != nil {
		t.Fatal(err)
	}
	for _, tbl := range tables {
		var n int
		q := fmt.Sprintf("SELECT count(*) FROM %q t WHERE t::text LIKE '%%' || ? || '%%'", tbl)
		if err := h.DB.NewRaw(q, got.Token[len(store.TokenPrefix):]).Scan(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("the raw token is stored in %s", tbl)
		}
	}
	if me := req(t, sharedAPI(t), "GET", "/api/v1/me", got.Token, nil); me.Status != 200 || !strings.Contains(me.Raw, w.Org.ID) {
		t.Fatalf("/me = %d %s", me.Status, me.Raw)
	}
}

func TestAnUnknownEmailAndAWrongPasswordGetTheSameAnswer(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	a := signIn(t, "nobody-"+uniq()+"@example.test", testPassword)
	b := signIn(t, w.People[domain.RoleViewer].Email, "not-the-password")
	if a.Status != 401 || b.Status != 401 || a.Env.Error.Message != b.Env.Error.Message {
		t.Fatalf("unknown email: %d %s; wrong password: %d %s", a.Status, a.Raw, b.Status, b.Raw)
	}
}

func TestSignOutRevokesTheTokenAtOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	tok := w.People[domain.RoleDeveloper].Token
	srv := sharedAPI(t)
	if r := req(t, srv, "GET", "/api/v1/me", tok, nil); r.Status != 200 {
		t.Fatalf("before sign-out: %d", r.Status)
	}
	if r := req(t, srv, "POST", "/api/v1/auth/sign-out", tok, nil); r.Status != 200 {
		t.Fatalf("sign-out: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", tok, nil); r.Status != 401 || r.code() != "UNAUTHENTICATED" {
		t.Fatalf("after sign-out: %d %s", r.Status, r.Raw)
	}
	var n int
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'user.signed_out' AND actor_id = ?", w.Org.ID, w.People[domain.RoleDeveloper].MemberID).Scan(context.Background(), &n); err != nil || n != 1 {
		t.Fatalf("signed_out events = %d, %v", n, err)
	}
}

func TestRemovingAMemberEndsTheirAccessToTheOrganizationAtOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	dev := w.People[domain.RoleDeveloper]
	if r := req(t, srv, "GET", orgPath(w, ""), dev.Token, nil); r.Status != 200 {
		t.Fatalf("before removal: %d", r.Status)
	}
	if r := req(t, srv, "DELETE", orgPath(w, "/members/"+dev.MemberID), w.People[domain.RoleAdmin].Token, nil); r.Status != 200 {
		t.Fatalf("remove: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, ""), dev.Token, nil); r.Status != 404 || r.code() != "NOT_FOUND" {
		t.Fatalf("after removal: %d %s", r.Status, r.Raw)
	}
}

func TestTheLastOwnerCannotBeRemovedDemotedOrLeave(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	for _, r := range []response{
		req(t, srv, "PATCH", orgPath(w, "/members/"+owner.MemberID), owner.Token, map[string]any{"role": "admin"}),
		req(t, srv, "DELETE", orgPath(w, "/members/"+owner.MemberID), owner.Token, nil),
	} {
		if r.Status != 409 || !strings.Contains(r.Env.Error.Message, "last owner") {
			t.Fatalf("got %d %s", r.Status, r.Raw)
		}
	}
	// With a second owner, two concurrent demotions leave exactly one owner.
	second := addPerson(t, h, w.Org.ID, domain.RoleOwner)
	var wg sync.WaitGroup
	results := make([]response, 2)
	for i, p := range []person{owner, second} {
		wg.Go(func() {
			results[i] = req(t, srv, "PATCH", orgPath(w, "/members/"+p.MemberID), p.Token, map[string]any{"role": "admin"})
		})
	}
	wg.Wait()
	var owners int
	if err := h.DB.NewRaw("SELECT count(*) FROM members WHERE org_id = ? AND role = 'owner'", w.Org.ID).Scan(context.Background(), &owners); err != nil {
		t.Fatal(err)
	}
	if owners != 1 || results[0].Status+results[1].Status != 200+409 {
		t.Fatalf("owners = %d; answers %d and %d", owners, results[0].Status, results[1].Status)
	}
}

func TestOnlyOwnersGrantOrTouchOwnership(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	admin, owner, dev := w.People[domain.RoleAdmin], w.People[domain.RoleOwner], w.People[domain.RoleDeveloper]
	tests := []struct {
		name         string
		method, path string
		body         any
		want         int
	}{
		{"an admin cannot invite an owner", "POST", "/invitations", map[string]any{"email": "o-" + uniq() + "@example.test", "role": "owner"}, 403},
		{"an admin cannot demote an owner", "PATCH", "/members/" + owner.MemberID, map[string]any{"role": "viewer"}, 403},
		{"an admin cannot make an owner", "PATCH", "/members/" + dev.MemberID, map[string]any{"role": "owner"}, 403},
		{"an admin cannot remove an owner", "DELETE", "/members/" + owner.MemberID, nil, 403},
		{"an admin cannot change the plan", "PATCH", "", map[string]any{"plan": "enterprise"}, 403},
		{"an admin may rename the organization", "PATCH", "", map[string]any{"name": "New name"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, srv, tt.method, orgPath(w, tt.path), admin.Token, tt.body)
			if r.Status != tt.want {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
	}
	r := req(t, srv, "PATCH", orgPath(w, "/members/"+dev.MemberID), owner.Token, map[string]any{"role": "owner"})
	if r.Status != 200 || !strings.Contains(r.Raw, `"role":"owner"`) {
		t.Fatalf("an owner making an owner: %d %s", r.Status, r.Raw)
	}
}

func TestChangesAreAuditedWithActorRequestAndBeforeAfter(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	admin, dev := w.People[domain.RoleAdmin], w.People[domain.RoleDeveloper]
	r := req(t, srv, "PATCH", orgPath(w, "/members/"+dev.MemberID), admin.Token, map[string]any{"role": "viewer"})
	if r.Status != 200 {
		t.Fatalf("change role: %d %s", r.Status, r.Raw)
	}
	var ev store.AuditEvent
	if err := h.DB.NewSelect().Model(&ev).Where("org_id = ? AND action = 'member.role_changed'", w.Org.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev.ActorType != "member" || ev.ActorID != admin.MemberID || ev.ActorEmail != admin.Email || ev.TargetID != dev.MemberID ||
		ev.RequestID != r.Env.Meta.RequestID || ev.ClientAddr == "" {
		t.Errorf("event = %+v", ev)
	}
	if !strings.Contains(string(ev.Data), `"before": {"role": "developer"}`) || !strings.Contains(string(ev.Data), `"after": {"role": "viewer"}`) {
		t.Errorf("data = %s", ev.Data)
	}
}

func TestPaginationOfMembersFollowsCursorsAndRefusesTamperedOnes(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "enterprise")
	for range 5 {
		addPerson(t, h, w.Org.ID, domain.RoleViewer)
	}
	srv := sharedAPI(t)
	tok := w.People[domain.RoleViewer].Token
	seen := map[string]bool{}
	_, cursor := walkPages(t, srv, tok, orgPath(w, "/members?limit=4"), func(r response) {
		var ms []store.MemberView
		r.data(t, &ms)
		for _, m := range ms {
			if seen[m.ID] {
				t.Fatalf("member %s seen twice", m.ID)
			}
			seen[m.ID] = true
		}
	})
	if len(seen) != 9 {
		t.Fatalf("saw %d members, want 9", len(seen))
	}
	for _, bad := range []string{"nonsense", cursor[:len(cursor)-2] + "AA", "?limit=0", "?limit=201"} {
		path := orgPath(w, "/members?cursor="+bad)
		if strings.HasPrefix(bad, "?") {
			path = orgPath(w, "/members"+bad)
		}
		if r := req(t, srv, "GET", path, tok, nil); r.Status != 400 || r.code() != "BAD_REQUEST" {
			t.Errorf("%s: %d %s", bad, r.Status, r.Raw)
		}
	}
}

var secretRe = regexp.MustCompile(store.InvitationPrefix + `[A-Za-z0-9_-]{43}`)

// invite invites through the API and returns the invitation id and the
// secret, read from the queued mail.
func invite(t *testing.T, h *harness.Harness, w world, email, role string) (string, string) {
	t.Helper()
	r := req(t, sharedAPI(t), "POST", orgPath(w, "/invitations"), w.People[domain.RoleOwner].Token, map[string]any{"email": email, "role": role})
	if r.Status != 201 {
		t.Fatalf("invite: %d %s", r.Status, r.Raw)
	}
	var inv store.InvitationView
	r.data(t, &inv)
	return inv.ID, latestSecret(t, h, email)
}

func latestSecret(t *testing.T, h *harness.Harness, email string) string {
	t.Helper()
	var body string
	if err := h.DB.NewRaw("SELECT body FROM outbox WHERE recipient = ? ORDER BY id DESC LIMIT 1", email).Scan(context.Background(), &body); err != nil {
		t.Fatal(err)
	}
	s := secretRe.FindString(body)
	if s == "" {
		t.Fatalf("no secret in the mail: %s", body)
	}
	return s
}

func TestAnInvitationIsAcceptedOnceUnderConcurrentAttempts(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	email := "joiner-" + uniq() + "@example.test"
	_, secret := invite(t, h, w, email, "developer")

	const n = 8
	var wg sync.WaitGroup
	results := make([]response, n)
	for i := range n {
		wg.Go(func() {
			results[i] = req(t, sharedAPI(t), "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": "Joiner", "password": testPassword})
		})
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		switch {
		case r.Status == 201:
			created++
		case r.Status == 409 && strings.Contains(r.Env.Error.Message, "already accepted"):
		default:
			t.Errorf("accept: %d %s", r.Status, r.Raw)
		}
	}
	var members int
	if err := h.DB.NewRaw("SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND u.email = ?", w.Org.ID, email).Scan(context.Background(), &members); err != nil {
		t.Fatal(err)
	}
	if created != 1 || members != 1 {
		t.Fatalf("%d accepts succeeded, %d memberships; want 1 and 1", created, members)
	}
	if r := signIn(t, email, testPassword); r.Status != 200 {
		t.Fatalf("the new member cannot sign in: %d %s", r.Status, r.Raw)
	}
}

func TestResentRevokedAndExpiredInvitationsRefuseTheirSecrets(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	accept := func(secret string) response {
		return req(t, srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": "X", "password": testPassword})
	}

	email := "resend-" + uniq() + "@example.test"
	id, old := invite(t, h, w, email, "viewer")
	if r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": email, "role": "viewer"}); r.Status != 409 {
		t.Fatalf("a second pending invitation: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", orgPath(w, "/invitations/"+id+"/resend"), owner.Token, nil); r.Status != 200 {
		t.Fatalf("resend: %d %s", r.Status, r.Raw)
	}
	fresh := latestSecret(t, h, email)
	if fresh == old {
		t.Fatal("resend kept the secret")
	}
	if r := accept(old); r.Status != 404 {
		t.Fatalf("the old secret after resend: %d %s", r.Status, r.Raw)
	}
	if r := accept(fresh); r.Status != 201 {
		t.Fatalf("the new secret: %d %s", r.Status, r.Raw)
	}
	if r := accept(fresh); r.Status != 409 {
		t.Fatalf("reuse: %d %s", r.Status, r.Raw)
	}

	email2 := "revoke-" + uniq() + "@example.test"
	id2, secret2 := invite(t, h, w, email2, "viewer")
	if r := req(t, srv, "DELETE", orgPath(w, "/invitations/"+id2), owner.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"status":"revoked"`) {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	if r := accept(secret2); r.Status != 409 || !strings.Contains(r.Env.Error.Message, "revoked") {
		t.Fatalf("a revoked secret: %d %s", r.Status, r.Raw)
	}

	email3 := "expire-" + uniq() + "@example.test"
	id3, secret3 := invite(t, h, w, email3, "viewer")
	if _, err := h.DB.NewRaw("UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = ?", id3).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := accept(secret3); r.Status != 409 || !strings.Contains(r.Env.Error.Message, "expired") {
		t.Fatalf("an expired secret: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/invitations"), owner.Token, nil); !strings.Contains(r.Raw, `"status":"expired"`) {
		t.Fatalf("list does not show the expired invitation: %s", r.Raw)
	}
}

func TestRepeatedFailedSignInsFromOneAddressAreRefused(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	email := w.People[domain.RoleViewer].Email
	var last response
	for i := range 11 {
		last = signIn(t, email, "wrong-password-"+fmt.Sprint(i))
		if last.Status == 429 {
			break
		}
	}
	if last.Status != 429 || last.code() != "RATE_LIMITED" || last.Header.Get("Retry-After") == "" {
		t.Fatalf("after 10 failures: %d %s (Retry-After %q)", last.Status, last.Raw, last.Header.Get("Retry-After"))
	}
	// Refused means refused: the right password is too, from this address,
	// for now (TestAFloodOfFailuresElsewhereDoesNotLockTheVictimOut: not
	// from another).
	if r := signIn(t, email, testPassword); r.Status != 429 {
		t.Fatalf("the right password while locked: %d", r.Status)
	}
	// Failures are throttled, not written to the member's organisations
	// (TestAFailedSignInWritesNothingIntoTheMembersOrganisations).
	var failed int
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'user.sign_in_failed'", w.Org.ID).Scan(context.Background(), &failed); err != nil || failed != 0 {
		t.Fatalf("sign_in_failed events = %d, %v", failed, err)
	}
}

func TestInvitationMailIsWrittenAsAnEMLFileWithoutARelay(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	email := "mail-" + uniq() + "@example.test"
	_, secret := invite(t, h, w, email, "viewer")
	dir := t.TempDir()
	s := &mail.Sender{DB: h.DB, Dir: dir, Log: h.Log}
	if _, err := s.DeliverPending(context.Background()); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"+strings.ReplaceAll(email, "@", "_")+".eml"))
	if len(files) != 1 {
		t.Fatalf("files = %v", files)
	}
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "To: <"+email+">") || !strings.Contains(string(b), secret) {
		t.Fatalf("mail = %s", b)
	}
	var unsent int
	if err := h.DB.NewRaw("SELECT count(*) FROM outbox WHERE recipient = ? AND sent_at IS NULL", email).Scan(context.Background(), &unsent); err != nil || unsent != 0 {
		t.Fatalf("unsent = %d, %v", unsent, err)
	}
}

func TestTheMemberQuotaOfThePlanCountsPendingInvitations(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "free") // free: 5 members; the world has 4
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	if r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "fifth-" + uniq() + "@example.test", "role": "viewer"}); r.Status != 201 {
		t.Fatalf("the fifth: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "sixth-" + uniq() + "@example.test", "role": "viewer"})
	if r.Status != 409 || !strings.Contains(r.Env.Error.Message, "member quota") || !strings.Contains(r.Env.Error.Message, "free") {
		t.Fatalf("the sixth: %d %s", r.Status, r.Raw)
	}
}

func TestInvalidBodiesListEveryBadFieldAtOnce(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "not-an-email", "role": "emperor"})
	if r.Status != 400 || len(r.Env.Error.FieldErrors) != 2 {
		t.Fatalf("got %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "a@b.test", "role": "viewer", "extra": 1}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"extra"`) {
		t.Fatalf("unknown field: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": 42}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"name"`) {
		t.Fatalf("wrong type: %d %s", r.Status, r.Raw)
	}
}

func TestEveryMemberIsToldWhatTheirRoleMayDoInEachOrganization(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	for _, role := range domain.Roles {
		p := w.People[role]
		var org struct {
			Role        string          `json:"role"`
			Permissions []domain.Action `json:"permissions"`
		}
		r := req(t, srv, "GET", orgPath(w, ""), p.Token, nil)
		r.data(t, &org)
		if r.Status != 200 || org.Role != string(role) || !slices.Equal(org.Permissions, domain.Permissions(role)) {
			t.Errorf("%s: GET organization %d %+v", role, r.Status, org)
		}
		var me struct {
			Memberships []struct {
				OrgID       string          `json:"org_id"`
				Permissions []domain.Action `json:"permissions"`
			} `json:"memberships"`
		}
		req(t, srv, "GET", "/api/v1/me", p.Token, nil).data(t, &me)
		if len(me.Memberships) != 1 || me.Memberships[0].OrgID != w.Org.ID || !slices.Equal(me.Memberships[0].Permissions, domain.Permissions(role)) {
			t.Errorf("%s: /me memberships %+v", role, me.Memberships)
		}
	}
}
