package safepath

import (
	"os"
	"path/filepath"
	"testing"
)

// TestJoinThroughFile checks that a file standing where a folder of the
// path should be is not an error of Join (nothing can be followed past
// it); creating the path then fails with the file system's clear error.
func TestJoinThroughFile(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"f/a.png", "f/g/a.png"} {
		got, err := Join(base, rel)
		if err != nil || got != filepath.Join(base, filepath.FromSlash(rel)) {
			t.Errorf("Join(%q) = %q, %v", rel, got, err)
		}
	}
	// A base that is itself a file.
	if got, err := Join(filepath.Join(base, "f"), "a.png"); err != nil || got != filepath.Join(base, "f", "a.png") {
		t.Errorf("Join(file, a.png) = %q, %v", got, err)
	}
}
