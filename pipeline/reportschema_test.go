package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// schemaNode is the part of JSON Schema that report.schema.json uses.
type schemaNode struct {
	Ref                  string                 `json:"$ref"`
	Type                 string                 `json:"type"`
	Enum                 []any                  `json:"enum"`
	Const                any                    `json:"const"`
	Required             []string               `json:"required"`
	Properties           map[string]*schemaNode `json:"properties"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	PropertyNames        *schemaNode            `json:"propertyNames"`
	Items                *schemaNode            `json:"items"`
	Minimum              *float64               `json:"minimum"`
	Pattern              string                 `json:"pattern"`
	Description          string                 `json:"description"`
	Defs                 map[string]*schemaNode `json:"$defs"`
}

func loadReportSchema(t *testing.T) *schemaNode {
	t.Helper()
	var root schemaNode
	if err := json.Unmarshal(ReportSchema(), &root); err != nil {
		t.Fatalf("the report schema is not valid JSON: %v", err)
	}
	return &root
}

// resolve follows a "#/$defs/name" reference.
func (root *schemaNode) resolve(t *testing.T, s *schemaNode) *schemaNode {
	t.Helper()
	for s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/$defs/")
		if !ok || root.Defs[name] == nil {
			t.Fatalf("schema reference %q does not resolve", s.Ref)
		}
		s = root.Defs[name]
	}
	return s
}

// check validates v (decoded JSON) against s, reporting each problem at
// its JSON path.
func (root *schemaNode) check(t *testing.T, at string, s *schemaNode, v any) {
	t.Helper()
	s = root.resolve(t, s)
	if s.Const != nil && !reflect.DeepEqual(s.Const, v) {
		t.Errorf("%s: %v, the schema wants %v", at, v, s.Const)
	}
	if s.Enum != nil && !slices.ContainsFunc(s.Enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		t.Errorf("%s: %v is not one of %v", at, v, s.Enum)
	}
	switch s.Type {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s: %T, want an object", at, v)
			return
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				t.Errorf("%s: required field %q missing", at, r)
			}
		}
		for _, k := range sortedKeys(obj) {
			if s.PropertyNames != nil {
				root.check(t, at+" (a key)", s.PropertyNames, k)
			}
			if p := s.Properties[k]; p != nil {
				root.check(t, at+"."+k, p, obj[k])
				continue
			}
			switch extra := strings.TrimSpace(string(s.AdditionalProperties)); extra {
			case "", "true":
				t.Errorf("%s: the schema must say whether fields beyond its properties are allowed", at)
			case "false":
				t.Errorf("%s.%s: field not described by the schema", at, k)
			default:
				var p schemaNode
				if err := json.Unmarshal([]byte(extra), &p); err != nil {
					t.Fatalf("%s: additionalProperties: %v", at, err)
				}
				root.check(t, at+"."+k, &p, obj[k])
			}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			t.Errorf("%s: %T, want an array", at, v)
			return
		}
		for i, e := range arr {
			root.check(t, fmt.Sprintf("%s[%d]", at, i), s.Items, e)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			t.Errorf("%s: %T, want a string", at, v)
		} else if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			t.Errorf("%s: %q does not match %s", at, str, s.Pattern)
		}
	case "integer", "number":
		f, ok := v.(float64)
		switch {
		case !ok:
			t.Errorf("%s: %T, want a number", at, v)
		case s.Type == "integer" && f != float64(int64(f)):
			t.Errorf("%s: %v, want an integer", at, f)
		case s.Minimum != nil && f < *s.Minimum:
			t.Errorf("%s: %v is less than %v", at, f, *s.Minimum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			t.Errorf("%s: %T, want a boolean", at, v)
		}
	case "":
		if s.Const == nil && s.Enum == nil {
			t.Errorf("%s: the schema gives no type", at)
		}
	default:
		t.Errorf("%s: schema type %q is not one this test knows", at, s.Type)
	}
}

// TestReportSchemaMatchesReports builds reports with every kind of
// stage result, remote cache and shard, and checks each against the
// schema: every field a real report holds is described, the required
// ones (schema_version first) are present, and the values have the
// described types.
func TestReportSchemaMatchesReports(t *testing.T) {
	root := loadReportSchema(t)
	if !slices.Contains(root.Required, "schema_version") {
		t.Error("the schema does not require schema_version")
	}
	if root.Properties["schema_version"] == nil || root.Properties["schema_version"].Const != float64(ReportSchemaVersion) {
		t.Errorf("the schema's schema_version is not %d", ReportSchemaVersion)
	}

	p := newProject(t)
	p.write("art/a.png", "a")
	gen := p.constStage("g:gen", "noise", "g.png")
	gen.Resource, gen.Device = Accelerator, "cpu"
	gen.Generation = &Generation{Seed: 7, Steps: 20, Model: "sd15", ModelFingerprint: "sha256:0123", Provider: "cpu"}
	run := gen.Run
	gen.Run = func(ctx context.Context, r *Run) error {
		r.Note("provider", "cpu")
		return run(ctx, r)
	}
	stages := []Stage{
		p.fileStage("a", "art/a.png", "a.png"),
		gen,
		p.catStage("all", "!", "all.txt", "a", "g:gen"),
		p.constStage("gone", "x", "gone.txt"),
	}
	rc := newMemRemote()
	o := remoteOpts(p, rc, true)
	o.Explain = true
	var reports []*Report
	reports = append(reports, p.build(stages, o)) // built, remote report
	// A stage removed leaves an orphan; a missing source fails its stage
	// and skips its dependent.
	os.Remove(filepath.Join(p.root, "art/a.png"))
	rep, _ := Build(context.Background(), stages[:3], o)
	reports = append(reports, rep)
	dry := p.opts()
	dry.DryRun = true
	rep, _ = Build(context.Background(), stages[:3], dry)
	reports = append(reports, rep)
	sharded := remoteOpts(p, rc, true)
	sharded.Shard = Shard{Index: 1, Count: 2}
	rep, _ = Build(context.Background(), stages[1:2], sharded)
	reports = append(reports, rep)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, _ = Build(ctx, stages[:3], p.opts())
	reports = append(reports, rep)

	seen := map[string]bool{}
	for i, rep := range reports {
		if rep == nil {
			t.Fatalf("build %d gave no report", i)
		}
		data, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		root.check(t, fmt.Sprintf("report %d (%s)", i, rep.Mode), root, v)
		collectPaths(v, "", seen)
	}
	// The reports above hold every field the schema describes, so none
	// of it goes unchecked.
	for _, want := range []string{"interrupted", "orphans", "remote", "shard", "stages.started", "stages.generation",
		"stages.error", "stages.reasons", "stages.notes", "stages.outputs.path", "stages.key"} {
		if !seen[want] {
			t.Errorf("no report above has %s; make one that does", want)
		}
	}
}

// collectPaths records the dotted paths of v's object fields (array
// elements share their array's path).
func collectPaths(v any, at string, seen map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := strings.TrimPrefix(at+"."+k, ".")
			seen[p] = true
			collectPaths(e, p, seen)
		}
	case []any:
		for _, e := range x {
			collectPaths(e, at, seen)
		}
	}
}

// TestReportSchemaMatchesTypes checks the schema against Report's Go
// types, field by field, so a field added to the report without the
// schema (or left in the schema after its removal) fails here even
// before a report holds it.
func TestReportSchemaMatchesTypes(t *testing.T) {
	root := loadReportSchema(t)
	tests := []struct {
		typ    reflect.Type
		schema *schemaNode
	}{
		{reflect.TypeFor[Report](), root},
		{reflect.TypeFor[StageReport](), root.Defs["stage"]},
		{reflect.TypeFor[OutputReport](), root.Defs["output"]},
		{reflect.TypeFor[StageError](), root.Defs["error"]},
		{reflect.TypeFor[Generation](), root.Defs["generation"]},
		{reflect.TypeFor[RemoteReport](), root.Defs["remote"]},
		{reflect.TypeFor[ShardReport](), root.Defs["shard"]},
	}
	for _, tc := range tests {
		if tc.schema == nil {
			t.Errorf("%s: the schema has no definition for it", tc.typ.Name())
			continue
		}
		var fields []string
		for f := range tc.typ.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			fields = append(fields, name)
			ps := tc.schema.Properties[name]
			if ps == nil {
				t.Errorf("%s.%s (%q) is not in the schema", tc.typ.Name(), f.Name, name)
				continue
			}
			if root.resolve(t, ps).Description == "" && ps.Description == "" {
				t.Errorf("%s.%s: the schema does not describe it", tc.typ.Name(), f.Name)
			}
			optional := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
			if required := slices.Contains(tc.schema.Required, name); required == optional {
				t.Errorf("%s.%s: required in the schema = %v, but the field is omitted when empty = %v", tc.typ.Name(), f.Name, required, optional)
			}
		}
		var extra []string
		for name := range tc.schema.Properties {
			if !slices.Contains(fields, name) {
				extra = append(extra, name)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s: the schema describes fields it does not have: %v", tc.typ.Name(), extra)
		}
	}
}
