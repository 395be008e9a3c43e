package atlas

import "math/bits"

// This file holds the MaxRects bin: a list of maximal free rectangles that
// is split around every placed rectangle (Jylänki, "A Thousand Ways to Pack
// the Bin", section 5), with the five placement scores of the paper.
//
// All coordinates are in "bin space": rectangles are already inflated by
// padding and extrusion, and the bin is the page minus its border plus one
// padding (the trailing padding of the last sprite in a row or column may
// overlap the border; see layout.go).

// heuristic selects how a free position is scored.
type heuristic uint8

const (
	hBSSF heuristic = iota // best short side fit
	hBLSF                  // best long side fit
	hBAF                   // best area fit
	hBL                    // bottom-left
	hCP                    // contact point
	numHeuristics
)

var heuristicNames = [numHeuristics]string{"bssf", "blsf", "baf", "bl", "cp"}

func (h heuristic) String() string { return heuristicNames[h] }

// frect is a free rectangle with an identity, so cached scores can tell
// whether the rectangle they refer to still exists.
type frect struct {
	x, y, w, h int32
	id         uint32
}

// cand is a scored placement. Smaller keys are better: hi holds the
// primary score; lo the secondary score, then y, x and rotation, so ties
// never depend on the order of the free list.
type cand struct {
	hi, lo uint64
	x, y   int32
	rot    bool
	fid    uint32 // free rectangle the position came from
	ok     bool
}

func (a *cand) better(b *cand) bool {
	if !b.ok {
		return a.ok
	}
	return a.ok && (a.hi < b.hi || a.hi == b.hi && a.lo < b.lo)
}

// tail packs a secondary score and a position into a key. All values are
// below 2^17: pages are at most 32768 pixels and padding at most 1024.
func tail(s2 int32, f *frect, rot bool) uint64 {
	k := uint64(s2)<<34 | uint64(f.y)<<17 | uint64(f.x)<<1
	if rot {
		k |= 1
	}
	return k
}

// contactBase makes contact point keys positive: more contact, smaller key.
const contactBase = 1 << 40

// bin is one MaxRects bin.
type bin struct {
	w, h   int32
	heur   heuristic
	rot    bool
	free   []frect
	spare  []frect // scratch for new free rectangles
	nextID uint32
	// dead[id] is set once free rectangle id has been split away.
	dead []bool
	// added is how many rectangles at the end of free the last place call
	// appended.
	added int
	// minW, minH: no rectangle still to come is narrower or lower (with
	// rotation both hold the smallest side). New free rectangles below
	// them can never be used and are not kept.
	minW, minH int32
	// usedW, usedH are the right and bottom extents of placed rectangles.
	usedW, usedH int32
	// rows and cols are occupancy bitmaps (row-major and column-major)
	// kept only for the contact point score.
	rows, cols bitgrid
}

// reset prepares b as an empty w×h bin, reusing its buffers.
func (b *bin) reset(w, h int32, heur heuristic, rot bool) {
	b.w, b.h, b.heur, b.rot = w, h, heur, rot
	b.free = append(b.free[:0], frect{0, 0, w, h, 0})
	b.nextID = 1
	b.dead = append(b.dead[:0], false)
	b.added = 0
	b.minW, b.minH = 1, 1
	b.usedW, b.usedH = 0, 0
	if heur == hCP {
		b.rows.reset(int(h), int(w))
		b.cols.reset(int(w), int(h))
	}
}

