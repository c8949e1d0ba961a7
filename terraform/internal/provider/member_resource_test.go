package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

const memberAddr = "intelliauth_member.test"

func memberConfig(token, identify, role string, remove bool) string {
	return providerWith(token) + fmt.Sprintf(`
resource "intelliauth_member" "test" {
  %s
  role              = %q
  remove_on_destroy = %t
}
`, identify, role, remove)
}

// wantMemberRole checks a member's role as the server has it.
func wantMemberRole(t *testing.T, id, role string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		m, found := memberNamed(t, id)
		if !found || string(m.Role) != role {
			return fmt.Errorf("server has member %s %+v (found %t), want role %s", id, m, found, role)
		}
		return nil
	}
}

// TestMemberRole takes over a person who joined by accepting an
// invitation, changes their role, imports them, sets back a role changed
// outside OpenTofu, and removes them from the organisation on destroy
// (remove_on_destroy).
func TestMemberRole(t *testing.T) {
	owner, ownerClient := freshOwner(t)
	m := joinedMember(t, "viewer")
	byID := fmt.Sprintf("member_id = %q", m.Id)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			if _, found := memberNamed(t, m.Id); found {
				return fmt.Errorf("member %s is still in the organisation after destroy with remove_on_destroy", m.Id)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: memberConfig(owner, byID, "developer", true),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(memberAddr, tfjsonpath.New("id"), knownvalue.StringExact(m.Id)),
					statecheck.ExpectKnownValue(memberAddr, tfjsonpath.New("email"), knownvalue.StringExact(m.Email)),
					statecheck.ExpectKnownValue(memberAddr, tfjsonpath.New("user_id"), knownvalue.StringRegexp(regexp.MustCompile(`^usr_`))),
				},
				Check: wantMemberRole(t, m.Id, "developer"),
			},
			{
				Config: memberConfig(owner, byID, "developer", true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:            memberAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"remove_on_destroy"},
			},
			{
				Config: memberConfig(owner, byID, "admin", true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(memberAddr, plancheck.ResourceActionUpdate)},
				},
				Check: wantMemberRole(t, m.Id, "admin"),
			},
			{
				// Made a viewer behind OpenTofu's back: the plan shows it and
				// the apply makes them an admin again.
				PreConfig: func() {
					if _, err := intelliauth.Data[intelliauth.Member](ownerClient.ChangeMemberRole(context.Background(), env.orgID, m.Id, nil,
						intelliauth.ChangeRoleRequest{Role: "viewer"})); err != nil {
						t.Fatal(err)
					}
				},
				Config: memberConfig(owner, byID, "admin", true),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(memberAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(memberAddr, tfjsonpath.New("role"), knownvalue.StringExact("admin")),
					},
				},
				Check: wantMemberRole(t, m.Id, "admin"),
			},
		},
	})
}

// TestMemberByEmailIsKeptOnDestroy finds the member by address and, with
// remove_on_destroy left false, leaves them in the organisation.
func TestMemberByEmailIsKeptOnDestroy(t *testing.T) {
	m := joinedMember(t, "developer")
	byEmail := fmt.Sprintf("email = %q", m.Email)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             func(s *terraform.State) error { return wantMemberRole(t, m.Id, "viewer")(s) },
		Steps: []resource.TestStep{
			{
				Config: memberConfig(env.ownerToken, byEmail, "viewer", false),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(memberAddr, tfjsonpath.New("member_id"), knownvalue.StringExact(m.Id)),
				},
				Check: wantMemberRole(t, m.Id, "viewer"),
			},
			{
				Config: memberConfig(env.ownerToken, byEmail, "viewer", false),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
		},
	})
}

// TestMemberWhoIsNotOne: an address that is not a member's is an error that
// says how people join.
func TestMemberWhoIsNotOne(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      memberConfig(env.ownerToken, fmt.Sprintf("email = %q", uniqueEmail("nobody")), "viewer", false),
			ExpectError: regexp.MustCompile(`(?s)No member.*accepting an\s+invitation`),
		}},
	})
}
