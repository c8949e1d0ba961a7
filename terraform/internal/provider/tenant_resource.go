package provider

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// operationTimeout bounds the wait for one tenant operation (a saga retries
// a failing step with backoff before it gives up or is stuck).
const operationTimeout = 20 * time.Minute

// The server's rules for names and environments, checked at plan time.
var (
	tenantNamePattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{1,30}[a-z0-9])$`)
	environmentPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	regionPattern      = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,18}[a-z0-9])?$`)
)

func newTenantResource() resource.Resource { return &tenantResource{} }

type tenantResource struct {
	data *providerData
}

var (
	_ resource.ResourceWithConfigure   = (*tenantResource)(nil)
	_ resource.ResourceWithImportState = (*tenantResource)(nil)
)

type tenantModel struct {
	ID                 types.String `tfsdk:"id"`
	Name               types.String `tfsdk:"name"`
	Environment        types.String `tfsdk:"environment"`
	Region             types.String `tfsdk:"region"`
	ExpiresIn          types.Int64  `tfsdk:"expires_in"`
	State              types.String `tfsdk:"state"`
	Hostname           types.String `tfsdk:"hostname"`
	AdminURL           types.String `tfsdk:"admin_url"`
	WorkflowID         types.String `tfsdk:"workflow_id"`
	CreatedAt          types.String `tfsdk:"created_at"`
	ExpiresAt          types.String `tfsdk:"expires_at"`
	CurrentOperationID types.String `tfsdk:"current_operation_id"`
}

func (r *tenantResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_tenant"
}

func (r *tenantResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A tenant of the organisation: an isolated IntelliAuth deployment served at its own hostname.\n\n" +
			"Creating one starts its provisioning saga and waits until the tenant is `active`; a saga that fails, or is stuck waiting for an operator, " +
			"is reported with the step that failed. Destroying one decommissions it: the tenant is suspended at once and its resources are destroyed " +
			"when the server's grace period ends (`CP_DECOMMISSION_GRACE`, 72 hours by default), until when it can still be restored and its name stays taken. " +
			"The destroy waits for the decommission to enter its grace period (state `decommissioning`), not for the grace period to end.\n\n" +
			"Every request carries an Idempotency-Key derived from the organisation, the tenant's name, environment and lifetime (for a creation) " +
			"or the tenant's last change (for a transition), so an apply stopped half-way and run again adopts the tenant the first run created " +
			"instead of creating another or failing on its name.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The tenant's id (`tnt_…`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "A DNS label of 3 to 32 characters (a-z, 0-9 and `-`, not at either end), unique among the organisation's live tenants. " +
					"Changing it replaces the tenant.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(tenantNamePattern,
					"must be a DNS label of 3 to 32 characters: a-z, 0-9 and '-', not at either end")},
			},
			"environment": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "1 to 32 characters: a-z, 0-9 and `-` (e.g. `prod`, `staging`, `ci`). Changing it replaces the tenant.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(environmentPattern,
					"must be 1 to 32 characters: a-z, 0-9 and '-', not at either end")},
			},
			"region": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "The installation's region the tenant lives in (one of `GET /api/v1/organizations/{org_id}/regions`, e.g. `eu`), " +
					"a label of its hostname (`<name>-<organisation slug>.<region>.<tenant domain>`). Left out: the organisation's default region " +
					"(the `default_region` of the `intelliauth_organization` data source), read back after the creation. " +
					"A tenant's region is fixed for its life: changing it replaces the tenant, and the old one, decommissioned first, holds its name " +
					"until its grace period ends, so a tenant moved to another region needs another `name` too. " +
					"Null for a tenant on the installation's own data plane (an installation without regions, which refuses a region).",
				// Left out of the configuration, the region is the state's
				// (null included: UseStateForUnknown copies a null too) before
				// RequiresReplace compares: otherwise any change of another
				// attribute would plan it unknown and replace the tenant.
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()},
				Validators: []validator.String{stringvalidator.RegexMatches(regionPattern,
					"must be 1 to 20 of a-z, 0-9 and '-', starting with a letter and not ending with '-'")},
			},
			"expires_in": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Makes the tenant ephemeral: seconds from the apply until its saga decommissions it, with no grace period " +
					"(at most the server's `CP_TENANT_MAX_LIFETIME`, 30 days by default). Changing it gives the tenant a new lifetime counted from that apply; " +
					"removing it clears the lifetime. Needs the power to decommission. Once the lifetime has ended the tenant is gone and the next plan creates it again. " +
					"When a lifetime is given to the tenant outside this configuration, the next refresh reads the seconds it has left, so the plan shows the difference.",
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"state": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString("active"),
				MarkdownDescription: "The state the tenant should be in: `active` (the default) or `suspended`. A tenant suspended or resumed outside " +
					"this configuration shows as a change in the next plan, and applying it suspends or resumes the tenant again. " +
					"A tenant being decommissioned outside this configuration reads as `decommissioning`; applying restores it (while its grace period lasts) " +
					"and resumes it when `active` is wanted.",
				Validators: []validator.String{stringvalidator.OneOf("active", "suspended")},
			},
			"hostname": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Where the tenant is served: `<name>-<organisation slug>.<region>.<tenant domain>`, or `<name>-<organisation slug>.<tenant domain>` without a region.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"admin_url": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The tenant's admin console.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"workflow_id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The tenant's saga (`tenant/<organization_id>/<Idempotency-Key of its creation>`), for operators; " +
					"it tells which creation request made the tenant.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"created_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the tenant was created (RFC 3339).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"expires_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When an ephemeral tenant's saga decommissions it (RFC 3339); null for a tenant without a lifetime.",
				PlanModifiers:       []planmodifier.String{unlessChanged(path.Root("expires_in"))},
			},
			"current_operation_id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The operation running on the tenant when it was last read (`op_…`), null when none is. " +
					"An apply waits for the operations it starts, so this is mostly null; it names an operation another client started.",
			},
		},
	}
}

