package manifests

import (
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// A spec describes one field's value: its YAML shape, its bounds, and how
// it converts. The same specs drive the parser and JSONSchema, so the
// editor schema and kiln cannot disagree about what a field accepts.
type spec struct {
	kind specKind
	doc  string

	// Scalars.
	strict    bool // kString: only a YAML string, not 12 or true
	nonEmpty  bool
	emptyHint string
	nullHint  string // extra hint when the value is empty (null)
	enum      []string
	min, max  float64
	hasMin    bool
	hasMax    bool
	exclMin   bool
	limit     func(*Limits) int // configured maximum (value, item count or length)
	limitName string            // its name under limits:

	// Lists and maps.
	elem               *spec
	minItems, maxItems int
	unique             bool
	keyCheck           func(d *decoder, path string, key string, pos Pos) bool
	keyPattern         string

	// Objects.
	fields  []*field
	aliases map[string]string // common wrong field names -> right one
	// extensions lets keys starting with "x-" hold anything (ignored),
	// the conventional home of YAML anchors.
	extensions bool
	check      func(d *decoder, path string, o *object)
	extra      func(schema map[string]any) // adds conditional rules to the schema

	// anyOf.
	alts []*spec

	// post converts and validates a decoded value; false drops it.
	post func(d *decoder, path string, v *value) (any, bool)

	// JSON Schema.
	whatText string         // "a size like 512 or [512, 768]"
	pattern  string         // for strings
	schemaX  map[string]any // merged into the generated schema
	def      any            // documented default
	defName  string         // render once under this name in "definitions"
}

type specKind int

const (
	kString specKind = iota
	kEnum
	kInt
	kNumber
	kBool
	kList
	kMap
	kObject
	kAnyOf
	kRaw // kept as a yaml.Node, decoded later (kiln.yaml defaults)
)

// field is one named entry of an object spec.
type field struct {
	name         string
	spec         *spec
	required     bool
	requiredHint string
	// kinds limits an asset field to some asset kinds; nil means all.
	kinds []Kind
}

func (s *spec) field(name string) *field {
	for _, f := range s.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

func (s *spec) fieldNames() []string {
	n := make([]string, len(s.fields))
	for i, f := range s.fields {
		n[i] = f.name
	}
	return n
}

// what says what a value must look like, for messages.
func (s *spec) what() string {
	if s.whatText != "" {
		return s.whatText
	}
	switch s.kind {
	case kString:
		return "a string"
	case kEnum:
		if len(s.enum) == 1 {
			return fmt.Sprintf("%q", s.enum[0])
		}
		return "one of " + strings.Join(s.enum, ", ")
	case kInt:
		return "an integer"
	case kNumber:
		return "a number"
	case kBool:
		return "true or false"
	case kList:
		return "a list"
	case kMap, kObject:
		return "a mapping"
	case kAnyOf:
		w := make([]string, len(s.alts))
		for i, a := range s.alts {
			w[i] = a.what()
		}
		if len(w) == 2 {
			return w[0] + " or " + w[1]
		}
		return strings.Join(w[:len(w)-1], ", ") + " or " + w[len(w)-1]
	}
	return "a value"
}

// Constructors. Each returns a fresh spec; the chainable setters below
// adjust it while the tables are built.

func str(doc string) *spec { return &spec{kind: kString, doc: doc, strict: true} }

// loose lets a string field take any scalar (prompt: 1984), as text.
func (s *spec) loose() *spec {
	s.strict = false
	return s
}

func enum(doc string, values ...string) *spec {
	return &spec{kind: kEnum, doc: doc, enum: values}
}

func integer(doc string) *spec { return &spec{kind: kInt, doc: doc} }

func number(doc string) *spec { return &spec{kind: kNumber, doc: doc} }

func boolean(doc string) *spec { return &spec{kind: kBool, doc: doc} }

func list(doc string, elem *spec) *spec { return &spec{kind: kList, doc: doc, elem: elem} }

func mapOf(doc string, elem *spec) *spec { return &spec{kind: kMap, doc: doc, elem: elem} }

func obj(doc string, fields ...*field) *spec { return &spec{kind: kObject, doc: doc, fields: fields} }

func anyOf(doc string, alts ...*spec) *spec { return &spec{kind: kAnyOf, doc: doc, alts: alts} }

func (s *spec) rng(min, max float64) *spec {
	s.min, s.max, s.hasMin, s.hasMax = min, max, true, true
	return s
}

func (s *spec) atLeast(min float64) *spec {
	s.min, s.hasMin = min, true
	return s
}

func (s *spec) above(min float64) *spec {
	s.min, s.hasMin, s.exclMin = min, true, true
	return s
}

func (s *spec) lim(name string, f func(*Limits) int) *spec {
	s.limit, s.limitName = f, name
	return s
}

func (s *spec) items(min, max int) *spec {
	s.minItems, s.maxItems = min, max
	return s
}

func (s *spec) uniq() *spec {
	s.unique = true
	return s
}

func (s *spec) nonempty(hint string) *spec {
	s.nonEmpty, s.emptyHint = true, hint
	if s.kind == kList {
		s.minItems = max(s.minItems, 1)
	}
	return s
}

func (s *spec) with(post func(d *decoder, path string, v *value) (any, bool)) *spec {
	s.post = post
	return s
}

func (s *spec) describe(what string) *spec {
	s.whatText = what
	return s
}

func (s *spec) pat(p string) *spec {
	s.pattern = p
	return s
}

func (s *spec) x(k string, v any) *spec {
	if s.schemaX == nil {
		s.schemaX = map[string]any{}
	}
	s.schemaX[k] = v
	return s
}

func (s *spec) dflt(v any) *spec {
	s.def = v
	return s
}

func (s *spec) named(n string) *spec {
	s.defName = n
	return s
}

func (s *spec) onNull(hint string) *spec {
	s.nullHint = hint
	return s
}

func (s *spec) checked(c func(d *decoder, path string, o *object)) *spec {
	s.check = c
	return s
}

// clone makes a shallow copy so a table can reuse a spec with changes.
func (s *spec) clone() *spec {
	c := *s
	c.fields = append([]*field(nil), s.fields...)
	return &c
}

// without returns a copy of an object spec minus some fields, with nothing
// required: the shape of a defaults block.
func (s *spec) without(doc string, names ...string) *spec {
	c := s.clone()
	c.doc = doc
	c.defName = ""
	c.check = nil
	c.extra = nil
	c.fields = nil
	for _, f := range s.fields {
		if contains(names, f.name) {
			continue
		}
		g := *f
		g.required = false
		g.kinds = nil
		c.fields = append(c.fields, &g)
	}
	return c
}

func fld(name string, s *spec) *field { return &field{name: name, spec: s} }

func (f *field) req(hint string) *field {
	f.required, f.requiredHint = true, hint
	return f
}

func (f *field) only(kinds ...Kind) *field {
	f.kinds = kinds
	return f
}

func (d *decoder) decodeMap(s *spec, n *yaml.Node, path string) *value {
	o := newObject(d.pos(n))
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return &value{pos: o.pos, v: o}
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(s, n, path)
		return nil
	}
	for _, p := range d.pairs(n, path) {
		if d.bombed {
			return nil
		}
		name := p.key.Value
		if s.keyCheck != nil && !s.keyCheck(d, join(path, name), name, d.pos(p.key)) {
			continue
		}
		o.ents = append(o.ents, entry{name, d.pos(p.key), d.decode(s.elem, p.val, join(path, name))})
	}
	return &value{pos: o.pos, v: o}
}

// sortedKeys returns a map's keys in order, for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
