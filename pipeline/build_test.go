package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBuildAndCache(t *testing.T) {
	p := newProject(t)
	p.write("src/rock.txt", "rock")
	stages := func(genText, deriveSuffix string) []Stage {
		return []Stage{
			p.constStage("a:gen", genText, "a/gen.txt"),
			p.catStage("a:derive", deriveSuffix, "a/derive.txt", "a:gen"),
			p.catStage("atlas:pack", "!", "atlas.txt", "a:derive", "b:file"),
			p.fileStage("b:file", "src/rock.txt", "b/rock.txt"),
		}
	}
	o := p.opts()

	rep := p.build(stages("x", "-n1"), o)
	if got, want := statuses(rep), "a:gen=built a:derive=built b:file=built atlas:pack=built"; got != want {
		t.Errorf("first build: %s, want %s", got, want)
	}
	if got := p.read("atlas.txt"); got != "x-n1ROCK!" {
		t.Errorf("atlas.txt = %q", got)
	}
	if got := p.read("a/derive.txt"); got != "x-n1" {
		t.Errorf("a/derive.txt = %q", got)
	}
	p.takeRuns()

	steps := []struct {
		name    string
		change  func() []Stage
		wantRun []string
		want    string
		atlas   string
	}{
		{"nothing changed", func() []Stage { return stages("x", "-n1") }, nil,
			"a:gen=cached a:derive=cached b:file=cached atlas:pack=cached", "x-n1ROCK!"},
		{"post-process param reruns it and dependents, not generation", func() []Stage { return stages("x", "-n2") },
			[]string{"a:derive", "atlas:pack"},
			"a:gen=cached a:derive=built b:file=cached atlas:pack=built", "x-n2ROCK!"},
		{"source file changed", func() []Stage { p.write("src/rock.txt", "granite"); return stages("x", "-n2") },
			[]string{"atlas:pack", "b:file"},
			"a:gen=cached a:derive=cached b:file=built atlas:pack=built", "x-n2GRANITE!"},
		{"source touched with equal content: hashed, nothing reruns", func() []Stage { p.write("src/rock.txt", "granite"); return stages("x", "-n2") },
			nil, "a:gen=cached a:derive=cached b:file=cached atlas:pack=cached", "x-n2GRANITE!"},
		{"reverting finds the old results in the cache", func() []Stage { p.write("src/rock.txt", "rock"); return stages("x", "-n2") }, nil,
			"a:gen=cached a:derive=cached b:file=cached atlas:pack=cached", "x-n2ROCK!"},
		{"a new combination of cached inputs runs only the stage that combines them", func() []Stage { p.write("src/rock.txt", "granite"); return stages("x", "-n1") },
			[]string{"atlas:pack"}, "a:gen=cached a:derive=cached b:file=cached atlas:pack=built", "x-n1GRANITE!"},
	}
	for _, step := range steps {
		rep := p.build(step.change(), o)
		if got := statuses(rep); got != step.want {
			t.Errorf("%s: %s\n want %s", step.name, got, step.want)
		}
		if got := p.takeRuns(); !reflect.DeepEqual(got, step.wantRun) {
			t.Errorf("%s: ran %v, want %v", step.name, got, step.wantRun)
		}
		if got := p.read("atlas.txt"); got != step.atlas {
			t.Errorf("%s: atlas.txt = %q, want %q", step.name, got, step.atlas)
		}
	}
}

func TestEarlyCutoff(t *testing.T) {
	p := newProject(t)
	// gen's output depends only on the first letter of its text, so a
	// param change can rebuild it to identical bytes.
	gen := func(text string) Stage {
		s := p.constStage("a:gen", text, "")
		s.Run = func(ctx context.Context, r *Run) error {
			p.ran("a:gen")
			return r.WriteFile("out", []byte(text[:1]))
		}
		return s
	}
	stages := func(text string) []Stage {
		return []Stage{gen(text), p.catStage("a:use", "+", "a.txt", "a:gen")}
	}
	p.build(stages("apple"), p.opts())
	p.takeRuns()
	rep := p.build(stages("avocado"), p.opts())
	if got, want := statuses(rep), "a:gen=built a:use=cached"; got != want {
		t.Errorf("statuses %s, want %s (dependent of an identical output stays cached)", got, want)
	}
	if got := p.takeRuns(); !reflect.DeepEqual(got, []string{"a:gen"}) {
		t.Errorf("ran %v, want only a:gen", got)
	}
	rep = p.build(stages("banana"), p.opts())
	if got, want := statuses(rep), "a:gen=built a:use=built"; got != want {
		t.Errorf("statuses %s, want %s", got, want)
	}
	if got := p.read("a.txt"); got != "b+" {
		t.Errorf("a.txt = %q, want b+", got)
	}
}

