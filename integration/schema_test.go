package integration

import (
	"context"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

func TestMigrationsGoUpDownAndUpAgainOnAnEmptyDatabase(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	_, db := h.NewDatabase(t, false)

	tables := func() int {
		var n int
		if err := db.NewRaw("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name NOT LIKE 'bun_%'").Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i, step := range []struct {
		name string
		run  func() ([]string, error)
		want func(int) bool
	}{
		{"up", func() ([]string, error) { return schema.Up(ctx, db) }, func(n int) bool { return n >= 10 }},
		{"down", func() ([]string, error) { return schema.Down(ctx, db) }, func(n int) bool { return n == 0 }},
		{"up again", func() ([]string, error) { return schema.Up(ctx, db) }, func(n int) bool { return n >= 10 }},
	} {
		names, err := step.run()
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, step.name, err)
		}
		if len(names) == 0 {
			t.Fatalf("step %d (%s) did nothing", i, step.name)
		}
		if n := tables(); !step.want(n) {
			t.Fatalf("after %s: %d tables", step.name, n)
		}
	}
	pending, err := schema.Pending(ctx, db)
	if err != nil || pending != 0 {
		t.Fatalf("pending = %d, %v", pending, err)
	}
}

func TestConcurrentMigratorsApplyEachMigrationOnce(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	url, _ := h.NewDatabase(t, false)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	applied := make([][]string, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := store.Open(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = schema.Up(ctx, db)
		})
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
		total += len(applied[i])
	}
	known, err := schema.List(ctx, h.DB)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(known); total != want {
		t.Fatalf("%d migrations applied in all, want each of the %d once", total, want)
	}
}

func TestBootstrapIsANoOpWhenTheOrganisationExistsEvenWhenRacing(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	in := store.BootstrapInput{
		OrgName: "Racing", OrgSlug: "racing-org", PlanID: "team",
		OwnerEmail: "Owner@Racing.test", OwnerPassword: "a-long-test-password",
		ActorType: "system", ActorID: "test",
	}
	var wg sync.WaitGroup
	results := make([]store.BootstrapResult, 5)
	errs := make([]error, 5)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = store.Bootstrap(ctx, h.DB, in) })
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("bootstrap %d: %v", i, err)
		}
		if results[i].Created {
			created++
		}
		if results[i].Org.ID != results[0].Org.ID {
			t.Fatalf("bootstraps disagree on the organisation: %s vs %s", results[i].Org.ID, results[0].Org.ID)
		}
	}
	if created != 1 {
		t.Fatalf("%d bootstraps created the organisation, want 1", created)
	}
	var owners, events int
	if err := h.DB.NewRaw("SELECT count(*) FROM members m JOIN users u ON u.id = m.user_id WHERE m.org_id = ? AND m.role = 'owner' AND u.email = 'owner@racing.test'", results[0].Org.ID).Scan(ctx, &owners); err != nil {
		t.Fatal(err)
	}
	if err := h.DB.NewRaw("SELECT count(*) FROM audit_events WHERE org_id = ? AND action = 'organization.bootstrapped'", results[0].Org.ID).Scan(ctx, &events); err != nil {
		t.Fatal(err)
	}
	if owners != 1 || events != 1 {
		t.Fatalf("owners = %d, bootstrap events = %d; want 1 and 1", owners, events)
	}
}
