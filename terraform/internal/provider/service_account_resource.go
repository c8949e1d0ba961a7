package provider

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// The roles of members and service accounts, and the scopes a service
// account may hold.
var (
	roles      = []string{"owner", "admin", "developer", "viewer"}
	scopeNames = []string{"organization:read", "members:read", "tenants:read", "tenants:create", "tenants:suspend",
		"tenants:resume", "tenants:decommission", "tenants:restore", "events:read", "audit-streams:manage"}
)

// serviceAccountCreateNote names the act that needs a recent
// authentication when a service account is created.
const serviceAccountCreateNote = "Creating a service account mints its first token, which needs a recent authentication."

func newServiceAccountResource() resource.Resource { return &serviceAccountResource{} }

type serviceAccountResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure   = (*serviceAccountResource)(nil)
	_ resource.ResourceWithImportState = (*serviceAccountResource)(nil)
)

type serviceAccountModel struct {
	ID             types.String `tfsdk:"id"`
	Name           types.String `tfsdk:"name"`
	Role           types.String `tfsdk:"role"`
	Environments   types.Set    `tfsdk:"environments"`
	Regions        types.Set    `tfsdk:"regions"`
	Scopes         types.Set    `tfsdk:"scopes"`
	TokenExpiresIn types.Int64  `tfsdk:"token_expires_in"`
	Token          types.String `tfsdk:"token"`
	TokenID        types.String `tfsdk:"token_id"`
	TokenExpiresAt types.String `tfsdk:"token_expires_at"`
	AccountableID  types.String `tfsdk:"accountable_member_id"`
	CreatedAt      types.String `tfsdk:"created_at"`
}

func (r *serviceAccountResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_service_account"
}

func (r *serviceAccountResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A service account of the organisation: automation with a role no higher than its creator's, scopes narrower than the role, " +
			"optionally limited to some environments and regions, and a member who answers for it (the member whose token creates it).\n\n" +
			"**Token**: a member's session token only; service accounts cannot manage service accounts. Creating one mints its first token, " +
			"so it needs a recent authentication: within `CP_REAUTH_WINDOW` (10 minutes by default) of signing in or of " +
			"`POST /api/v1/auth/reauthenticate`. Changing or deleting one does not.\n\n" +
			"The first token is the `token` attribute, known only to the apply that creates the account (it is shown once; the server keeps its hash). " +
			"After an import it is null. An account holds at most two valid tokens: mint more with `intelliauth_service_account_token`, " +
			"and revoke this first one (`DELETE …/tokens/{token_id}`) when a rotation needs the room.\n\n" +
			"Destroying the resource deletes the account and revokes all its tokens at once. An apply stopped after the server created the account and run again " +
			"with the same member's token adopts that account (its requests carry Idempotency-Keys derived from the configuration); the first token's secret was then shown only to the " +
			"stopped run, so the provider revokes it and mints a replacement with the same lifetime.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The service account's id (`sa_…`).",
				PlanModifiers:       keep,
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "1 to 100 characters. Changed in place.",
				Validators:          []validator.String{stringvalidator.LengthBetween(1, 100)},
			},
			"role": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "`owner`, `admin`, `developer` or `viewer`, no higher than the role of the member whose token applies it. " +
					"What the account may do is what both its role and its scopes allow. Changed in place.",
				Validators: []validator.String{stringvalidator.OneOf(roles...)},
			},
			"environments": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "The environments whose tenants the account may see and act on (at most 20, e.g. `ci`); empty or left out: every environment. " +
					"An account limited to environments cannot manage audit streams. Changed in place.",
				Validators: []validator.Set{
					setvalidator.SizeAtMost(20),
					setvalidator.ValueStringsAre(stringvalidator.RegexMatches(environmentPattern, "must be 1 to 32 characters: a-z, 0-9 and '-', not at either end")),
				},
			},
			"regions": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "The installation's regions whose tenants the account may see and act on (of `GET /api/v1/organizations/{org_id}/regions`, e.g. `eu`); " +
					"empty or left out: every region. An installation without regions refuses any. Changed in place.",
				Validators: []validator.Set{
					setvalidator.SizeAtMost(50),
					setvalidator.ValueStringsAre(stringvalidator.RegexMatches(regionPattern, "must be 1 to 20 of a-z, 0-9 and '-', starting with a letter and not ending with '-'")),
				},
			},
			"scopes": schema.SetAttribute{
				ElementType:         types.StringType,
				Required:            true,
				MarkdownDescription: "What the account may do, one or more of: `" + strings.Join(scopeNames, "`, `") + "`. Changed in place.",
				Validators: []validator.Set{
					setvalidator.SizeAtLeast(1),
					setvalidator.ValueStringsAre(stringvalidator.OneOf(scopeNames...)),
				},
			},
			"token_expires_in": schema.Int64Attribute{
				Required: true,
				MarkdownDescription: "Seconds until the first token expires (at least 60, at most the server's `CP_SERVICE_TOKEN_MAX_TTL`, 90 days by default). " +
					"Used once, when the account is created: changing it later is recorded in the state and sends nothing (the account is not replaced; " +
					"mint new tokens with `intelliauth_service_account_token`).",
				Validators: []validator.Int64{int64validator.AtLeast(60)},
			},
			"token": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "The first token (`cps_…`), known only to the apply that created the account; null after an import. " +
					"It stays in the state after it expires or is revoked: `token_id` tells the server which token it is.",
				PlanModifiers: keep,
			},
			"token_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The first token's id (`sat_…`), for revoking it; null after an import.",
				PlanModifiers:       keep,
			},
			"token_expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the first token expires (RFC 3339); null after an import.",
				PlanModifiers:       keep,
			},
			"accountable_member_id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The member who answers for the account (`mem_…`): who created it, or took it over. " +
					"Null once that member has left; the account's tokens are refused until an owner or admin takes it over.",
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the account was created (RFC 3339).",
				PlanModifiers:       keep,
			},
		},
	}
}

