package provider

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	openapi_types "github.com/oapi-codegen/runtime/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// lowerASCIIEmail is one address in lower case and ASCII, as the server
// keeps it; a configuration that writes it otherwise would differ from
// the server at every refresh.
var lowerASCIIEmail = regexp.MustCompile(`^[a-z0-9.!#$%&'*+/=?^_{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)

func newInvitationResource() resource.Resource { return &invitationResource{} }

type invitationResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure   = (*invitationResource)(nil)
	_ resource.ResourceWithImportState = (*invitationResource)(nil)
)

type invitationModel struct {
	ID        types.String `tfsdk:"id"`
	Email     types.String `tfsdk:"email"`
	Role      types.String `tfsdk:"role"`
	Status    types.String `tfsdk:"status"`
	ExpiresAt types.String `tfsdk:"expires_at"`
	CreatedAt types.String `tfsdk:"created_at"`
}

const ownerInvitationNote = "Inviting someone as an owner needs a recent authentication."

func (r *invitationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_invitation"
}

func (r *invitationResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An invitation to join the organisation: the server mails its secret to the address, and the person becomes a member " +
			"with the role by accepting it (`POST /api/v1/invitations/accept`, or the console's link). Members join only this way; " +
			"manage a member's role afterwards with `intelliauth_member`.\n\n" +
			"**Token**: a member's session token only; service accounts cannot invite. Inviting an owner is for owners, " +
			"with a recent authentication (within `CP_REAUTH_WINDOW` of signing in).\n\n" +
			"Destroying the resource revokes the invitation while it is pending; an accepted one is left as it is (the member stays: " +
			"remove them with `intelliauth_member`'s `remove_on_destroy`, or in the console).\n\n" +
			"**Drift**: an invitation revoked outside this configuration, or one that expired unaccepted, is gone from the state at the next refresh, " +
			"so the plan invites the address again (a new invitation, a new mail). One accepted outside this configuration stays in the state with " +
			"`status = \"accepted\"` and plans nothing: it did what it was for. Changing `email` or `role` replaces the invitation " +
			"(the pending one is revoked, a new one mailed); once it has been accepted, a new invitation of a member's address is refused, " +
			"so change the member's role with `intelliauth_member` instead.\n\n" +
			"Every request carries an Idempotency-Key derived from the configuration: an apply stopped after the server sent the invitation and run again " +
			"with the same member's token adopts that invitation instead of failing on the address's pending invitation.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The invitation's id (`inv_…`).",
				PlanModifiers:       keep,
			},
			"email": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Whom to invite: one address in lower case, ASCII only (an internationalised domain in its `xn--` form). Changing it replaces the invitation.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{
					stringvalidator.RegexMatches(lowerASCIIEmail, "must be one email address in lower case, ASCII only"),
					stringvalidator.LengthAtMost(254),
				},
			},
			"role": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The role the person gets by accepting: `owner`, `admin`, `developer` or `viewer`. Changing it replaces the invitation.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.OneOf(roles...)},
			},
			"status": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "`pending`, or `accepted` once the person has joined (revoked and expired invitations leave the state).",
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Until when the invitation may be accepted (RFC 3339): the server's `CP_INVITATION_TTL` after it was sent.",
				PlanModifiers:       keep,
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the invitation was sent (RFC 3339).",
				PlanModifiers:       keep,
			},
		},
	}
}

func (r *invitationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if d := configureResource(req, resp); d != nil {
		r.data = d
	}
}

