package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// badFilesProject is eight hand-made images n/0..n/7, a material reading
// n/7, an atlas of n/0..n/3, and one more image, other/ok, that nothing
// else uses.
func badFilesProject(t *testing.T) string {
	t.Helper()
	p := t.TempDir()
	var m strings.Builder
	m.WriteString("version: 1\nassets:\n")
	files := map[string]string{"kiln.yaml": imageConfig}
	for i := 0; i < 8; i++ {
		fmt.Fprintf(&m, "  - {id: n/%d, kind: image, image: {source: art/%d.png}}\n", i, i)
		files[fmt.Sprintf("art/%d.png", i)] = pngBytes(100 + i)
	}
	m.WriteString("  - {id: other/ok, kind: image, image: {source: art/ok.png}}\n")
	files["art/ok.png"] = pngBytes(99)
	m.WriteString("materials:\n  - {id: mat/crate, base_color: n/7, formats: [gltf, glb]}\n")
	m.WriteString("atlases:\n  - {id: ui/atlas, include: [n/0, n/1, n/2, n/3]}\n")
	files["m.kiln.yaml"] = m.String()
	writeFiles(t, p, files)
	return p
}

// stageErrors maps each failed stage of a --json report to its error,
// written as the CLI prints it (where: message).
func stageErrors(rep jsonReport) map[string]string {
	out := map[string]string{}
	for _, s := range rep.Stages {
		if s.Status == "failed" && s.Error != nil {
			out[s.ID] = s.Error.Where + ": " + s.Error.Message
		}
	}
	return out
}

// TestBadSourceFiles breaks the sources of a built project in every way a
// file can be bad (missing, a folder, a named pipe, truncated, not an
// image, unreadable): with --keep-going each is a clear error naming the
// file, every other asset builds, outputs already built stay as they
// were, and once the files are fixed the build matches a clean one.
func TestBadSourceFiles(t *testing.T) {
	t.Parallel()
	p := badFilesProject(t)
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
	}
	before := snapshot(t, filepath.Join(p, "out"))

	art := func(i int) string { return filepath.Join(p, "art", fmt.Sprintf("%d.png", i)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Remove(art(0)))
	must(os.Remove(art(1)))
	must(os.Mkdir(art(1), 0o755))
	must(os.Remove(art(2)))
	must(syscall.Mkfifo(art(2), 0o644))
	good := pngBytes(103)
	must(os.WriteFile(art(3), []byte(good[:len(good)/2]), 0o644))
	must(os.WriteFile(art(4), []byte("this is not an image\n"), 0o644))
	must(os.WriteFile(art(5), []byte(pngBytes(555)), 0o644)) // a valid edit
	want := map[string]string{
		"n/0:source": "m.kiln.yaml:3:5: source file art/0.png not found (looked for $P/art/0.png); add the file or fix the path in the manifest",
		"n/1:source": "m.kiln.yaml:4:5: source file art/1.png is a folder; name a file",
		"n/2:source": "m.kiln.yaml:5:5: source file art/2.png is not a regular file (a named pipe); name a file",
		"n/3:source": "m.kiln.yaml:6:5: decode png image $P/art/3.png: png: invalid format: not enough pixel data",
		"n/4:source": "m.kiln.yaml:7:5: read image $P/art/4.png: image: unknown format (kiln reads PNG and JPEG files)",
	}
	if os.Geteuid() != 0 {
		must(os.Chmod(art(6), 0))
		t.Cleanup(func() { os.Chmod(art(6), 0o644) })
		want["n/6:source"] = "m.kiln.yaml:8:5: source file art/6.png: open $P/art/6.png: permission denied"
	} else {
		t.Log("running as root, where chmod 000 does not stop reads: the unreadable-file case is covered by the folder and named-pipe cases")
	}
	for id, w := range want {
		want[id] = strings.ReplaceAll(w, "$P", p)
	}

	rep, r := buildJSON(t, p, "--keep-going")
	if r.code != 1 {
		t.Fatalf("build with broken sources: exit %d, want 1\n%s", r.code, r.stderr)
	}
	got := stageErrors(rep)
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: error\n%q\nwant\n%q", id, got[id], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("failed stages %v, want %d", keys(got), len(want))
	}
	st := statuses(rep)
	for id, s := range map[string]string{"n/5:source": "built", "n/6:source": "cached", "n/7:source": "cached",
		"mat/crate:material": "cached", "ui/atlas:atlas": "skipped"} {
		if id == "n/6:source" && os.Geteuid() != 0 {
			continue
		}
		if st[id] != s {
			t.Errorf("%s is %q, want %q", id, st[id], s)
		}
	}
	after := snapshot(t, filepath.Join(p, "out"))
	for rel, sum := range before {
		if rel == "n/5.png" {
			if after[rel] == sum {
				t.Errorf("out/%s was not rebuilt from its edited source", rel)
			}
			continue
		}
		if after[rel] != sum {
			t.Errorf("out/%s changed or vanished although its asset failed or did not change", rel)
		}
	}

	// Fixed: the build finishes and matches a clean build of the same
	// sources.
	must(os.Remove(art(1)))
	must(os.Remove(art(2)))
	for _, i := range []int{0, 1, 2, 3, 4} {
		must(os.WriteFile(art(i), []byte(pngBytes(100+i)), 0o644))
	}
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("build after fixing the sources: exit %d: %s", r.code, r.stderr)
	}
	assertCleanBuild(t, p)
}

