package atlas

import (
	"context"
	"math"
	"slices"
)

// This file searches page sizes. A "strip" trial packs into a bin of a
// chosen width and the full height and takes the height the packing needed;
// an "exact" trial packs into a bin of a chosen size and either fits or
// not. For free page sizes the default search ("best") sweeps strip widths
// with the strongest configuration (bottom-left, tallest first), looks
// closer around the best width, then spends a small budget of exact trials
// with other heuristics, online and global, on lower pages at the two best
// widths. Identical rectangles get the best grid; POT and square pages are
// searched over their own candidate sizes. A layout that reaches the lower
// bound ends the search. Budgets count trials, never time, so results are
// deterministic.

// searcher finds page sizes and layouts.
type searcher struct {
	ctx  context.Context
	g    geometry
	cfgs []config // nil: the full search
	r    runner
	tmp  []pos
}

// run runs one trial into s.tmp; once ctx is done every trial fails.
func (s *searcher) run(c config, order []int, bw, bh int32, all bool) (trialResult, bool) {
	if s.ctx.Err() != nil {
		return trialResult{}, false
	}
	return s.r.run(c, order, order, bw, bh, all, s.tmp)
}

var (
	// stripCfgs run first, in strips; bottom-left with the tallest
	// rectangles first behaves like a shelf packer that fills its gaps.
	stripCfgs = []config{{heur: hBL, order: byHeight}, {heur: hBSSF, order: byHeight}}
	// exactCfgs try to fit a smaller page, in this order.
	exactCfgs = []config{
		{heur: hBSSF, order: byArea},
		{heur: hCP, order: byArea},
		{heur: hBL, order: byHeight},
		{heur: hBAF, order: byHeight},
		{heur: hBSSF, global: true},
	}
)

// candidate is the best layout found so far for one page.
type candidate struct {
	pw, ph int32 // page size
	bw, bh int32 // bin extents used
	pos    []pos
	ok     bool
}

func (c *candidate) area() int64 { return int64(c.pw) * int64(c.ph) }

// stats describes the items of one search.
type stats struct {
	n          int
	area       int64 // bin-space area
	needW      int32 // smallest bin width that holds every item
	needH      int32
	uniform    bool // all items have the same size
	lowerBound int64
}

func (s *searcher) stats(items []int) stats {
	st := stats{n: len(items), uniform: true}
	first := s.r.rects[items[0]]
	for _, i := range items {
		r := s.r.rects[i]
		st.area += int64(r.w) * int64(r.h)
		if r != first {
			st.uniform = false
		}
		if s.r.rot {
			st.needW = max(st.needW, min(r.w, r.h))
			st.needH = max(st.needH, min(r.w, r.h))
		} else {
			st.needW = max(st.needW, r.w)
			st.needH = max(st.needH, r.h)
		}
	}
	// A page adds d = 2·border − padding to each used extent, and the
	// extents cover at least the items' area.
	d := float64(2*s.g.border - s.g.padding)
	if d >= 0 {
		r := math.Sqrt(float64(st.area)) + d
		st.lowerBound = int64(math.Ceil(r*r - 1e-6))
	} else {
		st.lowerBound = st.area + int64(2*d*float64(s.g.binMax)) + int64(d*d)
	}
	return st
}

// order returns the items in the order c takes them.
func (s *searcher) order(c config, items []int) []int {
	if c.global {
		return sortItems(s.r.rects, items, byArea)
	}
	return sortItems(s.r.rects, items, c.order)
}

// offer keeps a trial's result if its page is smaller than the best so far
// (ties: the squarer page, then the narrower, then the first found).
func (s *searcher) offer(best *candidate, items []int, res trialResult) {
	pw, ph := s.g.page(res.usedW, res.usedH)
	if best.ok && !smallerPage(pw, ph, best.pw, best.ph) {
		return
	}
	if best.pos == nil {
		best.pos = make([]pos, len(s.tmp))
	}
	for _, i := range items {
		best.pos[i] = s.tmp[i]
	}
	best.pw, best.ph, best.bw, best.bh, best.ok = pw, ph, res.usedW, res.usedH, true
}

