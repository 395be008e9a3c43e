package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/manifests"
)

// handMadeProject is a project of hand-made images, which builds without a
// model.
func handMadeProject(t *testing.T, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml":     "version: 1\n",
		"a.kiln.yaml":   manifest,
		"art/a.png":     pngBytes(1),
		"art/b.png":     pngBytes(2),
		"art/c.png":     pngBytes(3),
		"art/stone.png": pngBytes(4),
	})
	return dir
}

// brokenAt13 is a manifest whose line 13 is indented unlike its entry;
// yaml.v3 alone names line 11, where the list item starts.
const brokenAt13 = `version: 1
# Hand-made UI images.
assets:
  - id: ui/a
    kind: image
    image: {source: art/a.png}
  - id: ui/b
    kind: image
    image: {source: art/b.png}
  - id: ui/c
    kind: image
    image:
   source: art/c.png
`

// TestSyntaxErrorOutput checks what validate and build print for a YAML
// mistake: the position of the token, the source line with a caret, and
// nothing that follows from the file not being read, in text and JSON.
func TestSyntaxErrorOutput(t *testing.T) {
	dir := handMadeProject(t, brokenAt13)
	writeFiles(t, dir, map[string]string{"b.kiln.yaml": "version: 1\natlases:\n  - {id: ui/atlas, include: [ui/a, \"ui/*\"]}\n"})
	want := "kiln: a.kiln.yaml:13:4: invalid YAML: did not find expected '-' indicator (this line is not indented like the lines around it; line it up with the keys of the entry it belongs to)\n" +
		" 13 |    source: art/c.png\n" +
		"    |    ^\n"
	for _, args := range [][]string{{"validate"}, {"build"}} {
		r := kiln(t, dir, args...)
		if r.code != 2 || r.stderr != want {
			t.Errorf("kiln %s: exit %d, stderr:\n%s\nwant exit 2 and:\n%s", args[0], r.code, r.stderr, want)
		}
	}
	rep, r := buildJSON(t, dir)
	if r.code != 2 || len(rep.Errors) != 1 {
		t.Fatalf("kiln build --json: exit %d, errors %+v", r.code, rep.Errors)
	}
	if e := rep.Errors[0]; e.Where != "a.kiln.yaml:13:4" || strings.Contains(e.Message, "^") || !strings.HasPrefix(e.Message, "invalid YAML: did not find expected '-' indicator") {
		t.Errorf("JSON error %+v: want where a.kiln.yaml:13:4 and the message without the excerpt", e)
	}
}

// TestValidateFindsBuildErrors checks the two problems kiln validate used
// to leave to the build: a missing exemplar file (an error, where the
// manifest names it) and a prompt builtin:exemplar cannot read (a
// warning, from validate and build alike).
func TestValidateFindsBuildErrors(t *testing.T) {
	dir := handMadeProject(t, "version: 1\nassets:\n"+
		"  - {id: env/floor, kind: tileable, prompt: mossy stone, size: 64, steps: 1, exemplars: [art/stones.png]}\n")
	r := kiln(t, dir, "validate")
	want := `kiln: a.kiln.yaml:3:90: assets[0].exemplars[0]: source file art/stones.png not found (did you mean "art/stone.png"?)` + "\n"
	if r.code != 2 || r.stderr != want {
		t.Errorf("validate: exit %d, stderr:\n%s\nwant exit 2 and:\n%s", r.code, r.stderr, want)
	}

	dir = handMadeProject(t, "version: 1\nassets:\n"+
		"  - {id: env/knight, kind: tileable, prompt: a brave knight, size: 64, steps: 1}\n"+
		"  - {id: ui/a, kind: image, image: {source: art/a.png}}\n")
	warn := `kiln: warning: a.kiln.yaml:3:46: assets[0].prompt: prompt "a brave knight" names no material builtin:exemplar knows`
	r = kiln(t, dir, "validate")
	if r.code != 0 || !strings.HasPrefix(r.stderr, warn) || !strings.Contains(r.stderr, "stone, tiles") {
		t.Errorf("validate: exit %d, stderr:\n%s\nwant exit 0 and a warning starting %s and listing the materials", r.code, r.stderr, warn)
	}
	r = kiln(t, dir, "build", "--dry-run")
	if !strings.HasPrefix(r.stderr, warn) {
		t.Errorf("build: stderr:\n%s\nwant the warning first", r.stderr)
	}
}