func (r *tenantResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	if req.ProviderData == nil {
		return
	}
	data, ok := req.ProviderData.(*providerData)
	if !ok {
		resp.Diagnostics.AddError("Unexpected provider data", fmt.Sprintf("got %T", req.ProviderData))
		return
	}
	r.data = data
}

func (r *tenantResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if !strings.HasPrefix(req.ID, "tnt_") {
		resp.Diagnostics.AddError("Invalid tenant id", "A tenant is imported by its id (tnt_…), which GET /api/v1/organizations/{org_id}/tenants lists; got "+req.ID)
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// live reports whether a tenant in the state holds its name: it has not
// ended and is not being decommissioned.
func live(s intelliauth.TenantState) bool {
	return s == intelliauth.TenantStateProvisioning || s == intelliauth.TenantStateActive || s == intelliauth.TenantStateSuspended
}

func (r *tenantResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan tenantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()

	t, err := r.create(ctx, plan)
	if err != nil {
		addError(&resp.Diagnostics, "Cannot create tenant "+plan.Name.ValueString(), err)
		return
	}
	// The provisioning saga runs on after the 202; the tenant is usable once
	// it is active.
	t, err = r.data.client.WaitForTenant(ctx, r.data.orgID, t.Id, intelliauth.TenantStateActive)
	if err != nil {
		addError(&resp.Diagnostics, "Tenant "+plan.Name.ValueString()+" was not provisioned", err)
		return
	}
	if want := plan.State.ValueString(); want != "" && want != string(t.State) {
		if t, err = r.converge(ctx, t, want); err != nil {
			// The tenant exists: it is kept in the state, so the next plan
			// shows the state still to reach.
			resp.Diagnostics.Append(resp.State.Set(ctx, r.model(t, plan.ExpiresIn))...)
			addError(&resp.Diagnostics, "Tenant "+plan.Name.ValueString()+" was created but is not "+want, err)
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, r.model(t, plan.ExpiresIn))...)
}

// create asks for the tenant, or finds the one an earlier run of the same
// configuration asked for. It walks the configuration's generations (see
// tenant_keys.go): a generation whose tenant has ended is skipped, one
// whose tenant lives is adopted, and the first unused one is asked for.
func (r *tenantResource) create(ctx context.Context, plan tenantModel) (intelliauth.Tenant, error) {
	org := r.data.orgID
	name, env := plan.Name.ValueString(), plan.Environment.ValueString()
	// A region left out (unknown in the plan) is the server's choice.
	var region *string
	if v := plan.Region; !v.IsNull() && !v.IsUnknown() {
		region = v.ValueStringPointer()
	}
	var expiresIn *int64
	if !plan.ExpiresIn.IsNull() {
		v := plan.ExpiresIn.ValueInt64()
		expiresIn = &v
	}
	sameName, err := r.tenantsNamed(ctx, name)
	if err != nil {
		return intelliauth.Tenant{}, err
	}
	byWorkflow := map[string]intelliauth.Tenant{}
	for _, t := range sameName {
		byWorkflow[t.WorkflowId] = t
	}
	// A refusal that looks stale but is not (the name is held by a tenant
	// of an environment a service account cannot see) is refused again
	// under the next key: passedOver bounds what one apply spends on that.
	const maxGenerations, maxPassedOver = 1000, 25
	passedOver := 0
	for gen := 0; gen < maxGenerations; gen++ {
		key := creationKey(org, name, env, region, expiresIn, gen)
		if t, ok := byWorkflow[workflowID(org, key)]; ok {
			if live(t.State) {
				return t, nil // made by this configuration's request: adopted
			}
			continue
		}
		answer, err := intelliauth.Data[intelliauth.LifecycleResult](r.data.client.CreateTenant(ctx, org, nil,
			intelliauth.CreateTenantRequest{Name: name, Environment: env, Region: region, ExpiresIn: expiresIn}, intelliauth.WithIdempotencyKey(key)))
		if err == nil {
			if live(intelliauth.TenantState(answer.Tenant.State)) {
				return r.read(ctx, answer.Tenant.Id)
			}
			continue // this generation's tenant has ended since the list was read
		}
		if !isStatus(err, http.StatusConflict) {
			return intelliauth.Tenant{}, err
		}
		// A refusal (name or hostname taken, quota reached) is kept under
		// its key for good, and so is answered again to a later run. It is
		// passed over only when it no longer holds; otherwise it is the
		// answer.
		stale, why := r.refusalStale(ctx, name, err)
		if stale {
			passedOver++
		}
		if !stale || passedOver > maxPassedOver {
			if why != "" {
				return intelliauth.Tenant{}, fmt.Errorf("%s\n%s", errorDetail(err), why)
			}
			return intelliauth.Tenant{}, err
		}
	}
	return intelliauth.Tenant{}, fmt.Errorf("tenant %s: %d generations of this configuration used up", name, maxGenerations)
}

// refusalStale reports whether a creation's refusal no longer holds, so a
// new key may ask again; when it holds, why may say more than the refusal.
func (r *tenantResource) refusalStale(ctx context.Context, name string, refusal error) (bool, string) {
	var api *intelliauth.APIError
	if !errors.As(refusal, &api) {
		return false, ""
	}
	switch msg := api.Message; {
	case strings.Contains(msg, "name") && strings.Contains(msg, "taken"):
		tenants, err := r.tenantsNamed(ctx, name)
		if err != nil {
			return false, ""
		}
		for _, t := range tenants {
			if !live(t.State) {
				continue
			}
			by := "another client"
			if key, ok := creationKeyOf(r.data.orgID, t.WorkflowId); ok && strings.HasPrefix(key, "tf-create-") {
				by = "this provider for another configuration (or this one with another environment or expires_in)"
			}
			return false, fmt.Sprintf("Tenant %s (%s, environment %s, state %s) holds the name; this configuration did not create it: "+
				"%s did (its workflow_id is %s). Import it (tofu import <address> %s) or choose another name.",
				t.Id, t.Name, t.Environment, t.State, by, t.WorkflowId, t.Id)
		}
		// No tenant the caller can see holds it. A service account limited
		// to some environments cannot see the others' tenants: then the
		// holder may be one of those, and asking again is refused again,
		// which changes nothing.
		return true, ""
	case strings.Contains(msg, "quota"):
		org, err := intelliauth.Data[intelliauth.Organization](r.data.client.GetOrganization(ctx, r.data.orgID))
		if err != nil {
			return false, ""
		}
		plans, err := intelliauth.List[intelliauth.Plan](r.data.client.ListPlans(ctx))
		if err != nil {
			// A service account cannot list plans: the refusal stands.
			return false, "The organisation's plan decides its tenant quota (a refusal kept for this configuration is given again until a member's token, which can read the plans, applies it)."
		}
		liveCount := 0
		for t, err := range intelliauth.All[intelliauth.Tenant](ctx, r.listTenants(nil)) {
			if err != nil {
				return false, ""
			}
			if live(t.State) {
				liveCount++
			}
		}
		for _, p := range plans.Items {
			if p.Id == org.Plan {
				return liveCount < p.MaxTenants, ""
			}
		}
	}
	return false, ""
}

// listTenants is the fetch of every page of the organisation's tenants,
// in a state or all.
func (r *tenantResource) listTenants(state *intelliauth.ListTenantsParamsState) func(context.Context, string) (*http.Response, error) {
	return tenantLister(r.data, state)
}

func tenantLister(d *providerData, state *intelliauth.ListTenantsParamsState) func(context.Context, string) (*http.Response, error) {
	return func(ctx context.Context, cursor string) (*http.Response, error) {
		p := &intelliauth.ListTenantsParams{State: state}
		if cursor != "" {
			p.Cursor = &cursor
		}
		return d.client.ListTenants(ctx, d.orgID, p)
	}
}

// tenantsNamed lists the organisation's tenants with the name, in any state.
func (r *tenantResource) tenantsNamed(ctx context.Context, name string) ([]intelliauth.Tenant, error) {
	var out []intelliauth.Tenant
	for t, err := range intelliauth.All[intelliauth.Tenant](ctx, r.listTenants(nil)) {
		if err != nil {
			return nil, err
		}
		if t.Name == name {
			out = append(out, t)
		}
	}
	return out, nil
}

func (r *tenantResource) read(ctx context.Context, id string) (intelliauth.Tenant, error) {
	return intelliauth.Data[intelliauth.Tenant](r.data.client.GetTenant(ctx, r.data.orgID, id))
}

func (r *tenantResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var st tenantModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	t, err := r.read(ctx, st.ID.ValueString())
	if isStatus(err, http.StatusNotFound) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addError(&resp.Diagnostics, "Cannot read tenant "+st.ID.ValueString(), err)
		return
	}
	// An ended tenant is gone for good: the plan creates it anew.
	if t.State == intelliauth.TenantStateDecommissioned || t.State == intelliauth.TenantStateFailed {
		resp.State.RemoveResource(ctx)
		return
	}
	expiresIn := st.ExpiresIn
	switch {
	case t.ExpiresAt == nil:
		// The lifetime was cleared (or never set): the plan gives it back
		// when the configuration has one.
		expiresIn = types.Int64Null()
	case expiresIn.IsNull():
		// A lifetime given outside the configuration (or an import): what
		// is left of it.
		left := int64(math.Ceil(time.Until(*t.ExpiresAt).Seconds()))
		expiresIn = types.Int64Value(max(left, 1))
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, r.model(t, expiresIn))...)
}

