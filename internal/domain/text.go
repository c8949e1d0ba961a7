package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// NameProblem says what is wrong with a name that people read and that goes
// into mail (an organisation's, a user's), or "" when nothing is. A name is
// 1 to max characters of UTF-8 without control characters (CR and LF would
// start a new mail header, NUL cannot be stored), line or paragraph
// separators, or bidirectional controls (they reorder what is read).
func NameProblem(s string, max int) string {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s):
		return "must be UTF-8"
	case n < 1 || n > max:
		return fmt.Sprintf("1 to %d characters", max)
	case strings.IndexFunc(s, unreadable) >= 0:
		return "must not contain control characters, line breaks or bidirectional controls"
	}
	return ""
}

// HasControl reports whether s holds a control character (C0, DEL or C1),
// which no identifier or email address has.
func HasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

func unreadable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || unicode.Is(unicode.Bidi_Control, r)
}

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
