package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// requester is the user the tests' requests come from.
var requester = sync.OnceValue(func() string {
	now := time.Now().UTC()
	u := store.User{ID: domain.NewID(domain.PrefixUser), Email: "requester@example.test", Name: "Requester", PasswordHash: "-", CreatedAt: now, UpdatedAt: now}
	if _, err := testDB.NewInsert().Model(&u).Exec(context.Background()); err != nil {
		panic(err)
	}
	return u.ID
})

// newTenant is a reservation of a tenant called name in the organisation,
// asked for by a service account acting for a member.
func newTenant(org store.Organization, name string) store.NewTenant {
	id := domain.NewID(domain.PrefixTenant)
	return store.NewTenant{ID: id, OrgID: org.ID, Name: name, Environment: "prod", Hostname: name + "-" + org.Slug + ".test",
		WorkflowID: "tenant/" + org.ID + "/" + id, OperationID: domain.NewID(domain.PrefixOperation), Steps: []string{"schema", "keys"},
		Request: store.TenantRequest{UserID: requester(), RequestID: "req_" + id, ClientAddr: "192.0.2.1", UserAgent: "test",
			Actor: domain.Actor{Type: "service_account", ID: "sa_1", Name: "ci-bot",
				OnBehalfOf: &domain.Actor{Type: "member", ID: "mem_1", Email: "a@example.test"}}}}
}

func eventsOf(t *testing.T, targetID, action string) []store.AuditEvent {
	t.Helper()
	var evs []store.AuditEvent
	if err := testDB.NewSelect().Model(&evs).Where("target_id = ? AND action = ?", targetID, action).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAReservedTenantIsWrittenOnceAndARetryIsAnsweredWithIt(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	in := newTenant(org, "alpha")
	first, err := store.ReserveTenant(ctx, testDB, in)
	if err != nil {
		t.Fatal(err)
	}
	if first.Tenant.State != string(domain.StateProvisioning) || first.Operation.Status != string(domain.OpRunning) ||
		*first.Tenant.CurrentOperationID != in.OperationID || len(first.Operation.Steps) != 2 || first.RequestID != in.Request.RequestID {
		t.Fatalf("reserved %+v", first)
	}
	retry := in
	retry.OperationID, retry.Request.RequestID = domain.NewID(domain.PrefixOperation), "req_retry"
	again, err := store.ReserveTenant(ctx, testDB, retry)
	if err != nil {
		t.Fatal(err)
	}
	if again.Tenant.ID != in.ID || again.Operation.ID != in.OperationID || again.RequestID != in.Request.RequestID {
		t.Fatalf("the retry was answered %+v, want the first reservation", again)
	}
	evs := eventsOf(t, in.ID, "tenant.create_requested")
	if len(evs) != 1 {
		t.Fatalf("%d create_requested events, want 1", len(evs))
	}
	e := evs[0]
	if e.ActorType != "service_account" || e.ActorID != "sa_1" || e.ActorName != "ci-bot" || e.ClientAddr != "192.0.2.1" {
		t.Errorf("the event names %s %s %q from %s", e.ActorType, e.ActorID, e.ActorName, e.ClientAddr)
	}
	var behalf domain.Actor
	if err := json.Unmarshal(e.OnBehalfOf, &behalf); err != nil || behalf.ID != "mem_1" || behalf.Email != "a@example.test" {
		t.Errorf("on_behalf_of %s (%v)", e.OnBehalfOf, err)
	}
}

func TestANameOrHostnameTakenByALiveTenantIsRefused(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	if _, err := store.ReserveTenant(ctx, testDB, newTenant(org, "beta")); err != nil {
		t.Fatal(err)
	}
	_, err := store.ReserveTenant(ctx, testDB, newTenant(org, "beta"))
	if domain.ErrorCode(err) != domain.CodeConflict || !strings.Contains(err.Error(), `tenant name "beta" is taken`) {
		t.Errorf("the same name: %v", err)
	}
	other := newOrg(t)
	clash := newTenant(other, "gamma")
	clash.Hostname = "beta-" + org.Slug + ".test"
	_, err = store.ReserveTenant(ctx, testDB, clash)
	if domain.ErrorCode(err) != domain.CodeConflict || !strings.Contains(err.Error(), "hostname") || strings.Contains(err.Error(), org.ID) {
		t.Errorf("the same hostname in another organisation: %v", err)
	}
}

// TestTheTenantQuotaHoldsAgainstConcurrentReservations reserves more
// tenants at once than the free plan allows: the quota is checked in the
// reserving transaction, with the organisation's row locked, so exactly
// the plan's number are written and the others are told the quota.
func TestTheTenantQuotaHoldsAgainstConcurrentReservations(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	if _, err := testDB.NewUpdate().Model(&org).Set("plan_id = 'free'").WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = store.ReserveTenant(ctx, testDB, newTenant(org, "quota-"+string(rune('a'+i))))
		}()
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case domain.ErrorCode(err) != domain.CodeConflict || !strings.HasSuffix(err.Error(), "tenant quota reached: plan free allows 2 tenants"):
			t.Errorf("a refusal: %v", err)
		}
	}
	live, err := store.CountLiveTenants(ctx, testDB, org.ID)
	if ok != 2 || err != nil || live != 2 {
		t.Fatalf("%d reservations written, %d live tenants (%v); the free plan allows 2", ok, live, err)
	}
}

