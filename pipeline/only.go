package pipeline

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/internal/idglob"
	"github.com/kiln-dev/kiln/internal/spelling"
)

// onlyMatch resolves one --only name to the stages it selects: a plain
// name is an asset or a stage ID; a name with glob characters is a
// pattern over asset ids with the rules of a manifest's include: ("*"
// within one id segment, "**" across segments, see idglob). assets are
// the asset names of byAsset, sorted. A name that selects nothing is a
// Problem that says what it is closest to.
func (d *DAG) onlyMatch(name string, byAsset map[string][]int, assets []string) ([]int, *Problem) {
	if !idglob.HasMeta(name) {
		if is, ok := byAsset[name]; ok && name != "" {
			return is, nil
		}
		if i, ok := d.index[name]; ok {
			return []int{i}, nil
		}
		msg := fmt.Sprintf("no asset or stage is called %q", name)
		if s := closest(name, assets); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += "; `kiln graph` lists them"
		}
		return nil, &Problem{Message: msg}
	}
	var out []int
	for _, a := range assets {
		if a != "" && idglob.Match(name, a) {
			out = append(out, byAsset[a]...)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	msg := fmt.Sprintf("pattern %q matches no asset (\"*\" matches within one id segment, \"**\" across segments)", name)
	if near := nearestIDs(name, assets, 3); len(near) > 0 {
		msg += "; the nearest ids are " + strings.Join(near, ", ")
	} else {
		msg += "; the project has no assets"
	}
	return nil, &Problem{Message: msg}
}

// nearestIDs returns up to n of ids closest to a pattern, nearest first:
// by edit distance from the pattern's text without its glob characters
// to the id, cut to the pattern's length when that is shorter, so
// "hero/wlak*" finds "hero/walk" and "hero/walk-2" before "ui/button".
func nearestIDs(pattern string, ids []string, n int) []string {
	lit := strings.NewReplacer("**", "", "*", "", "?", "").Replace(pattern)
	if i := strings.IndexByte(lit, '['); i >= 0 {
		lit = lit[:i]
	}
	type cand struct {
		id   string
		dist int
	}
	var cs []cand
	for _, id := range ids {
		if id == "" {
			continue
		}
		head := id
		if r := []rune(id); len(r) > len([]rune(lit)) {
			head = string(r[:len([]rune(lit))])
		}
		cs = append(cs, cand{id, spelling.Distance(lit, head)*4 + spelling.Distance(lit, id)})
	}
	sort.SliceStable(cs, func(i, j int) bool {
		if cs[i].dist != cs[j].dist {
			return cs[i].dist < cs[j].dist
		}
		return cs[i].id < cs[j].id
	})
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, fmt.Sprintf("%q", cs[i].id))
	}
	return out
}
