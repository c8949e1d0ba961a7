package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// LifetimeChange gives a tenant a new end (nil: none), as a request of
// the caller's; UpdateID identifies the request across retries.
type LifetimeChange struct {
	TenantID  string
	ExpiresAt *time.Time
	UpdateID  string
	Request   TenantRequest
}

// SetLifetime writes a tenant's new end and its tenant.lifetime_changed
// event, with the end before and after, in one transaction; a retry writes
// the event once. The lifetime the tenant was created with
// (lifetime_seconds) stays: it is what a retry of the creation compares.
func SetLifetime(ctx context.Context, db bun.IDB, in LifetimeChange) (Tenant, error) {
	var t Tenant
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := tx.NewSelect().Model(&t).Where("id = ?", in.TenantID).For("NO KEY UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("load tenant %s: %w", in.TenantID, err)
		}
		if domain.State(t.State).Ended() {
			return domain.Errorf(domain.CodeConflict, "the tenant is %s: it has no lifetime to change", t.State)
		}
		before := t.ExpiresAt
		t.ExpiresAt, t.UpdatedAt = in.ExpiresAt, time.Now().UTC().Truncate(time.Microsecond)
		if _, err := tx.NewUpdate().Model(&t).Column("expires_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update tenant %s: %w", in.TenantID, err)
		}
		return tenantEvent(ctx, tx, t, in.Request, "", "tenant.lifetime_changed",
			map[string]any{"before": map[string]any{"expires_at": before}, "after": map[string]any{"expires_at": in.ExpiresAt}},
			true, lifetimeEventKey(t.WorkflowID, in.UpdateID))
	})
	return t, err
}

// lifetimeEventKey is the dedup key of the event of the lifetime change a
// tenant's workflow ran as its update updateID.
func lifetimeEventKey(workflowID, updateID string) string {
	return workflowID + "/lifetime/" + updateID
}

// LifetimeChanged reports whether the lifetime change of the update
// updateID was written: a retry of it changes nothing new.
func LifetimeChanged(ctx context.Context, db bun.IDB, workflowID, updateID string) (bool, error) {
	ok, err := db.NewSelect().Model((*AuditEvent)(nil)).Where("dedup_key = ?", lifetimeEventKey(workflowID, updateID)).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("find lifetime change %s: %w", updateID, err)
	}
	return ok, nil
}
