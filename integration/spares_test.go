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

// A data plane's spare schemas: a creation renames one instead of creating
// the baseline tables' files, concurrent creations never share one, a
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
		if err := db.NewRaw("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'spare\\_%' ORDER BY 1").Scan(ctx, &names); err != nil {
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
	schemaOf := func(r dataplane.Ref) string { return "tenant_" + strings.ToLower(r.TenantID[4:]) }
	newRef := func() dataplane.Ref {
		return dataplane.Ref{TenantID: domain.NewID(domain.PrefixTenant), OrgID: "org_x", Hostname: "prod-" + uniq() + ".intelliauth.localhost"}
	}

	// Without spares a creation creates the schema, as before.
	plain := newRef()
	if err := dp.CreateSchema(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if got := tables(schemaOf(plain)); got != baselineTables {
		t.Fatalf("created schema's tables: %s", got)
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

	// A creation takes the oldest spare: it is renamed, nothing is left
	// under its old name, and a retry of the step changes nothing.
	first := newRef()
	for range 2 {
		if err := dp.CreateSchema(ctx, first); err != nil {
			t.Fatal(err)
		}
	}
	if got := tables(schemaOf(first)); got != baselineTables {
		t.Fatalf("tenant's tables: %s", got)
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
	if len(all) != len(refs)+3 {
		t.Fatalf("data plane lists %d tenants, want %d", len(all), len(refs)+3)
	}
}
