package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// cellCall is one request an authorisation cell makes: the path with its
// parameters filled, the body, and the status a permitted caller gets.
type cellCall struct {
	path   string
	body   any
	status int
	code   string // the error code of a permitted call refused for its content
}

// fixture builds, for a route, a valid request against the world (fresh
// targets for each cell, since permitted cells change things).
type fixture func(t *testing.T, h *harness.Harness, w world) cellCall

func orgPath(w world, rest string) string {
	return "/api/v1/organizations/" + w.Org.ID + rest
}

// fixtures has one entry per route of the API; a route without one fails
// TestEveryRouteTimesEveryRoleAndCredential.
var fixtures = map[string]fixture{
	"POST /api/v1/auth/sign-in":                nil, // public
	"POST /api/v1/invitations/accept":          nil,
	"GET /api/v1/openapi.json":                 nil,
	"POST /api/v1/auth/password-reset":         nil,
	"POST /api/v1/auth/password-reset/confirm": nil,
	"POST /api/v1/auth/sign-in/mfa":            nil,
	"GET /api/v1/auth/sign-up":                 nil,
	"POST /api/v1/auth/sign-up":                nil,
	"POST /api/v1/auth/verify-email":           nil,
	"GET /api/v1/organization-slugs/:slug":     nil,
	"GET /api/v1/audit-chain/keys":             nil,
	"POST /api/v1/organizations": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/organizations", map[string]any{"name": "Own " + uniq(), "slug": "o-" + uniq()}, 201, ""}
	},
	"POST /api/v1/me/totp": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/totp", nil, 201, ""}
	},
	"POST /api/v1/me/totp/confirm": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/totp/confirm", map[string]any{"code": ""}, 400, "BAD_REQUEST"}
	},
	"DELETE /api/v1/me/totp": func(t *testing.T, h *harness.Harness, w world) cellCall {
		// Whatever another cell enrolled, nobody of the world has TOTP.
		for _, p := range w.People {
			if _, err := h.DB.NewRaw("DELETE FROM user_totp WHERE user_id = ?", p.UserID).Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		return cellCall{"/api/v1/me/totp", nil, 404, "NOT_FOUND"}
	},
	"POST /api/v1/me/recovery-codes": func(*testing.T, *harness.Harness, world) cellCall {
		// Nobody of the world has a second factor.
		return cellCall{"/api/v1/me/recovery-codes", nil, 409, "CONFLICT"}
	},
	"GET /api/v1/me/sessions": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/sessions", nil, 200, ""}
	},
	"GET /api/v1/me/events": func(*testing.T, *harness.Harness, world) cellCall { return cellCall{"/api/v1/me/events", nil, 200, ""} },
	"DELETE /api/v1/me/sessions": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/sessions", nil, 200, ""}
	},
	"DELETE /api/v1/me/sessions/:session_id": func(*testing.T, *harness.Harness, world) cellCall {
		// Nobody's session: a permitted call is 404 for its content.
		return cellCall{"/api/v1/me/sessions/" + domain.NewID(domain.PrefixSession), nil, 404, "NOT_FOUND"}
	},
	"POST /api/v1/auth/sign-in/webauthn/options": nil,
	"POST /api/v1/auth/sign-in/webauthn":         nil,
	"POST /api/v1/me/webauthn/registration/options": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/webauthn/registration/options", nil, 200, ""}
	},
	"POST /api/v1/me/webauthn/credentials": func(*testing.T, *harness.Harness, world) cellCall {
		// Nobody's challenge: a permitted call is 400 for its content.
		body := map[string]any{"challenge": store.ChallengePrefix + "unknown", "name": "laptop", "credential": map[string]any{"id": "x"}}
		return cellCall{"/api/v1/me/webauthn/credentials", body, 400, "BAD_REQUEST"}
	},
	"GET /api/v1/me/webauthn/credentials": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/me/webauthn/credentials", nil, 200, ""}
	},
	"DELETE /api/v1/me/webauthn/credentials/:passkey_id": func(*testing.T, *harness.Harness, world) cellCall {
		// Nobody's passkey: a permitted call is 404 for its content.
		return cellCall{"/api/v1/me/webauthn/credentials/" + domain.NewID(domain.PrefixPasskey), nil, 404, "NOT_FOUND"}
	},
	"POST /api/v1/auth/sign-out": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{"/api/v1/auth/sign-out", nil, 200, ""}
	},
	"POST /api/v1/auth/reauthenticate": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/auth/reauthenticate", map[string]any{"password": testPassword}, 200, ""}
	},
	"GET /api/v1/me": func(*testing.T, *harness.Harness, world) cellCall { return cellCall{"/api/v1/me", nil, 200, ""} },
	"GET /api/v1/organizations": func(*testing.T, *harness.Harness, world) cellCall {
		return cellCall{"/api/v1/organizations", nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, ""), nil, 200, ""}
	},
	"PATCH /api/v1/organizations/:org_id": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, ""), map[string]any{"name": "Renamed " + uniq()}, 200, ""}
	},
	"DELETE /api/v1/organizations/:org_id": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		// Not the slug: a permitted call is 400 for its content.
		return cellCall{orgPath(w, ""), map[string]any{"confirm": "not-" + w.Org.Slug}, 400, "BAD_REQUEST"}
	},
	"POST /api/v1/organizations/:org_id/restore": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		// Not being deleted: a permitted call is 409.
		return cellCall{orgPath(w, "/restore"), nil, 409, "CONFLICT"}
	},
	"GET /api/v1/organizations/:org_id/operations": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/operations"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/usage": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/usage"), nil, 200, ""}
	},
	"GET /api/v1/plans": func(*testing.T, *harness.Harness, world) cellCall { return cellCall{"/api/v1/plans", nil, 200, ""} },
	"GET /api/v1/organizations/:org_id/members": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/members"), nil, 200, ""}
	},
	"PATCH /api/v1/organizations/:org_id/members/:member_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		target := addPerson(t, h, w.Org.ID, domain.RoleDeveloper)
		return cellCall{orgPath(w, "/members/"+target.MemberID), map[string]any{"role": "viewer"}, 200, ""}
	},
	"DELETE /api/v1/organizations/:org_id/members/:member_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		target := addPerson(t, h, w.Org.ID, domain.RoleDeveloper)
		return cellCall{orgPath(w, "/members/"+target.MemberID), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/invitations": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/invitations"), map[string]any{"email": "new-" + uniq() + "@example.test", "role": "developer"}, 201, ""}
	},
	"GET /api/v1/organizations/:org_id/invitations": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/invitations"), nil, 200, ""}
	},
	"DELETE /api/v1/organizations/:org_id/invitations/:invitation_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		id, _ := addInvitation(t, h, w.Org.ID, w.People[domain.RoleOwner].UserID, domain.RoleDeveloper)
		return cellCall{orgPath(w, "/invitations/"+id), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/invitations/:invitation_id/resend": func(t *testing.T, h *harness.Harness, w world) cellCall {
		id, _ := addInvitation(t, h, w.Org.ID, w.People[domain.RoleOwner].UserID, domain.RoleDeveloper)
		return cellCall{orgPath(w, "/invitations/"+id+"/resend"), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/tenants": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants"), map[string]any{"name": "t-" + uniq(), "environment": "uat"}, 202, ""}
	},
	"GET /api/v1/organizations/:org_id/tenants": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/regions": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/regions"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/tenants/:tenant_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateActive)), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/tenants/:tenant_id/operations": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateActive)+"/operations"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/events": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/events"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/audit-chain": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-chain"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/service-accounts": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts"), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/service-accounts": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts"), map[string]any{"name": "sa-" + uniq(), "role": "viewer", "scopes": []string{"tenants:read"}, "token_expires_in": 3600}, 201, ""}
	},
	"GET /api/v1/organizations/:org_id/service-accounts/:service_account_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts/"+addServiceAccount(t, h, w, domain.RoleViewer).ID), nil, 200, ""}
	},
	"PATCH /api/v1/organizations/:org_id/service-accounts/:service_account_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts/"+addServiceAccount(t, h, w, domain.RoleViewer).ID), map[string]any{"scopes": []string{"events:read"}}, 200, ""}
	},
	"DELETE /api/v1/organizations/:org_id/service-accounts/:service_account_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts/"+addServiceAccount(t, h, w, domain.RoleViewer).ID), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/service-accounts/:service_account_id/take-over": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts/"+addServiceAccount(t, h, w, domain.RoleViewer).ID+"/take-over"), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/service-accounts/:service_account_id/tokens": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/service-accounts/"+addServiceAccount(t, h, w, domain.RoleViewer).ID+"/tokens"), map[string]any{"expires_in": 3600}, 201, ""}
	},
	"DELETE /api/v1/organizations/:org_id/service-accounts/:service_account_id/tokens/:token_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		sa := addServiceAccount(t, h, w, domain.RoleViewer)
		return cellCall{orgPath(w, "/service-accounts/"+sa.ID+"/tokens/"+sa.Tokens[0].ID), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/audit-streams": func(t *testing.T, h *harness.Harness, w world) cellCall {
		clearStreams(t, h, w) // under the quota, whatever other cells made
		return cellCall{orgPath(w, "/audit-streams"), map[string]any{"name": "SIEM " + uniq(), "kind": "https", "endpoint": "https://siem.example.com/in"}, 201, ""}
	},
	"GET /api/v1/organizations/:org_id/audit-streams": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/audit-streams/:stream_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)), nil, 200, ""}
	},
	"PATCH /api/v1/organizations/:org_id/audit-streams/:stream_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)), map[string]any{"name": "Renamed " + uniq()}, 200, ""}
	},
	"DELETE /api/v1/organizations/:org_id/audit-streams/:stream_id": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)), nil, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/audit-streams/:stream_id/replay": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)+"/replay"), map[string]any{"since": time.Now().Add(-time.Hour)}, 200, ""}
	},
	"POST /api/v1/organizations/:org_id/audit-streams/:stream_id/test": func(t *testing.T, h *harness.Harness, w world) cellCall {
		// Nobody listens there: the receiver's failure is the answer's.
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)+"/test"), nil, 200, ""}
	},
	"GET /api/v1/organizations/:org_id/audit-streams/:stream_id/deliveries": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/audit-streams/"+addStreamRow(t, h, w)+"/deliveries"), nil, 200, ""}
	},
	// A permitted transition on a failed tenant is refused for the
	// tenant's state, after authorisation: 409 tells it from 401/403/404.
	"POST /api/v1/organizations/:org_id/tenants/:tenant_id/suspend":      transitionCell("suspend"),
	"POST /api/v1/organizations/:org_id/tenants/:tenant_id/resume":       transitionCell("resume"),
	"POST /api/v1/organizations/:org_id/tenants/:tenant_id/decommission": transitionCell("decommission"),
	"POST /api/v1/organizations/:org_id/tenants/:tenant_id/restore":      transitionCell("restore"),
	// The shared API runs with billing off: every member gets its 404,
	// whatever their role (offRoutes; billing_test.go covers it on).
	"GET /api/v1/organizations/:org_id/billing": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/billing"), nil, 404, "NOT_FOUND"}
	},
	"POST /api/v1/organizations/:org_id/billing/checkout": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/billing/checkout"), map[string]any{"plan": "team"}, 404, "NOT_FOUND"}
	},
	"POST /api/v1/organizations/:org_id/billing/portal": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/billing/portal"), nil, 404, "NOT_FOUND"}
	},
	"GET /api/v1/organizations/:org_id/invoices": func(_ *testing.T, _ *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/invoices"), nil, 404, "NOT_FOUND"}
	},
	"POST /api/v1/billing/stripe/webhook": nil, // public: signature-verified
	// Likewise a lifetime change of a failed tenant.
	"POST /api/v1/organizations/:org_id/tenants/:tenant_id/lifetime": func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateFailed)+"/lifetime"), map[string]any{"expires_in": nil}, 409, "CONFLICT"}
	},
}