func (r *serviceAccountResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if d := configureResource(req, resp); d != nil {
		r.data = d
	}
}

func (r *serviceAccountResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, "sa_") {
		resp.Diagnostics.AddError("Invalid service account id",
			"A service account is imported by its id (sa_…), which GET /api/v1/organizations/{org_id}/service-accounts lists; got "+req.ID)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// serviceAccountRequest is the configuration's fields as the API takes
// them, in a stable order.
type serviceAccountRequest struct {
	name, role     string
	environments   []string
	regions        []string
	scopes         []string
	tokenExpiresIn int64
}

func (r *serviceAccountResource) request(ctx context.Context, m serviceAccountModel, diags *diag.Diagnostics) serviceAccountRequest {
	return serviceAccountRequest{
		name:           m.Name.ValueString(),
		role:           m.Role.ValueString(),
		environments:   sortedStrings(ctx, m.Environments, diags),
		regions:        sortedStrings(ctx, m.Regions, diags),
		scopes:         sortedStrings(ctx, m.Scopes, diags),
		tokenExpiresIn: m.TokenExpiresIn.ValueInt64(),
	}
}

func (r *serviceAccountResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	in := r.request(ctx, plan, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	org := r.data.orgID
	body := intelliauth.CreateServiceAccountJSONRequestBody{Name: in.name, Role: intelliauth.Role(in.role), Environments: &in.environments,
		Scopes: scopesOf(in.scopes), TokenExpiresIn: in.tokenExpiresIn}
	parts := []string{org, in.name, in.role, strings.Join(in.environments, ","), strings.Join(in.scopes, ","), strconv.FormatInt(in.tokenExpiresIn, 10)}
	// Regions are sent, and are part of the key, only when some are
	// named: a configuration without them keeps the key it had before
	// service accounts had regions, and works on an installation without
	// regions.
	if len(in.regions) > 0 {
		body.Regions = &in.regions
		parts = append(parts, "regions="+strings.Join(in.regions, ","))
	}
	for gen := range maxGenerations {
		key := generationKey("sa-create", gen, parts...)
		created, replayed, err := dataReplayed[intelliauth.CreatedServiceAccount](r.data.client.CreateServiceAccount(ctx, org, nil, body, intelliauth.WithIdempotencyKey(key)))
		if err != nil && replayed && isStatus(err, http.StatusConflict) {
			continue // a refusal kept from an earlier request: ask anew
		}
		if err != nil {
			addCallError(&resp.Diagnostics, "Cannot create service account "+in.name, err, serviceAccountCreateNote)
			return
		}
		sa := created.ServiceAccount
		var token intelliauth.MintedToken
		switch {
		case !replayed:
			token.Token = created.Token
			if len(sa.Tokens) > 0 {
				token.Id, token.ExpiresAt = sa.Tokens[0].Id, sa.Tokens[0].ExpiresAt
			}
		default:
			// An earlier request of this configuration made the account:
			// adopted if it still stands.
			current, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.GetServiceAccount(ctx, org, sa.Id))
			if isStatus(err, http.StatusNotFound) {
				continue // deleted since: the next generation makes another
			}
			if err != nil {
				addCallError(&resp.Diagnostics, "Cannot read service account "+sa.Id, err, "")
				return
			}
			first := ""
			if len(sa.Tokens) > 0 {
				first = sa.Tokens[0].Id
			}
			if token, err = replaceLostToken(ctx, r.data, sa.Id, first, in.tokenExpiresIn); err != nil {
				addCallError(&resp.Diagnostics, "Service account "+sa.Id+" was adopted, but its first token's secret is lost and no replacement was minted", err,
					"The first token of an adopted service account is replaced by a new one, which needs a recent authentication.")
				return
			}
			m := r.model(current, plan, &resp.Diagnostics)
			m.Token, m.TokenID, m.TokenExpiresAt = types.StringValue(token.Token), types.StringValue(token.Id), timeValue(token.ExpiresAt)
			resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
			return
		}
		m := r.modelOfCreated(created, plan, &resp.Diagnostics)
		m.Token, m.TokenID, m.TokenExpiresAt = types.StringValue(token.Token), types.StringValue(token.Id), timeValue(token.ExpiresAt)
		resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
		return
	}
	resp.Diagnostics.AddError("Cannot create service account "+in.name, fmt.Sprintf("%d generations of this configuration used up", maxGenerations))
}

// replaceLostToken revokes a token whose secret only a stopped apply saw
// and mints another of the same lifetime in its place. A mint that is
// itself a replay lost its secret the same way: it is revoked and replaced
// in turn, each key derived from the token it replaces.
func replaceLostToken(ctx context.Context, d *providerData, accountID, lost string, expiresIn int64) (intelliauth.MintedToken, error) {
	for range 10 {
		if lost != "" {
			_, err := intelliauth.Data[intelliauth.ServiceToken](d.client.RevokeServiceToken(ctx, d.orgID, accountID, lost, nil,
				intelliauth.WithIdempotencyKey(derivedKey("sat-revoke", d.orgID, accountID, lost))))
			if err != nil && !isStatus(err, http.StatusNotFound) {
				return intelliauth.MintedToken{}, err
			}
		}
		minted, replayed, err := dataReplayed[intelliauth.MintedToken](d.client.CreateServiceToken(ctx, d.orgID, accountID, nil,
			intelliauth.MintTokenRequest{ExpiresIn: expiresIn}, intelliauth.WithIdempotencyKey(derivedKey("sat-replace", d.orgID, accountID, lost))))
		if err != nil {
			return minted, err
		}
		if !replayed && minted.Token != "" {
			return minted, nil
		}
		lost = minted.Id
	}
	return intelliauth.MintedToken{}, fmt.Errorf("service account %s: no token could be minted in place of a lost one", accountID)
}

func (r *serviceAccountResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var st serviceAccountModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	sa, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.GetServiceAccount(ctx, r.data.orgID, st.ID.ValueString()))
	if isStatus(err, http.StatusNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read service account "+st.ID.ValueString(), err, "")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, r.model(sa, st, &resp.Diagnostics))...)
}

func (r *serviceAccountResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior serviceAccountModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := prior.ID.ValueString()
	want, had := r.request(ctx, plan, &resp.Diagnostics), r.request(ctx, prior, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	var body intelliauth.UpdateServiceAccountJSONRequestBody
	var changed []string
	if want.name != had.name {
		body.Name = &want.name
		changed = append(changed, "name="+want.name)
	}
	if want.role != had.role {
		role := intelliauth.Role(want.role)
		body.Role = &role
		changed = append(changed, "role="+want.role)
	}
	if strings.Join(want.environments, ",") != strings.Join(had.environments, ",") {
		body.Environments = &want.environments
		changed = append(changed, "environments="+strings.Join(want.environments, ","))
	}
	if strings.Join(want.regions, ",") != strings.Join(had.regions, ",") {
		body.Regions = &want.regions
		changed = append(changed, "regions="+strings.Join(want.regions, ","))
	}
	if strings.Join(want.scopes, ",") != strings.Join(had.scopes, ",") {
		scopes := scopesOf(want.scopes)
		body.Scopes = &scopes
		changed = append(changed, "scopes="+strings.Join(want.scopes, ","))
	}
	if len(changed) == 0 {
		// Only token_expires_in changed, which acts at creation only.
		plan.AccountableID = prior.AccountableID
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		return
	}
	// The key is the account as last read and the change: a re-run that
	// finds the account unchanged asks again with the same key.
	current, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.GetServiceAccount(ctx, r.data.orgID, id))
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read service account "+id, err, "")
		return
	}
	key := derivedKey("sa-update", append([]string{r.data.orgID, id, current.UpdatedAt.UTC().String()}, changed...)...)
	sa, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.UpdateServiceAccount(ctx, r.data.orgID, id, nil, body, intelliauth.WithIdempotencyKey(key)))
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot change service account "+id, err, "")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, r.model(sa, plan, &resp.Diagnostics))...)
}

