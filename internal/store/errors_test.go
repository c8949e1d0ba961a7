package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/intelliauth/controlplane/internal/store"
)

// TestPermanentTellsErrorsNoRetryCanCureFromTheOthers classifies errors
// made by a real Postgres (and the driver), each checked to carry the
// SQLSTATE its name says.
func TestPermanentTellsErrorsNoRetryCanCureFromTheOthers(t *testing.T) {
	ctx := context.Background()
	exec := func(query string, args ...any) error {
		_, err := testDB.ExecContext(ctx, query, args...)
		return err
	}
	unreachable := func() error {
		db, err := store.Open(ctx, "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
		if err == nil {
			db.Close()
		}
		return err
	}
	missingRow := func() error {
		var org store.Organization
		return testDB.NewSelect().Model(&org).Where("id = ?", "org_missing").Scan(ctx)
	}
	timedOut := func() error {
		return testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "SET LOCAL statement_timeout = '10ms'"); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "SELECT pg_sleep(1)")
			return err
		})
	}
	afterCancel := func() error {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := testDB.ExecContext(cancelled, "SELECT 1")
		return err
	}

	tests := []struct {
		name      string
		err       error
		sqlstate  string // "": not an error of the server
		permanent bool
	}{
		{"a NUL in text, which the statement cannot carry, is permanent", exec("SELECT ?::text", "a\x00b"), "42601", true},
		{"a NUL in JSON, which jsonb cannot hold, is permanent", exec("SELECT ?::jsonb", `{"user_agent":"a\u0000b"}`), "22P05", true},
		{"text that is not a number is permanent", exec("SELECT 'x'::int"), "22P02", true},
		{"a number out of range is permanent", exec("SELECT 2147483647::int + 1"), "22003", true},
		{"a division by zero is permanent", exec("SELECT 1 / 0"), "22012", true},
		{"a table that does not exist is permanent", exec("SELECT * FROM no_such_table"), "42P01", true},
		{"a column that does not exist is permanent", exec("SELECT no_such_column FROM plans"), "42703", true},
		{"a missing row is permanent", missingRow(), "", true},
		{"a missing row, wrapped, is permanent", fmt.Errorf("load organization: %w", missingRow()), "", true},
		{"a unique violation is not: the caller decides what it means", exec("INSERT INTO plans (id, name, max_tenants, max_members, requests_per_minute) VALUES ('team', 'x', 1, 1, 1)"), "23505", false},
		{"a statement timeout is not", timedOut(), "57014", false},
		{"an unreachable database is not", unreachable(), "", false},
		{"a cancelled context is not", afterCancel(), "", false},
		{"an error of our own is not", errors.New("something else"), "", false},
		{"no error is not", nil, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pgErr pgdriver.Error
			if errors.As(tt.err, &pgErr) != (tt.sqlstate != "") || (tt.sqlstate != "" && pgErr.Field('C') != tt.sqlstate) {
				t.Fatalf("the case is not what it says: %v, want SQLSTATE %q", tt.err, tt.sqlstate)
			}
			if got := store.Permanent(tt.err); got != tt.permanent {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.permanent)
			}
			if store.Permanent(tt.err) && store.Unavailable(tt.err) {
				t.Errorf("%v is both permanent and unavailable", tt.err)
			}
		})
	}
}
