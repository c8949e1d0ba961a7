package api

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/rs/zerolog"
)

func TestOpenAPIDocumentIsValid31AndCoversEveryRoute(t *testing.T) {
	s := New(Deps{Log: zerolog.New(io.Discard)})
	resp, err := s.App().Test(httptest.NewRequest("GET", "/api/v1/openapi.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	ids := map[string]bool{}
	for _, r := range s.Routes() {
		item := doc.Paths.Value(OpenAPIPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is not in the document", r.Method, r.Path)
			continue
		}
		op := item.GetOperation(r.Method)
		if ids[op.OperationID] {
			t.Errorf("operationId %s twice", op.OperationID)
		}
		ids[op.OperationID] = true
		// A public route takes no token; Stripe's webhook is public and
		// signed, which the document says with its own scheme.
		stripe := op.Security != nil && len(*op.Security) == 1 && (*op.Security)[0]["stripeSignature"] != nil
		if (r.Access == Public) != (op.Security != nil && (len(*op.Security) == 0 || stripe)) || stripe != (r.Path == stripeWebhookPath) {
			t.Errorf("%s %s: security does not match access %s", r.Method, r.Path, r.Access)
		}
	}
	if n := len(doc.Paths.Map()); n == 0 {
		t.Fatal("no paths")
	}
}

func TestOpenAPIGenerationRefusesARouteWithoutDocsAndDocsWithoutARoute(t *testing.T) {
	routes := (&Server{}).Routes()
	if _, _, err := buildOpenAPI(routes, routeDocs()); err != nil {
		t.Fatalf("the real table: %v", err)
	}
	missing := routeDocs()
	delete(missing, "GET /api/v1/me")
	if _, _, err := buildOpenAPI(routes, missing); err == nil || !strings.Contains(err.Error(), "GET /api/v1/me has no entry") {
		t.Errorf("a route without docs: %v", err)
	}
	extra := routeDocs()
	extra["GET /api/v1/nowhere"] = doc{id: "nowhere", summary: "nothing", data: signOutResponse{}}
	if _, _, err := buildOpenAPI(routes, extra); err == nil || !strings.Contains(err.Error(), "GET /api/v1/nowhere") {
		t.Errorf("docs without a route: %v", err)
	}
}
