package domain

// Role is a member's role in an organisation.
type Role string

// The roles, from most to least powerful.
const (
	RoleOwner     Role = "owner"
	RoleAdmin     Role = "admin"
	RoleDeveloper Role = "developer"
	RoleViewer    Role = "viewer"
)

// Roles lists every role.
var Roles = []Role{RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer:
		return true
	}
	return false
}

// Action is something a member may or may not do in an organisation.
type Action string

// The actions of the roles table (docs/architecture.md).
const (
	ActionRead              Action = "read"               // org, tenants, members, operations, invitations
	ActionTenantWrite       Action = "tenant.write"       // create, suspend, resume
	ActionTenantDestroy     Action = "tenant.destroy"     // decommission, restore
	ActionMembersManage     Action = "members.manage"     // invite, resend, revoke, change role, remove (not owners)
	ActionOwnersManage      Action = "owners.manage"      // grant or revoke owner
	ActionPlanChange        Action = "plan.change"        // change the organisation's plan
	ActionOrganizationWrite Action = "organization.write" // rename
	ActionSecurityManage    Action = "security.manage"    // require a second factor of every member
	ActionAuditRead         Action = "audit.read"         // read audit events
	// ActionServiceAccountsManage: create, change, take over and delete
	// service accounts, mint and revoke their tokens.
	ActionServiceAccountsManage Action = "service_accounts.manage"
	// ActionOrganizationDelete: delete the organisation, or restore it
	// during its grace period.
	ActionOrganizationDelete Action = "organization.delete"
	// ActionAuditStreamsManage: create, read, change, replay, test and
	// delete the organisation's audit streams (they carry every event of
	// the trail out of the building).
	ActionAuditStreamsManage Action = "audit_streams.manage"
	// ActionBillingRead: read the organisation's billing state and
	// invoices.
	ActionBillingRead Action = "billing.read"
	// ActionBillingManage: start a checkout, open Stripe's customer
	// portal.
	ActionBillingManage Action = "billing.manage"
)

// policy is the roles table, and the only place it is written.
var policy = map[Action][]Role{
	ActionRead:                  {RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer},
	ActionTenantWrite:           {RoleOwner, RoleAdmin, RoleDeveloper},
	ActionTenantDestroy:         {RoleOwner, RoleAdmin},
	ActionMembersManage:         {RoleOwner, RoleAdmin},
	ActionOwnersManage:          {RoleOwner},
	ActionPlanChange:            {RoleOwner},
	ActionOrganizationWrite:     {RoleOwner, RoleAdmin},
	ActionSecurityManage:        {RoleOwner},
	ActionAuditRead:             {RoleOwner, RoleAdmin},
	ActionServiceAccountsManage: {RoleOwner, RoleAdmin},
	ActionOrganizationDelete:    {RoleOwner},
	ActionAuditStreamsManage:    {RoleOwner, RoleAdmin},
	ActionBillingRead:           {RoleOwner, RoleAdmin},
	ActionBillingManage:         {RoleOwner},
}

// Allowed reports whether a member with the role may take the action.
// An action missing from the table is allowed to no one.
func Allowed(r Role, a Action) bool {
	for _, ok := range policy[a] {
		if ok == r {
			return true
		}
	}
	return false
}

// actionOrder is the actions in the order the roles table lists them.
var actionOrder = []Action{ActionRead, ActionTenantWrite, ActionTenantDestroy, ActionMembersManage,
	ActionOwnersManage, ActionPlanChange, ActionOrganizationWrite, ActionSecurityManage, ActionAuditRead, ActionServiceAccountsManage, ActionOrganizationDelete,
	ActionAuditStreamsManage, ActionBillingRead, ActionBillingManage}

// Permissions lists the actions a member with the role may take, in the
// roles table's order: what a client (the console) may offer the member.
func Permissions(r Role) []Action {
	out := []Action{}
	for _, a := range actionOrder {
		if Allowed(r, a) {
			out = append(out, a)
		}
	}
	return out
}

// Actions lists every action of the policy table, in the table's order.
func Actions() []Action {
	return append([]Action(nil), actionOrder...)
}

// MayGrant reports whether a member with the role may give role g to a
// member or an invitation, or change or remove a member who holds g: it
// takes members.manage, and owners.manage when g is owner.
func (r Role) MayGrant(g Role) bool {
	return Allowed(r, ActionMembersManage) && (g != RoleOwner || Allowed(r, ActionOwnersManage))
}

// Grantable lists, most powerful first, the roles a member with the role
// may give members and invitations.
func (r Role) Grantable() []Role {
	out := []Role{}
	for _, g := range Roles {
		if r.MayGrant(g) {
			out = append(out, g)
		}
	}
	return out
}

// MayMint reports whether a member with the role may mint a token for a
// service account with the role account: service_accounts.manage, and an
// account no more powerful than the member. A token works only while its
// minter may mint it.
func (r Role) MayMint(account Role) bool {
	return Allowed(r, ActionServiceAccountsManage) && account.AtMost(r)
}

// ServiceAccountRoles lists, most powerful first, the roles a member with
// the role may give a service account: none without
// service_accounts.manage, else those no more powerful than its own.
func (r Role) ServiceAccountRoles() []Role {
	out := []Role{}
	for _, g := range Roles {
		if r.MayMint(g) {
			out = append(out, g)
		}
	}
	return out
}