func TestATransitionBeginsFromTheStatesItAllowsAndARetryOfItsUpdateFindsIt(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	res, err := store.ReserveTenant(ctx, testDB, newTenant(org, "delta"))
	if err != nil {
		t.Fatal(err)
	}
	tenant := res.Tenant
	suspend := store.Transition{TenantID: tenant.ID, OrgID: org.ID, OperationID: domain.NewID(domain.PrefixOperation), Kind: domain.OpSuspend,
		Steps: []string{"suspend_route"}, UpdateID: "suspend/k1", Request: store.TenantRequest{UserID: requester(), RequestID: "req_s1",
			Actor: domain.Actor{Type: "member", ID: "mem_1", Email: "a@example.test"}}}
	if _, err := store.BeginOperation(ctx, testDB, suspend); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("suspending a provisioning tenant: %v, want CONFLICT", err)
	}
	if _, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: tenant.ID, OperationID: res.Operation.ID,
		Status: domain.OpSucceeded, State: domain.StateActive, Action: "tenant.provisioned", EventKey: tenant.WorkflowID + "/provisioned"}); err != nil {
		t.Fatal(err)
	}
	begun, err := store.BeginOperation(ctx, testDB, suspend)
	if err != nil {
		t.Fatal(err)
	}
	if begun.Replayed || begun.Operation.ID != suspend.OperationID || *begun.Tenant.CurrentOperationID != suspend.OperationID {
		t.Fatalf("begun %+v", begun)
	}
	// A second operation while one runs is refused by the one-running
	// index, and leaves the tenant pointing at the first.
	decommission := suspend
	decommission.OperationID, decommission.Kind, decommission.UpdateID = domain.NewID(domain.PrefixOperation), domain.OpDecommission, "decommission/k1"
	if _, err := store.BeginOperation(ctx, testDB, decommission); domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("a second operation while one runs: %v, want CONFLICT", err)
	}
	if cur, _, err := store.TenantOperation(ctx, testDB, tenant.ID, suspend.OperationID); err != nil || *cur.CurrentOperationID != suspend.OperationID {
		t.Fatalf("after the refused operation: %+v %v", cur, err)
	}
	// A retry whose update Temporal lost runs the row its first attempt
	// wrote: found by the update id, still running, not a replay.
	retry := suspend
	retry.OperationID, retry.Request.RequestID = domain.NewID(domain.PrefixOperation), "req_s2"
	again, err := store.BeginOperation(ctx, testDB, retry)
	if err != nil || again.Replayed || again.Operation.ID != suspend.OperationID || again.RequestID != "req_s1" {
		t.Fatalf("the retry: %+v, %v", again, err)
	}
	if _, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: tenant.ID, OperationID: suspend.OperationID,
		Status: domain.OpSucceeded, State: domain.StateSuspended, Action: "tenant.suspended", EventKey: tenant.WorkflowID + "/suspended"}); err != nil {
		t.Fatal(err)
	}
	ended, err := store.BeginOperation(ctx, testDB, retry)
	if err != nil || !ended.Replayed || ended.Operation.Status != string(domain.OpSucceeded) {
		t.Fatalf("a retry after the operation ended: %+v, %v", ended, err)
	}
	if n := len(eventsOf(t, tenant.ID, "tenant.suspend_requested")); n != 1 {
		t.Errorf("%d suspend_requested events, want 1", n)
	}
}

