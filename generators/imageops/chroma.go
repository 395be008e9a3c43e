package imageops

import (
	"fmt"
	"image/color"
	"math"
	"strings"
)

// KeyOptions controls [ChromaKey]. Start from [DefaultKeyOptions].
//
// Distances are measured between colours in a weighted YCbCr space (BT.601
// full range, on the encoded values): the full chroma difference (Cb, Cr)
// plus the luma difference times LumaWeight. Chroma carries the key
// (saturated green or magenta is far from skin, wood or steel in chroma),
// while a reduced luma term lets slightly shaded or lit parts of the
// backdrop still key out and keeps gray keys (white, black) usable. The
// space is a linear transform of RGB, so a pixel that is a mix
// a·fg + (1-a)·key lies at exactly a times fg's distance from the key; the
// edge refinement relies on that.
type KeyOptions struct {
	// Key is the backdrop colour the generator painted behind the subject.
	Key color.NRGBA
	// Threshold is the distance at or below which a pixel is background
	// (alpha 0). It absorbs noise and shading in the backdrop.
	Threshold float64
	// Softness is the distance beyond Threshold over which alpha ramps
	// from 0 to 1; 0 gives a hard key.
	Softness float64
	// LumaWeight scales the luma difference in the distance.
	LumaWeight float64
	// EdgeRadius is the width, in pixels, of the band along the background
	// in which alpha is refined by unmixing: each pixel there is explained
	// as a mix of the key and the purest foreground colour within this
	// radius, which gives anti-aliased edges their true coverage as alpha.
	// 0 turns refinement off (ramp alpha only).
	EdgeRadius int
}

// DefaultKeyOptions returns the options kiln uses for a key colour when the
// manifest sets no thresholds: threshold 0.1, softness 0.2, luma weight 0.5,
// edge radius 4.
func DefaultKeyOptions(key color.NRGBA) KeyOptions {
	return KeyOptions{Key: key, Threshold: 0.1, Softness: 0.2, LumaWeight: 0.5, EdgeRadius: 4}
}

func (o *KeyOptions) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"threshold", o.Threshold}, {"softness", o.Softness}, {"luma weight", o.LumaWeight}} {
		if !finite(p.v) || p.v < 0 || p.v > 4 {
			return fmt.Errorf("key %s %v: want a number in [0, 4]", p.name, p.v)
		}
	}
	if o.EdgeRadius < 0 || o.EdgeRadius > 16 {
		return fmt.Errorf("key edge radius %d: want 0 to 16 pixels", o.EdgeRadius)
	}
	return nil
}

// purityWeight trades line fit against purity when choosing the foreground
// colour an edge pixel unmixes to: a perfectly collinear but less pure
// neighbour loses to the purest one, a purer neighbour in a different
// direction loses to a well-aligned one.
const purityWeight = 0.05

// keySpace maps RGB into the weighted YCbCr space distances are taken in.
type keySpace struct{ luma float64 }

func (k keySpace) vec(r, g, b float64) [3]float64 {
	return [3]float64{
		k.luma * (0.299*r + 0.587*g + 0.114*b),
		-0.168736*r - 0.331264*g + 0.5*b,
		0.5*r - 0.418688*g - 0.081312*b,
	}
}

