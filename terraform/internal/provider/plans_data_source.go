package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newPlansDataSource() datasource.DataSource { return &plansDataSource{} }

// plansDataSource lists the plans an organisation can be on.
type plansDataSource struct {
	data *providerData
}

type plansModel struct {
	Plans []planModel `tfsdk:"plans"`
}

type planModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	MaxTenants         types.Int64  `tfsdk:"max_tenants"`
	MaxMembers         types.Int64  `tfsdk:"max_members"`
	MaxServiceAccounts types.Int64  `tfsdk:"max_service_accounts"`
	RequestsPerMinute  types.Int64  `tfsdk:"requests_per_minute"`
	AuditRetentionDays types.Int64  `tfsdk:"audit_retention_days"`
}

func (d *plansDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_plans"
}

func (d *plansDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Every plan of the control plane and its limits. Needs a member's token: service accounts cannot list plans.",
		Attributes: map[string]schema.Attribute{
			"plans": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The plans, in the server's order.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":                   schema.StringAttribute{Computed: true, MarkdownDescription: "The plan's id (an organisation's `plan`)."},
					"name":                 schema.StringAttribute{Computed: true, MarkdownDescription: "Its display name."},
					"max_tenants":          schema.Int64Attribute{Computed: true, MarkdownDescription: "Tenants an organisation may have that are not failed or decommissioned."},
					"max_members":          schema.Int64Attribute{Computed: true, MarkdownDescription: "Members an organisation may have, its pending invitations included."},
					"max_service_accounts": schema.Int64Attribute{Computed: true, MarkdownDescription: "Service accounts an organisation may have."},
					"requests_per_minute":  schema.Int64Attribute{Computed: true, MarkdownDescription: "The organisation's API budget per minute."},
					"audit_retention_days": schema.Int64Attribute{Computed: true, MarkdownDescription: "How long its audit events are kept."},
				}},
			},
		},
	}
}

func (d *plansDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = configureDataSource(req, resp)
}

func (d *plansDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	page, err := intelliauth.List[intelliauth.Plan](d.data.client.ListPlans(ctx))
	if err != nil {
		addError(&resp.Diagnostics, "Cannot list plans", err)
		return
	}
	m := plansModel{Plans: make([]planModel, 0, len(page.Items))}
	for _, p := range page.Items {
		m.Plans = append(m.Plans, planModel{
			ID: types.StringValue(p.Id), Name: types.StringValue(p.Name),
			MaxTenants: types.Int64Value(int64(p.MaxTenants)), MaxMembers: types.Int64Value(int64(p.MaxMembers)),
			MaxServiceAccounts: types.Int64Value(int64(p.MaxServiceAccounts)), RequestsPerMinute: types.Int64Value(int64(p.RequestsPerMinute)),
			AuditRetentionDays: types.Int64Value(int64(p.AuditRetentionDays)),
		})
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
