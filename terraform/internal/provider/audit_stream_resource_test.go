package provider

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

const streamAddr = "intelliauth_audit_stream.test"

// The receivers' hosts are under .invalid, which never resolves (RFC
// 2606): the server accepts a host that does not resolve yet, and its
// deliveries fail without reaching anyone.
func streamConfig(token, body string) string {
	return providerWith(token) + "\nresource \"intelliauth_audit_stream\" \"test\" {\n" + body + "\n}\n"
}

func httpsStreamBody(name, host, actions string, paused bool) string {
	return fmt.Sprintf(`  name     = %q
  kind     = "https"
  endpoint = "https://%s/ingest"
  format   = "cloudevents"
  actions  = [%s]
  paused   = %t`, name, host, actions, paused)
}

// streamManager makes a service account that may manage audit streams (the
// scope, an admin's role, no environments) and returns its token.
func streamManager(t *testing.T) string {
	t.Helper()
	_, ownerClient := freshOwner(t)
	created, err := intelliauth.Data[intelliauth.CreatedServiceAccount](ownerClient.CreateServiceAccount(context.Background(), env.orgID, nil,
		intelliauth.CreateServiceAccountRequest{Name: uniqueName("tf-streams"), Role: "admin",
			Scopes: []intelliauth.Scope{"audit-streams:manage"}, TokenExpiresIn: 3600}))
	if err != nil {
		t.Fatal(err)
	}
	return created.Token
}

// checkStream checks the stream as the server has it.
func checkStream(id *string, check func(intelliauth.Stream) error) resource.TestCheckFunc {
	return func(*terraform.State) error {
		st, err := intelliauth.Data[intelliauth.Stream](env.owner.GetAuditStream(context.Background(), env.orgID, *id))
		if err != nil {
			return err
		}
		return check(st)
	}
}

func checkStreamDeleted(id *string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		_, err := intelliauth.Data[intelliauth.Stream](env.owner.GetAuditStream(context.Background(), env.orgID, *id))
		if !isStatus(err, 404) {
			return fmt.Errorf("after destroy, GET audit stream %s answered %v, want 404", *id, err)
		}
		return nil
	}
}

// TestAuditStreamHTTPS manages a signed webhook stream with a service
// account's token: create, a second apply that changes nothing, a change
// of everything that changes in place (and a pause), import, a resume made
// outside OpenTofu set back, and the destroy.
func TestAuditStreamHTTPS(t *testing.T) {
	token := streamManager(t)
	name, host := uniqueName("tf-stream"), uniqueName("receiver")+".invalid"
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkStreamDeleted(&id),
		Steps: []resource.TestStep{
			{
				Config: streamConfig(token, httpsStreamBody(name, host, `"tenant.*"`, false)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("id"), knownvalue.StringRegexp(regexp.MustCompile(`^ast_`))),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("signing_secret"), knownvalue.StringRegexp(regexp.MustCompile(`^cpw_`))),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("has_credential"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("paused"), knownvalue.Bool(false)),
				},
				Check: resource.ComposeTestCheckFunc(
					stateAttr(streamAddr, "id", &id),
					checkStream(&id, func(st intelliauth.Stream) error {
						if st.Name != name || st.Kind != "https" || st.Endpoint != "https://"+host+"/ingest" || st.Format == nil || *st.Format != "cloudevents" ||
							!slices.Equal(st.Actions, []string{"tenant.*"}) || st.Status == "paused" {
							return fmt.Errorf("server has %+v", st)
						}
						return nil
					}),
				),
			},
			{
				Config: streamConfig(token, httpsStreamBody(name, host, `"tenant.*"`, false)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config: streamConfig(token, httpsStreamBody(name+"-2", "2-"+host, `"tenant.*", "service_account.*"`, true)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(streamAddr, plancheck.ResourceActionUpdate)},
				},
				Check: checkStream(&id, func(st intelliauth.Stream) error {
					if st.Name != name+"-2" || st.Endpoint != "https://2-"+host+"/ingest" || st.Status != "paused" ||
						!slices.Equal(sorted(st.Actions), []string{"service_account.*", "tenant.*"}) {
						return fmt.Errorf("server has %+v", st)
					}
					return nil
				}),
			},
			{
				ResourceName:            streamAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"signing_secret", "status"},
			},
			{
				// Resumed behind OpenTofu's back: the plan shows it and the
				// apply pauses the stream again.
				PreConfig: func() {
					if _, err := intelliauth.Data[intelliauth.Stream](env.owner.UpdateAuditStream(context.Background(), env.orgID, id, nil,
						intelliauth.UpdateStreamRequest{Paused: ptr(false)})); err != nil {
						t.Fatal(err)
					}
				},
				Config: streamConfig(token, httpsStreamBody(name+"-2", "2-"+host, `"tenant.*", "service_account.*"`, true)),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{
						plancheck.ExpectResourceAction(streamAddr, plancheck.ResourceActionUpdate),
						plancheck.ExpectKnownValue(streamAddr, tfjsonpath.New("paused"), knownvalue.Bool(true)),
					},
				},
				Check: checkStream(&id, func(st intelliauth.Stream) error {
					if st.Status != "paused" {
						return fmt.Errorf("server has the stream %s, want paused", st.Status)
					}
					return nil
				}),
			},
		},
	})
}

