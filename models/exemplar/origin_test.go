package exemplar

import (
	"image"
	"testing"
)

func TestRoll(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = uint8(i)
	}
	r := Roll(img, 2, -1)
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			if got, want := r.NRGBAAt(wrapInt(x+2, 5), wrapInt(y-1, 3)), img.NRGBAAt(x, y); got != want {
				t.Fatalf("pixel (%d,%d) moved to %v, want %v", x, y, got, want)
			}
		}
	}
	if back := Roll(r, -2, 1); string(back.Pix) != string(img.Pix) {
		t.Error("rolling back does not restore the image")
	}
}

// TestSeamShift: on a periodic image with a strong stripe, SeamShift moves
// the wrap off the stripe, to a typical pair, and only on tiled axes.
func TestSeamShift(t *testing.T) {
	const w, h = 32, 24
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	g := newRNG(3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(100 + g.intn(20))
			if x == 0 || y == 0 {
				v = 250 // a stripe on the first column and row: the wrap pairs cross it
			}
			i := y*img.Stride + 4*x
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = v, v, v, 255
		}
	}
	if ex, ey := edgeRatios(img); ex < 2 || ey < 2 {
		t.Fatalf("test image edge ratios %.2f, %.2f: want the stripe to dominate", ex, ey)
	}
	dx, dy := SeamShift(img, Tiling{X: true, Y: true})
	if ex, ey := edgeRatios(Roll(img, dx, dy)); ex > 1.15 || ey > 1.15 {
		t.Errorf("after shifting by (%d, %d) the edge pairs are %.2f, %.2f times the mean pair", dx, dy, ex, ey)
	}
	if dx, dy := SeamShift(img, Tiling{X: true}); dy != 0 || dx == 0 {
		t.Errorf("x-only tiling shifted by (%d, %d)", dx, dy)
	}
	if dx, dy := SeamShift(img, Tiling{}); dx != 0 || dy != 0 {
		t.Errorf("no tiling shifted by (%d, %d)", dx, dy)
	}
}

// edgeRatios is, per axis, the mean difference of the pixels that meet
// where img's last column (row) wraps onto its first, over the mean
// difference of all adjacent pairs: what SeamShift keeps ordinary. (The
// seam score of imageops.Seams is the same for every shift, by design.)
func edgeRatios(img *image.NRGBA) (x, y float64) {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	at := func(x, y int) float64 { return float64(img.Pix[y*img.Stride+4*x]) }
	abs := func(v float64) float64 { return max(v, -v) }
	var edgeX, allX, edgeY, allY float64
	for yy := 0; yy < h; yy++ {
		for xx := 0; xx < w; xx++ {
			dxv := abs(at(xx, yy) - at((xx+1)%w, yy))
			dyv := abs(at(xx, yy) - at(xx, (yy+1)%h))
			allX += dxv
			allY += dyv
			if xx == w-1 {
				edgeX += dxv
			}
			if yy == h-1 {
				edgeY += dyv
			}
		}
	}
	return (edgeX / float64(h)) / (allX / float64(w*h)), (edgeY / float64(w)) / (allY / float64(w*h))
}
