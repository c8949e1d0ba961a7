package workflows

import (
	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/store"
)

// The payloads of the saga's client: the request a caller sends, and the
// answer, the tenant and operation as the saga wrote them. They are the
// activities' own types (the activities write them), named here so that
// the API depends on the saga through this package alone.
type (
	Request         = activities.Request
	OperationResult = activities.OperationResult
	TenantRecord    = activities.TenantRecord
	OperationRecord = activities.OperationRecord
)

// ResultOf is the answer the saga gives for rows Postgres holds.
func ResultOf(a store.OperationAnswer) OperationResult { return activities.ResultOf(a) }

// TenantRecordOf is a tenant row as the saga's answers carry it.
func TenantRecordOf(t store.Tenant) TenantRecord { return activities.TenantRecordOf(t) }

// OperationRecordOf is an operation row as the saga's answers carry it.
func OperationRecordOf(op store.Operation) OperationRecord { return activities.OperationRecordOf(op) }
