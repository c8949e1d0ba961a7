package store_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

// testDB is the package's database, migrated: on the server of
// CP_TEST_DATABASE_URL, else on a private cluster of the local Postgres
// binaries, as the integration harness does (without its Temporal server,
// which the store's tests do not need).
var testDB *bun.DB

func TestMain(m *testing.M) {
	stop, err := startDatabase(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "store tests: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startDatabase(ctx context.Context) (stop func(), err error) {
	url, drop, err := pgcluster.TestDatabase(ctx, "store")
	if err != nil {
		return nil, err
	}
	if testDB, err = store.Open(ctx, url); err != nil {
		drop()
		return nil, err
	}
	if _, err := schema.Up(ctx, testDB); err != nil {
		testDB.Close()
		drop()
		return nil, err
	}
	return func() { testDB.Close(); drop() }, nil
}
