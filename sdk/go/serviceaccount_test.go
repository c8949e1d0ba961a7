package intelliauth_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// A service account's token (cps_…) works with the SDK as a member's does:
// the README's example, run with one, makes an ephemeral ci tenant and
// waits until it is active.
func TestAServiceAccountTokenMakesAnEphemeralCITenant(t *testing.T) {
	ctx := testContext(t)
	owner := ownerClient(t)

	// Minting a service-account token needs a recent authentication of the
	// person (403 REAUTHENTICATION_REQUIRED outside CP_REAUTH_WINDOW): the
	// owner proves it with the password first, as a client whose session
	// is older must.
	password := ownerPassword
	reauth, err := intelliauth.Data[intelliauth.ReauthenticateResult](owner.Reauthenticate(ctx, nil, intelliauth.ReauthenticateJSONRequestBody{Password: &password}))
	if err != nil {
		t.Fatalf("reauthenticate: %v", err)
	}
	if !reauth.ReauthenticatedUntil.After(time.Now()) {
		t.Fatalf("reauthenticated until %v", reauth.ReauthenticatedUntil)
	}
	sa, err := intelliauth.Data[intelliauth.CreatedServiceAccount](owner.CreateServiceAccount(ctx, dev.orgID, nil, intelliauth.CreateServiceAccountJSONRequestBody{
		Name: "ci", Role: intelliauth.Admin, Environments: &[]string{"ci"}, TokenExpiresIn: 3600,
		Scopes: []intelliauth.Scope{intelliauth.ScopeTenantsRead, intelliauth.ScopeTenantsCreate, intelliauth.ScopeTenantsDecommission},
	}))
	if err != nil {
		t.Fatalf("create service account: %v", err)
	}
	if len(sa.Token) < 5 || sa.Token[:4] != "cps_" {
		t.Fatalf("the service account's token is %q", sa.Token)
	}

	name := "ci-" + fmt.Sprint(time.Now().UnixNano()%1_000_000_000)
	t.Setenv("INTELLIAUTH_URL", dev.server)
	t.Setenv("INTELLIAUTH_TOKEN", sa.Token)
	t.Setenv("INTELLIAUTH_ORG_ID", dev.orgID)
	t.Setenv("GITHUB_RUN_ID", name[len("ci-"):])
	Example_ephemeralCITenant()

	c, err := intelliauth.New(dev.server, intelliauth.WithToken(sa.Token))
	if err != nil {
		t.Fatal(err)
	}
	page, err := intelliauth.List[intelliauth.Tenant](c.ListTenants(ctx, dev.orgID, nil))
	if err != nil {
		t.Fatal(err)
	}
	var found *intelliauth.Tenant
	for i, tn := range page.Items {
		if tn.Environment != "ci" {
			t.Errorf("a service account of environment ci sees tenant %s of %s", tn.Name, tn.Environment)
		}
		if tn.Name == name {
			found = &page.Items[i]
		}
	}
	if found == nil || found.State != "active" || found.ExpiresAt == nil ||
		found.ExpiresAt.Before(time.Now().Add(time.Hour)) || found.ExpiresAt.After(time.Now().Add(2*time.Hour+time.Minute)) {
		t.Fatalf("the service account's tenants %+v, want %s active with a lifetime of 2 h", page.Items, name)
	}

	// Its scopes hold: it may not suspend.
	_, err = intelliauth.Data[intelliauth.LifecycleResult](c.SuspendTenant(ctx, dev.orgID, found.Id, nil))
	var apiErr *intelliauth.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden {
		t.Fatalf("a suspend without tenants:suspend: %v", err)
	}
}
