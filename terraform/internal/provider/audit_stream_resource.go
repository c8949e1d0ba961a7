package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/setvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/setdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func newAuditStreamResource() resource.Resource { return &auditStreamResource{} }

type auditStreamResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure      = (*auditStreamResource)(nil)
	_ resource.ResourceWithImportState    = (*auditStreamResource)(nil)
	_ resource.ResourceWithValidateConfig = (*auditStreamResource)(nil)
)

type auditStreamModel struct {
	ID            types.String `tfsdk:"id"`
	Name          types.String `tfsdk:"name"`
	Kind          types.String `tfsdk:"kind"`
	Endpoint      types.String `tfsdk:"endpoint"`
	Actions       types.Set    `tfsdk:"actions"`
	Format        types.String `tfsdk:"format"`
	Credential    types.String `tfsdk:"credential"`
	Paused        types.Bool   `tfsdk:"paused"`
	Status        types.String `tfsdk:"status"`
	HasCredential types.Bool   `tfsdk:"has_credential"`
	SigningSecret types.String `tfsdk:"signing_secret"`
	CreatedAt     types.String `tfsdk:"created_at"`
}

const streamWhereNote = "Creating an audit stream, and changing its endpoint or credential, needs a recent authentication when a member's token does it."

func (r *auditStreamResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_audit_stream"
}

func (r *auditStreamResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "An audit stream: the organisation's audit events delivered, in order and at least once, to a receiver of yours " +
			"(a signed `https` webhook, a Splunk HTTP Event Collector or Datadog's Logs API).\n\n" +
			"**Token**: an owner's or admin's session token, or a service account's with the scope `audit-streams:manage`, the role `admin` or `owner`, " +
			"and no `environments` (a stream carries every event of the organisation). With a member's token, creating a stream and changing its `endpoint` " +
			"or `credential` need a recent authentication (within `CP_REAUTH_WINDOW` of signing in); a service account is not asked.\n\n" +
			"The endpoint must be `https` and must not resolve to a loopback, private, link-local or metadata address (the server checks at creation and " +
			"at every connection; `CP_STREAM_ALLOW_PRIVATE` lifts this for a development server). A host that does not resolve yet is accepted: " +
			"deliveries retry until it does. The server starts delivering at once, so `status` becomes `failing` while the receiver cannot be reached.\n\n" +
			"`credential` is never shown by the API: the state keeps the value the configuration gave, and a credential changed outside this " +
			"configuration is not seen. For an `https` stream the server makes a signing secret instead, shown once: `signing_secret`.\n\n" +
			"**Drift**: a name, endpoint or actions changed outside this configuration show as changes and are set back; a stream paused or resumed " +
			"outside it shows as a change of `paused`, and one the server suspended after failing for `CP_STREAM_SUSPEND_AFTER` reads as paused, so an " +
			"apply with `paused = false` resumes it. A stream deleted outside this configuration is gone from the state and planned for creation.\n\n" +
			"Every request carries an Idempotency-Key derived from the configuration: an apply stopped after the server created the stream and run again " +
			"with the same token adopts that stream (its signing secret, shown to the stopped run only, is then null: replace the stream for a new one).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The stream's id (`ast_…`).",
				PlanModifiers:       keep,
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "1 to 100 characters. Changed in place.",
				Validators:          []validator.String{stringvalidator.LengthBetween(1, 100)},
			},
			"kind": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`https` (a webhook of yours, signed), `splunk_hec` or `datadog`. Changing it replaces the stream.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.OneOf("https", "splunk_hec", "datadog")},
			},
			"endpoint": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Where the batches are posted (`https://…`). For `splunk_hec` the collector's full URL (`…/services/collector/event`), " +
					"for `datadog` the Logs API's (`https://http-intake.logs.<site>/api/v2/logs`). Changed in place.",
				Validators: []validator.String{stringvalidator.RegexMatches(httpsURL, "must be an https:// URL")},
			},
			"actions": schema.SetAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				Default:     setdefault.StaticValue(types.SetValueMust(types.StringType, []attr.Value{})),
				MarkdownDescription: "Only these events: exact actions (`tenant.provisioned`) and families (`tenant.*`), at most 50; empty or left out: every event. " +
					"Changed in place.",
				Validators: []validator.Set{setvalidator.SizeAtMost(50)},
			},
			"format": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "`https` only: `ndjson` (one event per line, the default) or `cloudevents` (a CloudEvents 1.0 JSON batch); " +
					"null for the other kinds. Changing it replaces the stream.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplaceIfConfigured()},
				Validators:    []validator.String{stringvalidator.OneOf("ndjson", "cloudevents")},
			},
			"credential": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "`splunk_hec`: the HEC token; `datadog`: the API key (required for those kinds, refused for `https`). " +
					"Write-only in practice: the server seals it and never shows it, so the state keeps the configuration's value. Changed in place.",
			},
			"paused": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "`true` holds the stream (events wait, nothing is lost); `false` (the default) lets it deliver from where it stopped, " +
					"and resumes a stream the server suspended. Changed in place.",
			},
			"status": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "`active`, `paused`, `failing` (its receiver refuses or cannot be reached; it retries with backoff) or `suspended` " +
					"(it failed for `CP_STREAM_SUSPEND_AFTER`, 24 hours by default, and waits for `paused = false`).",
			},
			"has_credential": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the server holds a credential for the stream.",
				PlanModifiers:       []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
			},
			"signing_secret": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "`https`: the secret (`cpw_…`) that signs each request (`IntelliAuth-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + \".\" + body)>`), " +
					"shown once, to the apply that creates the stream; null for other kinds and after an import. Replace the stream to get a new one.",
				PlanModifiers: keep,
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the stream was created (RFC 3339).",
				PlanModifiers:       keep,
			},
		},
	}
}