// fitOnePage tries to put every item on one page, as small as it can find.
// On success it fills out and returns the page size.
func (s *searcher) fitOnePage(items []int, out []pos) (int32, int32, bool) {
	if s.tmp == nil {
		s.tmp = make([]pos, len(out))
	}
	var best candidate
	s.searchSizes(items, &best)
	if !best.ok {
		return 0, 0, false
	}
	for _, i := range items {
		out[i] = best.pos[i]
	}
	return best.pw, best.ph, true
}

// searchSizes searches page sizes for items and keeps the smallest page in
// best.
func (s *searcher) searchSizes(items []int, best *candidate) {
	st := s.stats(items)
	bm := s.g.binMax
	if st.area > int64(bm)*int64(bm) || st.needW > bm || st.needH > bm {
		return
	}
	switch {
	case s.g.pot:
		s.searchPOT(items, st, best)
	case s.g.square:
		s.searchSquare(items, st, best)
	default:
		if st.uniform && s.cfgs == nil {
			s.searchGrid(items, st, best)
		}
		if !best.ok || best.area() > st.lowerBound {
			s.searchAny(items, st, best)
		}
	}
}

// searchBudget is how much the full search may spend on exact trials after
// the strips, in units of one online trial (see cost). Measured on the
// benchmark sets and random ones, larger budgets buy little occupancy
// (+0.1%) for much more time; more strip widths buy more.
const searchBudget = 8

// maxTrialCost keeps single trials dearer than this out of the page-size
// searches that try many sizes (POT, square, multi-page).
const maxTrialCost = 12

// affordable returns the configurations of cfgs that cost at most
// maxTrialCost for n rectangles (the global variants drop out for large
// sets).
func affordable(cfgs []config, n int) []config {
	var out []config
	for _, c := range cfgs {
		if cost(c, n) <= maxTrialCost {
			out = append(out, c)
		}
	}
	return out
}

// cost estimates a trial's cost in units of an online trial of the same
// rectangles: contact point scoring reads occupancy bitmaps, and the global
// variant rescans the remaining size classes after every placement.
func cost(c config, n int) int {
	switch {
	case c.global && c.heur == hCP:
		return max(10, n/3)
	case c.global:
		return max(6, n/25)
	case c.heur == hCP:
		return 6
	default:
		return 1
	}
}

// searchAny searches free page sizes.
func (s *searcher) searchAny(items []int, st stats, best *candidate) {
	bm := s.g.binMax
	side := math.Sqrt(float64(st.area))
	widths := func(fs ...float64) []int32 {
		var ws []int32
		for _, f := range fs {
			w := min(max(int32(side*f), st.needW), bm)
			if !slices.Contains(ws, w) {
				ws = append(ws, w)
			}
		}
		return ws
	}
	if s.cfgs != nil {
		// A chosen heuristic: strips at a range of widths, then the
		// exact refinement with the same configurations.
		for _, c := range s.cfgs {
			order := s.order(c, items)
			for _, w := range widths(0.7, 0.85, 1.0, 1.2, 1.45, 1.75, 2.1) {
				if res, ok := s.run(c, order, w, bm, true); ok {
					s.offer(best, items, res)
				}
			}
		}
		if best.ok {
			s.refine(items, st, best, best.bw, best.bh, s.cfgs, 4*len(s.cfgs)*cost(s.cfgs[0], st.n))
		}
		return
	}
	// Strips of several widths with the strongest configuration; keep the
	// two best results for the exact refinement.
	c := stripCfgs[0]
	order := s.order(c, items)
	var tops [2]candidate
	var topF [2]float64
	try := func(f float64) {
		w := min(max(int32(side*f), st.needW), bm)
		res, ok := s.run(c, order, w, bm, true)
		if !ok {
			return
		}
		s.offer(best, items, res)
		pw, ph := s.g.page(res.usedW, res.usedH)
		switch {
		case !tops[0].ok || smallerPage(pw, ph, tops[0].pw, tops[0].ph):
			tops[1], topF[1] = tops[0], topF[0]
			tops[0], topF[0] = candidate{pw: pw, ph: ph, bw: res.usedW, bh: res.usedH, ok: true}, f
		case !tops[1].ok || smallerPage(pw, ph, tops[1].pw, tops[1].ph):
			tops[1], topF[1] = candidate{pw: pw, ph: ph, bw: res.usedW, bh: res.usedH, ok: true}, f
		}
	}
	// Coarse widths, then a closer look around the best one: the page
	// area is a jagged function of the width.
	for _, f := range []float64{0.75, 0.85, 0.95, 1.05, 1.15, 1.25, 1.4, 1.55, 1.7, 1.9} {
		try(f)
	}
	if tops[0].ok {
		for _, d := range []float64{-0.04, 0.04, -0.02, 0.02} {
			try(topF[0] + d)
		}
	}
	if !best.ok {
		// Nothing fit in strips of these widths; try the full width.
		for _, c := range affordable(append(slices.Clone(stripCfgs[1:]), exactCfgs...), st.n) {
			order := s.order(c, items)
			if res, ok := s.run(c, order, bm, bm, true); ok {
				s.offer(best, items, res)
				tops[0] = *best
				break
			}
		}
	}
	for k, t := range tops {
		if t.ok {
			s.refine(items, st, best, t.bw, t.bh, exactCfgs, searchBudget/(k+1))
		}
	}
}

