package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/internal/testproject"
)

// kilnBin is the kiln binary the end-to-end tests run, built once.
var kilnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kilnBin = filepath.Join(dir, "kiln")
	if out, err := exec.Command("go", "build", "-o", kilnBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kiln: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the kiln binary.
type result struct {
	code           int
	stdout, stderr string
}

// kiln runs the binary with args in dir.
func kiln(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kilnBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// writeFiles writes project files given by relative path.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// saveByRename replaces path's content the way editors' safe write does:
// a backup-style temporary file ("~", which watch ignores) renamed over
// it, so a reader never sees the file missing or half-written.
func saveByRename(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + "~"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// jsonReport is the part of kiln build --json the tests read.
type jsonReport struct {
	Mode   string `json:"mode"`
	Stages []struct {
		ID      string   `json:"id"`
		Asset   string   `json:"asset"`
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
		Outputs []struct {
			Name, Path, SHA256 string
			Size               int64
		} `json:"outputs"`
		Error *struct{ Message, Where string } `json:"error"`
	} `json:"stages"`
	Totals map[string]int                    `json:"totals"`
	Errors []struct{ Message, Where string } `json:"errors"`
}

func buildJSON(t *testing.T, dir string, args ...string) (jsonReport, result) {
	t.Helper()
	r := kiln(t, dir, append([]string{"build", "--json"}, args...)...)
	var rep jsonReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("kiln build --json: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return rep, r
}

// statuses maps stage id to status.
func statuses(rep jsonReport) map[string]string {
	m := map[string]string{}
	for _, s := range rep.Stages {
		m[s.ID] = s.Status
	}
	return m
}

// built lists the stages that ran, sorted.
func built(rep jsonReport) []string {
	var out []string
	for _, s := range rep.Stages {
		if s.Status == "built" {
			out = append(out, s.ID)
		}
	}
	sort.Strings(out)
	return out
}

// imageProject is a project of hand-made images and a glTF material that
// reads one of them, so a change has a dependent.
func imageProject(t *testing.T) string {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml": testproject.Config,
		"art/a.png": string(testproject.PNG(1)),
		"art/b.png": string(testproject.PNG(2)),
		"art/c.png": string(testproject.PNG(3)),
		"props.kiln.yaml": `version: 1
assets:
  - {id: props/a, kind: image, image: {source: art/a.png}}
  - {id: props/b, kind: image, image: {source: art/b.png}}
  - {id: props/c, kind: image, image: {source: art/c.png}}
materials:
  - {id: props/crate, base_color: props/b, formats: [gltf, glb]}
`,
	})
	return dir
}

func TestBuildRebuildsOnlyWhatChanged(t *testing.T) {
	dir := imageProject(t)
	rep, r := buildJSON(t, dir)
	if r.code != 0 {
		t.Fatalf("first build exit %d: %s", r.code, r.stderr)
	}
	want := []string{"props/a:source", "props/b:source", "props/c:source", "props/crate:material"}
	if got := built(rep); !equal(got, want) {
		t.Fatalf("first build built %v, want %v", got, want)
	}
	for _, f := range []string{"out/props/a.png", "out/props/crate.gltf", "out/props/crate.bin", "out/props/crate.glb", "out/props/crate_basecolor.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}

	rep, _ = buildJSON(t, dir)
	if got := built(rep); len(got) != 0 {
		t.Fatalf("no-op build built %v", got)
	}

	// A changed source image re-runs exactly that asset and its dependents.
	writeFiles(t, dir, map[string]string{"art/b.png": string(testproject.PNG(20))})
	rep, _ = buildJSON(t, dir)
	if got, want := built(rep), []string{"props/b:source", "props/crate:material"}; !equal(got, want) {
		t.Fatalf("after editing art/b.png built %v, want %v", got, want)
	}
	writeFiles(t, dir, map[string]string{"art/a.png": string(testproject.PNG(10))})
	rep, _ = buildJSON(t, dir)
	if got, want := built(rep), []string{"props/a:source"}; !equal(got, want) {
		t.Fatalf("after editing art/a.png built %v, want %v", got, want)
	}
}

func TestCheckAndExplain(t *testing.T) {
	dir := imageProject(t)
	r := kiln(t, dir, "build", "--check")
	if r.code != 1 {
		t.Fatalf("--check before any build: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if r := kiln(t, dir, "build", "-q"); r.code != 0 {
		t.Fatalf("build exit %d: %s", r.code, r.stderr)
	}
	if r := kiln(t, dir, "build", "--check"); r.code != 0 {
		t.Fatalf("--check after build: exit %d, want 0\n%s", r.code, r.stderr)
	}
	writeFiles(t, dir, map[string]string{"art/c.png": string(testproject.PNG(30))})
	rep, r := buildJSON(t, dir, "--check")
	if r.code != 1 {
		t.Fatalf("--check after edit: exit %d, want 1", r.code)
	}
	if got := statuses(rep)["props/c:source"]; got != "stale" {
		t.Fatalf("props/c:source is %q, want stale", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/props/c.png")); err != nil {
		t.Fatal("--check must not touch outputs:", err)
	}

	rep, r = buildJSON(t, dir, "--dry-run")
	if r.code != 0 {
		t.Fatalf("--dry-run exit %d: %s", r.code, r.stderr)
	}
	var reasons []string
	for _, s := range rep.Stages {
		if s.ID == "props/c:source" {
			if s.Status != "would-build" {
				t.Fatalf("dry run: props/c:source is %q, want would-build", s.Status)
			}
			reasons = s.Reasons
		}
	}
	if len(reasons) == 0 || !strings.Contains(strings.Join(reasons, "; "), "art/c.png") {
		t.Fatalf("dry run reasons %q do not name the changed file art/c.png", reasons)
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	dir := imageProject(t)
	writeFiles(t, dir, map[string]string{"bad.kiln.yaml": "version: 1\nassets:\n  - id: x/y\n    kind: image\n    imgae: {source: art/a.png}\n"})
	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"unknown field", []string{"build"}, 2, "kiln: bad.kiln.yaml:3:5: assets[0]: kind image needs an image block (add image: {source: art/NAME.png})\n" +
			"bad.kiln.yaml:5:5: assets[0].imgae: unknown field \"imgae\" (did you mean \"image\"?)\n"},
		{"validate", []string{"validate"}, 2, `bad.kiln.yaml:5:5`},
		{"unknown command", []string{"bulid"}, 2, `unknown command "bulid"`},
		{"bad graph format", []string{"graph", "--format", "svg"}, 2, `--format "svg": use dot, mermaid or json`},
		{"dry-run with check", []string{"build", "--dry-run", "--check"}, 2, "--dry-run and --check cannot be combined"},
		{"no project", []string{"build", t.TempDir()}, 2, "kiln.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kiln(t, dir, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.contains) {
				t.Fatalf("kiln %v: exit %d, stderr:\n%s\nwant exit %d and %q", tt.args, r.code, r.stderr, tt.code, tt.contains)
			}
		})
	}

	rep, r := buildJSON(t, dir)
	if r.code != 2 || len(rep.Errors) != 2 || rep.Errors[1].Where != "bad.kiln.yaml:5:5" {
		t.Fatalf("--json with a bad manifest: exit %d, errors %+v", r.code, rep.Errors)
	}
}

func TestGraphValidateCleanInit(t *testing.T) {
	dir := imageProject(t)
	if r := kiln(t, dir, "validate"); r.code != 0 || !strings.Contains(r.stdout, "4 assets") && !strings.Contains(r.stdout, "3 assets") {
		t.Fatalf("validate: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for format, want := range map[string]string{"dot": "digraph", "mermaid": "graph", "json": `"props/crate:material"`} {
		r := kiln(t, dir, "graph", "--format", format)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("graph --format %s: exit %d, output %q", format, r.code, r.stdout)
		}
	}
	if r := kiln(t, dir, "build", "-q"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	if r := kiln(t, dir, "clean", "--cache"); r.code != 0 {
		t.Fatalf("clean: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/props/a.png")); !os.IsNotExist(err) {
		t.Fatalf("clean left out/props/a.png: %v", err)
	}

	fresh := filepath.Join(t.TempDir(), "game")
	if r := kiln(t, ".", "init", fresh); r.code != 0 {
		t.Fatalf("init: %d %s", r.code, r.stderr)
	}
	if r := kiln(t, ".", "init", fresh); r.code != 2 || !strings.Contains(r.stderr, "already") {
		t.Fatalf("second init: exit %d, %s", r.code, r.stderr)
	}
	if r := kiln(t, fresh, "build"); r.code != 0 {
		t.Fatalf("build of a fresh init: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, ".", "schema"); r.code != 0 || !json.Valid([]byte(r.stdout)) {
		t.Fatalf("schema: exit %d, valid JSON %v", r.code, json.Valid([]byte(r.stdout)))
	}
}

// BenchmarkNoopBuild measures kiln build on an unchanged project of image
// assets in 20 manifests, in process: manifest parsing, planning and the
// up-to-date check (issue 2's target: 50 ms for 1,000 assets, linear).
func BenchmarkNoopBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("assets=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if err := testproject.WriteImages(dir, n, 20); err != nil {
				b.Fatal(err)
			}
			var stderr bytes.Buffer
			if code := run(context.Background(), []string{"build", "-q", dir}, &stderr, &stderr); code != 0 {
				b.Fatalf("first build exit %d: %s", code, stderr.String())
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if code := run(context.Background(), []string{"build", "-q", dir}, &stderr, &stderr); code != 0 {
					b.Fatalf("no-op build exit %d: %s", code, stderr.String())
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAtlasExport(t *testing.T) {
	dir := imageProject(t)
	writeFiles(t, dir, map[string]string{"atlas.kiln.yaml": `version: 1
atlases:
  - id: ui/sheet
    include: ["props/*"]
    padding: 2
    formats: [json-hash, json-array, phaser-multiatlas, godot, libgdx]
`})
	rep, r := buildJSON(t, dir)
	if r.code != 0 {
		t.Fatalf("build exit %d: %s", r.code, r.stderr)
	}
	if got := statuses(rep)["ui/sheet:atlas"]; got != "built" {
		t.Fatalf("atlas stage %q, want built", got)
	}
	for _, f := range []string{"sheet.png", "sheet.json", "sheet.atlas", "sheet/props/a.tres"} {
		if _, err := os.Stat(filepath.Join(dir, "out/ui/sheet", f)); err != nil {
			t.Errorf("atlas output missing: %v", err)
		}
	}
	var hash struct {
		Frames map[string]struct{ Frame struct{ X, Y, W, H int } }
		Meta   struct{ Image string }
	}
	data, err := os.ReadFile(filepath.Join(dir, "out/ui/sheet/sheet.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &hash); err != nil {
		t.Fatal(err)
	}
	if len(hash.Frames) != 3 || hash.Meta.Image != "sheet.png" || hash.Frames["props/a"].Frame.W != 8 {
		t.Fatalf("sheet.json: %d frames, image %q, props/a %+v", len(hash.Frames), hash.Meta.Image, hash.Frames["props/a"])
	}
	// Editing one sprite re-packs the atlas; nothing else outside that
	// asset runs.
	writeFiles(t, dir, map[string]string{"art/c.png": string(testproject.PNG(33))})
	rep, _ = buildJSON(t, dir)
	if got, want := built(rep), []string{"props/c:source", "ui/sheet:atlas"}; !equal(got, want) {
		t.Fatalf("after editing art/c.png built %v, want %v", got, want)
	}
}

func TestValidateFindsCycles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml": "version: 1\nmodels: {exemplar: builtin:exemplar}\n",
		"a.kiln.yaml": `version: 1
assets:
  - {id: t/a, kind: tileable, prompt: stone, size: 64, from: t/b}
  - {id: t/b, kind: tileable, prompt: stone, size: 64, from: t/a}
`,
	})
	r := kiln(t, dir, "validate")
	if r.code != 2 || !strings.Contains(r.stderr, "dependency cycle: t/") || !strings.Contains(r.stderr, "a.kiln.yaml:3:") {
		t.Fatalf("validate of a cycle: exit %d\n%s", r.code, r.stderr)
	}
}
