package integration

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// join invites email with the role as the owner and accepts the
// invitation from its mail with password, as the invitee would.
func join(t *testing.T, owner *devClient, dataDir, email, role, password string) {
	t.Helper()
	if code, out := owner.do("POST", "/organizations/"+owner.org+"/invitations", map[string]any{"email": email, "role": role}); code != 201 {
		t.Fatalf("invite %s: %d %v", email, code, out)
	}
	link := acceptLink(t, dataDir, email)
	fragment, _ := url.ParseQuery(link[strings.Index(link, "#")+1:])
	anyone := &devClient{t: t, base: owner.base}
	if code, out := anyone.do("POST", "/invitations/accept", map[string]any{"token": fragment.Get("token"), "name": role, "password": password}); code != 201 {
		t.Fatalf("accept as %s: %d %v", email, code, out)
	}
}

// TestTheConsoleOffersExactlyTheActionsTheAPIOffers follows one tenant
// through active, suspended and its decommission's grace period, and at
// each state checks, for an owner and a developer each in their own
// browser, that the tenant page's buttons are the tenant's `actions` as the
// API gives them to that person, and that those are what the lifecycle
// table and the roles table allow.
func TestTheConsoleOffersExactlyTheActionsTheAPIOffers(t *testing.T) {
	t.Parallel()
	env := append(devEnv(t), "CP_DECOMMISSION_GRACE=30m")
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	const devEmail, devPassword = "dev@acme.test", "a developer's long password"
	join(t, owner, lookup(env, "CP_DATA_DIR"), devEmail, "developer", devPassword)
	developer := &devClient{t: t, base: owner.base, org: owner.org}
	code, out := developer.do("POST", "/auth/sign-in", map[string]any{"email": devEmail, "password": devPassword})
	if code != 200 {
		t.Fatalf("sign in as the developer: %d %v", code, out)
	}
	developer.token = out["data"].(map[string]any)["token"].(string)

	tenantID, _ := owner.createTenant("offers")
	owner.waitState(tenantID, "active")
	tenantPath := "/orgs/" + owner.org + "/tenants/" + tenantID

	people := []struct {
		name   string
		api    *devClient
		tab    *consoleTab
		offers map[string][]string // by state
	}{
		{"owner", owner, nil, map[string][]string{
			"active": {"suspend", "decommission"}, "suspended": {"resume", "decommission"}, "decommissioning": {"restore"}}},
		{"developer", developer, nil, map[string][]string{
			"active": {"suspend"}, "suspended": {"resume"}, "decommissioning": {}}},
	}
	for i, who := range []struct{ email, password string }{{devOwnerEmail, devOwnerPassword}, {devEmail, devPassword}} {
		c := openConsole(t, origin)
		c.navigate("/sign-in?next=" + tenantPath)
		c.signIn(who.email, who.password)
		c.waitPath(`/tenants/tnt_[^/]+$`)
		people[i].tab = c
	}

	check := func(state string) {
		t.Helper()
		for _, who := range people {
			_, out := who.api.do("GET", "/organizations/"+owner.org+"/tenants/"+tenantID, nil)
			offered := []string{}
			for _, a := range out["data"].(map[string]any)["actions"].([]any) {
				offered = append(offered, a.(string))
			}
			if !slices.Equal(offered, who.offers[state]) {
				t.Errorf("the API offers the %s %v on a tenant that is %s, want %v", who.name, offered, state, who.offers[state])
			}
			c := who.tab
			c.navigate(tenantPath)
			c.waitTenantState(state)
			buttons := eval[[]string](c, `[...document.querySelectorAll("[aria-labelledby=actions-title] button[data-action]")].map(b => b.dataset.action)`)
			if !slices.Equal(buttons, offered) {
				t.Errorf("the %s's console shows %v on a tenant that is %s; the API offers %v", who.name, buttons, state, offered)
			}
			if len(offered) == 0 {
				c.waitFor("the hint that nothing applies", `document.querySelector("[data-testid=no-actions]")`)
			}
			c.screenshot(fmt.Sprintf("actions-%s-%s", who.name, state))
		}
	}
	transition := func(action, state string) {
		t.Helper()
		if code, out := owner.do("POST", "/organizations/"+owner.org+"/tenants/"+tenantID+"/"+action, nil); code != 202 {
			t.Fatalf("%s: %d %v", action, code, out)
		}
		owner.waitState(tenantID, state)
		// The state is written before the operation ends: wait for the
		// tenant to be free again (or, in the grace period, restorable).
		owner.waitFree(tenantID)
	}

	check("active")
	lifetime(t, people[0].tab, people[1].tab, tenantPath)
	transition("suspend", "suspended")
	check("suspended")
	transition("decommission", "decommissioning")
	check("decommissioning")
}

// waitFree waits until the tenant offers the owner an action: no operation
// holds it, or its decommission waits out the grace period.
func (d *devClient) waitFree(id string) {
	d.t.Helper()
	eventually(d.t, func() bool {
		_, out := d.do("GET", "/organizations/"+d.org+"/tenants/"+id, nil)
		data, _ := out["data"].(map[string]any)
		actions, _ := data["actions"].([]any)
		return len(actions) > 0
	})
}

// lifetime: the owner, who may decommission, is offered the tenant's
// lifetime, gives it one from the page and clears it again; the
// developer, who may not, is offered neither, here nor at creation.
func lifetime(t *testing.T, owner, developer *consoleTab, tenantPath string) {
	t.Helper()
	developer.navigate(tenantPath)
	developer.waitTenantState("active")
	if eval[bool](developer, `!!document.querySelector("[data-testid=lifetime]")`) {
		t.Error("a developer is offered to change a tenant's lifetime")
	}
	developer.navigate(tenantPath[:strings.LastIndex(tenantPath, "/")])
	developer.waitFor("the creation form", `document.querySelector("[data-testid=create-tenant]")`)
	if eval[bool](developer, `!!document.querySelector("[data-testid=create-tenant] input[name=hours]")`) {
		t.Error("a developer is offered a lifetime at creation")
	}

	owner.navigate(tenantPath)
	owner.waitTenantState("active")
	owner.waitFor("the lifetime form", `document.querySelector("[data-testid=lifetime]")`)
	owner.fill(`[data-testid=lifetime] input[name=lifetime-hours]`, "2")
	owner.press(`[data-testid=lifetime]`, "Set lifetime")
	owner.waitFor("the tenant's end", `document.querySelector("[data-testid=tenant-expires]")?.innerText.includes("no grace period")`)
	owner.screenshot("tenant-lifetime")
	owner.press(`[data-testid=lifetime]`, "Keep it (no lifetime)")
	owner.press("dialog[open]", "Keep it")
	owner.waitFor("the lifetime cleared", `!document.querySelector("[data-testid=tenant-expires]")`)
}
