package provider

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	openapi_types "github.com/oapi-codegen/runtime/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

const invitationAddr = "intelliauth_invitation.test"

func invitationConfig(token, email, role string) string {
	return providerWith(token) + fmt.Sprintf(`
resource "intelliauth_invitation" "test" {
  email = %q
  role  = %q
}
`, email, role)
}

// wantInvitation checks an invitation as the server has it.
func wantInvitation(t *testing.T, id *string, status, role string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		inv, found := invitationNamed(t, *id)
		if !found || inv.Status != status || string(inv.Role) != role {
			return fmt.Errorf("server has invitation %s %+v (found %t), want %s %s", *id, inv, found, status, role)
		}
		return nil
	}
}

// TestInvitationLifecycle invites an address, changes the role (a new
// invitation in place of the revoked one), imports it, invites again after
// a revocation made outside OpenTofu, and leaves an invitation accepted
// outside OpenTofu as it is, in the state and on the server.
func TestInvitationLifecycle(t *testing.T) {
	owner, ownerClient := freshOwner(t)
	email := uniqueEmail("tf-inv")
	var first, second, third string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			// Accepted: the destroy leaves the invitation and the member be.
			if err := wantInvitation(t, &third, "accepted", "developer")(nil); err != nil {
				return err
			}
			d := &providerData{client: env.owner, orgID: env.orgID}
			if _, found, err := findMember(context.Background(), d, "", email); err != nil || !found {
				return fmt.Errorf("the member who accepted is gone after destroy (%v)", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: invitationConfig(owner, email, "viewer"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(invitationAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^inv_`))),
					statecheck.ExpectKnownValue(invitationAddr, tfjsonpath.New("status"), knownvalue.StringExact("pending")),
				},
				Check: resource.ComposeTestCheckFunc(stateAttr(invitationAddr, "id", &first), wantInvitation(t, &first, "pending", "viewer")),
			},
			{
				Config: invitationConfig(owner, email, "viewer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				ResourceName:      invitationAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{
				// Another role: the pending invitation is revoked and a new
				// one mailed.
				Config: invitationConfig(owner, email, "developer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(invitationAddr, plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: resource.ComposeTestCheckFunc(
					stateAttr(invitationAddr, "id", &second),
					wantInvitation(t, &first, "revoked", "viewer"),
					wantInvitation(t, &second, "pending", "developer"),
				),
			},
			{
				// Revoked behind OpenTofu's back: the plan invites again.
				PreConfig: func() {
					if _, err := intelliauth.Data[intelliauth.Invitation](ownerClient.RevokeInvitation(context.Background(), env.orgID, second, nil)); err != nil {
						t.Fatal(err)
					}
				},
				Config: invitationConfig(owner, email, "developer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(invitationAddr, plancheck.ResourceActionCreate)},
				},
				Check: resource.ComposeTestCheckFunc(stateAttr(invitationAddr, "id", &third), wantInvitation(t, &third, "pending", "developer")),
			},
			{
				// Accepted by the person, with the secret from the third
				// mail: the refresh reads it accepted and there is nothing
				// to do.
				PreConfig: func() { acceptInvitation(t, email, 3) },
				Config:    invitationConfig(owner, email, "developer"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(invitationAddr, tfjsonpath.New("status"), knownvalue.StringExact("accepted")),
				},
			},
		},
	})
}

// TestInvitationDestroyRevokes: destroying a pending invitation revokes it.
func TestInvitationDestroyRevokes(t *testing.T) {
	email := uniqueEmail("tf-inv-rev")
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return wantInvitation(t, &id, "revoked", "admin")(nil)
		},
		Steps: []resource.TestStep{{
			Config: invitationConfig(env.ownerToken, email, "admin"),
			Check:  resource.ComposeTestCheckFunc(stateAttr(invitationAddr, "id", &id), wantInvitation(t, &id, "pending", "admin")),
		}},
	})
}

// TestInvitationAdoptsWhatAStoppedApplySent sends the invitation an apply
// of the configuration sends, as a run stopped after the server answered
// would have left it, then applies: the apply adopts that invitation and
// sends no second one.
func TestInvitationAdoptsWhatAStoppedApplySent(t *testing.T) {
	email := uniqueEmail("tf-inv-adopt")
	stopped, err := intelliauth.Data[intelliauth.Invitation](env.owner.CreateInvitation(context.Background(), env.orgID, nil,
		intelliauth.InviteRequest{Email: openapi_types.Email(email), Role: "viewer"},
		intelliauth.WithIdempotencyKey(generationKey("inv-create", 0, env.orgID, email, "viewer"))))
	if err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			return wantInvitation(t, &stopped.Id, "revoked", "viewer")(nil)
		},
		Steps: []resource.TestStep{{
			Config: invitationConfig(env.ownerToken, email, "viewer"),
			Check: resource.ComposeTestCheckFunc(
				resource.TestCheckResourceAttr(invitationAddr, "id", stopped.Id),
				func(*terraform.State) error {
					fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
						return env.owner.ListInvitations(ctx, env.orgID, &intelliauth.ListInvitationsParams{Cursor: intelliauth.Cursor(cursor)})
					}
					n := 0
					for inv, err := range intelliauth.All[intelliauth.Invitation](context.Background(), fetch) {
						if err != nil {
							return err
						}
						if inv.Email == email {
							n++
						}
					}
					if n != 1 {
						return fmt.Errorf("%d invitations of %s, want the one adopted", n, email)
					}
					return nil
				},
			),
		}},
	})
}

// TestInvitationOfAnAddressInvitedElsewhere: an address another request
// invited is named, with how to take the invitation over.
func TestInvitationOfAnAddressInvitedElsewhere(t *testing.T) {
	email := uniqueEmail("tf-inv-other")
	other, err := intelliauth.Data[intelliauth.Invitation](env.owner.CreateInvitation(context.Background(), env.orgID, nil,
		intelliauth.InviteRequest{Email: openapi_types.Email(email), Role: "viewer"}))
	if err != nil {
		t.Fatal(err)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      invitationConfig(env.ownerToken, email, "viewer"),
			ExpectError: regexp.MustCompile(`(?s)` + other.Id + `.*Import that invitation`),
		}},
	})
}
