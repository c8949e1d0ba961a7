package integration

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

func TestAPersonSeesTheirSessionsAndEndsOneOrAllOthers(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	admin, other := w.People[domain.RoleAdmin], w.People[domain.RoleViewer]
	laptop := signIn(t, admin.Email, testPassword)
	phone := signIn(t, admin.Email, testPassword)
	if laptop.Status != 200 || phone.Status != 200 {
		t.Fatalf("sign-ins: %d %d", laptop.Status, phone.Status)
	}
	var l, p struct{ Token string }
	laptop.data(t, &l)
	phone.data(t, &p)

	list := func(token string) []map[string]any {
		t.Helper()
		r := req(t, srv, "GET", "/api/v1/me/sessions", token, nil)
		if r.Status != 200 {
			t.Fatalf("list: %d %s", r.Status, r.Raw)
		}
		var out []map[string]any
		r.data(t, &out)
		return out
	}
	got := list(l.Token)
	if len(got) != 3 { // the fixture's session, the laptop's, the phone's
		t.Fatalf("%d sessions: %v", len(got), got)
	}
	current := 0
	var phoneID string
	for _, s := range got {
		id, _ := s["id"].(string)
		if !strings.HasPrefix(id, domain.PrefixSession) || s["last_used_at"] == nil || s["created_at"] == nil {
			t.Errorf("a session view: %v", s)
		}
		if s["current"] == true {
			current++
		}
		for _, tok := range []string{l.Token, p.Token, admin.Token} {
			if strings.Contains(toJSON(s), tok[len(store.TokenPrefix):]) {
				t.Errorf("a session view shows a token: %v", s)
			}
		}
	}
	if current != 1 {
		t.Fatalf("%d sessions are current", current)
	}
	for _, s := range list(p.Token) {
		if s["current"] == true {
			phoneID = s["id"].(string)
		}
	}

	// Another person cannot end it, nor see it; an unknown id is 404.
	for _, path := range []string{"/api/v1/me/sessions/" + phoneID, "/api/v1/me/sessions/ses_01J0000000000000000000000", "/api/v1/me/sessions/nope"} {
		if r := req(t, srv, "DELETE", path, other.Token, nil); r.Status != 404 {
			t.Errorf("DELETE %s by another person: %d %s", path, r.Status, r.Raw)
		}
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); r.Status != 200 {
		t.Fatalf("the phone after another's attempts: %d", r.Status)
	}
	// The laptop ends the phone's session.
	if r := req(t, srv, "DELETE", "/api/v1/me/sessions/"+phoneID, l.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"ended":1`) {
		t.Fatalf("end the phone's session: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", p.Token, nil); r.Status != 401 {
		t.Fatalf("the phone's token after it ended: %d", r.Status)
	}
	if r := req(t, srv, "DELETE", "/api/v1/me/sessions/"+phoneID, l.Token, nil); r.Status != 404 {
		t.Errorf("ending it again: %d %s", r.Status, r.Raw)
	}
	// Every other one: the fixture's session ends, the laptop's stays.
	if r := req(t, srv, "DELETE", "/api/v1/me/sessions", l.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, `"ended":1`) {
		t.Fatalf("end the others: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", "/api/v1/me", admin.Token, nil); r.Status != 401 {
		t.Fatalf("the fixture's token after every other ended: %d", r.Status)
	}
	if got := list(l.Token); len(got) != 1 || got[0]["current"] != true {
		t.Fatalf("after ending the others: %v", got)
	}
	var revoked []string
	if err := h.DB.NewRaw("SELECT data->>'session_id' FROM audit_events WHERE org_id = ? AND action = 'session.revoked' AND actor_id = ?", w.Org.ID, admin.MemberID).
		Scan(context.Background(), &revoked); err != nil || len(revoked) != 2 || !slices.Contains(revoked, phoneID) {
		t.Fatalf("session.revoked events: %v %v", revoked, err)
	}

	// A request notes when the session was last used, at most once a
	// minute.
	if _, err := h.DB.NewRaw("UPDATE sessions SET last_used_at = now() - interval '2 minutes' WHERE token_hash = ?", store.HashSecret(l.Token)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	req(t, srv, "GET", "/api/v1/me", l.Token, nil)
	var fresh bool
	if err := h.DB.NewRaw("SELECT last_used_at > now() - interval '1 minute' FROM sessions WHERE token_hash = ?", store.HashSecret(l.Token)).Scan(context.Background(), &fresh); err != nil || !fresh {
		t.Fatalf("last_used_at after a request: fresh %v, %v", fresh, err)
	}
}

func TestAPersonReadsTheirOwnAccountEventsAndNobodyElses(t *testing.T) {
	h := harness.Get(t)
	w, other := newWorld(t, h, "team"), newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	// The owner joins the other organisation too: their account events are
	// recorded in both.
	second := addPerson(t, h, other.Org.ID, domain.RoleViewer)
	if _, err := h.DB.NewRaw("UPDATE members SET user_id = ? WHERE id = ?", owner.UserID, second.MemberID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	in := signIn(t, owner.Email, testPassword)
	if in.Status != 200 {
		t.Fatalf("sign-in: %d", in.Status)
	}
	var tok struct{ Token string }
	in.data(t, &tok)
	if r := req(t, srv, "POST", "/api/v1/auth/sign-out", tok.Token, nil); r.Status != 200 {
		t.Fatalf("sign-out: %d", r.Status)
	}
	// Someone else's sign-in is not the owner's to read.
	if r := signIn(t, w.People[domain.RoleAdmin].Email, testPassword); r.Status != 200 {
		t.Fatalf("the admin's sign-in: %d", r.Status)
	}

	var all []store.EventView
	walkPages(t, srv, owner.Token, "/api/v1/me/events?limit=2", func(r response) {
		var page []store.EventView
		r.data(t, &page)
		all = append(all, page...)
	})
	count := map[string]int{}
	orgs := map[string]bool{}
	for _, e := range all {
		if e.Target.ID != owner.UserID {
			t.Errorf("an event about %s: %+v", e.Target.ID, e)
		}
		count[e.Action]++
		orgs[e.OrgID] = true
	}
	if count["user.signed_in"] != 2 || count["user.signed_out"] != 2 || !orgs[w.Org.ID] || !orgs[other.Org.ID] {
		t.Fatalf("the owner's events: %v in %v", count, orgs)
	}
}
