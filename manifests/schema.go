package manifests

import (
	"encoding/json"
)

// Where kiln init puts the schemas, relative to the project root. The
// starter's files point at them with a yaml-language-server modeline, so
// editors with the YAML extension complete and check fields as you type.
// They live next to the cache under .kiln/ so the project root stays
// tidy; commit them (only .kiln/cache/ is ignored) so teammates get
// completion without running kiln first.
const (
	SchemaPath       = ".kiln/manifest.schema.json"
	ConfigSchemaPath = ".kiln/config.schema.json"
)

// SchemaModeline returns the first line a manifest at the project-relative
// path file should carry so its editor finds the manifest schema, e.g.
// "# yaml-language-server: $schema=../.kiln/manifest.schema.json" for
// "levels/cave.kiln.yaml".
func SchemaModeline(file string) string {
	return "# yaml-language-server: $schema=" + relToRoot(file) + SchemaPath
}

func relToRoot(file string) string {
	up := "./"
	n := 0
	for _, c := range file {
		if c == '/' {
			n++
		}
	}
	if n > 0 {
		up = ""
		for i := 0; i < n; i++ {
			up += "../"
		}
	}
	return up
}

// JSONSchema returns a JSON Schema (draft-07, the dialect editors support
// best) of the manifest format: version, defaults, assets, atlases,
// materials. It is generated from the tables the parser uses, so it
// accepts what kiln accepts and rejects unknown fields
// (additionalProperties: false). Checks that need kiln.yaml (configured
// limits, model names) or the whole project (references, duplicate ids)
// are kiln validate's job, not the schema's.
func JSONSchema() []byte {
	sp := newSpecs()
	return render("kiln manifest", sp.manifest)
}

// ConfigSchema returns the JSON Schema of kiln.yaml, like JSONSchema.
func ConfigSchema() []byte {
	sp := newSpecs()
	return render("kiln.yaml", sp.config)
}

func render(title string, s *spec) []byte {
	ctx := &schemaCtx{defs: map[string]any{}}
	m := s.jsonSchema(ctx)
	if len(ctx.defs) > 0 {
		m["definitions"] = ctx.defs
	}
	m["$schema"] = "http://json-schema.org/draft-07/schema#"
	m["title"] = title
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		panic("manifests: schema does not encode: " + err.Error()) // a bug in this package
	}
	return append(b, '\n')
}

// schemaCtx collects named specs, rendered once under "definitions".
type schemaCtx struct{ defs map[string]any }

// jsonSchema renders one spec.
func (s *spec) jsonSchema(ctx *schemaCtx) map[string]any {
	if s.defName != "" {
		if _, done := ctx.defs[s.defName]; !done {
			ctx.defs[s.defName] = nil // reserve: a spec may refer to itself
			c := *s
			c.defName = ""
			ctx.defs[s.defName] = c.jsonSchema(ctx)
		}
		ref := map[string]any{"$ref": "#/definitions/" + s.defName}
		if s.doc == "" {
			return ref
		}
		// draft-07 ignores keywords beside $ref; keep the field's own
		// description for editor hovers.
		return map[string]any{"description": s.doc, "allOf": []any{ref}}
	}
	m := map[string]any{}
	if s.doc != "" {
		m["description"] = s.doc
	}
	switch s.kind {
	case kString:
		if s.strict {
			m["type"] = "string"
		} else {
			m["type"] = []string{"string", "number", "boolean"}
		}
		if s.pattern != "" {
			m["pattern"] = s.pattern
		} else if s.nonEmpty {
			m["pattern"] = `\S`
		}
	case kEnum:
		m["type"] = "string"
		m["enum"] = s.enum
	case kInt, kNumber:
		if s.kind == kInt {
			m["type"] = "integer"
		} else {
			m["type"] = "number"
		}
		if s.hasMin {
			if s.exclMin {
				m["exclusiveMinimum"] = s.min
			} else {
				m["minimum"] = s.min
			}
		}
		if s.hasMax && s.limit == nil {
			m["maximum"] = s.max
		}
	case kBool:
		m["type"] = "boolean"
	case kList:
		// An empty value ("tags:") reads as an empty list.
		m["type"] = []string{"array", "null"}
		m["items"] = s.elem.jsonSchema(ctx)
		if s.minItems > 0 {
			m["minItems"] = s.minItems
		}
		if s.maxItems > 0 && s.limit == nil {
			m["maxItems"] = s.maxItems
		}
		if s.unique {
			m["uniqueItems"] = true
		}
	case kMap:
		m["type"] = []string{"object", "null"}
		m["additionalProperties"] = s.elem.jsonSchema(ctx)
		if s.keyPattern != "" {
			m["propertyNames"] = map[string]any{"pattern": s.keyPattern}
		}
	case kObject:
		m["type"] = []string{"object", "null"}
		props := map[string]any{}
		var req []string
		for _, f := range s.fields {
			props[f.name] = f.spec.jsonSchema(ctx)
			if f.required {
				req = append(req, f.name)
			}
		}
		m["properties"] = props
		m["additionalProperties"] = false
		if s.extensions {
			m["patternProperties"] = map[string]any{"^x-": map[string]any{}}
		}
		if len(req) > 0 {
			m["required"] = req
		}
		if s.extra != nil {
			s.extra(m)
		}
	case kAnyOf:
		var alts []any
		for _, a := range s.alts {
			alts = append(alts, a.jsonSchema(ctx))
		}
		m["anyOf"] = alts
	case kRaw:
		return s.elem.jsonSchema(ctx)
	}
	if s.def != nil {
		m["default"] = s.def
	}
	for k, v := range s.schemaX {
		m[k] = v
	}
	return m
}

// assetSchemaRules forbids, per kind, the fields of other kinds, and
// requires the image block of kind image, mirroring assetKindCheck.
func assetSchemaRules(asset *spec) func(m map[string]any) {
	return func(m map[string]any) {
		var rules []any
		for _, k := range Kinds() {
			forbid := map[string]any{}
			for _, f := range asset.fields {
				if f.kinds != nil && !containsKind(f.kinds, k) {
					forbid[f.name] = false
				}
			}
			then := map[string]any{"properties": forbid}
			if k == KindImage {
				then["required"] = []string{"image"}
			}
			rules = append(rules, map[string]any{
				"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": string(k)}}, "required": []string{"kind"}},
				"then": then,
			})
		}
		m["allOf"] = rules
	}
}
