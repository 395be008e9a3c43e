package imageops

import (
	"image/color"
	"math"
	"strings"
	"testing"
)

// discScene renders, with 16×16 supersampling, a disc of radius r centred
// in a w×h image: colour inner inside radius r-ring, colour ring in the
// outer ring of the given width, key outside. It returns the image and each
// pixel's exact coverage by the disc and by the ring.
func discScene(w, h int, r, ringWidth float64, inner, ring, key [3]float64) (*Float, []float64, []float64) {
	f := NewFloat(w, h, 3)
	cov := make([]float64, w*h)
	ringCov := make([]float64, w*h)
	cx, cy := float64(w)/2, float64(h)/2
	const ss = 16
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var nIn, nRing int
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					px := float64(x) + (float64(sx)+0.5)/ss
					py := float64(y) + (float64(sy)+0.5)/ss
					d := math.Hypot(px-cx, py-cy)
					switch {
					case d < r-ringWidth:
						nIn++
					case d < r:
						nRing++
					}
				}
			}
			i := y*w + x
			a := float64(nIn) / (ss * ss)
			b := float64(nRing) / (ss * ss)
			cov[i], ringCov[i] = a+b, b
			for c := 0; c < 3; c++ {
				f.Pix[i*3+c] = float32(a*inner[c] + b*ring[c] + (1-a-b)*key[c])
			}
		}
	}
	return f, cov, ringCov
}

var (
	red   = [3]float64{1, 0, 0}
	green = [3]float64{0, 1, 0}
)

func TestChromaKeyRedDiscOnGreen(t *testing.T) {
	img, cov, _ := discScene(48, 40, 14.3, 0, red, red, green)
	o := DefaultKeyOptions(color.NRGBA{0, 255, 0, 255})
	out, err := ChromaKey(img, o)
	if err != nil {
		t.Fatal(err)
	}
	var edges, softEdges int
	for i, c := range cov {
		p := out.Pix[i*4 : i*4+4]
		a := float64(p[3])
		switch {
		case c == 0:
			if a != 0 {
				t.Fatalf("background pixel %d alpha %v, want 0", i, a)
			}
		case c == 1:
			if a != 1 || p[0] != 1 || p[1] != 0 || p[2] != 0 {
				t.Fatalf("inside pixel %d = %v, want opaque red", i, p)
			}
		default:
			edges++
			// Every edge pixel: alpha within the key's noise threshold of
			// its coverage, and no green cast beyond that either.
			if !near(a, c, 0.11) {
				t.Errorf("edge pixel %d coverage %.3f alpha %.3f", i, c, a)
			}
			if a > 0 && float64(p[1]) > 0.11 {
				t.Errorf("edge pixel %d coverage %.3f keeps green %.3f: fringe", i, c, p[1])
			}
			// Mid-coverage edges are unmixed exactly.
			if c > 0.15 && c < 0.85 {
				softEdges++
				if !near(a, c, 0.01) || !near(float64(p[0]), 1, 0.01) || p[1] > 0.01 || p[2] > 0.01 {
					t.Errorf("edge pixel %d coverage %.3f → alpha %.3f colour %v, want alpha≈coverage, pure red", i, c, a, p[:3])
				}
			}
		}
	}
	if edges < 40 || softEdges < 20 {
		t.Fatalf("scene has %d edge pixels, %d soft: not the anti-aliased disc the test needs", edges, softEdges)
	}
}

