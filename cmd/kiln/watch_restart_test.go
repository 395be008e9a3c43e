package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWatchKeepsRunningDiffusion saves an unrelated manifest while kiln
// watch is in the middle of a diffusion stage: the build restarts, the
// diffusion stage is not thrown away but taken over by the new build, so
// it generates once, and both assets end up built. Changing the stage
// itself mid-run cancels the stale run and generates the new one.
func TestWatchKeepsRunningDiffusion(t *testing.T) {
	lib := ortLibrary(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml": "version: 1\nmodels: {exemplar: builtin:exemplar}\n",
		"stone.kiln.yaml": `version: 1
assets:
  - {id: tex/stone, kind: tileable, prompt: stone, size: 128}
`,
		"moss.kiln.yaml": `version: 1
assets:
  - {id: tex/moss, kind: tileable, prompt: moss, size: 64}
`,
	})
	save := func(name, text string) {
		t.Helper()
		saveByRename(t, filepath.Join(dir, name), []byte(text))
	}
	log, waitFor := startWatch(t, "-v", "--ort-lib", lib, dir)
	generated := func(text, id string) int {
		return strings.Count(text, "msg=generated stage="+id+":generate ")
	}
	statusLines := func(text string) []string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if strings.Contains(l, " → ") && !strings.Contains(l, "level=") {
				out = append(out, l)
			}
		}
		return out
	}

	// 1. Unchanged stage: kept.
	waitFor("the stone to start generating", func(s string) bool {
		return strings.Contains(s, `msg="running stage" stage=tex/stone:generate`)
	})
	if generated(log.String(), "tex/stone") != 0 {
		t.Fatal("the stone was generated before the save; the test needs it in flight")
	}
	save("moss.kiln.yaml", "version: 1\nassets:\n  - {id: tex/moss, kind: tileable, prompt: moss, size: 64, seed: 7}\n")
	waitFor("the restarted build to finish", func(s string) bool {
		lines := statusLines(s)
		return len(lines) >= 2 && strings.Contains(lines[len(lines)-1], " built")
	})
	text := log.String()
	if !strings.Contains(text, "restarting (cancelled after") {
		t.Fatal("the save did not restart the build")
	}
	if !strings.Contains(text, `msg="taking over the run a superseded build left going" stage=tex/stone:generate`) {
		t.Fatal("the restarted build did not take over the stone's run")
	}
	if n := generated(text, "tex/stone"); n != 1 {
		t.Fatalf("the unchanged stone was generated %d times, want 1", n)
	}
	for _, f := range []string{"out/tex/stone.png", "out/tex/moss.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}

	// 2. Changed stage: the stale run stops, the new one runs.
	before := len(statusLines(text))
	save("stone.kiln.yaml", "version: 1\nassets:\n  - {id: tex/stone, kind: tileable, prompt: stone, size: 128, seed: 3}\n")
	waitFor("the stone to start again", func(s string) bool {
		return strings.Count(s, `msg="running stage" stage=tex/stone:generate`) == 2
	})
	save("stone.kiln.yaml", "version: 1\nassets:\n  - {id: tex/stone, kind: tileable, prompt: stone, size: 128, seed: 4}\n")
	waitFor("the build of the last save", func(s string) bool {
		lines := statusLines(s)
		return len(lines) >= before+2 && strings.Contains(lines[len(lines)-1], " built")
	})
	text = log.String()
	if n := generated(text, "tex/stone"); n != 2 {
		t.Fatalf("the stone was generated %d times in all, want 2 (the first run, then seed 4; seed 3's run is stale)", n)
	}
	if strings.Contains(text, "taking over the run a superseded build left going\" stage=tex/stone:generate") &&
		strings.Count(text, "taking over the run") != 1 {
		t.Fatal("a run of a changed stage was taken over")
	}
	for _, l := range statusLines(text) {
		if strings.Contains(l, "error") || strings.Contains(l, "failed in") && !strings.Contains(l, " 0 failed in ") {
			t.Errorf("watch reported a failure: %s", l)
		}
	}
}