func (r *serviceAccountResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st serviceAccountModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := st.ID.ValueString()
	_, err := intelliauth.Data[intelliauth.ServiceAccount](r.data.client.DeleteServiceAccount(ctx, r.data.orgID, id, nil,
		intelliauth.WithIdempotencyKey(derivedKey("sa-delete", r.data.orgID, id))))
	if err != nil && !isStatus(err, http.StatusNotFound) {
		addCallError(&resp.Diagnostics, "Cannot delete service account "+id, err, "")
	}
}

// model is the account as the state holds it; the first token's fields
// and token_expires_in come from prior (the plan or the state), since the
// server never shows the secret again.
func (r *serviceAccountResource) model(sa intelliauth.ServiceAccount, prior serviceAccountModel, diags *diag.Diagnostics) serviceAccountModel {
	m := serviceAccountModel{
		ID:             types.StringValue(sa.Id),
		Name:           types.StringValue(sa.Name),
		Role:           types.StringValue(string(sa.Role)),
		Environments:   stringSet(sa.Environments, diags),
		Regions:        stringSet(sa.Regions, diags),
		Scopes:         stringSet(scopeStrings(sa.Scopes), diags),
		TokenExpiresIn: prior.TokenExpiresIn,
		Token:          nullIfUnknown(prior.Token),
		TokenID:        nullIfUnknown(prior.TokenID),
		TokenExpiresAt: nullIfUnknown(prior.TokenExpiresAt),
		AccountableID:  types.StringNull(),
		CreatedAt:      timeValue(sa.CreatedAt),
	}
	if sa.Accountable != nil {
		m.AccountableID = types.StringValue(sa.Accountable.MemberId)
	}
	return m
}