func (r *tenantResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior tenantModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	id := prior.ID.ValueString()

	t, err := r.settled(ctx, id)
	if err != nil {
		addError(&resp.Diagnostics, "Cannot read tenant "+id, err)
		return
	}
	// A tenant being decommissioned has no lifetime to change: it is
	// restored first. Otherwise the lifetime is set first, so a refusal
	// leaves the tenant's state as it was.
	restoreFirst := t.State == intelliauth.TenantStateDecommissioning
	lifetimeChanged := !plan.ExpiresIn.Equal(prior.ExpiresIn)
	if lifetimeChanged && !restoreFirst {
		if t, err = r.setLifetime(ctx, t, plan.ExpiresIn); err != nil {
			addError(&resp.Diagnostics, "Cannot change the lifetime of tenant "+id, err)
			return
		}
	}
	if want := plan.State.ValueString(); want != string(t.State) {
		if t, err = r.converge(ctx, t, want); err != nil {
			addError(&resp.Diagnostics, "Cannot bring tenant "+id+" to "+want, err)
			return
		}
	}
	if lifetimeChanged && restoreFirst {
		if t, err = r.setLifetime(ctx, t, plan.ExpiresIn); err != nil {
			addError(&resp.Diagnostics, "Cannot change the lifetime of tenant "+id, err)
			return
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, r.model(t, plan.ExpiresIn))...)
}

