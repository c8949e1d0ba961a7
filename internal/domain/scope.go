package domain

// Scope is what a service account may do, narrower than a role: a route
// of an organisation names the scope it needs, and a service account's
// request is allowed only when its scopes hold that one and both its own
// role and its accountable human's role allow the route's action. Routes
// that name no scope (members, invitations, the plan, service accounts)
// are never open to a service account.
type Scope string

// The scopes.
const (
	ScopeOrganizationRead    Scope = "organization:read"    // the organisation, its usage
	ScopeMembersRead         Scope = "members:read"         // members, invitations
	ScopeTenantsRead         Scope = "tenants:read"         // tenants, their operations
	ScopeTenantsCreate       Scope = "tenants:create"       // create a tenant
	ScopeTenantsSuspend      Scope = "tenants:suspend"      // suspend a tenant
	ScopeTenantsResume       Scope = "tenants:resume"       // resume a tenant
	ScopeTenantsDecommission Scope = "tenants:decommission" // decommission a tenant
	ScopeTenantsRestore      Scope = "tenants:restore"      // restore a tenant in its grace period
	ScopeEventsRead          Scope = "events:read"          // the audit trail
	// ScopeAuditStreamsManage: the organisation's audit streams, which
	// deliver every event of its trail.
	ScopeAuditStreamsManage Scope = "audit-streams:manage"
)

// Scopes lists every scope.
var Scopes = []Scope{ScopeOrganizationRead, ScopeMembersRead, ScopeTenantsRead, ScopeTenantsCreate, ScopeTenantsSuspend,
	ScopeTenantsResume, ScopeTenantsDecommission, ScopeTenantsRestore, ScopeEventsRead, ScopeAuditStreamsManage}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool {
	for _, k := range Scopes {
		if k == s {
			return true
		}
	}
	return false
}

// rank orders the roles from least (1) to most powerful.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleDeveloper:
		return 2
	case RoleAdmin:
		return 3
	case RoleOwner:
		return 4
	}
	return 0
}

// AtMost reports whether r is no more powerful than other.
func (r Role) AtMost(other Role) bool { return r.Valid() && r.rank() <= other.rank() }
