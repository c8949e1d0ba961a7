package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
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
		dir, err := os.MkdirTemp("", "cp-store-pg-")
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
	name := "cp_store_test_" + strings.ToLower(rand.Text()[:10])
	if err := pgcluster.CreateDatabase(ctx, admin, name); err != nil {
		return nil, err
	}
	stops = append(stops, func() { _ = pgcluster.DropDatabase(context.Background(), admin, name) })
	url, err := databaseURL(admin, name)
	if err != nil {
		return nil, err
	}
	if testDB, err = store.Open(ctx, url); err != nil {
		return nil, err
	}
	stops = append(stops, func() { testDB.Close() })
	if _, err := schema.Up(ctx, testDB); err != nil {
		return nil, err
	}
	return stop, nil
}

// databaseURL is the URL of database db on the server of adminURL.
func databaseURL(adminURL, db string) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("CP_TEST_DATABASE_URL: %w", err)
	}
	u.Path = "/" + db
	return u.String(), nil
}
