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

// MemberView is a member with its user's email and name.
type MemberView struct {
	ID     string `bun:"id" json:"id"`
	OrgID  string `bun:"org_id" json:"org_id"`
	UserID string `bun:"user_id" json:"user_id"`
	Email  string `bun:"email" json:"email"`
	Name   string `bun:"name" json:"name"`
	Role   string `bun:"role" json:"role"`
	// MFAEnabled: the member's user has a second factor (TOTP or a
	// passkey), which an organisation requiring MFA asks of everyone.
	MFAEnabled bool      `bun:"mfa_enabled" json:"mfa_enabled" doc:"the member has a second factor (an authenticator app or a passkey)"`
	CreatedAt  time.Time `bun:"created_at" json:"created_at"`
	UpdatedAt  time.Time `bun:"updated_at" json:"updated_at"`
}

func memberQuery(db bun.IDB) *bun.SelectQuery {
	return db.NewSelect().
		TableExpr("members AS m").
		ColumnExpr("m.id, m.org_id, m.user_id, u.email, u.name, m.role, m.created_at, m.updated_at").
		ColumnExpr(fmt.Sprintf(hasFactorSQL, "m.user_id") + " AS mfa_enabled").
		Join("JOIN users AS u ON u.id = m.user_id")
}

// Keyset is a position in a list ordered by (created_at, id).
type Keyset struct {
	CreatedAt time.Time
	ID        string
}

// ListMembers returns up to limit+1 members of the organisation after the
// keyset position (zero: from the start), oldest first.
func ListMembers(ctx context.Context, db bun.IDB, orgID string, after Keyset, limit int) ([]MemberView, error) {
	var out []MemberView
	q := memberQuery(db).Where("m.org_id = ?", orgID).OrderExpr("m.created_at, m.id").Limit(int64(limit + 1))
	if after.ID != "" {
		q = q.Where("(m.created_at, m.id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx, &out); err != nil {
		return nil, fmt.Errorf("list members of %s: %w", orgID, err)
	}
	return out, nil
}

// MemberByID returns a member of the organisation.
func MemberByID(ctx context.Context, db bun.IDB, orgID, memberID string) (MemberView, error) {
	var m MemberView
	err := memberQuery(db).Where("m.org_id = ? AND m.id = ?", orgID, memberID).Scan(ctx, &m)
	if errors.Is(err, sql.ErrNoRows) {
		return m, domain.Errorf(domain.CodeNotFound, "member not found: %s", memberID)
	}
	if err != nil {
		return m, fmt.Errorf("load member %s: %w", memberID, err)
	}
	return m, nil
}

// lockOwners locks the organisation's owner rows and returns how many there
// are, so two concurrent demotions can't both see a second owner.
func lockOwners(ctx context.Context, tx bun.Tx, orgID string) (int, error) {
	var ids []string
	if err := tx.NewRaw("SELECT id FROM members WHERE org_id = ? AND role = 'owner' ORDER BY id FOR UPDATE", orgID).Scan(ctx, &ids); err != nil {
		return 0, fmt.Errorf("lock owners of %s: %w", orgID, err)
	}
	return len(ids), nil
}

// ChangeRole sets a member's role. check decides, with the target as it is
// under lock, whether the caller may make the change; the last owner is
// never demoted. The audit event is written in the same transaction, and
// so is the revocation of the service-account tokens the member minted
// that their new role may not mint (minter_demoted).
func ChangeRole(ctx context.Context, db *bun.DB, orgID, memberID string, role domain.Role, check func(target MemberView) error, ev EventBase) (before, after MemberView, err error) {
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		owners, err := lockOwners(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if before, err = MemberByID(ctx, tx, orgID, memberID); err != nil {
			return err
		}
		if err := check(before); err != nil {
			return err
		}
		if before.Role == string(domain.RoleOwner) && role != domain.RoleOwner && owners <= 1 {
			return domain.Errorf(domain.CodeConflict, "member %s is the last owner of the organization and cannot be demoted", memberID)
		}
		after = before
		if before.Role == string(role) {
			return nil // nothing changes, nothing to record
		}
		now := time.Now().UTC()
		if _, err := tx.NewUpdate().Model((*Member)(nil)).Set("role = ?, updated_at = ?", role, now).Where("id = ?", memberID).Exec(ctx); err != nil {
			return fmt.Errorf("update role of %s: %w", memberID, err)
		}
		after.Role, after.UpdatedAt = string(role), now
		var evs []*AuditEvent
		if before.Role == string(domain.RoleOwner) {
			if evs, err = revokeOwnerInvitations(ctx, tx, orgID, before.UserID, ev); err != nil {
				return err
			}
		}
		revoked, err := revokeTokensMintedBy(ctx, tx, orgID, memberID, RevokedMinterDemoted, ev)
		if err != nil {
			return err
		}
		return insertEvents(ctx, tx, append(append(evs, revoked...), ev.Event("member.role_changed", "member", memberID,
			map[string]any{"before": map[string]any{"role": before.Role}, "after": map[string]any{"role": after.Role}, "user_id": before.UserID, "email": before.Email})))
	})
	return before, after, err
}

