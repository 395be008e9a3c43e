package atlas

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
)

// Layout is where PackRects put each rectangle.
type Layout struct {
	// Pages are the page sizes in pixels.
	Pages []image.Point
	// Places has one entry per input size, in input order.
	Places []Place
}

// Place is one rectangle's position.
type Place struct {
	// Page indexes Layout.Pages.
	Page int
	// X, Y is the top-left corner of the rectangle's own pixels (inside
	// its extrusion) on the page.
	X, Y int
	// Rotated says the rectangle is stored turned by 90°: it covers H×W
	// pixels for an input size of W×H.
	Rotated bool
}

// Occupancy returns the summed area of sizes divided by the summed page
// area of l.
func (l *Layout) Occupancy(sizes []image.Point) float64 {
	var used, total float64
	for _, s := range sizes {
		used += float64(s.X) * float64(s.Y)
	}
	for _, p := range l.Pages {
		total += float64(p.X) * float64(p.Y)
	}
	if total == 0 {
		return 0
	}
	return used / total
}

// geometry holds the page constraints in both pixel and bin space.
type geometry struct {
	maxSize         int32 // largest page side allowed
	pot, square     bool
	padding, border int32
	extrude         int32
	binMax          int32 // largest bin side
}

func newGeometry(s Settings) geometry {
	g := geometry{
		maxSize: int32(s.MaxSize),
		pot:     s.Size == SizePOT,
		square:  s.Square,
		padding: int32(s.Padding),
		border:  int32(s.Border),
		extrude: int32(s.Extrude),
	}
	if g.pot {
		g.maxSize = int32(potFloor(s.MaxSize))
	}
	// A page of side S holds sprites in [border, S-border); every
	// rectangle carries its trailing padding, which may overhang into the
	// border after the last sprite of a row.
	g.binMax = g.maxSize - 2*g.border + g.padding
	return g
}

// page converts bin-space extents to a page size that honours the
// constraints.
func (g *geometry) page(usedW, usedH int32) (int32, int32) {
	w := max(usedW-g.padding+2*g.border, 1)
	h := max(usedH-g.padding+2*g.border, 1)
	if g.pot {
		w, h = int32(potCeil(int(w))), int32(potCeil(int(h)))
	}
	if g.square {
		w = max(w, h)
		h = w
	}
	return w, h
}

