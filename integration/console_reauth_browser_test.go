package integration

import (
	"context"
	"testing"

	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/store"
)

// TestTheConsoleAsksForThePasswordBeforeADecommissionOfAStaleSession: a
// person whose sign-in is an hour old decommissions a tenant; the console
// meets the API's 403 REAUTHENTICATION_REQUIRED with a "Confirm it's you"
// dialog (which passes the accessibility check). Cancelling it leaves the
// tenant as it was and shows the refusal; a wrong password is said in the
// dialog and does not sign the person out; their password lets the
// decommission go through, sent again with its Idempotency-Key, once.
func TestTheConsoleAsksForThePasswordBeforeADecommissionOfAStaleSession(t *testing.T) {
	t.Parallel()
	url, db := harness.Get(t).NewDatabase(t, false)
	p := startDev(t, append(devEnv(t), "CP_DATABASE_URL="+url))
	owner := signInDev(t, p.api)
	tenantID, _ := owner.createTenant("sudo")
	owner.waitState(tenantID, "active")

	c := openConsole(t, "http://"+p.api)
	c.navigate("/sign-in?next=/orgs/" + owner.org + "/tenants/" + tenantID)
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitTenantState("active")
	// The person left the browser unlocked for an hour.
	if _, err := db.NewRaw("UPDATE sessions SET authenticated_at = now() - interval '1 hour' WHERE token_hash = ?", store.HashSecret(c.token())).
		Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	const dialog = "dialog[data-testid=reauthenticate]"
	decommission := func() {
		t.Helper()
		c.press("", "Decommission")
		c.fill(`dialog[open] input[name=typed]`, "sudo")
		c.press("dialog[open]", "Decommission")
		c.waitFor("the dialog asking who it is", `document.querySelector("`+dialog+`[open]")`)
	}

	decommission()
	c.press(dialog, "Cancel")
	c.waitFor("the refusal shown", `document.querySelector("[data-testid=error]")?.innerText.includes("confirm who you are")`)
	c.waitTenantState("active")

	decommission()
	c.accessible("reauthenticate-dialog")
	c.fill(dialog+` input[name=reauth-password]`, "not the password at all")
	c.press(dialog, "Confirm")
	c.waitFor("the wrong password said", `document.querySelector("`+dialog+` [data-testid=error]")?.innerText.includes("not your password")`)
	if c.token() == "" {
		t.Fatal("a wrong password signed the person out")
	}
	c.accessible("reauthenticate-wrong-password")
	c.fill(dialog+` input[name=reauth-password]`, devOwnerPassword)
	c.press(dialog, "Confirm")
	c.waitTenantState("decommissioning")
	c.waitFor("the dialog closed", `!document.querySelector("`+dialog+`[open]")`)

	if n := owner.countEvents(tenantID, "tenant.decommission_requested"); n != 1 {
		t.Fatalf("%d decommissions requested", n)
	}
	_, events := owner.do("GET", "/me/events", nil)
	found := false
	for _, e := range events["data"].([]any) {
		found = found || e.(map[string]any)["action"] == "user.reauthenticated"
	}
	if !found {
		t.Fatalf("no user.reauthenticated in the person's events: %v", events)
	}
}
