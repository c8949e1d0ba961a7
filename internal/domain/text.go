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
