package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// TestCreationKeysMoveOnOnlyWhenTheyMust runs against a dev of its own
// with a one-second decommission grace period, so names come free within
// the test. A creation refused because another tenant holds the name is
// remembered under its key; once the name is free the next apply passes
// over that key and creates the tenant with the next generation's. A
// tenant destroyed and created again by the same configuration gets the
// generation after that: the ended tenant is never adopted.
func TestCreationKeysMoveOnOnlyWhenTheyMust(t *testing.T) {
	dev, err := startDev("CP_DECOMMISSION_GRACE=1s")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.stop)
	endpoint := "http://" + dev.api
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	owner, err := signIn(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("tf-gen")
	provider := fmt.Sprintf(`
provider "intelliauth" {
  endpoint        = %q
  token           = %q
  organization_id = %q
}
`, endpoint, owner.token, owner.orgID)
	withTenant := tenantConfig(name, "ci", "") + provider
	withoutTenant := providerBlock + provider

	other, err := intelliauth.Data[intelliauth.LifecycleResult](owner.client.CreateTenant(ctx, owner.orgID, nil,
		intelliauth.CreateTenantRequest{Name: name, Environment: "ci"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.client.WaitForTenant(ctx, owner.orgID, other.Tenant.Id, intelliauth.TenantStateActive); err != nil {
		t.Fatal(err)
	}
	// ended waits until the server has decommissioned the tenant for good.
	ended := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			tn, err := intelliauth.Data[intelliauth.Tenant](owner.client.GetTenant(ctx, owner.orgID, id))
			if err != nil {
				t.Fatal(err)
			}
			if tn.State == intelliauth.TenantStateDecommissioned {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant %s is still %s", id, tn.State)
			}
		}
	}
	createdWith := func(generation int) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			want := workflowID(owner.orgID, creationKey(owner.orgID, name, "ci", nil, nil, generation))
			if got := s.RootModule().Resources[tenantAddr].Primary.Attributes["workflow_id"]; got != want {
				return fmt.Errorf("the tenant's saga is %s, want generation %d's %s", got, generation, want)
			}
			return nil
		}
	}
	var firstID string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				// Generation 0 is refused: the name is another tenant's.
				Config:      withTenant,
				ExpectError: regexp.MustCompile(`(?s)taken.*` + other.Tenant.Id + `.*did not create it`),
			},
			{
				// The name is free now; generation 0's key still answers
				// with its refusal, so generation 1 creates the tenant.
				PreConfig: func() {
					d, err := intelliauth.Data[intelliauth.LifecycleResult](owner.client.DecommissionTenant(ctx, owner.orgID, other.Tenant.Id, nil))
					if err != nil {
						t.Fatal(err)
					}
					ended(d.Tenant.Id)
				},
				Config: withTenant,
				Check:  resource.ComposeTestCheckFunc(createdWith(1), captureID(&firstID)),
			},
			{
				// Destroyed: decommissioned a second later.
				Config: withoutTenant,
			},
			{
				// Created again: generation 1's tenant has ended, so
				// generation 2 makes a new one.
				PreConfig: func() { ended(firstID) },
				Config:    withTenant,
				Check: resource.ComposeTestCheckFunc(createdWith(2), func(s *terraform.State) error {
					if id := s.RootModule().Resources[tenantAddr].Primary.ID; id == firstID {
						return fmt.Errorf("the ended tenant %s was adopted", id)
					}
					return nil
				}),
			},
		},
	})
}
