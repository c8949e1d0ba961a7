package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
)

// TestExplorerRendersTheSpecAndLoadsNothingFromAnotherHost loads /api/docs
// in headless Chromium from a real listener: Swagger UI must render every
// operation of /api/v1/openapi.json, "Try it out" must send the bearer token
// entered in "Authorize", and the page must request nothing from another
// host nor break its Content-Security-Policy.
//
// With CP_EXPLORER_SCREENSHOTS set to a directory, the test saves there
// what the browser showed (explorer.png, explorer-try-it-out.png).
func TestExplorerRendersTheSpecAndLoadsNothingFromAnotherHost(t *testing.T) {
	bin, ok := chromiumBinary()
	if !ok {
		t.Skip("no Chromium found (chromium, chromium-browser, google-chrome or google-chrome-stable on the PATH); " +
			"install it to run the explorer's browser test: apt-get install chromium")
	}
	h := harness.Get(t)
	me := addPerson(t, h, newOrg(t, h).ID, domain.RoleViewer)
	srv := api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log})
	origin := "http://" + serve(t, srv)

	ops := specOperations(t, origin+"/api/v1/openapi.json")
	const tenants = "GET /api/v1/organizations/{org_id}/tenants"
	if !slices.Contains(ops, tenants) {
		t.Fatalf("the spec lacks %s; it has %v", tenants, ops)
	}

	var events pageEvents
	browser := startChromium(t, bin, events.record)
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()
	// Injected by the browser, not the page, so the CSP does not stop it.
	recordViolations := `window.__cspViolations = [];
		document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
			e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: recordViolations}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(origin+"/api/docs")); err != nil {
		t.Fatalf("open %s/api/docs: %v", origin, err)
	}

	t.Run("every operation of the spec is rendered", func(t *testing.T) {
		if err := chromedp.Do(ctx, waitFor(`document.querySelector(".opblock, .errors-wrapper")`)); err != nil {
			t.Fatal(err)
		}
		rendered, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll(".opblock")].map(o =>
			o.querySelector(".opblock-summary-method").textContent + " " +
			o.querySelector(".opblock-summary-path").dataset.path)`))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rendered)
		rendered = slices.Compact(rendered) // an operation is shown under each of its tags
		if !slices.Equal(rendered, ops) {
			errs, _ := chromedp.Run(ctx, chromedp.Evaluate[string](
				`[...document.querySelectorAll(".errors-wrapper")].map(e => e.innerText).join("\n")`))
			t.Errorf("rendered operations differ from the spec's:\nrendered %v\nspec     %v\n%s", rendered, ops, errs)
		}
		screenshot(ctx, t, "explorer.png")
	})

	t.Run("try it out sends the bearer token", func(t *testing.T) {
		op := fmt.Sprintf(`[...document.querySelectorAll(".opblock-get")].find(o =>
			o.querySelector(".opblock-summary-path").dataset.path === %q)`, "/api/v1/me")
		// Each step waits for an element, then acts on it as a user would;
		// the token is typed, not set, so that React sees the change.
		steps := []struct{ el, action, typeText string }{
			{`document.querySelector(".auth-wrapper .authorize")`, "click()", ""},
			{`document.querySelector(".auth-container input")`, "focus()", me.Token},
			{`document.querySelector(".auth-container .modal-btn.authorize")`, "click()", ""},
			{`document.querySelector(".auth-container .btn-done")`, "click()", ""},
			{op + `?.querySelector(".opblock-summary-control")`, "click()", ""},
			{op + `?.querySelector(".try-out__btn")`, "click()", ""},
			{op + `?.querySelector(".execute")`, "click()", ""},
			{op + `?.querySelector(".live-responses-table tbody .response-col_status")`, "scrollIntoView()", ""},
		}
		for _, s := range steps {
			if err := chromedp.Do(ctx, waitFor(s.el), chromedp.Evaluate[chromedp.Void](s.el+"."+s.action)); err != nil {
				t.Fatal(err)
			}
			if s.typeText != "" {
				if _, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: s.typeText}); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := chromedp.Run(ctx, chromedp.Evaluate[struct{ Status, Body string }](`(() => { const r = `+op+`.querySelector(".live-responses-table");
			return {status: r.querySelector("tbody .response-col_status").textContent.trim(),
				body: r.querySelector("tbody .response-col_description").innerText}; })()`))
		if err != nil {
			t.Fatal(err)
		}
		screenshot(ctx, t, "explorer-try-it-out.png")
		if got.Status != "200" || !strings.Contains(got.Body, me.Email) {
			t.Errorf("GET /api/v1/me from the page answered %s:\n%s", got.Status, got.Body)
		}
	})

	t.Run("the page requests nothing from another host", func(t *testing.T) {
		requests := events.requestURLs()
		for _, r := range requests {
			u, err := url.Parse(r)
			if err != nil || !(u.Scheme == "data" || u.Scheme == "http" && "http://"+u.Host == origin) {
				t.Errorf("the page requested %s", r)
			}
		}
		if len(requests) < 6 { // page, 2 stylesheets, 2 scripts, spec, icon
			t.Errorf("too few requests seen to be sure: %v", requests)
		}
	})

	t.Run("the page breaks no rule of its CSP and throws nothing", func(t *testing.T) {
		violations, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`window.__cspViolations`))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range violations {
			t.Errorf("CSP violation: %s", v)
		}
		for _, e := range events.uncaught() {
			t.Errorf("uncaught exception: %s", e)
		}
	})
}

