package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kiln-dev/kiln/internal/atomicfile"
)

// noisePNG is a size x size PNG of random pixels: it does not compress,
// so its size is known (about 4 bytes a pixel).
func noisePNG(seed uint64, size int) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = byte(rng.Uint32())
	}
	img.Set(0, 0, color.NRGBA{1, 2, 3, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.String()
}

// diskProject is n noise images of about 64 KiB each, version v of their
// content, and a glTF material of the first.
func diskProject(t *testing.T, p string, n int, v uint64) {
	t.Helper()
	var m strings.Builder
	m.WriteString("version: 1\nassets:\n")
	files := map[string]string{"kiln.yaml": imageConfig}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&m, "  - {id: n/%d, kind: image, image: {source: art/%d.png}}\n", i, i)
		files[fmt.Sprintf("art/%d.png", i)] = noisePNG(v*1000+uint64(i), 128)
	}
	m.WriteString("materials:\n  - {id: mat/a, base_color: n/0, formats: [glb]}\n")
	files["m.kiln.yaml"] = m.String()
	writeFiles(t, p, files)
}

// mountTmpfs mounts a tmpfs of size bytes at dir, or skips the test when
// this process may not mount (not root, or no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (%v); TestWriteLimit simulates a failing disk without privileges", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// fill writes a file into dir leaving about free bytes of its file system
// available, and returns its path.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize)
	p := filepath.Join(dir, "filler")
	if avail > free {
		if err := os.WriteFile(p, make([]byte, avail-free), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// checkNoTemps fails if a temporary file of an atomic write is left
// under dir.
func checkNoTemps(t *testing.T, dir string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && atomicfile.IsTemp(p) {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
}

// checkOldOrNew fails unless every file of got equals the same file in
// old or in new, or (when absentOK) is missing.
func checkOldOrNew(t *testing.T, got, old, new map[string]string) {
	t.Helper()
	for rel, sum := range new {
		g, ok := got[rel]
		switch {
		case !ok && old[rel] == "":
			// never built: absent is fine
		case !ok:
			t.Errorf("out/%s: built before, now missing", rel)
		case g != sum && g != old[rel]:
			t.Errorf("out/%s: neither the previous nor the new complete version", rel)
		}
	}
	for rel := range got {
		if _, ok := new[rel]; !ok && old[rel] == "" {
			t.Errorf("out/%s: unexpected file", rel)
		}
	}
}

// cleanOutputs builds version v of a diskProject of n images in a fresh
// folder and returns its outputs.
func cleanOutputs(t *testing.T, n int, v uint64) map[string]string {
	t.Helper()
	p := t.TempDir()
	diskProject(t, p, n, v)
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("clean build: exit %d: %s", r.code, r.stderr)
	}
	return snapshot(t, filepath.Join(p, "out"))
}

// TestFullDisk fills the file system of the output folder, then of the
// cache (real tmpfs mounts, so real ENOSPC): every failure names the file
// and says the disk is full; every output is absent, the previous complete
// version or the new complete version; no temporary file is left; and
// once space is freed the next build finishes and matches a clean build.
func TestFullDisk(t *testing.T) {
	t.Parallel()
	const n = 6
	old, new := cleanOutputs(t, n, 1), cleanOutputs(t, n, 2)

	t.Run("output folder", func(t *testing.T) {
		p := t.TempDir()
		out := filepath.Join(p, "out")
		mountTmpfs(t, out, 4<<20)
		diskProject(t, p, n, 1)
		if r := kiln(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
		}
		filler := fill(t, out, 40<<10) // less than one output
		diskProject(t, p, n, 2)
		rep, r := buildJSON(t, p, "--keep-going")
		if r.code != 1 {
			t.Fatalf("build on a full disk: exit %d, want 1: %s", r.code, r.stderr)
		}
		errs := stageErrors(rep)
		if len(errs) == 0 {
			t.Fatal("no stage failed on a full disk")
		}
		for id, e := range errs {
			if !strings.Contains(e, ": no space left on device (the disk is full: free some space and run kiln build again; stages that finished are kept)") ||
				!strings.Contains(e, "publish ") {
				t.Errorf("%s: %s", id, e)
			}
		}
		os.Remove(filler)
		checkOldOrNew(t, snapshot(t, out), old, new)
		checkNoTemps(t, out)
		if r := kiln(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("build after freeing space: exit %d: %s", r.code, r.stderr)
		}
		if d := diffSnapshots(snapshot(t, out), new); d != "" {
			t.Fatalf("outputs differ from a clean build:\n%s", d)
		}
	})

	t.Run("output folder filling up during a first build", func(t *testing.T) {
		p := t.TempDir()
		out := filepath.Join(p, "out")
		mountTmpfs(t, out, 160<<10) // room for two images
		diskProject(t, p, n, 2)
		if r := kiln(t, p, "build", "-q", "-k"); r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		checkOldOrNew(t, snapshot(t, out), nil, new)
		checkNoTemps(t, out)
	})

	t.Run("cache", func(t *testing.T) {
		p := t.TempDir()
		mountTmpfs(t, filepath.Join(p, ".kiln"), 4<<20)
		diskProject(t, p, n, 1)
		if r := kiln(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
		}
		filler := fill(t, filepath.Join(p, ".kiln"), 40<<10)
		diskProject(t, p, n, 2)
		r := kiln(t, p, "build", "-q", "--keep-going")
		if r.code != 1 || !strings.Contains(r.stderr, "no space left on device (the disk is full: free some space and run kiln build again; stages that finished are kept)") ||
			!strings.Contains(r.stderr, filepath.Join(p, ".kiln", "cache")) {
			t.Fatalf("build with a full cache: exit %d: %s", r.code, r.stderr)
		}
		checkOldOrNew(t, snapshot(t, filepath.Join(p, "out")), old, new)
		os.Remove(filler)
		if r := kiln(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("build after freeing space: exit %d: %s", r.code, r.stderr)
		}
		if d := diffSnapshots(snapshot(t, filepath.Join(p, "out")), new); d != "" {
			t.Fatalf("outputs differ from a clean build:\n%s", d)
		}
	})
}

// TestWriteLimit simulates a disk that fails writes without privileges:
// kiln runs under a file-size limit (ulimit -f), so writing any output or
// cache file over 16 KiB fails ("file too large"). The failure names the
// file, the outputs of the earlier build are kept, and without the limit
// the next build finishes and matches a clean build.
func TestWriteLimit(t *testing.T) {
	t.Parallel()
	const n = 4
	old, new := cleanOutputs(t, n, 1), cleanOutputs(t, n, 2)
	p := t.TempDir()
	diskProject(t, p, n, 1)
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
	}
	diskProject(t, p, n, 2)
	// dash counts ulimit -f in 512-byte blocks, bash in KiB: 32 is at
	// most 32 KiB, less than one image.
	cmd := exec.Command("/bin/sh", "-c", `ulimit -f 32 && exec "$0" "$@"`, kilnBin, "build", "-q", "-k")
	cmd.Dir = p
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("build under a file-size limit: %v\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "file too large") || !strings.Contains(errb.String(), filepath.Join(p, ".kiln", "cache")) {
		t.Fatalf("error does not name the file and the cause:\n%s", errb.String())
	}
	checkOldOrNew(t, snapshot(t, filepath.Join(p, "out")), old, new)
	checkNoTemps(t, filepath.Join(p, "out"))
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("build without the limit: exit %d: %s", r.code, r.stderr)
	}
	if d := diffSnapshots(snapshot(t, filepath.Join(p, "out")), new); d != "" {
		t.Fatalf("outputs differ from a clean build:\n%s", d)
	}
}
