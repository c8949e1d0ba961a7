package intelliauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// A CI job makes an ephemeral tenant for its run with a service account's
// token, and waits until it serves. The tenant's saga decommissions it when
// its lifetime ends, whether or not the job cleans up.
// TestAServiceAccountTokenMakesAnEphemeralCITenant runs this against dev.
func Example_ephemeralCITenant() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := intelliauth.New(os.Getenv("INTELLIAUTH_URL"), intelliauth.WithToken(os.Getenv("INTELLIAUTH_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	org, lifetime := os.Getenv("INTELLIAUTH_ORG_ID"), int64(2*60*60) // seconds
	created, err := intelliauth.Data[intelliauth.LifecycleResult](c.CreateTenant(ctx, org, nil, intelliauth.CreateTenantJSONRequestBody{
		Name: "ci-" + os.Getenv("GITHUB_RUN_ID"), Environment: "ci", ExpiresIn: &lifetime}))
	if err != nil {
		log.Fatal(err)
	}
	tenant, err := c.WaitForTenant(ctx, org, created.Tenant.Id, intelliauth.TenantStateActive)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tenant.Hostname, tenant.ExpiresAt)
}

// Every item of a list, page after page.
func ExampleAll() {
	ctx := context.Background()
	c, err := intelliauth.New(os.Getenv("INTELLIAUTH_URL"), intelliauth.WithToken(os.Getenv("INTELLIAUTH_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	org := os.Getenv("INTELLIAUTH_ORG_ID")
	for t, err := range intelliauth.All[intelliauth.Tenant](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
		return c.ListTenants(ctx, org, &intelliauth.ListTenantsParams{Cursor: intelliauth.Cursor(cursor)})
	}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(t.Name, t.State)
	}
}
