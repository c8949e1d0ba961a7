package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/intelliauth/controlplane/internal/auditstream"
	"github.com/intelliauth/controlplane/internal/domain"
)

// The document's schemas come from the Go types the handlers decode and
// write. A request type declares its bounds once, in `jsonschema` tags
// (invopop/jsonschema's spelling: `jsonschema:"minLength=1,maxLength=100"`);
// they become the request body's schema in the document, and decode
// (bodycheck.go) validates every body against that very schema before the
// type's validate method checks what a schema cannot say (a name's
// scripts, a mailbox, a slug's equality). So the bounds a client reads are
// the bounds the server enforces.

// schemas turns Go types into component schemas named after them.
type schemas struct {
	// resp generates answers' data, req request bodies: they differ in
	// what a pointer means (nullable in an answer; optional in a request,
	// nullable only when tagged so) and in the bounds they carry.
	resp, req *openapi3gen.Generator
	into      openapi3.Schemas
	names     map[string]reflect.Type
	// bodies are the request types' schemas, for decode to enforce.
	bodies map[reflect.Type]*openapi3.Schema
	// first is an object schema's first field in the Go type, which an
	// error about the object as a whole names.
	first map[*openapi3.Schema]string
	// queries are each route's query parameters (by "METHOD path"), for
	// the guard to enforce.
	queries map[string][]*openapi3.Parameter
}

func newSchemas(into openapi3.Schemas) *schemas {
	g := &schemas{into: into, names: map[string]reflect.Type{}, bodies: map[reflect.Type]*openapi3.Schema{}, first: map[*openapi3.Schema]string{}, queries: map[string][]*openapi3.Parameter{}}
	g.resp = openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(g.customizer(false)))
	g.req = openapi3gen.NewGenerator(openapi3gen.SchemaCustomizer(g.customizer(true)))
	return g
}

// named returns a reference to the component schema of v's type, the data
// of an answer, adding it and the named types it holds on first use; the
// reference carries the schema too, for inlining.
func (g *schemas) named(v any) (*openapi3.SchemaRef, error) { return g.component(g.resp, v) }

// body is named for a request body's type.
func (g *schemas) body(v any) (*openapi3.SchemaRef, error) {
	ref, err := g.component(g.req, v)
	if err == nil {
		g.bodies[reflect.TypeOf(v)] = ref.Value
	}
	return ref, err
}

func (g *schemas) component(gen *openapi3gen.Generator, v any) (*openapi3.SchemaRef, error) {
	t := reflect.TypeOf(v)
	name := componentName(t)
	if ref, ok, err := g.existing(name, t); ok || err != nil {
		return ref, err
	}
	ref, err := gen.NewSchemaRefForValue(v, nil)
	if err != nil {
		return nil, fmt.Errorf("schema of %v: %w", t, err)
	}
	unmark(ref.Value)
	if err := g.hoist(ref.Value); err != nil {
		return nil, err
	}
	return g.add(name, t, ref.Value), nil
}

// existing is the reference to the component name when there is one, of
// type t; another type of the same name is an error.
func (g *schemas) existing(name string, t reflect.Type) (*openapi3.SchemaRef, bool, error) {
	seen, ok := g.names[name]
	if !ok {
		return nil, false, nil
	}
	if seen != t {
		return nil, false, fmt.Errorf("two types are named %s in the document: %v and %v", name, seen, t)
	}
	return &openapi3.SchemaRef{Ref: "#/components/schemas/" + name, Value: g.into[name].Value}, true, nil
}

func (g *schemas) add(name string, t reflect.Type, s *openapi3.Schema) *openapi3.SchemaRef {
	g.names[name] = t
	g.into[name] = &openapi3.SchemaRef{Value: s}
	return &openapi3.SchemaRef{Ref: "#/components/schemas/" + name, Value: s}
}

// hoist replaces each schema inside s that is of a named type (the
// customizer marked it) with a reference to that type's component, adding
// the component on first sight: a view inside a view, or a role, is one
// schema in the document, and one type in a generated client.
func (g *schemas) hoist(s *openapi3.Schema) error {
	// The parent gets a new reference: the generator keeps the ones it
	// made and rewrites them on each later call.
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		ref, err := g.hoisted(s.Properties[k], true)
		if err != nil {
			return err
		}
		s.Properties[k] = ref
	}
	var err error
	if s.Items, err = g.hoisted(s.Items, false); err != nil {
		return err
	}
	s.AdditionalProperties.Schema, err = g.hoisted(s.AdditionalProperties.Schema, false)
	return err
}

