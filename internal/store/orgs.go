package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// OrgWithRole is an organisation and the caller's membership in it.
type OrgWithRole struct {
	Organization
	MemberID string `bun:"member_id"`
	Role     string `bun:"role"`
}

// OrgByID returns the organisation.
func OrgByID(ctx context.Context, db bun.IDB, id string) (Organization, error) {
	var o Organization
	err := db.NewSelect().Model(&o).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return o, domain.Errorf(domain.CodeNotFound, "organization not found: %s", id)
	}
	if err != nil {
		return o, fmt.Errorf("load organisation %s: %w", id, err)
	}
	return o, nil
}

// OrgsOfUser returns one page of the user's organisations in id order,
// after the id `after` (empty: from the start), at most limit+1 rows so the
// caller can tell whether there is more.
func OrgsOfUser(ctx context.Context, db bun.IDB, userID, after string, limit int) ([]OrgWithRole, error) {
	var out []OrgWithRole
	q := db.NewSelect().
		TableExpr("organizations AS o").
		ColumnExpr("o.*, m.id AS member_id, m.role").
		Join("JOIN members AS m ON m.org_id = o.id AND m.user_id = ?", userID).
		OrderExpr("o.id").
		Limit(int64(limit + 1))
	if after != "" {
		q = q.Where("o.id > ?", after)
	}
	if err := q.Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list organisations of %s: %w", userID, err)
	}
	return out, nil
}

// PlanByID returns the plan.
func PlanByID(ctx context.Context, db bun.IDB, id string) (Plan, error) {
	var p Plan
	err := db.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return p, domain.Errorf(domain.CodeNotFound, "plan not found: %s", id)
	}
	if err != nil {
		return p, fmt.Errorf("load plan %s: %w", id, err)
	}
	return p, nil
}

// Plans returns every plan, smallest first (by tenant quota, then id), in
// an order that does not change between calls.
func Plans(ctx context.Context, db bun.IDB) ([]Plan, error) {
	var ps []Plan
	if err := db.NewSelect().Model(&ps).OrderExpr("max_tenants, id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load plans: %w", err)
	}
	return ps, nil
}

// lockOrgPlan locks an organisation's row and reads its plan; prepared:
// every creation and every quota's check runs it.
var lockOrgPlan = prepare(`SELECT p.id, p.name, p.max_tenants, p.max_members, p.requests_per_minute, p.max_service_accounts, o.state
	FROM organizations o JOIN plans p ON p.id = o.plan_id WHERE o.id = $1 FOR NO KEY UPDATE OF o`)

// LockPlan locks the organisation's row, so quota checks of concurrent
// requests run one after the other, and returns its plan. What it guards
// creates something (a tenant, an invitation, a service account): an
// organisation that is not active refuses it, in the same lock its
// deletion takes, so nothing is created behind a deletion's back. A
// transaction that takes it first thing runs in the organisation's turn
// (inPlanTurn), so that its waiters queue in the process, not in Postgres.
func LockPlan(ctx context.Context, tx bun.Tx, orgID string) (Plan, error) {
	var plan Plan
	var state string
	err := lockOrgPlan.scan(ctx, tx, []any{orgID},
		&plan.ID, &plan.Name, &plan.MaxTenants, &plan.MaxMembers, &plan.RequestsPerMinute, &plan.MaxServiceAccounts, &state)
	if err != nil {
		return plan, fmt.Errorf("lock organisation %s: %w", orgID, err)
	}
	if state != string(domain.OrgActive) {
		return plan, domain.ErrOrgDeleting()
	}
	return plan, nil
}

// Usage is an organisation's plan and what its quotas count now.
type Usage struct {
	Plan Plan
	// Tenants are the tenants the tenant quota counts (CountLiveTenants).
	Tenants int
	// Members and PendingInvitations are the seats the member quota
	// counts (CountMembers is their sum).
	Members            int
	PendingInvitations int
	// ServiceAccounts are the accounts the service-account quota counts.
	ServiceAccounts int
}

