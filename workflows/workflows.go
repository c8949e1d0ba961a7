// Package workflows is the control plane's orchestration: the Temporal
// workflows that drive each tenant's lifecycle, and the names (task queue
// default, search attributes, signals, updates) that the API, the worker
// and operators share. Workflow code is deterministic; all I/O is in
// activities/.
package workflows

import (
	"time"

	commonpb "go.temporal.io/api/common/v1"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
)

// DefaultTaskQueue is the task queue of the control plane's workers unless
// CP_TASK_QUEUE names another.
const DefaultTaskQueue = "controlplane"

// TenantWorkflowType is the tenant workflow's type name, as visibility
// queries name it.
const TenantWorkflowType = "TenantWorkflow"

// StepTimeout bounds one attempt of a data-plane step; a worker that stops
// gives the steps it runs this long to finish (its WorkerStopTimeout).
const StepTimeout = 2 * time.Minute

// StepHeartbeatTimeout is how soon a step whose worker died is given to
// another worker.
const StepHeartbeatTimeout = 5 * time.Second

// WriteTimeout bounds one attempt of a short database write.
const WriteTimeout = 10 * time.Second

// Search attributes operators filter on in the Temporal UI and CLI
// e.g. SagaStatus='stuck' AND OrgId='org_…'.
var (
	SearchAttrOrgID       = temporal.NewSearchAttributeKeyKeyword("OrgId")
	SearchAttrTenantID    = temporal.NewSearchAttributeKeyKeyword("TenantId")
	SearchAttrTenantState = temporal.NewSearchAttributeKeyKeyword("TenantState")
	SearchAttrSagaStatus  = temporal.NewSearchAttributeKeyKeyword("SagaStatus")
)

// Keyword decodes the keyword search attribute key from attrs, as a
// listing or a description returns them ("" when it is not set).
func Keyword(attrs *commonpb.SearchAttributes, key temporal.SearchAttributeKeyKeyword) string {
	p, ok := attrs.GetIndexedFields()[key.GetName()]
	if !ok {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		return ""
	}
	return v
}

// SearchAttributes are the custom search attributes to register on the
// namespace, by name and type.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	out := map[string]enumspb.IndexedValueType{}
	for _, k := range []temporal.SearchAttributeKeyKeyword{SearchAttrOrgID, SearchAttrTenantID, SearchAttrTenantState, SearchAttrSagaStatus} {
		out[k.GetName()] = enumspb.INDEXED_VALUE_TYPE_KEYWORD
	}
	return out
}

// WorkerOptions sizes a worker to its database pool of dbConns
// connections: half for data-plane steps and saga records (activity
// tasks), half for the writes requests wait for (local activities), so
// neither waits for a connection behind the other and nothing queues inside
// the pool. A worker that stops gives a running step its whole timeout to
// finish.
func WorkerOptions(dbConns int) worker.Options {
	activities := max(1, dbConns/2)
	return worker.Options{
		MaxConcurrentActivityExecutionSize:      activities,
		MaxConcurrentLocalActivityExecutionSize: max(1, dbConns-activities),
		WorkerStopTimeout:                       StepTimeout,
	}
}

// RegionWorkerOptions are the options of a region's worker: activities
// only (the data-plane steps), one database connection each, no workflow
// or local activity of its own; it stops as the control plane's does.
func RegionWorkerOptions(dbConns int) worker.Options {
	return worker.Options{
		MaxConcurrentActivityExecutionSize: max(1, dbConns),
		DisableWorkflowWorker:              true,
		WorkerStopTimeout:                  StepTimeout,
	}
}
