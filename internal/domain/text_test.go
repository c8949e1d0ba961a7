package domain

import "testing"

func TestNameProblem(t *testing.T) {
	tests := []struct {
		name, value string
		ok          bool
	}{
		{"a plain name is a name", "Acme", true},
		{"letters, accents and emoji are a name", "Zürich Café 🎉", true},
		{"an empty name is not", "", false},
		{"a name past the limit is not", "abcdefghijklmnopqrstu", false},
		{"CR LF is not", "Acme\r\nBcc: x", false},
		{"a tab is not", "a\tb", false},
		{"NUL is not", "a\x00b", false},
		{"DEL is not", "a\x7fb", false},
		{"a C1 control is not", "a\u0085b", false},
		{"a line separator is not", "a\u2028b", false},
		{"a paragraph separator is not", "a\u2029b", false},
		{"a right-to-left override is not", "a\u202eb", false},
		{"an isolate is not", "a\u2066b", false},
		{"invalid UTF-8 is not", "a\xffb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NameProblem(tt.value, 20); (got == "") != tt.ok {
				t.Fatalf("NameProblem(%q) = %q", tt.value, got)
			}
		})
	}
}
