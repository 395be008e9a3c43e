package imageops

import "testing"

func TestResizeConstantStaysConstant(t *testing.T) {
	src := Constant(30, 20, 0.2, 0.4, 0.6, 0.8)
	sizes := [][2]int{{60, 40}, {7, 5}, {31, 97}, {1, 1}}
	for _, k := range []Filter{Lanczos3, CatmullRom} {
		for _, e := range []Edges{{}, {Wrap, Wrap}} {
			for _, s := range sizes {
				g, err := Resize(src, s[0], s[1], k, e)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxDiff(t, g, Constant(s[0], s[1], 0.2, 0.4, 0.6, 0.8)); d > 1e-6 {
					t.Errorf("%v %v → %v: constant changed by %v", k, e, s, d)
				}
			}
		}
	}
}

func TestResizeSameSizeIsCopy(t *testing.T) {
	src := noise(9, 7, 3, 2)
	g, err := Resize(src, 9, 7, Lanczos3, Edges{})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, g, src); d != 0 {
		t.Errorf("differs by %v", d)
	}
}

// TestResizeCheckerboardHalves: halving a one-pixel checkerboard averages
// each pair symmetrically to exactly 0.5 (with wrap, at the borders too).
func TestResizeCheckerboardHalves(t *testing.T) {
	src := fill(32, 16, 1, func(x, y, _ int) float64 { return float64((x + y) % 2) })
	for _, k := range []Filter{Lanczos3, CatmullRom} {
		g, err := Resize(src, 16, 8, k, Edges{Wrap, Wrap})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range g.Pix {
			if !near(float64(v), 0.5, 1e-6) {
				t.Fatalf("%v: pixel %d = %v, want 0.5", k, i, v)
			}
		}
	}
}

// TestResizeCatmullRomKeepsRamps: Catmull-Rom reproduces linear functions,
// so an upscaled ramp is the ramp sampled at the new pixel centres.
func TestResizeCatmullRomKeepsRamps(t *testing.T) {
	src := fill(16, 4, 1, func(x, y, _ int) float64 { return 0.1 + 0.05*float64(x) })
	g, err := Resize(src, 48, 4, CatmullRom, Edges{})
	if err != nil {
		t.Fatal(err)
	}
	for x := 6; x < 42; x++ { // away from the clamped borders
		u := (float64(x)+0.5)/3 - 0.5
		if got := float64(g.At(x, 2, 0)); !near(got, 0.1+0.05*u, 1e-5) {
			t.Errorf("x=%d: %v, want %v", x, got, 0.1+0.05*u)
		}
	}
}

// TestResizeWrapTiles: with wrap, resizing commutes with circular shifts,
// so a tileable texture stays tileable at its new size.
func TestResizeWrapTiles(t *testing.T) {
	src := periodicTexture(40, 24, 3, 1.5, 8)
	for _, k := range []Filter{Lanczos3, CatmullRom} {
		up, err := Resize(src, 80, 48, k, Edges{Wrap, Wrap})
		if err != nil {
			t.Fatal(err)
		}
		upShifted, err := Resize(shift(src, 5, 3), 80, 48, k, Edges{Wrap, Wrap})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, shift(up, 10, 6), upShifted); d > 1e-5 {
			t.Errorf("%v: resize does not commute with shift (%v)", k, d)
		}
		clamped, _ := Resize(src, 80, 48, k, Edges{})
		if maxDiff(t, clamped, up) < 1e-3 {
			t.Errorf("%v: clamp and wrap agree; edge mode ignored", k)
		}
	}
}

// TestResizeAlphaDoesNotBleed: the colour of fully transparent pixels must
// not leak into opaque neighbours.
func TestResizeAlphaDoesNotBleed(t *testing.T) {
	src := fill(16, 16, 4, func(x, y, c int) float64 {
		if x < 8 { // transparent, with a green colour nobody should see
			return []float64{0, 1, 0, 0}[c]
		}
		return []float64{0, 0, 1, 1}[c]
	})
	g, err := Resize(src, 40, 40, Lanczos3, Edges{})
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < g.H; y++ {
		for x := 0; x < g.W; x++ {
			if g.At(x, y, 3) > 0.01 && g.At(x, y, 1) > 1e-6 {
				t.Fatalf("(%d,%d) alpha %v has green %v", x, y, g.At(x, y, 3), g.At(x, y, 1))
			}
		}
	}
}

func TestResizeErrors(t *testing.T) {
	tests := []struct {
		src  *Float
		w, h int
		want string
	}{
		{NewFloat(0, 0, 3), 4, 4, "resize to 4x4: source image is empty"},
		{Constant(4, 4, 1), 0, 4, "resize 4x4 to 0x4: target size must be positive"},
	}
	for _, tt := range tests {
		_, err := Resize(tt.src, tt.w, tt.h, Lanczos3, Edges{})
		if err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

func TestDownscaleNearest(t *testing.T) {
	// Checkerboard of factor×factor blocks becomes a one-pixel checkerboard.
	for _, factor := range []int{1, 2, 3, 4} {
		src := fill(8*factor, 6*factor, 3, func(x, y, c int) float64 {
			return float64((x/factor+y/factor)%2) * []float64{1, 0.5, 0.25}[c]
		})
		g, err := DownscaleNearest(src, factor)
		if err != nil {
			t.Fatal(err)
		}
		want := fill(8, 6, 3, func(x, y, c int) float64 { return float64((x+y)%2) * []float64{1, 0.5, 0.25}[c] })
		if d := maxDiff(t, g, want); d != 0 {
			t.Errorf("factor %d: differs by %v", factor, d)
		}
	}
	// Non-divisible sizes drop the partial blocks; centre pixel is used.
	src := fill(7, 5, 1, func(x, y, _ int) float64 { return float64(y*7+x) / 35 })
	g, err := DownscaleNearest(src, 3)
	if err != nil {
		t.Fatal(err)
	}
	if g.W != 2 || g.H != 1 || g.At(0, 0, 0) != src.At(1, 1, 0) || g.At(1, 0, 0) != src.At(4, 1, 0) {
		t.Errorf("got %dx%d %v", g.W, g.H, g.Pix)
	}
}

func TestNearestRoundTripAndErrors(t *testing.T) {
	src := noise(5, 4, 4, 3)
	up, err := UpscaleNearest(src, 4)
	if err != nil {
		t.Fatal(err)
	}
	down, err := DownscaleNearest(up, 4)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, down, src); d != 0 {
		t.Errorf("upscale then downscale differs by %v", d)
	}
	tests := []struct {
		factor int
		want   string
	}{
		{0, "downscale by 0: the factor must be a positive integer"},
		{9, "downscale 5x4 by 9: the result would be empty; use a factor of at most 4"},
	}
	for _, tt := range tests {
		if _, err := DownscaleNearest(src, tt.factor); err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
	if _, err := UpscaleNearest(src, -1); err == nil {
		t.Error("UpscaleNearest accepted factor -1")
	}
}