// hoisted is c, or a reference to its component when it is of a named
// type. A field keeps its description beside the reference (allOf), and a
// nullable one says so (anyOf with null); a list's items carry the list's
// description, which they drop.
func (g *schemas) hoisted(c *openapi3.SchemaRef, field bool) (*openapi3.SchemaRef, error) {
	if c == nil || c.Value == nil || c.Ref != "" {
		return c, nil
	}
	m := unmark(c.Value)
	if m == nil {
		return c, g.hoist(c.Value)
	}
	ref, ok, err := g.existing(m.name, m.t)
	if err != nil {
		return nil, err
	}
	if !ok {
		comp := *c.Value
		comp.Description = ""
		comp.Type = &openapi3.Types{}
		for _, t := range c.Value.Type.Slice() {
			if t != "null" {
				*comp.Type = append(*comp.Type, t)
			}
		}
		if err := g.hoist(&comp); err != nil {
			return nil, err
		}
		ref = g.add(m.name, m.t, &comp)
	}
	desc := c.Value.Description
	if !field {
		desc = ""
	}
	switch {
	case c.Value.Type.Includes("null"):
		s := &openapi3.Schema{Description: desc, AnyOf: openapi3.SchemaRefs{ref, {Value: &openapi3.Schema{Type: &openapi3.Types{"null"}}}}}
		return s.NewRef(), nil
	case desc != "":
		return (&openapi3.Schema{Description: desc, AllOf: openapi3.SchemaRefs{ref}}).NewRef(), nil
	}
	return ref, nil
}

// componentKey is the extension under which the customizer marks a schema
// of a named type; hoist takes the mark off before the document is served.
const componentKey = "x-component"

type componentMark struct {
	name string
	t    reflect.Type
}

func unmark(s *openapi3.Schema) *componentMark {
	m, _ := s.Extensions[componentKey].(*componentMark)
	delete(s.Extensions, componentKey)
	if len(s.Extensions) == 0 {
		s.Extensions = nil
	}
	return m
}

func mark(s *openapi3.Schema, name string, t reflect.Type) {
	if s.Extensions == nil {
		s.Extensions = map[string]any{}
	}
	s.Extensions[componentKey] = &componentMark{name: name, t: t}
}

