package integration

import (
	"context"
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
)

// seededTenants is how many tenants the console's benchmark organisation
// has: the list must stay fast at thousands.
const seededTenants = 3000

// BenchmarkConsoleSignInToTenantsList times, in headless Chromium against
// a real `controlplane dev`, one person's way from the sign-in page (no
// session) to an interactive tenants list: the page loaded, the password
// checked, the organisation resolved, and the first page of an
// organisation of 3,000 tenants rendered with its links. The goal is under
// a second on loopback (docs/performance.md).
func BenchmarkConsoleSignInToTenantsList(b *testing.B) {
	h := harness.Get(b)
	url, db := h.NewDatabase(b, false)
	env := append(devEnv(b), "CP_DATABASE_URL="+url)
	p := startDev(b, env)
	ctx := context.Background()
	var org struct{ ID, Slug, Owner string }
	if err := db.NewRaw(`SELECT o.id, o.slug, m.user_id AS owner FROM organizations o JOIN members m ON m.org_id = o.id AND m.role = 'owner' LIMIT 1`).
		Scan(ctx, &org.ID, &org.Slug, &org.Owner); err != nil {
		b.Fatal(err)
	}
	if _, err := db.NewRaw(`INSERT INTO tenants (id, org_id, name, environment, state, hostname, workflow_id, created_by)
		SELECT 'tnt_seed' || lpad(i::text, 22, '0'), ?, 'seed-' || i, 'prod', 'active', 'seed-' || i || '-' || ? || '.intelliauth.localhost',
			'tenant/' || ? || '/seed-' || i, ?
		FROM generate_series(1, ?) AS i`, org.ID, org.Slug, org.ID, org.Owner, seededTenants).Exec(ctx); err != nil {
		b.Fatal(err)
	}

	c := openConsole(b, "http://"+p.api)
	list := `document.querySelectorAll("[data-testid=tenants] tbody tr td a").length === 50`
	for b.Loop() {
		b.StopTimer()
		c.navigate("/sign-in")
		eval[bool](c, `(sessionStorage.clear(), true)`)
		c.fill(`input[name=email]`, devOwnerEmail)
		c.fill(`input[name=password]`, devOwnerPassword)
		b.StartTimer()
		c.press("form", "Sign in")
		c.waitFor("the tenants list", list)
	}
	b.StopTimer()
	if n := eval[int](c, `document.querySelectorAll("[data-testid=tenants] tbody tr").length`); n != 50 {
		b.Fatalf("the list shows %d rows", n)
	}
}