// TestAuditStreamSplunkCredential manages a Splunk HEC stream with a
// member's token: its credential is kept from the configuration (the API
// never shows it), changing it is an update in place, and a stream deleted
// outside OpenTofu is planned again.
func TestAuditStreamSplunkCredential(t *testing.T) {
	owner, _ := freshOwner(t)
	name, host := uniqueName("tf-splunk"), uniqueName("splunk")+".invalid"
	body := func(credential string) string {
		return fmt.Sprintf(`  name       = %q
  kind       = "splunk_hec"
  endpoint   = "https://%s/services/collector/event"
  credential = %q`, name, host, credential)
	}
	var id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		CheckDestroy:             checkStreamDeleted(&id),
		Steps: []resource.TestStep{
			{
				Config: streamConfig(owner, body("hec-token-one")),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("has_credential"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("format"), knownvalue.Null()),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("signing_secret"), knownvalue.Null()),
					statecheck.ExpectKnownValue(streamAddr, tfjsonpath.New("credential"), knownvalue.StringExact("hec-token-one")),
				},
				Check: stateAttr(streamAddr, "id", &id),
			},
			{
				Config: streamConfig(owner, body("hec-token-one")),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
			},
			{
				Config: streamConfig(owner, body("hec-token-two")),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction(streamAddr, plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttrPtr(streamAddr, "id", &id),
					checkStream(&id, func(st intelliauth.Stream) error {
						if !st.HasCredential {
							return fmt.Errorf("server has no credential for %s", st.Id)
						}
						return nil
					}),
				),
			},
			{
				ResourceName:            streamAddr,
				ImportState:             true,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"credential", "status"},
			},
			{
				// Deleted behind OpenTofu's back: the plan creates it again.
				PreConfig: func() {
					if _, err := intelliauth.Data[intelliauth.Stream](env.owner.DeleteAuditStream(context.Background(), env.orgID, id, nil)); err != nil {
						t.Fatal(err)
					}
				},
				Config:             streamConfig(owner, body("hec-token-two")),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
		},
	})
}

// TestAuditStreamConfigurationIsCheckedBeforeAnyRequest: a credential for
// an https stream, or none for Datadog, is refused at plan time.
func TestAuditStreamConfigurationIsCheckedBeforeAnyRequest(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{
			{
				Config: streamConfig(env.ownerToken, `  name = "x"
  kind = "https"
  endpoint = "https://receiver.invalid/"
  credential = "nope"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`No credential for an https stream`),
			},
			{
				Config: streamConfig(env.ownerToken, `  name = "x"
  kind = "datadog"
  endpoint = "https://http-intake.logs.invalid/api/v2/logs"`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Missing credential`),
			},
		},
	})
}
