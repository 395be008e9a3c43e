package imageops

import (
	"image"
	"image/draw"
	"math"
	"slices"
)

// seamEpsilon keeps the seam score finite on flat images, which score 1.
const seamEpsilon = 1e-6

// SeamlessScore is the highest score of Seams at which an image tiles
// without a visible seam: every tileable output and derived map kiln was
// measured on scores at most 1.45, and images that do not tile 1.6 and
// above on the axis that has the seam.
const SeamlessScore = 1.5

// seamReach is how far away (in pairs) the pairs are that a pair's
// sharpness is measured against: two, past the neighbours that a 3×3
// filter (the Sobel of a normal map) spreads a seam onto.
const seamReach = 2

// seamGuard is how far (in pairs, each way) from the strongest pair the
// pairs lie that Seams leaves out of the comparison: filters such as the
// Sobel of a normal map spread one seam over neighbouring pairs.
const seamGuard = 2

// Seams measures, per axis, whether f has a seam: a place where, with f
// tiled, one column (row) of pixels does not continue the image. For each
// adjacent column pair, taken cyclically so that the pair of the last and
// the first column (where the image meets its copy) is one of them, it
// takes the mean colour difference and subtracts the mean of the pairs two
// columns to either side: a seam is a jump the image around it does not
// share, while an edge of the picture (the rim of a stone, a moss crease)
// rises and falls over several pixels. The score is that sharpness of the
// sharpest pair over the sharpest pair more than two columns away from it,
// each plus a fifth of the median pair difference so that a smooth image's
// tiny differences do not make a large ratio. y is the same for rows. A
// difference is the Euclidean length of the RGB (or gray) difference;
// alpha is ignored.
//
// No circular shift changes the score, so moving a seam into the interior
// (as kiln does when it picks where a tile's edge falls) cannot hide it;
// and a pattern's own strong edges (brick mortar, plank gaps) repeat, so
// they do not stand out against each other. On kiln's own outputs, tileable
// textures and their derived maps score 1.0 to 1.45, and the same prompts
// generated without tiling 1.6 to 9 on at least one axis (smooth maps such
// as ambient occlusion excepted). A seam weaker than the image's repeating
// edges, such as courses of bricks cut mid-course, is not seen. Axes
// shorter than 7 pixels score 1.
func Seams(f *Float) (x, y float64) {
	if f.Empty() {
		return 1, 1
	}
	cols, rows := pairDifferences(f)
	return seamScore(cols), seamScore(rows)
}

// pairDifferences returns the mean difference of each cyclic column pair
// (j, j+1 mod W) and row pair (i, i+1 mod H). Each sum runs in one fixed
// order, so the result does not depend on how the work was split across
// goroutines.
func pairDifferences(f *Float) (cols, rows []float64) {
	cc := f.colorChannels()
	w, h := f.W, f.H
	diff := func(i, j int) float64 {
		a := f.Pix[i*f.C : i*f.C+cc]
		b := f.Pix[j*f.C : j*f.C+cc]
		s := 0.0
		for k := range a {
			d := float64(a[k]) - float64(b[k])
			s += d * d
		}
		return math.Sqrt(s)
	}
	rows = make([]float64, h)
	parallel(h, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			below := (r + 1) % h
			s := 0.0
			for c := 0; c < w; c++ {
				s += diff(r*w+c, below*w+c)
			}
			rows[r] = s / float64(w)
		}
	})
	cols = make([]float64, w)
	parallel(w, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			right := (c + 1) % w
			s := 0.0
			for r := 0; r < h; r++ {
				s += diff(r*w+c, r*w+right)
			}
			cols[c] = s / float64(h)
		}
	})
	return cols, rows
}

// seamScore compares the sharpest of the cyclic pair differences d (see
// Seams) with the sharpest of those more than seamGuard pairs away.
func seamScore(d []float64) float64 {
	n := len(d)
	if n < 2*seamGuard+3 {
		return 1
	}
	sharp := make([]float64, n)
	for j, v := range d {
		sharp[j] = max(0, v-(d[(j-seamReach+n)%n]+d[(j+seamReach)%n])/2)
	}
	sorted := slices.Clone(d)
	slices.Sort(sorted)
	floor := sorted[n/2]/5 + seamEpsilon
	top := 0
	for i, v := range sharp {
		if v > sharp[top] {
			top = i
		}
	}
	other := 0.0
	for i, v := range sharp {
		dist := (i - top + n) % n
		if dist > seamGuard && dist < n-seamGuard && v > other {
			other = v
		}
	}
	return (sharp[top] + floor) / (other + floor)
}

// Tile2x2 returns f repeated twice across and twice down, the preview an
// artist looks at to judge whether a texture tiles (`kiln inspect tile`).
func Tile2x2(f *Float) *Float {
	g := NewFloat(2*f.W, 2*f.H, f.C)
	rowLen := f.W * f.C
	for y := 0; y < 2*f.H; y++ {
		src := f.Pix[(y%f.H)*rowLen : (y%f.H+1)*rowLen]
		dst := g.Pix[y*2*rowLen:]
		copy(dst, src)
		copy(dst[rowLen:], src)
	}
	return g
}

// Tile2x2Image is [Tile2x2] for an image.Image, keeping 16-bit sources 16-bit
// and everything else 8-bit, so `kiln inspect tile` previews exactly what is
// in the file.
func Tile2x2Image(img image.Image) image.Image {
	b := img.Bounds()
	r := image.Rect(0, 0, 2*b.Dx(), 2*b.Dy())
	var dst draw.Image
	switch img.(type) {
	case *image.Gray:
		dst = image.NewGray(r)
	case *image.Gray16:
		dst = image.NewGray16(r)
	case *image.RGBA64, *image.NRGBA64:
		dst = image.NewNRGBA64(r)
	default:
		dst = image.NewNRGBA(r)
	}
	for _, off := range []image.Point{{0, 0}, {b.Dx(), 0}, {0, b.Dy()}, {b.Dx(), b.Dy()}} {
		draw.Draw(dst, b.Sub(b.Min).Add(off), img, b.Min, draw.Src)
	}
	return dst
}
