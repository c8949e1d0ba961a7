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
}
