package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/intelliauth/controlplane/internal/domain"
)

// ServiceTokenPrefix marks service-account tokens, distinct from the
// members' session tokens (cpt_), so secret scanners can tell them apart.
const ServiceTokenPrefix = "cps_"

// MaxLiveServiceTokens is how many tokens of one account may be valid at
// once: two, so a token is rotated without downtime (mint the new one,
// deploy it, revoke the old one).
const MaxLiveServiceTokens = 2

// ServiceAccount is a row of service_accounts.
type ServiceAccount struct {
	bun.BaseModel `bun:"table:service_accounts"`

	ID                  string     `bun:"id,pk"`
	OrgID               string     `bun:"org_id"`
	Name                string     `bun:"name"`
	Role                string     `bun:"role"`
	Environments        []string   `bun:"environments,array"`
	Regions             []string   `bun:"regions,array"`
	Scopes              []string   `bun:"scopes,array"`
	AccountableMemberID *string    `bun:"accountable_member_id"`
	CreatedBy           string     `bun:"created_by"`
	CreatedAt           time.Time  `bun:"created_at"`
	UpdatedAt           time.Time  `bun:"updated_at"`
	DeletedAt           *time.Time `bun:"deleted_at"`
}

// ServiceToken is a row of service_account_tokens.
type ServiceToken struct {
	bun.BaseModel `bun:"table:service_account_tokens"`

	ID               string `bun:"id,pk"`
	ServiceAccountID string `bun:"service_account_id"`
	TokenHash        []byte `bun:"token_hash"`
	Hint             string `bun:"hint"`
	CreatedBy        string `bun:"created_by"`
	// MintedBy is the membership that minted it (nil: minted before
	// minters were recorded, by a user no longer a member).
	MintedBy      *string    `bun:"minted_by"`
	CreatedAt     time.Time  `bun:"created_at"`
	ExpiresAt     time.Time  `bun:"expires_at"`
	RevokedAt     *time.Time `bun:"revoked_at"`
	RevokedReason string     `bun:"revoked_reason"`
	LastUsedAt    *time.Time `bun:"last_used_at"`
	LastUsedAddr  string     `bun:"last_used_addr"`
}

// live reports whether the token works at now.
func (t ServiceToken) live(now time.Time) bool { return t.RevokedAt == nil && now.Before(t.ExpiresAt) }

// Why a token was revoked, as its view and its token_revoked event say.
const (
	// RevokedByManager: an owner or admin revoked it.
	RevokedByManager = "revoked"
	// RevokedAccountDeleted: its account was deleted.
	RevokedAccountDeleted = "account_deleted"
	// RevokedMinterRemoved, RevokedMinterLeft, RevokedMinterDemoted: the
	// member who minted it was removed, left, or was given a role that
	// may no longer mint it.
	RevokedMinterRemoved = "minter_removed"
	RevokedMinterLeft    = "minter_left"
	RevokedMinterDemoted = "minter_demoted"
	// RevokedAccountRaised: its account was given a role above its
	// minter's.
	RevokedAccountRaised = "account_role_raised"
	// RevokedTakenOver: its account was taken over while its minter may
	// no longer mint it.
	RevokedTakenOver = "taken_over"
)

// ServiceTokenView is a token as the API shows it: never the secret.
type ServiceTokenView struct {
	ID            string      `json:"id"`
	Hint          string      `json:"hint" doc:"The token's last four characters, to tell tokens apart."`
	Status        string      `json:"status" doc:"active, expired or revoked"`
	MintedBy      *MinterView `json:"minted_by" doc:"The member who minted the token; it works only while that member may mint it (service_accounts.manage and a role at least the account's), and is revoked when they leave, are removed or lose that power. Null for a token minted before minters were recorded."`
	CreatedAt     time.Time   `json:"created_at"`
	ExpiresAt     time.Time   `json:"expires_at"`
	RevokedAt     *time.Time  `json:"revoked_at"`
	RevokedReason string      `json:"revoked_reason,omitempty" doc:"Why it was revoked: revoked (by an owner or admin), account_deleted, minter_removed, minter_left, minter_demoted (its minter's new role may not mint it), account_role_raised (the account's new role is above its minter's), taken_over (the account was taken over and its minter may no longer mint it) or minter_gone (its minter had left before minters were checked)."`
	LastUsedAt    *time.Time  `json:"last_used_at" doc:"When the token last authenticated a request (kept to the minute)."`
	LastUsedAddr  string      `json:"last_used_addr,omitempty" doc:"The client address of that request."`
}

