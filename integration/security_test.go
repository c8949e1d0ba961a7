package integration

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

func TestResendingAnExpiredInvitationCannotGoOverTheMemberQuota(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "free") // 4 members of the free plan's 5
	owner := w.People[domain.RoleOwner]
	expired, _ := invite(t, h, w, "late-"+uniq()+"@example.test", "viewer")
	if _, err := h.DB.ExecContext(context.Background(), "UPDATE invitations SET expires_at = now() - interval '1 hour' WHERE id = ?", expired); err != nil {
		t.Fatal(err)
	}
	if r := req(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "fifth-" + uniq() + "@example.test", "role": "viewer"}); r.Status != 201 {
		t.Fatalf("the fifth seat: %d %s", r.Status, r.Raw)
	}
	r := req(t, srv, "POST", orgPath(w, "/invitations/"+expired+"/resend"), owner.Token, nil)
	if r.Status != 409 || !strings.Contains(r.Env.Error.Message, "member quota") {
		t.Fatalf("reviving an expired invitation on a full plan: %d %s", r.Status, r.Raw)
	}
}

func TestAnOwnersPendingOwnerInvitationsEndWhenTheyStopBeingOwner(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	for _, how := range []string{"removed", "demoted"} {
		t.Run(how, func(t *testing.T) {
			w := newWorld(t, h, "team")
			owner := w.People[domain.RoleOwner]
			leaving := addPerson(t, h, w.Org.ID, domain.RoleOwner)
			_, secret := addInvitation(t, h, w.Org.ID, leaving.UserID, domain.RoleOwner)
			_, devSecret := addInvitation(t, h, w.Org.ID, leaving.UserID, domain.RoleDeveloper)
			var r response
			if how == "removed" {
				r = req(t, srv, "DELETE", orgPath(w, "/members/"+leaving.MemberID), owner.Token, nil)
			} else {
				r = req(t, srv, "PATCH", orgPath(w, "/members/"+leaving.MemberID), owner.Token, map[string]any{"role": "admin"})
			}
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", how, r.Status, r.Raw)
			}
			accept := func(secret string) response {
				return req(t, srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": "Heir", "password": testPassword})
			}
			if r := accept(secret); r.Status < 400 {
				t.Fatalf("an owner invitation of a former owner was accepted: %d %s", r.Status, r.Raw)
			}
			// Invitations to lesser roles stay: an admin may still send them.
			if r := accept(devSecret); r.Status != 201 {
				t.Fatalf("a developer invitation: %d %s", r.Status, r.Raw)
			}
			var revoked int
			if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'invitation.revoked'", w.Org.ID).Scan(context.Background(), &revoked); err != nil || revoked != 1 {
				t.Fatalf("invitation.revoked events = %d, %v", revoked, err)
			}
		})
	}
}