// refine spends up to n cost units on exact bins w wide and lower than
// h: it binary-searches the height, each probe trying cfgs in order until
// one fits, and offers every fit.
func (s *searcher) refine(items []int, st stats, best *candidate, w, h int32, cfgs []config, n int) {
	orders := make([][]int, len(cfgs))
	lo := max(st.needH, int32((st.area+int64(w)-1)/int64(w)))
	hi := h - 1
	for len(cfgs) > 0 && n > 0 && best.area() > st.lowerBound {
		// Only heights that would beat the best page are worth a probe.
		for hi >= lo {
			pw, ph := s.g.page(w, hi)
			if smallerPage(pw, ph, best.pw, best.ph) {
				break
			}
			hi--
		}
		if lo > hi {
			return
		}
		mid := lo + (hi-lo)/2
		fit, tried := false, false
		for k, c := range cfgs {
			if cost(c, st.n) > n {
				continue
			}
			n -= cost(c, st.n)
			tried = true
			if orders[k] == nil {
				orders[k] = s.order(c, items)
			}
			if res, ok := s.run(c, orders[k], w, mid, true); ok {
				s.offer(best, items, res)
				fit = true
				hi = min(mid, res.usedH) - 1
				break
			}
		}
		if !fit {
			if !tried {
				return
			}
			lo = mid + 1
		}
	}
}

// searchGrid lays out identical rectangles in the grid with the smallest
// page: optimal for free page sizes without rotation.
func (s *searcher) searchGrid(items []int, st stats, best *candidate) {
	r := s.r.rects[items[0]]
	bm := s.g.binMax
	n := int32(len(items))
	for cols := int32(1); cols <= n && cols*r.w <= bm; cols++ {
		rows := (n + cols - 1) / cols
		if rows*r.h > bm {
			continue
		}
		res := trialResult{placed: int(n), usedW: cols * r.w, usedH: rows * r.h}
		pw, ph := s.g.page(res.usedW, res.usedH)
		if best.ok && !smallerPage(pw, ph, best.pw, best.ph) {
			continue
		}
		for k, i := range items {
			s.tmp[i] = pos{x: int32(k) % cols * r.w, y: int32(k) / cols * r.h, placed: true}
		}
		s.offer(best, items, res)
	}
}

