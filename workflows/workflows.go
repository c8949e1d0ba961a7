// Package workflows is the control plane's orchestration: the Temporal
// workflows that drive each tenant's lifecycle, and the names (task queue
// default, search attributes, signals, updates) that the API, the worker
// and operators share. Workflow code is deterministic; all I/O is in
// activities/.
package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// DefaultTaskQueue is the task queue of the control plane's workers unless
// CP_TASK_QUEUE names another.
const DefaultTaskQueue = "controlplane"

// Search attributes operators filter on in the Temporal UI and CLI
// e.g. SagaStatus='stuck' AND OrgId='org_…'.
var (
	SearchAttrOrgID       = temporal.NewSearchAttributeKeyKeyword("OrgId")
	SearchAttrTenantID    = temporal.NewSearchAttributeKeyKeyword("TenantId")
	SearchAttrTenantState = temporal.NewSearchAttributeKeyKeyword("TenantState")
	SearchAttrSagaStatus  = temporal.NewSearchAttributeKeyKeyword("SagaStatus")
)

// SearchAttributes are the custom search attributes to register on the
// namespace, by name and type.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{SearchAttrOrgID, SearchAttrTenantID, SearchAttrTenantState, SearchAttrSagaStatus} {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}
