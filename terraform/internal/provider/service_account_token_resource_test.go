package provider

import (
	"context"
	"fmt"
	"regexp"
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

const tokenAddr = "intelliauth_service_account_token.test"

func serviceAccountTokenConfig(token, accountID, rotation, extra string) string {
	return providerWith(token) + fmt.Sprintf(`
resource "intelliauth_service_account_token" "test" {
  service_account_id = %q
  expires_in         = 3600
  keepers            = { rotation = %q }
%s
  lifecycle {
    create_before_destroy = true
  }
}
`, accountID, rotation, extra)
}

// minted is a token the resource minted: its id and secret.
type minted struct{ id, token string }

// TestServiceAccountTokenRotation mints a token, rotates it twice with
// create_before_destroy (a keeper changed, then rotate_when_remaining
// reached) and checks each time that the new token was minted before the
// old one was revoked, that the new one works and the old one does not;
// a token revoked outside OpenTofu is minted again; import is refused;
// destroy revokes.
func TestServiceAccountTokenRotation(t *testing.T) {
	owner, ownerClient := freshOwner(t)
	ctx := context.Background()
	created, err := intelliauth.Data[intelliauth.CreatedServiceAccount](ownerClient.CreateServiceAccount(ctx, env.orgID, nil,
		intelliauth.CreateServiceAccountRequest{Name: uniqueName("tf-rotate"), Role: "viewer", Scopes: []intelliauth.Scope{"organization:read"}, TokenExpiresIn: 600}))
	if err != nil {
		t.Fatal(err)
	}
	account := created.ServiceAccount.Id
	// An account holds two valid tokens at most: the rotation needs both.
	if _, err := intelliauth.Data[intelliauth.ServiceToken](ownerClient.RevokeServiceToken(ctx, env.orgID, account, created.ServiceAccount.Tokens[0].Id, nil)); err != nil {
		t.Fatal(err)
	}

	var tokens []minted
	capture := func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[tokenAddr]
		if !ok {
			return fmt.Errorf("%s not in the state", tokenAddr)
		}
		m := minted{id: rs.Primary.Attributes["id"], token: rs.Primary.Attributes["token"]}
		if n := len(tokens); n == 0 || tokens[n-1].id != m.id {
			tokens = append(tokens, m)
		}
		return nil
	}
	// rotated checks that the newest token replaced the one before it
	// without a moment with neither: minted before the old was revoked.
	rotated := func(*terraform.State) error {
		if len(tokens) < 2 {
			return fmt.Errorf("%d tokens minted, want a replacement", len(tokens))
		}
		old, cur := tokens[len(tokens)-2], tokens[len(tokens)-1]
		if ok, err := tokenWorks(cur.token); !ok {
			return fmt.Errorf("the new token %s does not authenticate (%v)", cur.id, err)
		}
		if ok, err := tokenWorks(old.token); ok || err != nil {
			return fmt.Errorf("the old token %s still authenticates (%v)", old.id, err)
		}
		o, c := serverToken(account, old.id), serverToken(account, cur.id)
		if o == nil || c == nil || o.RevokedAt == nil {
			return fmt.Errorf("server has old %+v, new %+v; want the old revoked", o, c)
		}
		if !c.CreatedAt.Before(*o.RevokedAt) {
			return fmt.Errorf("the new token %s was minted at %s, after the old %s was revoked at %s", cur.id, c.CreatedAt, old.id, *o.RevokedAt)
		}
		return nil
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			for _, m := range tokens {
				if st := serverToken(account, m.id); st == nil || st.Status != "revoked" {
					return fmt.Errorf("after destroy the server has token %s %+v, want revoked", m.id, st)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: serviceAccountTokenConfig(owner, account, "1", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(tokenAddr, tfjsonpath.New("token"), knownvalue.StringRegexp(regexp.MustCompile(`^cps_`))),
					statecheck.ExpectKnownValue(tokenAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^sat_`))),
				},
				Check: resource.ComposeTestCheckFunc(capture, func(*terraform.State) error {
					if ok, err := tokenWorks(tokens[0].token); !ok {
						return fmt.Errorf("the minted token does not authenticate (%v)", err)
					}
					return nil
				}),
			},
			{
				Config: serviceAccountTokenConfig(owner, account, "1", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// A keeper changed: a new token, then the old one revoked.
				Config: serviceAccountTokenConfig(owner, account, "2", ""),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(tokenAddr, plancheck.ResourceActionCreateBeforeDestroy)},
				},
				Check: resource.ComposeTestCheckFunc(capture, rotated),
			},
			{
				// Less than rotate_when_remaining is left once ten seconds
				// have passed: the plan replaces the token the same way, and
				// the plan after the apply is empty (the new token has all
				// its lifetime).
				PreConfig: func() { time.Sleep(11 * time.Second) },
				Config:    serviceAccountTokenConfig(owner, account, "2", "  rotate_when_remaining = 3590"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(tokenAddr, plancheck.ResourceActionCreateBeforeDestroy)},
				},
				Check: resource.ComposeTestCheckFunc(capture, rotated),
			},
			{
				ResourceName:  tokenAddr,
				ImportState:   true,
				ImportStateId: "sat_01ABCDEFGHJKMNPQRSTVWXYZ00",
				ExpectError:   regexp.MustCompile(`cannot be imported`),
			},
			{
				// Revoked behind OpenTofu's back: the plan mints another.
				PreConfig: func() {
					if _, err := intelliauth.Data[intelliauth.ServiceToken](ownerClient.RevokeServiceToken(ctx, env.orgID, account, tokens[len(tokens)-1].id, nil)); err != nil {
						t.Fatal(err)
					}
				},
				Config: serviceAccountTokenConfig(owner, account, "2", "  rotate_when_remaining = 3590"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(tokenAddr, plancheck.ResourceActionCreate)},
				},
				Check: resource.ComposeTestCheckFunc(capture, func(*terraform.State) error {
					if ok, err := tokenWorks(tokens[len(tokens)-1].token); !ok || len(tokens) != 4 {
						return fmt.Errorf("%d tokens; the newest does not authenticate (%v)", len(tokens), err)
					}
					return nil
				}),
			},
		},
	})
}

// serverToken is the account's token as the server lists it, nil when it
// does not.
func serverToken(account, id string) *intelliauth.ServiceToken {
	sa, err := intelliauth.Data[intelliauth.ServiceAccount](env.owner.GetServiceAccount(context.Background(), env.orgID, account))
	if err != nil {
		return nil
	}
	for _, t := range sa.Tokens {
		if t.Id == id {
			return &t
		}
	}
	return nil
}
