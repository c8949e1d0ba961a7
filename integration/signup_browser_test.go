package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestAVisitorSignsUpVerifiesFromTheMailAndRunsTwoOrganizations: on an
// installation open to sign-up (dev's default), a visitor follows "Create
// an account" from the sign-in page, is told as they type whether the slug
// is free and where their tenants will be served, signs up, opens the
// mail's link, lands signed in on their new organisation's empty tenants
// page, which says what to do first, creates a tenant, then creates a
// second organisation from the header and switches back to the first.
func TestAVisitorSignsUpVerifiesFromTheMailAndRunsTwoOrganizations(t *testing.T) {
	t.Parallel()
	env := devEnv(t)
	p := startDev(t, env)
	origin := "http://" + p.api
	c := openConsole(t, origin)
	const email, password = "grace@compilers.test", "a long founder password"

	c.navigate("/sign-in")
	c.waitText("Sign in to IntelliAuth")
	c.press("main", "Create an account")
	c.waitPath(`^/sign-up$`)
	c.waitText("Create an IntelliAuth account")
	c.fill(`input[name=name]`, "Grace Hopper")
	c.fill(`input[name=email]`, email)
	c.fill(`input[name=password]`, password)
	c.fill(`input[name=organization]`, "Compilers Inc")
	// The slug follows the organisation's name, and is checked in place.
	c.waitFor("the suggested slug", `document.querySelector("input[name=slug]").value === "compilers-inc"`)
	c.waitFor("the slug available", `document.querySelector("[data-testid=slug-status]").innerText.includes("compilers-inc is available")`)
	c.waitFor("the tenants' hostname", `document.querySelector("[data-testid=slug-hostname]")?.innerText.startsWith("<tenant>-compilers-inc.")`)
	// The dev organisation's slug is taken.
	c.fill(`input[name=slug]`, "acme")
	c.waitFor("the slug taken", `document.querySelector("[data-testid=slug-status]").innerText.includes("acme is taken")`)
	c.accessible("sign-up-slug-taken")
	c.fill(`input[name=slug]`, "compilers")
	c.waitFor("the slug available", `document.querySelector("[data-testid=slug-status]").innerText.includes("compilers is available")`)
	c.accessible("sign-up")
	c.press("form", "Create my account")
	c.waitFor("check your mail", `document.querySelector("[data-testid=signup-sent]")?.innerText.includes("A mail is on its way")`)
	c.accessible("sign-up-check-mail")

	link := mailLink(t, lookup(env, "CP_DATA_DIR"), email, "/verify-email")
	if !strings.HasPrefix(link, p.console()+"/verify-email#token=cpv_") {
		t.Fatalf("the mail links to %s, not to this console's verification page", link)
	}
	c.navigate(strings.TrimPrefix(link, p.console()))
	c.waitPath(`^/orgs/org_[^/]+/tenants$`)
	if eval[string](c, `location.hash`) != "" {
		t.Fatal("the verification's secret stays in the address bar")
	}
	first := eval[string](c, `location.pathname`)
	c.waitFor("what to do first", `document.querySelector("[data-testid=tenants-empty]")?.innerText.includes("Compilers Inc has no tenants yet")`)
	c.waitFor("the owner badge", `document.querySelector("header .badge")?.innerText === "owner"`)
	c.accessible("tenants-getting-started")

	c.fill(`[data-testid=create-tenant] input[name=name]`, "prod")
	c.waitFor("the hostname preview", `document.querySelector("[data-testid=hostname-preview]")?.innerText.startsWith("prod-compilers.")`)
	c.press(`[data-testid=create-tenant]`, "Create tenant")
	c.waitPath(`^/orgs/org_[^/]+/tenants/tnt_[^/]+$`)
	c.waitTenantState("active")

	// A second organisation, from the header.
	c.press("header", "New organisation")
	c.waitPath(`^/orgs/new$`)
	c.waitText("New organisation")
	c.fill(`input[name=name]`, "Compilers Labs")
	c.waitFor("the slug available", `document.querySelector("[data-testid=slug-status]").innerText.includes("compilers-labs is available")`)
	c.accessible("new-organization")
	c.press("form", "Create organisation")
	c.waitFor("the second organisation", fmt.Sprintf(`/^\/orgs\/org_[^/]+\/tenants$/.test(location.pathname) && location.pathname !== %q`, first))
	c.waitFor("its empty tenants page", `document.querySelector("[data-testid=tenants-empty]")?.innerText.includes("Compilers Labs has no tenants yet")`)
	c.waitFor("both in the switcher", `document.querySelectorAll("[data-testid=org-switcher] option").length === 2`)
	second := eval[string](c, `location.pathname`)

	// Switches back to the first.
	firstID := strings.Split(first, "/")[2]
	if !eval[bool](c, fmt.Sprintf(`(() => { const s = document.querySelector("[data-testid=org-switcher]"); s.value = %q; s.dispatchEvent(new Event("change", {bubbles: true})); return true })()`, firstID)) {
		t.Fatal("switch")
	}
	c.waitPath("^" + first + "$")
	c.waitFor("its tenant", `[...document.querySelectorAll("[data-testid=tenants] td")].some(td => td.innerText === "prod")`)

	// The second organisation is deleted by typing its slug.
	c.navigate(strings.TrimSuffix(second, "/tenants") + "/settings")
	c.press("[data-testid=delete-organization]", "Delete this organisation")
	c.waitFor("the dialog", `document.querySelector("dialog[open] input[name=typed]") !== null`)
	c.fill(`dialog[open] input[name=typed]`, "compilers-labs")
	c.press("dialog[open]", "Delete organisation")
	c.waitFor("the deletion banner", `document.querySelector("[data-testid=deletion-banner]")?.innerText.includes("deleted for good on")`)
}
