package main

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/internal/testproject"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// ortLibrary returns the ONNX Runtime library the binary will find (the
// same search: KILN_ORT_LIB, the system, kiln's cache), or skips the test.
func ortLibrary(t *testing.T) string {
	t.Helper()
	lib, _, err := models.FindLibrary(models.LibraryOptions{})
	if err != nil {
		t.Skipf("ONNX Runtime library not found (run ./taskw setup or set KILN_ORT_LIB): %v", err)
	}
	return lib
}

// writeTurbo writes a tiny generated SD-Turbo-like model folder at
// dir/rel (real ONNX graphs, small random weights).
func writeTurbo(t *testing.T, dir, rel string) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := testmodels.Write(p, testmodels.Turbo, testmodels.Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// symlink makes link (relative to dir) point to target.
func symlink(t *testing.T, dir, link, target string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(link))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// snapshot maps every regular file under dir (slash-separated relative
// path) to its sha256, skipping the paths named in skip. A missing dir is
// empty.
func snapshot(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out, err := walkSnapshot(dir, skip, false)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// worldSnapshot is snapshot of everything under dir: regular files by
// content, folders, links by their targets, and other files by their
// type, so that a test sees any change kiln makes to the tree around a
// project.
func worldSnapshot(t *testing.T, dir string, skip []string) map[string]string {
	t.Helper()
	out, err := walkSnapshot(dir, skip, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// walkSnapshot does the walk of snapshot (all false: regular files only)
// and worldSnapshot. A skipped folder is not entered; a skipped file is
// left out (and its folder's other entries are still walked).
func walkSnapshot(dir string, skip []string, all bool) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if slices.Contains(skip, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			out[rel] = hex.EncodeToString(sum[:])
		case !all:
		case d.IsDir():
			out[rel] = "folder"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "link to " + target
		default:
			out[rel] = d.Type().String()
		}
		return nil
	})
	return out, err
}

// diffSnapshots describes how two snapshots differ, "" when equal.
func diffSnapshots(a, b map[string]string) string {
	var lines []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			lines = append(lines, "only in first: "+k)
		} else if w != v {
			lines = append(lines, "differs: "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			lines = append(lines, "only in second: "+k)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// imageConfig is testproject's kiln.yaml plus the built-in model, for
// projects that mix hand-made and generated assets.
const imageConfig = testproject.Config + "models:\n  ex: builtin:exemplar\n"

// pngBytes is an 8x8 PNG for projects.
func pngBytes(seed int) string { return string(testproject.PNG(seed)) }

// lines trims and splits stderr for messages.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// containsAll reports whether s holds every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