// settled reads the tenant once no operation runs on it: one another
// client (or a stopped run of this configuration) started is waited for
// rather than raced.
func (r *tenantResource) settled(ctx context.Context, id string) (intelliauth.Tenant, error) {
	t, err := r.read(ctx, id)
	if err != nil || t.CurrentOperationId == nil {
		return t, err
	}
	// A decommission in its grace period runs until the period ends: the
	// tenant is settled for what can be done with it (restore).
	if t.State == intelliauth.TenantStateDecommissioning {
		return t, nil
	}
	if _, err := r.data.client.WaitForOperation(ctx, r.data.orgID, id, *t.CurrentOperationId); err != nil {
		var opErr *intelliauth.OperationError
		if !errors.As(err, &opErr) {
			return t, err
		}
		// A failed operation left the tenant in a state of its own; what
		// to do next is decided from that state.
	}
	return r.read(ctx, id)
}

// setLifetime gives the tenant the lifetime, or clears it.
func (r *tenantResource) setLifetime(ctx context.Context, t intelliauth.Tenant, expiresIn types.Int64) (intelliauth.Tenant, error) {
	body := intelliauth.LifetimeRequest{}
	what := "none"
	if !expiresIn.IsNull() {
		v := expiresIn.ValueInt64()
		body.ExpiresIn = &v
		what = fmt.Sprint(v)
	}
	key := transitionKey(t.Id, "lifetime", t.UpdatedAt, what)
	return intelliauth.Data[intelliauth.Tenant](r.data.client.SetTenantLifetime(ctx, r.data.orgID, t.Id, nil, body, intelliauth.WithIdempotencyKey(key)))
}

