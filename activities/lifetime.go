package activities

import (
	"context"
	"time"

	"github.com/intelliauth/controlplane/internal/store"
)

// LifetimeInput gives a tenant a new end (nil: none), as Request asks.
type LifetimeInput struct {
	TenantID  string
	ExpiresAt *time.Time `json:",omitempty"`
	UpdateID  string
	Request   Request
}

// SetLifetime writes a tenant's new end with its audit event.
func (a *Activities) SetLifetime(ctx context.Context, in LifetimeInput) (TenantRecord, error) {
	t, err := store.SetLifetime(ctx, a.DB, store.LifetimeChange{TenantID: in.TenantID, ExpiresAt: in.ExpiresAt, UpdateID: in.UpdateID, Request: in.Request.stored()})
	return TenantRecordOf(t), asApplicationError(err)
}
