package integration

import (
	"testing"
)

// TestAnOwnerDeletesTheOrganizationFromTheConsoleAndRestoresIt: in
// Settings, the owner deletes the organisation by typing its slug (the
// dialog shows when it would be due), sees the banner with the due date on
// every page, and restores it from the banner.
func TestAnOwnerDeletesTheOrganizationFromTheConsoleAndRestoresIt(t *testing.T) {
	t.Parallel()
	env := append(devEnv(t), "CP_ORG_DELETION_GRACE=10m")
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	state := func() (string, string) {
		t.Helper()
		code, out := owner.do("GET", "/organizations/"+owner.org, nil)
		if code != 200 {
			t.Fatalf("get organization: %d %v", code, out)
		}
		o := out["data"].(map[string]any)
		return o["state"].(string), o["slug"].(string)
	}
	_, slug := state()

	c := openConsole(t, origin)
	c.navigate("/sign-in?next=/orgs/" + owner.org + "/settings")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/settings$`)
	c.waitText("Delete this organisation")
	c.accessible("settings-delete")
	c.press("[data-testid=delete-organization]", "Delete this organisation")
	c.waitFor("the dialog with the due date", `document.querySelector("dialog[open] [data-testid=due-if-now]")?.innerText.length > 0`)
	if c.offered("Delete organisation") && eval[bool](c, `[...document.querySelectorAll("dialog[open] button")].find(b => b.innerText === "Delete organisation").disabled === false`) {
		t.Fatal("the deletion is offered before the slug is typed")
	}
	c.accessible("organization-delete-dialog")
	c.fill(`dialog[open] input[name=typed]`, slug)
	c.press("dialog[open]", "Delete organisation")
	c.waitFor("the deletion banner", `document.querySelector("[data-testid=deletion-banner]")?.innerText.includes("deleted for good on")`)
	if s, _ := state(); s != "deleting" {
		t.Fatalf("after the console's deletion the organisation is %s", s)
	}
	c.navigate("/orgs/" + owner.org + "/tenants")
	c.waitFor("the banner on another page", `document.querySelector("[data-testid=deletion-banner]") !== null`)
	c.accessible("organization-deleting")
	c.press("[data-testid=deletion-banner]", "Restore the organisation")
	c.waitFor("the banner to go", `document.querySelector("[data-testid=deletion-banner]") === null`)
	if s, _ := state(); s != "active" {
		t.Fatalf("after the console's restore the organisation is %s", s)
	}
}
