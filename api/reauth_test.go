package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTheDocumentSaysWhichActsNeedARecentAuthentication: each route that
// calls requireRecentAuth lists 403 REAUTHENTICATION_REQUIRED, and the
// others keep the plain 403 (integration/reauth_test.go proves the
// refusals themselves).
func TestTheDocumentSaysWhichActsNeedARecentAuthentication(t *testing.T) {
	const org = "/api/v1/organizations/{org_id}"
	guarded := map[string]bool{
		"POST " + org + "/tenants/{tenant_id}/decommission": true,
		"POST " + org + "/tenants/{tenant_id}/lifetime":     true,
		"PATCH " + org:                          true,
		"DELETE " + org:                         true,
		"POST " + org + "/restore":              false,
		"PATCH " + org + "/members/{member_id}": true,
		"POST " + org + "/invitations":          true,
		"POST " + org + "/service-accounts":     true,
		"POST " + org + "/service-accounts/{service_account_id}/tokens": true,
		"DELETE /api/v1/me/totp":                                                     true,
		"POST /api/v1/me/totp":                                                       true,
		"POST /api/v1/me/webauthn/registration/options":                              true,
		"DELETE /api/v1/me/webauthn/credentials/{passkey_id}":                        true,
		"POST /api/v1/me/recovery-codes":                                             true,
		"POST " + org + "/tenants/{tenant_id}/suspend":                               false,
		"POST " + org + "/tenants/{tenant_id}/restore":                               false,
		"DELETE " + org + "/members/{member_id}":                                     false,
		"DELETE " + org + "/service-accounts/{service_account_id}/tokens/{token_id}": false,
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Responses map[string]struct {
				Ref string `json:"$ref"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	for key, want := range guarded {
		method, path, _ := strings.Cut(key, " ")
		op, ok := doc.Paths[path][strings.ToLower(method)]
		if !ok {
			t.Errorf("%s is not in the document", key)
			continue
		}
		got := op.Responses["403"].Ref == "#/components/responses/"+errReauth.name
		if got != want {
			t.Errorf("%s: 403 is %s, want REAUTHENTICATION_REQUIRED listed: %v", key, op.Responses["403"].Ref, want)
		}
	}
}
