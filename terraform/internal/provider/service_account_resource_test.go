package provider

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

const serviceAccountAddr = "intelliauth_service_account.test"

func serviceAccountConfig(token, name, role string, scopes, environments []string, tokenExpiresIn int) string {
	return providerWith(token) + fmt.Sprintf(`
resource "intelliauth_service_account" "test" {
  name             = %q
  role             = %q
  scopes           = [%s]
  environments     = [%s]
  token_expires_in = %d
}
`, name, role, hclStrings(scopes), hclStrings(environments), tokenExpiresIn)
}

func hclStrings(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}

// TestServiceAccountLifecycle creates a service account with a member's
// token (service accounts cannot manage them), uses the token its creation
// minted, changes it in place, imports it, sets back a change made outside
// OpenTofu, and deletes it: its token stops working.
func TestServiceAccountLifecycle(t *testing.T) {
	owner, ownerClient := freshOwner(t)
	name := uniqueName("tf-sa")
	var id, token, tokenID string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			_, err := intelliauth.Data[intelliauth.ServiceAccount](env.owner.GetServiceAccount(context.Background(), env.orgID, id))
			if !isStatus(err, 404) {
				return fmt.Errorf("after destroy, GET service account %s answered %v, want 404", id, err)
			}
			if ok, err := tokenWorks(token); ok || err != nil {
				return fmt.Errorf("the deleted account's token still authenticates (%v)", err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: serviceAccountConfig(owner, name, "admin", []string{"tenants:read", "organization:read"}, nil, 3600),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^sa_`))),
					statecheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("token"), knownvalue.StringRegexp(regexp.MustCompile(`^cps_`))),
					statecheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("token_id"), knownvalue.StringRegexp(regexp.MustCompile(`^sat_`))),
					statecheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("environments"), knownvalue.SetExact(nil)),
					statecheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("regions"), knownvalue.SetExact(nil)),
				},
				Check: resource.ComposeTestCheckFunc(
					stateAttr(serviceAccountAddr, "id", &id),
					stateAttr(serviceAccountAddr, "token", &token),
					stateAttr(serviceAccountAddr, "token_id", &tokenID),
					func(*terraform.State) error {
						if ok, err := tokenWorks(token); !ok {
							return fmt.Errorf("the minted token does not authenticate (%v)", err)
						}
						return checkServiceAccount(id, func(sa intelliauth.ServiceAccount) error {
							if sa.Name != name || sa.Role != "admin" || len(sa.Environments) != 0 ||
								!slices.Equal(sorted(scopeStrings(sa.Scopes)), []string{"organization:read", "tenants:read"}) {
								return fmt.Errorf("server has %s %s %v %v", sa.Name, sa.Role, sa.Environments, sa.Scopes)
							}
							if len(sa.Tokens) != 1 || sa.Tokens[0].Id != tokenID {
								return fmt.Errorf("server has tokens %+v, want the one minted, %s", sa.Tokens, tokenID)
							}
							return nil
						})
					},
				),
			},
			{
				// The same configuration again: nothing to do.
				Config: serviceAccountConfig(owner, name, "admin", []string{"organization:read", "tenants:read"}, nil, 3600),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				// Changed in place: name, role, scopes, environments; a new
				// token_expires_in is only recorded.
				Config: serviceAccountConfig(owner, name+"-ci", "developer", []string{"tenants:read", "tenants:create"}, []string{"ci", "staging"}, 7200),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(serviceAccountAddr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrPtr(serviceAccountAddr, "id", &id),
					resource.TestCheckResourceAttrPtr(serviceAccountAddr, "token", &token),
					func(*terraform.State) error {
						return checkServiceAccount(id, func(sa intelliauth.ServiceAccount) error {
							if sa.Name != name+"-ci" || sa.Role != "developer" || !slices.Equal(sorted(sa.Environments), []string{"ci", "staging"}) ||
								!slices.Equal(sorted(scopeStrings(sa.Scopes)), []string{"tenants:create", "tenants:read"}) {
								return fmt.Errorf("server has %s %s %v %v", sa.Name, sa.Role, sa.Environments, sa.Scopes)
							}
							if len(sa.Tokens) != 1 {
								return fmt.Errorf("server has %d tokens, want the first one only", len(sa.Tokens))
							}
							return nil
						})
					},
				),
			},
			{
				ResourceName:            serviceAccountAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"token", "token_id", "token_expires_at", "token_expires_in"},
			},
			{
				// Renamed and given a role behind OpenTofu's back: the plan
				// shows it and the apply sets both back.
				PreConfig: func() {
					n, role := "renamed-elsewhere", intelliauth.Role("viewer")
					if _, err := intelliauth.Data[intelliauth.ServiceAccount](ownerClient.UpdateServiceAccount(context.Background(), env.orgID, id, nil,
						intelliauth.UpdateServiceAccountRequest{Name: &n, Role: &role})); err != nil {
						t.Fatal(err)
					}
				},
				Config: serviceAccountConfig(owner, name+"-ci", "developer", []string{"tenants:read", "tenants:create"}, []string{"ci", "staging"}, 7200),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(serviceAccountAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(serviceAccountAddr, tfjsonpath.New("name"), knownvalue.StringExact(name+"-ci")),
					},
				},
				Check: func(*terraform.State) error {
					return checkServiceAccount(id, func(sa intelliauth.ServiceAccount) error {
						if sa.Name != name+"-ci" || sa.Role != "developer" {
							return fmt.Errorf("server has %s %s, want %s-ci developer", sa.Name, sa.Role, name)
						}
						return nil
					})
				},
			},
		},
	})
}

// TestServiceAccountNeedsAMembersToken: a service account's token is told
// that service accounts are managed with a member's token.
func TestServiceAccountNeedsAMembersToken(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      serviceAccountConfig(env.serviceToken, uniqueName("tf-sa-by-sa"), "viewer", []string{"organization:read"}, nil, 600),
			ExpectError: regexp.MustCompile(`(?s)service accounts cannot use.*member's\s+session\s+token`),
		}},
	})
}

