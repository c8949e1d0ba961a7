package provider

import (
	"context"
	"net/http"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newMemberResource() resource.Resource { return &memberResource{} }

type memberResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure   = (*memberResource)(nil)
	_ resource.ResourceWithImportState = (*memberResource)(nil)
)

type memberModel struct {
	ID              types.String `tfsdk:"id"`
	MemberID        types.String `tfsdk:"member_id"`
	Email           types.String `tfsdk:"email"`
	Role            types.String `tfsdk:"role"`
	RemoveOnDestroy types.Bool   `tfsdk:"remove_on_destroy"`
	UserID          types.String `tfsdk:"user_id"`
	Name            types.String `tfsdk:"name"`
	CreatedAt       types.String `tfsdk:"created_at"`
}

const grantOwnerNote = "Granting the owner role needs a recent authentication."

func (r *memberResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_member"
}

func (r *memberResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	identify := []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The role of an existing member of the organisation. People become members by accepting an invitation " +
			"(`intelliauth_invitation`); this resource does not add anyone. Creating it takes the member over, found by `member_id` or by `email`, " +
			"and gives them `role`; changing `role` changes theirs.\n\n" +
			"**Destroy** forgets the member and leaves them in the organisation with their role, unless `remove_on_destroy = true`: " +
			"then the destroy removes them from the organisation (their sessions in it end; their own account stays). " +
			"Only owners may change an owner's role or remove an owner, and the last owner keeps the role and cannot be removed.\n\n" +
			"**Token**: a member's session token only; service accounts may read members (scope `members:read`) but not change them. " +
			"Granting the owner role needs a recent authentication (within `CP_REAUTH_WINDOW` of signing in).\n\n" +
			"**Drift**: a role changed outside this configuration shows as a change of `role`, and the apply sets it back. A member who left or was " +
			"removed is gone from the state at the next refresh; the plan then takes them over again, which fails until they are a member again.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The member's id (`mem_…`), as `member_id`.",
				PlanModifiers:       keep,
			},
			"member_id": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The member (`mem_…`), as GET /api/v1/organizations/{org_id}/members lists them. Give this or `email`. " +
					"Changing it replaces the resource (the destroy of the old one follows `remove_on_destroy`).",
				PlanModifiers: identify,
				Validators: []validator.String{
					stringvalidator.ExactlyOneOf(path.MatchRoot("member_id"), path.MatchRoot("email")),
					stringvalidator.RegexMatches(prefixed("mem_"), "must be a member id (mem_…)"),
				},
			},
			"email": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				MarkdownDescription: "The member's email address, in lower case: the member is found by it when `member_id` is not given.",
				PlanModifiers:       identify,
				Validators:          []validator.String{stringvalidator.RegexMatches(lowerASCIIEmail, "must be one email address in lower case, ASCII only")},
			},
			"role": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`owner`, `admin`, `developer` or `viewer`. Changed in place.",
				Validators:          []validator.String{stringvalidator.OneOf(roles...)},
			},
			"remove_on_destroy": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Whether destroying the resource removes the member from the organisation. `false` (the default): the destroy forgets them " +
					"and they keep their role.",
			},
			"user_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The member's user account (`usr_…`).",
				PlanModifiers:       keep,
			},
			"name": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The member's name, as they set it.",
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When they joined (RFC 3339).",
				PlanModifiers:       keep,
			},
		},
	}
}

func (r *memberResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if d := configureResource(req, resp); d != nil {
		r.data = d
	}
}

func (r *memberResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, "mem_") {
		resp.Diagnostics.AddError("Invalid member id",
			"A member is imported by their id (mem_…), which GET /api/v1/organizations/{org_id}/members lists; got "+req.ID)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// findMember finds a member of the organisation by id or, when id is
// empty, by email (the API lists members; it has no route for one).
func findMember(ctx context.Context, d *providerData, id, email string) (intelliauth.Member, bool, error) {
	fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
		return d.client.ListMembers(ctx, d.orgID, &intelliauth.ListMembersParams{Cursor: intelliauth.Cursor(cursor)})
	}
	for m, err := range intelliauth.All[intelliauth.Member](ctx, fetch) {
		if err != nil {
			return m, false, err
		}
		if (id != "" && m.Id == id) || (id == "" && strings.EqualFold(m.Email, email)) {
			return m, true, nil
		}
	}
	return intelliauth.Member{}, false, nil
}