func TestExplainReasons(t *testing.T) {
	p := newProject(t)
	p.write("src/x.png", "pixels")
	type cfg struct {
		strength any
		version  string
		model    string
		src      string
		gen      string
		extra    bool
	}
	base := cfg{strength: 1, version: "1", model: "m1", src: "pixels", gen: "g"}
	stages := func(c cfg) []Stage {
		gen := p.constStage("a:gen", c.gen, "a/gen.txt")
		derive := p.catStage("a:derive", "", "a/derive.txt", "a:gen")
		params := map[string]any{"normal_strength": c.strength, "maps": []string{"albedo", "normal"}}
		if c.extra {
			params["roughness"] = map[string]any{"min": 0.2}
		}
		derive.Params = params
		derive.Version = c.version
		derive.Models = []string{c.model}
		derive.Files = []string{"src/x.png"}
		return []Stage{gen, derive}
	}
	o := p.opts()
	o.Explain = true
	rep := p.build(stages(base), o)
	if got := rep.Stage("a:derive").Reasons; !reflect.DeepEqual(got, []string{"no previous build"}) {
		t.Errorf("first build reasons %q", got)
	}
	p.takeRuns()
	tests := []struct {
		name   string
		mod    func(c *cfg)
		src    string
		remove string // published output to delete
		want   []string
		status Status
		dry    []string // dry-run reasons when they differ
	}{
		{"param", func(c *cfg) { c.strength = 2 }, "", "", []string{"params.normal_strength changed 1 -> 2"}, StatusBuilt, nil},
		{"param added", func(c *cfg) { c.extra = true }, "", "", []string{`params.roughness added ({"min":0.2})`}, StatusBuilt, nil},
		{"version", func(c *cfg) { c.version = "2" }, "", "", []string{"implementation version changed 1 -> 2"}, StatusBuilt, nil},
		{"model", func(c *cfg) { c.model = "m2" }, "", "", []string{"model fingerprint changed m1 -> m2"}, StatusBuilt, nil},
		{"source", func(c *cfg) {}, "new pixels", "", []string{"source file src/x.png changed"}, StatusBuilt, nil},
		{"dependency", func(c *cfg) { c.gen = "h" }, "", "", []string{"dependency a:gen output changed (out)"}, StatusBuilt,
			[]string{"dependency a:gen would be rebuilt"}},
		{"output missing", func(c *cfg) {}, "", "a/derive.txt", []string{"output a/derive.txt missing; restored from the cache"}, StatusCached,
			[]string{"output a/derive.txt missing; would be restored from the cache"}},
	}
	cur := base
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := cur
			tc.mod(&next)
			if tc.src != "" {
				p.write("src/x.png", tc.src)
			}
			if tc.remove != "" {
				os.Remove(p.out(tc.remove))
			}
			// Dry run first: it must say the same and write nothing.
			dry := o
			dry.DryRun = true
			rep, err := Build(context.Background(), stages(next), dry)
			if err != nil {
				t.Fatal(err)
			}
			wantDry := tc.want
			if tc.dry != nil {
				wantDry = tc.dry
			}
			dryStatus := StatusWouldBuild
			if tc.status == StatusCached {
				dryStatus = StatusCached
			}
			if s := rep.Stage("a:derive"); s.Status != dryStatus || !reflect.DeepEqual(s.Reasons, wantDry) {
				t.Errorf("dry run: %s %q, want %s %q", s.Status, s.Reasons, dryStatus, wantDry)
			}
			if got := p.takeRuns(); len(got) > 0 {
				t.Errorf("dry run ran %v", got)
			}
			if tc.remove != "" {
				if _, err := os.Stat(p.out(tc.remove)); !os.IsNotExist(err) {
					t.Errorf("dry run restored %s", tc.remove)
				}
			}

			rep = p.build(stages(next), o)
			s := rep.Stage("a:derive")
			if s.Status != tc.status || !reflect.DeepEqual(s.Reasons, tc.want) {
				t.Errorf("build: %s %q, want %s %q", s.Status, s.Reasons, tc.status, tc.want)
			}
			p.takeRuns()
			cur = next
		})
	}
}

