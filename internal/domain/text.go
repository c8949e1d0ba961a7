package domain

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DisplayName returns s as a name people read and that goes into mail (an
// organisation's, a user's, a service account's), with what is wrong with
// it, or "" when nothing is. The name is kept in Unicode NFC, so two
// spellings of "Café" are one name, with spaces at its ends removed and
// runs of spaces made one (a page shows them as one). It is 1 to max
// characters of UTF-8 and must not hold:
//   - control characters, line or paragraph separators or bidirectional
//     controls: CR and LF would start a new mail header, NUL cannot be
//     stored, and bidirectional controls reorder what is read;
//   - characters that show nothing: format characters (zero-width spaces
//     and joiners, soft hyphens, byte order marks), variation selectors
//     (but for the emoji or text presentation of a symbol, as in ❤️),
//     fillers and other default-ignorable characters, private-use and
//     unassigned code points;
//   - spaces other than U+0020 (a no-break space reads as a space);
//   - letters of more than one of the Latin, Cyrillic and Greek scripts,
//     whose look-alikes (Cyrillic а, Greek ο) make one name read as another.
func DisplayName(s string, max int) (string, string) {
	if !utf8.ValidString(s) {
		return s, "must be UTF-8"
	}
	s = collapseSpaces(norm.NFC.String(s))
	if n := utf8.RuneCountInString(s); n < 1 || n > max {
		return s, fmt.Sprintf("1 to %d characters", max)
	}
	var scripts []*unicode.RangeTable
	prev := rune(-1)
	for _, r := range s {
		emoji := (r == '\ufe0e' || r == '\ufe0f') && prev >= 0 && unicode.Is(unicode.So, prev)
		prev = r
		switch {
		case unreadable(r):
			return s, "must not contain control characters, line breaks or bidirectional controls"
		case emoji:
			// A text or emoji presentation selector after a symbol (❤️).
		case invisible(r):
			return s, "must not contain invisible characters (zero-width, format, variation selectors, fillers, private-use or unassigned)"
		case r != ' ' && unicode.Is(unicode.Zs, r):
			return s, "must not contain spaces other than the plain space"
		case unicode.IsLetter(r):
			for _, sc := range lookAlikeScripts {
				if unicode.Is(sc, r) && !slices.Contains(scripts, sc) {
					scripts = append(scripts, sc)
				}
			}
			if len(scripts) > 1 {
				return s, "must not mix letters of the Latin, Cyrillic and Greek scripts (look-alikes such as Cyrillic а for Latin a)"
			}
		}
	}
	return s, ""
}

// lookAlikeScripts are the scripts whose letters are mistaken for one
// another; a name takes its letters from one of them at most.
var lookAlikeScripts = []*unicode.RangeTable{unicode.Latin, unicode.Cyrillic, unicode.Greek}

// collapseSpaces removes spaces at the ends of s and makes each run of
// spaces inside it one.
func collapseSpaces(s string) string {
	s = strings.Trim(s, " ")
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// HasControl reports whether s holds a control character (C0, DEL or C1),
// which no identifier or email address has.
func HasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

func unreadable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, r)
}

// invisible reports whether r shows nothing, or nothing certain: a format
// character, a variation selector or another default-ignorable code point
// (Hangul fillers, the combining grapheme joiner), the Braille blank, a
// private-use code point, or one this Unicode version does not assign
// (named by the categories of assigned ones: unicode.C holds unassigned
// code points too).
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Co, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) ||
		r == '\u2800' || !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co)
}

// CleanText returns s as StorableText does, without control, format or
// line-separator characters: a tab becomes a space, the others are
// removed. It is for text kept as a caller sent it that people read
// later, such as a User-Agent: terminal escapes, bidirectional overrides
// and zero-width characters would make it read as something else.
func CleanText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, dirty) >= 0 {
		s = strings.Map(func(r rune) rune {
			switch {
			case r == '\t':
				return ' '
			case dirty(r):
				return -1
			}
			return r
		}, s)
	}
	return StorableText(s, max)
}

func dirty(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) }

// StorableText returns s as text Postgres can store in a text column or a
// jsonb string: without NUL, which neither holds (bun turns a NUL in a
// string into a syntax error, jsonb refuses "\u0000"), each run of bytes
// that are not UTF-8 replaced by U+FFFD, and cut to at most max bytes
// (max <= 0: no limit) without splitting a character. It is for text that
// is kept as the caller sent it rather than refused, such as a User-Agent:
// a write that can never succeed must not be retried for ever.
func StorableText(s string, max int) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