// TestReauthenticationRequiredSaysWhatToDo is a unit test of the
// diagnostic for 403 REAUTHENTICATION_REQUIRED: an acceptance test would
// have to wait out the server's ten-minute window.
func TestReauthenticationRequiredSaysWhatToDo(t *testing.T) {
	var diags diag.Diagnostics
	addCallError(&diags, "Cannot create service account x", &intelliauth.APIError{StatusCode: 403, Code: "REAUTHENTICATION_REQUIRED",
		Message: "reauthenticate to do this"}, serviceAccountCreateNote)
	if !diags.HasError() {
		t.Fatal("no error")
	}
	detail := diags.Errors()[0].Detail()
	for _, want := range []string{"REAUTHENTICATION_REQUIRED", serviceAccountCreateNote, "POST /api/v1/auth/reauthenticate", "CP_REAUTH_WINDOW"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the diagnostic does not say %q:\n%s", want, detail)
		}
	}
}

func checkServiceAccount(id string, check func(intelliauth.ServiceAccount) error) error {
	sa, err := intelliauth.Data[intelliauth.ServiceAccount](env.owner.GetServiceAccount(context.Background(), env.orgID, id))
	if err != nil {
		return err
	}
	return check(sa)
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestServiceAccountAdoptsWhatAStoppedApplyCreated sends the creation an
// apply of the configuration sends, as a run stopped after the server
// answered would have left it, then applies: the apply adopts that
// account, replaces its first token (whose secret only the stopped run
// saw) and makes no second account. Destroyed and applied again, the
// configuration makes a new account: the earlier key's answer names a
// deleted one.
func TestServiceAccountAdoptsWhatAStoppedApplyCreated(t *testing.T) {
	owner, ownerClient := freshOwner(t)
	name := uniqueName("tf-sa-adopt")
	key := generationKey("sa-create", 0, env.orgID, name, "viewer", "", "organization:read", "600")
	stopped, err := intelliauth.Data[intelliauth.CreatedServiceAccount](ownerClient.CreateServiceAccount(context.Background(), env.orgID, nil,
		intelliauth.CreateServiceAccountRequest{Name: name, Role: "viewer", Environments: &[]string{}, Scopes: []intelliauth.Scope{"organization:read"}, TokenExpiresIn: 600},
		intelliauth.WithIdempotencyKey(key)))
	if err != nil {
		t.Fatal(err)
	}
	config := serviceAccountConfig(owner, name, "viewer", []string{"organization:read"}, nil, 600)
	var token, second string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy: func(*terraform.State) error {
			_, err := intelliauth.Data[intelliauth.ServiceAccount](env.owner.GetServiceAccount(context.Background(), env.orgID, second))
			if !isStatus(err, 404) {
				return fmt.Errorf("after destroy, GET service account %s answered %v, want 404", second, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr(serviceAccountAddr, "id", stopped.ServiceAccount.Id),
					stateAttr(serviceAccountAddr, "token", &token),
					func(*terraform.State) error {
						if ok, err := tokenWorks(token); !ok {
							return fmt.Errorf("the replacement token does not authenticate (%v)", err)
						}
						if ok, err := tokenWorks(stopped.Token); ok || err != nil {
							return fmt.Errorf("the stopped run's token still authenticates (%v)", err)
						}
						if n := serviceAccountsNamed(t, name); n != 1 {
							return fmt.Errorf("%d service accounts named %s, want the one adopted", n, name)
						}
						return nil
					},
				),
			},
			{Config: config, Destroy: true},
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					stateAttr(serviceAccountAddr, "id", &second),
					func(*terraform.State) error {
						if second == stopped.ServiceAccount.Id {
							return fmt.Errorf("the deleted account %s came back", second)
						}
						return nil
					},
				),
			},
		},
	})
}

// serviceAccountsNamed counts the organisation's live service accounts
// with the name.
func serviceAccountsNamed(t *testing.T, name string) int {
	t.Helper()
	fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
		return env.owner.ListServiceAccounts(ctx, env.orgID, &intelliauth.ListServiceAccountsParams{Cursor: intelliauth.Cursor(cursor)})
	}
	n := 0
	for sa, err := range intelliauth.All[intelliauth.ServiceAccount](context.Background(), fetch) {
		if err != nil {
			t.Fatal(err)
		}
		if sa.Name == name {
			n++
		}
	}
	return n
}