func (r *auditStreamResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var c auditStreamModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &c)...)
	if resp.Diagnostics.HasError() || c.Kind.IsUnknown() || c.Kind.IsNull() {
		return
	}
	switch kind := c.Kind.ValueString(); kind {
	case "https":
		if !c.Credential.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("credential"), "No credential for an https stream",
				"An https stream is signed with its own secret (signing_secret) and takes no credential.")
		}
	default:
		if !c.Format.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("format"), "No format for a "+kind+" stream", "Only an https stream has a format; "+kind+" has its own.")
		}
		if c.Credential.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("credential"), "Missing credential",
				"A "+kind+" stream needs its credential: the "+map[string]string{"splunk_hec": "HEC token", "datadog": "Datadog API key"}[kind]+".")
		}
	}
}

func (r *auditStreamResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if d := configureResource(req, resp); d != nil {
		r.data = d
	}
}

func (r *auditStreamResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, "ast_") {
		resp.Diagnostics.AddError("Invalid audit stream id",
			"An audit stream is imported by its id (ast_…), which GET /api/v1/organizations/{org_id}/audit-streams lists; got "+req.ID)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// secretDigest stands for a credential in an Idempotency-Key's parts.
func secretDigest(v types.String) string {
	if v.IsNull() || v.IsUnknown() {
		return "none"
	}
	h := sha256.Sum256([]byte(v.ValueString()))
	return hex.EncodeToString(h[:])
}

func (r *auditStreamResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan auditStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	org, name, kind, endpoint := r.data.orgID, plan.Name.ValueString(), plan.Kind.ValueString(), plan.Endpoint.ValueString()
	actions := sortedStrings(ctx, plan.Actions, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	body := intelliauth.CreateAuditStreamJSONRequestBody{Name: name, Kind: intelliauth.StreamKind(kind), Endpoint: endpoint, Actions: &actions}
	format := "default"
	if !plan.Format.IsNull() && !plan.Format.IsUnknown() {
		f := intelliauth.StreamFormat(plan.Format.ValueString())
		body.Format, format = &f, string(f)
	}
	if !plan.Credential.IsNull() {
		body.Credential = plan.Credential.ValueStringPointer()
	}
	parts := []string{org, name, kind, endpoint, format, strings.Join(actions, ","), secretDigest(plan.Credential)}
	for gen := range maxGenerations {
		key := generationKey("stream-create", gen, parts...)
		created, replayed, err := dataReplayed[intelliauth.CreatedStream](r.data.client.CreateAuditStream(ctx, org, nil, body, intelliauth.WithIdempotencyKey(key)))
		if err != nil && replayed && isStatus(err, http.StatusConflict) {
			continue
		}
		if err != nil {
			addCallError(&resp.Diagnostics, "Cannot create audit stream "+name, err, streamWhereNote)
			return
		}
		id := created.Stream.Id
		// A replay names the stream an earlier request of this
		// configuration made: adopted while it stands.
		st, err := intelliauth.Data[intelliauth.Stream](r.data.client.GetAuditStream(ctx, org, id))
		if replayed && isStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			addCallError(&resp.Diagnostics, "Cannot read audit stream "+id, err, "")
			return
		}
		secret := types.StringPointerValue(created.SigningSecret)
		if replayed && kind == "https" {
			resp.Diagnostics.AddWarning("The signing secret of audit stream "+id+" is lost",
				"An earlier apply of this configuration created the stream and stopped before recording it; the server showed its signing secret to that apply only. "+
					"Replace the stream (tofu apply -replace) to get a signing secret.")
		}
		if plan.Paused.ValueBool() {
			if st, err = r.change(ctx, st, intelliauth.UpdateStreamRequest{Paused: ptrTo(true)}, "paused=true"); err != nil {
				resp.Diagnostics.Append(resp.State.Set(ctx, streamState(st, plan.Credential, secret, &resp.Diagnostics))...)
				addCallError(&resp.Diagnostics, "Audit stream "+id+" was created but not paused", err, "")
				return
			}
		}
		resp.Diagnostics.Append(resp.State.Set(ctx, streamState(st, plan.Credential, secret, &resp.Diagnostics))...)
		return
	}
	resp.Diagnostics.AddError("Cannot create audit stream "+name, fmt.Sprintf("%d generations of this configuration used up", maxGenerations))
}

// change sends a change of the stream. Its key is the stream as last read
// and the change: a re-run that finds the stream unchanged asks again with
// the same key.
func (r *auditStreamResource) change(ctx context.Context, st intelliauth.Stream, body intelliauth.UpdateStreamRequest, what ...string) (intelliauth.Stream, error) {
	key := derivedKey("stream-update", append([]string{r.data.orgID, st.Id, st.UpdatedAt.UTC().String()}, what...)...)
	return intelliauth.Data[intelliauth.Stream](r.data.client.UpdateAuditStream(ctx, r.data.orgID, st.Id, nil, body, intelliauth.WithIdempotencyKey(key)))
}

func (r *auditStreamResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior auditStreamModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := intelliauth.Data[intelliauth.Stream](r.data.client.GetAuditStream(ctx, r.data.orgID, prior.ID.ValueString()))
	if isStatus(err, http.StatusNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read audit stream "+prior.ID.ValueString(), err, "")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, streamState(st, prior.Credential, prior.SigningSecret, &resp.Diagnostics))...)
}

func (r *auditStreamResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior auditStreamModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := prior.ID.ValueString()
	var body intelliauth.UpdateStreamRequest
	var what []string
	if !plan.Name.Equal(prior.Name) {
		body.Name = plan.Name.ValueStringPointer()
		what = append(what, "name="+plan.Name.ValueString())
	}
	if !plan.Endpoint.Equal(prior.Endpoint) {
		body.Endpoint = plan.Endpoint.ValueStringPointer()
		what = append(what, "endpoint="+plan.Endpoint.ValueString())
	}
	if !plan.Actions.Equal(prior.Actions) {
		actions := sortedStrings(ctx, plan.Actions, &resp.Diagnostics)
		body.Actions = &actions
		what = append(what, "actions="+strings.Join(actions, ","))
	}
	if !plan.Credential.Equal(prior.Credential) && !plan.Credential.IsNull() {
		body.Credential = plan.Credential.ValueStringPointer()
		what = append(what, "credential="+secretDigest(plan.Credential))
	}
	if !plan.Paused.Equal(prior.Paused) {
		body.Paused = ptrTo(plan.Paused.ValueBool())
		what = append(what, fmt.Sprintf("paused=%t", plan.Paused.ValueBool()))
	}
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := intelliauth.Data[intelliauth.Stream](r.data.client.GetAuditStream(ctx, r.data.orgID, id))
	if err != nil {
		addCallError(&resp.Diagnostics, "Cannot read audit stream "+id, err, "")
		return
	}
	if len(what) > 0 {
		if st, err = r.change(ctx, st, body, what...); err != nil {
			addCallError(&resp.Diagnostics, "Cannot change audit stream "+id, err, streamWhereNote)
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, streamState(st, plan.Credential, prior.SigningSecret, &resp.Diagnostics))...)
}

func (r *auditStreamResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st auditStreamModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id := st.ID.ValueString()
	_, err := intelliauth.Data[intelliauth.Stream](r.data.client.DeleteAuditStream(ctx, r.data.orgID, id, nil,
		intelliauth.WithIdempotencyKey(derivedKey("stream-delete", r.data.orgID, id))))
	if err != nil && !isStatus(err, http.StatusNotFound) {
		addCallError(&resp.Diagnostics, "Cannot delete audit stream "+id, err, "")
	}
}

// streamState is the stream as the state holds it, with the credential and
// signing secret the server does not show.
func streamState(st intelliauth.Stream, credential, signingSecret types.String, diags *diag.Diagnostics) auditStreamModel {
	m := auditStreamModel{
		ID:            types.StringValue(st.Id),
		Name:          types.StringValue(st.Name),
		Kind:          types.StringValue(string(st.Kind)),
		Endpoint:      types.StringValue(st.Endpoint),
		Actions:       stringSet(st.Actions, diags),
		Format:        types.StringNull(),
		Credential:    credential,
		Paused:        types.BoolValue(st.Status == intelliauth.StreamStatusPaused || st.Status == intelliauth.StreamStatusSuspended),
		Status:        types.StringValue(string(st.Status)),
		HasCredential: types.BoolValue(st.HasCredential),
		SigningSecret: nullIfUnknown(signingSecret),
		CreatedAt:     timeValue(st.CreatedAt),
	}
	if st.Format != nil {
		m.Format = types.StringValue(string(*st.Format))
	}
	return m
}

func ptrTo[T any](v T) *T { return &v }

// httpsURL is the form of a stream's endpoint checked at plan time; the
// server checks the rest: https unless it allows private addresses, and
// the addresses its host resolves to.
var httpsURL = regexp.MustCompile(`^https?://[^\s/?#]+(/[^\s#]*)?$`)
