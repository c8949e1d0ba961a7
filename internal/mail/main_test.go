package mail

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

// The package's database, migrated, is started by the first test that
// needs one: on the server of CP_TEST_DATABASE_URL, else on a private
// cluster of the local Postgres binaries, as the store's tests do. A
// message's rendering needs none.
var (
	dbOnce sync.Once
	dbConn *bun.DB
	dbErr  error
	dbStop func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if dbStop != nil {
		dbStop()
	}
	os.Exit(code)
}

// testDB is the package's database with an empty outbox: the tests that
// use it do not run in parallel, since a sender takes every pending row.
func testDB(t *testing.T) *bun.DB {
	t.Helper()
	dbOnce.Do(func() { dbStop, dbErr = startDatabase(context.Background()) })
	if dbErr != nil {
		t.Fatalf("test database: %v", dbErr)
	}
	if _, err := dbConn.NewRaw("DELETE FROM outbox").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dbConn
}

func startDatabase(ctx context.Context) (stop func(), err error) {
	url, drop, err := pgcluster.TestDatabase(ctx, "mail")
	if err != nil {
		return nil, err
	}
	if dbConn, err = store.Open(ctx, url); err != nil {
		drop()
		return nil, err
	}
	if _, err := schema.Up(ctx, dbConn); err != nil {
		dbConn.Close()
		drop()
		return nil, err
	}
	return func() { dbConn.Close(); drop() }, nil
}
