// Package atomicfile writes files so that a crash or kill at any moment
// leaves either the old complete file or the new complete file at the
// target path, never a partial one.
//
// The data goes to a temporary file in the target's folder (same file
// system, so the final rename is atomic), which is flushed to disk, renamed
// over the target, and followed by a flush of the folder so the rename
// itself survives a power loss.
//
// Temporary files are named ".<name>.kiln-tmp-<random>" so that file
// watchers and clean-up code can recognise and ignore them (see IsTemp).
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempMarker is the part of a temporary file's name that identifies it as
// one of ours.
const tempMarker = ".kiln-tmp-"

// DefaultPerm is the permission Create gives new files.
const DefaultPerm fs.FileMode = 0o644

// IsTemp reports whether the base name of path looks like a temporary file
// made by this package. Watchers use it to ignore in-flight writes and
// clean-up code to find files left behind by a killed process.
func IsTemp(path string) bool {
	base := filepath.Base(path)
	return strings.HasPrefix(base, ".") && strings.Contains(base, tempMarker)
}

// WriteFile atomically replaces path with data. The file gets exactly the
// permission bits perm (the umask is not applied, as the file is created by
// rename). The folder holding path must exist.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := CreatePerm(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// File is a pending atomic write. Write to it, then call Commit to put it
// in place or Abort to throw it away. A File is not safe for concurrent use.
type File struct {
	f      *os.File
	path   string
	perm   fs.FileMode
	closed bool
}

// Create starts an atomic write of path with permission DefaultPerm.
// Nothing is visible at path until Commit succeeds.
func Create(path string) (*File, error) {
	return CreatePerm(path, DefaultPerm)
}

// CreatePerm is Create with explicit permission bits for the final file.
func CreatePerm(path string, perm fs.FileMode) (*File, error) {
	dir, base := filepath.Split(path)
	if base == "" || base == "." || base == ".." {
		return nil, fmt.Errorf("atomic write of %q: not a file name; give the path of a file, not a folder", path)
	}
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempMarker+"*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	return &File{f: f, path: path, perm: perm}, nil
}

// Write writes p to the temporary file.
func (f *File) Write(p []byte) (int, error) {
	if f.closed {
		return 0, fmt.Errorf("write %s: %w", f.path, os.ErrClosed)
	}
	return f.f.Write(p)
}

// Name returns the temporary file's path (not the target's).
func (f *File) Name() string { return f.f.Name() }

// Path returns the target path.
func (f *File) Path() string { return f.path }

// Commit flushes the data to disk and renames the temporary file over the
// target, then flushes the folder. On error the temporary file is removed
// and the target is left as it was.
func (f *File) Commit() error {
	return f.commit(true)
}

// CommitNoSync is Commit without the flushes to disk. The replacement is
// still atomic for other processes and survives this process being killed,
// but after a power loss the target may hold the old content, or be empty
// on some file systems. Callers that flush the whole file system once at
// the end of a batch (see SyncFS) use it to avoid a flush per file, and
// must verify what they read back after a crash.
func (f *File) CommitNoSync() error {
	return f.commit(false)
}

func (f *File) commit(sync bool) error {
	if f.closed {
		return fmt.Errorf("commit %s: %w", f.path, os.ErrClosed)
	}
	f.closed = true
	tmp := f.f.Name()
	fail := func(op string, err error) error {
		f.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("%s %s: %w", op, f.path, err)
	}
	if err := f.f.Chmod(f.perm); err != nil {
		return fail("set permissions of", err)
	}
	if sync {
		if err := f.f.Sync(); err != nil {
			return fail("flush", err)
		}
	}
	if err := f.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("close %s: %w", f.path, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rename into place %s: %w", f.path, err)
	}
	if !sync {
		return nil
	}
	return SyncDir(filepath.Dir(f.path))
}

// Abort discards the pending write and removes the temporary file. It is
// safe to call after Commit (it then does nothing), so it can be deferred.
func (f *File) Abort() {
	if f.closed {
		return
	}
	f.closed = true
	f.f.Close()
	os.Remove(f.f.Name())
}

// SyncDir flushes a folder's entries to disk, so that renames and creations
// in it survive a power loss. File systems that cannot sync folders are
// tolerated.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open folder %s to flush it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !isNotSupported(err) {
		return fmt.Errorf("flush folder %s: %w", dir, err)
	}
	return nil
}

// CleanTemps removes temporary files left in dir by a process that was
// killed in the middle of an atomic write. It returns the removed paths.
// Only call it when no other process can be writing to dir (for example
// while holding the project lock).
func CleanTemps(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s for leftover temporary files: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if e.IsDir() || !IsTemp(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("remove leftover temporary file %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
