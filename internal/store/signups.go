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

// SignUpPrefix starts the secret that verifies a sign-up's email.
const SignUpPrefix = "cpv_"

// SignUpTTL is how long a sign-up waits for its email to be verified.
const SignUpTTL = 24 * time.Hour

// FreePlan is the plan an organisation a customer creates starts on.
const FreePlan = "free"

// SignUp is a row of signups: a person and the organisation they asked
// for, waiting for their email to be verified. Nothing else exists until
// then; the row is deleted when it is verified, replaced or expired.
type SignUp struct {
	bun.BaseModel `bun:"table:signups"`

	SecretHash   []byte    `bun:"secret_hash,pk"`
	Email        string    `bun:"email"`
	Name         string    `bun:"name"`
	PasswordHash string    `bun:"password_hash"`
	OrgName      string    `bun:"org_name"`
	OrgSlug      string    `bun:"org_slug"`
	CreatedAt    time.Time `bun:"created_at,nullzero,default:now()"`
	ExpiresAt    time.Time `bun:"expires_at"`
	ClientAddr   string    `bun:"client_addr"`
	UserAgent    string    `bun:"user_agent"`
}

// SignUpMails are the two messages a sign-up can queue: Verify carries
// the secret to a new email; Known tells the owner of an email that has an
// account that someone tried to sign up with it.
type SignUpMails struct {
	Verify func(email, secret string, expires time.Time) OutboxMessage
	Known  func(email string) OutboxMessage
}

// RequestSignUp stores the sign-up (its password already hashed) and
// queues the mail that verifies its email, in one transaction; b gives the
// request's address and user agent. When the email has an account, nothing
// is stored and the account's owner is mailed instead: the caller answers
// alike either way. An earlier sign-up of the email is left as it is: a
// stranger signing up with someone's email must not turn that person's
// own link off, so that the only link left to follow is the stranger's
// (whose password the stranger chose); the first verified wins.
func RequestSignUp(ctx context.Context, db *bun.DB, in SignUp, mails SignUpMails, b EventBase) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := UserByEmail(ctx, tx, in.Email)
		if err == nil {
			// No audit event, as for a password reset: the caller is not
			// authenticated and could otherwise write into the account's
			// organisations.
			msg := mails.Known(in.Email)
			if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
				return fmt.Errorf("queue the account-exists mail: %w", err)
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		secret, hash, err := NewSecret(SignUpPrefix)
		if err != nil {
			return err
		}
		in.SecretHash, in.ExpiresAt = hash, time.Now().Add(SignUpTTL).UTC()
		in.ClientAddr, in.UserAgent = clip(b.ClientAddr, 64), clip(b.UserAgent, 512)
		if _, err := tx.NewInsert().Model(&in).Exec(ctx); err != nil {
			return fmt.Errorf("insert sign-up: %w", err)
		}
		msg := mails.Verify(in.Email, secret, in.ExpiresAt)
		if _, err := tx.NewInsert().Model(&msg).Exec(ctx); err != nil {
			return fmt.Errorf("queue the verification mail: %w", err)
		}
		return nil
	})
}

// ErrSignUpInvalid is the one answer to a verification secret that is
// unknown, used or expired: which of them is not said.
var ErrSignUpInvalid = &domain.Error{Code: domain.CodeUnauthenticated, Message: "this verification link is invalid, used or expired; sign up again"}

// SlugTaken says whether an organisation has the slug.
func SlugTaken(ctx context.Context, db bun.IDB, slug string) (bool, error) {
	ok, err := db.NewSelect().Model((*Organization)(nil)).Where("slug = ?", slug).Exists(ctx)
	if err != nil {
		return false, fmt.Errorf("look up slug %s: %w", slug, err)
	}
	return ok, nil
}

// SlugTakenError is the refusal of a slug another organisation has.
func SlugTakenError(slug string) error {
	return domain.Errorf(domain.CodeConflict, "the slug %q is taken by another organization: choose another", slug)
}

// Verified is what a verified sign-up created: the user, their
// organisation and owner membership, and the session that signs them in.
type Verified struct {
	User    User
	Org     Organization
	Member  Member
	Token   string
	Session Session
}

// VerifySignUp turns a sign-up into its user, organisation (on the free
// plan) and owner membership, uses the secret up (the row is deleted) and
// signs the person in (user.signed_in, method email_verification), in one
// transaction: of two verifications at once one wins. A slug taken, or an
// account made with the email, since the sign-up creates nothing (409) and
// uses the secret up too, since it can never succeed.
func VerifySignUp(ctx context.Context, db *bun.DB, secret string, ttl time.Duration, b EventBase) (Verified, error) {
	var v Verified
	var slug string
	// refused is a refusal that keeps the secret's deletion: the
	// transaction commits it, and the refusal is answered after.
	var refused error
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		refused = nil
		var su SignUp
		err := tx.NewSelect().Model(&su).Where("secret_hash = ?", HashSecret(secret)).For("UPDATE").Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !time.Now().Before(su.ExpiresAt)) {
			return ErrSignUpInvalid
		}
		if err != nil {
			return fmt.Errorf("load sign-up: %w", err)
		}
		slug = su.OrgSlug
		if _, err := tx.NewDelete().Model((*SignUp)(nil)).Where("secret_hash = ?", su.SecretHash).Exec(ctx); err != nil {
			return fmt.Errorf("use sign-up: %w", err)
		}
		if _, err := UserByEmail(ctx, tx, su.Email); err == nil {
			refused = errAccountMadeSinceSignUp
			return nil
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if taken, err := SlugTaken(ctx, tx, su.OrgSlug); err != nil {
			return err
		} else if taken {
			refused = errSlugTakenSinceSignUp(su.OrgSlug)
			return nil
		}
		now := time.Now().UTC()
		v.User = User{ID: domain.NewID(domain.PrefixUser), Email: su.Email, Name: su.Name, PasswordHash: su.PasswordHash, CreatedAt: now, UpdatedAt: now}
		if _, err := tx.NewInsert().Model(&v.User).Exec(ctx); err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		if v.Org, v.Member, err = createOrganization(ctx, tx, v.User, su.OrgName, su.OrgSlug, "sign_up", b); err != nil {
			return err
		}
		if v.Token, v.Session, err = CreateSession(ctx, tx, v.User.ID, ttl, b.ClientAddr, b.UserAgent); err != nil {
			return err
		}
		return insertUserEvents(ctx, tx, v.User, "user.signed_in", b, map[string]any{"method": "email_verification"})
	})
	// A race the checks above lost (the unique indexes settle it) rolls
	// everything back, the secret's deletion too.
	if IsUniqueViolation(err, "organizations_slug_key") {
		return Verified{}, errSlugTakenSinceSignUp(slug)
	}
	if IsUniqueViolation(err, "users_email_key") {
		return Verified{}, errAccountMadeSinceSignUp
	}
	if err == nil && refused != nil {
		return Verified{}, refused
	}
	return v, err
}

