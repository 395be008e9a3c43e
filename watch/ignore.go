package watch

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// skippedDirs are folder names never watched, wherever they are in the
// project: version control, package managers, editor settings (JetBrains
// rewrites .idea/workspace.xml whenever focus changes) and kiln's own
// working folder (cache, state, lock).
var skippedDirs = map[string]bool{
	".git": true, ".hg": true, ".svn": true, ".bzr": true, "_darcs": true, ".jj": true,
	"node_modules": true,
	".idea":        true, ".vscode": true,
	".kiln": true,
}

// skippedFiles are file names that are operating-system noise.
var skippedFiles = map[string]bool{
	".DS_Store": true, "Thumbs.db": true, "desktop.ini": true,
}

// IsTempName reports whether a base file name is an editor's or kiln's
// temporary, swap, lock or backup file, whose changes never mean the
// project changed: "name~" (backup), ".name.swp"/".swo"/".swx" (vim swap
// and probe), "4913" (vim's write-permission probe, and 4913+123k when that
// exists), "*.tmp", "name___jb_tmp___"/"name___jb_old___" (JetBrains safe
// write), "name.vsctmp" (VS Code atomic save), ".#name" and "#name#"
// (Emacs lock and auto-save), ".name.kate-swp", ".goutputstream-*" (GTK
// editors), "sedXXXXXX" (sed -i's temporary copy: "sed" and six letters or
// digits, no extension) and kiln's own ".name.kiln-tmp-*".
func IsTempName(base string) bool {
	switch {
	case base == "":
		return false
	case strings.HasSuffix(base, "~"),
		strings.HasSuffix(base, ".tmp"),
		strings.HasSuffix(base, ".vsctmp"),
		strings.HasSuffix(base, "___jb_tmp___"),
		strings.HasSuffix(base, "___jb_old___"),
		strings.HasPrefix(base, ".#"),
		len(base) > 1 && base[0] == '#' && base[len(base)-1] == '#',
		strings.HasPrefix(base, ".goutputstream-"),
		base[0] == '.' && strings.HasSuffix(base, ".kate-swp"),
		atomicfile.IsTemp(base):
		return true
	}
	if base[0] == '.' && isVimSwap(path.Ext(base)) {
		return true
	}
	return isVimProbe(base) || isSedTemp(base)
}

// isSedTemp reports whether base is the temporary file GNU sed -i writes
// beside the file it edits (mkstemp's "sedXXXXXX").
func isSedTemp(base string) bool {
	if len(base) != 9 || !strings.HasPrefix(base, "sed") {
		return false
	}
	for _, c := range base[3:] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isVimSwap reports whether ext is a vim swap extension: ".swp", then
// ".swo", ".swn", ... down to ".swa" when older ones exist, and ".swx"
// for the probe vim writes to check a folder is writable.
func isVimSwap(ext string) bool {
	if len(ext) != 4 || ext[:3] != ".sw" {
		return false
	}
	c := ext[3]
	return 'a' <= c && c <= 'p' || c == 'x'
}

// isVimProbe reports whether base is the file vim creates to test that it
// may create files in a folder before writing: "4913", or 4913 plus a
// multiple of 123 when that name is taken.
func isVimProbe(base string) bool {
	if len(base) < 4 || len(base) > 9 {
		return false
	}
	n, err := strconv.Atoi(base)
	if err != nil || n < 4913 || base[0] == '0' {
		return false
	}
	return (n-4913)%123 == 0
}

// Ignore decides which paths of a project the watcher skips. Its zero
// value is not usable; make one with NewIgnore. It is safe for concurrent
// use, as it never changes after NewIgnore.
type Ignore struct {
	root  string   // absolute, cleaned
	paths []string // absolute, cleaned: folders or files skipped with all they hold
	globs []string // path.Match patterns; with no slash matched per path element
}

// NewIgnore returns the rules for the project at root: the folders and
// files of skippedDirs, skippedFiles and IsTempName, plus extra. Each
// extra entry is either a path (relative to root, or absolute) of a folder
// or file to skip with everything under it, such as kiln's output and
// cache folders, or a glob pattern (path.Match syntax, slash-separated).
// A pattern without a slash is matched against every element of a path
// ("*.psd", "build"); one with a slash against the whole project-relative
// path ("art/wip/*").
func NewIgnore(root string, extra ...string) (*Ignore, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve project folder %s: %w", root, err)
	}
	ig := &Ignore{root: filepath.Clean(abs)}
	for _, e := range extra {
		if e == "" {
			continue
		}
		if strings.ContainsAny(e, "*?[") {
			if _, err := path.Match(e, ""); err != nil {
				return nil, fmt.Errorf("ignore pattern %q: %w; use path.Match syntax such as \"*.psd\" or \"art/wip/*\"", e, err)
			}
			ig.globs = append(ig.globs, filepath.ToSlash(e))
			continue
		}
		p := filepath.FromSlash(e)
		if !filepath.IsAbs(p) {
			p = filepath.Join(ig.root, p)
		}
		ig.paths = append(ig.paths, filepath.Clean(p))
	}
	return ig, nil
}

// Root returns the absolute project folder the rules apply to.
func (ig *Ignore) Root() string { return ig.root }

// Match reports whether the watcher skips p, an absolute path or one
// relative to the project root. Paths outside the project are skipped; the
// root itself is not.
func (ig *Ignore) Match(p string) bool {
	if !filepath.IsAbs(p) {
		p = filepath.Join(ig.root, p)
	}
	p = filepath.Clean(p)
	if !safepath.Within(ig.root, p) {
		return true
	}
	for _, q := range ig.paths {
		if safepath.Within(q, p) {
			return true
		}
	}
	rel, err := filepath.Rel(ig.root, p)
	if err != nil || rel == "." {
		return false
	}
	rel = filepath.ToSlash(rel)
	elems := strings.Split(rel, "/")
	for _, e := range elems {
		if skippedDirs[e] {
			return true
		}
	}
	base := elems[len(elems)-1]
	if skippedFiles[base] || IsTempName(base) {
		return true
	}
	for _, g := range ig.globs {
		if strings.Contains(g, "/") {
			// Match the path and each folder above it, so "art/wip/*"
			// also skips what those folders hold.
			for i := range elems {
				if ok, _ := path.Match(g, strings.Join(elems[:i+1], "/")); ok {
					return true
				}
			}
			continue
		}
		for _, e := range elems {
			if ok, _ := path.Match(g, e); ok {
				return true
			}
		}
	}
	return false
}

// Rel returns p (absolute) relative to the project root, slash-separated,
// as Batch paths are written.
func (ig *Ignore) Rel(p string) string {
	rel, err := filepath.Rel(ig.root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}
