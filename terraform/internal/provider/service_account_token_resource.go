package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newServiceAccountTokenResource() resource.Resource { return &serviceAccountTokenResource{} }

type serviceAccountTokenResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure   = (*serviceAccountTokenResource)(nil)
	_ resource.ResourceWithImportState = (*serviceAccountTokenResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*serviceAccountTokenResource)(nil)
)

type serviceAccountTokenModel struct {
	ID                  types.String `tfsdk:"id"`
	ServiceAccountID    types.String `tfsdk:"service_account_id"`
	ExpiresIn           types.Int64  `tfsdk:"expires_in"`
	RotateWhenRemaining types.Int64  `tfsdk:"rotate_when_remaining"`
	Keepers             types.Map    `tfsdk:"keepers"`
	Token               types.String `tfsdk:"token"`
	Hint                types.String `tfsdk:"hint"`
	ExpiresAt           types.String `tfsdk:"expires_at"`
	CreatedAt           types.String `tfsdk:"created_at"`
}

const tokenMintNote = "Minting a service account's token needs a recent authentication."

func (r *serviceAccountTokenResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account_token"
}

func (r *serviceAccountTokenResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A token of a service account (`cps_…`), minted by the apply that creates the resource and revoked at once by its destroy.\n\n" +
			"**Token**: a member's session token only; service accounts cannot mint tokens. Minting needs a recent authentication: within " +
			"`CP_REAUTH_WINDOW` (10 minutes by default) of signing in or of `POST /api/v1/auth/reauthenticate`. Revoking does not.\n\n" +
			"**Rotation without downtime**: give the resource `lifecycle { create_before_destroy = true }`. A replacement then mints the new token, " +
			"lets everything that depends on it be updated with it, and only then revokes the old one, so a valid token exists at every moment. " +
			"A replacement comes from a change of `keepers` (e.g. a date or a version you bump), of `expires_in`, of `service_account_id`, " +
			"from `tofu apply -replace`, or, with `rotate_when_remaining`, from the first plan made when less than that many seconds of the token's lifetime are left. " +
			"An account holds at most two valid tokens, so a rotation needs one free: the first token an `intelliauth_service_account` mints counts as one.\n\n" +
			"A token revoked or expired outside this configuration is gone from the state at the next refresh, and the plan mints another. " +
			"Import is refused: the server never shows a token's secret again, so an imported token would be one the configuration cannot hand on. " +
			"An apply stopped after the server minted a token and before it was recorded leaves that token unused (nobody has its secret) until it expires; " +
			"the next apply mints another.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The token's id (`sat_…`).",
				PlanModifiers:       keep,
			},
			"service_account_id": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The service account (`sa_…`). Changing it replaces the token.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(prefixed("sa_"), "must be a service account id (sa_…)")},
			},
			"expires_in": schema.Int64Attribute{
				Required: true,
				MarkdownDescription: "Seconds from the apply until the token expires (at least 60, at most the server's `CP_SERVICE_TOKEN_MAX_TTL`, 90 days by default). " +
					"Changing it replaces the token.",
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				Validators:    []validator.Int64{int64validator.AtLeast(60)},
			},
			"rotate_when_remaining": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Seconds: a plan made when less than this is left of the token's lifetime replaces the token (with `create_before_destroy`, " +
					"a new token before the old is revoked). Less than `expires_in`. Run plans often enough (a scheduled pipeline) for the rotation to come in time.",
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"keepers": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Arbitrary values: changing any replaces the token (e.g. `{ rotation = \"2026-q3\" }`). " +
					"They are part of the mint's Idempotency-Key, too.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.RequiresReplace()},
			},
			"token": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The token (`cps_…`), shown once by the server and kept in the state: protect the state as you protect the token.",
				PlanModifiers:       keep,
			},
			"hint": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The token's last characters, as the API and console show it.",
				PlanModifiers:       keep,
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the token expires (RFC 3339).",
				PlanModifiers:       keep,
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the token was minted (RFC 3339).",
				PlanModifiers:       keep,
			},
		},
	}
}

func (r *serviceAccountTokenResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if d := configureResource(req, resp); d != nil {
		r.data = d
	}
}

func (r *serviceAccountTokenResource) ImportState(_ context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resp.Diagnostics.AddError("A service account token cannot be imported",
		"The server shows a token's secret only to the request that mints it, so an imported "+req.ID+" would have no token to hand on. "+
			"Declare a new intelliauth_service_account_token (it mints one), and revoke the old token when nothing uses it any more "+
			"(DELETE /api/v1/organizations/{org_id}/service-accounts/{service_account_id}/tokens/{token_id}).")
}