var errAccountMadeSinceSignUp = &domain.Error{Code: domain.CodeConflict,
	Message: "an account with this email was made since you signed up: nothing was created; sign in, and create the organization from the console"}

func errSlugTakenSinceSignUp(slug string) error {
	return domain.Errorf(domain.CodeConflict, "the slug %q was taken by another organization since you signed up: nothing was created; sign up again with another slug", slug)
}

// errTooManyOrgs is the refusal of an organisation past the most one
// person may belong to.
func errTooManyOrgs(n, limit int) error {
	return domain.Errorf(domain.CodeConflict, "you belong to %d organizations, and one person may belong to at most %d: leave one before creating another", n, limit)
}

// CreateOrganization creates an organisation on the free plan with the
// user as its owner, in one transaction with the user's row locked, so
// that of requests at once no more than limit organisations of theirs
// pass the check; it writes organization.created and member.added in the
// new organisation, by its owner. A taken slug is 409.
func CreateOrganization(ctx context.Context, db *bun.DB, userID, name, slug string, limit int, b EventBase) (Organization, Member, error) {
	var org Organization
	var m Member
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var user User
		if err := tx.NewSelect().Model(&user).Where("id = ?", userID).For("UPDATE").Scan(ctx); err != nil {
			return fmt.Errorf("lock user %s: %w", userID, err)
		}
		n, err := tx.NewSelect().Model((*Member)(nil)).Where("user_id = ?", userID).Count(ctx)
		if err != nil {
			return fmt.Errorf("count organisations of %s: %w", userID, err)
		}
		if int(n) >= limit {
			return errTooManyOrgs(int(n), limit)
		}
		org, m, err = createOrganization(ctx, tx, user, name, slug, "console", b)
		return err
	})
	if IsUniqueViolation(err, "organizations_slug_key") {
		return org, m, SlugTakenError(slug)
	}
	return org, m, err
}

// createOrganization inserts the organisation, on the free plan, and the
// user's owner membership, and writes organization.created (source: how
// it was made) and member.added by the new owner; a slug another
// organisation has is 409.
func createOrganization(ctx context.Context, tx bun.Tx, user User, name, slug, source string, b EventBase) (Organization, Member, error) {
	taken, err := SlugTaken(ctx, tx, slug)
	if err != nil {
		return Organization{}, Member{}, err
	}
	if taken {
		return Organization{}, Member{}, SlugTakenError(slug)
	}
	now := time.Now().UTC()
	org := Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: slug, Name: name, PlanID: FreePlan, CreatedAt: now, UpdatedAt: now}
	if _, err := tx.NewInsert().Model(&org).Exec(ctx); err != nil {
		return org, Member{}, fmt.Errorf("insert organisation %s: %w", slug, err)
	}
	m := Member{ID: domain.NewID(domain.PrefixMember), OrgID: org.ID, UserID: user.ID, Role: string(domain.RoleOwner), CreatedAt: now, UpdatedAt: now}
	if _, err := tx.NewInsert().Model(&m).Exec(ctx); err != nil {
		return org, m, fmt.Errorf("insert owner membership: %w", err)
	}
	b.OrgID, b.ActorType, b.ActorID, b.ActorEmail = org.ID, "member", m.ID, user.Email
	if _, err := InsertEvent(ctx, tx, b.Event("organization.created", "organization", org.ID, map[string]any{"source": source,
		"after": map[string]any{"slug": org.Slug, "name": org.Name, "plan": org.PlanID, "owner_user_id": user.ID, "owner_member_id": m.ID}})); err != nil {
		return org, m, err
	}
	_, err = InsertEvent(ctx, tx, b.Event("member.added", "member", m.ID,
		map[string]any{"after": map[string]any{"role": m.Role, "user_id": user.ID, "email": user.Email}}))
	return org, m, err
}

// ForgetSignUps deletes the sign-ups that expired unverified: nothing of
// a person who never verified their email is kept past its day.
func ForgetSignUps(ctx context.Context, db bun.IDB) error {
	if _, err := db.NewDelete().Model((*SignUp)(nil)).Where("expires_at < now()").Exec(ctx); err != nil {
		return fmt.Errorf("forget expired sign-ups: %w", err)
	}
	return nil
}
