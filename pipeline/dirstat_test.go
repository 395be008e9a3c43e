package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestStatDirsMatchesStat checks that stat'ing through folder handles
// gives what statFile gives (the records decide whether a file is hashed
// again, so they must be equal to the bit), for every kind of file.
func TestStatDirsMatchesStat(t *testing.T) {
	root := t.TempDir()
	mk := func(rel, data string) string {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
		return p
	}
	file := mk("art/a.png", "pixels")
	mk("art/sub/b.png", "more")
	link := filepath.Join(root, "art/link.png")
	if err := os.Symlink("a.png", link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(root, "art/dangling.png")
	if err := os.Symlink("nope.png", dangling); err != nil {
		t.Fatal(err)
	}
	dirLink := filepath.Join(root, "linked")
	if err := os.Symlink("art", dirLink); err != nil {
		t.Fatal(err)
	}
	c := newStatDirs()
	defer c.close()
	tests := []string{
		file,
		filepath.Join(root, "art/sub/b.png"),
		filepath.Join(root, "art/sub"),
		link,
		dangling,
		filepath.Join(dirLink, "a.png"),
		filepath.Join(root, "art/missing.png"),
		filepath.Join(root, "missing/a.png"),
		filepath.Join(root, "art/a.png/x"),
	}
	for _, p := range tests {
		for _, follow := range []bool{true, false} {
			for range 2 { // the second time through the open handle
				mode, rec, err := c.stat(p, follow)
				fi, want, werr := statFile(p, follow)
				if (err == nil) != (werr == nil) || err != nil && (errors.Is(err, fs.ErrNotExist) != errors.Is(werr, fs.ErrNotExist) || err.Error() != werr.Error()) {
					t.Errorf("%s (follow %v): err %v, statFile's %v", p, follow, err, werr)
					continue
				}
				if err == nil && (rec != want || mode != fi.Mode()) {
					t.Errorf("%s (follow %v): %+v %v, statFile's %+v %v", p, follow, rec, mode, want, fi.Mode())
				}
			}
		}
	}
}
