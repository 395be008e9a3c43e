// Package idglob matches slash-separated names (asset ids, project paths)
// against globs: path.Match syntax within a segment, and "**" as a whole
// segment for any number of segments. It is the one definition of the
// pattern language that manifests' include: and manifests: globs and
// kiln build --only share, so a pattern means the same everywhere.
package idglob

import (
	"path"
	"strings"
)

// HasMeta reports whether s uses glob syntax ("*", "?" or "["), that is,
// whether it is a pattern rather than a plain name.
func HasMeta(s string) bool { return strings.ContainsAny(s, "*?[") }

// Match reports whether name matches glob. "*" matches within one
// segment, "**" zero or more whole segments. A malformed glob matches
// nothing.
func Match(glob, name string) bool {
	return MatchSegments(strings.Split(glob, "/"), strings.Split(name, "/"))
}

// MatchSegments is Match on a glob and a name already split at "/", for
// callers that match one glob against many names.
func MatchSegments(g, n []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for len(g) > 0 && g[0] == "**" {
				g = g[1:]
			}
			if len(g) == 0 {
				return true
			}
			for i := range n {
				if MatchSegments(g, n[i:]) {
					return true
				}
			}
			return false
		}
		if len(n) == 0 {
			return false
		}
		if ok, _ := path.Match(g[0], n[0]); !ok {
			return false
		}
		g, n = g[1:], n[1:]
	}
	return len(n) == 0
}
