package atlas

import (
	"cmp"
	"slices"
)

// This file runs one packing attempt ("trial"): a set of rectangles into
// one bin with one heuristic, either online (in a sorted order) or with
// the global best-fit offline variant.

// sz is a rectangle size in bin space (inflated by padding and extrusion).
type sz struct{ w, h int32 }

// pos is where a trial put a rectangle.
type pos struct {
	x, y   int32
	rot    bool
	placed bool
}

// sortOrder is the order the online variant takes rectangles in; all are
// descending, as the paper found descending orders best.
type sortOrder uint8

const (
	byArea sortOrder = iota
	byPerimeter
	byMaxSide
	byHeight
	byWidth
	numOrders
)

var orderNames = [numOrders]string{"area", "perimeter", "maxside", "height", "width"}

// config is one way of packing: a heuristic, online or global, and for
// online the order.
type config struct {
	heur   heuristic
	global bool
	order  sortOrder
}

func (c config) String() string {
	if c.global {
		return c.heur.String() + "-global"
	}
	return c.heur.String() + "/" + orderNames[c.order]
}

// sortItems returns items sorted by o, descending, ties broken by the other
// side and then by index, so the order never depends on the input order of
// equal rectangles beyond their index.
func sortItems(rects []sz, items []int, o sortOrder) []int {
	out := slices.Clone(items)
	key := func(r sz) int64 {
		switch o {
		case byPerimeter:
			return int64(r.w) + int64(r.h)
		case byMaxSide:
			return int64(max(r.w, r.h))
		case byHeight:
			return int64(r.h)
		case byWidth:
			return int64(r.w)
		default:
			return int64(r.w) * int64(r.h)
		}
	}
	slices.SortFunc(out, func(a, b int) int {
		ra, rb := rects[a], rects[b]
		if c := cmp.Compare(key(rb), key(ra)); c != 0 {
			return c
		}
		if c := cmp.Compare(max(rb.w, rb.h), max(ra.w, ra.h)); c != 0 {
			return c
		}
		if c := cmp.Compare(rb.h, ra.h); c != 0 {
			return c
		}
		if c := cmp.Compare(rb.w, ra.w); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return out
}

// trialResult summarises a trial.
type trialResult struct {
	placed       int   // number of rectangles placed
	area         int64 // their summed bin-space area
	usedW, usedH int32 // extents in bin space
}

// runner holds reusable buffers for trials.
type runner struct {
	rects []sz
	rot   bool
	b     bin
	// classes is scratch for the global variant.
	classes []sizeClass
	// minW, minH are scratch for suffixMin.
	minW, minH []int32
}

// online places the rectangles of order one by one, each at its best
// position. With all set it gives up at the first rectangle that does not
// fit; otherwise it skips it. out[i] receives rectangle i's position.
func (r *runner) online(order []int, heur heuristic, bw, bh int32, all bool, out []pos) (trialResult, bool) {
	b := &r.b
	b.reset(bw, bh, heur, r.rot)
	// Suffix minima of the sides tell the bin which free rectangles are
	// too small for every rectangle still to come.
	mw, mh := r.suffixMin(order)
	var res trialResult
	for k, i := range order {
		s := r.rects[i]
		b.minW, b.minH = mw[k], mh[k]
		c := b.find(s.w, s.h)
		if !c.ok {
			out[i] = pos{}
			if all {
				return res, false
			}
			continue
		}
		b.place(c, s.w, s.h)
		out[i] = pos{c.x, c.y, c.rot, true}
		res.placed++
		res.area += int64(s.w) * int64(s.h)
	}
	res.usedW, res.usedH = b.usedW, b.usedH
	return res, res.placed == len(order)
}

// suffixMin returns, for each position k of order, the smallest width and
// height among order[k:] (with rotation, both are the smallest side).
func (r *runner) suffixMin(order []int) ([]int32, []int32) {
	n := len(order)
	r.minW = slices.Grow(r.minW[:0], n)[:n]
	r.minH = slices.Grow(r.minH[:0], n)[:n]
	mw, mh := int32(1<<30), int32(1<<30)
	for k := n - 1; k >= 0; k-- {
		s := r.rects[order[k]]
		w, h := s.w, s.h
		if r.rot {
			w = min(w, h)
			h = w
		}
		mw, mh = min(mw, w), min(mh, h)
		r.minW[k], r.minH[k] = mw, mh
	}
	return r.minW, r.minH
}

// sizeClass groups rectangles of one size for the global variant: they
// score alike, so one cached best position serves them all.
type sizeClass struct {
	w, h    int32 // canonical size (w ≥ h when rotation is allowed)
	members []int // rectangle indices, in item order
	next    int   // members[next] is the next to place
	best    cand
}

// global runs the global best-fit offline variant: each step places the
// rectangle and position with the best score among all remaining
// rectangles. Ties go to the size class whose first member comes first in
// items, and within a class to the earliest member, so items fixes the
// outcome. Cached scores are exact: a class's best only has to be
// recomputed when the free rectangle it used was split, and otherwise only
// compared against the newly created free rectangles (contact point scores
// depend on placed neighbours, so they are recomputed every step).
func (r *runner) global(items []int, heur heuristic, bw, bh int32, all bool, out []pos) (trialResult, bool) {
	b := &r.b
	b.reset(bw, bh, heur, r.rot)
	classes := r.buildClasses(items)
	for k := range classes {
		c := &classes[k]
		c.best = b.find(c.w, c.h)
		if !c.best.ok && all {
			return trialResult{}, false
		}
	}
	for _, i := range items {
		out[i] = pos{}
	}
	var res trialResult
	for res.placed < len(items) {
		k := -1
		for j := range classes {
			c := &classes[j]
			if c.next < len(c.members) && c.best.ok && (k < 0 || c.best.better(&classes[k].best)) {
				k = j
			}
		}
		if k < 0 {
			break
		}
		c := &classes[k]
		best := c.best
		i := c.members[c.next]
		c.next++
		b.place(best, c.w, c.h)
		s := r.rects[i]
		rot := best.rot
		if s.w != c.w || s.h != c.h {
			rot = !rot // the member is the canonical size turned
		}
		out[i] = pos{best.x, best.y, rot, true}
		res.placed++
		res.area += int64(s.w) * int64(s.h)
		b.minW, b.minH = 1<<30, 1<<30
		for j := range classes {
			d := &classes[j]
			if d.next < len(d.members) && d.best.ok {
				b.minW, b.minH = min(b.minW, d.w), min(b.minH, d.h)
			}
		}
		if r.rot {
			b.minW = min(b.minW, b.minH)
			b.minH = b.minW
		}
		for j := range classes {
			d := &classes[j]
			if d.next >= len(d.members) || !d.best.ok {
				continue // done, or fits nowhere (nor will it)
			}
			if heur == hCP || b.dead[d.best.fid] {
				d.best = b.find(d.w, d.h)
			} else {
				d.best = b.findNew(d.w, d.h, d.best)
			}
			if !d.best.ok && all {
				res.usedW, res.usedH = b.usedW, b.usedH
				return res, false
			}
		}
	}
	res.usedW, res.usedH = b.usedW, b.usedH
	return res, res.placed == len(items)
}

// buildClasses groups items by size, in order of first appearance.
func (r *runner) buildClasses(items []int) []sizeClass {
	classes := r.classes[:0]
	index := make(map[sz]int, 64)
	for _, i := range items {
		s := r.rects[i]
		if r.rot && s.h > s.w {
			s.w, s.h = s.h, s.w
		}
		k, ok := index[s]
		if !ok {
			k = len(classes)
			index[s] = k
			classes = append(classes, sizeClass{w: s.w, h: s.h})
		}
		classes[k].members = append(classes[k].members, i)
	}
	r.classes = classes
	return classes
}

// run dispatches to online or global.
func (r *runner) run(c config, items, order []int, bw, bh int32, all bool, out []pos) (trialResult, bool) {
	if c.global {
		return r.global(items, c.heur, bw, bh, all, out)
	}
	return r.online(order, c.heur, bw, bh, all, out)
}
