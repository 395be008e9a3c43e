package imageops

import (
	"image"
	"image/draw"
	"math"
)

// seamEpsilon keeps the seam score finite on flat images, which score 1.
const seamEpsilon = 1e-6

// seamGuard is how far (in pairs, each way) from the strongest pair the
// pairs lie that Seams leaves out of the comparison: filters such as the
// Sobel of a normal map spread one seam over neighbouring pairs.
const seamGuard = 2

// Seams measures, per axis, whether f has a seam: a place where, with f
// tiled, one column (row) of pixels does not continue the image. It is
// the mean colour difference of the strongest adjacent column pair, taken
// cyclically so that the pair of the last and the first column (where the
// image meets its copy) is one of them, divided by that of the strongest
// other pair more than two columns away. y is the same for rows. A
// difference is the Euclidean length of the RGB (or gray) difference;
// alpha is ignored.
//
// No circular shift changes the score, so moving a seam into the interior
// (as kiln does when it picks where a tile's edge falls) cannot hide it;
// and a pattern's own strong edges (brick mortar, plank gaps) repeat, so
// they do not stand out against each other. A tileable image scores about
// 1 (about 1.0 to 1.2 on kiln's textures and derived maps); an image with
// one seam scores well above (1.3 to 4 on the same textures generated
// without tiling). Axes shorter than 7 pixels score 1.
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

// seamScore compares the strongest of the cyclic pair differences d with
// the strongest of those more than seamGuard pairs away from it.
func seamScore(d []float64) float64 {
	n := len(d)
	if n < 2*seamGuard+3 {
		return 1
	}
	top := 0
	for i, v := range d {
		if v > d[top] {
			top = i
		}
	}
	other := 0.0
	for i, v := range d {
		dist := (i - top + n) % n
		if dist > seamGuard && dist < n-seamGuard && v > other {
			other = v
		}
	}
	return (d[top] + seamEpsilon) / (other + seamEpsilon)
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