// potCeil returns the smallest power of two ≥ n (n ≥ 1).
func potCeil(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// potFloor returns the largest power of two ≤ n, or 0 for n < 1.
func potFloor(n int) int {
	if n < 1 {
		return 0
	}
	p := 1
	for p*2 <= n {
		p <<= 1
	}
	return p
}

// TooLargeError reports a sprite that cannot fit on a page of the maximum
// size.
type TooLargeError struct {
	Index         int    // index of the sprite or size
	Name          string // sprite name, if known
	W, H          int    // its size in pixels (trimmed)
	Need, MaxSize int    // page side it needs, and the limit
}

// Error says which sprite, how large a page it needs and what to change.
func (e *TooLargeError) Error() string {
	what := fmt.Sprintf("sprite %d", e.Index)
	if e.Name != "" {
		what = fmt.Sprintf("sprite %q", e.Name)
	}
	return fmt.Sprintf("%s (%d×%d) needs a page of at least %d pixels with this padding, border and extrude, but max_size is %d; raise max_size, shrink the sprite, or reduce border/extrude",
		what, e.W, e.H, e.Need, e.MaxSize)
}

// PackRects lays out rectangles of the given sizes (sprite pixels, before
// extrusion and padding) on as few and as small pages as the settings
// allow. The geometry fields of s decide the layout (MaxSize, Size,
// Square, Padding, Border, Extrude, Rotation, Heuristic); the others are
// only validated. It is what Pack uses after trimming and de-duplication,
// and what the benchmarks measure.
func PackRects(ctx context.Context, sizes []image.Point, s Settings) (*Layout, error) {
	s = s.withDefaults()
	if err := s.validate(); err != nil {
		return nil, fmt.Errorf("atlas settings: %w", err)
	}
	return packRects(ctx, sizes, s, nil, nil)
}

// packRects is PackRects without defaults and validation; names label
// errors when given. groups, when given, holds a group number per size (or
// -1): the rectangles of one group go onto one page whenever the group fits
// on one page by itself, so an animation's frames stay together.
func packRects(ctx context.Context, sizes []image.Point, s Settings, names []string, groups []int) (*Layout, error) {
	g := newGeometry(s)
	cfgs, err := parseHeuristic(s.Heuristic)
	if err != nil {
		return nil, err
	}
	rects := make([]sz, len(sizes))
	for i, p := range sizes {
		if p.X <= 0 || p.Y <= 0 {
			return nil, fmt.Errorf("size %d is %d×%d; every size must be at least 1×1", i, p.X, p.Y)
		}
		w := int64(p.X) + 2*int64(g.extrude) + int64(g.padding)
		h := int64(p.Y) + 2*int64(g.extrude) + int64(g.padding)
		// Pages are limited to the same size both ways, so turning a
		// sprite never makes it fit.
		if w > int64(g.binMax) || h > int64(g.binMax) || g.binMax <= 0 {
			e := &TooLargeError{Index: i, W: p.X, H: p.Y,
				Need:    int(max(w, h) - int64(g.padding) + 2*int64(g.border)),
				MaxSize: int(g.maxSize)}
			if names != nil {
				e.Name = names[i]
			}
			return nil, e
		}
		rects[i] = sz{int32(w), int32(h)}
	}
	l, err := layoutPages(ctx, g, cfgs, rects, s.Rotation, groups)
	if err != nil || !s.Rotation || cfgs != nil {
		return l, err
	}
	// The full search with rotation keeps whichever of its own layouts,
	// with and without rotation, needs less page area: rotated placements
	// can lead the strip search astray on sets of long thin sprites.
	flat, err := layoutPages(ctx, g, cfgs, rects, false, groups)
	if err != nil {
		return nil, err
	}
	if fa, la := flat.pageArea(), l.pageArea(); fa < la || fa == la && len(flat.Pages) < len(l.Pages) {
		return flat, nil
	}
	return l, nil
}

// pageArea returns the summed area of l's pages.
func (l *Layout) pageArea() int64 {
	var a int64
	for _, p := range l.Pages {
		a += int64(p.X) * int64(p.Y)
	}
	return a
}

// layoutPages lays out rects (in bin space) page by page: all of them on
// one page when they fit, otherwise a full page at a time.
func layoutPages(ctx context.Context, g geometry, cfgs []config, rects []sz, rot bool, groups []int) (*Layout, error) {
	sr := &searcher{ctx: ctx, g: g, cfgs: cfgs, r: runner{rects: rects, rot: rot}}
	gp := newGrouper(sr, groups)
	l := &Layout{Places: make([]Place, len(rects))}
	remaining := make([]int, len(rects))
	for i := range remaining {
		remaining[i] = i
	}
	out := make([]pos, len(rects))
	for len(remaining) > 0 {
		pw, ph, ok := sr.fitOnePage(remaining, out)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !ok {
			// Fill a full page with as much area as possible and go on
			// with the rest, keeping groups that fit on one page whole.
			pw, ph = gp.fillPage(remaining, out)
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		page := len(l.Pages)
		l.Pages = append(l.Pages, image.Pt(int(pw), int(ph)))
		rest := remaining[:0]
		for _, i := range remaining {
			p := out[i]
			if !p.placed {
				rest = append(rest, i)
				continue
			}
			l.Places[i] = Place{
				Page:    page,
				X:       int(p.x + g.border + g.extrude),
				Y:       int(p.y + g.border + g.extrude),
				Rotated: p.rot,
			}
		}
		if len(rest) == len(remaining) {
			return nil, errors.New("internal error: a page was started but nothing fit on it")
		}
		remaining = rest
	}
	return l, nil
}

// parseHeuristic turns a Settings.Heuristic value into the configurations
// to try.
func parseHeuristic(name string) ([]config, error) {
	switch name {
	case "", HeuristicBest:
		return nil, nil // nil means the full search
	case HeuristicGlobal:
		return []config{{heur: hBSSF, global: true}}, nil
	}
	base, global := strings.CutSuffix(name, "-global")
	for h := heuristic(0); h < numHeuristics; h++ {
		if base == h.String() {
			if global {
				return []config{{heur: h, global: true}}, nil
			}
			cs := make([]config, 0, numOrders)
			for o := sortOrder(0); o < numOrders; o++ {
				cs = append(cs, config{heur: h, order: o})
			}
			return cs, nil
		}
	}
	names := Heuristics()
	return nil, fmt.Errorf("heuristic %q is unknown%s; use one of %s", name, suggest(name, names), strings.Join(names, ", "))
}
