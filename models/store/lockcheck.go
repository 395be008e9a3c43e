package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// LockMismatchError reports a model folder that does not hold what its
// kiln.lock entry pins, or a kiln.lock entry that does not match
// kiln.yaml. Its message names the model, the file and what to do.
type LockMismatchError struct {
	// Model is the kiln.yaml model name.
	Model string
	// Dir is the model folder (absolute).
	Dir string
	// File is the slash-separated path inside Dir of the file that
	// differs; "" when the folder is missing or the entry is wrong as a
	// whole.
	File string
	// Problem says what differs ("is missing", "is 10 bytes, kiln.lock
	// records 12", ...).
	Problem string
	// Entry is the model's kiln.lock entry, nil when it has none.
	Entry *LockEntry
	// Where is kiln.yaml's position of the model's hf:, for an entry
	// that does not match it.
	Where manifests.Pos
}

// Error says what differs and how to restore the locked files or move
// the lock.
func (e *LockMismatchError) Error() string {
	what := e.Dir
	if e.File != "" {
		what = filepath.Join(e.Dir, filepath.FromSlash(e.File))
	}
	switch {
	case e.Entry == nil:
		return fmt.Sprintf("model %s: %s; run kiln models pull %s (or kiln build --pull) to download it and pin it in %s", e.Model, e.Problem, e.Model, LockName)
	case e.Where.IsValid():
		return fmt.Sprintf("%s: model %s: %s; run kiln models pull %s to pull what kiln.yaml names and pin it in %s", e.Where, e.Model, e.Problem, e.Model, LockName)
	case e.File == "":
		return fmt.Sprintf("model %s: %s %s; run kiln models pull %s (or kiln build --pull) to download the files %s pins (commit %s of %s)",
			e.Model, what, e.Problem, e.Model, LockName, shortCommit(e.Entry.Commit), e.Entry.Ref())
	}
	return fmt.Sprintf("model %s: %s %s; run kiln models pull %s to restore the files %s pins (commit %s of %s), or kiln models pull --update %s to move the lock to the commit %s points to now",
		e.Model, what, e.Problem, e.Model, LockName, shortCommit(e.Entry.Commit), e.Entry.Ref(), e.Model, e.Entry.Revision)
}

// CheckLocked checks that the model folder dir holds the files entry
// pins: each present as a regular file (symlinks inside the folder are
// followed) with the locked size, then with the locked SHA-256. Sizes are
// checked first, so a missing or truncated file is found without reading
// anything; hashes come from hashes (see models.HashCache), so a folder
// that did not change since it was last hashed is not read again. Files
// the entry does not list (kiln-manifest.json) are not looked at. The
// first difference is returned as a *LockMismatchError.
func CheckLocked(ctx context.Context, name, dir string, entry *LockEntry, hashes *models.HashCache) error {
	mismatch := func(file, problem string) error {
		return &LockMismatchError{Model: name, Dir: dir, File: file, Problem: problem, Entry: entry}
	}
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return mismatch("", "does not exist")
	case err != nil:
		return fmt.Errorf("model %s: %w", name, err)
	case !st.IsDir():
		return mismatch("", "is a file, not a model folder")
	}
	paths := make([]string, len(entry.Files))
	for i, f := range entry.Files {
		p, err := safepath.Join(dir, f.Path)
		if err != nil {
			return fmt.Errorf("model %s: %w", name, err)
		}
		paths[i] = p
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return mismatch(f.Path, "is missing")
		case err != nil:
			return fmt.Errorf("model %s: %w", name, err)
		case !fi.Mode().IsRegular():
			return mismatch(f.Path, "is not a regular file")
		case fi.Size() != f.Size:
			return mismatch(f.Path, fmt.Sprintf("is %d bytes, %s records %d", fi.Size(), LockName, f.Size))
		}
	}
	for i, f := range entry.Files {
		sum, _, err := hashes.SHA256(ctx, paths[i])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("model %s: %w", name, err)
		}
		if sum != f.SHA256 {
			return mismatch(f.Path, fmt.Sprintf("has sha256 %s, %s records %s (modified or corrupt)", sum, LockName, f.SHA256))
		}
	}
	return nil
}

// CheckLocks is kiln build's check of the model folders it uses (the
// kiln.yaml models called names) against root's kiln.lock: a model with
// hf: must have an entry pulled from what kiln.yaml names, and every
// model with an entry must hold exactly its files (see CheckLocked).
// Hashes are remembered in kiln's cache folder cacheDir ("" remembers
// nothing), the memory models.Folder.Fingerprint uses, so a build that
// changes nothing reads no model file. It returns every problem, joined.
func CheckLocks(ctx context.Context, root string, cfg *manifests.Config, names []string, cacheDir string) error {
	lock, err := ReadLock(root)
	if err != nil {
		return err
	}
	hashes := models.OpenHashCache(cacheDir)
	defer hashes.Save()
	seen := map[string]bool{}
	sort.Strings(names)
	var errs []error
	for _, name := range names {
		m := cfg.Models[name]
		if seen[name] || m == nil || m.Builtin != "" {
			continue
		}
		seen[name] = true
		if err := checkModelLock(ctx, root, m, lock.Models[name], hashes); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkModelLock checks one configured folder model against its entry.
func checkModelLock(ctx context.Context, root string, m *manifests.Model, entry *LockEntry, hashes *models.HashCache) error {
	if entry == nil && m.HF == nil {
		return nil // a folder of the user's own: nothing pins it
	}
	dir, err := safepath.Join(root, m.Path)
	if err != nil {
		return fmt.Errorf("model %s: %w", m.Name, err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return fmt.Errorf("model %s: %w", m.Name, err)
	}
	switch {
	case entry == nil:
		return &LockMismatchError{Model: m.Name, Dir: dir, Problem: fmt.Sprintf("kiln.yaml pulls it from %s, but %s has no entry for it", m.HF.Ref(), LockName)}
	case m.HF != nil && !entry.Pins(m.HF):
		return &LockMismatchError{Model: m.Name, Dir: dir, Entry: entry, Where: m.HF.Pos,
			Problem: fmt.Sprintf("kiln.yaml pulls it from %s, but %s pins %s (commit %s)", m.HF.Ref(), LockName, entry.Ref(), shortCommit(entry.Commit))}
	}
	return CheckLocked(ctx, m.Name, dir, entry, hashes)
}