// converge runs the transitions that bring the tenant from its state to
// the wanted one (active or suspended), waiting for each: a tenant being
// decommissioned is restored first (it comes back suspended).
func (r *tenantResource) converge(ctx context.Context, t intelliauth.Tenant, want string) (intelliauth.Tenant, error) {
	for range 4 {
		if string(t.State) == want {
			return t, nil
		}
		var (
			kind string
			call func(key string) (*http.Response, error)
		)
		org, id := r.data.orgID, t.Id
		switch {
		case t.State == intelliauth.TenantStateDecommissioning:
			kind = "restore"
			call = func(key string) (*http.Response, error) {
				return r.data.client.RestoreTenant(ctx, org, id, nil, intelliauth.WithIdempotencyKey(key))
			}
		case t.State == intelliauth.TenantStateActive && want == "suspended":
			kind = "suspend"
			call = func(key string) (*http.Response, error) {
				return r.data.client.SuspendTenant(ctx, org, id, nil, intelliauth.WithIdempotencyKey(key))
			}
		case t.State == intelliauth.TenantStateSuspended && want == "active":
			kind = "resume"
			call = func(key string) (*http.Response, error) {
				return r.data.client.ResumeTenant(ctx, org, id, nil, intelliauth.WithIdempotencyKey(key))
			}
		default:
			return t, fmt.Errorf("tenant %s is %s: it cannot be made %s", id, t.State, want)
		}
		answer, err := intelliauth.Data[intelliauth.LifecycleResult](call(transitionKey(id, kind, t.UpdatedAt)))
		if err != nil {
			return t, err
		}
		if kind == "restore" {
			// A restore runs no operation of its own: it calls off the
			// decommission (the operation its answer names, cancelled),
			// and the tenant is left suspended.
			if t, err = r.data.client.WaitForTenant(ctx, org, id, intelliauth.TenantStateSuspended); err != nil {
				return t, err
			}
			continue
		}
		if _, err := r.data.client.WaitForOperation(ctx, org, id, answer.Operation.Id); err != nil {
			return t, err
		}
		if t, err = r.read(ctx, id); err != nil {
			return t, err
		}
	}
	return t, fmt.Errorf("tenant %s is %s after its transitions, not %s", t.Id, t.State, want)
}

