package store

import (
	"encoding/json"
	"time"

	"github.com/uptrace/bun"
)

// Organization is a row of organizations.
type Organization struct {
	bun.BaseModel `bun:"table:organizations"`

	ID        string    `bun:"id,pk"`
	Slug      string    `bun:"slug"`
	Name      string    `bun:"name"`
	PlanID    string    `bun:"plan_id"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
	// RequireMFA holds members without a second factor at the door
	// (403 MFA_REQUIRED).
	RequireMFA bool `bun:"require_mfa"`
	// State is active, deleting (until DeletionDueAt, then its tenants
	// end and its personal data is erased) or deleted.
	State         string     `bun:"state,nullzero"`
	DeletionDueAt *time.Time `bun:"deletion_due_at"`
	DeletedAt     *time.Time `bun:"deleted_at"`
	// DefaultRegion is where its new tenants live unless a creation
	// chooses (nil: the installation's first region).
	DefaultRegion *string `bun:"default_region"`
}

// User is a row of users.
type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           string    `bun:"id,pk"`
	Email        string    `bun:"email"`
	Name         string    `bun:"name"`
	PasswordHash string    `bun:"password_hash"`
	CreatedAt    time.Time `bun:"created_at"`
	UpdatedAt    time.Time `bun:"updated_at"`
}

// Member is a row of members: a user's role in an organisation.
type Member struct {
	bun.BaseModel `bun:"table:members"`

	ID        string    `bun:"id,pk"`
	OrgID     string    `bun:"org_id"`
	UserID    string    `bun:"user_id"`
	Role      string    `bun:"role"`
	CreatedAt time.Time `bun:"created_at"`
	UpdatedAt time.Time `bun:"updated_at"`
}

// AuditEvent is a row of audit_events. DedupKey, when set, makes a retried
// writer insert the event once.
type AuditEvent struct {
	bun.BaseModel `bun:"table:audit_events"`

	ID         string          `bun:"id,pk"`
	OrgID      string          `bun:"org_id"`
	Action     string          `bun:"action"`
	ActorType  string          `bun:"actor_type"`
	ActorID    string          `bun:"actor_id"`
	ActorEmail string          `bun:"actor_email"`
	ActorName  string          `bun:"actor_name"`
	OnBehalfOf json.RawMessage `bun:"on_behalf_of,type:jsonb,nullzero"`
	TargetType string          `bun:"target_type"`
	TargetID   string          `bun:"target_id"`
	RequestID  string          `bun:"request_id"`
	WorkflowID string          `bun:"workflow_id"`
	ClientAddr string          `bun:"client_addr"`
	UserAgent  string          `bun:"user_agent"`
	Data       json.RawMessage `bun:"data,type:jsonb,nullzero"`
	DedupKey   *string         `bun:"dedup_key"`
	OccurredAt time.Time       `bun:"occurred_at"`

	// ActorTokenID is the token a service account's request came with.
	ActorTokenID string `bun:"actor_token_id"`

	// Seq is the event's place in its organisation's chain (1, 2, …; 0:
	// not chained yet), Hash SHA-256(the previous event's hash ‖ its
	// canonical form) (internal/auditchain).
	Seq  int64  `bun:"seq,nullzero"`
	Hash []byte `bun:"hash"`
}

// Session is a row of sessions: a bearer token, stored as its SHA-256.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	TokenHash []byte `bun:"token_hash,pk"`
	// ID names the session to its person (GET /me/sessions); the token's
	// hash never leaves the server.
	ID         string     `bun:"id"`
	UserID     string     `bun:"user_id"`
	CreatedAt  time.Time  `bun:"created_at"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
	ClientAddr string     `bun:"client_addr"`
	UserAgent  string     `bun:"user_agent"`
	// AuthenticatedAt is when the session's person last proved who they
	// are: its sign-in, or a later reauthentication.
	AuthenticatedAt time.Time `bun:"authenticated_at,nullzero,default:now()"`
	// LastUsedAt is when a request last came with the token, to the
	// minute.
	LastUsedAt time.Time `bun:"last_used_at"`
}

// Invitation is a row of invitations; the secret is stored as its SHA-256.
type Invitation struct {
	bun.BaseModel `bun:"table:invitations"`

	ID         string     `bun:"id,pk"`
	OrgID      string     `bun:"org_id"`
	Email      string     `bun:"email"`
	Role       string     `bun:"role"`
	TokenHash  []byte     `bun:"token_hash"`
	Status     string     `bun:"status"`
	InvitedBy  string     `bun:"invited_by"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	AcceptedAt *time.Time `bun:"accepted_at"`
	RevokedAt  *time.Time `bun:"revoked_at"`
	CreatedAt  time.Time  `bun:"created_at"`
	UpdatedAt  time.Time  `bun:"updated_at"`
}

// Plan is a row of plans.
type Plan struct {
	bun.BaseModel `bun:"table:plans"`

	ID                string `bun:"id,pk"`
	Name              string `bun:"name"`
	MaxTenants        int    `bun:"max_tenants"`
	MaxMembers        int    `bun:"max_members"`
	RequestsPerMinute int    `bun:"requests_per_minute"`
	// MaxServiceAccounts is how many service accounts (not deleted) an
	// organisation of the plan may have.
	MaxServiceAccounts int `bun:"max_service_accounts"`
	// AuditRetentionDays is how long an organisation of the plan keeps
	// its audit events (PurgeAuditTrail).
	AuditRetentionDays int `bun:"audit_retention_days"`
}

// OutboxMessage is a row of outbox: mail to deliver.
type OutboxMessage struct {
	bun.BaseModel `bun:"table:outbox"`

	ID        int64  `bun:"id,pk,autoincrement"`
	Recipient string `bun:"recipient"`
	Subject   string `bun:"subject"`
	Body      string `bun:"body"`
	// BodyRedacted is Body without its secrets; it replaces Body once the
	// message is sent or given up.
	BodyRedacted string     `bun:"body_redacted"`
	CreatedAt    time.Time  `bun:"created_at,nullzero,default:now()"`
	SentAt       *time.Time `bun:"sent_at"`
	Attempts     int        `bun:"attempts"`
	LastError    string     `bun:"last_error"`
}
