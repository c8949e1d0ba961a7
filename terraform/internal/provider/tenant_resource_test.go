package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

const tenantAddr = "intelliauth_tenant.test"

func tenantConfig(name, environment, extra string) string {
	return providerBlock + fmt.Sprintf(`
resource "intelliauth_tenant" "test" {
  name        = %q
  environment = %q
%s
}
`, name, environment, extra)
}

// TestTenantLifecycle drives one tenant through everything the resource
// does, each step checked against what the server says: create, a second
// apply that changes nothing, a lifetime, suspend and resume, import, a
// suspension made outside OpenTofu showing in the plan, and the destroy.
func TestTenantLifecycle(t *testing.T) {
	name := uniqueName("tf-life")
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkTenantDecommissioned(&id),
		Steps: []resource.TestStep{
			{
				Config: tenantConfig(name, "ci", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("expires_at"), knownvalue.Null()),
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("current_operation_id"), knownvalue.Null()),
					// dev has no regions: the server chose none.
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("region"), knownvalue.Null()),
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^tnt_`))),
					statecheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("hostname"), knownvalue.StringRegexp(regexp.MustCompile(`^`+name+`-acme\.`))),
				},
				Check: resource.ComposeTestCheckFunc(
					captureID(&id),
					checkServer(&id, func(tn intelliauth.Tenant) error {
						if tn.State != intelliauth.TenantStateActive || tn.Name != name || tn.Environment != "ci" {
							return fmt.Errorf("server has %s %s/%s, want active %s/ci", tn.State, tn.Name, tn.Environment, name)
						}
						if !strings.HasPrefix(tn.WorkflowId, "tenant/"+env.orgID+"/tf-create-") {
							return fmt.Errorf("the tenant was not created with the provider's derived key: workflow %s", tn.WorkflowId)
						}
						return nil
					}),
				),
			},
			{
				// The same configuration again: nothing to do.
				Config: tenantConfig(name, "ci", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A lifetime: an update in place, the end an hour away. The
				// region the server left null stays null in the plan (not
				// unknown, which would replace the tenant).
				Config: tenantConfig(name, "ci", "  expires_in = 3600"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(tenantAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("region"), knownvalue.Null()),
					},
				},
				Check: checkServer(&id, func(tn intelliauth.Tenant) error {
					if tn.ExpiresAt == nil {
						return fmt.Errorf("no lifetime on the server")
					}
					if left := time.Until(*tn.ExpiresAt); left < 50*time.Minute || left > 61*time.Minute {
						return fmt.Errorf("the tenant ends in %s, want about an hour", left)
					}
					return nil
				}),
			},
			{
				// Suspended, and the lifetime cleared.
				Config: tenantConfig(name, "ci", `  state = "suspended"`),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(tenantAddr, "state", "suspended"),
					resource.TestCheckNoResourceAttr(tenantAddr, "expires_at"),
					checkServer(&id, func(tn intelliauth.Tenant) error {
						if tn.State != intelliauth.TenantStateSuspended || tn.ExpiresAt != nil {
							return fmt.Errorf("server has %s, ends %v; want suspended with no lifetime", tn.State, tn.ExpiresAt)
						}
						return nil
					}),
				),
			},
			{
				// Resumed: state defaults to active.
				Config: tenantConfig(name, "ci", ""),
				Check:  checkServer(&id, wantState(intelliauth.TenantStateActive)),
			},
			{
				ResourceName:      tenantAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// Suspended behind OpenTofu's back: the plan shows it and
				// the apply resumes the tenant.
				PreConfig: func() { transitionOutOfBand(t, id, "suspend") },
				Config:    tenantConfig(name, "ci", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(tenantAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(tenantAddr, tfjsonpath.New("state"), knownvalue.StringExact("active")),
					},
				},
				Check: checkServer(&id, wantState(intelliauth.TenantStateActive)),
			},
			{
				// The same drift seen by a plan alone.
				PreConfig:          func() { transitionOutOfBand(t, id, "suspend") },
				Config:             tenantConfig(name, "ci", ""),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// TestTenantCreatedSuspendedWithALifetime creates a tenant straight into
// the state and lifetime the configuration asks for.
func TestTenantCreatedSuspendedWithALifetime(t *testing.T) {
	name := uniqueName("tf-susp")
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkTenantDecommissioned(&id),
		Steps: []resource.TestStep{{
			Config: tenantConfig(name, "staging", "  state = \"suspended\"\n  expires_in = 7200"),
			Check: resource.ComposeTestCheckFunc(
				captureID(&id),
				resource.TestCheckResourceAttr(tenantAddr, "state", "suspended"),
				resource.TestCheckResourceAttrSet(tenantAddr, "expires_at"),
				checkServer(&id, func(tn intelliauth.Tenant) error {
					if tn.State != intelliauth.TenantStateSuspended || tn.ExpiresAt == nil {
						return fmt.Errorf("server has %s, ends %v; want suspended with a lifetime", tn.State, tn.ExpiresAt)
					}
					return nil
				}),
			),
		}},
	})
}

// TestTenantNameTakenByAnotherIsNotAdopted: a tenant of the same name that
// this configuration did not create is named in the error, not adopted.
func TestTenantNameTakenByAnotherIsNotAdopted(t *testing.T) {
	name := uniqueName("tf-taken")
	other, err := intelliauth.Data[intelliauth.LifecycleResult](env.owner.CreateTenant(context.Background(), env.orgID, nil,
		intelliauth.CreateTenantRequest{Name: name, Environment: "ci"}))
	if err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      tenantConfig(name, "ci", ""),
			ExpectError: regexp.MustCompile(`(?s)taken.*` + other.Tenant.Id + `.*did not create it`),
		}},
	})
	if n := len(tenantsNamed(t, name)); n != 1 {
		t.Fatalf("%d tenants named %s, want the one made outside OpenTofu", n, name)
	}
}

// captureID keeps the tenant's id for later checks.
func captureID(id *string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[tenantAddr]
		if !ok {
			return fmt.Errorf("%s not in the state", tenantAddr)
		}
		*id = rs.Primary.ID
		return nil
	}
}

// checkServer checks the tenant as the server has it.
func checkServer(id *string, check func(intelliauth.Tenant) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		tn, err := intelliauth.Data[intelliauth.Tenant](env.owner.GetTenant(context.Background(), env.orgID, *id))
		if err != nil {
			return err
		}
		return check(tn)
	}
}

func wantState(want intelliauth.TenantState) func(intelliauth.Tenant) error {
	return func(tn intelliauth.Tenant) error {
		if tn.State != want {
			return fmt.Errorf("server has tenant %s %s, want %s", tn.Id, tn.State, want)
		}
		return nil
	}
}

// checkTenantDecommissioned is a destroy's check: the server is
// decommissioning the tenant (in its grace period) or has.
func checkTenantDecommissioned(id *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if *id == "" {
			return fmt.Errorf("no tenant was created")
		}
		tn, err := intelliauth.Data[intelliauth.Tenant](env.owner.GetTenant(context.Background(), env.orgID, *id))
		if err != nil {
			return err
		}
		if tn.State != intelliauth.TenantStateDecommissioning && tn.State != intelliauth.TenantStateDecommissioned {
			return fmt.Errorf("after destroy the server has tenant %s %s, want decommissioning or decommissioned", tn.Id, tn.State)
		}
		return nil
	}
}

// transitionOutOfBand suspends or resumes the tenant as another client
// would, and waits for it.
func transitionOutOfBand(t *testing.T, id, kind string) {
	t.Helper()
	ctx := context.Background()
	var answer intelliauth.LifecycleResult
	var err error
	switch kind {
	case "suspend":
		answer, err = intelliauth.Data[intelliauth.LifecycleResult](env.service.SuspendTenant(ctx, env.orgID, id, nil))
	case "resume":
		answer, err = intelliauth.Data[intelliauth.LifecycleResult](env.service.ResumeTenant(ctx, env.orgID, id, nil))
	}
	if err != nil {
		t.Fatalf("%s tenant %s: %v", kind, id, err)
	}
	if _, err := env.service.WaitForOperation(ctx, env.orgID, id, answer.Operation.Id); err != nil {
		t.Fatalf("%s tenant %s: %v", kind, id, err)
	}
}

// TestTenantDecommissionedOutOfBandIsRestored: a tenant someone else
// decommissioned reads as decommissioning during the grace period; the plan
// shows it, and the apply restores the tenant and resumes it.
func TestTenantDecommissionedOutOfBandIsRestored(t *testing.T) {
	name := uniqueName("tf-restore")
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkTenantDecommissioned(&id),
		Steps: []resource.TestStep{
			{
				Config: tenantConfig(name, "ci", ""),
				Check:  captureID(&id),
			},
			{
				PreConfig: func() {
					ctx := context.Background()
					if _, err := intelliauth.Data[intelliauth.LifecycleResult](env.service.DecommissionTenant(ctx, env.orgID, id, nil)); err != nil {
						t.Fatal(err)
					}
					for deadline := time.Now().Add(time.Minute); tenantByID(t, id).State != intelliauth.TenantStateDecommissioning; time.Sleep(200 * time.Millisecond) {
						if time.Now().After(deadline) {
							t.Fatalf("tenant %s did not enter its grace period", id)
						}
					}
				},
				Config: tenantConfig(name, "ci", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(tenantAddr, plancheck.ResourceActionUpdate)},
				},
				Check: checkServer(&id, wantState(intelliauth.TenantStateActive)),
			},
		},
	})
}

// TestTenantRegionIsRefusedWithoutRegions: dev has no regions, so a
// configuration naming one is refused by the server, which says so, and
// nothing is created. A name outside the rule is refused at plan time.
func TestTenantRegionIsRefusedWithoutRegions(t *testing.T) {
	name := uniqueName("tf-region")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config:      tenantConfig(name, "ci", `  region = "eu"`),
				ExpectError: regexp.MustCompile(`(?s)region:\s+this\s+installation\s+has\s+no\s+regions`),
			},
			{
				Config:      tenantConfig(name, "ci", `  region = "EU-"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)starting with a letter`),
			},
		},
	})
	for tn, err := range intelliauth.All[intelliauth.Tenant](context.Background(), tenantLister(&providerData{client: env.owner, orgID: env.orgID}, nil)) {
		if err != nil {
			t.Fatal(err)
		}
		if tn.Name == name {
			t.Fatalf("a tenant %s (%s) was created in spite of the refusal", tn.Id, tn.State)
		}
	}
}
