package store_test

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// The prepared statements that read a whole tenant name its columns: they
// must be every column of the model, so a field added to Tenant is read
// by them too (or this fails), and they read what bun reads.
func TestAWholeTenantReadByAPreparedStatementIsTheOneBunReads(t *testing.T) {
	var fields []string
	for _, f := range testDB.Table(reflect.TypeFor[store.Tenant]()).Fields {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, store.TenantColumns) {
		t.Fatalf("Tenant's columns %v, the prepared statements' %v", fields, store.TenantColumns)
	}

	ctx := context.Background()
	org := newOrg(t)
	in := newTenant(org, "columns")
	lifetime := int64(3600)
	expires := time.Now().Add(time.Hour)
	in.ExpiresAt, in.LifetimeSeconds = &expires, &lifetime
	res, err := store.ReserveTenant(ctx, testDB, in)
	if err != nil {
		t.Fatal(err)
	}
	var byBun store.Tenant
	if err := testDB.NewSelect().Model(&byBun).Where("id = ?", res.Tenant.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	created, found, err := store.CreatedTenant(ctx, testDB, res.Tenant.WorkflowID)
	if err != nil || !found || !reflect.DeepEqual(created.Tenant, byBun) {
		t.Fatalf("CreatedTenant's tenant %+v (%v, %v), bun's %+v", created.Tenant, found, err, byBun)
	}
	again, err := store.ReserveTenant(ctx, testDB, in)
	if err != nil || !reflect.DeepEqual(again.Tenant, byBun) {
		t.Fatalf("a retried reservation's tenant %+v (%v), bun's %+v", again.Tenant, err, byBun)
	}
	recorded, err := store.RecordOperation(ctx, testDB, store.OperationChange{TenantID: res.Tenant.ID, OperationID: res.Operation.ID,
		Status: domain.OpSucceeded, State: domain.StateActive, EndLifetime: true})
	if err != nil {
		t.Fatal(err)
	}
	var after store.Tenant
	if err := testDB.NewSelect().Model(&after).Where("id = ?", res.Tenant.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(recorded, after) || recorded.State != string(domain.StateActive) || recorded.ExpiresAt != nil || recorded.CurrentOperationID != nil {
		t.Fatalf("the record's tenant %+v, bun's %+v", recorded, after)
	}
}
