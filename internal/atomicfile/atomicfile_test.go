package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no previous file
		data     []byte
		perm     os.FileMode
	}{
		{"new file", nil, []byte("hello"), 0o644},
		{"replace", []byte("old content that is longer"), []byte("new"), 0o600},
		{"empty", []byte("x"), nil, 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f.txt")
			if tc.existing != nil {
				if err := os.WriteFile(p, tc.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFile(p, tc.data, tc.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.data) {
				t.Errorf("content = %q, want %q", got, tc.data)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tc.perm {
				t.Errorf("perm = %v, want %v", fi.Mode().Perm(), tc.perm)
			}
			if names := listDir(t, dir); len(names) != 1 || names[0] != "f.txt" {
				t.Errorf("folder holds %v, want only f.txt (no temporary files)", names)
			}
		})
	}
}

func TestCreateCommitAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.bin")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}

	// An aborted write leaves the old file and no temporary file.
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if !IsTemp(f.Name()) {
		t.Errorf("temporary name %q is not recognised by IsTemp", f.Name())
	}
	if filepath.Dir(f.Name()) != dir {
		t.Errorf("temporary file %s is not in the target's folder %s", f.Name(), dir)
	}
	if _, err := f.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	// While the write is pending the target still holds the old content.
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("target changed before Commit: %q", got)
	}
	f.Abort()
	f.Abort() // idempotent
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Errorf("after Abort target = %q, want old", got)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("after Abort folder holds %v, want only out.bin", names)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Abort: err = %v, want os.ErrClosed", err)
	}

	// A committed write replaces it; Abort after Commit does nothing.
	f, err = Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	f.Abort()
	if got, _ := os.ReadFile(p); string(got) != "new" {
		t.Errorf("after Commit target = %q, want new", got)
	}
	if err := f.Commit(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Commit: err = %v, want os.ErrClosed", err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Errorf("after Commit folder holds %v, want only out.bin", names)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
	}{
		{"missing folder", filepath.Join(dir, "nope", "f.txt")},
		{"folder path", dir + string(filepath.Separator)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteFile(tc.path, []byte("x"), 0o644); err == nil {
				t.Fatalf("WriteFile(%q) succeeded, want error", tc.path)
			}
		})
	}
	// Renaming over a folder fails and leaves no temporary file behind.
	target := filepath.Join(dir, "sub")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(target, []byte("x"), 0o644); err == nil {
		t.Fatal("WriteFile over a non-empty folder succeeded")
	}
	for _, n := range listDir(t, dir) {
		if IsTemp(n) {
			t.Errorf("temporary file %s left behind after failed rename", n)
		}
	}
}

func TestIsTempAndCleanTemps(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{".a.png.kiln-tmp-12345", true},
		{"a.png", false},
		{"a.png.kiln-tmp-1", false}, // not hidden: not ours
		{".hidden", false},
	}
	for _, tc := range tests {
		if got := IsTemp(filepath.Join("x", tc.name)); got != tc.want {
			t.Errorf("IsTemp(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}

	dir := t.TempDir()
	for _, n := range []string{"keep.png", ".keep.png.kiln-tmp-1", ".x.kiln-tmp-2"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := CleanTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the two temporary files", removed)
	}
	if names := listDir(t, dir); len(names) != 1 || names[0] != "keep.png" {
		t.Errorf("folder holds %v, want only keep.png", names)
	}
	if removed, err := CleanTemps(filepath.Join(dir, "missing")); err != nil || removed != nil {
		t.Errorf("CleanTemps(missing) = %v, %v; want nothing", removed, err)
	}
}

func TestCommitNoSyncAndSyncFS(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	f, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	if err := f.CommitNoSync(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "data" {
		t.Errorf("content = %q, want data", got)
	}
	if err := SyncFS(dir); err != nil {
		t.Fatal(err)
	}
	if err := SyncFS(filepath.Join(dir, "missing")); err == nil {
		t.Error("SyncFS of a missing path succeeded")
	}
}
