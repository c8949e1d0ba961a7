package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/password"
)

// BootstrapInput is the first organisation and its owner.
type BootstrapInput struct {
	OrgName       string
	OrgSlug       string
	PlanID        string
	OwnerEmail    string
	OwnerPassword string
	// Actor is who bootstraps: an operator at the command line, or the
	// system in dev mode.
	ActorType string
	ActorID   string
}

// BootstrapResult says what bootstrap found or created.
type BootstrapResult struct {
	Org         Organization
	Owner       User
	Created     bool // false: the organisation existed, nothing was changed
	UserExisted bool // the owner's user existed and kept its password
}

// Bootstrap creates the organisation, its owner's user (unless one with the
// email exists) and the owner membership, with an audit event, in one
// transaction. It is a no-op when an organisation with the slug exists, also
// when two processes bootstrap at once.
func Bootstrap(ctx context.Context, db *bun.DB, in BootstrapInput) (BootstrapResult, error) {
	var res BootstrapResult
	email := strings.ToLower(strings.TrimSpace(in.OwnerEmail))
	if existing, err := orgBySlug(ctx, db, in.OrgSlug); err == nil {
		res.Org = existing
		return res, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return res, err
	}

	hash, err := password.Hash(in.OwnerPassword, password.Default)
	if err != nil {
		return res, err
	}
	now := time.Now().UTC()
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res.Org = Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: in.OrgSlug, Name: in.OrgName, PlanID: in.PlanID, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&res.Org).Exec(ctx); err != nil {
			return fmt.Errorf("insert organisation %s: %w", in.OrgSlug, err)
		}
		res.Owner = User{ID: domain.NewID(domain.PrefixUser), Email: email, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
		ins, err := tx.NewInsert().Model(&res.Owner).On("CONFLICT (email) DO NOTHING").Exec(ctx)
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if n, _ := ins.RowsAffected(); n == 0 {
			res.UserExisted = true
			if err := tx.NewSelect().Model(&res.Owner).Where("email = ?", email).Scan(ctx); err != nil {
				return fmt.Errorf("load user: %w", err)
			}
		}
		m := Member{ID: domain.NewID(domain.PrefixMember), OrgID: res.Org.ID, UserID: res.Owner.ID, Role: "owner", CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
			return fmt.Errorf("insert owner membership: %w", err)
		}
		_, err = InsertEvent(ctx, tx, &AuditEvent{
			OrgID:      res.Org.ID,
			Action:     "organization.bootstrapped",
			ActorType:  in.ActorType,
			ActorID:    in.ActorID,
			TargetType: "organization",
			TargetID:   res.Org.ID,
			Data:       mustJSON(map[string]any{"after": map[string]any{"slug": res.Org.Slug, "name": res.Org.Name, "plan": res.Org.PlanID, "owner_user_id": res.Owner.ID, "owner_member_id": m.ID}}),
			OccurredAt: now,
		})
		return err
	})
	if IsUniqueViolation(err, "organizations_slug_key") {
		// Another process bootstrapped the same organisation meanwhile.
		existing, lerr := orgBySlug(ctx, db, in.OrgSlug)
		return BootstrapResult{Org: existing}, lerr
	}
	if err != nil {
		return BootstrapResult{}, err
	}
	res.Created = true
	return res, nil
}

func orgBySlug(ctx context.Context, db bun.IDB, slug string) (Organization, error) {
	var o Organization
	err := db.NewSelect().Model(&o).Where("slug = ?", slug).Scan(ctx)
	return o, err
}
