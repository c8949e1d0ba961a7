package domain

import (
	"slices"
	"testing"
)

func TestTransitionsAllowedFromEachState(t *testing.T) {
	states := []State{StateProvisioning, StateActive, StateSuspended, StateDecommissioning, StateDecommissioned, StateFailed}
	allowed := map[OpKind][]State{
		OpSuspend:      {StateActive},
		OpResume:       {StateSuspended},
		OpDecommission: {StateActive, StateSuspended},
		OpRestore:      {StateDecommissioning},
	}
	for kind, ok := range allowed {
		for _, s := range states {
			want := false
			for _, a := range ok {
				want = want || a == s
			}
			err := CanStart(kind, s)
			if (err == nil) != want {
				t.Errorf("CanStart(%s, %s) = %v, want allowed=%v", kind, s, err, want)
			}
			if err != nil && ErrorCode(err) != CodeConflict {
				t.Errorf("CanStart(%s, %s) code = %s, want CONFLICT", kind, s, ErrorCode(err))
			}
		}
	}
}

func TestThePolicyTableMatchesTheSpec(t *testing.T) {
	want := map[Action][]Role{
		ActionRead:                  {RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer},
		ActionTenantWrite:           {RoleOwner, RoleAdmin, RoleDeveloper},
		ActionTenantDestroy:         {RoleOwner, RoleAdmin},
		ActionMembersManage:         {RoleOwner, RoleAdmin},
		ActionOwnersManage:          {RoleOwner},
		ActionPlanChange:            {RoleOwner},
		ActionSecurityManage:        {RoleOwner},
		ActionAuditRead:             {RoleOwner, RoleAdmin},
		ActionServiceAccountsManage: {RoleOwner, RoleAdmin},
	}
	for a, roles := range want {
		for _, r := range Roles {
			in := false
			for _, x := range roles {
				in = in || x == r
			}
			if Allowed(r, a) != in {
				t.Errorf("Allowed(%s, %s) = %v, want %v", r, a, !in, in)
			}
		}
	}
	if Allowed(RoleOwner, Action("no.such.action")) {
		t.Error("an action missing from the table is allowed")
	}
}

func TestPermissionsAreTheRolesTableRowsOfTheRole(t *testing.T) {
	for _, tc := range []struct {
		role Role
		want []Action
	}{
		{RoleOwner, []Action{ActionRead, ActionTenantWrite, ActionTenantDestroy, ActionMembersManage, ActionOwnersManage, ActionPlanChange, ActionOrganizationWrite, ActionSecurityManage, ActionAuditRead, ActionServiceAccountsManage, ActionOrganizationDelete, ActionAuditStreamsManage, ActionBillingRead, ActionBillingManage}},
		{RoleDeveloper, []Action{ActionRead, ActionTenantWrite}},
		{RoleViewer, []Action{ActionRead}},
		{Role("nobody"), []Action{}},
	} {
		got := Permissions(tc.role)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.role, got, tc.want)
		}
		for _, a := range Actions() {
			if Allowed(tc.role, a) != slices.Contains(got, a) {
				t.Errorf("%s: %s allowed %v but listed %v", tc.role, a, Allowed(tc.role, a), slices.Contains(got, a))
			}
		}
	}
}

func TestTheActionsListIsEveryActionOfTheTable(t *testing.T) {
	if len(Actions()) != len(policy) {
		t.Fatalf("Actions() has %d, the table %d", len(Actions()), len(policy))
	}
	for _, a := range Actions() {
		if _, ok := policy[a]; !ok {
			t.Errorf("%s is listed but not in the table", a)
		}
	}
}

func TestARoleIsAtMostTheRolesAboveIt(t *testing.T) {
	for i, r := range Roles { // most powerful first
		for j, other := range Roles {
			if got, want := r.AtMost(other), i >= j; got != want {
				t.Errorf("%s.AtMost(%s) = %v, want %v", r, other, got, want)
			}
		}
	}
	if Role("nobody").AtMost(RoleOwner) {
		t.Error("an unknown role is at most owner")
	}
	for _, s := range Scopes {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
	}
	if Scope("tenants:*").Valid() {
		t.Error("a made-up scope is valid")
	}
}

func TestTheRolesAMemberMayGrantFollowTheRolesTable(t *testing.T) {
	for _, c := range []struct {
		role           Role
		grant, account []Role
	}{
		{RoleOwner, []Role{RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer}, []Role{RoleOwner, RoleAdmin, RoleDeveloper, RoleViewer}},
		{RoleAdmin, []Role{RoleAdmin, RoleDeveloper, RoleViewer}, []Role{RoleAdmin, RoleDeveloper, RoleViewer}},
		{RoleDeveloper, []Role{}, []Role{}},
		{RoleViewer, []Role{}, []Role{}},
	} {
		if got := c.role.Grantable(); !slices.Equal(got, c.grant) {
			t.Errorf("%s may grant members %v, want %v", c.role, got, c.grant)
		}
		if got := c.role.ServiceAccountRoles(); !slices.Equal(got, c.account) {
			t.Errorf("%s may give service accounts %v, want %v", c.role, got, c.account)
		}
		for _, a := range Roles {
			if got, want := c.role.MayMint(a), slices.Contains(c.account, a); got != want {
				t.Errorf("%s may mint a token for a %s account: %v, want %v", c.role, a, got, want)
			}
		}
	}
	if Role("").MayMint(RoleViewer) {
		t.Error("no member (a minter who left) may mint a token")
	}
}