// ModifyPlan plans a replacement once the token is within
// rotate_when_remaining of its end: the values the new token gets are
// unknown, so the plan is a change, and expires_at asks for the
// replacement.
func (r *serviceAccountTokenResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan serviceAccountTokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	rotate := plan.RotateWhenRemaining
	if !rotate.IsNull() && !rotate.IsUnknown() && !plan.ExpiresIn.IsUnknown() && rotate.ValueInt64() >= plan.ExpiresIn.ValueInt64() {
		resp.Diagnostics.AddAttributeError(path.Root("rotate_when_remaining"), "rotate_when_remaining is not less than expires_in",
			"Every plan would replace the token: rotate_when_remaining must be less than expires_in.")
		return
	}
	if req.State.Raw.IsNull() || rotate.IsNull() || rotate.IsUnknown() {
		return
	}
	var prior serviceAccountTokenModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	end, err := time.Parse(time.RFC3339Nano, prior.ExpiresAt.ValueString())
	if err != nil || time.Until(end) >= time.Duration(rotate.ValueInt64())*time.Second {
		return
	}
	for _, p := range []string{"id", "token", "hint", "expires_at", "created_at"} {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(p), types.StringUnknown())...)
	}
	resp.RequiresReplace = append(resp.RequiresReplace, path.Root("expires_at"))
}

// keepersText is the keepers in a stable form, for the mint's key.
func keepersText(ctx context.Context, m types.Map) (string, error) {
	values := map[string]string{}
	if !m.IsNull() && !m.IsUnknown() {
		if d := m.ElementsAs(ctx, &values, false); d.HasError() {
			return "", fmt.Errorf("keepers: %v", d)
		}
	}
	b, err := json.Marshal(values) // encoding/json sorts a map's keys
	return string(b), err
}

func (r *serviceAccountTokenResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountTokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, account, expiresIn := r.data.orgID, plan.ServiceAccountID.ValueString(), plan.ExpiresIn.ValueInt64()
	keepers, err := keepersText(ctx, plan.Keepers)
	if err != nil {
		resp.Diagnostics.AddError("Invalid keepers", err.Error())
		return
	}
	// A replayed mint carries no secret (the server keeps only its hash),
	// so a replayed answer is never adopted: the next generation mints. It
	// is not revoked either: it may be the token this one replaces, which
	// must stay valid until the replacement is in place.
	parts := []string{org, account, strconv.FormatInt(expiresIn, 10), keepers}
	for gen := range maxGenerations {
		key := generationKey("sat-mint", gen, parts...)
		minted, replayed, err := dataReplayed[intelliauth.MintedToken](r.data.client.CreateServiceToken(ctx, org, account, nil,
			intelliauth.MintTokenRequest{ExpiresIn: expiresIn}, intelliauth.WithIdempotencyKey(key)))
		if replayed {
			continue
		}
		if err != nil {
			addCallError(&resp.Diagnostics, "Cannot mint a token of service account "+account, err, tokenMintNote)
			if isStatus(err, http.StatusConflict) && strings.Contains(errorDetail(err), "valid tokens") {
				resp.Diagnostics.AddError("The service account has no room for another token",
					"An account holds at most two valid tokens. Revoke one it no longer needs (for example the first token intelliauth_service_account minted, "+
						"by its token_id) so that create_before_destroy can mint the replacement before revoking the old token.")
			}
			return
		}
		plan.ID, plan.Token, plan.Hint = types.StringValue(minted.Id), types.StringValue(minted.Token), types.StringValue(minted.Hint)
		plan.ExpiresAt, plan.CreatedAt = timeValue(minted.ExpiresAt), timeValue(minted.CreatedAt)
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		return
	}
	resp.Diagnostics.AddError("Cannot mint a token of service account "+account, fmt.Sprintf("%d generations of this configuration used up", maxGenerations))
}

func (r *serviceAccountTokenResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var st serviceAccountTokenModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sa, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.GetServiceAccount(ctx, r.data.orgID, st.ServiceAccountID.ValueString()))
	if isStatus(err, http.StatusNotFound) {
		resp.State.RemoveResource(ctx) // the account was deleted, and its tokens revoked with it
		return
	}
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read service account "+st.ServiceAccountID.ValueString(), err, "")
		return
	}
	for _, t := range sa.Tokens {
		if t.Id != st.ID.ValueString() {
			continue
		}
		if t.Status != "active" {
			// Revoked or expired: it authenticates nothing any more, and
			// the plan mints another.
			resp.State.RemoveResource(ctx)
			return
		}
		st.Hint, st.ExpiresAt, st.CreatedAt = types.StringValue(t.Hint), timeValue(t.ExpiresAt), timeValue(t.CreatedAt)
		resp.Diagnostics.Append(resp.State.Set(ctx, st)...)
		return
	}
	resp.State.RemoveResource(ctx)
}

// Update has only rotate_when_remaining to record: every other argument
// replaces the token.
func (r *serviceAccountTokenResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan serviceAccountTokenModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *serviceAccountTokenResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st serviceAccountTokenModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, account, id := r.data.orgID, st.ServiceAccountID.ValueString(), st.ID.ValueString()
	_, err := intelliauth.Data[intelliauth.ServiceToken](r.data.client.RevokeServiceToken(ctx, org, account, id, nil,
		intelliauth.WithIdempotencyKey(derivedKey("sat-revoke", org, account, id))))
	if err != nil && !isStatus(err, http.StatusNotFound) {
		addCallError(&resp.Diagnostics, "Cannot revoke token "+id+" of service account "+account, err, "")
	}
}
