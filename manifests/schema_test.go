package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"gopkg.in/yaml.v3"
)

// schemaValidator checks a YAML document against a JSON Schema, covering
// the draft-07 keywords kiln's schemas use. It exists so the tests can
// prove the schema and the parser agree without a third-party validator.
type schemaValidator struct {
	root map[string]any
	errs []string
}

func newValidator(t *testing.T, schema []byte) *schemaValidator {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal(schema, &root); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if root["$schema"] != "http://json-schema.org/draft-07/schema#" {
		t.Fatalf("$schema = %v", root["$schema"])
	}
	return &schemaValidator{root: root}
}

// check validates YAML text and returns the violations.
func (v *schemaValidator) check(t *testing.T, doc string) []string {
	t.Helper()
	var val any
	if err := yaml.Unmarshal([]byte(doc), &val); err != nil {
		t.Fatalf("test document is not YAML: %v", err)
	}
	v.errs = nil
	v.validate(v.root, normalise(val), "$")
	return v.errs
}

// normalise turns yaml.v3's values into JSON's.
func normalise(x any) any {
	switch x := x.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, v := range x {
			out[k] = normalise(v)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = normalise(v)
		}
		return out
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case time.Time:
		return x.Format(time.RFC3339)
	}
	return x
}

func (v *schemaValidator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, path+": "+fmt.Sprintf(format, args...))
}

// valid reports whether val passes schema, without recording errors.
func (v *schemaValidator) valid(schema any, val any) bool {
	saved := v.errs
	v.errs = nil
	v.validate(schema, val, "")
	ok := len(v.errs) == 0
	v.errs = saved
	return ok
}

func jsonType(val any) string {
	switch x := val.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		if x == math.Trunc(x) {
			return "integer"
		}
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", val)
}

func (v *schemaValidator) validate(schema any, val any, path string) {
	switch s := schema.(type) {
	case bool:
		if !s {
			v.fail(path, "not allowed")
		}
		return
	case map[string]any:
		v.validateObj(s, val, path)
	default:
		v.fail(path, "bad schema %T", schema)
	}
}

func num(x any) float64 { f, _ := x.(float64); return f }

