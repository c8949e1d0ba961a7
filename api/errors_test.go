package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"

	"github.com/intelliauth/controlplane/internal/domain"
)

// testServer is the API with no database or Temporal: enough for the
// middleware and the error writer.
func testServer(t *testing.T, log io.Writer) *Server {
	t.Helper()
	return New(Deps{Log: zerolog.New(log)})
}

func do(t *testing.T, s *Server, method, path string) (int, errorBody, string) {
	t.Helper()
	resp, err := s.App().Test(httptest.NewRequest(method, path, nil))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	var body errorBody
	_ = json.Unmarshal(b, &body)
	return resp.StatusCode, body, string(b)
}

func TestErrorsBecomeTheEnvelopeWithTheirStatus(t *testing.T) {
	var logs strings.Builder
	s := testServer(t, &logs)
	s.app.Get("/t/panic", func(*fiber.Ctx) error { panic("secret detail: db password is hunter2") })
	s.app.Get("/t/internal", func(*fiber.Ctx) error { return errors.New("pq: relation secret_table does not exist") })
	s.app.Get("/t/conflict", func(*fiber.Ctx) error {
		return domain.Errorf(domain.CodeConflict, "tenant %s is suspended", "tnt_1")
	})
	s.app.Get("/t/invalid", func(*fiber.Ctx) error {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid body", FieldErrors: []domain.FieldError{{Field: "name", Message: "required"}}}
	})
	s.app.Get("/t/wrapped", func(*fiber.Ctx) error {
		return errors.Join(errors.New("context"), domain.Errorf(domain.CodeNotFound, "tenant not found: tnt_2"))
	})

	tests := []struct {
		name, path string
		status     int
		code       domain.Code
		message    string
	}{
		{"a panic is an internal error", "/t/panic", 500, domain.CodeInternal, "internal error"},
		{"a plain error is an internal error", "/t/internal", 500, domain.CodeInternal, "internal error"},
		{"a conflict keeps its message", "/t/conflict", 409, domain.CodeConflict, "tenant tnt_1 is suspended"},
		{"invalid input lists its fields", "/t/invalid", 400, domain.CodeBadRequest, "invalid body"},
		{"a wrapped domain error keeps its code", "/t/wrapped", 404, domain.CodeNotFound, "tenant not found: tnt_2"},
		{"an unknown route is not found", "/t/none", 404, domain.CodeNotFound, "no such route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, raw := do(t, s, "GET", tt.path)
			if status != tt.status || body.Error.Code != tt.code || !strings.HasPrefix(body.Error.Message, tt.message) {
				t.Fatalf("got %d %s", status, raw)
			}
			if body.Meta.RequestID == "" {
				t.Errorf("no request id: %s", raw)
			}
			if strings.Contains(raw, "hunter2") || strings.Contains(raw, "secret_table") {
				t.Errorf("internals leaked: %s", raw)
			}
		})
	}
	if !strings.Contains(logs.String(), "hunter2") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the log line lacks the panic and its stack:\n%s", logs.String())
	}
}

func TestEveryCodeHasItsStatus(t *testing.T) {
	want := map[domain.Code]int{
		domain.CodeBadRequest: 400, domain.CodeUnauthenticated: 401, domain.CodeForbidden: 403,
		domain.CodeNotFound: 404, domain.CodeMethodNotAllowed: 405, domain.CodeConflict: 409,
		domain.CodePayloadTooLarge: 413, domain.CodeUnsupportedMedia: 415,
		domain.CodeIdempotencyKeyReused: 422, domain.CodeRateLimited: 429,
		domain.CodeInternal: 500, domain.CodeUnavailable: 503,
	}
	for code, status := range want {
		if got := statusOf(code); got != status {
			t.Errorf("statusOf(%s) = %d, want %d", code, got, status)
		}
	}
}

func TestEveryRequestLogsOneLineWithItsFields(t *testing.T) {
	var logs strings.Builder
	s := testServer(t, &logs)
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.Header.Set("X-Request-ID", "rid-log-1")
	if _, err := s.App().Test(req); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(logs.String())), &line); err != nil {
		t.Fatalf("not one JSON line: %q", logs.String())
	}
	for k, v := range map[string]any{"method": "GET", "path": "/healthz", "status": float64(200), "request_id": "rid-log-1", "message": "request"} {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["latency"]; !ok {
		t.Error("no latency")
	}
}
