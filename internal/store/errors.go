package store

import (
	"database/sql"
	"errors"
	"strings"

	"github.com/uptrace/bun/driver/pgdriver"
)

// Permanent reports whether err is a database error that no retry can
// cure: Postgres refused the data (SQLSTATE class 22, data exception: a
// NUL in jsonb, text that is not a number, a value out of range) or the
// statement (class 42, syntax error or access rule violation: a NUL in a
// query's text, which bun turns into a syntax error, a table or column
// that does not exist, a privilege missing), or the row the caller needed
// is gone (sql.ErrNoRows). Its caller should end the request, or stick
// its saga where an operator sees it, rather than retry: the same write
// fails the same way every time. What an operator repairs (a grant, a
// migration not yet run) takes a repair, not a retry.
//
// An unreachable database (Unavailable), a conflict of concurrent
// transactions (serialization failure, deadlock), a cancelled statement
// and a constraint violation, which the caller gives a meaning to
// (IsUniqueViolation), are not permanent.
func Permanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, sql.ErrNoRows) {
		return true
	}
	var pgErr pgdriver.Error
	if !errors.As(err, &pgErr) {
		return false
	}
	code := pgErr.Field('C')
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "42")
}
