package integration

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// A data plane's spare schemas: a creation claims one by a row, changing
// no catalog (no rename: every connection's cached plans survive it),
// instead of creating the baseline tables' files, concurrent creations
// never share one, a
// retried step finds its schema, the fill stops at its target and gives
// way to creations, and a spare of an older baseline is dropped, never
// given to a tenant.
func TestASpareSchemaBecomesATenantsSchemaAndTheSparesAreRefilled(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	_, db := h.NewDatabase(t, false) // its own database: other tests' tenants would take its spares
	dp := &dataplane.Postgres{DB: db, Keys: testKeys()}
	if err := dp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	spares := func() []string {
		t.Helper()
		var names []string
		if err := db.NewRaw("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'spare\\_%' AND nspname NOT IN (SELECT schema FROM dataplane.tenant_schemas) ORDER BY 1").Scan(ctx, &names); err != nil {
			t.Fatal(err)
		}
		if n, err := dp.Spares(ctx); err != nil || n != len(names) {
			t.Fatalf("Spares = %d, %v; schemas %v", n, err, names)
		}
		return names
	}
	tables := func(schema string) string {
		t.Helper()
		var names []string
		if err := db.NewRaw("SELECT tablename FROM pg_tables WHERE schemaname = ? ORDER BY 1", schema).Scan(ctx, &names); err != nil {
			t.Fatal(err)
		}
		return strings.Join(names, ",")
	}
	const baselineTables = "applications,groups,sessions,users"
	schemaOf := func(r dataplane.Ref) string {
		t.Helper()
		s, err := dp.SchemaOf(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	newRef := func() dataplane.Ref {
		return dataplane.Ref{TenantID: domain.NewID(domain.PrefixTenant), OrgID: "org_x", Hostname: "prod-" + uniq() + ".intelliauth.localhost"}
	}

	// Without spares a creation creates the schema, as before.
	plain := newRef()
	if err := dp.CreateSchema(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if got := tables(schemaOf(plain)); got != baselineTables || schemaOf(plain) != "tenant_"+strings.ToLower(plain.TenantID[4:]) {
		t.Fatalf("created schema %s's tables: %s", schemaOf(plain), got)
	}

	// The fill gives way to a creation of the last quiet period.
	if n, err := dp.FillSpares(ctx, 3, time.Hour); err != nil || n != 0 {
		t.Fatalf("fill right after a creation: %d, %v", n, err)
	}
	if n, err := dp.FillSpares(ctx, 3, 0); err != nil || n != 3 {
		t.Fatalf("fill to 3: %d, %v", n, err)
	}
	if n, err := dp.FillSpares(ctx, 3, 0); err != nil || n != 0 {
		t.Fatalf("fill when full: %d, %v", n, err)
	}
	before := spares()
	if len(before) != 3 {
		t.Fatalf("spares: %v", before)
	}
	for _, s := range before {
		if got := tables(s); got != baselineTables {
			t.Fatalf("spare %s's tables: %s", s, got)
		}
	}

	// A creation takes the oldest spare by a row: its catalog row is not
	// touched (same xmin: no rename), and a retry of the step changes
	// nothing.
	xmin := func(schema string) string {
		t.Helper()
		var x string
		if err := db.NewRaw("SELECT xmin::text FROM pg_namespace WHERE nspname = ?", schema).Scan(ctx, &x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	oldest := before[0]
	if err := db.NewRaw("SELECT name FROM dataplane.spare_schemas ORDER BY created_at, name LIMIT 1").Scan(ctx, &oldest); err != nil {
		t.Fatal(err)
	}
	x0 := xmin(oldest)
	first := newRef()
	for range 2 {
		if err := dp.CreateSchema(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	if got := tables(schemaOf(first)); got != baselineTables || schemaOf(first) != oldest || xmin(oldest) != x0 {
		t.Fatalf("tenant's schema %s (want the oldest spare %s, its catalog row untouched: xmin %s → %s), tables %s",
			schemaOf(first), oldest, x0, xmin(oldest), got)
	}
	if after := spares(); len(after) != 2 {
		t.Fatalf("spares after one creation: %v (before %v)", after, before)
	}
	var oid0, oid1 uint32
	if err := db.NewRaw("SELECT oid FROM pg_namespace WHERE nspname = ?", schemaOf(first)).Scan(ctx, &oid0); err != nil {
		t.Fatal(err)
	}
	if r, err := dp.Inspect(ctx, first); err != nil || !r.Schema {
		t.Fatalf("inspect: %+v, %v", r, err)
	}

	// Concurrent creations, more than the spares: each tenant gets a whole
	// schema of its own, two from spares, the rest created.
	refs := make([]dataplane.Ref, 8)
	var wg sync.WaitGroup
	errs := make([]error, len(refs))
	for i := range refs {
		refs[i] = newRef()
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = dp.CreateSchema(ctx, refs[i]) }()
	}
	wg.Wait()
	for i, r := range refs {
		if errs[i] != nil {
			t.Fatalf("concurrent creation %d: %v", i, errs[i])
		}
		if got := tables(schemaOf(r)); got != baselineTables {
			t.Fatalf("tenant %d's tables: %s", i, got)
		}
	}
	if left := spares(); len(left) != 0 {
		t.Fatalf("spares left: %v", left)
	}
	if err := db.NewRaw("SELECT oid FROM pg_namespace WHERE nspname = ?", schemaOf(first)).Scan(ctx, &oid1); err != nil || oid1 != oid0 {
		t.Fatalf("the first tenant's schema changed: %d → %d (%v)", oid0, oid1, err)
	}

	// A spare of an older baseline is dropped by the next fill, and never
	// given to a tenant meanwhile.
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA spare_old; CREATE TABLE spare_old.users (id text PRIMARY KEY);"+
		"INSERT INTO dataplane.spare_schemas (name, baseline) VALUES ('spare_old', 0)"); err != nil {
		t.Fatal(err)
	}
	late := newRef()
	if err := dp.CreateSchema(ctx, late); err != nil {
		t.Fatal(err)
	}
	if got := tables(schemaOf(late)); got != baselineTables {
		t.Fatalf("tenant's tables with only an old spare: %s", got)
	}
	if n, err := dp.FillSpares(ctx, 2, 0); err != nil || n != 2 {
		t.Fatalf("fill after the old spare: %d, %v", n, err)
	}
	if left := spares(); len(left) != 2 || slices.Contains(left, "spare_old") {
		t.Fatalf("spares after the fill: %v", left)
	}

	// Nothing of a spare is a tenant's: the drift check lists tenants only.
	all, err := dp.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(refs)+3 || !all[first.TenantID].Schema {
		t.Fatalf("data plane lists %d tenants (want %d), the first %+v", len(all), len(refs)+3, all[first.TenantID])
	}

	// A claimed spare is the tenant's everywhere: its route names it, a
	// suspension ends the sessions in it, and its drop removes it and its
	// claim, twice as once.
	schema := schemaOf(first)
	if err := dp.CreateRoute(ctx, first); err != nil {
		t.Fatal(err)
	}
	var routed string
	if err := db.NewRaw("SELECT schema FROM dataplane.routes WHERE tenant_id = ?", first.TenantID).Scan(ctx, &routed); err != nil || routed != schema {
		t.Fatalf("route's schema %q (%v), want %s", routed, err, schema)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+schema+".users (id, email) VALUES ('u1', 'a@b.test');"+
		"INSERT INTO "+schema+".sessions (token_hash, user_id, expires_at) VALUES ('\\x01', 'u1', now() + interval '1 hour')"); err != nil {
		t.Fatal(err)
	}
	if err := dp.SuspendRoute(ctx, first); err != nil {
		t.Fatal(err)
	}
	var sessions int
	if err := db.NewRaw("SELECT count(*) FROM "+schema+".sessions").Scan(ctx, &sessions); err != nil || sessions != 0 {
		t.Fatalf("sessions after a suspension: %d, %v", sessions, err)
	}
	for range 2 {
		if err := dp.DropSchema(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	var left bool
	if err := db.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?) OR EXISTS (SELECT 1 FROM dataplane.tenant_schemas WHERE tenant_id = ?)",
		schema, first.TenantID).Scan(ctx, &left); err != nil || left {
		t.Fatalf("after the drop, schema or claim left: %v, %v", left, err)
	}
	if r, err := dp.Inspect(ctx, first); err != nil || r.Schema {
		t.Fatalf("inspect after the drop: %+v, %v", r, err)
	}
}