// scan returns the better of best and the best position for a w×h
// rectangle among free rectangles [from, len(free)). A candidate whose
// primary score is already worse than the best is not keyed at all.
func (b *bin) scan(from int, w, h int32, best cand) cand {
	free := b.free[from:]
	rot := b.rot && w != h
	keep := func(f *frect, r bool, hi uint64, s2 int32) {
		if best.ok && hi > best.hi {
			return
		}
		c := cand{hi: hi, lo: tail(s2, f, r), x: f.x, y: f.y, rot: r, fid: f.id, ok: true}
		if c.better(&best) {
			best = c
		}
	}
	switch b.heur {
	case hBSSF:
		for i := range free {
			f := &free[i]
			if f.w >= w && f.h >= h {
				a, c := f.w-w, f.h-h
				keep(f, false, uint64(min(a, c)), max(a, c))
			}
			if rot && f.w >= h && f.h >= w {
				a, c := f.w-h, f.h-w
				keep(f, true, uint64(min(a, c)), max(a, c))
			}
		}
	case hBLSF:
		for i := range free {
			f := &free[i]
			if f.w >= w && f.h >= h {
				a, c := f.w-w, f.h-h
				keep(f, false, uint64(max(a, c)), min(a, c))
			}
			if rot && f.w >= h && f.h >= w {
				a, c := f.w-h, f.h-w
				keep(f, true, uint64(max(a, c)), min(a, c))
			}
		}
	case hBAF:
		area := uint64(w) * uint64(h)
		for i := range free {
			f := &free[i]
			fa := uint64(f.w) * uint64(f.h)
			if f.w >= w && f.h >= h {
				keep(f, false, fa-area, min(f.w-w, f.h-h))
			}
			if rot && f.w >= h && f.h >= w {
				keep(f, true, fa-area, min(f.w-h, f.h-w))
			}
		}
	case hBL:
		for i := range free {
			f := &free[i]
			if f.w >= w && f.h >= h {
				keep(f, false, uint64(f.y+h), f.x)
			}
			if rot && f.w >= h && f.h >= w {
				keep(f, true, uint64(f.y+w), f.x)
			}
		}
	default: // hCP
		for i := range free {
			f := &free[i]
			if f.w >= w && f.h >= h {
				keep(f, false, uint64(contactBase-b.contact(f.x, f.y, w, h)), 0)
			}
			if rot && f.w >= h && f.h >= w {
				keep(f, true, uint64(contactBase-b.contact(f.x, f.y, h, w)), 0)
			}
		}
	}
	return best
}

// find returns the best position for a w×h rectangle among all free
// rectangles.
func (b *bin) find(w, h int32) cand {
	return b.scan(0, w, h, cand{})
}

// findNew returns the better of best and the best position for a w×h
// rectangle among the free rectangles the last place call added.
func (b *bin) findNew(w, h int32, best cand) cand {
	return b.scan(len(b.free)-b.added, w, h, best)
}

// place puts a w×h rectangle (already rotated if c.rot) at c's position
// and updates the free list.
func (b *bin) place(c cand, w, h int32) {
	if c.rot {
		w, h = h, w
	}
	x, y := c.x, c.y
	b.usedW = max(b.usedW, x+w)
	b.usedH = max(b.usedH, y+h)
	if b.heur == hCP {
		for r := y; r < y+h; r++ {
			b.rows.set(int(r), int(x), int(x+w))
		}
		for col := x; col < x+w; col++ {
			b.cols.set(int(col), int(y), int(y+h))
		}
	}
	// Split every free rectangle the new one overlaps into the up to four
	// maximal rectangles around it.
	nf := b.spare[:0]
	n := len(b.free)
	for i := 0; i < n; {
		f := b.free[i]
		if x >= f.x+f.w || x+w <= f.x || y >= f.y+f.h || y+h <= f.y {
			i++
			continue
		}
		if y > f.y {
			nf = append(nf, frect{f.x, f.y, f.w, y - f.y, 0})
		}
		if y+h < f.y+f.h {
			nf = append(nf, frect{f.x, y + h, f.w, f.y + f.h - y - h, 0})
		}
		if x > f.x {
			nf = append(nf, frect{f.x, f.y, x - f.x, f.h, 0})
		}
		if x+w < f.x+f.w {
			nf = append(nf, frect{x + w, f.y, f.x + f.w - x - w, f.h, 0})
		}
		b.dead[f.id] = true
		n--
		b.free[i] = b.free[n]
	}
	b.free = b.free[:n]
	// Drop new rectangles too small for anything still to come, then
	// those contained in another new one or in a surviving old one. Old
	// ones are never contained in new ones: a new rectangle lies inside the
	// free rectangle it was split from, and the free list held no
	// rectangle inside another.
	k := 0
	for _, r := range nf {
		if r.w >= b.minW && r.h >= b.minH {
			nf[k] = r
			k++
		}
	}
	nf = nf[:k]
	for i := 0; i < len(nf); i++ {
		for j := i + 1; j < len(nf); j++ {
			if contains(&nf[j], &nf[i]) {
				nf[i] = nf[len(nf)-1]
				nf = nf[:len(nf)-1]
				i--
				break
			}
			if contains(&nf[i], &nf[j]) {
				nf[j] = nf[len(nf)-1]
				nf = nf[:len(nf)-1]
				j--
			}
		}
	}
	added := 0
	old := b.free[:n]
	for _, r := range nf {
		keep := true
		for j := range old {
			if contains(&old[j], &r) {
				keep = false
				break
			}
		}
		if keep {
			r.id = b.nextID
			b.nextID++
			b.dead = append(b.dead, false)
			b.free = append(b.free, r)
			added++
		}
	}
	b.added = added
	b.spare = nf[:0]
}