// chromiumBinary is the first Chromium or Chrome on the PATH.
func chromiumBinary() (string, bool) {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// startChromium starts a headless browser for the test, closed at its end,
// and returns the context of its one tab; listen sees every event of the
// tab, in order. No host name but 127.0.0.1 resolves in it, so a page that
// tries to reach another host fails instead of reaching it, and the test
// sees the attempt in the Network events. resolve are more rules ("MAP
// name 127.0.0.1"), for a test of a name that resolves to this host. No
// sandbox: CI runs the tests as root, where Chromium's sandbox refuses to
// start.
func startChromium(t testing.TB, bin string, listen func(ev any), resolve ...string) context.Context {
	t.Helper()
	var output bytes.Buffer // read only once the browser has exited
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1600),
		chromedp.Flag("host-resolver-rules", strings.Join(append(resolve, "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"), ", ")),
		chromedp.CombinedOutput(&output))
	// Not the test's context: the browser must outlive it until the cleanup
	// below has closed it.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(listen))
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
		if t.Failed() {
			t.Logf("chromium output:\n%s", lastBytes(output.Bytes(), 4000))
		}
	})
	// The first action starts the browser and binds it to ctx, so it runs
	// with no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// waitFor waits until the JavaScript expression is truthy, or the context
// ends. The value is made a boolean because Poll returns it by value, and an
// element cannot be.
func waitFor(expr string) chromedp.Action[chromedp.Void] {
	poll := chromedp.Poll[bool]("Boolean("+expr+")",
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(0))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := poll(ctx, t)
		return chromedp.Void{}, err
	}
}

// pageEvents records the events of a tab that the test checks at its end.
type pageEvents struct {
	mu         sync.Mutex
	requests   []string
	exceptions []string
}

// record is a chromedp listener: it runs in the tab's event loop, so it
// only appends.
func (e *pageEvents) record(ev any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		e.requests = append(e.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := fmt.Sprintf("%s at %s:%d:%d", d.Text, d.URL, d.LineNumber+1, d.ColumnNumber+1)
		if d.Exception != nil {
			text += ": " + d.Exception.Description
		}
		e.exceptions = append(e.exceptions, text)
	}
}

func (e *pageEvents) requestURLs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

func (e *pageEvents) uncaught() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.exceptions)
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// specOperations fetches the OpenAPI document and lists its operations as
// "METHOD /path", sorted.
func specOperations(t *testing.T, specURL string) []string {
	t.Helper()
	status, body := get(t, specURL)
	if status != 200 {
		t.Fatalf("GET %s = %d %s", specURL, status, body)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &spec); err != nil {
		t.Fatalf("%s: %v", specURL, err)
	}
	var ops []string
	for path, item := range spec.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops
}

// screenshot saves what the page shows into $CP_EXPLORER_SCREENSHOTS, when
// set.
func screenshot(ctx context.Context, t *testing.T, name string) {
	dir := os.Getenv("CP_EXPLORER_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", filepath.Join(dir, name))
}
