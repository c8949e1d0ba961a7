package provider

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// TestStuckProvisioningIsAnErrorNamingTheStep runs against a dev of its
// own whose schema step always fails (a CP_FAULTS drill) and is given up
// after one attempt: the provisioning saga is stuck, waiting for an
// operator. The apply fails naming the step, and keeps no tenant in the
// state; the server has it, stuck.
func TestStuckProvisioningIsAnErrorNamingTheStep(t *testing.T) {
	dev, err := startDev("CP_FAULTS=schema=fail", "CP_STEP_MAX_ATTEMPTS=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.stop)
	endpoint := "http://" + dev.api
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner, err := signIn(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("tf-stuck")
	config := tenantConfig(name, "ci", "") + fmt.Sprintf(`
provider "intelliauth" {
  endpoint        = %q
  token           = %q
  organization_id = %q
}
`, endpoint, owner.token, owner.orgID)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      config,
			ExpectError: regexp.MustCompile(`(?s)was not provisioned.*provision\s+operation\s+op_\S+\s+is\s+stuck\s+at\s+step\s+"schema".*operator`),
		}},
	})

	var found []intelliauth.Tenant
	fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
		return owner.client.ListTenants(ctx, owner.orgID, &intelliauth.ListTenantsParams{Cursor: intelliauth.Cursor(cursor)})
	}
	for tn, err := range intelliauth.All[intelliauth.Tenant](ctx, fetch) {
		if err != nil {
			t.Fatal(err)
		}
		if tn.Name == name {
			found = append(found, tn)
		}
	}
	if len(found) != 1 || found[0].State != intelliauth.TenantStateProvisioning || found[0].CurrentOperationId == nil {
		t.Fatalf("the server has %+v, want one tenant %s stuck provisioning", found, name)
	}
}
