package integration

import (
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

func TestNamesWithControlCharactersAreRefused(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner].Token
	tests := []struct {
		name  string
		value string
		want  int
	}{
		{"CR LF and a header are refused", "Acme\r\nBcc: x@example.test", 400},
		{"a lone LF is refused", "Acme\nInc", 400},
		{"a tab is refused", "Acme\tInc", 400},
		{"a NUL is refused, not a 500", "Acme\x00", 400},
		{"a C1 control is refused", "Acme\u0085Inc", 400},
		{"a line separator is refused", "Acme\u2028Inc", 400},
		{"a bidirectional override is refused", "Acme\u202eInc", 400},
		{"letters, accents and emoji are a name", "Zürich Café & Søn 🎉", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, srv, "PATCH", orgPath(w, ""), owner, map[string]any{"name": tt.value})
			if r.Status != tt.want {
				t.Fatalf("organisation name: %d %s", r.Status, r.Raw)
			}
			if tt.want == 400 && (r.code() != "BAD_REQUEST" || !strings.Contains(r.Raw, `"field":"name"`)) {
				t.Fatalf("organisation name: %s", r.Raw)
			}
			// The name a new user gives when accepting an invitation.
			_, secret := addInvitation(t, h, w.Org.ID, w.People[domain.RoleOwner].UserID, domain.RoleViewer)
			r = req(t, srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": tt.value, "password": testPassword})
			if r.Status != map[int]int{400: 400, 200: 201}[tt.want] {
				t.Fatalf("user name: %d %s", r.Status, r.Raw)
			}
		})
	}
}

func TestANULInAnyInputIsA400NotA500(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner].Token
	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		field        string
	}{
		{"in a sign-in email", "POST", "/api/v1/auth/sign-in", "", map[string]any{"email": "a\x00b@example.test", "password": "x"}, "email"},
		{"in a plan", "PATCH", orgPath(w, ""), owner, map[string]any{"plan": "team\x00"}, "plan"},
		{"in an events actor filter", "GET", orgPath(w, "/events?actor_id=a%00b"), owner, nil, "actor_id"},
		{"in an events target filter", "GET", orgPath(w, "/events?target_id=a%00b"), owner, nil, "target_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := req(t, srv, tt.method, tt.path, tt.token, tt.body)
			if r.Status != 400 || !strings.Contains(r.Raw, `"field":"`+tt.field+`"`) {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
	}
}
