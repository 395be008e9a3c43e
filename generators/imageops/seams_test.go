package imageops

import (
	"image"
	"image/color"
	"math"
	"testing"
)

func TestSeams(t *testing.T) {
	const w, h = 64, 48
	tests := []struct {
		name         string
		img          *Float
		xLo, xHi     float64
		yLo, yHi     float64
		wantUntouchd bool
	}{
		{
			// Integer periods on both axes, phase moving with the row, so
			// the boundary pair sees every phase the interior sees.
			name: "periodic sine",
			img: fill(w, h, 3, func(x, y, c int) float64 {
				return 0.5 + 0.4*math.Sin(2*math.Pi*(3*float64(x)/w+2*float64(y)/h))
			}),
			xLo: 0.97, xHi: 1.03, yLo: 0.97, yHi: 1.03,
		},
		{
			name: "flat",
			img:  Constant(w, h, 0.3, 0.3, 0.3),
			xLo:  1, xHi: 1, yLo: 1, yHi: 1,
		},
		{
			name: "horizontal ramp: seam in x only",
			img: fill(w, h, 1, func(x, y, c int) float64 {
				return float64(x) / (w - 1)
			}),
			// Boundary jump is 1, interior steps are 1/63.
			xLo: 62, xHi: 64, yLo: 1, yHi: 1,
		},
		{
			name: "periodic noise",
			img:  periodicTexture(w, h, 3, 2, 3),
			xLo:  0.6, xHi: 1.5, yLo: 0.6, yHi: 1.5,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, y := Seams(tt.img)
			if x < tt.xLo-1e-9 || x > tt.xHi+1e-9 || y < tt.yLo-1e-9 || y > tt.yHi+1e-9 {
				t.Errorf("Seams = (%v, %v), want x in [%v,%v], y in [%v,%v]", x, y, tt.xLo, tt.xHi, tt.yLo, tt.yHi)
			}
		})
	}
}

func TestSeamsHardStepScoresHigh(t *testing.T) {
	// Smooth interior, a hard step where the right edge meets the left.
	img := fill(64, 64, 3, func(x, y, c int) float64 {
		return 0.2 + 0.6*float64(x)/63 + 0.05*math.Sin(2*math.Pi*3*float64(y)/64)
	})
	x, y := Seams(img)
	if x < 10 {
		t.Errorf("x seam %v, want > 10", x)
	}
	if y > 3 {
		t.Errorf("y seam %v: rows wrap smoothly enough, want small", y)
	}
}

func TestSeamsDegenerate(t *testing.T) {
	for _, f := range []*Float{NewFloat(0, 0, 3), Constant(1, 1, 0.5), Constant(1, 5, 0.5)} {
		x, y := Seams(f)
		if x != 1 || y != 1 {
			t.Errorf("%dx%d: Seams = (%v, %v), want (1, 1)", f.W, f.H, x, y)
		}
	}
}

func TestTile2x2(t *testing.T) {
	f := noise(3, 2, 2, 9)
	g := Tile2x2(f)
	if g.W != 6 || g.H != 4 || g.C != 2 {
		t.Fatalf("shape %dx%dx%d", g.W, g.H, g.C)
	}
	for y := 0; y < 4; y++ {
		for x := 0; x < 6; x++ {
			for c := 0; c < 2; c++ {
				if g.At(x, y, c) != f.At(x%3, y%2, c) {
					t.Fatalf("(%d,%d,%d) differs", x, y, c)
				}
			}
		}
	}
}

func TestTile2x2Image(t *testing.T) {
	g16 := image.NewGray16(image.Rect(5, 5, 7, 6))
	g16.SetGray16(5, 5, color.Gray16{Y: 1000})
	g16.SetGray16(6, 5, color.Gray16{Y: 60000})
	nrgba := image.NewNRGBA(image.Rect(0, 0, 2, 1))
	nrgba.SetNRGBA(1, 0, color.NRGBA{1, 2, 3, 4})
	tests := []struct {
		src  image.Image
		want string
	}{
		{g16, "*image.Gray16"},
		{nrgba, "*image.NRGBA"},
	}
	for _, tt := range tests {
		out := Tile2x2Image(tt.src)
		if got := typeName(out); got != tt.want {
			t.Errorf("%T tiled to %s, want %s", tt.src, got, tt.want)
		}
		b := tt.src.Bounds()
		if out.Bounds() != image.Rect(0, 0, 2*b.Dx(), 2*b.Dy()) {
			t.Errorf("bounds %v", out.Bounds())
		}
		for y := 0; y < 2*b.Dy(); y++ {
			for x := 0; x < 2*b.Dx(); x++ {
				want := tt.src.At(b.Min.X+x%b.Dx(), b.Min.Y+y%b.Dy())
				r1, g1, b1, a1 := out.At(x, y).RGBA()
				r2, g2, b2, a2 := want.RGBA()
				if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
					t.Errorf("%T (%d,%d) = %v, want %v", tt.src, x, y, out.At(x, y), want)
				}
			}
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *image.Gray16:
		return "*image.Gray16"
	case *image.NRGBA:
		return "*image.NRGBA"
	}
	return "other"
}
