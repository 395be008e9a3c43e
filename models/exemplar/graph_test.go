package exemplar

import (
	"context"
	"image"
	"image/color"
	"math"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/models"
)

// elsReference computes the ELS denoiser directly from its definition:
// for each pixel, the softmax over the bank of −‖x_patch − sqrt(ᾱ)·e‖² /
// (2(1−ᾱ)) (the full squared distance, ‖x‖² included), then the weighted
// mean of the bank's centre pixels. Patches read x with wrap-around on
// tiled axes and reflection on the others. vecs are the bank's raw patch
// vectors (layout [c][ky][kx]).
func elsReference(x []float32, w, h, p int, tile Tiling, vecs [][]float64, centres [][3]float64, ab float64) []float64 {
	r := p / 2
	idx := func(i, n int, wrap bool) int {
		if wrap {
			return wrapInt(i, n)
		}
		if i < 0 {
			return -i
		}
		if i >= n {
			return 2*(n-1) - i
		}
		return i
	}
	out := make([]float64, 3*w*h)
	patch := make([]float64, 3*p*p)
	logit := make([]float64, len(vecs))
	sa := math.Sqrt(ab)
	for y := 0; y < h; y++ {
		for xx := 0; xx < w; xx++ {
			k := 0
			for c := 0; c < 3; c++ {
				for ky := -r; ky <= r; ky++ {
					for kx := -r; kx <= r; kx++ {
						yy, xi := idx(y+ky, h, tile.Y), idx(xx+kx, w, tile.X)
						patch[k] = float64(x[(c*h+yy)*w+xi])
						k++
					}
				}
			}
			best := math.Inf(-1)
			for n, e := range vecs {
				var d float64
				for j, v := range e {
					q := patch[j] - sa*v
					d += q * q
				}
				logit[n] = -d / (2 * (1 - ab))
				best = math.Max(best, logit[n])
			}
			var z float64
			var acc [3]float64
			for n := range vecs {
				wt := math.Exp(logit[n] - best)
				z += wt
				for c := 0; c < 3; c++ {
					acc[c] += wt * centres[n][c]
				}
			}
			for c := 0; c < 3; c++ {
				out[(c*h+y)*w+xx] = acc[c] / z
			}
		}
	}
	return out
}

// testImage is a small deterministic colourful image.
func testImage(w, h int, seed uint64) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	g := newRNG(seed)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := 0.5 + 0.4*math.Sin(float64(x)*0.7+float64(y)*0.3)
			img.SetNRGBA(x, y, color.NRGBA{uint8(255 * v), uint8(g.intn(256)), uint8(255 * (1 - v)), 255})
		}
	}
	return img
}

// TestGraphMatchesELS is the known-answer test: the ONNX graph, run by
// ONNX Runtime, equals the ELS formula computed directly in Go, for each
// padding mode, with the identity projection (no dimensionality
// reduction) and a bank small enough to list.
func TestGraphMatchesELS(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	src := newSource(testImage(12, 10, 1), true)
	const w, h, p, n = 9, 7, 3, 40
	x := make([]float32, 3*w*h)
	g := newRNG(7)
	for i := range x {
		x[i] = float32(g.rangef(-1.2, 1.2))
	}
	bk, err := buildBank(ctx, []source{src}, p, 1, n, 3*p*p, 3)
	if err != nil {
		t.Fatal(err)
	}
	if bk.d != 3*p*p {
		t.Fatalf("bank dims %d, want the identity projection's %d", bk.d, 3*p*p)
	}
	// The bank's patch vectors, recovered from the identity projection.
	vecs := make([][]float64, n)
	centres := make([][3]float64, n)
	for i := range vecs {
		vecs[i] = make([]float64, bk.d)
		for k := range vecs[i] {
			vecs[i][k] = float64(bk.feat[k*n+i])
		}
		for c := 0; c < 3; c++ {
			centres[i][c] = float64(bk.centres[3*i+c])
		}
		// The centre of the patch vector is the centre pixel.
		for c := 0; c < 3; c++ {
			if got := vecs[i][c*p*p+p*p/2]; got != centres[i][c] {
				t.Fatalf("patch %d channel %d: centre %v, patch vector centre %v", i, c, centres[i][c], got)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		tile  Tiling
		ab    float64
		chunk int
	}{
		{"wrap-xy", Tiling{X: true, Y: true}, 0.6, 0},
		{"reflect", Tiling{}, 0.3, 0},
		{"wrap-x-chunked", Tiling{X: true}, 0.8, 16},
		{"wrap-y-low-noise", Tiling{Y: true}, 0.97, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := elsReference(x, w, h, p, tc.tile, vecs, centres, tc.ab)
			got := runSpec(t, rt, graphSpec{h: h, w: w, tile: tc.tile, bank: bk, chunk: tc.chunk}, x, tc.ab)
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
			}
			if worst > 2e-4 {
				t.Errorf("graph differs from the ELS formula by up to %g", worst)
			}
		})
	}
}