func TestARecordEndsTheOperationAndWritesItsEventOnce(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	res, err := store.ReserveTenant(ctx, testDB, newTenant(org, "epsilon"))
	if err != nil {
		t.Fatal(err)
	}
	change := store.OperationChange{TenantID: res.Tenant.ID, OperationID: res.Operation.ID, Status: domain.OpSucceeded, State: domain.StateActive,
		Action: "tenant.provisioned", Request: store.TenantRequest{Actor: domain.Actor{Type: "member", ID: "mem_1", Email: "a@example.test"}},
		Data: map[string]any{"steps": 3}, EventKey: res.Tenant.WorkflowID + "/provisioned"}
	for range 2 {
		got, err := store.RecordOperation(ctx, testDB, change)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != string(domain.StateActive) || got.CurrentOperationID != nil {
			t.Fatalf("recorded %+v", got)
		}
	}
	t2, op, err := store.TenantOperation(ctx, testDB, res.Tenant.ID, res.Operation.ID)
	if err != nil || t2.State != string(domain.StateActive) || op.Status != string(domain.OpSucceeded) || op.EndedAt == nil {
		t.Fatalf("read back %+v %+v %v", t2, op, err)
	}
	evs := eventsOf(t, res.Tenant.ID, "tenant.provisioned")
	if len(evs) != 1 {
		t.Fatalf("%d provisioned events, want 1", len(evs))
	}
	var data map[string]any
	_ = json.Unmarshal(evs[0].Data, &data)
	if evs[0].ActorType != "system" || !strings.Contains(string(evs[0].OnBehalfOf), "mem_1") || data["operation_id"] != res.Operation.ID ||
		data["before"] == nil || data["steps"] != float64(3) {
		t.Errorf("the event: %s %s on behalf of %s, data %s", evs[0].ActorType, evs[0].ActorID, evs[0].OnBehalfOf, evs[0].Data)
	}
	// The creation's answer, read back after it ended, is what it was.
	created, found, err := store.CreatedTenant(ctx, testDB, res.Tenant.WorkflowID)
	if err != nil || !found || created.Tenant.State != string(domain.StateProvisioning) || created.Operation.Status != string(domain.OpRunning) ||
		created.Operation.Steps[0].Status != "pending" || created.RequestID != res.RequestID {
		t.Errorf("the creation's answer: %+v %v %v", created, found, err)
	}
	if _, found, err := store.CreatedTenant(ctx, testDB, "tenant/"+org.ID+"/nothing"); found || err != nil {
		t.Errorf("a workflow that wrote nothing: %v %v", found, err)
	}
}

func TestAnOrganizationIsUpdatedWithItsEventAndAnUnknownPlanIsABadRequest(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	ev := store.EventBase{OrgID: org.ID, ActorType: "member", ActorID: "mem_1", ActorEmail: "a@example.test", RequestID: "req_o1"}
	plan := "platinum"
	_, err := store.UpdateOrganization(ctx, testDB, org.ID, store.OrgChange{Plan: &plan}, ev)
	var de *domain.Error
	if domain.ErrorCode(err) != domain.CodeBadRequest || !errors.As(err, &de) || len(de.FieldErrors) != 1 || de.FieldErrors[0].Field != "plan" {
		t.Fatalf("an unknown plan: %v", err)
	}
	name, plan := "Renamed", "enterprise"
	o, err := store.UpdateOrganization(ctx, testDB, org.ID, store.OrgChange{Name: &name, Plan: &plan}, ev)
	if err != nil || o.Name != name || o.PlanID != plan {
		t.Fatalf("updated %+v, %v", o, err)
	}
	if o, err = store.UpdateOrganization(ctx, testDB, org.ID, store.OrgChange{Name: &name}, ev); err != nil || o.Name != name {
		t.Fatalf("the same name again: %+v, %v", o, err)
	}
	evs := eventsOf(t, org.ID, "organization.updated")
	if len(evs) != 1 {
		t.Fatalf("%d organization.updated events, want 1 (a change to nothing writes none)", len(evs))
	}
	sameJSON(t, "data", evs[0].Data, `{"before":{"name":"Org","plan":"team"},"after":{"name":"Renamed","plan":"enterprise"}}`)
}

