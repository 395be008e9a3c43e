package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		rel     string
		wantErr string // "" = valid; else the exact message
	}{
		{"a.png", ""},
		{"dungeon/floor/albedo.png", ""},
		{"./a/./b.png", ""},
		{"a..b/c...png", ""},
		{"", `path "" is empty; give a path relative to the project`},
		{"../a.png", `path "../a.png" contains ".." and could leave the project; use a path inside the project without ".." elements`},
		{"a/../../b", `path "a/../../b" contains ".." and could leave the project; use a path inside the project without ".." elements`},
		{"a/..", `path "a/.." contains ".." and could leave the project; use a path inside the project without ".." elements`},
		{"/etc/passwd", `path "/etc/passwd" is absolute; use a path relative to the project`},
		{`a\b.png`, `path "a\\b.png" contains a backslash; use forward slashes (a/b.png)`},
		{`..\..\x`, `path "..\\..\\x" contains a backslash; use forward slashes (../../x)`},
		{"C:/Windows/x", `path "C:/Windows/x" starts with a Windows drive letter; use a path relative to the project`},
		{"c:x", `path "c:x" starts with a Windows drive letter; use a path relative to the project`},
		{"a\x00b", `path "a\x00b" contains a NUL byte; remove it`},
		{".", `path "." names the folder itself, not something inside it; give the path of a file inside the project`},
		{"./", `path "./" names the folder itself, not something inside it; give the path of a file inside the project`},
	}
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			err := Validate(tc.rel)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.rel, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want %q", tc.rel, tc.wantErr)
			}
			if err.Error() != tc.wantErr {
				t.Errorf("Validate(%q)\n got %s\nwant %s", tc.rel, err, tc.wantErr)
			}
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("error does not wrap ErrUnsafe")
			}
		})
	}
}

func TestJoinSymlinks(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "out")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{base, outside, filepath.Join(base, "real")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "real", "f.png"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"out/escape":       outside,                          // absolute, to a folder outside
		"out/escape_rel":   "../outside",                     // relative, to a folder outside
		"out/file_out":     filepath.Join(outside, "secret"), // a file outside
		"out/inside":       "real",                           // relative, inside
		"out/inside_abs":   filepath.Join(base, "real"),      // absolute, inside
		"out/chain":        "escape",                         // inside link to an outside link
		"out/dangling_in":  "not-yet",                        // missing, inside
		"out/dangling_out": "../../nowhere",                  // missing, outside
		"out/real/up":      "..",                             // the base itself
		"out/real/upup":    "../..",                          // above the base
		"linked_base":      "out",                            // base reached through a symlink
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Skipf("symlinks not supported here: %v", err)
		}
	}

	tests := []struct {
		base    string
		rel     string
		wantErr string // substring of the error; "" = allowed
	}{
		{base, "a/b/new.png", ""},
		{base, "real/f.png", ""},
		{base, "inside/f.png", ""},
		{base, "inside_abs/new.png", ""},
		{base, "dangling_in", ""},
		{base, "real/up/real/f.png", ""},
		{base, "escape/secret", "goes through the symlink " + filepath.Join(base, "escape") + ", which points to " + outside + ", outside " + base + "; remove the symlink or make it point inside " + base},
		{base, "escape/new/deeper.png", "points to " + outside},
		{base, "escape_rel/x", "points to " + outside},
		{base, "file_out", "points to " + filepath.Join(outside, "secret")},
		{base, "chain/secret", "points to " + outside},
		{base, "dangling_out", "(missing), outside"},
		{base, "real/upup/outside/secret", "points to " + root},
		{filepath.Join(root, "linked_base"), "real/f.png", ""},
		{filepath.Join(root, "linked_base"), "escape/secret", "outside " + filepath.Join(root, "linked_base")},
		{filepath.Join(root, "missing_base"), "x/y.png", ""},
		{base, "../outside/secret", `contains ".."`},
	}
	for _, tc := range tests {
		t.Run(tc.rel, func(t *testing.T) {
			got, err := Join(tc.base, tc.rel)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Join(%s, %q) = %v", tc.base, tc.rel, err)
				}
				if want := filepath.Join(tc.base, filepath.FromSlash(tc.rel)); got != want {
					t.Errorf("Join = %s, want %s", got, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Join(%s, %q) = %s, want error containing %q", tc.base, tc.rel, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Join(%s, %q) error\n got %s\nwant it to contain %s", tc.base, tc.rel, err, tc.wantErr)
			}
			if !errors.Is(err, ErrUnsafe) {
				t.Errorf("error does not wrap ErrUnsafe: %v", err)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	tests := []struct {
		base, path string
		want       bool
	}{
		{"/a/b", "/a/b", true},
		{"/a/b", "/a/b/c", true},
		{"/a/b", "/a/b/../b/c", true},
		{"/a/b", "/a/bc", false},
		{"/a/b", "/a", false},
		{"/a/b", "/a/b/../c", false},
		{"/", "/x", true},
		{"a", "a/b", true},
		{"a", "b", false},
		{"/a", "a", false},
		{"/a/b", "/a/b/..x", true},
	}
	for _, tc := range tests {
		if got := Within(tc.base, tc.path); got != tc.want {
			t.Errorf("Within(%q, %q) = %v, want %v", tc.base, tc.path, got, tc.want)
		}
	}
}