// searchSquare searches square page sides: a strip trial gives a first
// side, then a binary search over smaller sides with exact trials.
func (s *searcher) searchSquare(items []int, st stats, best *candidate) {
	bm := s.g.binMax
	cfgs := s.cfgs
	if cfgs == nil {
		cfgs = affordable(exactCfgs, st.n)
	}
	side := math.Sqrt(float64(st.area))
	strip := stripCfgs[:1]
	if s.cfgs != nil {
		strip = s.cfgs
	}
	for _, c := range strip {
		order := s.order(c, items)
		for _, f := range []float64{0.95, 1.0, 1.05, 1.12, 1.2} {
			w := min(max(int32(side*f), st.needW), bm)
			if res, ok := s.run(c, order, w, bm, true); ok {
				s.offer(best, items, res)
			}
		}
	}
	if !best.ok {
		for _, c := range cfgs {
			order := s.order(c, items)
			if res, ok := s.run(c, order, bm, bm, true); ok {
				s.offer(best, items, res)
				break
			}
		}
	}
	if !best.ok {
		return
	}
	lo := max(int32(math.Ceil(math.Sqrt(float64(st.area)))), st.needW, st.needH)
	hi := max(best.bw, best.bh) - 1
	n := searchBudget
	orders := make([][]int, len(cfgs))
	for lo <= hi && n > 0 {
		mid := lo + (hi-lo)/2
		fit, tried := false, false
		for k, c := range cfgs {
			if cost(c, st.n) > n {
				continue
			}
			n -= cost(c, st.n)
			tried = true
			if orders[k] == nil {
				orders[k] = s.order(c, items)
			}
			if res, ok := s.run(c, orders[k], mid, mid, true); ok {
				s.offer(best, items, res)
				fit = true
				break
			}
		}
		switch {
		case fit:
			hi = min(mid, max(best.bw, best.bh)) - 1
		case !tried:
			return
		default:
			lo = mid + 1
		}
	}
}

// searchPOT tries power-of-two page sizes from the smallest area up; the
// first size some configuration fits wins.
func (s *searcher) searchPOT(items []int, st stats, best *candidate) {
	cfgs := s.cfgs
	if cfgs == nil {
		cfgs = affordable(exactCfgs, st.n)
	}
	type size struct{ w, h int32 }
	var sizes []size
	for w := int32(1); w <= s.g.maxSize; w *= 2 {
		for h := int32(1); h <= s.g.maxSize; h *= 2 {
			if s.g.square && w != h {
				continue
			}
			bw, bh := w-2*s.g.border+s.g.padding, h-2*s.g.border+s.g.padding
			if bw < st.needW || bh < st.needH || int64(bw)*int64(bh) < st.area {
				continue
			}
			sizes = append(sizes, size{w, h})
		}
	}
	// Smallest area first; among equal areas the squarer, then the wider.
	slices.SortFunc(sizes, func(a, b size) int {
		if c := int64(a.w)*int64(a.h) - int64(b.w)*int64(b.h); c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
		da, db := abs32(a.w-a.h), abs32(b.w-b.h)
		if da != db {
			return int(da - db)
		}
		return int(b.w - a.w)
	})
	orders := make([][]int, len(cfgs))
	for _, sz := range sizes {
		bw, bh := sz.w-2*s.g.border+s.g.padding, sz.h-2*s.g.border+s.g.padding
		for k, c := range cfgs {
			if orders[k] == nil {
				orders[k] = s.order(c, items)
			}
			if res, ok := s.run(c, orders[k], bw, bh, true); ok {
				s.offer(best, items, res)
				return
			}
		}
	}
}

// smallerPage orders pages: smaller area, then squarer, then narrower.
func smallerPage(w, h, bw, bh int32) bool {
	a, b := int64(w)*int64(h), int64(bw)*int64(bh)
	if a != b {
		return a < b
	}
	if d, bd := abs32(w-h), abs32(bw-bh); d != bd {
		return d < bd
	}
	return w < bw
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

// fillPage packs as much area as it can onto one page of the maximum size
// and returns the page size (shrunk to what is used). out marks what was
// placed.
func (s *searcher) fillPage(items []int, out []pos) (int32, int32) {
	if s.tmp == nil {
		s.tmp = make([]pos, len(out))
	}
	bm := s.g.binMax
	cfgs := s.cfgs
	if cfgs == nil {
		cfgs = affordable([]config{stripCfgs[0], exactCfgs[0], {heur: hBSSF, global: true}}, len(items))
	}
	var bestArea int64 = -1
	var bestRes trialResult
	for _, c := range cfgs {
		order := s.order(c, items)
		res, _ := s.run(c, order, bm, bm, false)
		if res.area > bestArea {
			bestArea, bestRes = res.area, res
			for _, i := range items {
				out[i] = s.tmp[i]
			}
		}
	}
	return s.g.page(bestRes.usedW, bestRes.usedH)
}