// TestChromaKeyOutlinedSprite: sprites have dark outlines; the edge pixels
// mix the outline (not the fill) with the key, and must unmix to it.
func TestChromaKeyOutlinedSprite(t *testing.T) {
	outline := [3]float64{0.15, 0.12, 0.1} // dark brown, as sprite outlines are
	img, cov, ringCov := discScene(48, 48, 15.2, 2.5, [3]float64{0.9, 0.7, 0.1}, outline, [3]float64{1, 0, 1})
	out, err := ChromaKey(img, DefaultKeyOptions(color.NRGBA{255, 0, 255, 255}))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, c := range cov {
		p := out.Pix[i*4 : i*4+4]
		// Outer edge: pixels covered only by the outline and the key.
		if c > 0.2 && c < 0.8 && ringCov[i] == c {
			checked++
			if !near(float64(p[3]), c, 0.01) {
				t.Errorf("pixel %d coverage %.3f alpha %.3f", i, c, p[3])
			}
			for k := 0; k < 3; k++ {
				if !near(float64(p[k]), outline[k], 0.02) {
					t.Errorf("pixel %d colour %v, want the outline %v", i, p[:3], outline)
					break
				}
			}
		}
		if c == 0 && p[3] != 0 {
			t.Fatalf("background pixel %d alpha %v", i, p[3])
		}
	}
	if checked < 20 {
		t.Fatalf("only %d outer edge pixels checked", checked)
	}
}

