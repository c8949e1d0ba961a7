package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// TestProviderConfigurationIsValidated: each setting's mistake is named
// before any request is made.
func TestProviderConfigurationIsValidated(t *testing.T) {
	cases := []struct {
		name, provider string
		unset          string
		want           string
	}{
		{"endpoint not a URL", `endpoint = "ftp://example.com"`, "", `Invalid endpoint`},
		{"endpoint with the API path", `endpoint = "http://127.0.0.1:1/api/v1"`, "", `without /api/v1`},
		{"no token", ``, EnvToken, `(?s)Missing token.*INTELLIAUTH_TOKEN`},
		{"no endpoint", ``, EnvEndpoint, `(?s)Missing endpoint.*INTELLIAUTH_ENDPOINT`},
		{"a slug for the organisation", `organization_id = "acme"`, "", `(?s)Invalid organization_id.*slug`},
		{"no organisation", ``, EnvOrganizationID, `(?s)Missing organization_id.*INTELLIAUTH_ORGANIZATION_ID`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.unset != "" {
				t.Setenv(c.unset, "")
			}
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6ProviderFactories,
				Steps: []resource.TestStep{{
					Config:      providerBlock + "provider \"intelliauth\" {\n  " + c.provider + "\n}\ndata \"intelliauth_organization\" \"this\" {}\n",
					ExpectError: regexp.MustCompile(c.want),
				}},
			})
		})
	}
}

// TestWrongTokenIsReportedByTheServer: a token the server does not know is
// its 401, with the request id.
func TestWrongTokenIsReportedByTheServer(t *testing.T) {
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6ProviderFactories,
		Steps: []resource.TestStep{{
			Config:      providerBlock + "provider \"intelliauth\" {\n  token = \"cps_not-a-token\"\n}\ndata \"intelliauth_organization\" \"this\" {}\n",
			ExpectError: regexp.MustCompile(`(?s)401.*request id`),
		}},
	})
}
