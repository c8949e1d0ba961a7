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

// InvitationPrefix marks invitation secrets.
const InvitationPrefix = "cpi_"

// InvitationView is an invitation as the API shows it: never its secret,
// and "expired" once a pending one is past its expiry.
type InvitationView struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"org_id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Status    string    `json:"status"`
	InvitedBy string    `json:"invited_by"`
	ExpiresAt time.Time `json:"expires_at"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// View returns the API's view of the invitation at time now.
func (i Invitation) View(now time.Time) InvitationView {
	status := i.Status
	if status == "pending" && !now.Before(i.ExpiresAt) {
		status = "expired"
	}
	return InvitationView{ID: i.ID, OrgID: i.OrgID, Email: i.Email, Role: i.Role, Status: status,
		InvitedBy: i.InvitedBy, ExpiresAt: i.ExpiresAt, CreatedAt: i.CreatedAt, UpdatedAt: i.UpdatedAt}
}

// Mail is the message that carries an invitation's secret.
type Mail func(inv Invitation, secret string) OutboxMessage

// InviteInput is a new invitation.
type InviteInput struct {
	OrgID     string
	Email     string
	Role      domain.Role
	InvitedBy string // user id
	TTL       time.Duration
}

// Invite creates a pending invitation and queues its mail, in one
// transaction with its audit event. It refuses an email that is a member or
// has a pending invitation, and a member quota that is reached (members and
// pending invitations count).
func Invite(ctx context.Context, db *bun.DB, in InviteInput, mail Mail, ev EventBase) (Invitation, error) {
	secret, hash, err := NewSecret(InvitationPrefix)
	if err != nil {
		return Invitation{}, err
	}
	now := time.Now().UTC()
	inv := Invitation{ID: domain.NewID(domain.PrefixInvitation), OrgID: in.OrgID, Email: in.Email, Role: string(in.Role),
		TokenHash: hash, Status: "pending", InvitedBy: in.InvitedBy, ExpiresAt: now.Add(in.TTL), CreatedAt: now, UpdatedAt: now}
	err = inPlanTurn(ctx, db, in.OrgID, func(ctx context.Context, tx bun.Tx) error {
		plan, err := LockPlan(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		var isMember bool
		if err := tx.NewRaw(`SELECT EXISTS (SELECT 1 FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND u.email = ?)`, in.OrgID, in.Email).Scan(ctx, &isMember); err != nil {
			return fmt.Errorf("check membership: %w", err)
		}
		if isMember {
			return domain.Errorf(domain.CodeConflict, "%s is already a member of the organization", in.Email)
		}
		// A pending invitation past its expiry no longer blocks a new one.
		if _, err := tx.NewUpdate().Model((*Invitation)(nil)).Set("status = 'expired', updated_at = ?", now).
			Where("org_id = ? AND email = ? AND status = 'pending' AND expires_at <= ?", in.OrgID, in.Email, now).Exec(ctx); err != nil {
			return fmt.Errorf("expire old invitations: %w", err)
		}
		var pending string
		err = tx.NewSelect().Model((*Invitation)(nil)).Column("id").Where("org_id = ? AND email = ? AND status = 'pending'", in.OrgID, in.Email).Scan(ctx, &pending)
		if err == nil {
			return domain.Errorf(domain.CodeConflict, "a pending invitation for %s exists: %s", in.Email, pending)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up pending invitation: %w", err)
		}
		n, err := CountMembers(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		if n >= plan.MaxMembers {
			return domain.Errorf(domain.CodeConflict, "member quota reached: plan %s allows %d members, pending invitations included", plan.ID, plan.MaxMembers)
		}
		if _, err := tx.NewInsert().Model(&inv).Exec(ctx); err != nil {
			return fmt.Errorf("insert invitation: %w", err)
		}
		msg := mail(inv, secret)
		if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
			return fmt.Errorf("queue invitation mail: %w", err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("invitation.created", "invitation", inv.ID,
			map[string]any{"after": map[string]any{"email": inv.Email, "role": inv.Role, "expires_at": inv.ExpiresAt}}))
		return err
	})
	if IsUniqueViolation(err, "invitations_pending_email_key") {
		return Invitation{}, domain.Errorf(domain.CodeConflict, "a pending invitation for %s exists", in.Email)
	}
	return inv, err
}

func lockInvitation(ctx context.Context, tx bun.Tx, orgID, id string) (Invitation, error) {
	var inv Invitation
	err := tx.NewSelect().Model(&inv).Where("org_id = ? AND id = ?", orgID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, domain.Errorf(domain.CodeNotFound, "invitation not found: %s", id)
	}
	if err != nil {
		return inv, fmt.Errorf("load invitation %s: %w", id, err)
	}
	return inv, nil
}

// Resend gives a pending invitation a new secret (the old one stops
// working) and a new expiry, and queues its mail again.
func Resend(ctx context.Context, db *bun.DB, orgID, id string, ttl time.Duration, check func(Invitation) error, mail Mail, ev EventBase) (Invitation, error) {
	secret, hash, err := NewSecret(InvitationPrefix)
	if err != nil {
		return Invitation{}, err
	}
	var inv Invitation
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if inv, err = lockInvitation(ctx, tx, orgID, id); err != nil {
			return err
		}
		if inv.Status != "pending" {
			return domain.Errorf(domain.CodeConflict, "invitation %s is %s; only a pending invitation can be resent", id, inv.Status)
		}
		if err := check(inv); err != nil {
			return err
		}
		before := inv.ExpiresAt
		now := time.Now().UTC()
		if !inv.ExpiresAt.After(now) {
			// An expired invitation no longer holds a seat: sending it
			// again takes one, so the quota is checked as for a new one.
			plan, err := LockPlan(ctx, tx, orgID)
			if err != nil {
				return err
			}
			n, err := CountMembers(ctx, tx, orgID)
			if err != nil {
				return err
			}
			if n >= plan.MaxMembers {
				return domain.Errorf(domain.CodeConflict, "member quota reached: plan %s allows %d members, pending invitations included", plan.ID, plan.MaxMembers)
			}
		}
		inv.TokenHash, inv.ExpiresAt, inv.UpdatedAt = hash, now.Add(ttl), now
		if _, err := tx.NewUpdate().Model(&inv).Column("token_hash", "expires_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update invitation %s: %w", id, err)
		}
		msg := mail(inv, secret)
		if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
			return fmt.Errorf("queue invitation mail: %w", err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("invitation.resent", "invitation", id,
			map[string]any{"before": map[string]any{"expires_at": before}, "after": map[string]any{"expires_at": inv.ExpiresAt}}))
		return err
	})
	return inv, err
}

// Revoke ends a pending invitation; its secret stops working.
func Revoke(ctx context.Context, db *bun.DB, orgID, id string, check func(Invitation) error, ev EventBase) (Invitation, error) {
	var inv Invitation
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) (err error) {
		if inv, err = lockInvitation(ctx, tx, orgID, id); err != nil {
			return err
		}
		if inv.Status != "pending" {
			return domain.Errorf(domain.CodeConflict, "invitation %s is %s; only a pending invitation can be revoked", id, inv.Status)
		}
		if err := check(inv); err != nil {
			return err
		}
		now := time.Now().UTC()
		inv.Status, inv.RevokedAt, inv.UpdatedAt = "revoked", &now, now
		if _, err := tx.NewUpdate().Model(&inv).Column("status", "revoked_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("revoke invitation %s: %w", id, err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("invitation.revoked", "invitation", id,
			map[string]any{"before": map[string]any{"status": "pending"}, "after": map[string]any{"status": "revoked"}, "email": inv.Email}))
		return err
	})
	return inv, err
}

// revokeOwnerInvitations ends the pending owner invitations a user sent,
// when that user stops being an owner: an invitation grants no more than
// its sender may. It returns their events, to write after the
// transaction's other writes (InsertEvent).
func revokeOwnerInvitations(ctx context.Context, tx bun.Tx, orgID, userID string, ev EventBase) ([]*AuditEvent, error) {
	now := time.Now().UTC()
	var ended []Invitation
	if err := tx.NewUpdate().Model(&ended).Set("status = 'revoked', revoked_at = ?, updated_at = ?", now, now).
		Where("org_id = ? AND invited_by = ? AND role = 'owner' AND status = 'pending'", orgID, userID).
		Returning("id, email").Scan(ctx); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("revoke owner invitations of %s: %w", userID, err)
	}
	var evs []*AuditEvent
	for _, inv := range ended {
		evs = append(evs, ev.Event("invitation.revoked", "invitation", inv.ID,
			map[string]any{"before": map[string]any{"status": "pending"}, "after": map[string]any{"status": "revoked"}, "email": inv.Email,
				"reason": "its sender is no longer an owner"}))
	}
	return evs, nil
}

// ListInvitations returns up to limit+1 invitations of the organisation
// after the keyset position, oldest first.
func ListInvitations(ctx context.Context, db bun.IDB, orgID string, after Keyset, limit int) ([]Invitation, error) {
	var out []Invitation
	q := db.NewSelect().Model(&out).Where("org_id = ?", orgID).OrderExpr("created_at, id").Limit(int64(limit + 1))
	if after.ID != "" {
		q = q.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list invitations of %s: %w", orgID, err)
	}
	return out, nil
}

// PendingInvitation finds the pending invitation of a secret, with the
// user its email already has (nil: none), without locking anything: an
// unknown, used, revoked or expired secret is refused at once, before any
// password is looked at.
func PendingInvitation(ctx context.Context, db bun.IDB, secret string) (Invitation, *User, error) {
	var inv Invitation
	err := db.NewSelect().Model(&inv).Where("token_hash = ?", HashSecret(secret)).Scan(ctx)
	if err != nil {
		return inv, nil, invitationLookupError(err)
	}
	if err := checkPending(inv, time.Now()); err != nil {
		return inv, nil, err
	}
	if err := orgTakesMembers(ctx, db, inv.OrgID); err != nil {
		return inv, nil, err
	}
	var user User
	err = db.NewSelect().Model(&user).Where("email = ?", inv.Email).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, nil, nil
	}
	if err != nil {
		return inv, nil, fmt.Errorf("load user: %w", err)
	}
	return inv, &user, nil
}

func invitationLookupError(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.CodeNotFound, "invitation not found: the secret is unknown or was replaced by a resend")
	}
	return fmt.Errorf("load invitation: %w", err)
}

// checkPending refuses an invitation that cannot be accepted at time now.
func checkPending(inv Invitation, now time.Time) error {
	switch {
	case inv.Status == "accepted":
		return domain.Errorf(domain.CodeConflict, "invitation %s was already accepted", inv.ID)
	case inv.Status == "revoked":
		return domain.Errorf(domain.CodeConflict, "invitation %s was revoked", inv.ID)
	case inv.Status == "expired" || !now.Before(inv.ExpiresAt):
		return domain.Errorf(domain.CodeConflict, "invitation %s expired at %s", inv.ID, inv.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// AcceptInput is the accepting human: the secret from the mail, and either
// the existing account of the invitation's email whose password the caller
// gave (UserID and the PasswordHash it was checked against), or the name
// and password hash of a new account.
type AcceptInput struct {
	Secret string
	// UserID and CheckedHash: the existing account, checked.
	UserID      string
	CheckedHash string
	// Name and PasswordHash: a new account.
	Name         string
	PasswordHash string

	RequestID  string
	ClientAddr string
	UserAgent  string
}

// AcceptResult is the membership an accepted invitation created.
type AcceptResult struct {
	Member      MemberView
	UserCreated bool
}

// Accept turns a pending invitation into a membership, once: concurrent
// attempts with the same secret serialise on the invitation's row and all
// but one are refused. The account must be as the caller checked it: an
// account created, or a password changed, since is a conflict to retry.
func Accept(ctx context.Context, db *bun.DB, in AcceptInput) (AcceptResult, error) {
	var res AcceptResult
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var inv Invitation
		if err := tx.NewSelect().Model(&inv).Where("token_hash = ?", HashSecret(in.Secret)).For("UPDATE").Scan(ctx); err != nil {
			return invitationLookupError(err)
		}
		now := time.Now().UTC()
		if err := checkPending(inv, now); err != nil {
			return err
		}
		if err := orgTakesMembers(ctx, tx, inv.OrgID); err != nil {
			return err
		}

		var user User
		err := tx.NewSelect().Model(&user).Where("email = ?", inv.Email).For("UPDATE").Scan(ctx)
		switch {
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("load user: %w", err)
		case errors.Is(err, sql.ErrNoRows) && in.PasswordHash != "":
			user = User{ID: domain.NewID(domain.PrefixUser), Email: inv.Email, Name: in.Name, PasswordHash: in.PasswordHash, CreatedAt: now, UpdatedAt: now}
			if _, err := tx.NewInsert().Model(&user).Exec(ctx); err != nil {
				return fmt.Errorf("insert user: %w", err)
			}
			res.UserCreated = true
		case err == nil && in.UserID == user.ID && in.CheckedHash == user.PasswordHash:
		default:
			return domain.Errorf(domain.CodeConflict, "the account of %s changed while the invitation was being accepted; try again", inv.Email)
		}

		m := Member{ID: domain.NewID(domain.PrefixMember), OrgID: inv.OrgID, UserID: user.ID, Role: inv.Role, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
			if IsUniqueViolation(err, "") {
				return domain.Errorf(domain.CodeConflict, "%s is already a member of the organization", inv.Email)
			}
			return fmt.Errorf("insert member: %w", err)
		}
		inv.Status, inv.AcceptedAt, inv.UpdatedAt = "accepted", &now, now
		if _, err := tx.NewUpdate().Model(&inv).Column("status", "accepted_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("mark invitation accepted: %w", err)
		}
		ev := EventBase{OrgID: inv.OrgID, ActorType: "member", ActorID: m.ID, ActorEmail: user.Email,
			RequestID: in.RequestID, ClientAddr: in.ClientAddr, UserAgent: in.UserAgent}
		if _, err := InsertEvent(ctx, tx, ev.Event("invitation.accepted", "invitation", inv.ID,
			map[string]any{"after": map[string]any{"member_id": m.ID, "user_id": user.ID, "role": m.Role, "user_created": res.UserCreated}})); err != nil {
			return err
		}
		res.Member = MemberView{ID: m.ID, OrgID: m.OrgID, UserID: user.ID, Email: user.Email, Name: user.Name, Role: m.Role, CreatedAt: now, UpdatedAt: now}
		return nil
	})
	return res, err
}

// orgTakesMembers refuses an invitation of an organisation that is being
// deleted: its pending invitations stop working with it (and come back
// with a restore, if they have not expired meanwhile).
func orgTakesMembers(ctx context.Context, db bun.IDB, orgID string) error {
	var state string
	if err := db.NewSelect().Model((*Organization)(nil)).Column("state").Where("id = ?", orgID).Scan(ctx, &state); err != nil {
		return fmt.Errorf("load organisation %s: %w", orgID, err)
	}
	if state != string(domain.OrgActive) {
		return domain.Errorf(domain.CodeConflict, "the organization is being deleted: its invitations no longer work")
	}
	return nil
}