func (v *schemaValidator) validateObj(s map[string]any, val any, path string) {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/definitions/")
		def, ok := v.root["definitions"].(map[string]any)[name]
		if !ok {
			v.fail(path, "unresolved $ref %s", ref)
			return
		}
		v.validate(def, val, path)
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, x := range t {
				types = append(types, x.(string))
			}
		}
		got := jsonType(val)
		ok := false
		for _, want := range types {
			ok = ok || want == got || (want == "number" && got == "integer")
		}
		if !ok {
			v.fail(path, "type %s, want %v", got, types)
			return
		}
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || reflect.DeepEqual(x, val)
		}
		if !found {
			v.fail(path, "%v not in enum %v", val, e)
		}
	}
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, val) {
		v.fail(path, "%v is not const %v", val, c)
	}
	switch x := val.(type) {
	case float64:
		if m, ok := s["minimum"]; ok && x < num(m) {
			v.fail(path, "%v < minimum %v", x, m)
		}
		if m, ok := s["maximum"]; ok && x > num(m) {
			v.fail(path, "%v > maximum %v", x, m)
		}
		if m, ok := s["exclusiveMinimum"]; ok && x <= num(m) {
			v.fail(path, "%v <= exclusiveMinimum %v", x, m)
		}
		if m, ok := s["multipleOf"]; ok && math.Mod(x, num(m)) != 0 {
			v.fail(path, "%v not a multiple of %v", x, m)
		}
	case string:
		if m, ok := s["minLength"]; ok && float64(len([]rune(x))) < num(m) {
			v.fail(path, "shorter than %v", m)
		}
		if m, ok := s["maxLength"]; ok && float64(len([]rune(x))) > num(m) {
			v.fail(path, "longer than %v", m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			v.fail(path, "%q does not match %s", x, p)
		}
	case []any:
		if m, ok := s["minItems"]; ok && float64(len(x)) < num(m) {
			v.fail(path, "fewer than %v items", m)
		}
		if m, ok := s["maxItems"]; ok && float64(len(x)) > num(m) {
			v.fail(path, "more than %v items", m)
		}
		if u, ok := s["uniqueItems"].(bool); ok && u {
			for i := range x {
				for j := i + 1; j < len(x); j++ {
					if reflect.DeepEqual(x[i], x[j]) {
						v.fail(path, "items %d and %d are equal", i, j)
					}
				}
			}
		}
		if items, ok := s["items"]; ok {
			for i, it := range x {
				v.validate(items, it, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		pats, _ := s["patternProperties"].(map[string]any)
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					v.fail(path, "missing required %s", r)
				}
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if pn, ok := s["propertyNames"]; ok {
				v.validate(pn, k, path+"."+k+"(name)")
			}
			matched := false
			if ps, ok := props[k]; ok {
				matched = true
				v.validate(ps, x[k], path+"."+k)
			}
			for p, ps := range pats {
				if regexp.MustCompile(p).MatchString(k) {
					matched = true
					v.validate(ps, x[k], path+"."+k)
				}
			}
			if !matched {
				if ap, ok := s["additionalProperties"]; ok {
					v.validate(ap, x[k], path+"."+k)
				}
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			v.validate(sub, val, path)
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		n := 0
		for _, sub := range anyOf {
			if v.valid(sub, val) {
				n++
			}
		}
		if n == 0 {
			v.fail(path, "matches no anyOf alternative")
		}
	}
	if not, ok := s["not"]; ok && v.valid(not, val) {
		v.fail(path, "matches a not schema")
	}
	if cond, ok := s["if"]; ok {
		if v.valid(cond, val) {
			if then, ok := s["then"]; ok {
				v.validate(then, val, path)
			}
		} else if els, ok := s["else"]; ok {
			v.validate(els, val, path)
		}
	}
}

// uncomment turns the starter manifest's commented examples into YAML:
// every comment line from the first example on loses its "# ".
func uncomment(s string) string {
	lines := strings.Split(s, "\n")
	on := false
	re := regexp.MustCompile(`^(\s*)# ?(.*)$`)
	for i, l := range lines {
		if strings.Contains(l, "# - id:") {
			on = true
		}
		if on {
			if m := re.FindStringSubmatch(l); m != nil {
				lines[i] = m[1] + m[2]
			}
		}
	}
	return strings.Join(lines, "\n")
}

// docExample extracts the manifest example from the package comment, so
// the documentation cannot drift from what the parser accepts.
func docExample(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "//\t# yaml-language-server") {
			in = true
		}
		if in {
			if !strings.HasPrefix(l, "//\t") {
				break
			}
			out = append(out, strings.TrimPrefix(l, "//\t"))
		}
	}
	if len(out) < 10 {
		t.Fatal("no example found in doc.go")
	}
	return strings.Join(out, "\n") + "\n"
}

func TestStarter(t *testing.T) {
	files := Starter()
	fsys := project(nil)
	delete(fsys, ConfigFile)
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	p, err := LoadFS(fsys)
	if err != nil {
		t.Fatalf("starter does not load: %v", err)
	}
	if len(p.Assets) != 1 || p.Assets[0].ID != "ui/hello" || p.Assets[0].Image.Source != StarterImage {
		t.Errorf("starter assets = %+v", p.Assets)
	}
	if p.Config.Models["exemplar"] == nil || p.Config.Models["exemplar"].Ref() != Exemplar {
		t.Errorf("starter models = %+v", p.Config.Models)
	}
	if first := strings.SplitN(string(files[StarterManifest]), "\n", 2)[0]; first != SchemaModeline(StarterManifest) {
		t.Errorf("manifest starts with %q", first)
	}
	if first := strings.SplitN(string(files[ConfigFile]), "\n", 2)[0]; first != "# yaml-language-server: $schema=./"+ConfigSchemaPath {
		t.Errorf("kiln.yaml starts with %q", first)
	}
	if !bytes.Equal(files[SchemaPath], JSONSchema()) || !bytes.Equal(files[ConfigSchemaPath], ConfigSchema()) {
		t.Error("starter schemas differ from JSONSchema/ConfigSchema")
	}
	img, err := png.Decode(bytes.NewReader(files[StarterImage]))
	if err != nil || img.Bounds().Dx() != 64 {
		t.Errorf("starter image: %v", err)
	}

	// Every commented example is valid too.
	full := uncomment(string(files[StarterManifest]))
	fsys[StarterManifest] = &fstest.MapFile{Data: []byte(full)}
	p, err = LoadFS(fsys)
	if err != nil {
		t.Fatalf("uncommented starter does not load: %v\n%s", err, full)
	}
	kinds := map[Kind]bool{}
	for _, a := range p.Assets {
		kinds[a.Kind] = true
	}
	if len(kinds) != 5 || len(p.Atlases) != 1 || len(p.Materials) != 2 {
		t.Errorf("uncommented starter: kinds %v, %d atlases, %d materials", kinds, len(p.Atlases), len(p.Materials))
	}
}

func TestDocExample(t *testing.T) {
	mustLoad(t, map[string]string{"doc.kiln.yaml": docExample(t)})
}

// TestSchemaAccepts: every valid document of the tests passes the schema.
func TestSchemaAccepts(t *testing.T) {
	mv := newValidator(t, JSONSchema())
	cv := newValidator(t, ConfigSchema())
	starter := Starter()
	manifests := map[string]string{
		"starter":      string(starter[StarterManifest]),
		"uncommented":  uncomment(string(starter[StarterManifest])),
		"doc":          docExample(t),
		"empty lists":  m("assets:\nmaterials: []\n"),
		"null blocks":  m("assets:\n  - id: t\n    kind: texture\n    prompt: s\n    texture:\n    material:\n"),
		"x- anchors":   m("x-base: &b {kind: tileable}\nassets:\n  - {<<: *b, id: a, prompt: s}\n"),
		"loose prompt": m("assets:\n  - {id: a, kind: tileable, prompt: 1984, tags: [2024, true]}\n"),
	}
	for name, doc := range manifests {
		if errs := mv.check(t, doc); len(errs) > 0 {
			t.Errorf("manifest %s rejected by the schema:\n%s", name, strings.Join(errs, "\n"))
		}
		mustLoad(t, map[string]string{"a.kiln.yaml": doc, "art/hello.png": "x"}) // and by the parser
	}
	configs := map[string]string{
		"starter": string(starter[ConfigFile]),
		"base":    baseConfig,
		"full": "version: 1\noutput: out\nmanifests: 'a/*.yaml'\nmodels: {a: models/a, b: {path: 'builtin:exemplar', kind: sd15}}\n" +
			"runtime: {memory_budget: 1024, device: openvino}\nlimits: {max_manifest_bytes: 2048}\ngodot: {project_root: ../game/}\nwatch: {debounce: 1s}\n" +
			"defaults: {model: a, sprite: {fps: 5}, atlas: {padding: 0}, material: {preview: cube}}\n",
	}
	for name, doc := range configs {
		if errs := cv.check(t, doc); len(errs) > 0 {
			t.Errorf("config %s rejected by the schema:\n%s", name, strings.Join(errs, "\n"))
		}
		mustLoad(t, map[string]string{ConfigFile: doc})
	}
}

// TestSchemaRejects: what the parser refuses for its shape, the schema
// refuses too (references, configured limits and duplicates are kiln
// validate's business).
func TestSchemaRejects(t *testing.T) {
	mv := newValidator(t, JSONSchema())
	structural := []string{
		"unknown field suggests", "unknown field camelCase", "unknown field lists fields", "unknown kind block alias",
		"unknown top-level field", "wrong type int", "wrong type bool", "wrong type list", "wrong type string",
		"wrong type mapping", "bad enum", "bad kind", "missing id and kind", "size not multiple of 8",
		"size malformed", "manifest version", "manifest version missing", "wrong-kind block",
		"generation field on image", "material on tileable", "image without block", "key_color unquoted",
		"sprite and texture checks", "material refs", "path escapes", "out of range",
	}
	cases := map[string]errCase{}
	for _, c := range errCases() {
		cases[c.name] = c
	}
	for _, name := range structural {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("no error case %q", name)
		}
		if errs := mv.check(t, c.files["a.kiln.yaml"]); len(errs) == 0 {
			t.Errorf("schema accepts %q, which kiln rejects:\n%s", name, c.files["a.kiln.yaml"])
		}
	}
	// Every bad id of "bad ids" is refused one by one.
	for _, id := range []string{"Dungeon/Floor", "../up", "/abs", `a\b`, "C:/x", "a//b", "a/./b", "ui/con", "a b", ""} {
		doc := m(fmt.Sprintf("assets:\n  - {id: %q, kind: image, image: {source: a.png}}\n", id))
		if errs := mv.check(t, doc); len(errs) == 0 {
			t.Errorf("schema accepts id %q", id)
		}
	}
	for _, src := range []string{"../x.png", "/x.png", `a\x.png`, "C:/x.png", "a//x.png", "x.gif", "a/../x.png"} {
		doc := m(fmt.Sprintf("assets:\n  - {id: a, kind: image, image: {source: %q}}\n", src))
		if errs := mv.check(t, doc); len(errs) == 0 {
			t.Errorf("schema accepts source %q", src)
		}
	}
	cv := newValidator(t, ConfigSchema())
	for _, c := range errCases() {
		if c.name != "config errors" && c.name != "config version" {
			continue
		}
		if errs := cv.check(t, c.files[ConfigFile]); len(errs) == 0 {
			t.Errorf("config schema accepts %q", c.name)
		}
	}
	if errs := cv.check(t, "version: 1\noutput: out\nruntime: {devise: cpu}\n"); len(errs) == 0 {
		t.Error("config schema accepts an unknown runtime field")
	}
}
