package domain

import "testing"

func TestACustomerSlugIsAShortDNSLabel(t *testing.T) {
	tests := []struct {
		name, slug string
		ok         bool
	}{
		{"letters, digits and a hyphen are a slug", "acme-2", true},
		{"three characters are the shortest slug", "abc", true},
		{"thirty characters are the longest slug", "abcdefghijklmnopqrstuvwxyz0123", true},
		{"two characters are too short", "ab", false},
		{"thirty-one characters are too long", "abcdefghijklmnopqrstuvwxyz01234", false},
		{"a hyphen at the start is not", "-acme", false},
		{"a hyphen at the end is not", "acme-", false},
		{"capitals are not", "Acme", false},
		{"a dot is not", "acme.io", false},
		{"an underscore is not", "ac_me", false},
		{"a letter from another script is not", "acmе", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := OrgSlugProblem(tc.slug) == ""; got != tc.ok {
				t.Fatalf("OrgSlugProblem(%q) accepted %v, want %v", tc.slug, got, tc.ok)
			}
			// Every slug a customer may choose is one the database takes.
			if tc.ok && !SlugPattern.MatchString(tc.slug) {
				t.Fatalf("%q is not a DNS label", tc.slug)
			}
		})
	}
}