// contains reports whether a contains b.
func contains(a, b *frect) bool {
	return b.x >= a.x && b.y >= a.y && b.x+b.w <= a.x+a.w && b.y+b.h <= a.y+a.h
}

// contact is the length of the rectangle's perimeter that touches the bin
// edge or placed rectangles.
func (b *bin) contact(x, y, w, h int32) int64 {
	var s int
	if y == 0 {
		s += int(w)
	} else {
		s += b.rows.count(int(y-1), int(x), int(x+w))
	}
	if y+h == b.h {
		s += int(w)
	} else if y+h < b.h {
		s += b.rows.count(int(y+h), int(x), int(x+w))
	}
	if x == 0 {
		s += int(h)
	} else {
		s += b.cols.count(int(x-1), int(y), int(y+h))
	}
	if x+w == b.w {
		s += int(h)
	} else if x+w < b.w {
		s += b.cols.count(int(x+w), int(y), int(y+h))
	}
	return int64(s)
}

// bitgrid is a bitmap of lines × length bits.
type bitgrid struct {
	stride int // words per line
	bits   []uint64
}

func (g *bitgrid) reset(lines, length int) {
	g.stride = (length + 63) / 64
	n := lines * g.stride
	if cap(g.bits) >= n {
		g.bits = g.bits[:n]
		clear(g.bits)
	} else {
		g.bits = make([]uint64, n)
	}
}

// set sets bits [a, b) of line l.
func (g *bitgrid) set(l, a, b int) {
	row := g.bits[l*g.stride : (l+1)*g.stride]
	for a < b {
		w := a >> 6
		lo := a & 63
		hi := 64
		if (w+1)<<6 > b {
			hi = b - w<<6
		}
		row[w] |= maskRange(lo, hi)
		a = (w + 1) << 6
	}
}

// count returns how many of bits [a, b) of line l are set.
func (g *bitgrid) count(l, a, b int) int {
	row := g.bits[l*g.stride : (l+1)*g.stride]
	n := 0
	for a < b {
		w := a >> 6
		lo := a & 63
		hi := 64
		if (w+1)<<6 > b {
			hi = b - w<<6
		}
		n += bits.OnesCount64(row[w] & maskRange(lo, hi))
		a = (w + 1) << 6
	}
	return n
}

// maskRange has bits [lo, hi) set, 0 ≤ lo < hi ≤ 64.
func maskRange(lo, hi int) uint64 {
	m := ^uint64(0) << uint(lo)
	if hi < 64 {
		m &= (uint64(1) << uint(hi)) - 1
	}
	return m
}
