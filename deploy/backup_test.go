package deploy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

// TestBackupAndRestoreRehearsal runs docs/deployment.md's backup procedure
// for real on a private cluster of the local Postgres binaries: the
// control plane's database, migrated and holding organisations, owners and
// their audit events, is dumped with `pg_dump -Fc` and restored with
// `pg_restore` into a new, empty database. The restored database holds the
// same rows, the same schema and the same migration state, and takes new
// writes (its sequences and the audit chain carry on).
func TestBackupAndRestoreRehearsal(t *testing.T) {
	bin, err := pgcluster.FindBinaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			t.Fatalf("%s beside initdb: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := filepath.Join(t.TempDir(), "postgres")
	pg, err := pgcluster.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pg.Stop()
		pgcluster.WaitForExit(dir)
	})

	// The source: migrated as `controlplane migrate up` does, with rows
	// written through the store.
	if err := pg.CreateDatabase(ctx, "controlplane"); err != nil {
		t.Fatal(err)
	}
	src := open(ctx, t, pg.URL("controlplane"))
	if _, err := schema.Up(ctx, src); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	if _, err := store.ChainBacklogs(ctx, src); err != nil {
		t.Fatal(err)
	}
	for _, slug := range []string{"acme", "globex"} {
		res, err := store.Bootstrap(ctx, src, store.BootstrapInput{OrgName: slug, OrgSlug: slug, PlanID: "team",
			OwnerEmail: "owner@" + slug + ".test", OwnerPassword: "backup-rehearsal-password", ActorType: "operator", ActorID: "rehearsal"})
		if err != nil || !res.Created {
			t.Fatalf("bootstrap %s: %+v, %v", slug, res, err)
		}
	}

	// Backup: the custom format, which pg_restore reads.
	dump := filepath.Join(t.TempDir(), "controlplane.dump")
	run(ctx, t, filepath.Join(bin, "pg_dump"), "-Fc", "-f", dump, "-d", pg.URL("controlplane"))

	// Restore into a new, empty database; any error stops it.
	if err := pg.CreateDatabase(ctx, "controlplane_restored"); err != nil {
		t.Fatal(err)
	}
	run(ctx, t, filepath.Join(bin, "pg_restore"), "--exit-on-error", "-d", pg.URL("controlplane_restored"), dump)
	dst := open(ctx, t, pg.URL("controlplane_restored"))

	// The same migration state, as `controlplane migrate status` lists it,
	// and nothing left to apply.
	srcList, err := schema.List(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	dstList, err := schema.List(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(srcList) == 0 || !reflect.DeepEqual(srcList, dstList) {
		t.Fatalf("migration state differs after the restore:\nsource   %+v\nrestored %+v", srcList, dstList)
	}
	if n, err := schema.Pending(ctx, dst); err != nil || n != 0 {
		t.Fatalf("restored database: %d migrations pending (%v); want none", n, err)
	}

	// The same rows in every table, and the same sequence positions.
	srcTables, dstTables := contents(ctx, t, src), contents(ctx, t, dst)
	for _, tbl := range []string{"organizations", "users", "audit_events", "bun_migrations"} {
		if v := srcTables[tbl]; v == "" || strings.HasPrefix(v, "0 rows") {
			t.Fatalf("the source's %s is empty (%q): the rehearsal would compare nothing", tbl, v)
		}
	}
	if !reflect.DeepEqual(srcTables, dstTables) {
		for name, v := range srcTables {
			if dstTables[name] != v {
				t.Errorf("table %s: source %s, restored %s", name, v, dstTables[name])
			}
		}
		for name := range dstTables {
			if _, ok := srcTables[name]; !ok {
				t.Errorf("the restored database has a table %s the source has not", name)
			}
		}
	}

	// The same schema (tables, indexes, triggers, functions), as pg_dump
	// writes it.
	if a, b := schemaOf(ctx, t, bin, pg.URL("controlplane")), schemaOf(ctx, t, bin, pg.URL("controlplane_restored")); a != b {
		t.Errorf("the restored schema differs from the source's (%d and %d bytes of DDL)", len(a), len(b))
	}

	// It takes new writes: one more organisation, with its owner and event.
	res, err := store.Bootstrap(ctx, dst, store.BootstrapInput{OrgName: "Initech", OrgSlug: "initech", PlanID: "team",
		OwnerEmail: "owner@initech.test", OwnerPassword: "backup-rehearsal-password", ActorType: "operator", ActorID: "rehearsal"})
	if err != nil || !res.Created {
		t.Fatalf("bootstrap on the restored database: %+v, %v", res, err)
	}
	if _, err := store.ChainBacklogs(ctx, dst); err != nil {
		t.Fatalf("the audit chain does not carry on after the restore: %v", err)
	}
}

func open(ctx context.Context, t *testing.T, url string) *bun.DB {
	t.Helper()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func run(ctx context.Context, t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

// contents is, per table of the public schema, its row count and a digest
// of its rows in a fixed order; sequences appear as their last value.
func contents(ctx context.Context, t *testing.T, db *bun.DB) map[string]string {
	t.Helper()
	var tables []string
	if err := db.NewRaw(`SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`).Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tbl := range tables {
		var n int
		var digest string
		if err := db.QueryRowContext(ctx, fmt.Sprintf(
			`SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t::text)), '') FROM %q t`, tbl)).Scan(&n, &digest); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		out[tbl] = fmt.Sprintf("%d rows %s", n, digest)
	}
	rows, err := db.QueryContext(ctx, `SELECT sequencename, coalesce(last_value::text, 'unused') FROM pg_sequences WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, last string
		if err := rows.Scan(&name, &last); err != nil {
			t.Fatal(err)
		}
		out["sequence "+name] = last
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// schemaOf is pg_dump's DDL of a database, without the per-run key of
// its \restrict lines.
func schemaOf(ctx context.Context, t *testing.T, bin, url string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_dump"), "--schema-only", "-d", url).Output()
	if err != nil {
		t.Fatalf("pg_dump --schema-only: %v", err)
	}
	var kept []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, `\restrict`) && !strings.HasPrefix(line, `\unrestrict`) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
