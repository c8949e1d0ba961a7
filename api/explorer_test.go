package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/intelliauth/controlplane/internal/domain"
)

// The policy the page must send, written out here so that loosening it
// takes a change to a test as well.
const wantExplorerCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

func getExplorer(t *testing.T, s *Server, target string) (*http.Response, string) {
	t.Helper()
	resp, err := s.App().Test(httptest.NewRequest("GET", target, nil), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// checkExplorerHeaders checks what every response of the explorer sends.
func checkExplorerHeaders(t *testing.T, what string, resp *http.Response, contentType, cacheControl string) {
	t.Helper()
	for name, want := range map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           cacheControl,
		"Content-Security-Policy": wantExplorerCSP,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("%s: %s = %q, want %q", what, name, got, want)
		}
	}
}

func TestExplorerPageLoadsOnlyItsOwnAssets(t *testing.T) {
	s := testServer(t, io.Discard)
	var (
		// ref finds the URLs of src= and href= attributes, quoted or not.
		ref = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))`)
		// absoluteURL finds any absolute http(s) URL, also outside attributes.
		absoluteURL = regexp.MustCompile(`(?i)https?://`)
		// cssLoad finds what a stylesheet loads: url(…) and @import.
		cssLoad = regexp.MustCompile(`(?i)url\(\s*['"]?([^'")]*)|@import`)
		// tag finds the script and style elements.
		tag = regexp.MustCompile(`(?i)<(?:script|style)\b[^>]*>`)
	)
	resp, page := getExplorer(t, s, "/api/docs")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/docs = %d %s", resp.StatusCode, page)
	}
	checkExplorerHeaders(t, "/api/docs", resp, "text/html; charset=utf-8", "no-cache")
	if !strings.Contains(page, `data-spec-url="/api/v1/openapi.json"`) {
		t.Errorf("the page does not point Swagger UI at /api/v1/openapi.json:\n%s", page)
	}
	for _, el := range tag.FindAllString(page, -1) {
		if !strings.Contains(el, " src=") {
			t.Errorf("the page has an inline script or style: %s", el)
		}
	}

	wantType := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}
	var assets []string
	for _, m := range ref.FindAllStringSubmatch(page, -1) {
		target := m[1] + m[2] + m[3]
		u, err := url.Parse(target)
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") {
			t.Errorf("%q is not a path on this origin", target)
			continue
		}
		if strings.HasPrefix(u.Path, "/api/docs/") {
			assets = append(assets, u.Path)
		}
	}
	if len(assets) != 5 {
		t.Errorf("want the bundle, the two stylesheets, the init script and the icon; the page loads %v", assets)
	}
	if absoluteURL.MatchString(page) {
		t.Errorf("the page names an absolute URL:\n%s", page)
	}

	for _, a := range assets {
		t.Run(a, func(t *testing.T) {
			resp, body := getExplorer(t, s, a)
			if resp.StatusCode != 200 || len(body) == 0 {
				t.Fatalf("GET %s = %d, %d bytes", a, resp.StatusCode, len(body))
			}
			checkExplorerHeaders(t, a, resp, wantType[path.Ext(a)], "public, max-age=31536000, immutable")
			vendored := strings.Contains(a, "/swagger-ui/")
			if !vendored && absoluteURL.MatchString(body) {
				t.Errorf("%s names an absolute URL", a)
			}
			if path.Ext(a) == ".css" {
				for _, m := range cssLoad.FindAllStringSubmatch(body, -1) {
					if !strings.HasPrefix(m[1], "data:") {
						t.Errorf("%s loads %q", a, m[0])
					}
				}
			}
		})
	}
}

func TestExplorerUnknownPathsAreNotFoundInTheEnvelope(t *testing.T) {
	s := testServer(t, io.Discard)
	a := explorer().assets[0]
	base := strings.TrimSuffix(a.path, "/"+a.name) // /api/docs/<hash>
	for _, p := range []string{
		"/api/docs/nope.js",
		base + "/nope.js",
		base + "/swagger-ui/swagger-ui-bundle.js.map",
		"/api/docs/0000000000000000/" + a.name, // a stale hash
		base + "/index.html",
	} {
		resp, raw := getExplorer(t, s, p)
		var body errorBody
		_ = json.Unmarshal([]byte(raw), &body)
		if resp.StatusCode != 404 || body.Error.Code != domain.CodeNotFound || body.Meta.RequestID == "" {
			t.Errorf("GET %s = %d %s", p, resp.StatusCode, raw)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
	}
}
