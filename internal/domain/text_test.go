package domain

import (
	"strings"
	"testing"
)

func TestDisplayName(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // the name kept; "" when refused
		why         string // in the problem when refused
	}{
		{"a plain name is a name", "Acme", "Acme", ""},
		{"letters, accents and emoji are a name", "Zürich Café 🎉", "Zürich Café 🎉", ""},
		{"an emoji with its presentation selector is a name", "ops ❤️", "ops ❤️", ""},
		{"one script other than Latin is a name", "Москва", "Москва", ""},
		{"Greek with its accents is a name", "Αθήνα", "Αθήνα", ""},
		{"Latin with Han is a name", "東京 Tokyo", "東京 Tokyo", ""},
		{"a decomposed accent is kept composed (NFC)", "Cafe\u0301", "Caf\u00e9", ""},
		{"the Kelvin sign is kept as the letter K (NFC)", "\u212aelvin", "Kelvin", ""},
		{"spaces at the ends are removed", "  Acme ", "Acme", ""},
		{"a run of spaces is one", "Acme   Inc", "Acme Inc", ""},
		{"an empty name is not", "", "", "characters"},
		{"only spaces are not", "   ", "", "characters"},
		{"a name past the limit is not", "abcdefghijklmnopqrstu", "", "characters"},
		{"a name within the limit once composed is", "abcdefghijklmnopqrse\u0301", "abcdefghijklmnopqrs\u00e9", ""},
		{"CR LF is not", "Acme\r\nBcc: x", "", "control"},
		{"a tab is not", "a\tb", "", "control"},
		{"NUL is not", "a\x00b", "", "control"},
		{"DEL is not", "a\x7fb", "", "control"},
		{"a C1 control is not", "a\u0085b", "", "control"},
		{"a line separator is not", "a\u2028b", "", "control"},
		{"a paragraph separator is not", "a\u2029b", "", "control"},
		{"a right-to-left override is not", "a\u202eb", "", "bidirectional"},
		{"an isolate is not", "a\u2066b", "", "bidirectional"},
		{"invalid UTF-8 is not", "a\xffb", "", "UTF-8"},
		{"a zero-width space is not", "deploy\u200ber", "", "invisible"},
		{"a zero-width joiner is not", "deployer\u200d", "", "invisible"},
		{"a zero-width non-joiner is not", "de\u200cployer", "", "invisible"},
		{"a word joiner is not", "\u2060deployer", "", "invisible"},
		{"a soft hyphen is not", "deplo\u00adyer", "", "invisible"},
		{"a byte order mark is not", "\ufeffdeployer", "", "invisible"},
		{"a tag character is not", "deployer\U000e0041", "", "invisible"},
		{"a variation selector after a letter is not", "deployer\ufe0f", "", "invisible"},
		{"a variation selector first is not", "\ufe0fdeployer", "", "invisible"},
		{"the combining grapheme joiner is not", "deplo\u034fyer", "", "invisible"},
		{"a Hangul filler is not", "deployer\u3164", "", "invisible"},
		{"a halfwidth Hangul filler is not", "\uffa0deployer", "", "invisible"},
		{"the Braille blank is not", "deployer\u2800", "", "invisible"},
		{"a private-use character is not", "deployer\ue000", "", "invisible"},
		{"an unassigned code point is not", "deployer\U0003fffd", "", "invisible"},
		{"a noncharacter is not", "deployer\ufdd0", "", "invisible"},
		{"a no-break space is not", "deploy\u00a0er", "", "space"},
		{"an ideographic space is not", "deploy\u3000er", "", "space"},
		{"a Cyrillic e among Latin letters is not", "d\u0435ployer", "", "script"},
		{"a Greek omicron among Latin letters is not", "depl\u03bfyer", "", "script"},
		{"a Latin e among Cyrillic letters is not", "\u0434e\u043f\u043b\u043e\u0439", "", "script"},
		{"Greek and Cyrillic together are not", "\u03b1\u0431", "", "script"},
		{"the Ohm sign beside Latin letters is not (NFC makes it Omega)", "\u2126hm", "", "script"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problem := DisplayName(tt.value, 20)
			switch {
			case tt.why == "" && (problem != "" || got != tt.want):
				t.Fatalf("DisplayName(%q) = %q, %q; want %q", tt.value, got, problem, tt.want)
			case tt.why != "" && !strings.Contains(problem, tt.why):
				t.Fatalf("DisplayName(%q) = %q, %q; want a problem about %s", tt.value, got, problem, tt.why)
			}
		})
	}
}

// textCase is what a function of text, such as StorableText, should make
// of value cut to max bytes.
type textCase struct {
	name, value string
	max         int
	want        string
}

func checkText(t *testing.T, fn func(string, int) string, fname string, tests []textCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fn(tt.value, tt.max); got != tt.want {
				t.Fatalf("%s(%q, %d) = %q, want %q", fname, tt.value, tt.max, got, tt.want)
			}
		})
	}
}

func TestCleanTextHasNoControlOrFormatCharacters(t *testing.T) {
	checkText(t, CleanText, "CleanText", []textCase{
		{"plain text is kept", "Mozilla/5.0 (X11; Linux x86_64)", 512, "Mozilla/5.0 (X11; Linux x86_64)"},
		{"letters of any script are kept", "Браузер/1.0 ü 🎉", 512, "Браузер/1.0 ü 🎉"},
		{"a tab is a space", "a\tb", 512, "a b"},
		{"NUL, DEL and C0 controls are removed", "a\x00\x01\x1b[31mb\x7f", 512, "a[31mb"},
		{"a C1 control is removed", "a\u0085b", 512, "ab"},
		{"bidirectional controls are removed", "a\u202egnp.exe\u2066", 512, "agnp.exe"},
		{"zero-width characters are removed", "a\u200b\u200d\ufeffb", 512, "ab"},
		{"line separators are removed", "a\u2028\u2029b", 512, "ab"},
		{"a run of bad bytes is one replacement", "a\xff\xfe\xfdb", 512, "a\uFFFDb"},
		{"the cut counts bytes after cleaning and never splits a character", "\x01\x01ab\u00e9", 3, "ab"},
	})
}

func TestStorableTextHasNoNULNoInvalidUTF8AndIsCutOnACharacter(t *testing.T) {
	checkText(t, StorableText, "StorableText", []textCase{
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
	})
}