func TestCheck(t *testing.T) {
	p := newProject(t)
	stages := func(text string) []Stage {
		return []Stage{p.constStage("a:gen", text, "a.txt"), p.catStage("b:use", "", "b.txt", "a:gen"), p.constStage("c:gen", "c", "c.txt")}
	}
	check := p.opts()
	check.Check = true

	rep, err := Build(context.Background(), stages("x"), check)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("check before any build: err = %v, want ErrStale", err)
	}
	if got, want := statuses(rep), "a:gen=stale b:use=stale c:gen=stale"; got != want {
		t.Errorf("before build: %s, want %s", got, want)
	}
	if got := rep.Stage("b:use").Reasons; !reflect.DeepEqual(got, []string{"dependency a:gen is stale"}) {
		t.Errorf("dependent reasons %q", got)
	}
	if _, err := os.Stat(p.cacheDir()); !os.IsNotExist(err) {
		t.Errorf("check created the cache folder")
	}

	p.build(stages("x"), p.opts())
	p.takeRuns()
	if rep, err := Build(context.Background(), stages("x"), check); err != nil {
		t.Fatalf("check after build: %v (%s)", err, statuses(rep))
	}

	tests := []struct {
		name   string
		text   string
		mutate func()
		want   string
		reason string
	}{
		{"param changed", "y", nil, "a:gen=stale b:use=stale c:gen=cached", "params.text changed \"x\" -> \"y\""},
		{"output modified", "x", func() { os.WriteFile(p.out("a.txt"), []byte("edited"), 0o644) }, "a:gen=stale b:use=cached c:gen=cached", "output a.txt modified outside kiln"},
		{"output missing", "x", func() { os.Remove(p.out("a.txt")) }, "a:gen=stale b:use=cached c:gen=cached", "output a.txt missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate()
			}
			rep, err := Build(context.Background(), stages(tc.text), check)
			if !errors.Is(err, ErrStale) {
				t.Fatalf("err = %v, want ErrStale", err)
			}
			if got := statuses(rep); got != tc.want {
				t.Errorf("%s, want %s", got, tc.want)
			}
			if got := rep.Stage("a:gen").Reasons; len(got) == 0 || got[0] != tc.reason {
				t.Errorf("reasons %q, want first %q", got, tc.reason)
			}
			if got := p.takeRuns(); len(got) > 0 {
				t.Errorf("check ran %v", got)
			}
			p.build(stages("x"), p.opts()) // repair for the next case
			p.takeRuns()
		})
	}
}

func TestOnly(t *testing.T) {
	p := newProject(t)
	stages := []Stage{
		p.constStage("a:gen", "a", "a.txt"),
		p.catStage("b:use", "", "b.txt", "a:gen"),
		p.constStage("c:gen", "c", "c.txt"),
	}
	o := p.opts()
	o.Only = []string{"b"}
	rep := p.build(stages, o)
	if got, want := statuses(rep), "a:gen=built b:use=built"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	if p.read("c.txt") != "" {
		t.Error("c was built although not selected")
	}
	rep = p.build(stages, p.opts())
	if got, want := statuses(rep), "a:gen=cached b:use=cached c:gen=built"; got != want {
		t.Errorf("full build after --only: %s, want %s", got, want)
	}
	o.Only = []string{"nope"}
	if _, err := Build(context.Background(), stages, o); err == nil || !strings.Contains(err.Error(), `no asset or stage is called "nope"`) {
		t.Errorf("unknown --only: err = %v", err)
	}
}

