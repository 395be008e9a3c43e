// Package safepath joins untrusted relative paths (asset ids, output paths,
// source image paths from manifests) to a base folder so that the result
// cannot leave that folder: not by "..", not by an absolute path or a
// Windows drive letter, and not through a symlink that points outside.
//
// Paths are slash-separated, as written in manifests, on every platform.
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

// ErrUnsafe is wrapped by every error this package returns for a path that
// is rejected, so callers can tell bad input from I/O failures.
var ErrUnsafe = errors.New("unsafe path")

// Error describes a rejected path: which path, against which base, why,
// and what to do instead.
type Error struct {
	// Path is the path as given.
	Path string
	// Base is the folder the path had to stay in ("" when only the path's
	// form was checked).
	Base string
	// Reason says what is wrong, e.g. `contains ".."`.
	Reason string
	// Fix says what to do about it.
	Fix string
}

// Error formats the rejection as `path "p" <reason>; <fix>`.
func (e *Error) Error() string {
	return fmt.Sprintf("path %q %s; %s", e.Path, e.Reason, e.Fix)
}

// Unwrap returns ErrUnsafe.
func (e *Error) Unwrap() error { return ErrUnsafe }

// where names the base for messages.
func where(base string) string {
	if base == "" {
		return "the project"
	}
	return base
}

// Validate checks the form of a relative, slash-separated path without
// touching the file system: it must be non-empty and must not be absolute,
// start with a Windows drive letter, contain a backslash, a NUL byte or a
// ".." element. Manifest validation uses it to reject bad paths early;
// Join calls it too.
func Validate(rel string) error {
	return validate("", rel)
}

func validate(base, rel string) error {
	bad := func(reason, fix string) error {
		return &Error{Path: rel, Base: base, Reason: reason, Fix: fix}
	}
	inside := "use a path relative to " + where(base)
	switch {
	case rel == "":
		return bad("is empty", "give a path relative to "+where(base))
	case strings.IndexByte(rel, 0) >= 0:
		return bad("contains a NUL byte", "remove it")
	case strings.Contains(rel, `\`):
		return bad("contains a backslash", fmt.Sprintf("use forward slashes (%s)", strings.ReplaceAll(rel, `\`, "/")))
	case hasDriveLetter(rel):
		return bad("starts with a Windows drive letter", inside)
	case strings.HasPrefix(rel, "/"):
		return bad("is absolute", inside)
	}
	for rest := rel; rest != ""; {
		elem, next, _ := strings.Cut(rest, "/")
		if elem == ".." {
			return bad(`contains ".." and could leave `+where(base), `use a path inside `+where(base)+` without ".." elements`)
		}
		rest = next
	}
	if path.Clean(rel) == "." {
		return bad("names the folder itself, not something inside it", "give the path of a file inside "+where(base))
	}
	return nil
}

// hasDriveLetter reports whether p starts like "C:" (a Windows drive).
func hasDriveLetter(p string) bool {
	if len(p) < 2 || p[1] != ':' {
		return false
	}
	c := p[0]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// Join validates rel (see Validate), joins it to base and checks that no
// existing component of the result is a symlink resolving outside base
// (base itself may be or contain a symlink). Components that do not exist
// yet are fine: the caller may be about to create them. It returns the
// joined path in base's spelling (symlinks not resolved).
//
// The check is made at call time: a caller that needs protection against a
// concurrent attacker swapping folders must not rely on it alone.
func Join(base, rel string) (string, error) {
	if err := validate(base, rel); err != nil {
		return "", err
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return "", fmt.Errorf("resolve base folder %s: %w", base, err)
	}
	realBase, err := filepath.EvalSymlinks(absBase)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("resolve base folder %s: %w", base, err)
		}
		// Nothing exists below a missing base, so no symlink can escape.
		return filepath.Join(base, filepath.FromSlash(rel)), nil
	}
	parts := strings.Split(path.Clean(rel), "/")
	cur := absBase
	for _, part := range parts {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				// The rest does not exist yet, or cannot: a file stands
				// where a folder should be, so there is no link to
				// follow. The caller's create reports that clearly.
				break
			}
			return "", fmt.Errorf("check path %s: %w", cur, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if err := checkLink(base, rel, realBase, cur); err != nil {
			return "", err
		}
	}
	return filepath.Join(base, filepath.FromSlash(rel)), nil
}

// checkLink rejects the symlink at link unless it resolves inside realBase.
func checkLink(base, rel, realBase, link string) error {
	target, err := filepath.EvalSymlinks(link)
	if err == nil {
		if Within(realBase, target) {
			return nil
		}
		return &Error{Path: rel, Base: base,
			Reason: fmt.Sprintf("goes through the symlink %s, which points to %s, outside %s", link, target, base),
			Fix:    fmt.Sprintf("remove the symlink or make it point inside %s", base)}
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("resolve symlink %s: %w", link, err)
	}
	// A dangling link: judge its target by its spelling.
	dest, rerr := os.Readlink(link)
	if rerr != nil {
		return fmt.Errorf("read symlink %s: %w", link, rerr)
	}
	if !filepath.IsAbs(dest) {
		// Relative targets resolve from the link's folder; use the
		// resolved spelling of that folder so ".." is counted correctly.
		dir, derr := filepath.EvalSymlinks(filepath.Dir(link))
		if derr != nil {
			return fmt.Errorf("resolve folder of symlink %s: %w", link, derr)
		}
		dest = filepath.Join(dir, dest)
	}
	if Within(realBase, dest) {
		return nil
	}
	return &Error{Path: rel, Base: base,
		Reason: fmt.Sprintf("goes through the symlink %s, which points to %s (missing), outside %s", link, dest, base),
		Fix:    fmt.Sprintf("remove the symlink or make it point inside %s", base)}
}

// Within reports whether path is base or lies inside it, comparing the
// cleaned spellings (it does not resolve symlinks; Join does). Both must be
// absolute or both relative to the same folder.
func Within(base, path string) bool {
	rel, err := filepath.Rel(base, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
