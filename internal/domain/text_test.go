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

func TestStorableTextHasNoNULNoInvalidUTF8AndIsCutOnACharacter(t *testing.T) {
	tests := []struct {
		name, value string
		max         int
		want        string
	}{
		{"plain text is kept", "curl/8.5.0", 512, "curl/8.5.0"},
		{"a NUL is removed", "a\x00b", 512, "ab"},
		{"only NULs leave nothing", "\x00\x00", 512, ""},
		{"a byte that is not UTF-8 is replaced", "a\xffb", 512, "a\uFFFDb"},
		{"a run of bad bytes is one replacement", "a\xff\xfe\xfdb", 512, "a\uFFFDb"},
		{"other control characters are kept", "a\tb\x7f", 512, "a\tb\x7f"},
		{"an overlong value is cut to max bytes", "abcdef", 4, "abcd"},
		{"a cut never splits a character", "abc\u00e9", 4, "abc"},
		{"a cut never splits an emoji", "ab🎉", 5, "ab"},
		{"the cut counts bytes after cleaning", "\x00\x00abcd", 4, "abcd"},
		{"no limit keeps everything", "abcdef\x00", 0, "abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StorableText(tt.value, tt.max)
			if got != tt.want {
				t.Fatalf("StorableText(%q, %d) = %q, want %q", tt.value, tt.max, got, tt.want)
			}
		})
	}
}
