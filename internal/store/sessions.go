package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// TokenPrefix marks the control plane's bearer tokens, so a leaked one is
// recognisable by secret scanners.
const TokenPrefix = "cpt_"

// NewSecret returns a new random secret (256 bits, base64url) with the
// prefix, and its SHA-256, which is all that is stored.
func NewSecret(prefix string) (secret string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("random secret: %w", err)
	}
	secret = prefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashSecret(secret), nil
}

// HashSecret is the SHA-256 of a secret. A fast hash is right here: the
// secrets are 256 random bits, so there is nothing to brute-force, and the
// lookup is by the hash, so no secret is ever compared byte by byte.
func HashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Principal is the user behind a valid session and, for a route of an
// organisation, the user's membership there (empty MemberID: none).
type Principal struct {
	UserID    string
	Email     string
	TokenHash []byte
	// SessionID names the session; AuthenticatedAt is when its person last
	// proved who they are (sign-in, or POST /auth/reauthenticate).
	SessionID       string
	AuthenticatedAt time.Time
	// NeedsSecondFactor: the organisation requires a second factor and the
	// user has none (asked only of an organisation that requires one, so
	// the query costs nothing more elsewhere).
	NeedsSecondFactor bool
	MemberID          string
	Role              string
	OrgID             string
	// Org is the organisation, read in the same query (nil: no membership).
	Org *Organization
	// ServiceAccount is set when the token is a service account's: UserID
	// and Email are then its accountable human's (empty when there is
	// none), Role the account's own, and Org set only on a route of the
	// account's organisation.
	ServiceAccount *ServiceAccountPrincipal
}

// authenticateSession reads a session and, for an organisation's route,
// the membership and the organisation ($2; empty for none). It runs on every
// request a member makes: prepared.
var authenticateSession = prepare(`
	WITH touched AS (
		UPDATE sessions SET last_used_at = now()
		WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now() AND last_used_at < now() - interval '1 minute'
	)
	SELECT s.user_id, u.email, s.id, s.authenticated_at,
		CASE WHEN o.require_mfa THEN NOT ` + fmt.Sprintf(hasFactorSQL, "s.user_id") + ` ELSE false END,
		m.id, m.role, o.slug, o.name, o.plan_id, o.created_at, o.updated_at, o.require_mfa, o.state, o.deletion_due_at, o.default_region
	FROM sessions s
	JOIN users u ON u.id = s.user_id
	LEFT JOIN members m ON m.user_id = s.user_id AND m.org_id = $2
	LEFT JOIN organizations o ON o.id = m.org_id
	WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()`)

// ErrNoSession is returned for a token that is unknown, expired or revoked.
var ErrNoSession = errors.New("no valid session")

// Authenticate resolves a bearer token and, when orgID is not empty, the
// caller's membership in that organisation and the organisation itself, in
// one query: it runs on every request.
func Authenticate(ctx context.Context, db bun.IDB, token, orgID string) (Principal, error) {
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 128 {
		return Principal{}, ErrNoSession
	}
	p := Principal{TokenHash: HashSecret(token), OrgID: orgID}
	var member, role, slug, name, plan, defaultRegion sql.NullString
	var created, updated sql.NullTime
	var requireMFA sql.NullBool
	var state sql.NullString
	var due sql.NullTime
	// The same round trip notes when the session was last used, at most
	// once a minute (a write a minute per session, not per request).
	err := authenticateSession.scan(ctx, db, []any{p.TokenHash, orgID},
		&p.UserID, &p.Email, &p.SessionID, &p.AuthenticatedAt, &p.NeedsSecondFactor,
		&member, &role, &slug, &name, &plan, &created, &updated, &requireMFA, &state, &due, &defaultRegion)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	p.MemberID, p.Role = member.String, role.String
	if p.MemberID != "" {
		p.Org = &Organization{ID: orgID, Slug: slug.String, Name: name.String, PlanID: plan.String, CreatedAt: created.Time, UpdatedAt: updated.Time,
			RequireMFA: requireMFA.Bool, State: state.String}
		if defaultRegion.Valid {
			region := defaultRegion.String
			p.Org.DefaultRegion = &region
		}
		if due.Valid {
			at := due.Time
			p.Org.DeletionDueAt = &at
		}
	}
	return p, nil
}

