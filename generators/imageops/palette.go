package imageops

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Palette is an ordered list of opaque colours.
type Palette []color.NRGBA

// LoadPalette reads a palette file, choosing the format by extension:
// ".gpl" (GIMP) or ".hex" (one RRGGBB per line).
func LoadPalette(path string) (Palette, error) {
	var parse func(io.Reader, string) (Palette, error)
	switch strings.ToLower(filepath.Ext(path)) {
	case ".gpl":
		parse = ParseGPL
	case ".hex":
		parse = ParseHex
	default:
		return nil, fmt.Errorf("palette %s: unknown format; use a GIMP .gpl file or a .hex file with one RRGGBB per line", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read palette: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > MaxPaletteBytes {
		return nil, fmt.Errorf("palette %s is %d bytes, more than %d; a palette file lists at most %d colours", path, st.Size(), MaxPaletteBytes, MaxPaletteColors)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPaletteBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read palette: %w", err)
	}
	if len(data) > MaxPaletteBytes {
		return nil, fmt.Errorf("palette %s is more than %d bytes; a palette file lists at most %d colours", path, MaxPaletteBytes, MaxPaletteColors)
	}
	return parse(bytes.NewReader(data), path)
}

// Palette files are small; these bounds keep a wrong or hostile file from
// exhausting memory, or making quantisation (which compares every pixel
// with every colour) take hours.
const (
	// MaxPaletteBytes is the largest palette file LoadPalette reads.
	MaxPaletteBytes = 1 << 20
	// MaxPaletteColors is the most colours a palette may have.
	MaxPaletteColors = 4096
)

// tooManyColors is the error of a palette over MaxPaletteColors.
func tooManyColors(name string, n int) error {
	return fmt.Errorf("%s:%d: palette has more than %d colours, the most kiln accepts; reduce it", name, n, MaxPaletteColors)
}

// paletteLines calls fn with each line of r (1-based number, text without
// the line ending or a leading UTF-8 byte order mark).
func paletteLines(r io.Reader, name string, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: read: %w", name, err)
	}
	return nil
}

// ParseGPL parses a GIMP palette: a first line "GIMP Palette", optional
// "Name:" and "Columns:" header lines, "#" comments and blank lines, and
// colour lines "R G B [name]" with R, G, B integers 0-255. name is used in
// error messages, which read "name:line: what is wrong".
func ParseGPL(r io.Reader, name string) (Palette, error) {
	var pal Palette
	err := paletteLines(r, name, func(n int, line string) error {
		t := strings.TrimSpace(line)
		if n == 1 {
			if t != "GIMP Palette" {
				return fmt.Errorf("%s:1: not a GIMP palette: first line is %q, want \"GIMP Palette\"", name, t)
			}
			return nil
		}
		if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "Name:") || strings.HasPrefix(t, "Columns:") {
			return nil
		}
		fields := strings.Fields(t)
		if len(fields) < 3 {
			return fmt.Errorf("%s:%d: bad colour line %q: want \"R G B [name]\" with integers 0-255", name, n, t)
		}
		var v [3]uint8
		for i := range v {
			x, err := strconv.Atoi(fields[i])
			if err != nil {
				return fmt.Errorf("%s:%d: bad colour line %q: %q is not an integer; want \"R G B [name]\" with integers 0-255", name, n, t, fields[i])
			}
			if x < 0 || x > 255 {
				return fmt.Errorf("%s:%d: bad colour line %q: %d is out of range 0-255", name, n, t, x)
			}
			v[i] = uint8(x)
		}
		if len(pal) == MaxPaletteColors {
			return tooManyColors(name, n)
		}
		pal = append(pal, color.NRGBA{v[0], v[1], v[2], 255})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pal) == 0 {
		return nil, fmt.Errorf("%s: palette has no colours", name)
	}
	return pal, nil
}

// ParseHex parses a ".hex" palette: one colour per line written RRGGBB
// (optionally "#RRGGBB"), blank lines ignored. name is used in error
// messages, which read "name:line: what is wrong".
func ParseHex(r io.Reader, name string) (Palette, error) {
	var pal Palette
	err := paletteLines(r, name, func(n int, line string) error {
		t := strings.TrimSpace(line)
		if t == "" {
			return nil
		}
		c, err := ParseColor(t)
		if err != nil {
			return fmt.Errorf("%s:%d: bad colour %q: want 6 hex digits RRGGBB", name, n, t)
		}
		if len(pal) == MaxPaletteColors {
			return tooManyColors(name, n)
		}
		pal = append(pal, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(pal) == 0 {
		return nil, fmt.Errorf("%s: palette has no colours", name)
	}
	return pal, nil
}

// histEntry is one distinct 8-bit colour and how many pixels have it.
type histEntry struct {
	rgb   [3]uint8
	count int
}

func packRGB(c [3]uint8) uint32 { return uint32(c[0])<<16 | uint32(c[1])<<8 | uint32(c[2]) }

// histogram returns the distinct 8-bit colours of f's visible pixels
// (alpha > 0), sorted by packed RGB value so every later step is
// deterministic.
func histogram(f *Float) []histEntry {
	counts := make(map[uint32]int)
	n := f.W * f.H
	for i := 0; i < n; i++ {
		p := f.Pix[i*f.C : i*f.C+f.C]
		if f.hasAlpha() && p[f.C-1] <= 0 {
			continue
		}
		counts[packRGB(rgb8(p, f.C))]++
	}
	out := make([]histEntry, 0, len(counts))
	for k, c := range counts {
		out = append(out, histEntry{[3]uint8{uint8(k >> 16), uint8(k >> 8), uint8(k)}, c})
	}
	slices.SortFunc(out, func(a, b histEntry) int { return cmp.Compare(packRGB(a.rgb), packRGB(b.rgb)) })
	return out
}

// rgb8 is the 8-bit RGB of one pixel's channels.
func rgb8(p []float32, c int) [3]uint8 {
	if c < 3 {
		v := to8(p[0])
		return [3]uint8{v, v, v}
	}
	return [3]uint8{to8(p[0]), to8(p[1]), to8(p[2])}
}

// MedianCut builds a palette of at most n colours for f's visible pixels.
// If f has n or fewer distinct colours, they are the palette exactly.
// Otherwise the colour histogram is split by median cut (repeatedly
// halving, at the pixel-weighted median of its longest side, the box with
// the longest side) and the box means are refined by a few k-means
// iterations. Everything runs in a fixed order, so the same image always
// gives the same palette. Colours are ordered by luma, darkest first.
func MedianCut(f *Float, n int) (Palette, error) {
	if f.Empty() {
		return nil, fmt.Errorf("median cut: image is empty")
	}
	if n < 1 || n > 65536 {
		return nil, fmt.Errorf("median cut to %d colours: want 1 to 65536", n)
	}
	hist := histogram(f)
	if len(hist) == 0 {
		return nil, fmt.Errorf("median cut: image has no visible pixels")
	}
	var centres [][3]float64
	if len(hist) <= n {
		for _, e := range hist {
			centres = append(centres, [3]float64{float64(e.rgb[0]), float64(e.rgb[1]), float64(e.rgb[2])})
		}
	} else {
		centres = kmeans(hist, medianCut(hist, n), 4)
	}
	seen := make(map[color.NRGBA]bool)
	var pal Palette
	for _, c := range centres {
		col := color.NRGBA{uint8(math.Round(c[0])), uint8(math.Round(c[1])), uint8(math.Round(c[2])), 255}
		if !seen[col] {
			seen[col] = true
			pal = append(pal, col)
		}
	}
	slices.SortFunc(pal, func(a, b color.NRGBA) int {
		la := 2126*int(a.R) + 7152*int(a.G) + 722*int(a.B)
		lb := 2126*int(b.R) + 7152*int(b.G) + 722*int(b.B)
		if la != lb {
			return cmp.Compare(la, lb)
		}
		return cmp.Compare(packRGB([3]uint8{a.R, a.G, a.B}), packRGB([3]uint8{b.R, b.G, b.B}))
	})
	return pal, nil
}

// medianCut splits hist into n boxes and returns their weighted means.
func medianCut(hist []histEntry, n int) [][3]float64 {
	type box struct{ entries []histEntry }
	side := func(b box) (axis, length int) {
		for a := 0; a < 3; a++ {
			lo, hi := 255, 0
			for _, e := range b.entries {
				lo = min(lo, int(e.rgb[a]))
				hi = max(hi, int(e.rgb[a]))
			}
			if hi-lo > length {
				axis, length = a, hi-lo
			}
		}
		return axis, length
	}
	boxes := []box{{hist}}
	for len(boxes) < n {
		best, bestLen, bestAxis := -1, 0, 0
		for i, b := range boxes {
			if a, l := side(b); l > bestLen {
				best, bestLen, bestAxis = i, l, a
			}
		}
		if best < 0 {
			break // every box holds a single colour
		}
		b := boxes[best].entries
		axis := bestAxis
		slices.SortStableFunc(b, func(x, y histEntry) int {
			if c := cmp.Compare(x.rgb[axis], y.rgb[axis]); c != 0 {
				return c
			}
			return cmp.Compare(packRGB(x.rgb), packRGB(y.rgb))
		})
		total := 0
		for _, e := range b {
			total += e.count
		}
		cut, acc := 1, 0
		for i, e := range b {
			acc += e.count
			if 2*acc >= total {
				cut = i + 1
				break
			}
		}
		cut = max(1, min(len(b)-1, cut))
		boxes[best] = box{b[:cut:cut]}
		boxes = append(boxes, box{b[cut:]})
	}
	centres := make([][3]float64, len(boxes))
	for i, b := range boxes {
		centres[i] = weightedMean(b.entries)
	}
	return centres
}

func weightedMean(es []histEntry) [3]float64 {
	var s [3]float64
	total := 0.0
	for _, e := range es {
		w := float64(e.count)
		for a := range s {
			s[a] += w * float64(e.rgb[a])
		}
		total += w
	}
	for a := range s {
		s[a] /= total
	}
	return s
}

// kmeans runs iters Lloyd iterations over the histogram from the given
// centres; a centre that loses all its colours stays where it was.
func kmeans(hist []histEntry, centres [][3]float64, iters int) [][3]float64 {
	for it := 0; it < iters; it++ {
		sums := make([][4]float64, len(centres))
		for _, e := range hist {
			v := [3]float64{float64(e.rgb[0]), float64(e.rgb[1]), float64(e.rgb[2])}
			best, bd := 0, math.Inf(1)
			for i, c := range centres {
				d := sq(v[0]-c[0]) + sq(v[1]-c[1]) + sq(v[2]-c[2])
				if d < bd {
					best, bd = i, d
				}
			}
			w := float64(e.count)
			sums[best][0] += w * v[0]
			sums[best][1] += w * v[1]
			sums[best][2] += w * v[2]
			sums[best][3] += w
		}
		for i, s := range sums {
			if s[3] > 0 {
				centres[i] = [3]float64{s[0] / s[3], s[1] / s[3], s[2] / s[3]}
			}
		}
	}
	return centres
}

func sq(x float64) float64 { return x * x }

// nearest returns the index of the palette colour closest to (r, g, b) in
// Euclidean 8-bit RGB distance; ties go to the lower index.
func (p Palette) nearest(r, g, b float64) int {
	best, bd := 0, math.Inf(1)
	for i, c := range p {
		d := sq(r-float64(c.R)) + sq(g-float64(c.G)) + sq(b-float64(c.B))
		if d < bd {
			best, bd = i, d
		}
	}
	return best
}

// Quantize maps every visible pixel of f to the nearest colour of pal
// (Euclidean distance in 8-bit RGB, the distance pixel artists' palette
// tools use). Alpha is kept as it is; see [ThresholdAlpha] for hard pixel
// art edges. With dither, the quantisation error is spread to unvisited
// neighbours by Floyd–Steinberg (7/16 right, 3/16 below left, 5/16 below,
// 1/16 below right, rows left to right); pixel art usually wants it off.
// One- and two-channel images become RGB(A).
func Quantize(f *Float, pal Palette, dither bool) (*Float, error) {
	if f.Empty() {
		return nil, fmt.Errorf("quantize: image is empty")
	}
	if len(pal) == 0 {
		return nil, fmt.Errorf("quantize: palette has no colours")
	}
	src := f
	if f.C < 3 {
		src = Channels(f, f.C+2)
	}
	out := src.Clone()
	w, h, c := src.W, src.H, src.C
	visible := func(i int) bool { return c != 4 || src.Pix[i*4+3] > 0 }
	set := func(i, k int) {
		q := out.Pix[i*c:]
		q[0] = float32(pal[k].R) / 255
		q[1] = float32(pal[k].G) / 255
		q[2] = float32(pal[k].B) / 255
	}
	if !dither {
		cache := make(map[uint32]int)
		for i := 0; i < w*h; i++ {
			if !visible(i) {
				continue
			}
			v := rgb8(src.Pix[i*c:], c)
			key := packRGB(v)
			k, ok := cache[key]
			if !ok {
				k = pal.nearest(float64(v[0]), float64(v[1]), float64(v[2]))
				cache[key] = k
			}
			set(i, k)
		}
		return out, nil
	}
	cur := make([][3]float64, w+2) // error for this row, offset by 1
	next := make([][3]float64, w+2)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			if !visible(i) {
				continue
			}
			p := src.Pix[i*c:]
			var want [3]float64
			for a := range want {
				want[a] = math.Max(0, math.Min(255, float64(p[a])*255+cur[x+1][a]))
			}
			k := pal.nearest(want[0], want[1], want[2])
			set(i, k)
			got := [3]float64{float64(pal[k].R), float64(pal[k].G), float64(pal[k].B)}
			for a := range want {
				e := want[a] - got[a]
				cur[x+2][a] += e * 7 / 16
				next[x][a] += e * 3 / 16
				next[x+1][a] += e * 5 / 16
				next[x+2][a] += e * 1 / 16
			}
		}
		cur, next = next, cur
		clear(next)
	}
	return out, nil
}

// ThresholdAlpha returns f with alpha set to 1 where it is at least t and
// to 0 (colour cleared) elsewhere: the hard edges pixel art wants after
// keying and downscaling. Images without alpha are returned as copies.
func ThresholdAlpha(f *Float, t float64) *Float {
	out := f.Clone()
	if !f.hasAlpha() {
		return out
	}
	for i := 0; i < len(out.Pix); i += out.C {
		if float64(out.Pix[i+out.C-1]) >= t {
			out.Pix[i+out.C-1] = 1
			continue
		}
		for k := 0; k < out.C; k++ {
			out.Pix[i+k] = 0
		}
	}
	return out
}
