package integration

import (
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
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

// TestNamesThatReadAsAnotherAreRefused: three service accounts all read
// "deployer" when one is plain, one hides a zero-width space and one
// spells its e in Cyrillic. Names of organisations, of users (given when
// accepting an invitation) and of service accounts refuse invisible
// characters (control, format, variation selectors, fillers) and letters
// mixing Latin, Cyrillic and Greek, with a field error that says why; a
// name is kept in NFC, so two spellings of "Café" are one name.
func TestNamesThatReadAsAnotherAreRefused(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "enterprise")
	srv := sharedAPI(t)
	owner := w.People[domain.RoleOwner]
	newAccount := func(name string) response {
		return req(t, srv, "POST", orgPath(w, "/service-accounts"), owner.Token, map[string]any{
			"name": name, "role": "viewer", "scopes": []string{"tenants:read"}, "token_expires_in": 3600})
	}
	// created is the account a creation answered, which must be 201.
	created := func(r response) store.ServiceAccountView {
		t.Helper()
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		var out struct {
			ServiceAccount store.ServiceAccountView `json:"service_account"`
		}
		r.data(t, &out)
		return out.ServiceAccount
	}
	deployer := created(newAccount("deployer"))

	tests := []struct {
		name, value, why string
	}{
		{"a zero-width space is refused", "deploy\u200ber", "invisible"},
		{"a zero-width joiner is refused", "deployer\u200d", "invisible"},
		{"a word joiner is refused", "\u2060deployer", "invisible"},
		{"a soft hyphen is refused", "deplo\u00adyer", "invisible"},
		{"a byte order mark is refused", "\ufeffdeployer", "invisible"},
		{"a variation selector is refused", "deployer\ufe0f", "invisible"},
		{"a Hangul filler is refused", "deployer\u3164", "invisible"},
		{"a no-break space is refused", "deploy\u00a0er", "space"},
		{"a private-use character is refused", "deployer\ue000", "invisible"},
		{"a Cyrillic e among Latin letters is refused", "d\u0435ployer", "script"},
		{"a Greek omicron among Latin letters is refused", "depl\u03bfyer", "script"},
		{"a Cyrillic name with a Latin letter is refused", "\u0434e\u043f\u043b\u043e\u0439", "script"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(what string, r response) {
				t.Helper()
				if r.Status != 400 || r.code() != "BAD_REQUEST" || len(r.Env.Error.FieldErrors) != 1 ||
					r.Env.Error.FieldErrors[0].Field != "name" || !strings.Contains(r.Env.Error.FieldErrors[0].Message, tt.why) {
					t.Errorf("%s %q: %d %s", what, tt.value, r.Status, r.Raw)
				}
			}
			check("a service account", newAccount(tt.value))
			check("renaming a service account", req(t, srv, "PATCH", orgPath(w, "/service-accounts/"+deployer.ID), owner.Token, map[string]any{"name": tt.value}))
			check("an organisation", req(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": tt.value}))
			_, secret := addInvitation(t, h, w.Org.ID, owner.UserID, domain.RoleViewer)
			check("a user", req(t, srv, "POST", "/api/v1/invitations/accept", "", map[string]any{"token": secret, "name": tt.value, "password": testPassword}))
		})
	}

	// One script, or Latin with digits, marks and symbols, is a name.
	for _, ok := range []string{"Москва", "Αθήνα", "Zürich Café & Søn 🎉", "ci-bot 2", "東京 Tokyo"} {
		if r := newAccount(ok); r.Status != 201 {
			t.Errorf("%q: %d %s", ok, r.Status, r.Raw)
		}
	}

	// Canonically equivalent spellings are one name: "Cafe" with a
	// combining acute is kept as "Café", which is then taken.
	if cafe := created(newAccount("Cafe\u0301 bot")); cafe.Name != "Caf\u00e9 bot" {
		t.Errorf("kept as %q, want NFC %q", cafe.Name, "Caf\u00e9 bot")
	}
	if r := newAccount("Caf\u00e9 bot"); r.Status != 409 {
		t.Errorf("the composed spelling of a taken name: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"name": "  Acme   Inc "}); r.Status != 200 || !strings.Contains(r.Raw, `"name":"Acme Inc"`) {
		t.Errorf("spaces at the ends and in runs (which a page shows as one): %d %s", r.Status, r.Raw)
	}
}
