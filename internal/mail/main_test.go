package mail

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
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
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	admin := os.Getenv("CP_TEST_DATABASE_URL")
	if admin == "" {
		dir, err := os.MkdirTemp("", "cp-mail-pg-")
		if err != nil {
			return nil, err
		}
		stops = append(stops, func() { os.RemoveAll(dir) })
		pg, err := pgcluster.Start(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("private postgres cluster: %w", err)
		}
		stops = append(stops, func() { _ = pg.Stop() })
		admin = pg.URL("postgres")
	}
	name := "cp_mail_test_" + strings.ToLower(rand.Text()[:10])
	if err := pgcluster.CreateDatabase(ctx, admin, name); err != nil {
		return nil, err
	}
	stops = append(stops, func() { _ = pgcluster.DropDatabase(context.Background(), admin, name) })
	u, err := url.Parse(admin)
	if err != nil {
		return nil, fmt.Errorf("CP_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + name
	if dbConn, err = store.Open(ctx, u.String()); err != nil {
		return nil, err
	}
	stops = append(stops, func() { dbConn.Close() })
	if _, err := schema.Up(ctx, dbConn); err != nil {
		return nil, err
	}
	return stop, nil
}
