package api

import (
	"encoding/json"
	"io"
	"maps"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
)

// TestEveryBoundTheDocumentStatesTheServerEnforces breaks, one at a time,
// each bound the document states for each request body (a length, a
// pattern, an enumeration, a minimum, a list's size, a required field) and
// requires the server to refuse the body for that very field: the bounds a
// client reads are the bounds the server holds it to.
func TestEveryBoundTheDocumentStatesTheServerEnforces(t *testing.T) {
	openAPIDocument()
	s := New(Deps{Log: zerolog.New(io.Discard)})
	bodies := openAPIOnce.schemas.bodies
	if len(bodies) < 25 {
		t.Fatalf("%d request bodies in the document; expected every route's", len(bodies))
	}
	for typ := range bodies {
		s.app.Post("/t/"+typ.Name(), func(c *fiber.Ctx) error {
			return decode(c, reflect.New(typ).Interface().(validator))
		})
	}
	checked := 0
	for typ, schema := range bodies {
		for _, name := range slices.Sorted(maps.Keys(schema.Properties)) {
			prop := schema.Properties[name].Value
			// Each value of an enumeration is taken.
			for _, e := range resolve(prop).Enum {
				body, _ := json.Marshal(map[string]any{name: e})
				if slices.Contains(refusedFields(t, s, typ.Name(), body), name) {
					t.Errorf("%s.%s: the server refused %s, one of the document's values", typ.Name(), name, body)
				}
			}
			for _, v := range violations(resolve(prop)) {
				checked++
				body, _ := json.Marshal(map[string]any{name: v.value})
				field := refusedFields(t, s, typ.Name(), body)
				if !slices.Contains(field, name) {
					t.Errorf("%s.%s %s (%s): the server did not refuse it for %s (refused: %v)", typ.Name(), name, v.breaks, body, name, field)
				}
			}
		}
		for _, name := range schema.Required {
			checked++
			body, _ := json.Marshal(map[string]any{})
			if field := refusedFields(t, s, typ.Name(), body); !slices.Contains(field, name) {
				t.Errorf("%s.%s is required, but the server did not refuse a body without it (refused: %v)", typ.Name(), name, field)
			}
		}
	}
	if checked < 60 {
		t.Errorf("only %d bounds checked", checked)
	}
}

// resolve is a property's own schema, through allOf and anyOf with null.
func resolve(s *openapi3.Schema) *openapi3.Schema {
	if len(s.AllOf) == 1 {
		return s.AllOf[0].Value
	}
	if len(s.AnyOf) == 2 {
		return s.AnyOf[0].Value
	}
	return s
}

type violation struct {
	breaks string
	value  any
}

// violations are values that break one bound of s each.
func violations(s *openapi3.Schema) []violation {
	var out []violation
	if s.MaxLength != nil {
		out = append(out, violation{"maxLength", strings.Repeat("a", int(*s.MaxLength)+1)})
	}
	if s.MinLength > 0 {
		out = append(out, violation{"minLength", ""})
	}
	if s.Pattern != "" {
		re := regexp.MustCompile(s.Pattern)
		for _, v := range []string{"-", "\u0007", " x", "A!"} {
			if !re.MatchString(v) {
				out = append(out, violation{"pattern", v})
				break
			}
		}
	}
	if len(s.Enum) > 0 {
		out = append(out, violation{"enum", "not-one-of-them"})
	}
	if s.Min != nil {
		out = append(out, violation{"minimum", *s.Min - 1})
	}
	if s.Type.Is("array") {
		item := any("x")
		if s.Items != nil && len(resolve(s.Items.Value).Enum) > 0 {
			item = resolve(s.Items.Value).Enum[0]
		}
		if s.MaxItems != nil {
			items := make([]any, *s.MaxItems+1)
			for i := range items {
				items[i] = item
			}
			out = append(out, violation{"maxItems", items})
		}
		if s.MinItems > 0 {
			out = append(out, violation{"minItems", []any{}})
		}
		if s.UniqueItems {
			out = append(out, violation{"uniqueItems", []any{item, item}})
		}
		if s.Items != nil {
			for _, v := range violations(resolve(s.Items.Value)) {
				out = append(out, violation{"items' " + v.breaks, []any{v.value}})
			}
		}
	}
	if s.Type.Is("object") {
		out = append(out, violation{"type", "not an object"})
	}
	return out
}

// refusedFields are the fields the server refused body for; none when it
// took it.
func refusedFields(t *testing.T, s *Server, typ string, body []byte) []string {
	t.Helper()
	req := httptest.NewRequest("POST", "/t/"+typ, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.App().Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		return nil
	}
	var e struct {
		Error struct {
			FieldErrors []struct{ Field string } `json:"field_errors"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != 400 {
		t.Fatalf("POST %s %s: %d, %v", typ, body, resp.StatusCode, err)
	}
	var out []string
	for _, f := range e.Error.FieldErrors {
		out = append(out, f.Field)
	}
	return out
}

// TestTheDocumentStatesTheBoundsTheServerHolds pins the bounds a generated
// client relies on most, each in the document as the server enforces it.
func TestTheDocumentStatesTheBoundsTheServerHolds(t *testing.T) {
	openAPIDocument()
	var doc openapi3.T
	if err := json.Unmarshal(openAPIDocument(), &doc); err != nil {
		t.Fatal(err)
	}
	sa := doc.Components.Schemas["CreateServiceAccountRequest"].Value
	if got := sa.Required; !slices.Equal(got, []string{"name", "role", "scopes", "token_expires_in"}) {
		t.Errorf("CreateServiceAccountRequest requires %v", got)
	}
	if role := sa.Properties["role"].Value; len(role.AllOf) != 1 || role.AllOf[0].Ref != "#/components/schemas/Role" || role.Description == "" {
		t.Errorf("role is %+v, want the Role component", sa.Properties["role"])
	}
	if p := sa.Properties["name"].Value; p.MaxLength == nil || *p.MaxLength != 100 {
		t.Errorf("name: %+v", p)
	}
	if p := sa.Properties["environments"].Value; p.MaxItems == nil || *p.MaxItems != 20 || p.Items.Value.Pattern == "" {
		t.Errorf("environments: %+v", p)
	}
	if p := sa.Properties["token_expires_in"].Value; p.Min == nil || *p.Min != 60 {
		t.Errorf("token_expires_in: %+v", p)
	}
	if scopes := doc.Components.Schemas["Scope"].Value.Enum; len(scopes) != 10 {
		t.Errorf("Scope lists %d values", len(scopes))
	}
	for _, p := range doc.Paths.Value("/api/v1/organizations/{org_id}/events").Get.Parameters {
		if (p.Value.Name == "actor_id" || p.Value.Name == "target_id") && *p.Value.Schema.Value.MaxLength != 64 {
			t.Errorf("%s: at most %d, the server takes 64", p.Value.Name, *p.Value.Schema.Value.MaxLength)
		}
	}
	if len(doc.Servers) == 0 || doc.Info.License == nil {
		t.Errorf("servers %v, license %v", doc.Servers, doc.Info.License)
	}
}
