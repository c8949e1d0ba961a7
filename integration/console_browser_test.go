package integration

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The console's browser tests drive the real console, served by a real
// `controlplane dev`, in headless Chromium, as a person would: they type,
// click and read what the page shows. Every page they visit is checked by
// axe-core (testdata/axe, vendored) for WCAG 2.1 A and AA violations, and
// every page must keep to its Content-Security-Policy and load nothing from
// another host.
//
// With CP_CONSOLE_SCREENSHOTS set to a directory (docs/screenshots, by
// `task screenshots`), the tests save there what the browser showed.

//go:embed testdata/axe/axe.min.js
var axeSource string

// consoleTab is one browser tab on the console of a dev process.
type consoleTab struct {
	t      testing.TB
	ctx    context.Context
	origin string
	events *pageEvents
	// checked are the pages axe has checked, by name.
	checked []string
}

// devOwner is the dev command's bootstrap owner (its defaults).
const (
	devOwnerEmail    = "owner@acme.test"
	devOwnerPassword = "intelliauth-dev-password"
)

// openConsole opens a tab on the console at origin; resolve are host
// resolver rules for the browser (only 127.0.0.1 resolves otherwise).
func openConsole(t testing.TB, origin string, resolve ...string) *consoleTab {
	t.Helper()
	bin, ok := chromiumBinary()
	if !ok {
		t.Fatal("no Chromium found (chromium, chromium-browser, google-chrome or google-chrome-stable on the PATH): " +
			"the console's browser tests need one; install it with apt-get install chromium (.ci/run does)")
	}
	events := &pageEvents{}
	ctx := startChromium(t, bin, events.record, resolve...)
	tab := &consoleTab{t: t, ctx: ctx, origin: origin, events: events}
	// Injected by the browser, not the page, so the CSP does not stop it.
	recordViolations := `window.__cspViolations = [];
		document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
			e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: recordViolations}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, u := range events.requestURLs() {
			if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "blob:"+origin+"/") && !strings.HasPrefix(u, "data:") {
				t.Errorf("the console requested %s, outside its origin %s", u, origin)
			}
		}
		if ex := events.uncaught(); len(ex) > 0 {
			t.Errorf("uncaught exceptions in the console:\n%s", strings.Join(ex, "\n"))
		}
	})
	return tab
}

// within is the time a step of a test may take, generous for a loaded CI
// machine: the tests wait for what the page shows, not for a fixed time.
const within = 90 * time.Second

func (c *consoleTab) step(timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, timeout)
}

func (c *consoleTab) navigate(path string) {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(c.origin+path)); err != nil {
		c.t.Fatalf("open %s: %v", path, err)
	}
}

// eval runs JavaScript in the page and returns its value.
func eval[T any](c *consoleTab, expr string) T {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the expression is truthy; what names it in a failure.
func (c *consoleTab) waitFor(what, expr string) {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	err := chromedp.Do(ctx, waitFor(expr))
	// A document that replaced the one the poll ran in (a navigation
	// still landing) takes its context with it: poll the new one.
	for err != nil && ctx.Err() == nil && strings.Contains(err.Error(), "Cannot find context with specified id") {
		err = chromedp.Do(ctx, waitFor(expr))
	}
	if err != nil {
		body, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		c.t.Fatalf("waiting for %s: %v\nthe page shows:\n%s", what, err, body)
	}
}

// waitText waits until the page shows the text.
func (c *consoleTab) waitText(text string) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("the text %q", text), fmt.Sprintf(`document.body.innerText.includes(%q)`, text))
}

func (c *consoleTab) waitPath(re string) {
	c.t.Helper()
	c.waitFor("the address "+re, fmt.Sprintf(`new RegExp(%q).test(location.pathname)`, re))
}

// fill types text into the control the selector finds, as keystrokes.
func (c *consoleTab) fill(sel, text string) {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	// What the control holds is selected first, so the keys replace it.
	c.waitFor("the control "+sel, fmt.Sprintf(`document.querySelector(%q)`, sel))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.focus(); e.select(); return true })()`, sel))); err != nil {
		c.t.Fatalf("focus %s: %v", sel, err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(sel, text)); err != nil {
		c.t.Fatalf("type into %s: %v", sel, err)
	}
}

