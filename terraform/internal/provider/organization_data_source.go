package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newOrganizationDataSource() datasource.DataSource { return &organizationDataSource{} }

// organizationDataSource is the provider's organisation.
type organizationDataSource struct {
	data *providerData
}

type organizationModel struct {
	ID            types.String `tfsdk:"id"`
	Slug          types.String `tfsdk:"slug"`
	Name          types.String `tfsdk:"name"`
	Plan          types.String `tfsdk:"plan"`
	TenantDomain  types.String `tfsdk:"tenant_domain"`
	DefaultRegion types.String `tfsdk:"default_region"`
	State         types.String `tfsdk:"state"`
	RequireMFA    types.Bool   `tfsdk:"require_mfa"`
	CreatedAt     types.String `tfsdk:"created_at"`
}

func (d *organizationDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_organization"
}

func (d *organizationDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The organisation the provider is configured with (`organization_id`). A service account needs the `organization:read` scope.",
		Attributes: map[string]schema.Attribute{
			"id":            schema.StringAttribute{Computed: true, MarkdownDescription: "The organisation's id (`org_…`)."},
			"slug":          schema.StringAttribute{Computed: true, MarkdownDescription: "Its slug, part of every tenant's hostname."},
			"name":          schema.StringAttribute{Computed: true, MarkdownDescription: "Its display name."},
			"plan":          schema.StringAttribute{Computed: true, MarkdownDescription: "The id of its plan (see the `intelliauth_plans` data source)."},
			"tenant_domain": schema.StringAttribute{Computed: true, MarkdownDescription: "The domain its tenants are served under: a tenant is at `<name>-<slug>.<region>.<tenant_domain>`, or `<name>-<slug>.<tenant_domain>` in an installation without regions."},
			"default_region": schema.StringAttribute{Computed: true, MarkdownDescription: "The region its new tenants live in when an `intelliauth_tenant` names none " +
				"(changed by an owner or admin in the console's Settings, or `PATCH /api/v1/organizations/{org_id}`); null in an installation without regions."},
			"state":       schema.StringAttribute{Computed: true, MarkdownDescription: "`active`, or `deleting` while its deletion can still be called off."},
			"require_mfa": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether members must have a second factor to use it."},
			"created_at":  schema.StringAttribute{Computed: true, MarkdownDescription: "When it was created (RFC 3339)."},
		},
	}
}

func (d *organizationDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureDataSource(req, resp)
}

func (d *organizationDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	o, err := intelliauth.Data[intelliauth.Organization](d.data.client.GetOrganization(ctx, d.data.orgID))
	if err != nil {
		addError(&resp.Diagnostics, "Cannot read organization "+d.data.orgID, err)
		return
	}
	m := organizationModel{
		ID:            types.StringValue(o.Id),
		Slug:          types.StringValue(o.Slug),
		Name:          types.StringValue(o.Name),
		Plan:          types.StringValue(o.Plan),
		TenantDomain:  types.StringValue(o.TenantDomain),
		DefaultRegion: types.StringPointerValue(o.DefaultRegion),
		State:         types.StringValue(string(o.State)),
		RequireMFA:    types.BoolValue(o.RequireMfa),
		CreatedAt:     types.StringValue(o.CreatedAt.UTC().Format(time.RFC3339Nano)),
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
