package imageops

import (
	"math"
	"math/rand/v2"
	"testing"
)

// noise returns a w×h×c image of deterministic uniform noise in [0,1].
func noise(w, h, c int, seed uint64) *Float {
	r := rand.New(rand.NewPCG(seed, 1))
	f := NewFloat(w, h, c)
	for i := range f.Pix {
		f.Pix[i] = r.Float32()
	}
	return f
}

// periodicTexture returns a smooth random texture that tiles exactly: noise
// blurred with wrap-around edges.
func periodicTexture(w, h, c int, sigma float64, seed uint64) *Float {
	f := Blur(noise(w, h, c, seed), sigma, Edges{Wrap, Wrap})
	q, _, _ := percentiles(f.Pix, 0, 1)
	stretch(f.Pix, q[0], q[1], 0, 1, 0.5)
	return f
}

// fill builds a w×h×c image from fn(x, y, c).
func fill(w, h, c int, fn func(x, y, c int) float64) *Float {
	f := NewFloat(w, h, c)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for ch := 0; ch < c; ch++ {
				f.Set(x, y, ch, float32(fn(x, y, ch)))
			}
		}
	}
	return f
}

// maxDiff is the largest absolute difference between two images of equal
// shape; it fails the test if the shapes differ.
func maxDiff(t *testing.T, a, b *Float) float64 {
	t.Helper()
	if a.W != b.W || a.H != b.H || a.C != b.C {
		t.Fatalf("shape %dx%dx%d vs %dx%dx%d", a.W, a.H, a.C, b.W, b.H, b.C)
	}
	m := 0.0
	for i := range a.Pix {
		m = math.Max(m, math.Abs(float64(a.Pix[i]-b.Pix[i])))
	}
	return m
}

// near reports whether a and b differ by at most tol.
func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }
