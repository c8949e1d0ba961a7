package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// unlessChanged keeps a computed attribute's value from the state in the
// plan, as UseStateForUnknown does, unless the attribute it follows
// (an Int64 attribute) changes: then it is known only after the apply.
func unlessChanged(follows path.Path) planmodifier.String {
	return unlessChangedModifier{follows: follows}
}

type unlessChangedModifier struct {
	follows path.Path
}

func (m unlessChangedModifier) Description(context.Context) string {
	return "Keeps the value from the state unless " + m.follows.String() + " changes."
}

func (m unlessChangedModifier) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (m unlessChangedModifier) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	// Nothing to keep when creating or destroying, nor when the
	// configuration sets the value.
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || !req.PlanValue.IsUnknown() || req.ConfigValue.IsUnknown() {
		return
	}
	var planned, prior types.Int64
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, m.follows, &planned)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, m.follows, &prior)...)
	if resp.Diagnostics.HasError() || !planned.Equal(prior) {
		return
	}
	resp.PlanValue = req.StateValue
}
