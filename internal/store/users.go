package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"
)

// UserByEmail returns the user with the email (lower case), or
// sql.ErrNoRows.
func UserByEmail(ctx context.Context, db bun.IDB, email string) (User, error) {
	var u User
	err := db.NewSelect().Model(&u).Where("email = ?", email).Scan(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("load user: %w", err)
	}
	return u, err
}

// UserByID returns the user.
func UserByID(ctx context.Context, db bun.IDB, id string) (User, error) {
	var u User
	if err := db.NewSelect().Model(&u).Where("id = ?", id).Scan(ctx); err != nil {
		return u, fmt.Errorf("load user %s: %w", id, err)
	}
	return u, nil
}

// Membership is one of a user's memberships, with its organisation.
type Membership struct {
	MemberID string `bun:"member_id" json:"member_id"`
	OrgID    string `bun:"org_id" json:"org_id"`
	OrgSlug  string `bun:"org_slug" json:"org_slug"`
	OrgName  string `bun:"org_name" json:"org_name"`
	Role     string `bun:"role" json:"role"`
}

// MembershipsOf returns every membership of the user, by organisation id.
func MembershipsOf(ctx context.Context, db bun.IDB, userID string) ([]Membership, error) {
	var out []Membership
	err := db.NewRaw(`SELECT m.id AS member_id, o.id AS org_id, o.slug AS org_slug, o.name AS org_name, m.role
		FROM members m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = ? ORDER BY o.id`, userID).Scan(ctx, &out)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("memberships of %s: %w", userID, err)
	}
	return out, nil
}