// CreateSession stores a new session for the user and returns its token.
func CreateSession(ctx context.Context, db bun.IDB, userID string, ttl time.Duration, clientAddr, userAgent string) (string, Session, error) {
	token, hash, err := NewSecret(TokenPrefix)
	if err != nil {
		return "", Session{}, err
	}
	now := time.Now().UTC()
	s := Session{TokenHash: hash, ID: domain.NewID(domain.PrefixSession), UserID: userID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(ttl), AuthenticatedAt: now, ClientAddr: clip(clientAddr, 100), UserAgent: clip(userAgent, 512)}
	if _, err := db.NewInsert().Model(&s).Exec(ctx); err != nil {
		return "", Session{}, fmt.Errorf("insert session: %w", err)
	}
	return token, s, nil
}

// RevokeSession revokes the session of the token hash; revoking twice is
// not an error.
func RevokeSession(ctx context.Context, db bun.IDB, tokenHash []byte) error {
	_, err := db.NewUpdate().Model((*Session)(nil)).
		Set("revoked_at = now()").
		Where("token_hash = ? AND revoked_at IS NULL", tokenHash).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// clip keeps at most n bytes of text a caller sent, made storable
// (domain.StorableText).
func clip(s string, n int) string { return domain.StorableText(s, n) }

// ActiveSessions are the user's sessions that neither ended nor expired,
// the most recently used first.
func ActiveSessions(ctx context.Context, db bun.IDB, userID string) ([]Session, error) {
	var ss []Session
	err := db.NewSelect().Model(&ss).Where("user_id = ? AND revoked_at IS NULL AND expires_at > now()", userID).
		OrderExpr("last_used_at DESC, created_at DESC").Limit(1000).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return ss, nil
}

// EndSessions ends the user's active sessions: the one of id (when id is
// not empty), else every one but the session of keep. It writes
// session.revoked in each of the user's organisations per session ended,
// in the same transaction, and returns how many it ended.
func EndSessions(ctx context.Context, db *bun.DB, user User, id string, keep []byte, b EventBase) (int, error) {
	var ended []Session
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewUpdate().Model(&ended).Set("revoked_at = now()").
			Where("user_id = ? AND revoked_at IS NULL AND expires_at > now()", user.ID)
		if id != "" {
			q = q.Where("id = ?", id)
		} else {
			q = q.Where("token_hash <> ?", keep)
		}
		if _, err := q.Returning("id").Exec(ctx); err != nil {
			return fmt.Errorf("end sessions: %w", err)
		}
		if len(ended) == 0 {
			return nil
		}
		datas := make([]map[string]any, len(ended))
		for i, e := range ended {
			datas[i] = map[string]any{"session_id": e.ID}
		}
		return insertUserEvents(ctx, tx, user, "session.revoked", b, datas...)
	})
	return len(ended), err
}

// StartSession signs the user in: in one transaction it runs admit (nil:
// nothing), which checks what the sign-in rests on (uses up a challenge,
// accepts a code) and whose error rolls everything back, stores a new
// session and writes user.signed_in with the method (password, totp,
// recovery_code, passkey) in each of the user's organisations. It returns
// the session's token.
func StartSession(ctx context.Context, db *bun.DB, user User, ttl time.Duration, method string, b EventBase, admit func(ctx context.Context, tx bun.Tx) error) (string, Session, error) {
	var token string
	var sess Session
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if admit != nil {
			if err := admit(ctx, tx); err != nil {
				return err
			}
		}
		var err error
		if token, sess, err = CreateSession(ctx, tx, user.ID, ttl, b.ClientAddr, b.UserAgent); err != nil {
			return err
		}
		return insertUserEvents(ctx, tx, user, "user.signed_in", b, map[string]any{"method": method})
	})
	return token, sess, err
}
