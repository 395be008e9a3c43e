package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/testproject"
)

// crashAssets is the size of the crash-test project: enough that a build
// takes a good part of a second, so kills land in every phase of it.
const crashAssets = 160

// crashVersions is how many versions of the sources the crash test
// switches between.
const crashVersions = 5

// crashProject writes a testproject of crashAssets images in 8 manifests,
// plus a glTF material and an atlas reading some of them.
func crashProject(t *testing.T, dir string) {
	t.Helper()
	if err := testproject.WriteImages(dir, crashAssets, 8); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"aggregates.kiln.yaml": "version: 1\n" +
		"materials:\n  - {id: mat/crate, base_color: " + testproject.AssetID(1) + ", formats: [gltf, glb]}\n" +
		"atlases:\n  - {id: atl/set01, include: [\"set01/*\"]}\n"})
}

// writeVersion rewrites the sources for version v: odd-numbered images
// (among them the material's and some of the atlas's) change with v.
func writeVersion(t *testing.T, dir string, v int) {
	t.Helper()
	for i := 1; i < crashAssets; i += 2 {
		p := filepath.Join(dir, filepath.FromSlash(testproject.ImagePath(i)))
		// Remove, then create: ext4 flushes a file truncated and
		// rewritten in place on close, which makes this slow.
		os.Remove(p)
		if err := os.WriteFile(p, testproject.PNG(i+1000*v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// outputs snapshots a project's output folder, leaving out the temporary
// files of atomic writes (a killed build may leave those; the next build
// removes them).
func outputs(t *testing.T, dir string) (files map[string]string, temps []string) {
	t.Helper()
	files = snapshot(t, filepath.Join(dir, "out"))
	for rel := range files {
		if atomicfile.IsTemp(rel) {
			temps = append(temps, rel)
			delete(files, rel)
		}
	}
	sort.Strings(temps)
	return files, temps
}

// TestKillDuringBuild SIGKILLs kiln build at random moments of real builds
// of a project whose sources change between builds. After every kill each
// output must be absent (never built), or the complete version of one of
// the builds since the last finished one; outputs of a finished build are
// never lost. Every few kills a build runs to the end and must equal the
// known good build of its sources byte for byte, with no temporary file
// left; sometimes the output folder is deleted first, so everything comes
// from the cache, which must serve nothing corrupt.
func TestKillDuringBuild(t *testing.T) {
	t.Parallel()
	kills := 20
	if testing.Short() {
		kills = 6
	}
	start := time.Now()
	// Known good builds of every version: the first from nothing, the
	// others incremental (the final check below compares with a build
	// from nothing too).
	good := make([]map[string]string, crashVersions)
	ref := t.TempDir()
	crashProject(t, ref)
	var incremental time.Duration // how long a build after a change takes
	for v := range good {
		writeVersion(t, ref, v)
		start := time.Now()
		if r := kiln(t, ref, "build", "-q"); r.code != 0 {
			t.Fatalf("reference build of version %d: exit %d: %s", v, r.code, r.stderr)
		}
		if v > 0 {
			incremental = max(incremental, time.Since(start))
		}
		good[v], _ = outputs(t, ref)
	}
	t.Logf("a build after a change takes up to %v here", incremental)

	p := t.TempDir()
	crashProject(t, p)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	settled := -1           // version of the last build that finished
	since := map[int]bool{} // versions of killed builds since then
	v := 0
	finish := func(why string) {
		t.Helper()
		r := kiln(t, p, "build", "-q")
		if r.code != 0 {
			t.Fatalf("build after %s: exit %d: %s", why, r.code, r.stderr)
		}
		got, temps := outputs(t, p)
		if d := diffSnapshots(got, good[v]); d != "" || len(temps) > 0 {
			t.Fatalf("build of version %d after %s differs from the known good build:\n%s\ntemporary files: %v", v, why, d, temps)
		}
		settled, since = v, map[int]bool{}
	}
	var killedAt []string
	est := incremental + incremental/4 // kill within this long after the start
	for k := 1; k <= kills; k++ {
		// Another version than the last build's, so there is work.
		v = (v + 1 + rng.IntN(crashVersions-1)) % crashVersions
		writeVersion(t, p, v)
		cmd := exec.Command(kilnBin, "build", "-q")
		cmd.Dir = p
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		began := time.Now()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		delay := time.Duration(rng.Int64N(int64(est)))
		var err error
		select {
		case err = <-exited:
			// It finished first: builds of versions already in the
			// cache are quicker; aim lower next time.
			est = max(time.Since(began), 20*time.Millisecond)
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			err = <-exited
		}
		if err == nil {
			settled, since = v, map[int]bool{}
			killedAt = append(killedAt, "done")
		} else {
			since[v] = true
			killedAt = append(killedAt, delay.Round(time.Millisecond).String())
			est = max(est, incremental/2)
		}

		got, _ := outputs(t, p)
		for rel, sum := range got {
			ok := settled >= 0 && good[settled][rel] == sum
			for u := range since {
				ok = ok || good[u][rel] == sum
			}
			if !ok {
				t.Fatalf("kill %d (after %v): out/%s is neither absent nor a complete version of the builds since the last finished one", k, delay, rel)
			}
		}
		if settled >= 0 {
			for rel := range good[settled] {
				if _, ok := got[rel]; !ok {
					t.Fatalf("kill %d (after %v): out/%s, built by the last finished build, is gone", k, delay, rel)
				}
			}
		}
		switch {
		case k%8 == 0:
			// Everything from the cache: it must hold exactly the good
			// outputs of this version's stages that finished, and build
			// the rest.
			if err := os.RemoveAll(filepath.Join(p, "out")); err != nil {
				t.Fatal(err)
			}
			finish(fmt.Sprintf("kill %d and deleting the output folder", k))
		case k%4 == 0:
			finish(fmt.Sprintf("kill %d", k))
		}
	}
	t.Logf("%d kills in %v, at: %s", kills, time.Since(start).Round(time.Millisecond), strings.Join(killedAt, " "))
	finish("the last kill")
	// The cache, deleted outputs aside, agrees with a clean build.
	assertCleanBuild(t, p)
}
