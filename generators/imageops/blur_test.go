package imageops

import (
	"math"
	"testing"
)

// boxReference is BoxBlur computed the slow, obvious way.
func boxReference(f *Float, rx, ry int, e Edges) *Float {
	out := NewFloat(f.W, f.H, f.C)
	for y := 0; y < f.H; y++ {
		for x := 0; x < f.W; x++ {
			for c := 0; c < f.C; c++ {
				s := 0.0
				for dy := -ry; dy <= ry; dy++ {
					for dx := -rx; dx <= rx; dx++ {
						s += float64(f.At(e.X.index(x+dx, f.W), e.Y.index(y+dy, f.H), c))
					}
				}
				out.Set(x, y, c, float32(s/float64((2*rx+1)*(2*ry+1))))
			}
		}
	}
	return out
}

func TestBoxBlurMatchesReference(t *testing.T) {
	src := noise(13, 9, 3, 7)
	tests := []struct {
		name   string
		rx, ry int
		e      Edges
	}{
		{"clamp 1x2", 1, 2, Edges{}},
		{"wrap 2x1", 2, 1, Edges{Wrap, Wrap}},
		{"wrap x only", 3, 3, Edges{X: Wrap}},
		{"radius beyond width, wrap", 20, 11, Edges{Wrap, Wrap}},
		{"radius beyond width, clamp", 20, 11, Edges{}},
		{"x only", 4, 0, Edges{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BoxBlur(src, tt.rx, tt.ry, tt.e)
			if d := maxDiff(t, got, boxReference(src, tt.rx, tt.ry, tt.e)); d > 1e-5 {
				t.Errorf("differs from reference by %v", d)
			}
		})
	}
}

func TestBlurConstantStaysConstant(t *testing.T) {
	for _, e := range []Edges{{}, {Wrap, Wrap}, {X: Wrap}} {
		f := Constant(37, 23, 0.25, 0.5, 0.75, 1)
		if d := maxDiff(t, Blur(f, 9.3, e), f); d != 0 {
			t.Errorf("edges %v: constant image changed by %v", e, d)
		}
	}
}

// TestBlurVariance checks that the three box passes have the Gaussian's
// variance: the blurred impulse's second moment is sigma².
func TestBlurVariance(t *testing.T) {
	for _, sigma := range []float64{0.8, 1.5, 4, 10.7} {
		n := 129
		f := NewFloat(n, 1, 1)
		f.Set(n/2, 0, 0, 1)
		g := Blur(f, sigma, Edges{})
		var mass, m2 float64
		for x := 0; x < n; x++ {
			v := float64(g.At(x, 0, 0))
			d := float64(x - n/2)
			mass += v
			m2 += v * d * d
		}
		if !near(mass, 1, 1e-5) {
			t.Errorf("sigma %v: mass %v, want 1", sigma, mass)
		}
		// Integer box widths cannot hit every variance; within one
		// width step is the design.
		if got := math.Sqrt(m2); !near(got, sigma, 0.25) {
			t.Errorf("sigma %v: measured %v", sigma, got)
		}
	}
}

func TestBlurWrapConservesMass(t *testing.T) {
	f := NewFloat(16, 16, 1)
	f.Set(0, 0, 0, 1)
	g := Blur(f, 3, Edges{Wrap, Wrap})
	var s float64
	for _, v := range g.Pix {
		s += float64(v)
	}
	if !near(s, 1, 1e-5) {
		t.Errorf("mass %v, want 1", s)
	}
	// The impulse sits at a corner; with wrap it spreads symmetrically to
	// the opposite borders.
	if !near(float64(g.At(1, 0, 0)), float64(g.At(15, 0, 0)), 1e-7) ||
		!near(float64(g.At(0, 2, 0)), float64(g.At(0, 14, 0)), 1e-7) {
		t.Error("wrap blur is not symmetric across the border")
	}
}