// assertCleanBuild copies project p's sources to a fresh folder, builds
// them from nothing and checks p's outputs are byte for byte the same.
func assertCleanBuild(t *testing.T, p string) {
	t.Helper()
	fresh := t.TempDir()
	src := snapshot(t, p, "out", ".kiln")
	for rel := range src {
		data, err := os.ReadFile(filepath.Join(p, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, fresh, map[string]string{rel: string(data)})
	}
	if r := kiln(t, fresh, "build", "-q"); r.code != 0 {
		t.Fatalf("clean build: exit %d: %s", r.code, r.stderr)
	}
	if d := diffSnapshots(snapshot(t, filepath.Join(p, "out")), snapshot(t, filepath.Join(fresh, "out"))); d != "" {
		t.Fatalf("outputs differ from a clean build:\n%s", d)
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestUnwritableOutput puts files where kiln needs folders (as root,
// permissions cannot make a folder unwritable): the output folder itself,
// and one subfolder. Each is a clear error naming the path; with
// --keep-going the assets elsewhere still build.
func TestUnwritableOutput(t *testing.T) {
	t.Parallel()
	t.Run("output folder is a file", func(t *testing.T) {
		p := badFilesProject(t)
		writeFiles(t, p, map[string]string{"out": "not a folder"})
		r := kiln(t, p, "build", "-q", "-k")
		// Found before any stage runs: nothing could be published.
		if want := "kiln: " + filepath.Join(p, "out") + " is a file where a folder should be, so kiln cannot write outputs there; move the file away or choose another folder"; r.code != 1 || strings.TrimSpace(r.stderr) != want {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("output subfolder is a file", func(t *testing.T) {
		p := badFilesProject(t)
		writeFiles(t, p, map[string]string{"out/n": "not a folder"})
		rep, r := buildJSON(t, p, "-k")
		if r.code != 1 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		got := stageErrors(rep)
		if w := "m.kiln.yaml:3:5: publish output image.png: " + filepath.Join(p, "out", "n") + " is a file where a folder should be, so kiln cannot publish n/0.png; move the file away or choose another folder"; got["n/0:source"] != w {
			t.Errorf("n/0:source error\n%q\nwant\n%q", got["n/0:source"], w)
		}
		// What does not depend on n/* builds; what does is skipped.
		st := statuses(rep)
		for id, want := range map[string]string{"other/ok:source": "built", "mat/crate:material": "skipped", "ui/atlas:atlas": "skipped"} {
			if st[id] != want {
				t.Errorf("%s is %q, want %q", id, st[id], want)
			}
		}
		for _, f := range []string{"other/ok.png"} {
			if _, err := os.Stat(filepath.Join(p, "out", filepath.FromSlash(f))); err != nil {
				t.Errorf("with --keep-going: %v", err)
			}
		}
	})
	if os.Geteuid() != 0 {
		t.Run("read-only output folder", func(t *testing.T) {
			p := badFilesProject(t)
			if err := os.MkdirAll(filepath.Join(p, "out", "n"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(filepath.Join(p, "out", "n"), 0o555)
			t.Cleanup(func() { os.Chmod(filepath.Join(p, "out", "n"), 0o755) })
			r := kiln(t, p, "build", "-q", "-k")
			if r.code != 1 || !strings.Contains(r.stderr, "publish n/0.png: create temporary file for "+filepath.Join(p, "out", "n", "0.png")) ||
				!strings.Contains(r.stderr, "permission denied") {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
		})
	}
}

// arm64ELF is the start of a 64-bit little-endian ELF shared object for
// AArch64: what FindLibrary reads to tell the architecture.
func arm64ELF() string {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	binary.LittleEndian.PutUint16(h[16:], 3)   // ET_DYN
	binary.LittleEndian.PutUint16(h[18:], 183) // EM_AARCH64
	binary.LittleEndian.PutUint32(h[20:], 1)
	return string(h) + strings.Repeat("\x00", 4096)
}
