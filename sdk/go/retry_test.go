package intelliauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

// These tests are of the client's transport alone (retries, idempotency
// keys, headers), against a server that answers what each test needs; the
// real API's answers are in the other tests.

type seen struct {
	method, key, auth, agent, body string
	at                             time.Time
}

// script serves answers in turn, recording each request.
func script(t *testing.T, answers ...func(w http.ResponseWriter)) (*httptest.Server, func() []seen) {
	t.Helper()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(got)
		got = append(got, seen{r.Method, r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization"), r.Header.Get("User-Agent"), string(body), time.Now()})
		mu.Unlock()
		if n >= len(answers) {
			t.Errorf("request %d, after the script's %d answers", n+1, len(answers))
			w.WriteHeader(http.StatusTeapot)
			return
		}
		answers[n](w)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen { mu.Lock(); defer mu.Unlock(); return append([]seen(nil), got...) }
}

func answer(status int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-ID", "req_1")
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		if status < 300 {
			_, _ = io.WriteString(w, `{"data":{"tenant":{"id":"tnt_1","name":"a"},"operation":{"id":"op_1"}},"meta":{"request_id":"req_1"}}`)
			return
		}
		code := map[int]string{400: "BAD_REQUEST", 429: "RATE_LIMITED", 503: "UNAVAILABLE", 502: "", 504: ""}[status]
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": "no", "field_errors": []any{}}, "meta": map[string]any{"request_id": "req_1"}})
	}
}

// answerAfterDate answers with a Retry-After date d ahead of the answer.
func answerAfterDate(status int, d time.Duration) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { answer(status, time.Now().Add(d).UTC().Format(http.TimeFormat))(w) }
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func createIn(t *testing.T, c *intelliauth.Client, editors ...intelliauth.RequestEditorFn) (intelliauth.LifecycleResult, error) {
	return intelliauth.Data[intelliauth.LifecycleResult](c.CreateTenant(context.Background(), "org_1", nil, intelliauth.CreateTenantJSONRequestBody{Name: "a", Environment: "ci"}, editors...))
}

func TestAMutationIsRetriedWithItsBodyAndIdempotencyKeyAfterRetryAfter(t *testing.T) {
	srv, got := script(t, answer(503, "1"), hangUp, answerAfterDate(429, 3*time.Second), answer(202, ""))
	c, err := intelliauth.New(srv.URL, intelliauth.WithToken("cps_secret"), intelliauth.WithUserAgent("sdk-test/1"))
	if err != nil {
		t.Fatal(err)
	}
	created, err := createIn(t, c)
	if err != nil || created.Tenant.Id != "tnt_1" {
		t.Fatalf("created %+v, %v", created, err)
	}
	reqs := got()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want 4", len(reqs))
	}
	for _, r := range reqs {
		if r.method != http.MethodPost || r.key == "" || r.key != reqs[0].key || r.body != reqs[0].body || !strings.Contains(r.body, `"name":"a"`) ||
			r.auth != "Bearer cps_secret" || r.agent != "sdk-test/1" {
			t.Fatalf("the attempts differ or lack a header: %+v", reqs)
		}
	}
	if d := reqs[1].at.Sub(reqs[0].at); d < 900*time.Millisecond {
		t.Errorf("retried %v after Retry-After: 1", d)
	}
	if d := reqs[3].at.Sub(reqs[2].at); d < 1500*time.Millisecond {
		t.Errorf("retried %v after a Retry-After date 3 s ahead (to the second)", d)
	}

	// A call's own key is sent, on every attempt.
	srv, got = script(t, answer(502, "0"), answer(202, ""))
	c, _ = intelliauth.New(srv.URL)
	if _, err := createIn(t, c, intelliauth.WithIdempotencyKey("my-key")); err != nil {
		t.Fatal(err)
	}
	if reqs := got(); len(reqs) != 2 || reqs[0].key != "my-key" || reqs[1].key != "my-key" || reqs[0].agent != intelliauth.DefaultUserAgent || reqs[0].auth != "" {
		t.Fatalf("%+v", reqs)
	}
}

func TestAnswersThatAreNotTransientAreNotRetried(t *testing.T) {
	srv, got := script(t, answer(400, ""))
	c, _ := intelliauth.New(srv.URL)
	_, err := createIn(t, c)
	var apiErr *intelliauth.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Code != "BAD_REQUEST" || apiErr.RequestID != "req_1" {
		t.Fatalf("%v", err)
	}
	if n := len(got()); n != 1 {
		t.Fatalf("a 400 was sent %d times", n)
	}

	// A GET carries no Idempotency-Key.
	srv, got = script(t, answer(504, "0"), answer(200, ""))
	c, _ = intelliauth.New(srv.URL + "/api/v1/")
	if _, err := intelliauth.Data[json.RawMessage](c.GetTenant(context.Background(), "org_1", "tnt_1")); err != nil {
		t.Fatal(err)
	}
	if reqs := got(); len(reqs) != 2 || reqs[0].key != "" || reqs[0].method != http.MethodGet {
		t.Fatalf("%+v", reqs)
	}
}

func TestRetriesStopAtTheirBoundsAndTheContext(t *testing.T) {
	// WithRetry caps the wait a Retry-After asks for, and the attempts; the
	// last answer is the error, with its Retry-After.
	srv, got := script(t, answer(429, "60"), answer(429, "60"))
	c, _ := intelliauth.New(srv.URL, intelliauth.WithRetry(2, 50*time.Millisecond))
	start := time.Now()
	_, err := createIn(t, c)
	var apiErr *intelliauth.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.RetryAfter != time.Minute || len(got()) != 2 || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %d attempts in %v", err, len(got()), time.Since(start))
	}

	// A context that ends during a wait ends the call.
	srv, _ = script(t, answer(503, "30"))
	c, _ = intelliauth.New(srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = intelliauth.Data[intelliauth.LifecycleResult](c.CreateTenant(ctx, "org_1", nil, intelliauth.CreateTenantJSONRequestBody{Name: "a", Environment: "ci"}))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}

// A stuck saga's operation is an *OperationError naming its step and the
// step's last error, as the API lists it.
func TestAStuckOperationIsAnOperationErrorNamingItsStep(t *testing.T) {
	op := func(status string) func(w http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"data":[{"id":"op_2","kind":"suspend","status":"running","steps":[]},{"id":"op_1","kind":"provision","status":"`+status+`","tenant_id":"tnt_1","steps":[`+
				`{"name":"allocate","status":"done","attempts":1},{"name":"route","status":"failed","attempts":5,"last_error":"dns: zone refused"},{"name":"notify","status":"pending","attempts":0}]}],`+
				`"meta":{"request_id":"r","cursor":"","has_more":false}}`)
		}
	}
	srv, got := script(t, op("running"), op("stuck"))
	c, _ := intelliauth.New(srv.URL)
	_, err := c.WaitForOperation(context.Background(), "org_1", "tnt_1", "op_1")
	var opErr *intelliauth.OperationError
	if !errors.As(err, &opErr) || opErr.Step != "route" || opErr.Reason != "dns: zone refused" || opErr.Operation.Id != "op_1" || len(got()) != 2 {
		t.Fatalf("%v (%+v)", err, opErr)
	}
	t.Log(err)
}