func TestAStepIsRecordedInPlaceAndANewOneAfterTheOthers(t *testing.T) {
	ctx := context.Background()
	in := newTenant(newOrg(t), "steps")
	res, err := store.ReserveTenant(ctx, testDB, in)
	if err != nil {
		t.Fatal(err)
	}
	steps := func() []store.Step {
		t.Helper()
		var op store.Operation
		if err := testDB.NewSelect().Model(&op).Where("id = ?", res.Operation.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		return op.Steps
	}
	before := steps() // schema and keys, pending
	if err := store.UpdateStep(ctx, testDB, in.OperationID, "keys", "failed", 1, "it broke"); err != nil {
		t.Fatal(err)
	}
	if err := store.UpdateStep(ctx, testDB, in.OperationID, "keys", "done", 2, ""); err != nil {
		t.Fatal(err)
	}
	if err := store.UpdateStep(ctx, testDB, in.OperationID, "route", "done", 1, ""); err != nil {
		t.Fatal(err)
	}
	got := steps()
	if len(got) != 3 || got[0].Name != "schema" || got[0].Status != before[0].Status || got[1].Name != "keys" || got[2].Name != "route" {
		t.Fatalf("steps %+v", got)
	}
	if k := got[1]; k.Status != "done" || k.Attempts != 2 || k.LastError != "" || k.UpdatedAt == nil {
		t.Fatalf("keys after its second attempt: %+v", k)
	}
	if err := store.UpdateStep(ctx, testDB, domain.NewID(domain.PrefixOperation), "keys", "done", 1, ""); err == nil {
		t.Fatal("a step of no operation was recorded")
	}
}

// A record changes only what it names: a status that does not end the
// operation keeps it current, a grace end is written alone, the end of a
// lifetime clears expires_at, and a tenant that is not there is an error,
// not a silent success.
func TestARecordChangesOnlyWhatItNames(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	nt := newTenant(org, "zeta")
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	lifetime := int64(3600)
	nt.ExpiresAt, nt.LifetimeSeconds = &expires, &lifetime
	res, err := store.ReserveTenant(ctx, testDB, nt)
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: res.Tenant.ID, OperationID: res.Operation.ID, Status: domain.OpStuck})
	if err != nil || stuck.State != string(domain.StateProvisioning) || stuck.CurrentOperationID == nil || *stuck.CurrentOperationID != res.Operation.ID ||
		stuck.ExpiresAt == nil || !stuck.ExpiresAt.Equal(expires) {
		t.Fatalf("a stuck record: %+v %v", stuck, err)
	}
	_, op, _ := store.TenantOperation(ctx, testDB, res.Tenant.ID, res.Operation.ID)
	if op.Status != string(domain.OpStuck) || op.EndedAt != nil || op.GraceEndsAt != nil {
		t.Fatalf("the stuck operation: %+v", op)
	}
	grace := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Microsecond)
	got, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: res.Tenant.ID, OperationID: res.Operation.ID, GraceEndsAt: &grace, EndLifetime: true})
	if err != nil || got.ExpiresAt != nil || got.State != string(domain.StateProvisioning) || got.CurrentOperationID == nil {
		t.Fatalf("a grace record: %+v %v", got, err)
	}
	_, op, _ = store.TenantOperation(ctx, testDB, res.Tenant.ID, res.Operation.ID)
	if op.Status != string(domain.OpStuck) || op.GraceEndsAt == nil || !op.GraceEndsAt.Equal(grace) {
		t.Fatalf("the operation after a grace record: %+v", op)
	}
	if _, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: "ten_missing", OperationID: res.Operation.ID, Status: domain.OpFailed}); err == nil {
		t.Fatal("a record of a missing tenant succeeded")
	}
	_, op, _ = store.TenantOperation(ctx, testDB, res.Tenant.ID, res.Operation.ID)
	if op.Status != string(domain.OpStuck) {
		t.Fatalf("a failed record of another tenant changed the operation: %+v", op)
	}
}

// TestReservationsOfOneOrganisationQueueInTheProcessNotInPostgres holds
// the organisation's row as another process's reservation would, then
// reserves eight tenants at once from this one: only one of them waits
// for the row in Postgres (holding a backend); the others wait for their
// turn in the process, and all eight are written once the row is free.
// Without the turns, each waited there with a backend of its own, and a
// burst on one organisation opened a backend per creation in flight.
func TestReservationsOfOneOrganisationQueueInTheProcessNotInPostgres(t *testing.T) {
	ctx := context.Background()
	org := newOrg(t)
	other, err := testDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Rollback() }()
	if _, err := other.ExecContext(ctx, "SELECT 1 FROM organizations WHERE id = ? FOR NO KEY UPDATE", org.ID); err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = store.ReserveTenant(ctx, testDB, newTenant(org, "turn-"+string(rune('a'+i)))) })
	}
	// waiting counts the backends waiting in Postgres for a lock while
	// locking a plan.
	waiting := func() int {
		var c int
		if err := testDB.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%FROM organizations o JOIN plans p%'`).Scan(ctx, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	most := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		most = max(most, waiting())
	}
	if most != 1 {
		t.Errorf("%d reservations waited for the organisation's row in Postgres at once, want 1 (the others wait for their turn)", most)
	}
	if err := other.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("reservation %d: %v", i, err)
		}
	}
	if live, err := store.CountLiveTenants(ctx, testDB, org.ID); err != nil || live != n {
		t.Errorf("%d live tenants (%v), want %d", live, err, n)
	}
}
