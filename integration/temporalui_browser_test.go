package integration

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// rebindName is the attacker's name in the rebinding test: Chromium
// resolves it to 127.0.0.1, as a DNS-rebinding attacker's name does once
// its page is loaded.
const rebindName = "rebind.attacker.test"

// TestTheDevTemporalUIRefusesARebindingPageAndShowsPayloadsDecoded runs
// `controlplane dev`, creates a tenant through its API, and opens its
// Temporal UI in headless Chromium twice. First as the DNS-rebinding page
// of another site (its name resolves to 127.0.0.1, so the browser takes
// the UI's answers for that site's own): the UI answers 421, and the
// page's script can neither list the sagas nor terminate one. Then at
// the UI's own address, as an operator: the saga's input and memo (the
// member's email), encrypted in Temporal, are shown decoded through the
// codec on the UI's listener.
func TestTheDevTemporalUIRefusesARebindingPageAndShowsPayloadsDecoded(t *testing.T) {
	bin, ok := chromiumBinary()
	if !ok {
		t.Skip("no Chromium found (chromium, chromium-browser, google-chrome or google-chrome-stable on the PATH); " +
			"install it to run the Temporal UI's browser test: apt-get install chromium")
	}
	env := devEnv(t)
	p := startDev(t, env)
	d := signInDev(t, p.api)
	id, wf := d.createTenant("rebinding")
	d.waitState(id, "active")
	_, port, _ := net.SplitHostPort(p.ui)

	var events pageEvents
	browser := startChromium(t, bin, events.record, "MAP "+rebindName+" 127.0.0.1")
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()

	t.Run("a rebinding page gets nothing from the UI", func(t *testing.T) {
		rebound := "http://" + rebindName + ":" + port
		if err := chromedp.Do(ctx, chromedp.Navigate(rebound+"/namespaces/default/workflows")); err != nil {
			t.Fatalf("open %s: %v", rebound, err)
		}
		// The page's own script, same-origin with the rebound name: what an
		// attacker's page runs once its name points at 127.0.0.1.
		attack := fmt.Sprintf(`(async () => {
			const list = await fetch("/api/v1/namespaces/default/workflows?query=");
			const listed = await list.text();
			const term = await fetch("/api/v1/namespaces/default/workflows/%s/terminate",
				{method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({reason: "rebound"})});
			const settings = await fetch("/api/v1/settings");
			return {page: document.body.innerText, list: list.status, listed: listed, terminate: term.status, settings: settings.status};
		})()`, strings.ReplaceAll(wf, "/", "%2F"))
		got, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			Page, Listed              string
			List, Terminate, Settings int
		}](attack, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if got.List != 421 || got.Terminate != 421 || got.Settings != 421 || strings.Contains(got.Listed, wf) {
			t.Errorf("from the rebound origin: list %d, terminate %d, settings %d; want 421 each (listed %.200s)",
				got.List, got.Terminate, got.Settings, got.Listed)
		}
		if !strings.Contains(got.Page, "answers only to") {
			t.Errorf("the rebound page shows %.300q", got.Page)
		}
		if code, out := d.do("GET", "/organizations/"+d.org+"/tenants/"+id, nil); code != 200 || out["data"].(map[string]any)["state"] != "active" {
			t.Errorf("the tenant after the rebinding page: %d %v", code, out)
		}
	})

	t.Run("the operator sees the saga's input and memo decoded", func(t *testing.T) {
		page := "http://" + p.ui + "/namespaces/default/workflows/" + strings.ReplaceAll(wf, "/", "%2F")
		if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
			t.Fatalf("open %s: %v", page, err)
		}
		// The saga's start input carries the tenant's hostname: readable
		// only once the UI has decoded it through the codec.
		hostname := "rebinding-acme."
		if err := chromedp.Do(ctx, waitFor(fmt.Sprintf(`document.body.innerText.includes(%q)`, hostname))); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("the workflow page never showed the decoded input (%v):\n%.2000s", err, text)
		}
		screenshot(ctx, t, "temporal-ui-decoded.png")
		// The memo names the member who asked: the owner's email, decoded.
		memo := `[...document.querySelectorAll("a, button")].find(e => e.innerText.trim() === "Memo")`
		if err := chromedp.Do(ctx, waitFor(memo), chromedp.Evaluate[chromedp.Void](memo+".click()"),
			waitFor(`document.body.innerText.includes("owner@acme.test")`)); err != nil {
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("the memo never showed the member's email decoded (%v):\n%.2000s", err, text)
		}
		screenshot(ctx, t, "temporal-ui-memo-decoded.png")
		decoded := false
		for _, u := range events.requestURLs() {
			decoded = decoded || strings.HasPrefix(u, "http://"+p.ui+"/codec/decode")
		}
		if !decoded {
			t.Errorf("the UI never called the codec at http://%s/codec (%d requests)", p.ui, len(events.requestURLs()))
		}
	})
}
