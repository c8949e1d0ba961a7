package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/harness"
)

// envelope is the union of the success and error envelopes of the API.
type envelope struct {
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code        string `json:"code"`
		Message     string `json:"message"`
		FieldErrors []struct {
			Field   string `json:"field"`
			Message string `json:"message"`
		} `json:"field_errors"`
	} `json:"error"`
	Meta struct {
		RequestID string `json:"request_id"`
		Timestamp string `json:"timestamp"`
	} `json:"meta"`
}

func newAPI(t *testing.T) *api.Server {
	h := harness.Get(t)
	return api.New(api.Deps{DB: h.DB, Temporal: h.Temporal, Log: h.Log, Keys: h.Keys})
}

// serve serves srv on a free loopback port until the test ends.
func serve(t testing.TB, srv *api.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String()
}

func call(t *testing.T, srv *api.Server, method, path string, header map[string]string) (*http.Response, envelope, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp := testApp(t, srv, req, 10_000)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var env envelope
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &env); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, path, body)
		}
	}
	return resp, env, body
}

func TestHealthAndReadinessAnswerInTheEnvelope(t *testing.T) {
	srv := newAPI(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, env, body := call(t, srv, "GET", path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s = %d %s", path, resp.StatusCode, body)
		}
		if env.Meta.RequestID == "" || env.Meta.RequestID != resp.Header.Get("X-Request-ID") || env.Meta.Timestamp == "" {
			t.Errorf("%s meta = %+v, header %q", path, env.Meta, resp.Header.Get("X-Request-ID"))
		}
	}
	_, env, _ := call(t, srv, "GET", "/readyz", nil)
	if !strings.Contains(string(env.Data), `"postgres":"ok"`) || !strings.Contains(string(env.Data), `"temporal":"ok"`) {
		t.Errorf("readyz data = %s", env.Data)
	}
}

func TestRequestIDsAreKeptWhenValidAndReplacedOtherwise(t *testing.T) {
	srv := newAPI(t)
	tests := []struct {
		name     string
		incoming string
		keep     bool
	}{
		{"a plain id is kept", "client-req-123", true},
		{"a uuid is kept", "0b7e6a9c-2f43-4c3e-9d0a-7f6e5d4c3b2a", true},
		{"an id with spaces is replaced", "two words", false},
		{"an id with a newline is replaced", "a\nb", false},
		{"an overlong id is replaced", strings.Repeat("x", 129), false},
		{"a missing id is generated", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/healthz", nil)
			req.Header["X-Request-Id"] = []string{tt.incoming}
			resp, err := srv.App().Test(req)
			if err != nil {
				t.Fatal(err)
			}
			got := resp.Header.Get("X-Request-ID")
			if tt.keep && got != tt.incoming {
				t.Fatalf("X-Request-ID = %q, want %q", got, tt.incoming)
			}
			if !tt.keep && (got == tt.incoming || !strings.HasPrefix(got, "req_")) {
				t.Fatalf("X-Request-ID = %q, want a new req_ id", got)
			}
		})
	}
}

func TestUnknownRoutesAndWrongMethodsAnswerInTheErrorEnvelope(t *testing.T) {
	srv := newAPI(t)
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/nope", 404, "NOT_FOUND"},
		{"POST", "/healthz", 405, "METHOD_NOT_ALLOWED"},
	}
	for _, tt := range tests {
		resp, env, body := call(t, srv, tt.method, tt.path, map[string]string{"X-Request-ID": "rid-" + tt.code})
		if resp.StatusCode != tt.status || env.Error == nil || env.Error.Code != tt.code {
			t.Fatalf("%s %s = %d %s", tt.method, tt.path, resp.StatusCode, body)
		}
		if env.Meta.RequestID != "rid-"+tt.code || env.Error.FieldErrors == nil {
			t.Errorf("%s %s: meta %+v, field_errors %v", tt.method, tt.path, env.Meta, env.Error.FieldErrors)
		}
	}
}

func TestMetricsCountRequestsByRouteTemplateAndStatus(t *testing.T) {
	srv := newAPI(t)
	call(t, srv, "GET", "/healthz", nil)
	call(t, srv, "GET", "/no/such/route", nil)
	if resp, _, _ := call(t, srv, "GET", "/metrics", nil); resp.StatusCode != 404 {
		t.Fatalf("/metrics on the public listener = %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text := rec.Body.String()
	for _, want := range []string{
		`controlplane_http_requests_total{method="GET",route="/healthz",status="200"} 1`,
		`controlplane_http_requests_total{method="GET",route="unmatched",status="404"} 2`, // one is /metrics itself
		`controlplane_http_request_duration_seconds_bucket{method="GET",route="/healthz",status="200",le="+Inf"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestMetricsKeepTheirLabelsAfterTheRequestsThatMadeThem sends requests of
// several methods over a real connection, whose buffers the server reuses
// from one request to the next: a label value taken from the request
// without a copy would later read as another request's bytes ("GETT"),
// and the metrics endpoint would fail on the duplicate series.
func TestMetricsKeepTheirLabelsAfterTheRequestsThatMadeThem(t *testing.T) {
	srv := newAPI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	methods := []string{"GET", "POST", "DELETE", "PATCH", "PUT"}
	for i := range 100 {
		r, _ := http.NewRequest(methods[i%len(methods)], "http://"+ln.Addr().String()+"/api/v1/organizations/org_x/tenants", nil)
		resp, err := client.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics = %d:\n%.2000s", rec.Code, rec.Body.String())
	}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if !strings.HasPrefix(line, "controlplane_http_requests_total{") {
			continue
		}
		m := regexp.MustCompile(`method="([^"]*)"`).FindStringSubmatch(line)
		if m == nil || !slices.Contains(append(methods, "HEAD", "OPTIONS"), m[1]) {
			t.Errorf("a series with a method that was never sent: %s", line)
		}
	}
}
