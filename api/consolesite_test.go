package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

// consoleContract is the copy of the OpenAPI document the console's API
// client is generated from (console/openapi.json).
var consoleContract = filepath.Join("..", "console", "openapi.json")

// TestTheConsoleIsBuiltAgainstTheServedContract keeps the console's copy
// of the contract equal to the document the API serves, so a change of the
// contract regenerates the console's types and a console that does not
// follow it fails its build. CP_UPDATE_CONSOLE_CONTRACT=1 rewrites the copy.
func TestTheConsoleIsBuiltAgainstTheServedContract(t *testing.T) {
	var doc bytes.Buffer
	if err := json.Indent(&doc, openAPIDocument(), "", "  "); err != nil {
		t.Fatal(err)
	}
	doc.WriteByte('\n')
	if os.Getenv("CP_UPDATE_CONSOLE_CONTRACT") == "1" {
		if err := os.WriteFile(consoleContract, doc.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(consoleContract)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, doc.Bytes()) {
		t.Fatalf("%s is not the served OpenAPI document: run CP_UPDATE_CONSOLE_CONTRACT=1 go test ./api -run TestTheConsoleIsBuiltAgainstTheServedContract, then npm run build in console/", consoleContract)
	}
}

// The policy the console's responses must send, written out here so that
// loosening it takes a change to a test as well.
const wantConsoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; " +
	"connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

func TestTheConsoleIsServedAtItsPagesWithAStrictPolicyAndNothingElseIsTakenForIt(t *testing.T) {
	s := testServer(t, io.Discard)
	ref := regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)

	var page string
	for _, p := range []string{"/", "/sign-in", "/invitations/accept", "/orgs/org_x/tenants", "/orgs/org_x/tenants/ten_y", "/orgs/org_x/audit"} {
		resp, body := getExplorer(t, s, p)
		if resp.StatusCode != 200 || !strings.Contains(body, `<div id="app">`) {
			t.Fatalf("GET %s = %d %.200s", p, resp.StatusCode, body)
		}
		checkConsoleHeaders(t, p, resp, "text/html; charset=utf-8", "no-cache")
		page = body
	}
	if strings.Contains(page, "<script>") || regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]+</script>`).MatchString(page) || strings.Contains(page, "style=") {
		t.Fatalf("the page has inline script or style:\n%s", page)
	}
	var assets int
	for _, m := range ref.FindAllStringSubmatch(page, -1) {
		u := m[1]
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Fatalf("the page loads %s, not a path of this origin", u)
		}
		resp, body := getExplorer(t, s, u)
		if resp.StatusCode != 200 || body == "" {
			t.Fatalf("GET %s = %d", u, resp.StatusCode)
		}
		if strings.HasPrefix(u, "/assets/") {
			assets++
			checkConsoleHeaders(t, u, resp, map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}[path.Ext(u)],
				"public, max-age=31536000, immutable")
			if regexp.MustCompile(`(?i)https?://[a-z]`).MatchString(strings.ReplaceAll(body, "http://www.w3.org", "")) && path.Ext(u) == ".css" {
				t.Errorf("%s refers to another host", u)
			}
		}
	}
	if assets < 2 {
		t.Fatalf("the page loads %d hashed assets; want its script and its style sheet", assets)
	}

	// Paths that are not the console's stay unknown routes, in the API's
	// error envelope.
	for _, p := range []string{"/orgsx", "/assets/nothing.js", "/sign-in/x", "/index.html", "/api/v1/nothing"} {
		resp, body := getExplorer(t, s, p)
		var env struct {
			Error struct{ Code domain.Code } `json:"error"`
		}
		if resp.StatusCode != 404 || json.Unmarshal([]byte(body), &env) != nil || env.Error.Code != domain.CodeNotFound {
			t.Errorf("GET %s = %d %.120s, want 404 NOT_FOUND", p, resp.StatusCode, body)
		}
	}
}

func checkConsoleHeaders(t *testing.T, what string, resp *http.Response, contentType, cacheControl string) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           cacheControl,
		"Content-Security-Policy": wantConsoleCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
}

// firstLoadBudget is what the console's first load may weigh, gzipped: its
// script and its style sheet.
const firstLoadBudget = 150 << 10

func TestTheConsolesFirstLoadFitsItsBudget(t *testing.T) {
	n, err := consoleFirstLoad()
	if err != nil {
		t.Fatal(err)
	}
	if n > firstLoadBudget {
		t.Fatalf("the console's first load is %d bytes gzipped, over its budget of %d", n, firstLoadBudget)
	}
	t.Logf("first load: %d bytes gzipped", n)
}

// BenchmarkConsoleFirstLoad reports the gzipped bytes of the console's
// first load (first-load-gzip-B), the figure docs/performance.md gives.
func BenchmarkConsoleFirstLoad(b *testing.B) {
	var n int
	for b.Loop() {
		var err error
		if n, err = consoleFirstLoad(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n), "first-load-gzip-B")
}

// consoleFirstLoad is the gzipped size of the page and every file it
// loads, as the server sends them to a browser that accepts gzip.
func consoleFirstLoad() (int, error) {
	site := builtConsole()
	page, err := gzipped(site.page)
	if err != nil {
		return 0, err
	}
	total := len(page)
	for _, m := range regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"(/assets/[^"]*)"`).FindAllSubmatch(site.page, -1) {
		for _, f := range site.files {
			if f.path == string(m[1]) {
				total += len(f.gzipped)
			}
		}
	}
	return total, nil
}

func TestTheConsolesFilesAreSentGzippedToBrowsersThatAcceptIt(t *testing.T) {
	s := testServer(t, io.Discard)
	f := builtConsole().files[0]
	req := httptest.NewRequest("GET", f.path, nil)
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	resp, err := s.App().Test(req, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("GET %s: Content-Encoding %q, Vary %q", f.path, resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(body, f.body) {
		t.Fatalf("the gzipped answer is not the file (%v)", err)
	}
}
