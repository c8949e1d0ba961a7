package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func TestOrganizationDataSource(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerBlock + `data "intelliauth_organization" "this" {}`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("id"), knownvalue.StringExact(env.orgID)),
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("slug"), knownvalue.StringExact(devOrgSlug)),
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("plan"), knownvalue.StringExact("enterprise")),
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("state"), knownvalue.StringExact("active")),
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("tenant_domain"), knownvalue.StringRegexp(regexp.MustCompile(`\.`))),
				// dev has no regions.
				statecheck.ExpectKnownValue("data.intelliauth_organization.this", tfjsonpath.New("default_region"), knownvalue.Null()),
			},
		}},
	})
}

// TestPlansDataSource reads the plans with the owner's token, given in the
// provider block (a service account cannot list plans).
func TestPlansDataSource(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config: providerBlock + fmt.Sprintf(`
provider "intelliauth" {
  token = %q
}
data "intelliauth_plans" "all" {}
`, env.ownerToken),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("data.intelliauth_plans.all", tfjsonpath.New("plans"), knownvalue.ListPartial(map[int]knownvalue.Check{
					0: knownvalue.ObjectPartial(map[string]knownvalue.Check{"id": knownvalue.StringExact("free"), "max_tenants": knownvalue.Int64Exact(2)}),
					2: knownvalue.ObjectPartial(map[string]knownvalue.Check{"id": knownvalue.StringExact("enterprise"), "max_tenants": knownvalue.Int64Exact(100)}),
				})),
			},
		}},
	})
}

// TestPlansDataSourceWithAServiceAccountSaysWhy: the server refuses a
// service account the plans, and the diagnostic carries its reason.
func TestPlansDataSourceWithAServiceAccountSaysWhy(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerBlock + `data "intelliauth_plans" "all" {}`,
			ExpectError: regexp.MustCompile(`(?s)Cannot list plans.*403`),
		}},
	})
}

// TestTenantsDataSource lists the tenants of an environment and of a state,
// with a tenant the same configuration creates among them.
func TestTenantsDataSource(t *testing.T) {
	name := uniqueName("tf-list")
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkTenantDecommissioned(&id),
		Steps: []resource.TestStep{{
			Config: tenantConfig(name, "listing", "") + `
data "intelliauth_tenants" "listing" {
  environment = "listing"
  depends_on  = [intelliauth_tenant.test]
}
data "intelliauth_tenants" "suspended" {
  state      = "suspended"
  depends_on = [intelliauth_tenant.test]
}
`,
			Check: resource.ComposeTestCheckFunc(
				captureID(&id),
				resource.TestCheckResourceAttr("data.intelliauth_tenants.listing", "tenants.#", "1"),
				resource.TestCheckResourceAttrPair("data.intelliauth_tenants.listing", "tenants.0.id", tenantAddr, "id"),
				resource.TestCheckResourceAttr("data.intelliauth_tenants.listing", "tenants.0.state", "active"),
				resource.TestCheckResourceAttrPair("data.intelliauth_tenants.listing", "tenants.0.hostname", tenantAddr, "hostname"),
				func(s *terraform.State) error {
					ds := s.RootModule().Resources["data.intelliauth_tenants.suspended"].Primary.Attributes
					for k, v := range ds {
						if regexp.MustCompile(`^tenants\.\d+\.state$`).MatchString(k) && v != "suspended" {
							return fmt.Errorf("the suspended list has a tenant %s", v)
						}
						if regexp.MustCompile(`^tenants\.\d+\.id$`).MatchString(k) && v == id {
							return fmt.Errorf("the suspended list has the active tenant %s", id)
						}
					}
					return nil
				},
			),
		}},
	})
}
