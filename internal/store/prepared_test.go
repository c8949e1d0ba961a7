package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/store"
)

// A prepared statement gives the answers the text of its query would, on
// the pool, in a transaction (seeing the transaction's own writes, and
// rolled back with it) and on a held connection; on the pool and in a
// transaction it is prepared on the server once per connection, not sent
// again as text.
func TestAPreparedStatementAnswersLikeItsQueryWhereverItRuns(t *testing.T) {
	ctx := context.Background()
	if _, err := testDB.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS prepared_probe (k text PRIMARY KEY, v int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	read := store.Prepare("SELECT v, $2::text FROM prepared_probe WHERE k = $1")
	write := store.Prepare("INSERT INTO prepared_probe (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v")
	value := func(db bun.IDB, k string) (int, error) {
		var v int
		var echo string
		err := read.Scan(ctx, db, []any{k, "echo ' quoted"}, &v, &echo)
		if err == nil && echo != "echo ' quoted" {
			t.Fatalf("echo = %q", echo)
		}
		return v, err
	}

	if n, err := write.Exec(ctx, testDB, "pool", 1); err != nil || n != 1 {
		t.Fatalf("exec on the pool: %d %v", n, err)
	}
	for range 3 {
		if v, err := value(testDB, "pool"); err != nil || v != 1 {
			t.Fatalf("on the pool: %d %v", v, err)
		}
	}
	if _, err := value(testDB, "missing"); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("a missing row: %v", err)
	}

	err := testDB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := write.Exec(ctx, tx, "tx", 2); err != nil {
			return err
		}
		for range 3 {
			if v, err := value(tx, "tx"); err != nil || v != 2 {
				t.Fatalf("in the transaction, its own write: %d %v", v, err)
			}
		}
		// Prepared once on this connection, however often it ran.
		var n int
		if err := tx.NewRaw("SELECT count(*) FROM pg_prepared_statements WHERE statement = ?", "SELECT v, $2::text FROM prepared_probe WHERE k = $1").Scan(ctx, &n); err != nil {
			return err
		}
		if n != 1 {
			t.Fatalf("the read is prepared %d times on the transaction's connection, want 1", n)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
	if _, err := value(testDB, "tx"); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("a rolled back write: %v", err)
	}

	conn, err := testDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := write.Exec(ctx, conn, "conn", 3); err != nil {
		t.Fatal(err)
	}
	if v, err := value(conn, "conn"); err != nil || v != 3 {
		t.Fatalf("on a held connection: %d %v", v, err)
	}
}