func (r *memberResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan memberModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, email := "", plan.Email.ValueString()
	if !plan.MemberID.IsNull() && !plan.MemberID.IsUnknown() {
		id = plan.MemberID.ValueString()
	}
	who := id
	if who == "" {
		who = email
	}
	m, found, err := findMember(ctx, r.data, id, email)
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read the members", err, "")
		return
	}
	if !found {
		resp.Diagnostics.AddError("No member "+who,
			"The organisation has no member "+who+". People join by accepting an invitation (intelliauth_invitation); this resource manages the role of one who has.")
		return
	}
	if m, err = r.setRole(ctx, m, plan.Role.ValueString()); err != nil {
		addCallError(&resp.Diagnostics, "Cannot give member "+who+" the role "+plan.Role.ValueString(), err, grantOwnerNote)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, memberState(m, plan.RemoveOnDestroy))...)
}

// setRole gives the member the role unless they have it. The key is the
// member as last read and the role: a re-run that finds the member
// unchanged asks again with the same key.
func (r *memberResource) setRole(ctx context.Context, m intelliauth.Member, role string) (intelliauth.Member, error) {
	if string(m.Role) == role {
		return m, nil
	}
	key := derivedKey("member-role", r.data.orgID, m.Id, role, m.UpdatedAt.UTC().String())
	return intelliauth.Data[intelliauth.Member](r.data.client.ChangeMemberRole(ctx, r.data.orgID, m.Id, nil,
		intelliauth.ChangeRoleRequest{Role: intelliauth.Role(role)}, intelliauth.WithIdempotencyKey(key)))
}

func (r *memberResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var st memberModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	m, found, err := findMember(ctx, r.data, st.ID.ValueString(), "")
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read member "+st.ID.ValueString(), err, "")
		return
	}
	if !found {
		resp.State.RemoveResource(ctx)
		return
	}
	remove := st.RemoveOnDestroy
	if remove.IsNull() {
		remove = types.BoolValue(false) // an import
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, memberState(m, remove))...)
}

func (r *memberResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior memberModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := prior.ID.ValueString()
	m, found, err := findMember(ctx, r.data, id, "")
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read member "+id, err, "")
		return
	}
	if !found {
		resp.Diagnostics.AddError("No member "+id, "Member "+id+" has left the organisation or was removed.")
		return
	}
	if m, err = r.setRole(ctx, m, plan.Role.ValueString()); err != nil {
		addCallError(&resp.Diagnostics, "Cannot give member "+id+" the role "+plan.Role.ValueString(), err, grantOwnerNote)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, memberState(m, plan.RemoveOnDestroy))...)
}

func (r *memberResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st memberModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() || !st.RemoveOnDestroy.ValueBool() {
		return
	}
	id := st.ID.ValueString()
	_, err := intelliauth.Data[intelliauth.Member](r.data.client.RemoveMember(ctx, r.data.orgID, id, nil,
		intelliauth.WithIdempotencyKey(derivedKey("member-remove", r.data.orgID, id))))
	if err != nil && !isStatus(err, http.StatusNotFound) {
		addCallError(&resp.Diagnostics, "Cannot remove member "+id+" from the organisation", err, "")
	}
}

func memberState(m intelliauth.Member, removeOnDestroy types.Bool) memberModel {
	return memberModel{
		ID:              types.StringValue(m.Id),
		MemberID:        types.StringValue(m.Id),
		Email:           types.StringValue(strings.ToLower(m.Email)),
		Role:            types.StringValue(string(m.Role)),
		RemoveOnDestroy: removeOnDestroy,
		UserID:          types.StringValue(m.UserId),
		Name:            types.StringValue(m.Name),
		CreatedAt:       timeValue(m.CreatedAt),
	}
}
