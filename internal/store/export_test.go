package store

import (
	"context"

	"github.com/uptrace/bun"
)

// NotEnded is notEnded, for the tests of package store_test.
var NotEnded = notEnded

// Prepared is a prepared statement, for the tests of package store_test.
type Prepared struct{ p *prepared }

// Prepare is prepare.
func Prepare(query string) Prepared { return Prepared{prepare(query)} }

// Scan is scan.
func (p Prepared) Scan(ctx context.Context, db bun.IDB, args []any, dest ...any) error {
	return p.p.scan(ctx, db, args, dest...)
}

// Exec is exec.
func (p Prepared) Exec(ctx context.Context, db bun.IDB, args ...any) (int64, error) {
	return p.p.exec(ctx, db, args...)
}

// TenantColumns are tenantColumns.
var TenantColumns = tenantColumns
