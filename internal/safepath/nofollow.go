package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Writes never go through a symlink. Join allows a link that stays inside
// its base, which is right for reading; for writing, truncating and
// deleting, kiln refuses every symlink between a trusted folder (the
// project root, as the user named it) and the file, so that a link planted
// in a checkout can never redirect a write anywhere, inside the project or
// out of it. The functions below check every component with Lstat and open
// the final file with O_NOFOLLOW where the platform has it.

// LinkError is returned when a symlink stands on a path kiln would write
// through. It wraps ErrUnsafe.
type LinkError struct {
	// Link is the symlink found.
	Link string
	// Target is what it points to, as written in the link.
	Target string
	// Op says what kiln was about to do, e.g. "write the lock file".
	Op string
}

// Error names the link, its target and what to do.
func (e *LinkError) Error() string {
	op := e.Op
	if op == "" {
		op = "write there"
	}
	return fmt.Sprintf("%s is a symlink (to %s); kiln does not follow symlinks when it writes or deletes, so it will not %s; remove the link and run kiln again", e.Link, e.Target, op)
}

// Unwrap returns ErrUnsafe.
func (e *LinkError) Unwrap() error { return ErrUnsafe }

// linkError builds the LinkError for the symlink at p.
func linkError(p, op string) error {
	target, err := os.Readlink(p)
	if err != nil {
		target = "?"
	}
	return &LinkError{Link: p, Target: target, Op: op}
}

// CheckNoLinks checks that no existing component of dir below base is a
// symlink, and that each existing one is a folder. base itself is trusted
// and may be or contain a symlink. dir must be base or lie inside it (by
// spelling); components that do not exist yet are fine. op says what the
// caller is about to do, for the message.
func CheckNoLinks(base, dir, op string) error {
	_, err := walkDirs(base, dir, op, false)
	return err
}

// MkdirAll creates dir and any missing parents below base, one component
// at a time, refusing a symlink or a non-folder at any component (see
// CheckNoLinks). base must exist.
func MkdirAll(base, dir, op string) error {
	_, err := walkDirs(base, dir, op, true)
	return err
}

// walkDirs visits the components of dir below base in order, checking
// each existing one and, with create, making the missing ones.
func walkDirs(base, dir, op string, create bool) (string, error) {
	base, dir = filepath.Clean(base), filepath.Clean(dir)
	rel, err := filepath.Rel(base, dir)
	if err != nil || !Within(base, dir) {
		return "", fmt.Errorf("%s is not inside %s, so kiln will not %s there", dir, base, op)
	}
	if rel == "." {
		return dir, nil
	}
	cur := base
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("check %s (to %s): %w", cur, op, err)
			}
			if !create {
				return dir, nil
			}
			if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return "", fmt.Errorf("create folder %s (to %s): %w", cur, op, err)
			}
			if fi, err = os.Lstat(cur); err != nil {
				return "", fmt.Errorf("check %s (to %s): %w", cur, op, err)
			}
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", linkError(cur, op)
		case !fi.IsDir():
			return "", fmt.Errorf("%s is a file where a folder should be, so kiln cannot %s; move the file away or choose another folder", cur, op)
		}
	}
	return dir, nil
}

// JoinNoLinks is Join for writing: it validates rel, joins it to base and
// checks that no existing component of the result, the last one included,
// is a symlink.
func JoinNoLinks(base, rel, op string) (string, error) {
	if err := validate(base, rel); err != nil {
		return "", err
	}
	p := filepath.Join(base, filepath.FromSlash(path.Clean(rel)))
	if err := CheckNoLinks(base, filepath.Dir(p), op); err != nil {
		return "", err
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return "", linkError(p, op)
	}
	return p, nil
}

// OpenFile opens path like os.OpenFile, except that it never follows a
// symlink at the last component (O_NOFOLLOW) and never blocks on a named
// pipe or device: only a regular file is accepted. The folders above path
// must have been checked with CheckNoLinks or made with MkdirAll.
func OpenFile(path string, flag int, perm fs.FileMode, op string) (*os.File, error) {
	f, err := os.OpenFile(path, flag|noFollow|nonBlock, perm)
	if err != nil {
		if isLoop(err) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil, linkError(path, op)
			}
		}
		return nil, fmt.Errorf("open %s (to %s): %w", path, op, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("check %s (to %s): %w", path, op, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file (%s), so kiln will not %s; remove it and run kiln again", path, fi.Mode().Type(), op)
	}
	if nonBlock != 0 {
		clearNonBlock(f)
	}
	return f, nil
}

// isLoop reports whether err is the error O_NOFOLLOW gives for a symlink
// (ELOOP on Linux, EMLINK on FreeBSD).
func isLoop(err error) bool {
	return errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK)
}

// RemoveFile removes the file at path, never a folder and never what a
// symlink points to: a symlink there is refused, as kiln did not write it.
func RemoveFile(path, op string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return linkError(path, op)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a folder, not a file kiln wrote, so kiln will not %s; remove it by hand if you want it gone", path, op)
	}
	return os.Remove(path)
}