// MinterView is the member who minted a token. The member may since have
// left: the email is the user's.
type MinterView struct {
	MemberID string `json:"member_id"`
	Email    string `json:"email"`
}

func (t ServiceToken) view(now time.Time, emails map[string]string) ServiceTokenView {
	status := "active"
	switch {
	case t.RevokedAt != nil:
		status = "revoked"
	case !now.Before(t.ExpiresAt):
		status = "expired"
	}
	v := ServiceTokenView{ID: t.ID, Hint: t.Hint, Status: status, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		RevokedAt: t.RevokedAt, RevokedReason: t.RevokedReason, LastUsedAt: t.LastUsedAt, LastUsedAddr: t.LastUsedAddr}
	if t.MintedBy != nil {
		v.MintedBy = &MinterView{MemberID: *t.MintedBy, Email: emails[t.CreatedBy]}
	}
	return v
}

// minterEmails returns the emails of the users who minted the tokens, by
// user id.
func minterEmails(ctx context.Context, db bun.IDB, tokens []ServiceToken) (map[string]string, error) {
	var ids []string
	for _, t := range tokens {
		if t.MintedBy != nil && !slices.Contains(ids, t.CreatedBy) {
			ids = append(ids, t.CreatedBy)
		}
	}
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var users []User
	if err := db.NewSelect().Model(&users).Column("id", "email").Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load minters of service tokens: %w", err)
	}
	for _, u := range users {
		out[u.ID] = u.Email
	}
	return out, nil
}

// tokenView is the token as the API shows it now.
func tokenView(ctx context.Context, db bun.IDB, t ServiceToken) (ServiceTokenView, error) {
	emails, err := minterEmails(ctx, db, []ServiceToken{t})
	if err != nil {
		return ServiceTokenView{}, err
	}
	return t.view(time.Now(), emails), nil
}

// AccountableView is the human who answers for a service account.
type AccountableView struct {
	MemberID string `json:"member_id"`
	Email    string `json:"email"`
	Role     string `json:"role"`
}

