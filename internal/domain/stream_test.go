package domain

import "testing"

func TestAStreamsFilterNamesKnownActionsOrTheirFamilies(t *testing.T) {
	for _, tc := range []struct {
		item string
		ok   bool
	}{
		{"tenant.provisioned", true},
		{"tenant.provisioning_failed", true},
		{"member.invited", false}, // an invitation is invitation.created
		{"tenant.*", true},
		{"audit_stream.*", true},
		{"tenant.prov*", false},
		{"*", false},
		{"nobody.*", false},
		{"tenant", false},
		{"", false},
	} {
		if got := ValidStreamAction(tc.item); got != tc.ok {
			t.Errorf("ValidStreamAction(%q) = %v, want %v", tc.item, got, tc.ok)
		}
	}
}

func TestAStreamsFilterTakesItsActionsAndFamiliesOnly(t *testing.T) {
	for _, tc := range []struct {
		filter []string
		action string
		ok     bool
	}{
		{nil, "member.added", true},
		{[]string{"tenant.*"}, "tenant.suspended", true},
		{[]string{"tenant.*"}, "tenant_x.suspended", false},
		{[]string{"tenant.provisioned", "tenant.provisioning_failed"}, "tenant.provisioning_failed", true},
		{[]string{"tenant.provisioned"}, "tenant.provisioned_again", false},
	} {
		if got := StreamMatches(tc.filter, tc.action); got != tc.ok {
			t.Errorf("StreamMatches(%v, %q) = %v, want %v", tc.filter, tc.action, got, tc.ok)
		}
	}
}