// press clicks the button whose text is label, within the element the
// scope selector finds (the page when empty).
func (c *consoleTab) press(scope, label string) {
	c.t.Helper()
	if scope == "" {
		scope = "body"
	}
	expr := fmt.Sprintf(`[...document.querySelectorAll(%q)].flatMap(s => [...s.querySelectorAll("button, a")])
		.find(b => `+visibleLabel+` === %q && !b.disabled && b.offsetParent !== null)`, scope, label)
	c.waitFor(fmt.Sprintf("an enabled %q in %s", label, scope), expr)
	ctx, cancel := c.step(within)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const b = `+expr+`; b.focus(); b.click(); return true })()`)); err != nil {
		c.t.Fatalf("press %q: %v", label, err)
	}
}

// visibleLabel is the JavaScript of a control b's visible text: without
// what is there for screen readers only ("Details of tenant.suspended…").
const visibleLabel = `[...b.childNodes].filter(n => !n.classList?.contains("visually-hidden")).map(n => n.textContent).join("").trim()`

// offered reports whether the page offers a control labelled label.
func (c *consoleTab) offered(label string) bool {
	c.t.Helper()
	return eval[bool](c, fmt.Sprintf(`[...document.querySelectorAll("button, a")].some(b => `+visibleLabel+` === %q)`, label))
}

// signIn signs in from the sign-in page and waits to leave it.
func (c *consoleTab) signIn(email, password string) {
	c.t.Helper()
	c.waitPath(`^/sign-in$`)
	c.fill(`input[name=email]`, email)
	c.fill(`input[name=password]`, password)
	c.press("form", "Sign in")
	c.waitFor("leaving the sign-in page", `location.pathname !== "/sign-in"`)
}

// keys sends key presses to whatever has the focus, as a keyboard does.
func (c *consoleTab) keys(keys string) {
	c.t.Helper()
	ctx, cancel := c.step(within)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(keys)); err != nil {
		c.t.Fatalf("keys %q: %v", keys, err)
	}
}

// focused describes the focused element, and whether its focus is drawn.
func (c *consoleTab) focused() (name string, visible bool) {
	c.t.Helper()
	v := eval[[]string](c, `(() => { const e = document.activeElement; const s = getComputedStyle(e);
		return [e.tagName.toLowerCase() + (e.name ? "[name=" + e.name + "]" : ""), String(s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2)] })()`)
	return v[0], v[1] == "true"
}

// signInByKeyboard signs in from the sign-in page with the keyboard alone:
// Tab to each field, type, Enter; every control reached shows its focus.
func (c *consoleTab) signInByKeyboard(email, password string) {
	c.t.Helper()
	c.waitPath(`^/sign-in$`)
	c.waitFor("the sign-in form", `document.querySelector("input[name=email]")`)
	for _, field := range []struct{ name, text string }{{"input[name=email]", email}, {"input[name=password]", password}} {
		c.keys(kb.Tab)
		name, visible := c.focused()
		if name != field.name || !visible {
			c.t.Fatalf("Tab reached %s (focus drawn: %v), want %s with its focus drawn", name, visible, field.name)
		}
		c.keys(field.text)
	}
	c.keys(kb.Enter)
	c.waitFor("leaving the sign-in page", `location.pathname !== "/sign-in"`)
}

// token is the session's bearer token, as the console keeps it.
func (c *consoleTab) token() string {
	return eval[string](c, `JSON.parse(sessionStorage.getItem("intelliauth.session") || "{}").token || ""`)
}

// accessible runs axe-core on the page as it is now and fails the test on
// any serious or critical WCAG 2.1 A/AA violation.
func (c *consoleTab) accessible(name string) {
	c.t.Helper()
	out := c.axe()
	var bad []string
	for _, v := range out {
		if v.Impact == "serious" || v.Impact == "critical" {
			var where []string
			for _, n := range v.Nodes {
				where = append(where, fmt.Sprint(n.Target)+" "+n.HTML)
			}
			bad = append(bad, fmt.Sprintf("%s (%s): %s\n    %s", v.ID, v.Impact, v.Help, strings.Join(where, "\n    ")))
		}
	}
	if len(bad) > 0 {
		c.t.Errorf("axe-core on the %s page:\n%s", name, strings.Join(bad, "\n"))
	}
	if v := eval[[]string](c, `window.__cspViolations || []`); len(v) > 0 {
		c.t.Errorf("the %s page broke its Content-Security-Policy: %v", name, v)
	}
	c.checked = append(c.checked, name)
	c.screenshot(name)
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

// axe runs axe-core's WCAG 2.1 A and AA rules on the page as it is now.
func (c *consoleTab) axe() []axeViolation {
	c.t.Helper()
	if !eval[bool](c, `typeof window.axe !== "undefined"`) {
		// Evaluated by the browser, not loaded by the page: the page's CSP
		// does not apply, and nothing of axe ships with the console.
		ctx, cancel := c.step(within)
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](axeSource+";true"))
		cancel()
		if err != nil {
			c.t.Fatalf("load axe-core: %v", err)
		}
	}
	return eval[[]axeViolation](c, `axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({target: n.target, html: n.html}))})))`)
}

// screenshot saves what the tab shows into $CP_CONSOLE_SCREENSHOTS, when set.
func (c *consoleTab) screenshot(name string) {
	dir := os.Getenv("CP_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := c.step(within)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
	}
	if err != nil {
		c.t.Errorf("screenshot: %v", err)
	}
}

// tenantState is the state the tenant page shows.
func (c *consoleTab) waitTenantState(state string) {
	c.t.Helper()
	c.waitFor("the tenant to be "+state, fmt.Sprintf(`document.querySelector("[data-testid=tenant-state]")?.innerText === %q`, state))
}

// acceptLink is the console link of the newest invitation mail to email in
// the dev process's mail directory.
func acceptLink(t *testing.T, dataDir, email string) string {
	t.Helper()
	return mailLink(t, dataDir, email, "/invitations/accept")
}

// mailLink is the console link to page with a #token= of the newest mail
// to email that carries one, waiting for the mail to be written.
func mailLink(t *testing.T, dataDir, email, page string) string {
	t.Helper()
	link := regexp.MustCompile(`https?://\S+` + regexp.QuoteMeta(page) + `#token=\S+`)
	deadline := time.Now().Add(within)
	for {
		files, _ := filepath.Glob(filepath.Join(dataDir, "mail", "*"))
		slices.Sort(files)
		for i := len(files) - 1; i >= 0; i-- {
			b, err := os.ReadFile(files[i])
			if err != nil || !strings.Contains(string(b), email) {
				continue
			}
			if m := link.FindString(string(b)); m != "" {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail to %s with a link to the console's %s in %s/mail", email, page, dataDir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTheConsoleRunsATenantsLifecycleInvitesAMemberAndShowsTheAuditTrail is
// the console's main path, as people use it: an owner signs in, creates a
// tenant and watches its steps complete, suspends, resumes, decommissions
// and restores it in the grace period; invites a developer, who accepts
// from the mail's link, sets a password, is signed in and is not offered
// what their role cannot do (and the API refuses it when sent anyway);
// then the owner reads, filters and downloads the audit trail, and a
// revoked session sends the console back to sign-in.
func TestTheConsoleRunsATenantsLifecycleInvitesAMemberAndShowsTheAuditTrail(t *testing.T) {
	t.Parallel()
	env := append(devEnv(t), "CP_DECOMMISSION_GRACE=30m")
	p := startDev(t, env)
	origin := "http://" + p.api
	c := openConsole(t, origin)

	// An owner signs in: the console's root asks for a session first.
	c.navigate("/")
	c.waitPath(`^/sign-in$`)
	c.accessible("sign-in")
	// The checker finds what it is there to find: an unlabelled control.
	eval[bool](c, `(() => { const i = document.createElement("input"); i.id = "axe-probe"; document.body.append(i); return true })()`)
	if found := c.axe(); !slices.ContainsFunc(found, func(v axeViolation) bool { return v.ID == "label" && v.Impact == "critical" }) {
		t.Fatalf("axe-core did not report an unlabelled input: %+v", found)
	}
	eval[bool](c, `(document.getElementById("axe-probe").remove(), true)`)
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`^/orgs/org_[^/]+/tenants$`)
	orgPath := eval[string](c, `location.pathname.replace(/\/tenants$/, "")`)
	c.waitText("Create a tenant")
	c.accessible("tenants")

	// Creates a tenant: the form shows the hostname it will get.
	c.fill(`[data-testid=create-tenant] input[name=name]`, "storefront")
	c.waitFor("the hostname preview", `document.querySelector("[data-testid=hostname-preview]")?.innerText.startsWith("storefront-acme.")`)
	c.press(`[data-testid=create-tenant]`, "Create tenant")
	c.waitPath(`^/orgs/org_[^/]+/tenants/tnt_[^/]+$`)
	tenantPath := eval[string](c, `location.pathname`)
	c.waitTenantState("active")
	for _, s := range []string{"schema", "keys", "route"} {
		c.waitFor("step "+s+" done", fmt.Sprintf(`document.querySelector('[data-testid=operation][data-kind=provision] [data-step=%s]')?.dataset.status === "done"`, s))
	}
	c.accessible("tenant")

	// Suspends and resumes it, each after a confirmation.
	c.press("", "Suspend")
	c.waitFor("the suspend dialog", `document.querySelector("dialog[open]")`)
	c.accessible("suspend-dialog")
	c.press("dialog[open]", "Suspend")
	c.waitTenantState("suspended")
	c.press("", "Resume")
	c.press("dialog[open]", "Resume")
	c.waitTenantState("active")

	// Decommissions it: the action waits for the tenant's name to be typed.
	c.press("", "Decommission")
	c.waitFor("the decommission dialog", `document.querySelector("dialog[open] input[name=typed]")`)
	if eval[bool](c, `[...document.querySelectorAll("dialog[open] button")].find(b => b.innerText === "Decommission").disabled === false`) {
		t.Fatal("decommission is enabled before the tenant's name is typed")
	}
	c.fill(`dialog[open] input[name=typed]`, "storefront")
	c.accessible("decommission-dialog")
	c.press("dialog[open]", "Decommission")
	c.waitTenantState("decommissioning")
	c.waitFor("the grace period's countdown", `document.querySelector("[data-testid=countdown]")`)
	c.accessible("tenant-grace-period")

	// Restores it in the grace period.
	c.press("", "Restore")
	c.press("dialog[open]", "Restore")
	c.waitTenantState("suspended")
	c.waitFor("the decommission called off", `document.querySelector('[data-testid=operation][data-kind=decommission]')?.dataset.status === "cancelled"`)

	// Invites a developer.
	c.navigate(orgPath + "/members")
	c.waitFor("the invitation form", `document.querySelector("[data-testid=invite]")`)
	c.fill(`[data-testid=invite] input[name=email]`, "dev@acme.test")
	if _, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector("[data-testid=invite] select[name=role]"); s.value = "developer"; s.dispatchEvent(new Event("change")); return true })()`)); err != nil {
		t.Fatal(err)
	}
	c.press(`[data-testid=invite]`, "Invite")
	c.waitFor("the pending invitation", `document.querySelector('[data-testid=invitation][data-email="dev@acme.test"]')?.innerText.includes("pending")`)
	c.accessible("members")
	ownerToken := c.token()

	// The developer follows the mail's link in their own browser session.
	link := acceptLink(t, lookup(env, "CP_DATA_DIR"), "dev@acme.test")
	if !strings.HasPrefix(link, p.console()+"/invitations/accept#token=") {
		t.Fatalf("the mail links to %s, not to this console's accept page", link)
	}
	c.press("header", "Sign out")
	c.waitPath(`^/sign-in$`)
	c.navigate(strings.TrimPrefix(link, p.console()))
	c.waitText("Accept your invitation")
	if eval[string](c, `location.hash`) != "" {
		t.Fatal("the invitation's secret stays in the address bar")
	}
	c.accessible("accept-invitation")
	c.fill(`input[name=name]`, "Dana Developer")
	c.fill(`input[name=password]`, "a developer's long password")
	c.press("form", "Accept and sign in")
	c.waitPath(`^` + regexp.QuoteMeta(orgPath) + `/tenants$`)
	c.waitFor("the developer's session", `document.querySelector("[data-testid=who]")?.innerText === "dev@acme.test"`)

	// The developer is not offered decommission; the API refuses it anyway.
	c.navigate(tenantPath)
	c.waitTenantState("suspended")
	c.waitText("Resume")
	if c.offered("Decommission") || c.offered("Restore") {
		t.Fatal("a developer is offered decommission or restore")
	}
	developer := &devClient{t: t, base: origin + "/api/v1", token: c.token()}
	tenantID := tenantPath[strings.LastIndex(tenantPath, "/")+1:]
	orgID := strings.TrimPrefix(orgPath, "/orgs/")
	if code, out := developer.do("POST", "/organizations/"+orgID+"/tenants/"+tenantID+"/decommission", nil); code != 403 {
		t.Fatalf("a developer's decommission sent to the API = %d %v, want 403", code, out)
	}
	c.press("header", "Sign out")
	c.waitPath(`^/sign-in$`)

	// The owner reads the audit trail: every action with its human actor.
	c.navigate("/sign-in?next=" + orgPath + "/audit")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/audit$`)
	// What a person asked for is theirs; what the saga then did says for
	// whom it did it.
	const forOwner = "saga, for " + devOwnerEmail
	want := map[string]string{
		"tenant.create_requested":       devOwnerEmail,
		"tenant.provisioned":            forOwner,
		"tenant.suspend_requested":      devOwnerEmail,
		"tenant.suspended":              forOwner,
		"tenant.resume_requested":       devOwnerEmail,
		"tenant.resumed":                forOwner,
		"tenant.decommission_requested": devOwnerEmail,
		"tenant.restore_requested":      devOwnerEmail,
		"tenant.restored":               forOwner,
		"invitation.created":            devOwnerEmail,
		"invitation.accepted":           "dev@acme.test",
	}
	for action, actor := range want {
		c.waitFor(action+" by "+actor, fmt.Sprintf(`[...document.querySelectorAll('[data-testid=event][data-action=%q] [data-testid=actor]')].some(a => a.innerText === %q)`, action, actor))
	}
	c.accessible("audit")
	c.press(`[data-testid=event][data-action="tenant.suspended"]`, "Details")
	c.waitFor("the event's detail", `document.querySelector("[data-testid=event-detail]")`)
	c.accessible("audit-event")

	// Filters them to tenant actions.
	if _, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](`(() => { const s = document.querySelector("[data-testid=audit-filters] select[name=action]"); s.value = "tenant.*"; s.dispatchEvent(new Event("change")); return true })()`)); err != nil {
		t.Fatal(err)
	}
	c.press(`[data-testid=audit-filters]`, "Filter")
	c.waitFor("the filter in the address", `new URLSearchParams(location.search).get("action") === "tenant.*"`)
	c.waitFor("only tenant events", `(() => { const a = [...document.querySelectorAll("[data-testid=event]")].map(e => e.dataset.action);
		return a.length > 0 && a.every(x => x.startsWith("tenant.")) })()`)

	// Downloads the filtered events as NDJSON.
	downloads := t.TempDir()
	if _, err := chromedp.CallBrowser(c.ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads}); err != nil {
		t.Fatal(err)
	}
	c.press(`[data-testid=audit-filters]`, "Download NDJSON")
	lines := waitDownload(t, downloads)
	if len(lines) < 5 {
		t.Fatalf("the download has %d events", len(lines))
	}
	for _, l := range lines {
		var ev struct{ Action string }
		if err := json.Unmarshal([]byte(l), &ev); err != nil || !strings.HasPrefix(ev.Action, "tenant.") {
			t.Fatalf("a downloaded line is not a tenant event: %q (%v)", l, err)
		}
	}

	c.navigate(orgPath + "/nothing-here")
	c.waitText("Page not found")
	c.accessible("not-found")

	c.navigate(orgPath + "/settings")
	c.waitFor("the usage", `document.querySelector("[data-testid=usage]")`)
	c.accessible("settings")

	// A name is shown as the text it is, never as markup.
	const hostile = `Acme <img src=x onerror="window.__pwned=1"><b>bold</b>`
	c.fill(`input[name=name]`, hostile)
	c.press("form", "Rename")
	c.waitFor("the renamed organisation in the switcher", fmt.Sprintf(`[...document.querySelectorAll("[data-testid=org-switcher] option")].some(o => o.textContent === %q)`, hostile))
	c.navigate(orgPath + "/audit")
	c.waitFor("the rename's event", `document.querySelector('[data-testid=event][data-action="organization.updated"]')`)
	c.press(`[data-testid=event][data-action="organization.updated"]`, "Details")
	c.waitFor("the rename's after", fmt.Sprintf(`document.querySelector("[data-testid=event-detail]")?.innerText.includes(%q)`, "bold</b>"))
	if eval[bool](c, `document.querySelector("main img, header img, main b, header b") !== null || window.__pwned === 1`) {
		t.Fatal("an organisation's name was rendered as markup")
	}

	// A session revoked elsewhere sends the console back to sign-in.
	owner := &devClient{t: t, base: origin + "/api/v1", token: c.token()}
	if code, _ := owner.do("POST", "/auth/sign-out", nil); code != 200 {
		t.Fatalf("sign-out = %d", code)
	}
	c.navigate(orgPath + "/members")
	c.waitPath(`^/sign-in$`)
	c.waitFor("the notice", `document.querySelector("[data-testid=notice]")?.innerText.includes("session has ended")`)
	if c.token() != "" || ownerToken == "" {
		t.Fatal("the console kept the ended session")
	}
	for _, page := range []string{"sign-in", "tenants", "tenant", "members", "accept-invitation", "audit", "settings", "not-found"} {
		if !slices.Contains(c.checked, page) {
			t.Errorf("the %s page was not checked for accessibility", page)
		}
	}
}

