package integration

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// regionServingWithinForTests is the API's serving threshold in the
// console's regions test: above the minute an idle worker's long poll
// lasts (so an idle, healthy eu stays served), below production's two
// minutes so the test waits less for a stopped worker to be noticed.
const regionServingWithinForTests = 75 * time.Second

// TestTheConsoleCreatesATenantInARegionAndSaysWhenARegionIsNotServed runs
// the API with two regions, eu and us, each served by its own
// `controlplane worker --region` process. An owner creates a tenant in us
// from the console: the form offers both regions with eu, the default,
// chosen, and the hostname shows the region chosen. The list and the
// tenant's page show its region. Once us's worker stops, the tenants page
// says that us has no worker and that other regions are not affected; the
// us tenant's page says so too, the eu tenant's does not. A us worker
// again: the banner goes. In between, the owner makes us the
// organisation's default region in Settings, which the form then chooses,
// and creates a service account limited to eu's tenants.
func TestTheConsoleCreatesATenantInARegionAndSaysWhenARegionIsNotServed(t *testing.T) {
	h := harness.Get(t)
	eu, us := newRegionPlane(t, h, "eu"), newRegionPlane(t, h, "us")
	l := newLifecycle(t, nil)
	deps := l.deps
	deps.Regions, deps.DomainBase = []string{"eu", "us"}, "regions.test"
	deps.RegionServingWithin = regionServingWithinForTests
	srv := api.New(deps)
	addr := serve(t, srv)
	startRegionWorker(t, regionWorkerEnv(t, h, deps.TaskQueue, eu), "eu")
	usWorker := startRegionWorker(t, regionWorkerEnv(t, h, deps.TaskQueue, us), "us")
	w := newWorld(t, h, "team")
	owner := w.People[domain.RoleOwner]

	// An eu tenant, through the API: no region named, the default.
	r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), owner.Token, map[string]any{"name": "paris", "environment": "prod"}, "")
	if r.Status != 202 {
		t.Fatalf("create paris: %d %s", r.Status, r.Raw)
	}
	var created lifecycleData
	r.data(t, &created)
	paris := lifecycle{srv: srv}.waitState(t, w, created.Tenant.ID, domain.StateActive)
	if paris.Region != "eu" {
		t.Fatalf("paris in %q, want eu", paris.Region)
	}

	tenantsPath := "/orgs/" + w.Org.ID + "/tenants"
	c := openConsole(t, "http://"+addr)
	c.navigate("/sign-in?next=" + url.QueryEscape(tenantsPath))
	c.signIn(owner.Email, testPassword)
	c.waitPath(`/tenants$`)

	// The form: both regions, the default chosen; us is picked.
	c.waitFor("the region select with eu chosen", `document.querySelector("[data-testid=region-select]")?.value === "eu"`)
	if got := eval[[]string](c, `[...document.querySelectorAll("[data-testid=region-select] option")].map(o => o.value + ":" + o.textContent.trim())`); strings.Join(got, ",") != "eu:eu (default),us:us" {
		t.Fatalf("the region select offers %v, want eu (default) and us", got)
	}
	c.fill(`input[name=name]`, "ohio")
	c.waitFor("the hostname in eu", fmt.Sprintf(`document.querySelector("[data-testid=hostname-preview]")?.innerText === %q`, "ohio-"+w.Org.Slug+".eu.regions.test"))
	eval[bool](c, `(() => { const s = document.querySelector("[data-testid=region-select]"); s.value = "us"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
	c.waitFor("the hostname in us", fmt.Sprintf(`document.querySelector("[data-testid=hostname-preview]")?.innerText === %q`, "ohio-"+w.Org.Slug+".us.regions.test"))
	c.accessible("regions-create")
	c.press("[data-testid=create-tenant]", "Create tenant")
	c.waitPath(`/tenants/tnt_`)
	c.waitTenantState("active")
	c.waitFor("the tenant's region", `document.querySelector("[data-testid=tenant-region]")?.innerText === "us"`)
	var ohio store.Tenant
	if err := h.DB.NewSelect().Model(&ohio).Where("org_id = ? AND name = 'ohio'", w.Org.ID).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ohio.Region != "us" || ohio.Hostname != "ohio-"+w.Org.Slug+".us.regions.test" {
		t.Fatalf("the tenant created in the console: region %q, hostname %s", ohio.Region, ohio.Hostname)
	}

	// The list: each tenant's region, and no banner while both are served.
	regionOf := func(name string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("[data-testid=tenants] tbody tr")].find(r => r.querySelector("a")?.innerText === %q)?.querySelector("[data-testid=region]")?.innerText`, name)
	}
	c.navigate(tenantsPath)
	c.waitFor("the regions of ohio and paris", regionOf("ohio")+` === "us" && `+regionOf("paris")+` === "eu"`)
	if n := eval[int](c, `document.querySelectorAll("[data-testid=region-not-serving]").length`); n != 0 {
		t.Fatalf("%d region banners while both regions are served", n)
	}

	// Settings: the organisation's default region becomes us, which the
	// form then chooses.
	c.navigate("/orgs/" + w.Org.ID + "/settings")
	c.waitFor("the default region eu", `document.querySelector("select[name=default_region]")?.value === "eu"`)
	eval[bool](c, `(() => { const s = document.querySelector("select[name=default_region]"); s.value = "us"; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`)
	c.press("[data-testid=default-region]", "Save")
	c.waitText("New tenants now live in region us")
	c.accessible("regions-settings")
	if r := req(t, srv, "GET", orgPath(w, ""), owner.Token, nil); !strings.Contains(r.Raw, `"default_region":"us"`) {
		t.Fatalf("the organisation after the console set its default region: %s", r.Raw)
	}
	c.navigate(tenantsPath)
	c.waitFor("us chosen, as the default", `document.querySelector("[data-testid=region-select]")?.value === "us" &&
		[...document.querySelectorAll("[data-testid=region-select] option")].find(o => o.value === "us")?.textContent === "us (default)"`)

	// A service account limited to eu's tenants.
	c.navigate("/orgs/" + w.Org.ID + "/service-accounts")
	c.fill(`input[name=name]`, "eu-deployer")
	c.waitFor("the regions to choose from", `document.querySelectorAll("[data-testid=regions] input[name=regions]").length === 2`)
	eval[bool](c, `(() => { document.querySelector("[data-testid=regions] input[value=eu]").click(); return true })()`)
	c.press("[data-testid=create-service-account]", "Create service account")
	c.waitFor("the account's regions", `document.querySelector("[data-testid=service-account][data-name=eu-deployer] [data-testid=sa-regions]")?.innerText === "eu"`)
	if r := req(t, srv, "GET", orgPath(w, "/service-accounts"), owner.Token, nil); !strings.Contains(r.Raw, `"regions":["eu"]`) {
		t.Fatalf("the service account created in the console: %s", r.Raw)
	}
	c.navigate(tenantsPath)
	c.waitFor("the regions of the tenants", regionOf("ohio")+` === "us"`)

	// us's worker stops: the page says so within the API's threshold, and
	// says nothing of eu, whose idle worker still polls.
	usWorker.stop(t)
	const usBanner = "Region us has no worker serving it: operations on its tenants wait until it returns; other regions are not affected."
	banners := `[...document.querySelectorAll("[data-testid=region-not-serving]")].map(b => b.dataset.region + ":" + b.innerText.trim())`
	waitLong(c, regionServingWithinForTests+time.Minute, "the banner of us", banners+`.join("|") === "us:" + `+fmt.Sprintf("%q", usBanner))
	// The form, where us is the default, says a tenant created there waits.
	c.waitFor("the region us said to have no worker", `document.querySelector("[data-testid=region-select]").value === "us" &&
		[...document.querySelectorAll("[data-testid=region-select] option")].map(o => o.textContent.trim()).join(",") === "eu,us (default, no worker)" &&
		document.querySelector("[data-testid=region-idle]")?.innerText.includes("No worker serves us now")`)
	c.accessible("regions-not-serving")

	// The us tenant's page says it; the eu tenant's does not.
	c.press("[data-testid=tenants]", "ohio")
	c.waitPath(`/tenants/` + ohio.ID + `$`)
	c.waitFor("the banner on the us tenant's page", banners+`.join("|") === "us:" + `+fmt.Sprintf("%q", usBanner))
	c.accessible("regions-tenant-not-serving")
	c.navigate(tenantsPath + "/" + paris.ID)
	c.waitFor("the eu tenant's page", `document.querySelector("[data-testid=tenant-region]")?.innerText === "eu"`)
	if got := eval[[]string](c, banners); len(got) != 0 {
		t.Fatalf("the eu tenant's page shows %v", got)
	}

	// A us worker again: the banner goes from the tenants page.
	startRegionWorker(t, usWorker.env, "us")
	c.navigate(tenantsPath)
	c.waitFor("the regions in the list", regionOf("ohio")+` === "us"`)
	c.waitFor("no banner once us is served again", `document.querySelectorAll("[data-testid=region-not-serving]").length === 0`)
}

// waitLong is waitFor with a timeout of its own, for what the page shows
// only after the server's own delays.
func waitLong(c *consoleTab, timeout time.Duration, what, expr string) {
	c.t.Helper()
	ctx, cancel := c.step(timeout)
	defer cancel()
	if err := chromedp.Do(ctx, waitFor(expr)); err != nil {
		body, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		c.t.Fatalf("waiting for %s: %v\nthe page shows:\n%s", what, err, body)
	}
}
