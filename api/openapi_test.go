package api

import (
	"context"
	"io"
	"net/http/httptest"
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
		item := doc.Paths.Value(openAPIPath(r.Path))
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is not in the document", r.Method, r.Path)
			continue
		}
		op := item.GetOperation(r.Method)
		if ids[op.OperationID] {
			t.Errorf("operationId %s twice", op.OperationID)
		}
		ids[op.OperationID] = true
		if (r.Access == Public) != (op.Security != nil && len(*op.Security) == 0) {
			t.Errorf("%s %s: security does not match access %s", r.Method, r.Path, r.Access)
		}
	}
	if n := len(doc.Paths.Map()); n == 0 {
		t.Fatal("no paths")
	}
}

func TestOpenAPIGenerationRefusesARouteWithoutDocs(t *testing.T) {
	s := New(Deps{Log: zerolog.New(io.Discard)})
	docs := routeDocs()
	if len(docs) != len(s.Routes()) {
		t.Fatalf("%d docs for %d routes", len(docs), len(s.Routes()))
	}
}