// TestOnlyGlobs checks kiln build --only with patterns: the include:
// rules, and an error naming the nearest ids for a pattern that matches
// nothing.
func TestOnlyGlobs(t *testing.T) {
	dir := handMadeProject(t, "version: 1\nassets:\n"+
		"  - {id: ui/a, kind: image, image: {source: art/a.png}}\n"+
		"  - {id: ui/icons/b, kind: image, image: {source: art/b.png}}\n"+
		"  - {id: env/c, kind: image, image: {source: art/c.png}}\n")
	built := func(args ...string) []string {
		t.Helper()
		rep, r := buildJSON(t, dir, args...)
		if r.code != 0 {
			t.Fatalf("build %v: exit %d: %s", args, r.code, r.stderr)
		}
		var ids []string
		for _, s := range rep.Stages {
			if !slices.Contains(ids, s.Asset) {
				ids = append(ids, s.Asset)
			}
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		only []string
		want string
	}{
		{[]string{"--only", "ui/*"}, "ui/a"},
		{[]string{"--only", "ui/**"}, "ui/a ui/icons/b"},
		{[]string{"--only", "**/c", "--only", "ui/a"}, "env/c ui/a"},
	} {
		if got := strings.Join(built(c.only...), " "); got != c.want {
			t.Errorf("build %v built %s, want %s", c.only, got, c.want)
		}
	}
	r := kiln(t, dir, "build", "--only", "iu/*")
	want := `pattern "iu/*" matches no asset ("*" matches within one id segment, "**" across segments); the nearest ids are "ui/a", "ui/icons/b", "env/c"`
	if r.code != 2 || !strings.Contains(r.stderr, want) {
		t.Errorf("build --only iu/*: exit %d, stderr:\n%s\nwant exit 2 and %s", r.code, r.stderr, want)
	}
}

// TestEveryAtlasHeuristic validates and builds an atlas with each
// heuristic name the schema offers: every name that validates packs.
func TestEveryAtlasHeuristic(t *testing.T) {
	var m strings.Builder
	m.WriteString("version: 1\nassets:\n" +
		"  - {id: s/a, kind: image, image: {source: art/a.png}}\n" +
		"  - {id: s/b, kind: image, image: {source: art/b.png}}\n" +
		"  - {id: s/c, kind: image, image: {source: art/c.png}}\n" +
		"atlases:\n")
	hs := manifests.AtlasHeuristics()
	if len(hs) < 12 {
		t.Fatalf("AtlasHeuristics() = %v", hs)
	}
	for _, h := range hs {
		fmt.Fprintf(&m, "  - {id: atlas/%s, include: [\"s/*\"], heuristic: %s}\n", h, h)
	}
	dir := handMadeProject(t, m.String())
	if r := kiln(t, dir, "validate"); r.code != 0 {
		t.Fatalf("validate: exit %d: %s", r.code, r.stderr)
	}
	if r := kiln(t, dir, "build", "-q"); r.code != 0 {
		t.Fatalf("build: exit %d: %s", r.code, r.stderr)
	}
	for _, h := range hs {
		if _, err := os.Stat(filepath.Join(dir, "out", "atlas", h, h+".json")); err != nil {
			t.Errorf("heuristic %s: %v", h, err)
		}
	}
	// The README's names are the schema's.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"bssf", "blsf", "baf", "bl", "cp", "global", "best"} {
		if !slices.Contains(hs, h) || !strings.Contains(string(readme), h) {
			t.Errorf("heuristic %s: in the schema %v, in the README %v", h, slices.Contains(hs, h), strings.Contains(string(readme), h))
		}
	}
}

// TestWatchSyntaxErrorLine checks kiln watch reports a YAML mistake on
// line 13 at line 13, with no "unknown asset" from the files that refer
// to the broken file's assets, and builds again once it is fixed.
func TestWatchSyntaxErrorLine(t *testing.T) {
	good := strings.Replace(brokenAt13, "   source: art/c.png", "      source: art/c.png", 1)
	dir := handMadeProject(t, good)
	writeFiles(t, dir, map[string]string{"b.kiln.yaml": "version: 1\natlases:\n  - {id: ui/atlas, include: [ui/a, ui/c]}\n"})
	log, waitFor := startWatch(t, dir)
	waitFor("the first build", func(s string) bool { return strings.Contains(s, " built") })
	saveByRename(t, filepath.Join(dir, "a.kiln.yaml"), []byte(brokenAt13))
	waitFor("the error", func(s string) bool { return strings.Contains(s, "last good outputs kept") })
	text := log.String()
	if !strings.Contains(text, "  a.kiln.yaml:13:4: invalid YAML: did not find expected '-' indicator") || !strings.Contains(text, "   13 |    source: art/c.png\n") {
		t.Errorf("watch did not report line 13 with its excerpt:\n%s", text)
	}
	if strings.Contains(text, "unknown asset") {
		t.Errorf("watch reported follow-on errors:\n%s", text)
	}
}

// startWatch runs kiln watch with args until the test ends, collecting
// what it prints, and returns the output and a function that waits (up to
// two minutes, polling) until the output satisfies ok. The output is
// logged when the test ends.
func startWatch(t *testing.T, args ...string) (*lockedBuffer, func(what string, ok func(string) bool)) {
	t.Helper()
	watch := exec.Command(kilnBin, append([]string{"watch"}, args...)...)
	log := &lockedBuffer{}
	watch.Stdout, watch.Stderr = log, log
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		watch.Process.Signal(os.Interrupt)
		watch.Wait()
		t.Logf("watch said:\n%s", log.String())
	})
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !ok(log.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("waited two minutes for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return log, waitFor
}