// runSpec builds the graph for spec, saves it in a temporary folder and
// runs it on x through ONNX Runtime.
func runSpec(t *testing.T, rt *models.Runtime, spec graphSpec, x []float32, ab float64) []float32 {
	t.Helper()
	g, err := buildGraph(spec)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "els.onnx")
	if err := g.Save(path); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(x))
	if err := runDenoiser(context.Background(), rt, path, out, x, spec.w, spec.h, ab); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGraphMatchesELSCoarse checks a coarse level against the formula:
// the image is average-pooled by d, the noise variance the weights assume
// is (1-ᾱ)/d², and each coarse pixel's output is the weighted mean of the
// bank's full-resolution centre blocks.
func TestGraphMatchesELSCoarse(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	src := newSource(testImage(16, 14, 2), true)
	const w, h, p, n, d = 10, 8, 3, 30, 2
	lw, lh := w/d, h/d
	x := make([]float32, 3*w*h)
	g := newRNG(9)
	for i := range x {
		x[i] = float32(g.rangef(-1.2, 1.2))
	}
	bk, err := buildBank(ctx, []source{src}, p, d, n, 3*p*p, 4)
	if err != nil {
		t.Fatal(err)
	}
	pooled := make([]float32, 3*lw*lh)
	for c := 0; c < 3; c++ {
		for y := 0; y < lh; y++ {
			for xx := 0; xx < lw; xx++ {
				var s float32
				for i := 0; i < d; i++ {
					for j := 0; j < d; j++ {
						s += x[(c*h+y*d+i)*w+xx*d+j]
					}
				}
				pooled[(c*lh+y)*lw+xx] = s / (d * d)
			}
		}
	}
	vecs := make([][]float64, n)
	for i := range vecs {
		vecs[i] = make([]float64, bk.d)
		for k := range vecs[i] {
			vecs[i][k] = float64(bk.feat[k*n+i])
		}
	}
	// Each patch's pooled centre is the mean of its full-resolution block.
	for k := range vecs {
		for c := 0; c < 3; c++ {
			var m float64
			for q := 0; q < d*d; q++ {
				m += float64(bk.centres[k*3*d*d+c*d*d+q])
			}
			if got := vecs[k][c*p*p+p*p/2]; math.Abs(got-m/(d*d)) > 1e-6 {
				t.Fatalf("patch %d channel %d: pooled centre %g, block mean %g", k, c, got, m/(d*d))
			}
		}
	}
	for _, tile := range []Tiling{{X: true, Y: true}, {}} {
		const ab = 0.7
		r := p / 2
		want := make([]float64, 3*w*h)
		for y := 0; y < lh; y++ {
			for xx := 0; xx < lw; xx++ {
				logit := make([]float64, n)
				best := math.Inf(-1)
				for k, e := range vecs {
					var dist float64
					j := 0
					for c := 0; c < 3; c++ {
						for ky := -r; ky <= r; ky++ {
							for kx := -r; kx <= r; kx++ {
								yy, xi := reflectOrWrap(y+ky, lh, tile.Y), reflectOrWrap(xx+kx, lw, tile.X)
								q := float64(pooled[(c*lh+yy)*lw+xi]) - math.Sqrt(ab)*e[j]
								dist += q * q
								j++
							}
						}
					}
					logit[k] = -dist / (2 * (1 - ab) / (d * d))
					best = math.Max(best, logit[k])
				}
				var z float64
				acc := make([]float64, 3*d*d)
				for k := range vecs {
					wt := math.Exp(logit[k] - best)
					z += wt
					for q := range acc {
						acc[q] += wt * float64(bk.centres[k*3*d*d+q])
					}
				}
				for c := 0; c < 3; c++ {
					for i := 0; i < d; i++ {
						for j := 0; j < d; j++ {
							want[(c*h+y*d+i)*w+xx*d+j] = acc[(c*d+i)*d+j] / z
						}
					}
				}
			}
		}
		got := runSpec(t, rt, graphSpec{h: h, w: w, tile: tile, bank: bk, chunk: 7}, x, ab)
		worst := 0.0
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i])-want[i]))
		}
		if worst > 2e-4 {
			t.Errorf("tile %v: coarse graph differs from the formula by up to %g", tile, worst)
		}
	}
}

// reflectOrWrap maps coordinate i on an axis of length n as the graph's
// padding does.
func reflectOrWrap(i, n int, wrap bool) int {
	if wrap {
		return wrapInt(i, n)
	}
	if i < 0 {
		return -i
	}
	if i >= n {
		return 2*(n-1) - i
	}
	return i
}