// waitDownload waits for the one finished download in dir and returns its
// lines.
func waitDownload(t *testing.T, dir string) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
		if len(files) == 1 {
			f, err := os.Open(files[0])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var lines []string
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				if l := strings.TrimSpace(sc.Text()); l != "" {
					lines = append(lines, l)
				}
			}
			return lines
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("no .ndjson download in %s: %v", dir, entries)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestTheConsoleRetriesALostCreateWithItsKeyAndShowsAStuckSagaUntilAnOperatorRepairsIt
// loses the answer to a tenant creation after the server handled it (the
// browser drops the response): the console sends the request again with
// the same Idempotency-Key and one tenant exists. Fault drills make the
// saga stuck; the console shows the step and its error, and the tenant
// becomes active in the console once an operator retries the step with the
// real temporal CLI. The owner signs in with the keyboard alone, and the
// session expires while the page is open: the console returns to sign-in.
func TestTheConsoleRetriesALostCreateWithItsKeyAndShowsAStuckSagaUntilAnOperatorRepairsIt(t *testing.T) {
	t.Parallel()
	cli := temporalCLI(t)
	env := append(devEnv(t), "CP_FAULTS=keys=fail:2", "CP_STEP_MAX_ATTEMPTS=2", "CP_SESSION_TTL=1m")
	p := startDev(t, env)
	origin := "http://" + p.api
	op := newOperator(t, cli, env)
	c := openConsole(t, origin)

	// The browser drops the answer to the first POST .../tenants, after the
	// server has handled it.
	var mu sync.Mutex
	var posts []string // the Idempotency-Key of each POST
	if err := chromedp.Listen(c.ctx, func(ev any) {
		paused, ok := ev.(*fetch.EventRequestPaused)
		if !ok {
			return
		}
		go func() {
			mu.Lock()
			first := false
			if paused.Request.Method == "POST" {
				posts = append(posts, fmt.Sprint(paused.Request.Headers["Idempotency-Key"]))
				first = len(posts) == 1
			}
			mu.Unlock()
			if first {
				_, _ = chromedp.Call(c.ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: paused.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
				return
			}
			_, _ = chromedp.Call(c.ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: paused.RequestID})
		}()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(c.ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/api/v1/organizations/*/tenants", RequestStage: fetch.RequestStageResponse}}}); err != nil {
		t.Fatal(err)
	}

	c.navigate("/")
	c.signInByKeyboard(devOwnerEmail, devOwnerPassword)
	c.waitPath(`/tenants$`)
	signedInAt := time.Now()
	c.fill(`[data-testid=create-tenant] input[name=name]`, "checkout")
	c.press(`[data-testid=create-tenant]`, "Create tenant")
	c.waitPath(`/tenants/tnt_[^/]+$`)
	mu.Lock()
	sent := slices.Clone(posts)
	mu.Unlock()
	if len(sent) != 2 || sent[0] != sent[1] || sent[0] == "" {
		t.Fatalf("the console's creates carried the keys %q; want one retry with the same key", sent)
	}
	d := &devClient{t: t, base: origin + "/api/v1", token: c.token()}
	_, orgs := d.do("GET", "/organizations", nil)
	d.org = orgs["data"].([]any)[0].(map[string]any)["id"].(string)
	_, list := d.do("GET", "/organizations/"+d.org+"/tenants", nil)
	named := 0
	for _, tn := range list["data"].([]any) {
		if tn.(map[string]any)["name"] == "checkout" {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d tenants named checkout exist after the retried create, want 1", named)
	}

	// The saga is stuck on keys: the console says so, with the error.
	c.waitFor("the stuck step", `document.querySelector("[data-testid=stuck]")?.innerText.includes("keys")`)
	if msg := eval[string](c, `document.querySelector("[data-testid=stuck-error]")?.innerText || ""`); !strings.Contains(msg, "fault drill") {
		t.Fatalf("the stuck step's error = %q", msg)
	}
	if !eval[bool](c, `document.querySelector("[data-testid=stuck] pre")?.innerText.includes("--name retry")`) {
		t.Fatal("the console does not say what an operator should do")
	}
	c.accessible("tenant-stuck")

	// An operator retries the step with the runbook's command.
	opID := eval[string](c, `[...document.querySelectorAll("[data-testid=operation][data-status=stuck] code")][0].innerText`)
	tenantID := eval[string](c, `location.pathname.split("/").pop()`)
	_, tenant := d.do("GET", "/organizations/"+d.org+"/tenants/"+tenantID, nil)
	workflowID := tenant["data"].(map[string]any)["workflow_id"].(string)
	op.run("retry", target{workflowID: workflowID, operationID: opID, step: "keys"})
	c.waitTenantState("active")
	c.waitFor("the provision succeeded", `document.querySelector("[data-testid=operation][data-kind=provision]")?.dataset.status === "succeeded"`)

	// The session (CP_SESSION_TTL=1m) expires with the page open.
	if wait := time.Until(signedInAt.Add(time.Minute + 2*time.Second)); wait > 0 {
		time.Sleep(wait)
	}
	c.navigate(eval[string](c, `location.pathname`))
	c.waitPath(`^/sign-in$`)
	c.waitFor("the notice", `document.querySelector("[data-testid=notice]")?.innerText.includes("session has ended")`)
	c.accessible("sign-in-expired")
}

// TestTheConsoleManagesAServiceAccountAndItsTokens is a service account's
// life in the console, proved with its tokens against the API: an admin
// creates one (a developer scoped to prod that may read and create
// tenants) and is shown its token once; the token works; a second token is
// minted and the first revoked in the console, after which the first is
// refused and the second still works; a page that missed a token minted
// elsewhere says why a third is refused (two valid at most). The account's
// tenant creation is in the audit trail under its name, for its admin; a
// tenant made with a lifetime shows when it ends. A viewer sees the
// accounts and their tokens but is offered no change. Each token says who
// minted it. When the admin leaves, the tokens the admin minted are
// revoked, saying why, and the console warns that nobody answers for the
// account until the owner takes it over and mints a token of their own;
// deleting the account ends its tokens.
func TestTheConsoleManagesAServiceAccountAndItsTokens(t *testing.T) {
	t.Parallel()
	env := devEnv(t)
	p := startDev(t, env)
	origin := "http://" + p.api
	owner := signInDev(t, p.api)
	orgPath := "/orgs/" + owner.org

	// An admin and a viewer join through invitations.
	const (
		adminEmail  = "ada@acme.test"
		viewerEmail = "vic@acme.test"
		password    = "a member's long password"
	)
	for _, m := range []struct{ email, role string }{{adminEmail, "admin"}, {viewerEmail, "viewer"}} {
		join(t, owner, lookup(env, "CP_DATA_DIR"), m.email, m.role, password)
	}

	c := openConsole(t, origin)
	c.navigate("/sign-in?next=" + orgPath + "/tenants")
	c.signIn(adminEmail, password)
	c.waitPath(`/tenants$`)

	// A tenant with a lifetime says when it ends.
	c.fill(`[data-testid=create-tenant] input[name=name]`, "preview")
	c.fill(`[data-testid=create-tenant] input[name=hours]`, "2")
	c.press(`[data-testid=create-tenant]`, "Create tenant")
	c.waitPath(`/tenants/tnt_[^/]+$`)
	c.waitFor("the tenant's end", `document.querySelector("[data-testid=tenant-expires]")?.innerText.includes("no grace period")`)

	// The admin creates a service account: a developer for prod that reads
	// and creates tenants.
	c.press("header nav", "Service accounts")
	c.waitPath(`/service-accounts$`)
	c.waitFor("the create form", `document.querySelector("[data-testid=create-service-account]")`)
	c.waitText("No service accounts.")
	c.fill(`[data-testid=create-service-account] input[name=name]`, "deployer")
	c.fill(`[data-testid=create-service-account] input[name=environments]`, "prod")
	eval[bool](c, `(() => { const s = document.querySelector("[data-testid=create-service-account] select[name=role]");
		if ([...s.options].some(o => o.value === "owner")) throw new Error("an admin is offered an owner account");
		s.value = "developer"; s.dispatchEvent(new Event("change"));
		document.querySelector('[data-testid=create-service-account] input[value="tenants:create"]').click(); return true })()`)
	c.press(`[data-testid=create-service-account]`, "Create service account")
	c.waitFor("the new token", `document.querySelector("[data-testid=token]")?.innerText.startsWith("cps_")`)
	first := eval[string](c, `document.querySelector("[data-testid=token]").innerText`)
	if !eval[bool](c, `document.querySelector("[data-testid=new-token]").innerText.includes("not shown again")`) {
		t.Fatal("the new token is shown without saying it is shown once")
	}
	account := `[data-testid=service-account][data-name=deployer]`
	c.waitFor("the account", fmt.Sprintf(`(() => { const a = document.querySelector(%q); return a && a.innerText.includes("developer") &&
		a.innerText.includes("tenants:create") && a.innerText.includes("prod") && a.querySelector("[data-testid=accountable]").innerText.includes(%q) })()`, account, adminEmail))
	c.accessible("service-account-token")

	// The token works against the API, as the account, within its scopes.
	sa := func(token string) *devClient {
		return &devClient{t: t, base: origin + "/api/v1", token: token, org: owner.org}
	}
	code, list := sa(first).do("GET", "/organizations/"+owner.org+"/tenants", nil)
	if code != 200 {
		t.Fatalf("the shown token reading tenants = %d %v, want 200", code, list)
	}
	if tn := list["data"].([]any); len(tn) != 1 || tn[0].(map[string]any)["expires_at"] == nil {
		t.Fatalf("the account reads the tenants %v, want preview with its end", tn)
	}
	if code, out := sa(first).do("POST", "/organizations/"+owner.org+"/tenants", map[string]any{"name": "from-ci", "environment": "prod"}); code != 202 {
		t.Fatalf("the account's tenant creation = %d %v, want 202", code, out)
	}

	// A second token is minted in the console: the first stays valid, and
	// the page shows where and when it was last used.
	c.press("", "Done")
	c.press(account, "New token")
	c.waitFor("the new token dialog", `document.querySelector("dialog[open] input[name=mint-days]")`)
	c.press("dialog[open]", "Mint token")
	c.waitFor("the second token", fmt.Sprintf(`(t => t?.startsWith("cps_") && t !== %q)(document.querySelector("[data-testid=token]")?.innerText)`, first))
	second := eval[string](c, `document.querySelector("[data-testid=token]").innerText`)
	firstRow := fmt.Sprintf(`%s [data-testid=token-row][data-hint=%q]`, account, first[len(first)-4:])
	c.waitFor("the first token's last use", fmt.Sprintf(`(r => r && !r.innerText.includes("never") && r.innerText.includes("127.0.0.1"))(document.querySelector(%q))`, firstRow))
	c.waitFor("who minted the first token", fmt.Sprintf(`document.querySelector(%q + " [data-testid=minted-by]")?.innerText === %q`, firstRow, adminEmail))
	c.waitFor("no third token offered", fmt.Sprintf(`document.querySelector(%q).querySelector("[data-testid=two-live]")?.innerText.includes("revoke one first")`, account))

	// The first is revoked in the console: refused at once; the second works.
	c.press(firstRow, "Revoke")
	c.waitFor("the revoke dialog", `document.querySelector("dialog[open]")?.innerText.includes("stops working at once")`)
	c.accessible("revoke-token-dialog")
	c.press("dialog[open]", "Revoke")
	c.waitFor("the first token revoked", fmt.Sprintf(`document.querySelector(%q)?.dataset.status === "revoked"`, firstRow))
	if code, out := sa(first).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 401 {
		t.Fatalf("the revoked token = %d %v, want 401", code, out)
	}
	if code, out := sa(second).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 200 {
		t.Fatalf("the second token = %d %v, want 200", code, out)
	}

	// A token minted elsewhere while the page was open: the console's
	// "New token" is refused and says what to do.
	admin := &devClient{t: t, base: origin + "/api/v1", token: c.token(), org: owner.org}
	accountID := eval[string](c, fmt.Sprintf(`document.querySelector(%q + " h3").id.replace(/^sa-/, "")`, account))
	if code, out := admin.do("POST", "/organizations/"+owner.org+"/service-accounts/"+accountID+"/tokens", map[string]any{"expires_in": 3600}); code != 201 {
		t.Fatalf("a token minted with the API = %d %v", code, out)
	}
	c.press(account, "New token")
	c.press("dialog[open]", "Mint token")
	c.waitFor("the refusal explained", fmt.Sprintf(`document.querySelector(%q + " [data-testid=revoke-first]")?.innerText.includes("revoke the token you are replacing")`, account))
	c.waitFor("no third token offered", fmt.Sprintf(`[...document.querySelectorAll(%q + " button")].find(b => b.innerText.startsWith("New token"))?.disabled`, account))
	c.accessible("service-accounts")

	// The audit trail names the account, and the admin it acts for.
	c.navigate(orgPath + "/audit?actor_type=service_account")
	c.waitFor("the account's tenant creation", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=event][data-action="tenant.create_requested"] [data-testid=actor]')]
		.some(a => a.innerText === %q)`, "deployer (service account), for "+adminEmail))
	if !eval[bool](c, `[...document.querySelectorAll("[data-testid=event] [data-testid=actor]")].every(a => a.innerText.includes("(service account)"))`) {
		t.Fatal("the audit trail filtered to service accounts shows another actor")
	}
	c.navigate(orgPath + "/tenants")
	c.waitFor("the tenant's end in the list", `[...document.querySelectorAll("[data-testid=tenants] tbody tr")].some(r => r.innerText.includes("preview") && r.querySelector("[data-testid=expires]")?.innerText !== "")`)

	// A viewer sees the account and its tokens, and is offered no change.
	c.press("header", "Sign out")
	c.waitPath(`^/sign-in$`)
	c.navigate("/sign-in?next=" + orgPath + "/service-accounts")
	c.signIn(viewerEmail, password)
	c.waitPath(`/service-accounts$`)
	c.waitFor("the account's tokens", fmt.Sprintf(`document.querySelectorAll(%q + " [data-testid=token-row]").length === 3`, account))
	c.waitFor("the read-only note", `document.querySelector("[data-testid=read-only]")`)
	for _, label := range []string{"Create service account", "New token", "Revoke", "Delete", "Take over"} {
		if c.offered(label) {
			t.Errorf("a viewer is offered %q", label)
		}
	}
	c.accessible("service-accounts-read-only")

	// The admin leaves: the tokens the admin minted are revoked, and nobody
	// answers for the account until the owner takes it over in the console
	// and mints a token of their own.
	_, members := owner.do("GET", "/organizations/"+owner.org+"/members", nil)
	for _, m := range members["data"].([]any) {
		if m := m.(map[string]any); m["email"] == adminEmail {
			if code, out := owner.do("DELETE", "/organizations/"+owner.org+"/members/"+m["id"].(string), nil); code != 200 {
				t.Fatalf("remove the admin: %d %v", code, out)
			}
		}
	}
	if code, out := sa(second).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 401 {
		t.Fatalf("the token of a member who left = %d %v, want 401", code, out)
	}
	c.press("header", "Sign out")
	c.waitPath(`^/sign-in$`)
	c.navigate("/sign-in?next=" + orgPath + "/service-accounts")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitFor("the warning that nobody answers for it", fmt.Sprintf(`document.querySelector(%q + " [data-testid=orphaned]")?.innerText.includes("tokens do not work")`, account))
	secondRow := fmt.Sprintf(`%s [data-testid=token-row][data-hint=%q]`, account, second[len(second)-4:])
	c.waitFor("the admin's token revoked, saying why", fmt.Sprintf(`(r => r?.dataset.status === "revoked" && r.querySelector("[data-testid=revoked-reason]")?.innerText.includes("its minter was removed"))(document.querySelector(%q))`, secondRow))
	c.accessible("service-account-orphaned")
	c.press(account, "Take over")
	c.press("dialog[open]", "Take over")
	c.waitFor("the owner answering for it", fmt.Sprintf(`document.querySelector(%q + " [data-testid=accountable]")?.innerText.includes(%q)`, account, devOwnerEmail))
	if code, out := sa(second).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 401 {
		t.Fatalf("the token of a member who left, after the take-over = %d %v, want 401", code, out)
	}
	c.press(account, "New token")
	c.press("dialog[open]", "Mint token")
	c.waitFor("the owner's token", fmt.Sprintf(`(t => t?.startsWith("cps_") && t !== %q)(document.querySelector("[data-testid=token]")?.innerText)`, second))
	second = eval[string](c, `document.querySelector("[data-testid=token]").innerText`)
	c.press("", "Done")
	if code, out := sa(second).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 200 {
		t.Fatalf("the owner's token of an account taken over = %d %v, want 200", code, out)
	}

	// The owner deletes the account: its tokens stop working.
	c.press(account, "Delete")
	c.waitFor("the delete dialog", `document.querySelector("dialog[open]")?.innerText.includes("Delete deployer?")`)
	c.press("dialog[open]", "Delete")
	c.waitText("deployer was deleted.")
	c.waitFor("the account gone", fmt.Sprintf(`document.querySelector(%q) === null`, account))
	if code, out := sa(second).do("GET", "/organizations/"+owner.org+"/tenants", nil); code != 401 {
		t.Fatalf("a deleted account's token = %d %v, want 401", code, out)
	}
}

// TestAPersonResetsAForgottenPasswordFromTheMail: on the sign-in page a
// person follows "Forgot your password?", asks for a link, opens the mail's
// link, sets a new password and signs in with it; the session they had
// elsewhere has ended.
func TestAPersonResetsAForgottenPasswordFromTheMail(t *testing.T) {
	t.Parallel()
	env := devEnv(t)
	p := startDev(t, env)
	origin := "http://" + p.api
	elsewhere := signInDev(t, p.api)
	c := openConsole(t, origin)

	c.navigate("/sign-in")
	c.waitText("Sign in to IntelliAuth")
	c.press("main", "Forgot your password?")
	c.waitPath(`^/password-reset$`)
	c.waitText("Forgot your password?")
	c.accessible("password-reset-request")
	c.fill(`input[name=email]`, devOwnerEmail)
	c.press("form", "Mail me a link")
	c.waitFor("the same answer for any email", `document.querySelector("[data-testid=reset-sent]")?.innerText.includes("If an account has this email")`)
	c.screenshot("password-reset-request")

	link := mailLink(t, lookup(env, "CP_DATA_DIR"), devOwnerEmail, "/password-reset")
	if !strings.HasPrefix(link, p.console()+"/password-reset#token=") {
		t.Fatalf("the mail links to %s, not to this console's reset page", link)
	}
	c.navigate(strings.TrimPrefix(link, p.console()))
	c.waitText("Set a new password")
	if eval[string](c, `location.hash`) != "" {
		t.Fatal("the reset's secret stays in the address bar")
	}
	c.accessible("password-reset-set")
	c.screenshot("password-reset-set")
	const newPassword = "a new and longer password"
	c.fill(`input[name=password]`, newPassword)
	c.press("form", "Set the password")
	c.waitPath(`^/sign-in$`)
	c.waitFor("the notice", `document.querySelector("[data-testid=notice]")?.innerText.includes("every session you had has ended")`)
	c.signIn(devOwnerEmail, newPassword)
	c.waitPath(`^/orgs/`)

	if code, _ := elsewhere.do("GET", "/organizations", nil); code != 401 {
		t.Fatalf("the session from before the reset answered %d", code)
	}
}

// TestAPersonEndsASessionTheyDoNotRecogniseFromTheirAccountPage: signed in
// in the console and elsewhere, a person opens their account from the
// header, sees both sessions with where they came from, and ends the
// other one.
func TestAPersonEndsASessionTheyDoNotRecogniseFromTheirAccountPage(t *testing.T) {
	t.Parallel()
	p := startDev(t, devEnv(t))
	origin := "http://" + p.api
	elsewhere := signInDev(t, p.api)
	c := openConsole(t, origin)
	c.navigate("/sign-in")
	c.signIn(devOwnerEmail, devOwnerPassword)
	c.waitPath(`^/orgs/`)
	c.press("header", devOwnerEmail)
	c.waitPath(`^/account$`)
	c.waitFor("two sessions", `document.querySelectorAll("[data-testid=session]").length === 2`)
	c.accessible("account")
	c.screenshot("account-sessions")
	c.press(`[data-testid=session][data-current=false]`, "End")
	c.waitFor("one session left", `document.querySelectorAll("[data-testid=session]").length === 1 && document.querySelector("[data-testid=session]").dataset.current === "true"`)
	if code, _ := elsewhere.do("GET", "/organizations", nil); code != 401 {
		t.Fatalf("the ended session answered %d", code)
	}
}