// OrgUsage returns the organisation's plan and the counts its quotas
// check, read in one statement from the same queries the checks run, so
// they agree with each other and with what a creation would be told.
func OrgUsage(ctx context.Context, db bun.IDB, orgID string) (Usage, error) {
	var row struct {
		Plan
		Tenants            int `bun:"tenants"`
		Members            int `bun:"members"`
		PendingInvitations int `bun:"pending_invitations"`
		ServiceAccounts    int `bun:"service_accounts"`
	}
	err := db.NewRaw(`SELECT p.id, p.name, p.max_tenants, p.max_members, p.requests_per_minute, p.max_service_accounts, p.audit_retention_days,
		(`+liveTenants+`) AS tenants, (`+memberSeats+`) AS members, (`+invitationSeats+`) AS pending_invitations,
		(`+liveServiceAccounts+`) AS service_accounts
		FROM organizations o JOIN plans p ON p.id = o.plan_id WHERE o.id = ?`, orgID, orgID, orgID, orgID, orgID).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return Usage{}, domain.Errorf(domain.CodeNotFound, "organization not found: %s", orgID)
	}
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %s: %w", orgID, err)
	}
	return Usage{Plan: row.Plan, Tenants: row.Tenants, Members: row.Members, PendingInvitations: row.PendingInvitations,
		ServiceAccounts: row.ServiceAccounts}, nil
}

// OrgChange is a change to an organisation: a new name, a new plan, or
// both (nil: unchanged).
type OrgChange struct {
	Name *string
	Plan *string
	// RequireMFA holds members without a second factor at the door.
	RequireMFA *bool
	// DefaultRegion is where its new tenants go when a creation names no
	// region.
	DefaultRegion *string
	// PlanCheck (nil: none) is asked, under the row's lock, before the
	// plan is changed to another; its error refuses the whole change.
	PlanCheck func() error
}

// UpdateOrganization renames the organisation and changes its plan, in one
// transaction with its row locked, and records organization.updated with
// the before and after of what changed (ev is the request's). An unknown
// plan is refused as a bad request; a change to what the organisation
// already has writes nothing. It returns the organisation as it is.
func UpdateOrganization(ctx context.Context, db bun.IDB, orgID string, ch OrgChange, ev EventBase) (Organization, error) {
	if ch.Plan != nil {
		if _, err := PlanByID(ctx, db, *ch.Plan); err != nil {
			if domain.ErrorCode(err) == domain.CodeNotFound {
				return Organization{}, &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
					FieldErrors: []domain.FieldError{{Field: "plan", Message: "unknown plan; one of free, team, enterprise"}}}
			}
			return Organization{}, err
		}
	}
	var o Organization
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if o, err = lockOrganization(ctx, tx, orgID); err != nil {
			return err
		}
		if o.State != string(domain.OrgActive) {
			return domain.ErrOrgDeleting()
		}
		before, after := map[string]any{}, map[string]any{}
		if ch.Name != nil && *ch.Name != o.Name {
			before["name"], after["name"] = o.Name, *ch.Name
			o.Name = *ch.Name
		}
		if ch.Plan != nil && *ch.Plan != o.PlanID {
			if ch.PlanCheck != nil {
				if err := ch.PlanCheck(); err != nil {
					return err
				}
			}
			before["plan"], after["plan"] = o.PlanID, *ch.Plan
			o.PlanID = *ch.Plan
		}
		if ch.RequireMFA != nil && *ch.RequireMFA != o.RequireMFA {
			before["require_mfa"], after["require_mfa"] = o.RequireMFA, *ch.RequireMFA
			o.RequireMFA = *ch.RequireMFA
		}
		if ch.DefaultRegion != nil && (o.DefaultRegion == nil || *ch.DefaultRegion != *o.DefaultRegion) {
			before["default_region"], after["default_region"] = o.DefaultRegion, *ch.DefaultRegion
			region := *ch.DefaultRegion
			o.DefaultRegion = &region
		}
		if len(after) == 0 {
			return nil
		}
		o.UpdatedAt = time.Now().UTC()
		if _, err := tx.NewUpdate().Model(&o).Column("name", "plan_id", "require_mfa", "default_region", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update organisation %s: %w", orgID, err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("organization.updated", "organization", o.ID, map[string]any{"before": before, "after": after}))
		return err
	})
	return o, err
}

// lockOrganization reads the organisation with its row locked for the rest
// of tx: the one order of the writes that change it. Like LockPlan it
// locks FOR NO KEY UPDATE, which serialises those writers but not the
// foreign-key checks of rows that name the organisation (an audit event
// written by a transaction that holds the organisation's chain head),
// which would otherwise wait for it while it waits for the head.
func lockOrganization(ctx context.Context, tx bun.Tx, id string) (Organization, error) {
	var o Organization
	if err := tx.NewSelect().Model(&o).Where("id = ?", id).For("NO KEY UPDATE").Scan(ctx); err != nil {
		return o, fmt.Errorf("lock organisation %s: %w", id, err)
	}
	return o, nil
}