func (r *invitationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, "inv_") {
		resp.Diagnostics.AddError("Invalid invitation id",
			"An invitation is imported by its id (inv_…), which GET /api/v1/organizations/{org_id}/invitations lists; got "+req.ID)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// invitation finds an invitation of the organisation by id (the API lists
// them; it has no route for one).
func invitation(ctx context.Context, d *providerData, id string) (intelliauth.Invitation, bool, error) {
	fetch := func(ctx context.Context, cursor string) (*http.Response, error) {
		return d.client.ListInvitations(ctx, d.orgID, &intelliauth.ListInvitationsParams{Cursor: intelliauth.Cursor(cursor)})
	}
	for inv, err := range intelliauth.All[intelliauth.Invitation](ctx, fetch) {
		if err != nil {
			return inv, false, err
		}
		if inv.Id == id {
			return inv, true, nil
		}
	}
	return intelliauth.Invitation{}, false, nil
}

func (r *invitationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan invitationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, email, role := r.data.orgID, plan.Email.ValueString(), plan.Role.ValueString()
	body := intelliauth.CreateInvitationJSONRequestBody{Email: openapi_types.Email(email), Role: intelliauth.Role(role)}
	for gen := range maxGenerations {
		key := generationKey("inv-create", gen, org, email, role)
		inv, replayed, err := dataReplayed[intelliauth.Invitation](r.data.client.CreateInvitation(ctx, org, nil, body, intelliauth.WithIdempotencyKey(key)))
		if err != nil && replayed && isStatus(err, http.StatusConflict) {
			continue // a refusal kept from an earlier request: ask anew
		}
		if err != nil {
			addCallError(&resp.Diagnostics, "Cannot invite "+email, err, ownerInvitationNote)
			switch detail := errorDetail(err); {
			case !isStatus(err, http.StatusConflict):
			case strings.Contains(detail, "pending invitation"):
				resp.Diagnostics.AddError("The address has a pending invitation",
					"Another request (not this configuration's) invited "+email+". Import that invitation (tofu import <address> inv_…, "+
						"GET /api/v1/organizations/{org_id}/invitations lists it), or revoke it and apply again.")
			case strings.Contains(detail, "already a member"):
				resp.Diagnostics.AddError("The address is a member's",
					email+" has joined the organisation already: manage their role with intelliauth_member instead of an invitation.")
			}
			return
		}
		if replayed {
			// An earlier request of this configuration sent it: adopted
			// while it is pending, passed over once it has ended.
			current, found, err := invitation(ctx, r.data, inv.Id)
			if err != nil {
				addCallError(&resp.Diagnostics, "Cannot read invitation "+inv.Id, err, "")
				return
			}
			if !found || current.Status != "pending" {
				continue
			}
			inv = current
		}
		resp.Diagnostics.Append(resp.State.Set(ctx, invitationState(inv, plan.Email))...)
		return
	}
	resp.Diagnostics.AddError("Cannot invite "+email, fmt.Sprintf("%d generations of this configuration used up", maxGenerations))
}

func (r *invitationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var st invitationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	inv, found, err := invitation(ctx, r.data, st.ID.ValueString())
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read invitation "+st.ID.ValueString(), err, "")
		return
	}
	if !found || inv.Status == "revoked" || inv.Status == "expired" {
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, invitationState(inv, st.Email))...)
}

// Update is never called: every argument replaces the invitation.
func (r *invitationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan invitationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *invitationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st invitationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := st.ID.ValueString()
	inv, found, err := invitation(ctx, r.data, id)
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read invitation "+id, err, "")
		return
	}
	if !found || inv.Status != "pending" {
		return // accepted, revoked or expired: nothing to revoke
	}
	_, err = intelliauth.Data[intelliauth.Invitation](r.data.client.RevokeInvitation(ctx, r.data.orgID, id, nil,
		intelliauth.WithIdempotencyKey(derivedKey("inv-revoke", r.data.orgID, id))))
	if err != nil && !isStatus(err, http.StatusNotFound) && !isStatus(err, http.StatusConflict) {
		addCallError(&resp.Diagnostics, "Cannot revoke invitation "+id, err, "")
	}
}

// invitationState is the invitation as the state holds it. The address is
// the configuration's when the server's is the same address (it keeps
// addresses in lower case).
func invitationState(inv intelliauth.Invitation, configured types.String) invitationModel {
	email := types.StringValue(string(inv.Email))
	if strings.EqualFold(configured.ValueString(), string(inv.Email)) {
		email = configured
	}
	return invitationModel{
		ID:        types.StringValue(inv.Id),
		Email:     email,
		Role:      types.StringValue(string(inv.Role)),
		Status:    types.StringValue(inv.Status),
		ExpiresAt: timeValue(inv.ExpiresAt),
		CreatedAt: timeValue(inv.CreatedAt),
	}
}