func TestReportJSON(t *testing.T) {
	p := newProject(t)
	s := p.constStage("a:gen", "hello", "a/hello.txt")
	run := s.Run
	s.Run = func(ctx context.Context, r *Run) error {
		r.Note("provider", "cpu")
		return run(ctx, r)
	}
	p.build([]Stage{s}, p.opts())
	rep := p.build([]Stage{s}, p.opts())
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	stage := back["stages"].([]any)[0].(map[string]any)
	out := stage["outputs"].([]any)[0].(map[string]any)
	if stage["status"] != "cached" || out["path"] != "a/hello.txt" || out["size"] != 5.0 ||
		out["sha256"] != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Errorf("unexpected stage JSON: %v", stage)
	}
	if notes := stage["notes"].(map[string]any); notes["provider"] != "cpu" {
		t.Errorf("notes of a cached stage = %v, want the ones recorded when it ran", notes)
	}
	for _, f := range []string{"queue_ms", "run_ms"} {
		if _, ok := stage[f].(float64); !ok {
			t.Errorf("%s missing: %v", f, stage)
		}
	}
	if back["schema_version"] != float64(ReportSchemaVersion) {
		t.Errorf("schema_version = %v, want %d", back["schema_version"], ReportSchemaVersion)
	}
	if totals := back["totals"].(map[string]any); totals["cached"] != 1.0 {
		t.Errorf("totals = %v", totals)
	}
	var again Report
	if err := json.Unmarshal(data, &again); err != nil || again.Stages[0].Status != StatusCached {
		t.Errorf("report does not round-trip: %v", err)
	}
}

func TestSourceFileErrors(t *testing.T) {
	p := newProject(t)
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.png"), []byte("s"), 0o644)
	if err := os.Symlink(outside, filepath.Join(p.root, "link")); err != nil {
		t.Skip(err)
	}
	os.MkdirAll(filepath.Join(p.root, "dir"), 0o755)
	tests := []struct {
		src  string
		want string
	}{
		{"missing.png", "test.kiln.yaml:3:1: source file missing.png not found (looked for " + filepath.Join(p.root, "missing.png") + "); add the file or fix the path in the manifest"},
		{"link/secret.png", "test.kiln.yaml:3:1: source file: path \"link/secret.png\" goes through the symlink " + filepath.Join(p.root, "link") + ", which points to " + outside},
		{"dir", "test.kiln.yaml:3:1: source file dir is a folder; name a file"},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			o := p.opts()
			o.KeepGoing = true
			rep, err := Build(context.Background(), []Stage{p.fileStage("a:file", tc.src, "a.txt"), p.catStage("b:use", "", "b.txt", "a:file")}, o)
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("err = %v, want ErrFailed", err)
			}
			s := rep.Stage("a:file")
			if s.Status != StatusFailed || !strings.HasPrefix(s.Error.Error(), tc.want) {
				t.Errorf("got %s: %v\nwant prefix %s", s.Status, s.Error, tc.want)
			}
			if d := rep.Stage("b:use"); d.Status != StatusSkipped || d.Reasons[0] != "dependency a:file failed" {
				t.Errorf("dependent: %s %q", d.Status, d.Reasons)
			}
		})
	}
}

func TestStageWithoutOutputs(t *testing.T) {
	p := newProject(t)
	check := Stage{ID: "lint", Asset: "lint", Kind: "test.lint", Run: func(ctx context.Context, r *Run) error { p.ran("lint"); return nil }}
	stages := []Stage{check, p.constStage("use", "!", "use.txt", "lint")}
	p.build(stages, p.opts())
	for _, mode := range []string{"build", "dry-run", "check"} {
		o := p.opts()
		o.DryRun = mode == "dry-run"
		o.Check = mode == "check"
		rep, err := Build(context.Background(), stages, o)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if got := statuses(rep); got != "lint=cached use=cached" {
			t.Errorf("%s: %s", mode, got)
		}
	}
}

// TestPublishNewVersionIsNotAnEdit: when a stage's inputs change, its new
// output replaces the previous version without the log calling that
// version an edit; a file edited by hand is called one and replaced.
func TestPublishNewVersionIsNotAnEdit(t *testing.T) {
	p := newProject(t)
	var logBuf bytes.Buffer
	o := p.opts()
	o.Log = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p.build([]Stage{p.constStage("a:gen", "one", "a.txt")}, o)
	p.build([]Stage{p.constStage("a:gen", "two", "a.txt")}, o)
	if p.read("a.txt") != "two" {
		t.Fatalf("output %q", p.read("a.txt"))
	}
	if strings.Contains(logBuf.String(), "restored") {
		t.Fatalf("a new version was logged as a restore:\n%s", logBuf.String())
	}
	os.WriteFile(p.out("a.txt"), []byte("edited"), 0o644)
	p.build([]Stage{p.constStage("a:gen", "three", "a.txt")}, o)
	if p.read("a.txt") != "three" || !strings.Contains(logBuf.String(), `was="modified outside kiln"`) {
		t.Fatalf("output %q, log:\n%s", p.read("a.txt"), logBuf.String())
	}
}