// addStreamRow writes a splunk_hec stream row of the world directly, with
// no workflow and no quota (cells make many).
func addStreamRow(t *testing.T, h *harness.Harness, w world) string {
	t.Helper()
	id := domain.NewID(domain.PrefixAuditStream)
	sealed, err := h.Keys.Seal([]byte("hec-token"), store.StreamSealContext(id, store.SealedCredential))
	if err != nil {
		t.Fatal(err)
	}
	s := store.AuditStream{ID: id, OrgID: w.Org.ID, Name: "HEC " + uniq(), Kind: "splunk_hec", Endpoint: "https://127.0.0.1:1/services/collector/event",
		Actions: []string{}, Status: "active", CredentialSealed: sealed, Version: 1, CreatedBy: w.People[domain.RoleOwner].UserID}
	if _, err := h.DB.NewInsert().Model(&s).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return id
}

// clearStreams deletes the world's streams.
func clearStreams(t *testing.T, h *harness.Harness, w world) {
	t.Helper()
	if _, err := h.DB.NewRaw(`UPDATE audit_streams SET deleted_at = now(), secret_sealed = NULL, credential_sealed = NULL
		WHERE org_id = ? AND deleted_at IS NULL`, w.Org.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func transitionCell(action string) fixture {
	return func(t *testing.T, h *harness.Harness, w world) cellCall {
		return cellCall{orgPath(w, "/tenants/"+addTenantRow(t, h, w, domain.StateFailed)+"/"+action), nil, 409, "CONFLICT"}
	}
}

// addTenantRow writes a tenant row in the state directly, with no workflow.
func addTenantRow(t *testing.T, h *harness.Harness, w world, state domain.State) string {
	t.Helper()
	now := time.Now().UTC()
	tnName := "r-" + uniq()
	tn := store.Tenant{ID: domain.NewID(domain.PrefixTenant), OrgID: w.Org.ID, Name: tnName, Environment: "prod", State: string(state),
		Hostname: tnName + ".x.test", WorkflowID: "none/" + uniq(), CreatedBy: w.People[domain.RoleOwner].UserID, CreatedAt: now, UpdatedAt: now}
	if _, err := h.DB.NewInsert().Model(&tn).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tn.ID
}

// credential is how a cell presents itself.
type credential string

const (
	ownOrg     credential = "a member of the organization"
	foreignOrg credential = "a member of another organization"
	noToken    credential = "no token"
	expired    credential = "an expired token"
	revoked    credential = "a revoked token"
)

// TestEveryRouteTimesEveryRoleAndCredential walks the server's own route
// list: every route × every role × {own org, foreign org, no token, expired
// token, revoked token}, and asserts the exact status and code. The expected
// answer comes from the same policy table the server enforces.
func TestEveryRouteTimesEveryRoleAndCredential(t *testing.T) {
	h := harness.Get(t)
	srv := sharedAPI(t)
	own := newWorld(t, h, roomyPlan(t, h))
	foreign := newWorld(t, h, roomyPlan(t, h))

	for _, r := range srv.Routes() {
		key := r.Method + " " + r.Path
		fx, known := fixtures[key]
		if !known {
			t.Errorf("route %s has no authorisation fixture: add one", key)
			continue
		}
		if r.Access == api.Org && r.Action == "" {
			t.Errorf("route %s is scoped to an organisation but names no policy action", key)
			continue
		}
		if r.Access == api.Public {
			continue
		}
		for _, role := range domain.Roles {
			for _, cred := range []credential{ownOrg, foreignOrg, noToken, expired, revoked} {
				t.Run(fmt.Sprintf("%s/%s/%s", key, role, cred), func(t *testing.T) {
					w := own
					if cred == foreignOrg && r.Access == api.Org {
						w = foreign // the caller is a member of own, the path names foreign
					}
					c := fx(t, h, w)
					me := own.People[role]
					token := session(t, h, me.UserID, 3600e9)
					switch cred {
					case noToken:
						token = ""
					case expired:
						token = session(t, h, me.UserID, -1)
					case revoked:
						if err := store.RevokeSession(context.Background(), h.DB, store.HashSecret(token)); err != nil {
							t.Fatal(err)
						}
					}
					wantStatus, wantCode := c.status, c.code
					switch {
					case cred == noToken || cred == expired || cred == revoked:
						wantStatus, wantCode = 401, "UNAUTHENTICATED"
					case r.Access == api.Org && cred == foreignOrg:
						wantStatus, wantCode = 404, "NOT_FOUND"
					case r.Access == api.Org && offRoutes[key]:
						// Off on the shared API: absent for every member.
					case r.Access == api.Org && !domain.Allowed(role, r.Action):
						wantStatus, wantCode = 403, "FORBIDDEN"
					}
					resp := req(t, srv, r.Method, c.path, token, c.body)
					if resp.Status != wantStatus || resp.code() != wantCode {
						t.Fatalf("got %d %q, want %d %q: %s", resp.Status, resp.code(), wantStatus, wantCode, resp.Raw)
					}
					if cred == foreignOrg && r.Access == api.Org && !strings.Contains(resp.Env.Error.Message, "organization not found") {
						t.Errorf("a foreign organization must look absent: %s", resp.Raw)
					}
				})
			}
		}
	}
}

// offRoutes are the routes of a feature that is off on the shared API
// (billing): 404 for every member, before their role is looked at.
var offRoutes = map[string]bool{
	"GET /api/v1/organizations/:org_id/billing":           true,
	"POST /api/v1/organizations/:org_id/billing/checkout": true,
	"POST /api/v1/organizations/:org_id/billing/portal":   true,
	"GET /api/v1/organizations/:org_id/invoices":          true,
}
