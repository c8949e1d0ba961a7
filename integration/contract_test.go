package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/intelliauth/controlplane/api"
)

// contract validates every answer the suite gets from the API against the
// OpenAPI document the API serves, so a field that drifts from the document
// fails the test that saw it; at the end of a whole run, an operation no
// test called fails the run (harness.Main's check).
type contract struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error

	mu   sync.Mutex
	seen map[string]int // operationId → answers validated
}

var apiContract = &contract{seen: map[string]int{}}

func init() {
	openapi3filter.RegisterBodyDecoder("application/x-ndjson", decodeNDJSON)
}

// decodeNDJSON reads an NDJSON body as the array its schema describes.
func decodeNDJSON(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	var out []any
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("line %d: %w", len(out)+1, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// load reads and validates the document served by srv, once.
func (c *contract) load(srv *api.Server) error {
	c.once.Do(func() {
		resp, err := srv.App().Test(httptest.NewRequest("GET", "/api/v1/openapi.json", nil), 10_000)
		if err != nil {
			c.err = err
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			c.err = fmt.Errorf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, raw)
			return
		}
		l := openapi3.NewLoader()
		if c.doc, c.err = l.LoadFromData(raw); c.err != nil {
			return
		}
		if c.err = c.doc.Validate(l.Context); c.err != nil {
			return
		}
		c.router, c.err = legacy.NewRouter(c.doc)
	})
	return c.err
}

// check validates one exchange: the request against its operation, which
// must accept what the server accepted and refuse what the server refused
// as invalid (checkRequest), and the answer against the operation when the
// request is a documented route, else against the error envelope.
func (c *contract) check(t testing.TB, srv *api.Server, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	if err := c.load(srv); err != nil {
		t.Fatalf("contract: %v", err)
	}
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if !strings.HasPrefix(req.URL.Path, "/api/v1/") && status < 400 {
			return // operator endpoints (health, metrics, explorer) are outside the contract
		}
		if status < 400 {
			t.Errorf("contract: %s %s answered %d but is no documented route", req.Method, req.URL.Path, status)
			return
		}
		c.checkError(t, req, header, body)
		return
	}
	c.checkRequest(t, req, reqBody, params, route, status, body)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("contract: %s %s → %d does not match operation %s: %v\nbody: %.600s", req.Method, req.URL.Path, status, route.Operation.OperationID, err, body)
		return
	}
	c.mu.Lock()
	c.seen[route.Operation.OperationID]++
	c.mu.Unlock()
}