// ServiceAccountView is a service account as the API shows it.
type ServiceAccountView struct {
	ID           string   `json:"id"`
	OrgID        string   `json:"org_id"`
	Name         string   `json:"name"`
	Role         string   `json:"role"`
	Environments []string `json:"environments" doc:"Environments of the tenants it may see and act on; empty: every environment."`
	Regions      []string `json:"regions" doc:"Regions of the tenants it may see and act on; empty: every region."`
	Scopes       []string `json:"scopes"`
	// Accountable is null when the human left or was removed: the account's
	// tokens do not work until an owner or admin takes it over.
	Accountable *AccountableView   `json:"accountable" doc:"The member who answers for the account; null when that member left or was removed, and then its tokens do not work until an owner or admin takes it over."`
	Tokens      []ServiceTokenView `json:"tokens"`
	CreatedBy   string             `json:"created_by"`
	CreatedAt   time.Time          `json:"created_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
}

// ServiceAccountPrincipal is the service account behind a request.
type ServiceAccountPrincipal struct {
	ID           string
	Name         string
	Role         string
	Environments []string
	Regions      []string
	Scopes       []string
	TokenID      string
	LastUsedAt   *time.Time
	// The accountable human; HumanMemberID "" when there is none.
	HumanMemberID string
	HumanRole     string
	// MinterRole is the role today of the member who minted the token
	// ("" when they are no longer a member).
	MinterRole string
}

// Sees reports whether the account may see tenants of the environment.
func (p *ServiceAccountPrincipal) Sees(environment string) bool {
	return len(p.Environments) == 0 || slices.Contains(p.Environments, environment)
}

// SeesRegion reports whether the account may see tenants of the region
// ("" is the installation's own data plane, which a list of regions does
// not include).
func (p *ServiceAccountPrincipal) SeesRegion(region string) bool {
	return len(p.Regions) == 0 || slices.Contains(p.Regions, region)
}

// Has reports whether the account holds the scope.
func (p *ServiceAccountPrincipal) Has(s domain.Scope) bool {
	return s != "" && slices.Contains(p.Scopes, string(s))
}

// authenticateServiceToken reads a service account's token with its
// account, organisation and accountable member. The minter's role and the
// human's email are scalar subqueries, not joins: a join of six tables
// took twice as long to plan as to run. It runs on every request an
// automation makes: prepared.
var authenticateServiceToken = prepare(`
	SELECT t.id, t.last_used_at, a.id, a.name, a.role, a.environments, a.regions, a.scopes, a.org_id,
	       m.id, m.role, (SELECT mm.role FROM members mm WHERE mm.id = t.minted_by AND mm.org_id = a.org_id),
	       m.user_id, (SELECT u.email FROM users u WHERE u.id = m.user_id),
	       o.slug, o.name, o.plan_id, o.default_region, o.created_at, o.updated_at
	FROM service_account_tokens t
	JOIN service_accounts a ON a.id = t.service_account_id AND a.deleted_at IS NULL
	JOIN organizations o ON o.id = a.org_id AND o.state = 'active'
	LEFT JOIN members m ON m.id = a.accountable_member_id
	WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()`)

// AuthenticateServiceAccount resolves a service-account token: the account,
// its organisation and its accountable human, in one query. orgID, when
// not empty, is the organisation of the route: another organisation's
// route finds no organisation (Org nil), as for a non-member.
func AuthenticateServiceAccount(ctx context.Context, db bun.IDB, token, orgID string) (Principal, error) {
	if !strings.HasPrefix(token, ServiceTokenPrefix) || len(token) > 128 {
		return Principal{}, ErrNoSession
	}
	sa := &ServiceAccountPrincipal{}
	p := Principal{TokenHash: HashSecret(token), ServiceAccount: sa}
	var accountOrg string
	var member, humanRole, minterRole, userID, email sql.NullString
	var o Organization
	var envs, regions, scopes []string
	err := authenticateServiceToken.scan(ctx, db, []any{p.TokenHash},
		&sa.TokenID, &sa.LastUsedAt, &sa.ID, &sa.Name, &sa.Role, pgdialect.Array(&envs), pgdialect.Array(&regions), pgdialect.Array(&scopes), &accountOrg,
		&member, &humanRole, &minterRole, &userID, &email, &o.Slug, &o.Name, &o.PlanID, &o.DefaultRegion, &o.CreatedAt, &o.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate service account: %w", err)
	}
	sa.Environments, sa.Regions, sa.Scopes = envs, regions, scopes
	sa.HumanMemberID, sa.HumanRole, sa.MinterRole = member.String, humanRole.String, minterRole.String
	p.UserID, p.Email, p.OrgID = userID.String, email.String, orgID
	if orgID == accountOrg {
		o.ID, o.State = accountOrg, string(domain.OrgActive)
		p.Org, p.Role = &o, sa.Role
	}
	return p, nil
}

// TouchServiceToken records that the token was used now from addr, at
// most once a minute per token, so a busy automation does not write on
// every request.
func TouchServiceToken(ctx context.Context, db bun.IDB, tokenID, addr string) error {
	_, err := db.NewUpdate().Model((*ServiceToken)(nil)).
		Set("last_used_at = now(), last_used_addr = ?", clip(addr, 100)).
		Where("id = ? AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", tokenID).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("touch service token %s: %w", tokenID, err)
	}
	return nil
}

// NewServiceAccount is what creating an account takes.
type NewServiceAccount struct {
	OrgID        string
	Name         string
	Role         domain.Role
	Environments []string
	Regions      []string
	Scopes       []string
	// Accountable is the member who answers for it (the creator).
	Accountable MemberView
	TokenTTL    time.Duration
}

// liveServiceAccounts counts the service accounts of organisation ? that
// the plan's quota counts: those not deleted.
const liveServiceAccounts = `SELECT count(*) FROM service_accounts WHERE org_id = ? AND deleted_at IS NULL`

// CreateServiceAccount writes the account and its first token, with their
// audit event, and returns the token (shown once). The organisation's row
// is locked while its accounts are counted against its plan's
// max_service_accounts, so creations at once cannot pass the quota.
func CreateServiceAccount(ctx context.Context, db *bun.DB, in NewServiceAccount, ev EventBase) (ServiceAccountView, string, error) {
	now := time.Now().UTC()
	sa := ServiceAccount{ID: domain.NewID(domain.PrefixServiceAcct), OrgID: in.OrgID, Name: in.Name, Role: string(in.Role),
		Environments: nonNil(in.Environments), Regions: nonNil(in.Regions), Scopes: nonNil(in.Scopes), AccountableMemberID: &in.Accountable.ID,
		CreatedBy: in.Accountable.UserID, CreatedAt: now, UpdatedAt: now}
	var token string
	err := inPlanTurn(ctx, db, in.OrgID, func(ctx context.Context, tx bun.Tx) error {
		plan, err := LockPlan(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		var n int
		if err := tx.NewRaw(liveServiceAccounts, in.OrgID).Scan(ctx, &n); err != nil {
			return fmt.Errorf("count service accounts of %s: %w", in.OrgID, err)
		}
		if n >= plan.MaxServiceAccounts {
			return domain.Errorf(domain.CodeConflict, "service account quota reached: plan %s allows %d service accounts; delete one or change the plan", plan.ID, plan.MaxServiceAccounts)
		}
		if err := lockMinter(ctx, tx, in.OrgID, in.Accountable.ID, in.Role); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(&sa).Exec(ctx); err != nil {
			if IsUniqueViolation(err, "service_accounts_live_name_key") {
				return domain.Errorf(domain.CodeConflict, "a service account named %q exists in this organization", in.Name)
			}
			return fmt.Errorf("insert service account: %w", err)
		}
		t, secret, err := insertServiceToken(ctx, tx, sa.ID, in.Accountable, now, in.TokenTTL)
		if err != nil {
			return err
		}
		token = secret
		_, err = InsertEvent(ctx, tx, ev.Event("service_account.created", "service_account", sa.ID, map[string]any{
			"after":    accountFields(sa),
			"token_id": t.ID, "token_expires_at": t.ExpiresAt, "minted_by": in.Accountable.ID,
		}))
		return err
	})
	if err != nil {
		return ServiceAccountView{}, "", err
	}
	v, err := ServiceAccountByID(ctx, db, in.OrgID, sa.ID)
	return v, token, err
}

// lockMinter locks the membership of the member about to mint a token
// (FOR SHARE: their removal or a change of their role waits for the
// token, and then revokes it) and refuses unless they may mint for an
// account with the role.
func lockMinter(ctx context.Context, tx bun.Tx, orgID, memberID string, account domain.Role) error {
	var role string
	err := tx.NewRaw("SELECT role FROM members WHERE org_id = ? AND id = ? FOR SHARE", orgID, memberID).Scan(ctx, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Errorf(domain.CodeForbidden, "you are no longer a member of this organization")
	}
	if err != nil {
		return fmt.Errorf("lock minter %s: %w", memberID, err)
	}
	if !domain.Role(role).MayMint(account) {
		return domain.Errorf(domain.CodeForbidden, "your role (%s) may not mint a token for a service account whose role is %s", role, account)
	}
	return nil
}

func insertServiceToken(ctx context.Context, tx bun.Tx, accountID string, minter MemberView, now time.Time, ttl time.Duration) (ServiceToken, string, error) {
	secret, hash, err := NewSecret(ServiceTokenPrefix)
	if err != nil {
		return ServiceToken{}, "", err
	}
	t := ServiceToken{ID: domain.NewID(domain.PrefixServiceToken), ServiceAccountID: accountID, TokenHash: hash,
		Hint: secret[len(secret)-4:], CreatedBy: minter.UserID, MintedBy: &minter.ID, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if _, err := tx.NewInsert().Model(&t).Exec(ctx); err != nil {
		return ServiceToken{}, "", fmt.Errorf("insert service token: %w", err)
	}
	return t, secret, nil
}

func accountFields(sa ServiceAccount) map[string]any {
	f := map[string]any{"name": sa.Name, "role": sa.Role, "environments": sa.Environments, "scopes": sa.Scopes}
	if len(sa.Regions) > 0 {
		f["regions"] = sa.Regions
	}
	return f
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ServiceAccountByID returns a live account of the organisation with its
// tokens, newest first.
func ServiceAccountByID(ctx context.Context, db bun.IDB, orgID, id string) (ServiceAccountView, error) {
	views, err := serviceAccounts(ctx, db, orgID, id, Keyset{}, 1)
	if err != nil {
		return ServiceAccountView{}, err
	}
	if len(views) == 0 {
		return ServiceAccountView{}, domain.Errorf(domain.CodeNotFound, "service account not found: %s", id)
	}
	return views[0], nil
}

// ListServiceAccounts returns up to limit+1 live accounts of the
// organisation after the keyset position, oldest first, with their tokens.
func ListServiceAccounts(ctx context.Context, db bun.IDB, orgID string, after Keyset, limit int) ([]ServiceAccountView, error) {
	return serviceAccounts(ctx, db, orgID, "", after, limit+1)
}

func serviceAccounts(ctx context.Context, db bun.IDB, orgID, id string, after Keyset, n int) ([]ServiceAccountView, error) {
	var rows []ServiceAccount
	q := db.NewSelect().Model(&rows).Where("org_id = ? AND deleted_at IS NULL", orgID).OrderExpr("created_at, id").Limit(int64(n))
	if id != "" {
		q = q.Where("id = ?", id)
	}
	if after.ID != "" {
		q = q.Where("(created_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list service accounts of %s: %w", orgID, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	ids := make([]string, len(rows))
	var memberIDs []string
	for i, r := range rows {
		ids[i] = r.ID
		if r.AccountableMemberID != nil {
			memberIDs = append(memberIDs, *r.AccountableMemberID)
		}
	}
	var tokens []ServiceToken
	if err := db.NewSelect().Model(&tokens).Where("service_account_id IN (?)", bun.In(ids)).OrderExpr("created_at DESC, id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list service tokens: %w", err)
	}
	emails, err := minterEmails(ctx, db, tokens)
	if err != nil {
		return nil, err
	}
	members := map[string]MemberView{}
	if len(memberIDs) > 0 {
		var ms []MemberView
		if err := memberQuery(db).Where("m.id IN (?)", bun.In(memberIDs)).Scan(ctx, &ms); err != nil {
			return nil, fmt.Errorf("load accountable members: %w", err)
		}
		for _, m := range ms {
			members[m.ID] = m
		}
	}
	now := time.Now()
	out := make([]ServiceAccountView, len(rows))
	for i, r := range rows {
		v := ServiceAccountView{ID: r.ID, OrgID: r.OrgID, Name: r.Name, Role: r.Role, Environments: nonNil(r.Environments), Regions: nonNil(r.Regions),
			Scopes: nonNil(r.Scopes), CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Tokens: []ServiceTokenView{}}
		if r.AccountableMemberID != nil {
			if m, ok := members[*r.AccountableMemberID]; ok {
				v.Accountable = &AccountableView{MemberID: m.ID, Email: m.Email, Role: m.Role}
			}
		}
		for _, t := range tokens {
			if t.ServiceAccountID == r.ID {
				v.Tokens = append(v.Tokens, t.view(now, emails))
			}
		}
		out[i] = v
	}
	return out, nil
}

// lockServiceAccount reads a live account of the organisation for update.
func lockServiceAccount(ctx context.Context, tx bun.Tx, orgID, id string) (ServiceAccount, error) {
	var sa ServiceAccount
	err := tx.NewSelect().Model(&sa).Where("org_id = ? AND id = ? AND deleted_at IS NULL", orgID, id).For("UPDATE").Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return sa, domain.Errorf(domain.CodeNotFound, "service account not found: %s", id)
	}
	if err != nil {
		return sa, fmt.Errorf("load service account %s: %w", id, err)
	}
	return sa, nil
}

// ServiceAccountChange is a change to an account; nil fields stay.
type ServiceAccountChange struct {
	Name         *string
	Role         *domain.Role
	Environments *[]string
	Regions      *[]string
	Scopes       *[]string
	// TakeOver makes this member the accountable human.
	TakeOver *MemberView
}

// ChangeServiceAccount applies the change under a lock; check decides,
// with the account as it is, whether the caller may. The audit event
// carries the fields before and after. Tokens whose minter may not mint
// for the account as it is after the change stop in the same transaction:
// a role raised above their minter's (account_role_raised), and, for a
// take-over, any whose minter is gone (taken_over: removing a minter
// revokes their tokens already, so these are only tokens from before
// minters were checked). A take-over's event lists the tokens it keeps,
// with who minted each: the new accountable member answers for them.
func ChangeServiceAccount(ctx context.Context, db *bun.DB, orgID, id string, ch ServiceAccountChange, check func(ServiceAccount) error, action string, ev EventBase) (ServiceAccountView, error) {
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sa, err := lockServiceAccount(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if err := check(sa); err != nil {
			return err
		}
		before := accountFields(sa)
		before["accountable_member_id"] = sa.AccountableMemberID
		if ch.Name != nil {
			sa.Name = *ch.Name
		}
		if ch.Role != nil {
			sa.Role = string(*ch.Role)
		}
		if ch.Environments != nil {
			sa.Environments = nonNil(*ch.Environments)
		}
		if ch.Regions != nil {
			sa.Regions = nonNil(*ch.Regions)
		}
		if ch.Scopes != nil {
			sa.Scopes = nonNil(*ch.Scopes)
		}
		if ch.TakeOver != nil {
			sa.AccountableMemberID = &ch.TakeOver.ID
		}
		sa.UpdatedAt = time.Now().UTC()
		if _, err := tx.NewUpdate().Model(&sa).Column("name", "role", "environments", "regions", "scopes", "accountable_member_id", "updated_at").WherePK().Exec(ctx); err != nil {
			if IsUniqueViolation(err, "service_accounts_live_name_key") {
				return domain.Errorf(domain.CodeConflict, "a service account named %q exists in this organization", sa.Name)
			}
			return fmt.Errorf("update service account %s: %w", id, err)
		}
		after := accountFields(sa)
		after["accountable_member_id"] = sa.AccountableMemberID
		data := map[string]any{"before": before, "after": after}
		if ch.Role != nil || ch.TakeOver != nil {
			reason := RevokedAccountRaised
			if ch.TakeOver != nil {
				reason = RevokedTakenOver
			}
			kept, revoked, err := revokeUnbacked(ctx, tx, orgID, "t.service_account_id = ?", id, reason, ev)
			if err != nil {
				return err
			}
			if err := insertEvents(ctx, tx, revoked); err != nil {
				return err
			}
			if ch.TakeOver != nil {
				list := make([]map[string]any, len(kept))
				for i, k := range kept {
					list[i] = map[string]any{"id": k.ID, "minted_by": k.MintedBy.String}
				}
				data["tokens_kept"] = list
			}
		}
		_, err = InsertEvent(ctx, tx, ev.Event(action, "service_account", id, data))
		return err
	})
	if err != nil {
		return ServiceAccountView{}, err
	}
	return ServiceAccountByID(ctx, db, orgID, id)
}

// MintServiceToken adds a token minted by the member to the account,
// refused while MaxLiveServiceTokens are valid; check decides, with the
// account, whether the caller may.
func MintServiceToken(ctx context.Context, db *bun.DB, orgID, id string, minter MemberView, ttl time.Duration, check func(ServiceAccount) error, ev EventBase) (ServiceTokenView, string, error) {
	var t ServiceToken
	var secret string
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sa, err := lockServiceAccount(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if err := check(sa); err != nil {
			return err
		}
		if err := lockMinter(ctx, tx, orgID, minter.ID, domain.Role(sa.Role)); err != nil {
			return err
		}
		live, err := tx.NewSelect().Model((*ServiceToken)(nil)).
			Where("service_account_id = ? AND revoked_at IS NULL AND expires_at > now()", id).Count(ctx)
		if err != nil {
			return fmt.Errorf("count service tokens: %w", err)
		}
		if live >= MaxLiveServiceTokens {
			return domain.Errorf(domain.CodeConflict, "service account %s has %d valid tokens, the most it may have: revoke one first", id, live)
		}
		if t, secret, err = insertServiceToken(ctx, tx, id, minter, time.Now().UTC(), ttl); err != nil {
			return err
		}
		_, err = InsertEvent(ctx, tx, ev.Event("service_account.token_created", "service_account", id,
			map[string]any{"token_id": t.ID, "expires_at": t.ExpiresAt, "minted_by": minter.ID}))
		return err
	})
	if err != nil {
		return ServiceTokenView{}, "", err
	}
	return t.view(time.Now(), map[string]string{minter.UserID: minter.Email}), secret, nil
}

// RevokeServiceToken revokes a token of the account at once; revoking a
// revoked token changes nothing and writes no event.
func RevokeServiceToken(ctx context.Context, db *bun.DB, orgID, id, tokenID string, ev EventBase) (ServiceTokenView, error) {
	var t ServiceToken
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := lockServiceAccount(ctx, tx, orgID, id); err != nil {
			return err
		}
		err := tx.NewSelect().Model(&t).Where("id = ? AND service_account_id = ?", tokenID, id).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			return domain.Errorf(domain.CodeNotFound, "token not found: %s", tokenID)
		}
		if err != nil {
			return fmt.Errorf("load service token %s: %w", tokenID, err)
		}
		if t.RevokedAt != nil {
			return nil
		}
		now := time.Now().UTC()
		t.RevokedAt, t.RevokedReason = &now, RevokedByManager
		if _, err := tx.NewUpdate().Model(&t).Column("revoked_at", "revoked_reason").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("revoke service token %s: %w", tokenID, err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("service_account.token_revoked", "service_account", id,
			map[string]any{"token_id": t.ID, "reason": RevokedByManager}))
		return err
	})
	if err != nil {
		return ServiceTokenView{}, err
	}
	return tokenView(ctx, db, t)
}

// DeleteServiceAccount deletes the account (its row stays, marked, for the
// audit trail's references) and revokes its tokens, at once.
func DeleteServiceAccount(ctx context.Context, db *bun.DB, orgID, id string, check func(ServiceAccount) error, ev EventBase) (ServiceAccountView, error) {
	v, err := ServiceAccountByID(ctx, db, orgID, id)
	if err != nil {
		return v, err
	}
	err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sa, err := lockServiceAccount(ctx, tx, orgID, id)
		if err != nil {
			return err
		}
		if err := check(sa); err != nil {
			return err
		}
		if _, err := tx.NewUpdate().Model((*ServiceAccount)(nil)).Set("deleted_at = now(), updated_at = now()").Where("id = ?", id).Exec(ctx); err != nil {
			return fmt.Errorf("delete service account %s: %w", id, err)
		}
		if _, err := tx.NewUpdate().Model((*ServiceToken)(nil)).Set("revoked_at = now(), revoked_reason = ?", RevokedAccountDeleted).Where("service_account_id = ? AND revoked_at IS NULL", id).Exec(ctx); err != nil {
			return fmt.Errorf("revoke tokens of %s: %w", id, err)
		}
		_, err = InsertEvent(ctx, tx, ev.Event("service_account.deleted", "service_account", id, map[string]any{"before": accountFields(sa)}))
		return err
	})
	return v, err
}

// unbackedToken is a valid token, its account's role and its minter's
// role today ("" when the minter is no longer a member).
type unbackedToken struct {
	ID          string         `bun:"id"`
	AccountID   string         `bun:"service_account_id"`
	MintedBy    sql.NullString `bun:"minted_by"`
	AccountRole string         `bun:"account_role"`
	MinterRole  string         `bun:"minter_role"`
}

// revokeUnbacked revokes, in tx, the organisation's valid tokens that
// where selects (with arg: "t.minted_by = ?" or "t.service_account_id =
// ?") and whose minter may no longer mint them (domain.Role.MayMint): no
// longer a member, or with a role below the power to mint or below the
// account's. Each gets a service_account.token_revoked event (ev's actor)
// with the reason and the minter, which it returns, for the caller to
// write after its other writes (InsertEvent). It returns the tokens it
// keeps.
func revokeUnbacked(ctx context.Context, tx bun.Tx, orgID, where, arg, reason string, ev EventBase) ([]unbackedToken, []*AuditEvent, error) {
	var tokens []unbackedToken
	err := tx.NewRaw(`SELECT t.id, t.service_account_id, t.minted_by, a.role AS account_role, coalesce(m.role, '') AS minter_role
		FROM service_account_tokens t
		JOIN service_accounts a ON a.id = t.service_account_id AND a.org_id = ? AND a.deleted_at IS NULL
		LEFT JOIN members m ON m.id = t.minted_by AND m.org_id = a.org_id
		WHERE t.revoked_at IS NULL AND t.expires_at > now() AND `+where+`
		ORDER BY t.id FOR UPDATE OF t`, orgID, arg).Scan(ctx, &tokens)
	if err != nil {
		return nil, nil, fmt.Errorf("load service tokens to check their minters: %w", err)
	}
	var kept, stop []unbackedToken
	for _, t := range tokens {
		if domain.Role(t.MinterRole).MayMint(domain.Role(t.AccountRole)) {
			kept = append(kept, t)
		} else {
			stop = append(stop, t)
		}
	}
	var evs []*AuditEvent
	for _, t := range stop {
		if _, err := tx.NewUpdate().Model((*ServiceToken)(nil)).Set("revoked_at = now(), revoked_reason = ?", reason).Where("id = ?", t.ID).Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("revoke service token %s: %w", t.ID, err)
		}
		evs = append(evs, ev.Event("service_account.token_revoked", "service_account", t.AccountID,
			map[string]any{"token_id": t.ID, "reason": reason, "minted_by": t.MintedBy.String}))
	}
	return kept, evs, nil
}

// revokeTokensMintedBy revokes, in tx, the tokens the member minted that
// they may no longer mint (all of them once they are not a member), with
// the reason: the removal, departure or role change of the member, in its
// own transaction. It returns their events, to write after the
// transaction's other writes.
func revokeTokensMintedBy(ctx context.Context, tx bun.Tx, orgID, memberID, reason string, ev EventBase) ([]*AuditEvent, error) {
	_, evs, err := revokeUnbacked(ctx, tx, orgID, "t.minted_by = ?", memberID, reason, ev)
	return evs, err
}

// ServiceActor is how an audit event names a service account and the
// token its request came with, with the human it acts for in
// on_behalf_of.
func ServiceActor(b EventBase, p *ServiceAccountPrincipal, humanEmail string) EventBase {
	b.ActorType, b.ActorID, b.ActorName, b.ActorEmail, b.ActorTokenID = "service_account", p.ID, p.Name, "", p.TokenID
	b.OnBehalfOf, _ = json.Marshal(domain.Actor{Type: "member", ID: p.HumanMemberID, Email: humanEmail})
	return b
}
