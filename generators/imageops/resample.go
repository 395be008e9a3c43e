package imageops

import (
	"fmt"
	"math"
)

// Filter is a resampling kernel for [Resize].
type Filter uint8

const (
	// Lanczos3 is the windowed sinc with three lobes: the sharpest of the
	// two, with slight ringing at hard edges. The default for hires passes.
	Lanczos3 Filter = iota
	// CatmullRom is the cubic with B=0, C=1/2: a little softer than
	// Lanczos3, with less ringing.
	CatmullRom
)

// String returns the filter's name.
func (k Filter) String() string {
	if k == CatmullRom {
		return "catmull-rom"
	}
	return "lanczos3"
}

// support is the kernel radius in (scaled) input pixels.
func (k Filter) support() float64 {
	if k == CatmullRom {
		return 2
	}
	return 3
}

// at evaluates the kernel at distance x.
func (k Filter) at(x float64) float64 {
	x = math.Abs(x)
	if k == CatmullRom {
		switch {
		case x < 1:
			return (1.5*x-2.5)*x*x + 1
		case x < 2:
			return ((-0.5*x+2.5)*x-4)*x + 2
		}
		return 0
	}
	if x >= 3 {
		return 0
	}
	return sinc(x) * sinc(x/3)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	x *= math.Pi
	return math.Sin(x) / x
}

// taps are, for every output sample along one axis, the input indices it
// reads (already mapped through the edge mode) and their normalised weights.
type taps struct {
	start []int // start[o] indexes idx/weight
	idx   []int
	wt    []float64
}

// makeTaps precomputes the filter taps for resampling an axis of length in
// to length out. Output sample o sits at input coordinate (o+0.5)·in/out-0.5,
// the usual pixel-centre alignment; when shrinking, the kernel is widened
// by the scale so it also low-passes.
func makeTaps(in, out int, k Filter, e Edge) taps {
	scale := float64(in) / float64(out)
	fscale := math.Max(1, scale)
	support := k.support() * fscale
	t := taps{start: make([]int, out+1)}
	for o := 0; o < out; o++ {
		t.start[o] = len(t.idx)
		centre := (float64(o)+0.5)*scale - 0.5
		lo := int(math.Ceil(centre - support))
		hi := int(math.Floor(centre + support))
		first := len(t.wt)
		sum := 0.0
		for j := lo; j <= hi; j++ {
			w := k.at((float64(j) - centre) / fscale)
			if w == 0 {
				continue
			}
			t.idx = append(t.idx, e.index(j, in))
			t.wt = append(t.wt, w)
			sum += w
		}
		for i := first; i < len(t.wt); i++ {
			t.wt[i] /= sum
		}
	}
	t.start[out] = len(t.idx)
	return t
}

// Resize resamples f to w×h with the given filter, reading beyond the
// borders as e says (Wrap keeps a tileable texture tileable at its new
// size). Images with alpha are filtered premultiplied, so transparent
// pixels do not bleed their colour into opaque ones. Results are clamped to
// [0,1] (Lanczos rings slightly past hard edges). Resizing to the same size
// returns a copy.
func Resize(f *Float, w, h int, k Filter, e Edges) (*Float, error) {
	if f.Empty() {
		return nil, fmt.Errorf("resize to %dx%d: source image is empty", w, h)
	}
	if w <= 0 || h <= 0 {
		return nil, fmt.Errorf("resize %dx%d to %dx%d: target size must be positive", f.W, f.H, w, h)
	}
	if w == f.W && h == f.H {
		return f.Clone(), nil
	}
	src := f
	if f.hasAlpha() {
		src = premultiply(f)
	}
	c := f.C
	// Horizontal pass: f.W → w, rows unchanged.
	tx := makeTaps(f.W, w, k, e.X)
	mid := NewFloat(w, f.H, c)
	parallel(f.H, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			row := src.Pix[y*f.W*c : (y+1)*f.W*c]
			out := mid.Pix[y*w*c : (y+1)*w*c]
			for x := 0; x < w; x++ {
				var acc [4]float64
				for i := tx.start[x]; i < tx.start[x+1]; i++ {
					p := row[tx.idx[i]*c : tx.idx[i]*c+c]
					wt := tx.wt[i]
					for ch := range p {
						acc[ch] += wt * float64(p[ch])
					}
				}
				for ch := 0; ch < c; ch++ {
					out[x*c+ch] = float32(acc[ch])
				}
			}
		}
	})
	// Vertical pass: f.H → h.
	ty := makeTaps(f.H, h, k, e.Y)
	dst := NewFloat(w, h, c)
	rowLen := w * c
	parallel(h, func(lo, hi int) {
		acc := make([]float64, rowLen)
		for y := lo; y < hi; y++ {
			clear(acc)
			for i := ty.start[y]; i < ty.start[y+1]; i++ {
				row := mid.Pix[ty.idx[i]*rowLen : (ty.idx[i]+1)*rowLen]
				wt := ty.wt[i]
				for j, v := range row {
					acc[j] += wt * float64(v)
				}
			}
			out := dst.Pix[y*rowLen : (y+1)*rowLen]
			for j, v := range acc {
				out[j] = float32(clamp01(v))
			}
		}
	})
	if f.hasAlpha() {
		unpremultiply(dst)
	}
	return dst, nil
}

