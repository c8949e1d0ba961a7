package temporalserver

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
)

// TestAFileDatabaseRunsInWALMode starts the server on a SQLite file and
// reads the file's journal mode back: WAL (with synchronous=NORMAL) is what
// makes a commit one append to the log instead of a rollback journal and
// several fsyncs, and a misspelled pragma is silently ignored by SQLite.
func TestAFileDatabaseRunsInWALMode(t *testing.T) {
	file := filepath.Join(t.TempDir(), "temporal.db")
	srv, err := Start(Options{FrontendAddr: "127.0.0.1:0", DatabaseFile: file, Namespace: "default", Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Fatalf("journal_mode = %q, want wal", mode)
	}
}