func sub3(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func dot3(a, b [3]float64) float64    { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }

// ChromaKey removes a flat key-colour backdrop: it returns an RGBA image
// whose alpha is 0 on the backdrop, 1 on the subject and fractional on
// soft edges, with the key colour's contribution removed from the colour of
// every partly transparent pixel (colour decontamination), so the sprite
// shows no halo or fringe over any background.
//
// Alpha is first a ramp on the distance d to the key (see [KeyOptions]):
// 0 for d ≤ Threshold, rising linearly to 1 at Threshold+Softness. In the
// EdgeRadius band along the backdrop it is then refined: for each
// neighbour f that is not backdrop, the pixel c is projected onto the line
// from the key K to f, a = <c-K, f-K>/|f-K|²; candidates with 0 < a < 1
// whose residual |(c-K) - a(f-K)| is within Threshold, and which lie
// more than Threshold closer to the key than f, are mixes of K and f. The
// candidate whose line fits best wins (smallest angle between c-K and f-K,
// plus 0.05·a so that among equally aligned neighbours the purest wins). (So a pixel that is merely a slightly
// different shade of its neighbour is left opaque; an edge with coverage
// so high that the key adds less than Threshold keeps alpha 1 and that
// much key colour.) Decontamination then unmixes
// c = a·fg + (1-a)·K into fg = (c - (1-a)·K)/a, clamped to [0,1]. Fully
// transparent pixels get colour 0. Finally, on the band and on every
// partly transparent pixel, spill is suppressed (see spillLimiter): soft
// edges of diffusion output often mix three colours (key, outline, fill),
// and whatever key colour the two-colour unmix could not explain is
// limited away there. An existing alpha channel multiplies the result.
//
// Keying is a colour operation: subject colours within Threshold+Softness
// of the key become partly transparent too, so generate on a key colour far
// from the subject's (green for warm subjects, magenta for foliage).
func ChromaKey(f *Float, o KeyOptions) (*Float, error) {
	if f.Empty() {
		return nil, fmt.Errorf("chroma key: image is empty")
	}
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("chroma key: %w", err)
	}
	src := f
	if f.C != 4 {
		src = Channels(f, 4)
	}
	w, h := src.W, src.H
	ks := keySpace{o.LumaWeight}
	kr, kg, kb := float64(o.Key.R)/255, float64(o.Key.G)/255, float64(o.Key.B)/255
	kv := ks.vec(kr, kg, kb)
	vecAt := func(i int) [3]float64 {
		p := src.Pix[i*4:]
		return ks.vec(float64(p[0]), float64(p[1]), float64(p[2]))
	}
	ramp := func(d float64) float64 {
		if d <= o.Threshold {
			return 0
		}
		if o.Softness == 0 {
			return 1
		}
		return math.Min(1, (d-o.Threshold)/o.Softness)
	}

	// Pass 1: ramp alpha and the backdrop mask.
	alpha := make([]float32, w*h)
	bg := NewFloat(w, h, 1)
	parallel(h, func(lo, hi int) {
		for i := lo * w; i < hi*w; i++ {
			v := sub3(vecAt(i), kv)
			a := ramp(math.Sqrt(dot3(v, v)))
			alpha[i] = float32(a)
			if a == 0 {
				bg.Pix[i] = 1
			}
		}
	})

	// Pass 2: refine alpha in the band along the backdrop.
	band := make([]bool, w*h)
	if r := o.EdgeRadius; r > 0 {
		near := BoxBlur(bg, r, r, Edges{})
		minFrac := float32(0.5 / float64((2*r+1)*(2*r+1)))
		for i := range band {
			band[i] = bg.Pix[i] == 0 && near.Pix[i] >= minFrac
		}
		refined := make([]float32, len(alpha))
		copy(refined, alpha)
		tol := math.Max(o.Threshold, 1e-3)
		parallel(h, func(lo, hi int) {
			for y := lo; y < hi; y++ {
				for x := 0; x < w; x++ {
					i := y*w + x
					if !band[i] {
						continue
					}
					p := sub3(vecAt(i), kv)
					pn := math.Sqrt(dot3(p, p))
					bestA, bestCost := 1.0, math.Inf(1)
					for qy := max(0, y-r); qy <= min(h-1, y+r); qy++ {
						for qx := max(0, x-r); qx <= min(w-1, x+r); qx++ {
							j := qy*w + qx
							if j == i || bg.Pix[j] == 1 {
								continue
							}
							u := sub3(vecAt(j), kv)
							uu := dot3(u, u)
							if uu < 1e-12 {
								continue
							}
							a := dot3(p, u) / uu
							if !(a > 0 && a < 1) {
								continue
							}
							// Accept a mix only if it is one: the pixel lies on
							// the key→f line (residual within the noise) and
							// measurably closer to the key than f is.
							res := [3]float64{p[0] - a*u[0], p[1] - a*u[1], p[2] - a*u[2]}
							rn := math.Sqrt(dot3(res, res))
							if rn > tol || (1-a)*math.Sqrt(uu) <= tol {
								continue
							}
							// Best fit: smallest angle between c-K and f-K;
							// among equally good lines, the purest f.
							cost := rn/pn + purityWeight*a
							if cost < bestCost {
								bestA, bestCost = a, cost
							}
						}
					}
					if bestA < 1 {
						refined[i] = float32(bestA)
					}
				}
			}
		})
		alpha = refined
	}

	// Pass 3: decontaminate, suppress spill and assemble.
	out := NewFloat(w, h, 4)
	key := [3]float64{kr, kg, kb}
	spill := newSpill(key)
	parallel(h, func(lo, hi int) {
		for i := lo * w; i < hi*w; i++ {
			a := float64(alpha[i])
			p := src.Pix[i*4 : i*4+4]
			q := out.Pix[i*4 : i*4+4]
			if a <= 0 {
				q[0], q[1], q[2], q[3] = 0, 0, 0, 0
				continue
			}
			var c [3]float64
			for k := range c {
				c[k] = float64(p[k])
				if a < 1 {
					c[k] = clamp01((c[k] - (1-a)*key[k]) / a)
				}
			}
			if band[i] || a < 1 {
				spill.suppress(&c)
			}
			q[0], q[1], q[2] = float32(c[0]), float32(c[1]), float32(c[2])
			q[3] = float32(a) * p[3]
		}
	})
	return out, nil
}

