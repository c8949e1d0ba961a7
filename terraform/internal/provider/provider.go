// Package provider is the IntelliAuth provider: its configuration, its
// resources and its data sources, each in a file of its own.
package provider

import (
	"context"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// Address is the provider's source address in the registry.
const Address = "registry.terraform.io/intelliauth/intelliauth"

// The environment variables each provider setting falls back to.
const (
	EnvEndpoint       = "INTELLIAUTH_ENDPOINT"
	EnvToken          = "INTELLIAUTH_TOKEN"
	EnvOrganizationID = "INTELLIAUTH_ORGANIZATION_ID"
)

// organizationIDPattern is the form of an organisation id (org_ and a
// ULID-like body), checked before any request so a typo is named as such.
var organizationIDPattern = regexp.MustCompile(`^org_[0-9A-HJKMNP-TV-Z]{26}$`)

// New returns the provider factory for a version.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &intelliauthProvider{version: version} }
}

type intelliauthProvider struct {
	version string
}

// Resources and DataSources list what the provider serves: one
// constructor per file, added here.
func (p *intelliauthProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newTenantResource,
		newServiceAccountResource,
		newServiceAccountTokenResource,
		newInvitationResource,
		newMemberResource,
		newAuditStreamResource,
	}
}

func (p *intelliauthProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newOrganizationDataSource,
		newPlansDataSource,
		newTenantsDataSource,
	}
}

type providerModel struct {
	Endpoint       types.String `tfsdk:"endpoint"`
	Token          types.String `tfsdk:"token"`
	OrganizationID types.String `tfsdk:"organization_id"`
}

func (p *intelliauthProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "intelliauth"
	resp.Version = p.version
}

func (p *intelliauthProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages an organisation on the IntelliAuth control plane through its public API (`/api/v1`): " +
			"its tenants, service accounts and their tokens, invitations, members' roles and audit streams.\n\n" +
			"The token is a member's session token or, for automation, a service account's token (`cps_…`). " +
			"A member's session may decommission a tenant or set its lifetime only within the server's reauthentication window " +
			"(`CP_REAUTH_WINDOW`, 10 minutes after signing in by default); a service account is not asked, so it is the credential for pipelines. " +
			"A service account needs the scopes of what the configuration does: `organization:read` for the organization data source, " +
			"`tenants:read` and `tenants:create` for tenants, `tenants:suspend` and `tenants:resume` to change `state`, " +
			"`tenants:decommission` to destroy a tenant or give it `expires_in`, `tenants:restore` to bring back one being decommissioned. " +
			"The plans data source needs a member's token: service accounts cannot list plans. " +
			"Service accounts, their tokens, invitations and members are managed with a member's token only, and creating a service account, " +
			"minting a token and inviting or granting an owner need a recent authentication too; audit streams take a service account " +
			"with `audit-streams:manage` (admin or owner, every environment) as well.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "The control plane's base URL, e.g. `https://controlplane.example.com` (no `/api/v1`). Falls back to `" + EnvEndpoint + "`.",
			},
			"token": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "A member's session token or a service account's token (`cps_…`). Falls back to `" + EnvToken + "`.",
			},
			"organization_id": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "The organisation (`org_…`) whose resources this provider manages. Falls back to `" + EnvOrganizationID + "`.",
			},
		},
	}
}

// providerData is what resources and data sources get from a configured
// provider.
type providerData struct {
	client *intelliauth.Client
	orgID  string
}

func (p *intelliauthProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// A value not known yet (from another resource) cannot configure a
	// client: the plan is made again once it is.
	for name, v := range map[string]types.String{"endpoint": cfg.Endpoint, "token": cfg.Token, "organization_id": cfg.OrganizationID} {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(name), "Unknown "+name,
				"The provider's "+name+" is not known until another resource is applied; give it a value known at plan time.")
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}
	endpoint := setting(cfg.Endpoint, EnvEndpoint)
	token := setting(cfg.Token, EnvToken)
	orgID := setting(cfg.OrganizationID, EnvOrganizationID)

	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing endpoint",
			"Set the provider's endpoint, or "+EnvEndpoint+", to the control plane's base URL (e.g. https://controlplane.example.com).")
	} else if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid endpoint",
			"The endpoint "+endpoint+" is not an http:// or https:// URL with a host.")
	} else if strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/api/v1") {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid endpoint",
			"The endpoint is the server's base URL, without /api/v1: "+strings.TrimSuffix(strings.TrimSuffix(endpoint, "/"), "/api/v1"))
	}
	if token == "" {
		resp.Diagnostics.AddAttributeError(path.Root("token"), "Missing token",
			"Set the provider's token, or "+EnvToken+", to a member's session token or a service account's token (cps_…).")
	}
	if orgID == "" {
		resp.Diagnostics.AddAttributeError(path.Root("organization_id"), "Missing organization_id",
			"Set the provider's organization_id, or "+EnvOrganizationID+", to the organisation's id (org_…).")
	} else if !organizationIDPattern.MatchString(orgID) {
		resp.Diagnostics.AddAttributeError(path.Root("organization_id"), "Invalid organization_id",
			"The organization_id "+orgID+" is not an organisation id: it looks like org_ followed by letters and digits. "+
				"(The organisation's slug is not its id; GET /api/v1/organizations lists both.)")
	}
	if resp.Diagnostics.HasError() {
		return
	}

	client, err := intelliauth.New(strings.TrimSuffix(endpoint, "/"),
		intelliauth.WithToken(token),
		intelliauth.WithUserAgent("terraform-provider-intelliauth/"+p.version),
		intelliauth.WithRetry(5, 30*time.Second))
	if err != nil {
		resp.Diagnostics.AddError("Cannot create the IntelliAuth client", err.Error())
		return
	}
	data := &providerData{client: client, orgID: orgID}
	resp.ResourceData = data
	resp.DataSourceData = data
}

// setting is a provider attribute's value, or its environment variable's
// when the configuration leaves it out.
func setting(v types.String, env string) string {
	if !v.IsNull() && !v.IsUnknown() {
		return v.ValueString()
	}
	return os.Getenv(env)
}
