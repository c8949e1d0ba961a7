package integration

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
)

// newOrg bootstraps an organisation of its own for the test, so tests in
// the shared database never see each other's rows.
func newOrg(t *testing.T, h *harness.Harness) store.Organization {
	t.Helper()
	slug := strings.ToLower(strings.TrimPrefix(domain.NewID(domain.PrefixOrganization), "org_"))[:20]
	res, err := store.Bootstrap(context.Background(), h.DB, store.BootstrapInput{
		OrgName: "Test " + slug, OrgSlug: "t-" + slug, PlanID: "team",
		OwnerEmail: "owner@" + slug + ".test", OwnerPassword: "a-long-test-password",
		ActorType: "system", ActorID: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Org
}

// testKeys is the key ring that seals the tests' tenants' private keys.
var testKeys = sync.OnceValue(func() *seal.Ring {
	k, err := seal.NewKey("test")
	if err != nil {
		panic(err)
	}
	r, err := seal.ParseRing(k)
	if err != nil {
		panic(err)
	}
	return r
})