func (r *tenantResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var st tenantModel
	resp.Diagnostics.Append(req.State.Get(ctx, &st)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, operationTimeout)
	defer cancel()
	id := st.ID.ValueString()
	t, err := r.settled(ctx, id)
	if isStatus(err, http.StatusNotFound) {
		return
	}
	if err != nil {
		addError(&resp.Diagnostics, "Cannot read tenant "+id, err)
		return
	}
	if !live(t.State) {
		return // decommissioning, decommissioned or failed: nothing to do
	}
	if t.State == intelliauth.TenantStateProvisioning {
		// A provisioning that failed for good and is waiting for an
		// operator cannot be decommissioned until it is repaired.
		addError(&resp.Diagnostics, "Cannot decommission tenant "+id, fmt.Errorf("tenant %s is still provisioning: its saga needs an operator's repair (docs/runbook.md) before it can be decommissioned", id))
		return
	}
	key := transitionKey(id, "decommission", t.UpdatedAt)
	answer, err := intelliauth.Data[intelliauth.LifecycleResult](r.data.client.DecommissionTenant(ctx, r.data.orgID, id, nil, intelliauth.WithIdempotencyKey(key)))
	if err != nil {
		addError(&resp.Diagnostics, "Cannot decommission tenant "+id, err)
		return
	}
	if err := r.waitDecommissioning(ctx, id, answer.Operation.Id); err != nil {
		addError(&resp.Diagnostics, "Tenant "+id+" was not decommissioned", err)
	}
}

// waitDecommissioning waits until the decommission has suspended the
// tenant and entered its grace period (state decommissioning), or ended it
// (decommissioned, with no grace period). The operation runs on through
// the grace period, which lasts days: the destroy does not wait for it.
func (r *tenantResource) waitDecommissioning(ctx context.Context, id, operationID string) error {
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 3*time.Second) {
		t, err := r.read(ctx, id)
		if err != nil {
			return err
		}
		if t.State == intelliauth.TenantStateDecommissioning || t.State == intelliauth.TenantStateDecommissioned {
			return nil
		}
		op, err := r.data.client.FindOperation(ctx, r.data.orgID, id, operationID)
		if err != nil {
			return err
		}
		if op.Status != intelliauth.OperationRunning {
			// Ended without the tenant reaching its grace period: the
			// wait names the step that failed.
			if _, err := r.data.client.WaitForOperation(ctx, r.data.orgID, id, operationID); err != nil {
				return err
			}
			return fmt.Errorf("the decommission %s ended %s with tenant %s %s", operationID, op.Status, id, t.State)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for tenant %s to enter its decommission's grace period, it is %s: %w", id, t.State, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// model is the tenant as the resource's state holds it; expiresIn is
// the configuration's (the server keeps only its end).
func (r *tenantResource) model(t intelliauth.Tenant, expiresIn types.Int64) tenantModel {
	m := tenantModel{
		ID:          types.StringValue(t.Id),
		Name:        types.StringValue(t.Name),
		Environment: types.StringValue(t.Environment),
		Region:      types.StringPointerValue(t.Region),
		ExpiresIn:   expiresIn,
		State:       types.StringValue(string(t.State)),
		Hostname:    types.StringValue(t.Hostname),
		AdminURL:    types.StringValue(t.AdminUrl),
		WorkflowID:  types.StringValue(t.WorkflowId),
		CreatedAt:   types.StringValue(t.CreatedAt.UTC().Format(time.RFC3339Nano)),
		ExpiresAt:   types.StringNull(),
	}
	if t.ExpiresAt != nil {
		m.ExpiresAt = types.StringValue(t.ExpiresAt.UTC().Format(time.RFC3339Nano))
	}
	m.CurrentOperationID = types.StringPointerValue(t.CurrentOperationId)
	return m
}