// spillLimiter removes key-coloured spill the way a green-screen limiter
// does (G ≤ max(R, B)), generalised to any key: the key's dominant
// channels (at least half its largest channel) may not exceed the largest
// of its other channels; any excess m = min(dominant) - max(other) > 0 is
// subtracted from every dominant channel. Subject colours that merely lean
// toward the key (yellow and skin on green, red on magenta) pass
// unchanged, because one of their other channels is higher. A gray key
// has no other channels and no spill suppression.
type spillLimiter struct {
	dominant [3]bool
	active   bool
}

func newSpill(key [3]float64) spillLimiter {
	top := math.Max(key[0], math.Max(key[1], key[2]))
	var s spillLimiter
	if top <= 0 {
		return s
	}
	n := 0
	for k, v := range key {
		if v >= 0.5*top {
			s.dominant[k] = true
			n++
		}
	}
	s.active = n < 3
	return s
}

func (s spillLimiter) suppress(c *[3]float64) {
	if !s.active {
		return
	}
	lowDom, highOther := math.Inf(1), math.Inf(-1)
	for k, v := range c {
		if s.dominant[k] {
			lowDom = math.Min(lowDom, v)
		} else {
			highOther = math.Max(highOther, v)
		}
	}
	if m := lowDom - highOther; m > 0 {
		for k := range c {
			if s.dominant[k] {
				c[k] -= m
			}
		}
	}
}

// ParseColor parses an opaque colour written "#RRGGBB" or "RRGGBB" (either
// case), the way manifests and .hex palettes write colours.
func ParseColor(s string) (color.NRGBA, error) {
	h := strings.TrimPrefix(s, "#")
	if len(h) != 6 {
		return color.NRGBA{}, fmt.Errorf("colour %q: want 6 hex digits RRGGBB, optionally after #", s)
	}
	var v [3]uint8
	for i := range v {
		hi, ok1 := hexDigit(h[2*i])
		lo, ok2 := hexDigit(h[2*i+1])
		if !ok1 || !ok2 {
			return color.NRGBA{}, fmt.Errorf("colour %q: want 6 hex digits RRGGBB, optionally after #", s)
		}
		v[i] = hi<<4 | lo
	}
	return color.NRGBA{v[0], v[1], v[2], 255}, nil
}

func hexDigit(c byte) (uint8, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
