// Package dataplane is where tenants run: each tenant's schema, signing
// keys and route. Plane is what a tenant's saga does to it; Postgres is
// the default implementation, Faulty wraps one for fault drills.
package dataplane

import (
	"context"
	"encoding/json"
	"errors"
)

// Ref names a tenant's data-plane resources. It travels in workflow
// histories (activities.StepInput): its fields' names are part of
// recorded payloads.
type Ref struct {
	TenantID string
	OrgID    string
	Hostname string
}

// Plane is what a tenant's saga does to the data plane. Every method is
// idempotent: a retried step finds its work done and succeeds, a retried
// compensation finds nothing to undo and succeeds.
type Plane interface {
	// CreateSchema creates the tenant's database schema with its baseline
	// tables; DropSchema removes it with everything in it.
	CreateSchema(ctx context.Context, t Ref) error
	DropSchema(ctx context.Context, t Ref) error
	// CreateKeys creates the tenant's signing key and publishes its public
	// half as a JWKS; DeleteKeys removes both.
	CreateKeys(ctx context.Context, t Ref) error
	DeleteKeys(ctx context.Context, t Ref) error
	// CreateRoute routes the tenant's hostname to it; DeleteRoute removes
	// the route. SuspendRoute and ResumeRoute block and unblock it.
	CreateRoute(ctx context.Context, t Ref) error
	DeleteRoute(ctx context.Context, t Ref) error
	SuspendRoute(ctx context.Context, t Ref) error
	ResumeRoute(ctx context.Context, t Ref) error
	// Inspect reports which of the tenant's resources exist.
	Inspect(ctx context.Context, t Ref) (Resources, error)
}

// Resources says what exists of a tenant on the data plane.
type Resources struct {
	Schema       bool
	Keys         bool
	Route        bool
	RouteEnabled bool
	JWKS         json.RawMessage
}

// Any reports whether anything of the tenant exists.
func (r Resources) Any() bool { return r.Schema || r.Keys || r.Route }

// PublicError is what members are told of a failed step: never the data
// plane's internals (SQL, constraint names, addresses).
func PublicError(err error) string {
	var injected ErrInjected
	switch {
	case errors.As(err, &injected):
		return injected.Error()
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return "the data plane did not answer in time"
	}
	return "the data plane refused the step; operators find the cause in the worker log"
}
