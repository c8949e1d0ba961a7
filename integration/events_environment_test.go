package integration

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

// TestEventsWrittenBeforeTheEnvironmentColumnAreReadByTheirEnvironment:
// a reader limited to an environment reads the events' own environment
// column (issue 23, finding 5), so the migration that adds it must give
// it to every event about a tenant already in the trail, and to no other
// event; events written after it get it whoever writes them: InsertEvent,
// or a replica still running the code before it during an upgrade.
func TestEventsWrittenBeforeTheEnvironmentColumnAreReadByTheirEnvironment(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	_, db := h.NewDatabase(t, true)
	// Back to the schema before the column: its down migration, and the
	// migration marked pending.
	down, err := os.ReadFile("../schema/migrations/20261203000201_audit_event_environment.tx.down.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, string(down)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM bun_migrations WHERE name = '20261203000201'"); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	org := store.Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: "env-" + uniq(), Name: "Env", PlanID: "team", CreatedAt: now, UpdatedAt: now}
	other := store.Organization{ID: domain.NewID(domain.PrefixOrganization), Slug: "env-" + uniq(), Name: "Other", PlanID: "team", CreatedAt: now, UpdatedAt: now}
	u := store.User{ID: domain.NewID(domain.PrefixUser), Email: "env-" + uniq() + "@example.test", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	for _, m := range []any{&org, &other, &u} {
		if _, err := db.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tenant := func(o store.Organization, env string) store.Tenant {
		tn := store.Tenant{ID: domain.NewID(domain.PrefixTenant), OrgID: o.ID, Name: env + "-app", Environment: env, State: "active",
			Hostname: env + "-app-" + o.Slug + ".test", WorkflowID: "tenant/" + o.ID + "/" + uniq(), CreatedBy: u.ID, CreatedAt: now, UpdatedAt: now}
		if _, err := db.NewInsert().Model(&tn).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	ci, prod, foreign := tenant(org, "ci"), tenant(org, "prod"), tenant(other, "ci")
	i := 0
	event := func(o store.Organization, targetType, targetID string) string {
		i++
		ev := store.AuditEvent{ID: domain.NewID(domain.PrefixEvent), OrgID: o.ID, Action: "tenant.suspended", ActorType: "system", ActorID: "saga",
			TargetType: targetType, TargetID: targetID, OccurredAt: now.Add(time.Duration(i) * time.Millisecond)}
		// Written as the code before the column wrote it.
		if _, err := db.NewInsert().Model(&ev).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return ev.ID
	}
	ciBefore := []string{event(org, "tenant", ci.ID), event(org, "tenant", ci.ID)}
	event(org, "tenant", prod.ID)
	event(org, "organization", org.ID)
	event(org, "tenant", foreign.ID) // another organisation's tenant named in this one's trail
	event(other, "tenant", foreign.ID)

	if applied, err := schema.Up(ctx, db); err != nil || !slices.Contains(applied, "20261203000201_audit_event_environment") {
		t.Fatalf("migrate up: %v %v", applied, err)
	}
	byOldCode := event(org, "tenant", ci.ID)
	after := store.AuditEvent{OrgID: org.ID, Action: "tenant.resumed", ActorType: "system", ActorID: "saga", TargetType: "tenant", TargetID: ci.ID,
		OccurredAt: now.Add(time.Second)}
	if _, err := store.InsertEvent(ctx, db, &after); err != nil {
		t.Fatal(err)
	}

	var envs []struct {
		TargetType, TargetID string
		OrgID                string
		Environment          *string
	}
	if err := db.NewRaw("SELECT target_type, target_id, org_id, environment FROM audit_events WHERE org_id IN (?, ?)", org.ID, other.ID).Scan(ctx, &envs); err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		want := ""
		switch {
		case e.TargetID == ci.ID, e.TargetID == foreign.ID && e.OrgID == other.ID:
			want = "ci"
		case e.TargetID == prod.ID:
			want = "prod"
		}
		got := ""
		if e.Environment != nil {
			got = *e.Environment
		}
		if got != want {
			t.Errorf("an event of %s about %s %s has environment %q, want %q", e.OrgID, e.TargetType, e.TargetID, got, want)
		}
	}
	rows, err := store.ListEvents(ctx, db, store.EventFilter{OrgID: org.ID, Environments: []string{"ci"}}, store.Keyset{}, 50)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rows {
		got = append(got, e.ID)
	}
	if want := []string{after.ID, byOldCode, ciBefore[1], ciBefore[0]}; !slices.Equal(got, want) {
		t.Fatalf("a reader limited to ci reads %v, want %v", got, want)
	}
}
