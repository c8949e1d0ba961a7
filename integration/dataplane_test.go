package integration

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/seal"
)

func TestTheDefaultDataPlaneCreatesBlocksAndDestroysATenantsResources(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	dp := &dataplane.Postgres{DB: h.DB, Keys: testKeys()}
	if err := dp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ref := dataplane.Ref{TenantID: domain.NewID(domain.PrefixTenant), OrgID: "org_x", Hostname: "prod-" + uniq() + ".intelliauth.localhost"}
	inspect := func() dataplane.Resources {
		t.Helper()
		r, err := dp.Inspect(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if inspect().Any() {
		t.Fatal("resources exist before provisioning")
	}
	// Each step twice: a retried step finds its work done.
	for range 2 {
		for _, step := range []func(context.Context, dataplane.Ref) error{dp.CreateSchema, dp.CreateKeys, dp.CreateRoute} {
			if err := step(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := inspect()
	if !r.Schema || !r.Keys || !r.Route || !r.RouteEnabled {
		t.Fatalf("after provisioning: %+v", r)
	}
	var jwks struct {
		Keys []struct{ Kty, Crv, Kid, X string }
	}
	if err := json.Unmarshal(r.JWKS, &jwks); err != nil || len(jwks.Keys) != 1 || jwks.Keys[0].Crv != "Ed25519" || jwks.Keys[0].X == "" {
		t.Fatalf("jwks = %s (%v)", r.JWKS, err)
	}

	// A suspended tenant's route is blocked and its sessions are gone.
	schema := "tenant_" + strings.ToLower(ref.TenantID[4:])
	if _, err := h.DB.ExecContext(ctx, "INSERT INTO "+schema+".users (id, email) VALUES ('u1', 'a@b.test');"+
		"INSERT INTO "+schema+".sessions (token_hash, user_id, expires_at) VALUES ('\\x01', 'u1', now() + interval '1 hour')"); err != nil {
		t.Fatal(err)
	}
	if err := dp.SuspendRoute(ctx, ref); err != nil {
		t.Fatal(err)
	}
	var sessions int
	if err := h.DB.NewRaw("SELECT count(*) FROM "+schema+".sessions").Scan(ctx, &sessions); err != nil || sessions != 0 || inspect().RouteEnabled {
		t.Fatalf("suspended: sessions %d (%v), route %+v", sessions, err, inspect())
	}
	if err := dp.ResumeRoute(ctx, ref); err != nil || !inspect().RouteEnabled {
		t.Fatalf("resume: %v %+v", err, inspect())
	}

	for range 2 {
		for _, step := range []func(context.Context, dataplane.Ref) error{dp.DeleteRoute, dp.DeleteKeys, dp.DropSchema} {
			if err := step(ctx, ref); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := inspect(); r.Any() {
		t.Fatalf("after destruction: %+v", r)
	}
}

func TestWorkersInitialisingTheDataPlaneTogetherDoNotCollide(t *testing.T) {
	h := harness.Get(t)
	_, db := h.NewDatabase(t, false)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = (&dataplane.Postgres{DB: db}).Init(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("init %d: %v", i, err)
		}
	}
}

func TestATenantsPrivateKeyIsSealedAtRestAndRotatesWithTheRing(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	oldKey, _ := seal.NewKey("k-old")
	oldRing, _ := seal.ParseRing(oldKey)
	dp := &dataplane.Postgres{DB: h.DB, Keys: oldRing}
	if err := dp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ref := dataplane.Ref{TenantID: domain.NewID(domain.PrefixTenant), OrgID: "org_x", Hostname: "k-" + uniq() + ".intelliauth.localhost"}
	if err := dp.CreateKeys(ctx, ref); err != nil {
		t.Fatal(err)
	}
	stored := func() []byte {
		var b []byte
		if err := h.DB.NewRaw("SELECT private_key FROM dataplane.signing_keys WHERE tenant_id = ?", ref.TenantID).Scan(ctx, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A database reader finds no key material: not the 32-byte seed.
	raw := stored()
	if seal.KeyID(raw) != "k-old" || len(raw) == ed25519.SeedSize {
		t.Fatalf("stored private key = %x", raw)
	}
	publicOf := func(dp *dataplane.Postgres) string {
		t.Helper()
		priv, err := dp.SigningKey(ctx, ref.TenantID)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	}
	res, err := dp.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if x := publicOf(dp); !strings.Contains(string(res.JWKS), x) {
		t.Fatalf("the opened key is not the published one: %s vs %s", x, res.JWKS)
	}

	// Rotation: a new key first in the ring; the worker reseals; the old
	// key can then be removed.
	newKey, _ := seal.NewKey("k-new")
	rotated, _ := seal.ParseRing(newKey + "," + oldKey)
	if _, _, err := (&dataplane.Postgres{DB: h.DB, Keys: rotated}).Reseal(ctx); err != nil {
		t.Fatal(err)
	}
	if seal.KeyID(stored()) != "k-new" {
		t.Fatalf("after reseal: %s", seal.KeyID(stored()))
	}
	newOnly, _ := seal.ParseRing(newKey)
	if x := publicOf(&dataplane.Postgres{DB: h.DB, Keys: newOnly}); !strings.Contains(string(res.JWKS), x) {
		t.Fatal("the resealed key changed")
	}
	if err := dp.DeleteKeys(ctx, ref); err != nil {
		t.Fatal(err)
	}
}

// A data plane whose workers predate the map of claimed spares (verify may
// read it before they are upgraded) is read as before: its tenant_<id>
// schemas, none claimed.
func TestADataPlaneWithoutTheMapOfClaimedSparesIsReadAsBefore(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	_, db := h.NewDatabase(t, false)
	dp := &dataplane.Postgres{DB: db}
	if err := dp.Init(ctx); err != nil {
		t.Fatal(err)
	}
	id := domain.NewID(domain.PrefixTenant)
	if _, err := db.ExecContext(ctx, "DROP TABLE dataplane.tenant_schemas; CREATE SCHEMA tenant_"+strings.ToLower(id[4:])); err != nil {
		t.Fatal(err)
	}
	all, err := dp.All(ctx)
	if err != nil || len(all) != 1 || !all[id].Schema {
		t.Fatalf("All = %+v, %v; want %s's schema alone", all, err, id)
	}
}
