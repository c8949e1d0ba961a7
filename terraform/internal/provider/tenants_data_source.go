package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newTenantsDataSource() datasource.DataSource { return &tenantsDataSource{} }

// tenantsDataSource lists the organisation's tenants.
type tenantsDataSource struct {
	data *providerData
}

type tenantsModel struct {
	Environment types.String         `tfsdk:"environment"`
	State       types.String         `tfsdk:"state"`
	Tenants     []tenantSummaryModel `tfsdk:"tenants"`
}

type tenantSummaryModel struct {
	ID          types.String `tfsdk:"id"`
	Name        types.String `tfsdk:"name"`
	Environment types.String `tfsdk:"environment"`
	Region      types.String `tfsdk:"region"`
	State       types.String `tfsdk:"state"`
	Hostname    types.String `tfsdk:"hostname"`
	AdminURL    types.String `tfsdk:"admin_url"`
	CreatedAt   types.String `tfsdk:"created_at"`
	ExpiresAt   types.String `tfsdk:"expires_at"`
}

// tenantStates are the states a tenant can be in, as the list filters them.
var tenantStates = []string{"provisioning", "active", "suspended", "decommissioning", "decommissioned", "failed"}

func (d *tenantsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tenants"
}

func (d *tenantsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The organisation's tenants, oldest first, optionally only those of an environment or in a state. " +
			"A service account sees only the tenants of its environments and regions.",
		Attributes: map[string]schema.Attribute{
			"environment": schema.StringAttribute{Optional: true, MarkdownDescription: "Only the tenants of this environment."},
			"state": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Only the tenants in this state: `provisioning`, `active`, `suspended`, `decommissioning`, `decommissioned` or `failed`.",
				Validators:          []validator.String{stringvalidator.OneOf(tenantStates...)}},
			"tenants": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The tenants.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":          schema.StringAttribute{Computed: true, MarkdownDescription: "The tenant's id (`tnt_…`)."},
					"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "Its name."},
					"environment": schema.StringAttribute{Computed: true, MarkdownDescription: "Its environment."},
					"region":      schema.StringAttribute{Computed: true, MarkdownDescription: "Its region; null in an installation without regions."},
					"state":       schema.StringAttribute{Computed: true, MarkdownDescription: "Its state."},
					"hostname":    schema.StringAttribute{Computed: true, MarkdownDescription: "Where it is served."},
					"admin_url":   schema.StringAttribute{Computed: true, MarkdownDescription: "Its admin console."},
					"created_at":  schema.StringAttribute{Computed: true, MarkdownDescription: "When it was created (RFC 3339)."},
					"expires_at":  schema.StringAttribute{Computed: true, MarkdownDescription: "When an ephemeral tenant ends (RFC 3339); null otherwise."},
				}},
			},
		},
	}
}

func (d *tenantsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureDataSource(req, resp)
}

func (d *tenantsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m tenantsModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	var state *intelliauth.ListTenantsParamsState
	if !m.State.IsNull() {
		s := intelliauth.ListTenantsParamsState(m.State.ValueString())
		state = &s
	}
	m.Tenants = []tenantSummaryModel{}
	for t, err := range intelliauth.All[intelliauth.Tenant](ctx, tenantLister(d.data, state)) {
		if err != nil {
			addError(&resp.Diagnostics, "Cannot list tenants", err)
			return
		}
		if !m.Environment.IsNull() && t.Environment != m.Environment.ValueString() {
			continue
		}
		s := tenantSummaryModel{
			ID: types.StringValue(t.Id), Name: types.StringValue(t.Name), Environment: types.StringValue(t.Environment),
			Region: types.StringPointerValue(t.Region), State: types.StringValue(string(t.State)), Hostname: types.StringValue(t.Hostname), AdminURL: types.StringValue(t.AdminUrl),
			CreatedAt: types.StringValue(t.CreatedAt.UTC().Format(time.RFC3339Nano)), ExpiresAt: types.StringNull(),
		}
		if t.ExpiresAt != nil {
			s.ExpiresAt = types.StringValue(t.ExpiresAt.UTC().Format(time.RFC3339Nano))
		}
		m.Tenants = append(m.Tenants, s)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