func TestHostileInputIsRefusedWith400NotA500(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
	}{
		{"a 3,000-character email at sign-in", "POST", "/api/v1/auth/sign-in", "", map[string]any{"email": strings.Repeat("a", 3000) + "@example.test", "password": "x"}},
		{"a NUL in an organisation name", "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": "Acme\u0000Corp"}},
		{"a role and its capitalised twin", "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "twin-" + uniq() + "@example.test", "role": "viewer", "ROLE": "admin"}},
		{"a look-alike Cyrillic letter in an invited email", "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "\u0430dmin-" + uniq() + "@example.test", "role": "viewer"}},
		{"a right-to-left override in an invited email", "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "x\u202Egnp.exe-" + uniq() + "@example.test", "role": "viewer"}},
		{"a capitalised role alone", "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "cap-" + uniq() + "@example.test", "Role": "admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := req(t, srv, tc.method, tc.path, tc.token, tc.body); r.Status != 400 || r.code() != "BAD_REQUEST" {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}
	var admins int
	if err := h.DB.NewRaw("SELECT count(*) FROM invitations WHERE org_id = ? AND role = 'admin'", w.Org.ID).Scan(context.Background(), &admins); err != nil || admins != 0 {
		t.Fatalf("admin invitations written: %d %v", admins, err)
	}
}

func TestAnIdempotencyKeyNeverCarriesOneCallersAnswerToAnother(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	admin, owner := w.People[domain.RoleAdmin], w.People[domain.RoleOwner]

	t.Run("an admin's refused plan change does not block the owner's", func(t *testing.T) {
		key := "plan-" + uniq()
		if r := httpReq(t, srv, "PATCH", orgPath(w, ""), admin.Token, map[string]any{"plan": "enterprise"}, key); r.Status != 403 {
			t.Fatalf("admin: %d %s", r.Status, r.Raw)
		}
		r := httpReq(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"plan": "enterprise"}, key)
		if r.Status != 200 || r.Header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("owner with the same key: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("a refused request is not kept: the same caller may retry it once allowed", func(t *testing.T) {
		key := "again-" + uniq()
		if r := httpReq(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "bad", "role": "viewer"}, key); r.Status != 400 {
			t.Fatalf("invalid: %d %s", r.Status, r.Raw)
		}
		if r := httpReq(t, srv, "POST", orgPath(w, "/invitations"), owner.Token, map[string]any{"email": "good-" + uniq() + "@example.test", "role": "viewer"}, key); r.Status != 201 {
			t.Fatalf("corrected, same key: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("one session's sign-out is not another's", func(t *testing.T) {
		a, b := session(t, h, owner.UserID, time.Hour), session(t, h, owner.UserID, time.Hour)
		key := "bye-" + uniq()
		for _, tok := range []string{a, b} {
			if r := httpReq(t, srv, "POST", "/api/v1/auth/sign-out", tok, nil, key); r.Status != 200 {
				t.Fatalf("sign-out: %d %s", r.Status, r.Raw)
			}
		}
		if r := req(t, srv, "GET", "/api/v1/me", b, nil); r.Status != 401 {
			t.Fatalf("session B after its sign-out: %d %s", r.Status, r.Raw)
		}
	})
}

func TestAnswersAreNeitherCachedNorSniffed(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	for _, r := range []response{
		req(t, srv, "POST", "/api/v1/auth/sign-in", "", map[string]any{"email": w.People[domain.RoleOwner].Email, "password": testPassword}),
		req(t, srv, "GET", orgPath(w, ""), w.People[domain.RoleViewer].Token, nil),
		req(t, srv, "GET", "/api/v1/no/such/route", "", nil),
	} {
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%d answer headers: Cache-Control %q, X-Content-Type-Options %q", r.Status, r.Header.Get("Cache-Control"), r.Header.Get("X-Content-Type-Options"))
		}
	}
}

func TestACursorCannotBeForgedEvenByOneWhoKnowsItsFormat(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	w := newWorld(t, h, "team")
	viewer := w.People[domain.RoleViewer]
	first := req(t, srv, "GET", orgPath(w, "/members?limit=1"), viewer.Token, nil)
	var meta struct {
		Meta struct {
			Cursor string `json:"cursor"`
		} `json:"meta"`
	}
	decodeJSON(t, first.Raw, &meta)
	cursor := meta.Meta.Cursor
	if first.Status != 200 || cursor == "" {
		t.Fatalf("first page: %d %s", first.Status, first.Raw)
	}
	payload, _, _ := strings.Cut(cursor, ".")
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		t.Fatal(err)
	}
	// The same position moved on, with the checksum an unkeyed scheme
	// would have: SHA-256 of the payload.
	forged := strings.Replace(string(raw), "|", "|z", 1)
	sum := sha256.Sum256([]byte(forged))
	for _, c := range []string{
		base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + base64.RawURLEncoding.EncodeToString(sum[:6]),
		base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + base64.RawURLEncoding.EncodeToString(sum[:16]),
	} {
		if r := req(t, srv, "GET", orgPath(w, "/members?limit=1&cursor="+c), viewer.Token, nil); r.Status != 400 {
			t.Fatalf("a forged cursor: %d %s", r.Status, r.Raw)
		}
	}
	if r := req(t, srv, "GET", orgPath(w, "/members?limit=1&cursor="+cursor), viewer.Token, nil); r.Status != 200 {
		t.Fatalf("the real cursor: %d %s", r.Status, r.Raw)
	}
}
