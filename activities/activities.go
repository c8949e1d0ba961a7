// Package activities is the control plane's I/O on behalf of workflows:
// every activity persists state and audit events through bun (Postgres) or
// acts on the data plane, and is safe to retry.
package activities

import (
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/dataplane"
)

// Activities holds the activities' dependencies; its methods are registered
// once on the worker.
type Activities struct {
	DB        *bun.DB
	DataPlane dataplane.Plane
}

// Actor is who an audit event names: a member, an operator or the system
// (for the system, OnBehalfOf names the human who started the saga).
type Actor struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Email string `json:"email"`
	// Name is a service account's name.
	Name string `json:"name,omitempty"`
	// OnBehalfOf is, for a service account, the human who answers for it.
	OnBehalfOf *Actor `json:"on_behalf_of,omitempty"`
}
