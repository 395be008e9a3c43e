package atlas

import "slices"

// This file keeps groups of rectangles (the frames of one animation) on one
// page. When a full page has to be filled and a group that fits on a page
// by itself would be split, the group is held back for a later page and the
// page is filled again without it. Groups too large for one page are split
// like any other rectangles.

// grouper fills pages under the one-page constraint.
type grouper struct {
	sr      *searcher
	groups  []int         // group per rectangle, -1 for none; nil: no groups
	members map[int][]int // group → its rectangles, in index order
	fits    map[int]bool  // group → fits on one page alone (memo)
	scratch []pos
}

func newGrouper(sr *searcher, groups []int) *grouper {
	gp := &grouper{sr: sr, groups: groups, members: map[int][]int{}, fits: map[int]bool{}}
	for i, g := range groups {
		if g >= 0 {
			gp.members[g] = append(gp.members[g], i)
		}
	}
	return gp
}

// fitsOnePage reports whether group g fits on one page by itself.
func (gp *grouper) fitsOnePage(g int) bool {
	if ok, seen := gp.fits[g]; seen {
		return ok
	}
	if gp.scratch == nil {
		gp.scratch = make([]pos, len(gp.sr.r.rects))
	}
	_, _, ok := gp.sr.fitOnePage(gp.members[g], gp.scratch)
	gp.fits[g] = ok
	return ok
}

// fillPage fills one full page from items (see searcher.fillPage) without
// splitting a group that fits on one page, and returns the page size; out
// marks what was placed.
func (gp *grouper) fillPage(items []int, out []pos) (int32, int32) {
	if len(gp.members) == 0 {
		return gp.sr.fillPage(items, out)
	}
	held := map[int]bool{} // groups kept off this page
	for {
		for _, i := range items {
			out[i] = pos{}
		}
		var cands []int
		for _, i := range items {
			if g := gp.groups[i]; g < 0 || !held[g] {
				cands = append(cands, i)
			}
		}
		if len(cands) == 0 {
			break
		}
		pw, ph := gp.sr.fillPage(cands, out)
		if gp.sr.ctx.Err() != nil {
			return pw, ph
		}
		placed, total := map[int]int{}, map[int]int{}
		for _, i := range cands {
			if g := gp.groups[i]; g >= 0 {
				total[g]++
				if out[i].placed {
					placed[g]++
				}
			}
		}
		var split []int
		for g, n := range total {
			if p := placed[g]; p > 0 && p < n {
				split = append(split, g)
			}
		}
		slices.Sort(split) // map order must not decide the layout
		again := false
		for _, g := range split {
			if gp.fitsOnePage(g) {
				held[g] = true
				again = true
			}
		}
		if !again {
			return pw, ph
		}
	}
	// Every rectangle left belongs to a group that some fill split: give
	// the first such group a page of its own.
	first := -1
	for g := range held {
		if first < 0 || g < first {
			first = g
		}
	}
	var rest []int
	for _, i := range items {
		if gp.groups[i] == first {
			rest = append(rest, i)
		}
	}
	pw, ph, ok := gp.sr.fitOnePage(rest, out)
	if !ok {
		return gp.sr.fillPage(rest, out)
	}
	return pw, ph
}
