package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	b := startChromium(t, bin)
	page, err := b.newPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Injected by the browser, not the page, so the CSP does not stop it.
	recordViolations := `window.__cspViolations = [];
		document.addEventListener("securitypolicyviolation", e => window.__cspViolations.push(
			e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`
	if err := b.call(ctx, page, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": recordViolations}, nil); err != nil {
		t.Fatal(err)
	}
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := b.call(ctx, page, "Page.navigate", map[string]any{"url": origin + "/api/docs"}, &nav); err != nil || nav.ErrorText != "" {
		t.Fatalf("open %s/api/docs: %v %s", origin, err, nav.ErrorText)
	}

	t.Run("every operation of the spec is rendered", func(t *testing.T) {
		if err := b.waitFor(ctx, page, `document.querySelector(".opblock, .errors-wrapper")`); err != nil {
			t.Fatal(err)
		}
		var rendered []string
		err := b.eval(ctx, page, `[...document.querySelectorAll(".opblock")].map(o =>
			o.querySelector(".opblock-summary-method").textContent + " " +
			o.querySelector(".opblock-summary-path").dataset.path)`, &rendered)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(rendered)
		rendered = slices.Compact(rendered) // an operation is shown under each of its tags
		if !slices.Equal(rendered, ops) {
			var errs string
			_ = b.eval(ctx, page, `[...document.querySelectorAll(".errors-wrapper")].map(e => e.innerText).join("\n")`, &errs)
			t.Errorf("rendered operations differ from the spec's:\nrendered %v\nspec     %v\n%s", rendered, ops, errs)
		}
		screenshot(ctx, t, b, page, "explorer.png")
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
			if err := b.waitFor(ctx, page, s.el); err != nil {
				t.Fatal(err)
			}
			if err := b.eval(ctx, page, s.el+"."+s.action, nil); err != nil {
				t.Fatal(err)
			}
			if s.typeText != "" {
				if err := b.call(ctx, page, "Input.insertText", map[string]any{"text": s.typeText}, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		var got struct{ Status, Body string }
		err := b.eval(ctx, page, `(() => { const r = `+op+`.querySelector(".live-responses-table");
			return {status: r.querySelector("tbody .response-col_status").textContent.trim(),
				body: r.querySelector("tbody .response-col_description").innerText}; })()`, &got)
		if err != nil {
			t.Fatal(err)
		}
		screenshot(ctx, t, b, page, "explorer-try-it-out.png")
		if got.Status != "200" || !strings.Contains(got.Body, me.Email) {
			t.Errorf("GET /api/v1/me from the page answered %s:\n%s", got.Status, got.Body)
		}
	})

	t.Run("the page requests nothing from another host", func(t *testing.T) {
		var requests []string
		for _, raw := range b.eventsOf("Network.requestWillBeSent") {
			var e struct {
				Request struct {
					URL string `json:"url"`
				} `json:"request"`
			}
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			requests = append(requests, e.Request.URL)
			u, err := url.Parse(e.Request.URL)
			if err != nil || !(u.Scheme == "data" || u.Scheme == "http" && "http://"+u.Host == origin) {
				t.Errorf("the page requested %s", e.Request.URL)
			}
		}
		if len(requests) < 6 { // page, 2 stylesheets, 2 scripts, spec, icon
			t.Errorf("too few requests seen to be sure: %v", requests)
		}
	})

	t.Run("the page breaks no rule of its CSP and throws nothing", func(t *testing.T) {
		var violations []string
		if err := b.eval(ctx, page, `window.__cspViolations`, &violations); err != nil {
			t.Fatal(err)
		}
		for _, v := range violations {
			t.Errorf("CSP violation: %s", v)
		}
		for _, raw := range b.eventsOf("Runtime.exceptionThrown") {
			t.Errorf("uncaught exception: %s", raw)
		}
	})
}

// specOperations fetches the OpenAPI document and lists its operations as
// "METHOD /path", sorted.
func specOperations(t *testing.T, specURL string) []string {
	t.Helper()
	resp, err := http.Get(specURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", specURL, resp.StatusCode, body)
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &spec); err != nil {
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
func screenshot(ctx context.Context, t *testing.T, b *chromium, page, name string) {
	dir := os.Getenv("CP_EXPLORER_SCREENSHOTS")
	if dir == "" {
		return
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, page, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), png, 0o644)
	}
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s", filepath.Join(dir, name))
}
