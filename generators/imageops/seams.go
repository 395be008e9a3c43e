package imageops

import (
	"image"
	"image/draw"
	"math"
)

// seamEpsilon keeps the seam ratio finite on flat images: a flat image
// scores 1 (no seam), a step on an otherwise flat image scores about
// step/seamEpsilon.
const seamEpsilon = 1e-6

// Seams measures how visible the wrap-around seams of f are. For the x axis
// it is the mean colour difference between the last and the first column
// (the pair of pixels that meet when the image is tiled side by side)
// divided by the mean difference between horizontally adjacent pixels
// inside the image; y is the same for the last and first row. A difference
// is the Euclidean length of the RGB (or gray) difference; alpha is
// ignored. A seamless tile scores about 1; a visible seam scores well above
// (issue 5 asks tileable outputs for ≤ 1.15). Images narrower or shorter
// than 2 pixels score 1 on that axis.
func Seams(f *Float) (x, y float64) {
	if f.Empty() {
		return 1, 1
	}
	cc := f.colorChannels()
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
	w, h := f.W, f.H
	// Per-row partial sums, combined in row order, keep the result
	// independent of how the rows were split across goroutines.
	type part struct{ xin, xb, yin, yb float64 }
	parts := make([]part, h)
	parallel(h, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			p := &parts[r]
			for c := 0; c+1 < w; c++ {
				p.xin += diff(r*w+c, r*w+c+1)
			}
			p.xb = diff(r*w+w-1, r*w)
			below := r + 1
			if below == h {
				for c := 0; c < w; c++ {
					p.yb += diff(r*w+c, c)
				}
				continue
			}
			for c := 0; c < w; c++ {
				p.yin += diff(r*w+c, below*w+c)
			}
		}
	})
	var xin, xb, yin, yb float64
	for _, p := range parts {
		xin += p.xin
		xb += p.xb
		yin += p.yin
		yb += p.yb
	}
	x, y = 1, 1
	if w >= 2 {
		x = (xb/float64(h) + seamEpsilon) / (xin/float64(h*(w-1)) + seamEpsilon)
	}
	if h >= 2 {
		y = (yb/float64(w) + seamEpsilon) / (yin/float64(w*(h-1)) + seamEpsilon)
	}
	return x, y
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