// TestChromaKeyBlurredEdge: a soft (blurred) edge mixes key, outline and
// fill, which no two-colour unmix explains; whatever key colour is left
// must be limited away (no green cast anywhere), while the subject away
// from the edge is untouched.
func TestChromaKeyBlurredEdge(t *testing.T) {
	fillCol := [3]float64{0.9, 0.7, 0.1} // yellow: leans toward green, must survive
	sharp, cov, _ := discScene(64, 64, 22, 3, fillCol, [3]float64{0.12, 0.1, 0.15}, green)
	img := Blur(sharp, 1.2, Edges{})
	o := DefaultKeyOptions(color.NRGBA{0, 255, 0, 255})
	out, err := ChromaKey(img, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cov {
		p := out.Pix[i*4 : i*4+4]
		if p[3] > 0 && p[1] > max(p[0], p[2])+1e-6 {
			t.Errorf("pixel %d alpha %.3f colour %v has a green cast", i, p[3], p[:3])
		}
	}
	// The centre is far from the band: exactly the input.
	for y := 24; y < 40; y++ {
		for x := 24; x < 40; x++ {
			for c := 0; c < 3; c++ {
				if out.At(x, y, c) != img.At(x, y, c) || out.At(x, y, 3) != 1 {
					t.Fatalf("interior pixel (%d,%d) changed", x, y)
				}
			}
		}
	}
}

func TestSpillLimiter(t *testing.T) {
	tests := []struct {
		name    string
		key, in [3]float64
		want    [3]float64
	}{
		{"green key, green cast removed", [3]float64{0, 1, 0}, [3]float64{0.2, 0.3, 0.1}, [3]float64{0.2, 0.2, 0.1}},
		{"green key, yellow kept", [3]float64{0, 1, 0}, [3]float64{0.9, 0.7, 0.1}, [3]float64{0.9, 0.7, 0.1}},
		{"green key, skin kept", [3]float64{0, 1, 0}, [3]float64{0.9, 0.7, 0.6}, [3]float64{0.9, 0.7, 0.6}},
		{"magenta key, red kept", [3]float64{1, 0, 1}, [3]float64{1, 0, 0}, [3]float64{1, 0, 0}},
		{"magenta key, purple to gray", [3]float64{1, 0, 1}, [3]float64{0.5, 0.1, 0.5}, [3]float64{0.1, 0.1, 0.1}},
		{"dark green key", [3]float64{0.1, 0.6, 0.2}, [3]float64{0.3, 0.5, 0.2}, [3]float64{0.3, 0.3, 0.2}},
		{"gray key, no limiter", [3]float64{0.5, 0.5, 0.5}, [3]float64{0.2, 0.9, 0.1}, [3]float64{0.2, 0.9, 0.1}},
	}
	for _, tt := range tests {
		c := tt.in
		newSpill(tt.key).suppress(&c)
		for k := range c {
			if !near(c[k], tt.want[k], 1e-12) {
				t.Errorf("%s: %v → %v, want %v", tt.name, tt.in, c, tt.want)
				break
			}
		}
	}
}

// TestChromaKeyShadedBackdrop: a backdrop with ±8% brightness variation
// (as diffusion paints "flat" backgrounds) still keys out completely.
func TestChromaKeyShadedBackdrop(t *testing.T) {
	img := fill(32, 32, 3, func(x, y, c int) float64 {
		shade := 0.92 + 0.08*math.Sin(float64(x)/4)*math.Cos(float64(y)/5)
		return []float64{0.02, shade, 0.03}[c]
	})
	out, err := ChromaKey(img, DefaultKeyOptions(color.NRGBA{0, 235, 0, 255}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 32*32; i++ {
		if a := out.Pix[i*4+3]; a != 0 {
			t.Fatalf("backdrop pixel %d alpha %v, want 0", i, a)
		}
	}
}

func TestChromaKeyRampAndHard(t *testing.T) {
	// Single-row image of colours at known distances from a gray key, no
	// refinement: alpha is the documented ramp.
	key := color.NRGBA{128, 128, 128, 255}
	k := 128.0 / 255
	o := KeyOptions{Key: key, Threshold: 0.1, Softness: 0.2, LumaWeight: 1}
	// Pure luma offsets: distance = |Δ| (luma weight 1, no chroma change).
	deltas := []float64{0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.35}
	want := []float64{0, 0, 0, 0.25, 0.5, 1, 1}
	img := NewFloat(len(deltas), 1, 3)
	for i, d := range deltas {
		for c := 0; c < 3; c++ {
			img.Pix[i*3+c] = float32(k + d)
		}
	}
	out, err := ChromaKey(img, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range deltas {
		if got := float64(out.Pix[i*4+3]); !near(got, want[i], 1e-5) {
			t.Errorf("distance %v: alpha %v, want %v", deltas[i], got, want[i])
		}
	}
	o.Softness = 0
	out, _ = ChromaKey(img, o)
	for i, d := range deltas {
		w := 0.0
		if d > 0.1+1e-6 {
			w = 1
		}
		if got := float64(out.Pix[i*4+3]); got != w {
			t.Errorf("hard key, distance %v: alpha %v, want %v", d, got, w)
		}
	}
}

func TestChromaKeyKeepsExistingAlpha(t *testing.T) {
	img := Constant(2, 1, 1, 0, 0, 0.5)
	out, err := ChromaKey(img, DefaultKeyOptions(color.NRGBA{0, 255, 0, 255}))
	if err != nil {
		t.Fatal(err)
	}
	if out.Pix[3] != 0.5 {
		t.Errorf("alpha %v, want the input's 0.5", out.Pix[3])
	}
}

func TestChromaKeyErrors(t *testing.T) {
	tests := []struct {
		img  *Float
		edit func(*KeyOptions)
		want string
	}{
		{NewFloat(0, 3, 3), nil, "chroma key: image is empty"},
		{Constant(1, 1, 0), func(o *KeyOptions) { o.Threshold = -1 }, "chroma key: key threshold -1: want a number in [0, 4]"},
		{Constant(1, 1, 0), func(o *KeyOptions) { o.Softness = math.Inf(1) }, "chroma key: key softness +Inf: want a number in [0, 4]"},
		{Constant(1, 1, 0), func(o *KeyOptions) { o.EdgeRadius = 99 }, "chroma key: key edge radius 99: want 0 to 16 pixels"},
	}
	for _, tt := range tests {
		o := DefaultKeyOptions(color.NRGBA{0, 255, 0, 255})
		if tt.edit != nil {
			tt.edit(&o)
		}
		if _, err := ChromaKey(tt.img, o); err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

func TestParseColor(t *testing.T) {
	tests := []struct {
		in   string
		want color.NRGBA
		err  string
	}{
		{"#00ff00", color.NRGBA{0, 255, 0, 255}, ""},
		{"FF00fF", color.NRGBA{255, 0, 255, 255}, ""},
		{"#12345", color.NRGBA{}, `colour "#12345": want 6 hex digits RRGGBB, optionally after #`},
		{"#12345g", color.NRGBA{}, `colour "#12345g": want 6 hex digits RRGGBB, optionally after #`},
	}
	for _, tt := range tests {
		got, err := ParseColor(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseColor(%q) error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseColor(%q) = %v, %v", tt.in, got, err)
		}
	}
}
