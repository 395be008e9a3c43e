package exemplar

import (
	"image"
	"testing"

	"github.com/kiln-dev/kiln/generators/imageops"
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
	sx, sy := imageops.Seams(imageops.FromImage(img))
	if sx < 2 || sy < 2 {
		t.Fatalf("test image seams %.2f, %.2f: want the stripe to dominate", sx, sy)
	}
	dx, dy := SeamShift(img, Tiling{X: true, Y: true})
	r := Roll(img, dx, dy)
	sx, sy = imageops.Seams(imageops.FromImage(r))
	if sx > 1.15 || sy > 1.15 {
		t.Errorf("after shifting by (%d, %d) seams are %.2f, %.2f", dx, dy, sx, sy)
	}
	if dx, dy := SeamShift(img, Tiling{X: true}); dy != 0 || dx == 0 {
		t.Errorf("x-only tiling shifted by (%d, %d)", dx, dy)
	}
	if dx, dy := SeamShift(img, Tiling{}); dx != 0 || dy != 0 {
		t.Errorf("no tiling shifted by (%d, %d)", dx, dy)
	}
}