// errLastOwnerLeaving tells the last owner how they can go: an
// organisation always has an owner.
var errLastOwnerLeaving = &domain.Error{Code: domain.CodeConflict,
	Message: "you are the last owner of the organization, which always has one: make another member an owner first (hand it over), or delete the organization"}

// RemoveMember deletes a member (a member removing itself is leaving).
// check decides under lock whether the caller may; the last owner is never
// removed. Removing the membership ends the user's access to the
// organisation at once: every request checks membership. The
// service-account tokens the member minted are revoked in the same
// transaction (minter_removed or minter_left).
func RemoveMember(ctx context.Context, db *bun.DB, orgID, memberID string, check func(target MemberView) error, ev EventBase, leaving bool) (MemberView, error) {
	var target MemberView
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		owners, err := lockOwners(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if target, err = MemberByID(ctx, tx, orgID, memberID); err != nil {
			return err
		}
		if err := check(target); err != nil {
			return err
		}
		if target.Role == string(domain.RoleOwner) && owners <= 1 {
			if leaving {
				return errLastOwnerLeaving
			}
			return domain.Errorf(domain.CodeConflict, "member %s is the last owner of the organization and cannot be removed or leave", memberID)
		}
		if _, err := tx.NewDelete().Model((*Member)(nil)).Where("id = ?", memberID).Exec(ctx); err != nil {
			return fmt.Errorf("delete member %s: %w", memberID, err)
		}
		var evs []*AuditEvent
		if target.Role == string(domain.RoleOwner) {
			if evs, err = revokeOwnerInvitations(ctx, tx, orgID, target.UserID, ev); err != nil {
				return err
			}
		}
		action, reason := "member.removed", RevokedMinterRemoved
		if leaving {
			action, reason = "member.left", RevokedMinterLeft
		}
		revoked, err := revokeTokensMintedBy(ctx, tx, orgID, memberID, reason, ev)
		if err != nil {
			return err
		}
		return insertEvents(ctx, tx, append(append(evs, revoked...), ev.Event(action, "member", memberID,
			map[string]any{"before": map[string]any{"role": target.Role, "user_id": target.UserID, "email": target.Email}})))
	})
	return target, err
}

// The member quota's seats of organisation ?: its members, and its
// pending invitations that have not expired.
const (
	memberSeats     = `SELECT count(*) FROM members WHERE org_id = ?`
	invitationSeats = `SELECT count(*) FROM invitations WHERE org_id = ? AND status = 'pending' AND expires_at > now()`
)

// CountMembers returns the organisation's members plus its pending
// invitations, which the member quota counts.
func CountMembers(ctx context.Context, db bun.IDB, orgID string) (int, error) {
	var n int
	err := db.NewRaw(`SELECT (`+memberSeats+`) + (`+invitationSeats+`)`, orgID, orgID).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("count members of %s: %w", orgID, err)
	}
	return n, nil
}
