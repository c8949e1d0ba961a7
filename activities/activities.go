// Package activities is the control plane's I/O on behalf of workflows:
// every activity persists state and audit events through internal/store
// (one store call, in its transaction) or acts on the data plane, and is
// safe to retry.
package activities

import (
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/dataplane"
)

// Activities holds the activities' dependencies; its methods are registered
// once on the worker.
type Activities struct {
	DB        *bun.DB
	DataPlane dataplane.Plane
	// Tenants reaches tenants' sagas, for an organisation's deletion (nil
	// in a worker that runs no organisation workflow).
	Tenants TenantSagas
	// UsageReporter is given each closed usage day (nil: billing is off,
	// and ReportUsageDay does nothing).
	UsageReporter UsageReporter
	// Stripe cancels a deleted organisation's subscription (nil: billing
	// off).
	Stripe *billing.Stripe
}
