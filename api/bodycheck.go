package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
)

// bodySchema is the document's schema of a request type (a pointer to it),
// nil for a type no route takes.
func bodySchema(v any) *openapi3.Schema {
	openAPIDocument()
	return openAPIOnce.schemas.bodies[reflect.TypeOf(v).Elem()]
}

// queryErrors validates the query parameters a route documents against
// their schemas in the document; a parameter it does not document is left
// to the handler (none reads one).
func queryErrors(c *fiber.Ctx, r Route) error {
	openAPIDocument()
	var fe fields
	for _, p := range openAPIOnce.schemas.queries[r.Method+" "+r.Path] {
		raw := c.Query(p.Name)
		if raw == "" {
			continue
		}
		s := p.Schema.Value
		var v any = raw
		if s.Type.Is("integer") {
			n, err := strconv.ParseInt(raw, 10, 64)
			if err != nil {
				fe.add(p.Name, says(s))
				continue
			}
			v = float64(n)
		}
		if s.VisitJSON(v) != nil {
			fe.add(p.Name, says(s))
		}
	}
	if len(fe) > 0 {
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid query parameters", FieldErrors: fe}
	}
	return nil
}

// schemaErrors validates body, valid JSON, against the request schema s
// and says what is wrong field by field, as the server words it.
func schemaErrors(s *openapi3.Schema, body []byte) []domain.FieldError {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil // decode reported it
	}
	err := s.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsRequest())
	if err == nil {
		return nil
	}
	var fe fields
	for _, se := range flatten(err) {
		field, msg := fieldError(se)
		if !slices.ContainsFunc(fe, func(e domain.FieldError) bool { return e.Field == field }) {
			fe.add(field, msg)
		}
	}
	slices.SortFunc(fe, func(a, b domain.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return fe
}

func flatten(err error) []*openapi3.SchemaError {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []*openapi3.SchemaError
		for _, e := range me {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return []*openapi3.SchemaError{se}
	}
	return []*openapi3.SchemaError{{Reason: err.Error()}}
}

// fieldError names the field of a schema error (organization.name; a
// list's field for one of its items) and says what the field must be,
// from the schema that failed: the same bounds the document shows.
func fieldError(se *openapi3.SchemaError) (string, string) {
	var path []string
	for _, p := range se.JSONPointer() {
		if _, err := strconv.Atoi(p); err == nil {
			break // an item: the list's field
		}
		path = append(path, p)
	}
	s := se.Schema
	if s == nil {
		return strings.Join(path, "."), se.Reason
	}
	switch se.SchemaField {
	case "required":
		return strings.Join(path, "."), "required"
	case "additionalProperties":
		return strings.Join(path, "."), "unknown field (field names are case-sensitive)"
	case "type":
		return strings.Join(path, "."), "must be " + orList(articled(s.Type.Slice()))
	case "minLength", "maxLength":
		return strings.Join(path, "."), strings.TrimSuffix(lengths(s), ", ")
	case "pattern":
		for _, p := range patterns {
			if p.re.String() == s.Pattern {
				return strings.Join(path, "."), p.says
			}
		}
	case "minProperties", "maxProperties":
		names := slices.Sorted(maps.Keys(s.Properties))
		first := openAPIOnce.schemas.first[s]
		if se.SchemaField == "maxProperties" {
			return strings.Join(append(path, first), "."), "give only one of " + orList(names)
		}
		return strings.Join(append(path, first), "."), "give " + orList(names)
	}
	return strings.Join(path, "."), says(s)
}

// says is what a value of s must be, in a person's words.
func says(s *openapi3.Schema) string {
	switch {
	case len(s.Enum) > 0:
		vs := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vs[i] = fmt.Sprint(v)
		}
		return "one of " + strings.Join(vs, ", ")
	case s.Type.Is("array"):
		var parts []string
		if s.MinItems > 0 && s.MaxItems != nil {
			parts = append(parts, fmt.Sprintf("%d to %d", s.MinItems, *s.MaxItems))
		} else if s.MaxItems != nil {
			parts = append(parts, fmt.Sprintf("at most %d", *s.MaxItems))
		} else if s.MinItems > 0 {
			parts = append(parts, fmt.Sprintf("at least %d", s.MinItems))
		}
		if s.UniqueItems {
			parts = append(parts, "distinct")
		}
		item := "items"
		if s.Items != nil && s.Items.Value != nil {
			item += ", each " + says(s.Items.Value)
		}
		return strings.TrimSpace(strings.Join(parts, " ") + " " + item)
	case s.Type.Is("integer") || s.Type.Is("number"):
		switch {
		case s.Min != nil && s.Max != nil:
			return fmt.Sprintf("%v to %v", *s.Min, *s.Max)
		case s.Min != nil:
			return fmt.Sprintf("at least %v", *s.Min)
		case s.Max != nil:
			return fmt.Sprintf("at most %v", *s.Max)
		}
		return "a " + s.Type.Slice()[0]
	}
	switch s.Format {
	case "date-time":
		return "an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"
	case "date":
		return "a date, YYYY-MM-DD"
	}
	for _, p := range patterns {
		if s.Pattern != "" && p.re.String() == s.Pattern {
			return lengths(s) + p.says
		}
	}
	if l := lengths(s); l != "" {
		return strings.TrimSuffix(l, ", ")
	}
	return "a " + strings.Join(s.Type.Slice(), " or ")
}

func lengths(s *openapi3.Schema) string {
	switch {
	case s.MinLength > 0 && s.MaxLength != nil:
		return fmt.Sprintf("%d to %d characters, ", s.MinLength, *s.MaxLength)
	case s.MaxLength != nil:
		return fmt.Sprintf("at most %d characters, ", *s.MaxLength)
	case s.MinLength > 0:
		return fmt.Sprintf("at least %d characters, ", s.MinLength)
	}
	return ""
}

func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// articled is each JSON type with its article: a string, an object.
func articled(types []string) []string {
	out := make([]string, len(types))
	for i, t := range types {
		if t == "integer" || t == "object" || t == "array" {
			out[i] = "an " + t
		} else {
			out[i] = "a " + t
		}
	}
	return out
}
