package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
)

// validator is a request body that can list what is wrong with it.
type validator interface {
	validate() []domain.FieldError
}

// decode reads the JSON body into v strictly: the Content-Type must be
// JSON, unknown fields, wrong types and trailing data are refused, and then
// every invalid field is reported at once.
func decode(c *fiber.Ctx, v validator) error {
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return domain.Errorf(domain.CodeUnsupportedMedia, "the body must be JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// A value of the wrong type or form (a time that is not one)
		// is reported by field, as the schema words it.
		var syntax *json.SyntaxError
		if s := bodySchema(v); s != nil && !errors.As(err, &syntax) && !errors.Is(err, io.EOF) {
			if fe := schemaErrors(s, c.Body()); len(fe) > 0 {
				return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: fe}
			}
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("the body must hold one JSON object and nothing after it")
	}
	if fe := duplicateKeys(c.Body()); len(fe) > 0 {
		// Parsers disagree on which of two equal keys wins; a body that
		// could mean two things is refused.
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: fe}
	}
	if fe := inexactKeys(c.Body(), v); len(fe) > 0 {
		// Go's decoder matches field names regardless of case; the API
		// does not, so "ROLE" is not "role".
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: fe}
	}
	// The document's schema first (what a client can check before
	// sending), then what only the type can say; one error a field.
	var fe fields
	if s := bodySchema(v); s != nil {
		fe = schemaErrors(s, c.Body())
	}
	for _, e := range v.validate() {
		if !slices.ContainsFunc(fe, func(f domain.FieldError) bool { return f.Field == e.Field }) {
			fe = append(fe, e)
		}
	}
	if len(fe) > 0 {
		slices.SortStableFunc(fe, func(a, b domain.FieldError) int { return strings.Compare(a.Field, b.Field) })
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body", FieldErrors: fe}
	}
	return nil
}

// duplicateKeys lists the keys that appear twice in one object of body,
// which is valid JSON (it decoded) of at most bodyLimit bytes.
func duplicateKeys(body []byte) []domain.FieldError {
	dec := json.NewDecoder(bytes.NewReader(body))
	var fe fields
	// One frame per open object or array: the keys seen in an object, nil
	// for an array.
	var stack []map[string]bool
	expectKey := func() bool { return len(stack) > 0 && stack[len(stack)-1] != nil }
	for {
		keyPosition := expectKey()
		tok, err := dec.Token()
		if err != nil {
			return fe
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, map[string]bool{})
			case '[':
				stack = append(stack, nil)
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if strings.ContainsRune(t, 0) {
				fe.add(clip(t, 64), "must not contain NUL characters")
			}
			if keyPosition {
				// Keys that differ only in case are the same key to Go's
				// decoder, so they count as a repeat.
				seen, k := stack[len(stack)-1], strings.ToLower(t)
				if seen[k] {
					fe.add(t, "appears more than once (keys are compared regardless of case)")
				}
				seen[k] = true
				// The value comes next, not a key.
				if v, err := dec.Token(); err == nil {
					if str, ok := v.(string); ok && strings.ContainsRune(str, 0) {
						fe.add(t, "must not contain NUL characters")
					}
					if d, ok := v.(json.Delim); ok && d == '{' {
						stack = append(stack, map[string]bool{})
					} else if ok && d == '[' {
						stack = append(stack, nil)
					}
				}
			}
		}
	}
}

// inexactKeys lists the keys of body that are not, exactly, the JSON name
// of a field of v (a pointer to a struct), at the top level and in the
// objects of fields that are structs themselves (named parent.child).
func inexactKeys(body []byte, v any) []domain.FieldError {
	return inexactKeysOf(body, reflect.TypeOf(v), "")
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func inexactKeysOf(body []byte, t reflect.Type, prefix string) []domain.FieldError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	names := map[string]reflect.Type{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous && f.Tag.Get("json") == "" {
			continue // its fields are the body's, listed on their own
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names[name] = f.Type
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil
	}
	var fe fields
	for k, raw := range top {
		ft, ok := names[k]
		if !ok {
			fe.add(prefix+k, "unknown field (field names are case-sensitive)")
			continue
		}
		if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(unmarshalerType) {
			fe = append(fe, inexactKeysOf(raw, ft, prefix+k+".")...)
		}
	}
	slices.SortFunc(fe, func(a, b domain.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return fe
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return badRequest("the body must be a JSON object")
		}
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
			FieldErrors: []domain.FieldError{{Field: field, Message: "must be a " + jsonType(typeErr.Type.Kind().String())}}}
	case errors.As(err, &syntaxErr):
		return badRequest("malformed JSON at byte " + strconv.FormatInt(syntaxErr.Offset, 10))
	case errors.Is(err, io.EOF):
		return badRequest("the body is empty; send a JSON object")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
			FieldErrors: []domain.FieldError{{Field: name, Message: "unknown field"}}}
	default:
		return badRequest("malformed JSON")
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	default:
		return "number"
	}
}

func badRequest(msg string) *domain.Error {
	return &domain.Error{Code: domain.CodeBadRequest, Message: msg}
}

// fields collects field errors.
type fields []domain.FieldError

func (f *fields) add(field, msg string) {
	*f = append(*f, domain.FieldError{Field: field, Message: msg})
}