// premultiply returns a copy of f (with alpha) with colour channels
// multiplied by alpha.
func premultiply(f *Float) *Float {
	g := f.Clone()
	for i := 0; i < len(g.Pix); i += g.C {
		a := g.Pix[i+g.C-1]
		for ch := 0; ch < g.C-1; ch++ {
			g.Pix[i+ch] *= a
		}
	}
	return g
}

// unpremultiply divides colour channels by alpha in place; fully
// transparent pixels get colour 0.
func unpremultiply(f *Float) {
	for i := 0; i < len(f.Pix); i += f.C {
		a := f.Pix[i+f.C-1]
		for ch := 0; ch < f.C-1; ch++ {
			if a > 0 {
				f.Pix[i+ch] = float32(clamp01(float64(f.Pix[i+ch] / a)))
			} else {
				f.Pix[i+ch] = 0
			}
		}
	}
}

// DownscaleNearest shrinks f by an integer factor for pixel art: each
// output pixel is the input pixel at the centre of its factor×factor block
// (pixel (factor/2, factor/2) of the block), so colours are never mixed and
// a palette stays a palette. Sizes not divisible by factor drop the
// incomplete last blocks.
func DownscaleNearest(f *Float, factor int) (*Float, error) {
	if f.Empty() {
		return nil, fmt.Errorf("downscale by %d: source image is empty", factor)
	}
	if factor < 1 {
		return nil, fmt.Errorf("downscale by %d: the factor must be a positive integer", factor)
	}
	w, h := f.W/factor, f.H/factor
	if w == 0 || h == 0 {
		return nil, fmt.Errorf("downscale %dx%d by %d: the result would be empty; use a factor of at most %d", f.W, f.H, factor, min(f.W, f.H))
	}
	g := NewFloat(w, h, f.C)
	off := factor / 2
	for y := 0; y < h; y++ {
		sy := y*factor + off
		for x := 0; x < w; x++ {
			sx := x*factor + off
			copy(g.Pix[(y*w+x)*f.C:(y*w+x+1)*f.C], f.Pix[(sy*f.W+sx)*f.C:])
		}
	}
	return g, nil
}

// UpscaleNearest enlarges f by an integer factor, each pixel becoming a
// factor×factor block: how pixel art is previewed.
func UpscaleNearest(f *Float, factor int) (*Float, error) {
	if factor < 1 {
		return nil, fmt.Errorf("upscale by %d: the factor must be a positive integer", factor)
	}
	g := NewFloat(f.W*factor, f.H*factor, f.C)
	for y := 0; y < g.H; y++ {
		srow := f.Pix[(y/factor)*f.W*f.C:]
		drow := g.Pix[y*g.W*g.C:]
		for x := 0; x < g.W; x++ {
			copy(drow[x*g.C:(x+1)*g.C], srow[(x/factor)*f.C:])
		}
	}
	return g, nil
}
