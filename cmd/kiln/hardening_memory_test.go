package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// memoryLimitKB is the address-space limit (ulimit -v) of the memory
// tests: 4 GB, where the largest sizes the default limits allow cannot
// fit.
const memoryLimitKB = 4000000

// kilnUnderMemoryLimit runs kiln in dir under the address-space limit and
// returns its result and peak resident memory in KiB.
func kilnUnderMemoryLimit(t *testing.T, dir string, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -v 4000000 && exec "$0" "$@"`, kilnBin}, args...)...)
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
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return result{code, out.String(), errb.String()}, rss
}

// TestMemoryLimitEveryKind builds, under ulimit -v 4000000, assets of every
// generated kind at sizes the default limits allow but 4 GB cannot hold:
// each is refused before it allocates, with exit 1, its manifest
// position, the estimate against the budget and the size to lower; never
// a Go runtime crash. A small asset still builds under the same limit.
// The outcome depends on the limit alone (the estimates are arithmetic),
// not on timing or on the machine's free memory.
func TestMemoryLimitEveryKind(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nassets:\n"
	config := imageConfig + "  sd: models/sd\n"
	tests := []struct {
		name     string
		manifest string
		stage    string // the refused stage's id, or the start of it (frames and variations fail alike)
		what     string // what it would have done
	}{
		{name: "tileable", manifest: "  - {id: big/wall, kind: tileable, model: ex, prompt: red brick wall, size: 8192}\n",
			stage: "big/wall:generate", what: `generate 8192x8192 with model "ex"`},
		{name: "texture with every map", manifest: "  - {id: big/floor, kind: texture, model: ex, prompt: mossy cobblestone, size: 8192, texture: {maps: [albedo, normal, height, roughness, ao, orm, metallic], metallic: map, tile: xy}}\n",
			stage: "big/floor:generate", what: `generate 8192x8192 with model "ex"`},
		{name: "sprite sheet", manifest: "  - {id: big/fire, kind: sprite-sheet, model: ex, prompt: fire, size: 4096, sprite: {frames: 64}}\n",
			stage: "big/fire:frame_", what: `generate 4096x4096 with model "ex"`},
		{name: "concept art with hires", manifest: "  - {id: big/cave, kind: concept-art, model: ex, prompt: lava cave, size: 4096, concept: {variations: 8, hires: {scale: 2, strength: 0.35}}}\n",
			stage: "big/cave:variation_", what: `generate 4096x4096 with model "ex"`},
		{name: "Stable Diffusion folder", manifest: "  - {id: big/sd, kind: tileable, model: sd, prompt: stone, size: 8192, steps: 1}\n",
			stage: "big/sd:generate", what: `generate 8192x8192 with model "sd"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := t.TempDir()
			writeFiles(t, p, map[string]string{"kiln.yaml": config, "m.kiln.yaml": head + tc.manifest})
			writeTurbo(t, p, "models/sd")
			r, rss := kilnUnderMemoryLimit(t, p, "build", "-q")
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			if strings.Contains(r.stderr, "fatal error") || strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Fatalf("the Go runtime crashed:\n%s", r.stderr)
			}
			got := firstLine(r.stderr)
			want := regexp.MustCompile(`^kiln: build failed: (\d+ stages failed; first: )?stage ` + regexp.QuoteMeta(tc.stage) + `\S* failed: m\.kiln\.yaml:3:5: not enough memory to ` +
				regexp.QuoteMeta(tc.what) + `: it needs an estimated [0-9.]+ [GT]iB of (memory|address space) \(.*\), but [0-9.]+ [MG]iB is available under .*; lower size \(m\.kiln\.yaml:3:\d+\) to \d+x\d+ or less, or `)
			if !want.MatchString(got) {
				t.Errorf("stderr\n%s\ndoes not match\n%s", r.stderr, want)
			}
			if rss > 150<<10 {
				t.Errorf("peak resident memory %d KiB: the stage allocated before it was refused", rss)
			}
		})
	}
	t.Run("a small asset builds", func(t *testing.T) {
		t.Parallel()
		ortLibrary(t)
		p := t.TempDir()
		writeFiles(t, p, map[string]string{"kiln.yaml": imageConfig, "m.kiln.yaml": head + "  - {id: small, kind: tileable, model: ex, prompt: stone, size: 64, steps: 4}\n"})
		if r, _ := kilnUnderMemoryLimit(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("exit %d under ulimit -v %d:\n%s", r.code, memoryLimitKB, r.stderr)
		}
	})
}