// componentName is the exported name of a type without its View suffix
// (tenantView is Tenant, store.MemberView is Member), and an answer's type
// named …Response is …Result: generated clients name their own wrapper of
// an operation's answers <OperationId>Response.
func componentName(t reflect.Type) string {
	n := strings.TrimSuffix(t.Name(), "View")
	if n == "org" {
		n = "organization"
	}
	if s, ok := strings.CutSuffix(n, "Response"); ok {
		n = s + "Result"
	}
	r := []rune(n)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// enum is a named set of string values, one component of the document.
type enum struct {
	name   string
	values []any
}

// enumTypes are the enumerations by Go type.
var enumTypes = map[reflect.Type]enum{
	reflect.TypeFor[domain.Role]():  {"Role", anys(domain.Roles)},
	reflect.TypeFor[domain.State](): {"TenantState", anys(domain.States)},
	// A tenant's actions: the transitions a caller requests.
	reflect.TypeFor[domain.OpKind](): {"TenantAction", func() []any {
		var out []any
		for _, tr := range domain.Requested() {
			out = append(out, string(tr.Kind))
		}
		return out
	}()},
	reflect.TypeFor[domain.Scope]():  {"Scope", anys(domain.Scopes)},
	reflect.TypeFor[domain.Action](): {"Permission", anys(domain.Actions())},
	// An organisation's state and operations are not a tenant's.
	reflect.TypeFor[domain.OrgState]():      {"OrganizationState", anys([]domain.OrgState{domain.OrgActive, domain.OrgDeleting, domain.OrgDeleted})},
	reflect.TypeFor[domain.OrgOpKind]():     {"OrganizationOperationKind", anys([]domain.OrgOpKind{domain.OrgOpDeletion, domain.OrgOpRestore})},
	reflect.TypeFor[domain.BillingStatus](): {"BillingStatus", anys([]domain.BillingStatus{domain.BillingNone, domain.BillingActive, domain.BillingPastDue, domain.BillingCanceled})},
	reflect.TypeFor[domain.StreamStatus]():  {"StreamStatus", anys(domain.StreamStatuses)},
	reflect.TypeFor[auditstream.Kind]():     {"StreamKind", anys([]auditstream.Kind{auditstream.KindHTTPS, auditstream.KindSplunkHEC, auditstream.KindDatadog})},
	reflect.TypeFor[auditstream.Format]():   {"StreamFormat", anys([]auditstream.Format{auditstream.FormatNDJSON, auditstream.FormatCloudEvents})},
}

// fieldEnums are the enumerations of plain string fields by JSON name (the
// store's rows), and of the items of a plain string list of that name.
var fieldEnums = map[string]enum{
	"state":  enumTypes[reflect.TypeFor[domain.State]()],
	"role":   enumTypes[reflect.TypeFor[domain.Role]()],
	"kind":   {"OperationKind", anys(domain.OpKinds)},
	"scopes": enumTypes[reflect.TypeFor[domain.Scope]()],
}

// objectSchemer is a request type that says what its fields' tags cannot:
// fields an embedded struct shares with another request but that this
// one requires, or that at least one field must be given.
type objectSchemer interface {
	objectSchema(s *openapi3.Schema)
}

// customizer makes the generator's schemas say what the types mean in JSON
// Schema 2020-12 (OpenAPI 3.1): a struct lists its required fields (those
// without omitempty) and allows no others, an enumeration lists its values
// and becomes a component, a request field carries the bounds of its
// jsonschema tag, and a field's doc tag is its description (beside the
// field, so a type and its document are changed together). In an answer a
// pointer is a type union with null unless omitempty leaves it out; in a
// request only a field tagged nullable takes null.
func (g *schemas) customizer(request bool) openapi3gen.SchemaCustomizerFn {
	return func(name string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
		if d := tag.Get("doc"); d != "" {
			s.Description = d
		}
		nullable := s.Nullable
		s.Nullable = false
		b, err := parseBounds(tag.Get("jsonschema"))
		if err != nil {
			return fmt.Errorf("field %s: %w", name, err)
		}
		if !request && b != (bounds{}) {
			return fmt.Errorf("field %s: bounds belong on request types", name)
		}
		// An answer's pointer without omitempty is null when nil; with
		// omitempty it is left out instead.
		_, opts, _ := strings.Cut(tag.Get("json"), ",")
		omitted := slices.Contains(strings.Split(opts, ","), "omitempty")
		if nullable && (request && b.nullable || !request && !omitted) && s.Type != nil {
			types := append(openapi3.Types{}, *s.Type...)
			types = append(types, "null")
			s.Type = &types
		}
		e, ok := enumTypes[t]
		if !ok && t.Kind() == reflect.String && t == reflect.TypeFor[string]() {
			e, ok = fieldEnums[name]
		}
		if ok {
			s.Enum = e.values
			// A role is one component whether a field is a domain.Role
			// or a row's plain string.
			mark(s, e.name, reflect.TypeFor[enum]())
		}
		if t.Kind() == reflect.Struct && s.Properties != nil {
			s.Required = nil
			for _, f := range reflect.VisibleFields(t) {
				name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
				if !f.IsExported() || name == "-" || (f.Anonymous && name == "") {
					continue
				}
				if name == "" {
					name = f.Name
				}
				if _, ok := g.first[s]; !ok {
					g.first[s] = name
				}
				if _, ok := s.Properties[name]; ok && !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(s.Required, name) {
					s.Required = append(s.Required, name)
				}
			}
			if o, ok := reflect.Zero(t).Interface().(objectSchemer); ok {
				o.objectSchema(s)
			}
			slices.Sort(s.Required)
			s.AdditionalProperties = openapi3.AdditionalProperties{Has: ptr(false)}
			if t.Name() != "" {
				mark(s, componentName(t), t)
			}
		}
		// The generator calls this for a list's items with the list's
		// field and tag, then for the list.
		if t.Kind() == reflect.Slice && t != reflect.TypeFor[json.RawMessage]() {
			return b.applyList(s)
		}
		return b.applyScalar(s)
	}
}

// bounds are a request field's jsonschema tag.
type bounds struct {
	minLength, maxLength  *uint64
	minimum, maximum      *float64
	minItems, maxItems    *uint64
	uniqueItems, nullable bool
	pattern, itemPattern  string // names in patterns
	itemMaxLength         *uint64
	format, typ           string
	minProperties         *uint64
	maxProperties         *uint64
}

// patterns are the named patterns a jsonschema tag can give a string, with
// what a person is told when a value does not match.
var patterns = map[string]struct {
	re   *regexp.Regexp
	says string
}{
	"tenantName":  {tenantNamePattern, "a DNS label of 3 to 32 characters: a-z, 0-9 and '-', not at either end"},
	"environment": {environmentPattern, "1 to 32 characters: a-z, 0-9 and '-', not at either end (e.g. prod, staging, uat)"},
	"region":      {domain.RegionPattern, domain.RegionRule},
	"orgSlug":     {domain.OrgSlugPattern, "3 to 30 characters: a-z, 0-9 and '-', not at either end"},
	// No C0 or C1 control character (unicode.IsControl).
	"noControl": {regexp.MustCompile(`^[^\x00-\x1F\x7F-\x9F]*$`), "no control characters"},
	// What travels in a header as it is: printable ASCII, no space.
	"headerToken":  {regexp.MustCompile(`^[!-~]+$`), "printable ASCII characters, no spaces"},
	"actionFilter": {actionFilterPattern, "an audit action (tenant.suspended) or a family (tenant.*)"},
}

func parseBounds(tag string) (bounds, error) {
	var b bounds
	if tag == "" {
		return b, nil
	}
	for _, part := range strings.Split(tag, ",") {
		k, v, _ := strings.Cut(part, "=")
		u := func() (*uint64, error) {
			n, err := strconv.ParseUint(v, 10, 64)
			return &n, err
		}
		f := func() (*float64, error) {
			n, err := strconv.ParseFloat(v, 64)
			return &n, err
		}
		var err error
		switch k {
		case "minLength":
			b.minLength, err = u()
		case "maxLength":
			b.maxLength, err = u()
		case "minimum":
			b.minimum, err = f()
		case "maximum":
			b.maximum, err = f()
		case "minItems":
			b.minItems, err = u()
		case "maxItems":
			b.maxItems, err = u()
		case "itemMaxLength":
			b.itemMaxLength, err = u()
		case "minProperties":
			b.minProperties, err = u()
		case "maxProperties":
			b.maxProperties, err = u()
		case "type":
			b.typ = v
		case "uniqueItems":
			b.uniqueItems = true
		case "nullable":
			b.nullable = true
		case "format":
			b.format = v
		case "pattern", "itemPattern":
			if _, ok := patterns[v]; !ok {
				return b, fmt.Errorf("jsonschema tag %q: no pattern named %q", tag, v)
			}
			if k == "pattern" {
				b.pattern = v
			} else {
				b.itemPattern = v
			}
		default:
			return b, fmt.Errorf("jsonschema tag %q: unknown keyword %q", tag, k)
		}
		if err != nil {
			return b, fmt.Errorf("jsonschema tag %q: %s: %w", tag, k, err)
		}
	}
	return b, nil
}

// applyScalar writes a string's or a number's bounds into s; a list's are
// left to applyList.
func (b bounds) applyScalar(s *openapi3.Schema) error {
	if b.minLength != nil {
		s.MinLength = *b.minLength
	}
	s.MaxLength = cmpOr(b.maxLength, s.MaxLength)
	s.Min, s.Max = cmpOr(b.minimum, s.Min), cmpOr(b.maximum, s.Max)
	if b.minProperties != nil {
		s.MinProps = *b.minProperties
	}
	s.MaxProps = cmpOr(b.maxProperties, s.MaxProps)
	if b.typ != "" {
		s.Type = &openapi3.Types{b.typ}
		if b.typ == "object" {
			// Raw JSON a library reads (a passkey's credential): any
			// members.
			s.AdditionalProperties = openapi3.AdditionalProperties{Has: ptr(true)}
		}
	}
	if b.format != "" {
		s.Format = b.format
	}
	if b.pattern != "" {
		s.Pattern = patterns[b.pattern].re.String()
	}
	return nil
}

// applyList writes a list's bounds, and its items', into s.
func (b bounds) applyList(s *openapi3.Schema) error {
	if b.minLength != nil || b.maxLength != nil || b.minimum != nil || b.maximum != nil || b.pattern != "" || b.format != "" {
		return fmt.Errorf("a list's bounds are minItems, maxItems, uniqueItems, itemPattern and itemMaxLength")
	}
	if b.minItems != nil {
		s.MinItems = *b.minItems
	}
	s.MaxItems = cmpOr(b.maxItems, s.MaxItems)
	s.UniqueItems = s.UniqueItems || b.uniqueItems
	if b.itemPattern != "" {
		s.Items.Value.Pattern = patterns[b.itemPattern].re.String()
	}
	s.Items.Value.MaxLength = cmpOr(b.itemMaxLength, s.Items.Value.MaxLength)
	return nil
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
