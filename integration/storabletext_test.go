package integration

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// rawRequest sends one HTTP/1.1 request to the API served at addr, written
// byte for byte: net/http refuses to send a NUL in a header value, an
// attacker's client does not. The answer is read like any other.
func rawRequest(t *testing.T, addr, method, path, token, userAgent string, body any) response {
	t.Helper()
	header := [][2]string{{"User-Agent", userAgent}}
	if token != "" {
		header = append(header, [2]string{"Authorization", "Bearer " + token})
	}
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		header = append(header, [2]string{"Content-Type", "application/json"})
	}
	r, err := rawCall(t, addr, method, path, header, string(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// storedUserAgents is every user agent the audit events of a request
// recorded (events the system writes for it record none).
func storedUserAgents(t *testing.T, h *harness.Harness, requestID string) []string {
	t.Helper()
	var agents []string
	if err := h.DB.NewRaw("SELECT DISTINCT user_agent FROM audit_events WHERE request_id = ? AND user_agent <> ''", requestID).Scan(context.Background(), &agents); err != nil {
		t.Fatal(err)
	}
	return agents
}

// TestANULOrInvalidUTF8InTheUserAgentIsStoredWithoutIt sends a sign-in,
// an invitation's acceptance, a tenant's creation and its suspension with
// a User-Agent holding a NUL and a byte that is not UTF-8, which Postgres
// cannot store in text or jsonb. Each gets its usual answer, the audit
// trail and the session record the header without the NUL and with the
// byte replaced, and the suspended tenant can still be decommissioned:
// nothing is left retrying a write that cannot succeed.
func TestANULOrInvalidUTF8InTheUserAgentIsStoredWithoutIt(t *testing.T) {
	h := harness.Get(t)
	l := newLifecycle(t, nil)
	addr := serve(t, l.srv)
	w := newWorld(t, h, "team")
	dev := w.People[domain.RoleDeveloper]
	const hostile, stored = "probe/1.0 a\x00b \xff", "probe/1.0 ab \uFFFD"

	checkEvents := func(t *testing.T, what string, r response) {
		t.Helper()
		agents := storedUserAgents(t, h, r.Env.Meta.RequestID)
		if len(agents) != 1 || agents[0] != stored {
			t.Errorf("%s: audit events' user agents = %q, want [%q]", what, agents, stored)
		}
	}

	t.Run("sign-in", func(t *testing.T) {
		r := rawRequest(t, addr, "POST", "/api/v1/auth/sign-in", "", hostile, map[string]string{"email": dev.Email, "password": testPassword})
		if r.Status != 200 {
			t.Fatalf("sign-in: %d %s", r.Status, r.Raw)
		}
		checkEvents(t, "sign-in", r)
		var agent string
		if err := h.DB.NewRaw("SELECT user_agent FROM sessions WHERE user_id = ? ORDER BY created_at DESC LIMIT 1", dev.UserID).Scan(context.Background(), &agent); err != nil || agent != stored {
			t.Errorf("session's user agent = %q (%v), want %q", agent, err, stored)
		}
	})

	t.Run("accepting an invitation", func(t *testing.T) {
		_, secret := addInvitation(t, h, w.Org.ID, w.People[domain.RoleOwner].UserID, domain.RoleViewer)
		r := rawRequest(t, addr, "POST", "/api/v1/invitations/accept", "", hostile, map[string]string{"token": secret, "name": "Newcomer", "password": testPassword})
		if r.Status != 201 {
			t.Fatalf("accept: %d %s", r.Status, r.Raw)
		}
		checkEvents(t, "accept", r)
	})

	t.Run("creating a tenant", func(t *testing.T) {
		r := rawRequest(t, addr, "POST", orgPath(w, "/tenants"), dev.Token, hostile, map[string]string{"name": "agent", "environment": "prod"})
		if r.Status != 202 {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		var created lifecycleData
		r.data(t, &created)
		l.waitState(t, w, created.Tenant.ID, domain.StateActive)
		checkEvents(t, "create", r)
	})

	tn := l.createActive(t, w, "plain")
	t.Run("suspending a tenant", func(t *testing.T) {
		r := rawRequest(t, addr, "POST", orgPath(w, "/tenants/"+tn.ID+"/suspend"), dev.Token, hostile, nil)
		if r.Status != 202 {
			t.Fatalf("suspend: %d %s", r.Status, r.Raw)
		}
		l.waitState(t, w, tn.ID, domain.StateSuspended)
		checkEvents(t, "suspend", r)
	})

	// Nothing is wedged: the owner's decommission runs to its end.
	r := httpReq(t, l.srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/decommission"), w.People[domain.RoleOwner].Token, nil, "")
	if r.Status != 202 {
		t.Fatalf("decommission after the suspension: %d %s", r.Status, r.Raw)
	}
	l.waitState(t, w, tn.ID, domain.StateDecommissioned)
}

// TestANameThatSpellsAnEscapedNULIsStoredAsItIs renames an organisation to
// a name holding a backslash followed by "u0000": a valid name, with no NUL
// in it. The driver used to turn it into a NUL on its way into the audit
// event's jsonb, which Postgres refused (500, and a saga writing such a
// name would retry for ever).
func TestANameThatSpellsAnEscapedNULIsStoredAsItIs(t *testing.T) {
	h := harness.Get(t)
	w := newWorld(t, h, "team")
	const name = `Acme \u0000 Corp`
	r := req(t, sharedAPI(t), "PATCH", orgPath(w, ""), w.People[domain.RoleOwner].Token, map[string]string{"name": name})
	if r.Status != 200 {
		t.Fatalf("rename: %d %s", r.Status, r.Raw)
	}
	var stored string
	if err := h.DB.NewRaw("SELECT data->'after'->>'name' FROM audit_events WHERE request_id = ? AND action = 'organization.updated'", r.Env.Meta.RequestID).Scan(context.Background(), &stored); err != nil || stored != name {
		t.Fatalf("the event's new name = %q (%v), want %q", stored, err, name)
	}
}