func (r *serviceAccountResource) modelOfCreated(c intelliauth.CreatedServiceAccount, plan serviceAccountModel, diags *diag.Diagnostics) serviceAccountModel {
	sa := c.ServiceAccount
	m := serviceAccountModel{
		ID:             types.StringValue(sa.Id),
		Name:           types.StringValue(sa.Name),
		Role:           types.StringValue(string(sa.Role)),
		Environments:   stringSet(sa.Environments, diags),
		Regions:        stringSet(sa.Regions, diags),
		Scopes:         stringSet(scopeStrings(sa.Scopes), diags),
		TokenExpiresIn: plan.TokenExpiresIn,
		AccountableID:  types.StringNull(),
		CreatedAt:      timeValue(sa.CreatedAt),
	}
	if sa.Accountable != nil {
		m.AccountableID = types.StringValue(sa.Accountable.MemberId)
	}
	return m
}

// scopesOf and scopeStrings convert between the configuration's scopes and
// the API's.
func scopesOf(s []string) []intelliauth.Scope {
	out := make([]intelliauth.Scope, len(s))
	for i, v := range s {
		out[i] = intelliauth.Scope(v)
	}
	return out
}

func scopeStrings(s []intelliauth.Scope) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

// nullIfUnknown is a computed value carried over from a plan, null when
// the plan did not know it.
func nullIfUnknown(v types.String) types.String {
	if v.IsUnknown() {
		return types.StringNull()
	}
	return v
}