// checkRequest validates a request the suite sent against its operation in
// the document. A request the server took (2xx) must be one the document
// takes, or a client generated from it could not send it; a request the
// server refused as invalid (400, 415) must be one the document refuses,
// unless every field it was refused for is a rule no schema can state
// (beyondSchema).
func (c *contract) checkRequest(t testing.TB, req *http.Request, reqBody []byte, params map[string]string, route *routers.Route, status int, body []byte) {
	t.Helper()
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	err := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
	op := route.Operation.OperationID
	switch {
	case status < 300 && err != nil:
		t.Errorf("contract: the server took %s %s (%d) but the document refuses it: %v\nrequest body: %.300s", req.Method, req.URL.RequestURI(), status, err, reqBody)
	case (status == 400 || status == 415) && err == nil:
		var e struct {
			Error struct {
				Message     string                            `json:"message"`
				FieldErrors []struct{ Field, Message string } `json:"field_errors"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		for _, f := range e.Error.FieldErrors {
			if beyondSchema(op, f.Field, f.Message) {
				continue
			}
			t.Errorf("contract: the server refused %s %s (%d, %s: %s) but the document takes it; say the bound in the request type's jsonschema tag\nrequest body: %.300s", req.Method, req.URL.RequestURI(), status, f.Field, f.Message, reqBody)
			return
		}
		if len(e.Error.FieldErrors) == 0 && !beyondSchema(op, "", e.Error.Message) {
			t.Errorf("contract: the server refused %s %s (%d: %s) but the document takes it\nrequest body: %.300s", req.Method, req.URL.RequestURI(), status, e.Error.Message, reqBody)
		}
	}
}

// beyondSchemaRules are the refusals of valid-looking requests that depend
// on more than the request's shape, with why no schema says them: by
// operation and field ("*": any), and a word of the message.
var beyondSchemaRules = []struct{ op, field, says, why string }{
	{"*", "*", "more than once", "a key repeated in one object: JSON Schema sees the parsed object, where the last one won"},
	{"*", "*", "NUL", "a NUL character: what Postgres cannot store, in any field"},
	{"*", "name", "", "a person's or a thing's display name: one script, no invisible or look-alike characters (domain.DisplayName)"},
	{"*", "organization.name", "", "the same, for the organisation of a sign-up"},
	{"*", "email", "", "a mailbox net/mail reads as exactly this address, in ASCII"},
	{"*", "endpoint", "", "an https address that resolves outside private, loopback and metadata ranges, checked at each connection"},
	{"*", "actions", "", "an audit action or family that exists in this release"},
	{"*", "token_expires_in", "", "at most the installation's CP_SERVICE_TOKEN_MAX_TTL"},
	{"*", "expires_in", "", "at most the installation's CP_SERVICE_TOKEN_MAX_TTL or CP_TENANT_MAX_LIFETIME"},
	{"*", "credential", "", "whether a stream's kind takes a credential, and a passkey assertion's content"},
	{"*", "format", "", "whether a stream's kind takes a format"},
	{"*", "from_event_id", "", "an event id of the organisation"},
	{"*", "cursor", "", "a cursor this server signed"},
	{"*", "from", "", "a day range of at most 366 days, from before to, not after today"},
	{"*", "to", "", "not after today"},
	{"*", "since", "", "an RFC 3339 time Go reads"},
	{"*", "until", "", "an RFC 3339 time Go reads"},
	{"*", "code", "", "a TOTP or recovery code that is right now"},
	{"*", "challenge", "", "a challenge that is the caller's, unused and unexpired"},
	{"deleteOrganization", "confirm", "", "the organisation's own slug"},
	{"*", "region", "", "one of the installation's regions (CP_REGIONS)"},
	{"*", "default_region", "", "one of the installation's regions (CP_REGIONS)"},
	{"*", "regions", "", "regions of the installation (CP_REGIONS)"},
	{"startCheckout", "plan", "", "a plan this installation sells (CP_STRIPE_PRICES)"},
	{"stripeWebhook", "", "Stripe-Signature", "Stripe's signature of the body under the webhook's secret, and its time"},
	{"*", "", "JSON", "the body's syntax and media type, which the document's parser reports as it reads"},
}

func beyondSchema(op, field, msg string) bool {
	for _, r := range beyondSchemaRules {
		if (r.op == "*" || r.op == op) && (r.field == "*" || r.field == field) && strings.Contains(msg, r.says) {
			return true
		}
	}
	return false
}

func (c *contract) checkError(t testing.TB, req *http.Request, header http.Header, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("contract: %s %s: error body is not JSON: %.300s", req.Method, req.URL.Path, body)
		return
	}
	if err := c.doc.Components.Schemas["Error"].Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("contract: %s %s: error body does not match Error: %v\nbody: %.300s", req.Method, req.URL.Path, err, body)
	}
	if header.Get("X-Request-ID") == "" {
		t.Errorf("contract: %s %s: no X-Request-ID", req.Method, req.URL.Path)
	}
}

// coverage fails a whole run in which some documented operation was never
// called; a run of chosen tests (-run) is not checked.
func (c *contract) coverage() error {
	if f := flag.Lookup("test.run"); f == nil || f.Value.String() != "" || c.doc == nil {
		return nil
	}
	return uncovered(c.operations(), func(id string) bool { return c.seen[id] > 0 })
}

// operations are the ids of the document's operations (none before it is
// loaded).
func (c *contract) operations() []string {
	var ids []string
	if c.doc != nil {
		for _, item := range c.doc.Paths.Map() {
			for _, op := range item.Operations() {
				ids = append(ids, op.OperationID)
			}
		}
	}
	return ids
}

// uncovered fails when some documented operation was not seen validated.
func uncovered(documented []string, seen func(id string) bool) error {
	var missing []string
	for _, id := range documented {
		if !seen(id) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return errors.New("contract: no test validated an answer of " + strings.Join(missing, ", "))
	}
	return nil
}

// testApp sends r to the server in process and validates the answer
// against the contract; the returned response's body can still be read.
func testApp(t testing.TB, srv *api.Server, r *http.Request, timeoutMS int) *http.Response {
	t.Helper()
	// The validator needs the request as sent; Fiber's Test consumes it.
	check := r.Clone(context.Background())
	var reqBody []byte
	if r.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(r.Body); err != nil {
			t.Fatal(err)
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := srv.App().Test(r, timeoutMS)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	apiContract.check(t, srv, check, reqBody, resp.StatusCode, resp.Header, body)
	return resp
}

func TestOpenAPIDocumentIsValidAndListsExactlyTheServedRoutes(t *testing.T) {
	srv := newAPI(t)
	if resp := testApp(t, srv, httptest.NewRequest("GET", "/api/v1/openapi.json", nil), 10_000); resp.StatusCode != 200 {
		t.Fatalf("GET /api/v1/openapi.json: %d", resp.StatusCode)
	}
	doc := apiContract.doc
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			documented[method+" "+path] = true
			if op.OperationID == "" || op.Summary == "" {
				t.Errorf("%s %s: no operationId or summary", method, path)
			}
		}
	}
	// Operator endpoints and the explorer are outside the API's contract.
	outside := func(path string) bool {
		return !strings.HasPrefix(path, "/api/v1/")
	}
	served := map[string]bool{}
	for _, r := range srv.App().GetRoutes(true) {
		if r.Method == "HEAD" || outside(r.Path) {
			continue
		}
		served[r.Method+" "+api.OpenAPIPath(r.Path)] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not documented: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("documented but not served: %s", k)
		}
	}
	if len(served) != len(srv.Routes()) {
		t.Errorf("%d routes served under /api/v1, %d in the route table", len(served), len(srv.Routes()))
	}
}
