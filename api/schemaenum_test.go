package api

import "testing"

// TestRequestEnumsAcceptTheirValues: a request field whose schema lists a
// named string type's values (a role, scopes) accepts each of them as JSON
// gives it, a plain string.
func TestRequestEnumsAcceptTheirValues(t *testing.T) {
	body := []byte(`{"name":"ci","role":"admin","scopes":["tenants:read","tenants:create"],"token_expires_in":3600}`)
	if fe := schemaErrors(bodySchema(&createServiceAccountRequest{}), body); len(fe) != 0 {
		t.Fatalf("a valid service account request is refused: %+v", fe)
	}
	bad := []byte(`{"name":"ci","role":"root","scopes":["tenants:read"],"token_expires_in":3600}`)
	if fe := schemaErrors(bodySchema(&createServiceAccountRequest{}), bad); len(fe) != 1 || fe[0].Field != "role" {
		t.Fatalf("an unknown role is not refused by field: %+v", fe)
	}
}
