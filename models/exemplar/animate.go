package exemplar

import (
	"fmt"
	"image"
	"math"
)

// Animation by motion, not by noise.
//
// The ELS machine is not smooth in its noise: the softmax picks between
// exemplar patches, so two nearby noises give two images that differ
// wherever a different patch won. Frames made from a circle of noises
// (FlipbookNoise) strobe: fire frames 14 to 47/255 apart at consistency
// 0.5 (mean absolute RGB difference; 8 frames, 96×96). So a
// flipbook frame is instead the one image the asset's noise gives,
// displaced by a smooth flow that turns around a closed loop: pixel x of
// frame k reads the image at
//
//	x + A·R(2πk/frames)·U(x)
//
// where U is a smooth, tileable random vector field (unit RMS) and R a
// rotation, so every point circles at its own speed and radius, the loop
// closes exactly, and every pair of consecutive frames is alike (the
// displacement between them has the same size; only its direction turns).
// A is motionPixels·Motion pixels, or less on a texture with much
// contrast (see motionTarget). Which point of the circle is frame 0 is
// free: the loop starts after its gentlest step, so that the last frame
// leads into the first no harder than any other pair.
const (
	// motionPixels is the circling radius at Motion 1, in pixels.
	motionPixels = 6
	// motionCells is how many cells of the flow's noise span the image.
	motionCells = 3
)

// motionTarget is the mean absolute difference between consecutive
// frames (0..255 per RGB channel) that Motion 1 aims at: a texture with much
// contrast (lava's cracks) moves fewer pixels than a soft one, so that
// every flipbook changes about as much from frame to frame.
const motionTarget = 16

// Animate returns frame k of a looping flipbook of o.Frames frames made
// from img, the image this model generated from the asset's noise (see
// the comment above): every frame is img displaced by a smooth flow that
// circles once per loop, wrapping around on the axes the model tiles.
// The circles' radius is motionPixels·Motion pixels, less where that
// would make consecutive frames differ by more than motionTarget·Motion
// (measured on frames 0 and 1). Motion 0 returns img unchanged; seed
// chooses the flow.
func (m *Model) Animate(img *image.NRGBA, o FlipbookOptions, k int, seed uint64) (*image.NRGBA, error) {
	switch {
	case o.Frames < 2 || o.Frames > 1024:
		return nil, fmt.Errorf("flipbook: %d frames out of range: want 2..1024", o.Frames)
	case k < 0 || k >= o.Frames:
		return nil, fmt.Errorf("flipbook: frame %d out of range: want 0..%d", k, o.Frames-1)
	case !(o.Motion >= 0 && o.Motion <= 1):
		return nil, fmt.Errorf("flipbook: motion %g out of range: want 0..1", o.Motion)
	case img == nil:
		return nil, fmt.Errorf("flipbook: no image")
	}
	if o.Motion == 0 || img.Rect.Empty() {
		return img, nil
	}
	amp := motionPixels * o.Motion
	var fixed []bool
	if m.objects != nil {
		// An object sways less, and about its own centre: the flow's
		// mean over the object is taken out, so the object stays put.
		amp *= objectMotion
		fixed = make([]bool, img.Rect.Dx()*img.Rect.Dy())
		key := m.objects[0].key
		for i := range fixed {
			p := img.PixOffset(img.Rect.Min.X+i%img.Rect.Dx(), img.Rect.Min.Y+i/img.Rect.Dx())
			fixed[i] = colourDist(img.Pix[p:p+3], key) > keyDistance
		}
	}
	fl := newFlow(img.Rect.Dx(), img.Rect.Dy(), seed, fixed)
	step := 2 * math.Pi / float64(o.Frames)
	if d := meanAbsDiff8(fl.apply(img, m.opts.Tile, amp, 0), fl.apply(img, m.opts.Tile, amp, step)); d > motionTarget*o.Motion {
		amp *= motionTarget * o.Motion / d
	}
	if o.Frames > loopSearchFrames {
		return fl.apply(img, m.opts.Tile, amp, step*float64(k)), nil
	}
	// Every frame is a point on the circle; which point comes first is
	// free. The loop starts after the gentlest step, so that the last
	// frame leads into the first no harder than any other pair.
	n := o.Frames
	warps := make([]*image.NRGBA, n)
	for j := range warps {
		warps[j] = fl.apply(img, m.opts.Tile, amp, step*float64(j))
	}
	gentlest, low := 0, math.Inf(1)
	for j := range warps {
		if d := meanAbsDiff8(warps[j], warps[(j+1)%n]); d < low {
			gentlest, low = j, d
		}
	}
	return warps[(k+gentlest+1)%n], nil
}

// loopSearchFrames bounds the loops whose start Animate chooses (it warps
// every frame to compare them); longer loops start at angle 0.
const loopSearchFrames = 64

// objectMotion scales the motion of an object exemplar's frames.
const objectMotion = 0.5

// flow is the vector field U of Animate, of unit RMS length.
type flow struct {
	w, h   int
	ux, uy []float64
}

// newFlow draws the field for a w×h image from seed. With a mask (one
// entry per pixel), the field's mean over the masked pixels is taken out.
func newFlow(w, h int, seed uint64, mask []bool) *flow {
	f := &flow{w: w, h: h, ux: make([]float64, w*h), uy: make([]float64, w*h)}
	for y := 0; y < h; y++ {
		v := (float64(y) + 0.5) / float64(h)
		for x := 0; x < w; x++ {
			u := (float64(x) + 0.5) / float64(w)
			f.ux[y*w+x] = fbm(u, v, motionCells, motionCells, 3, 0.5, seed^0x6d6f74696f6e)
			f.uy[y*w+x] = fbm(u, v, motionCells, motionCells, 3, 0.5, seed^0x6e6f69746f6d)
		}
	}
	if mask != nil {
		var mx, my float64
		cnt := 0
		for i, in := range mask {
			if in {
				mx, my, cnt = mx+f.ux[i], my+f.uy[i], cnt+1
			}
		}
		if cnt > 0 {
			mx, my = mx/float64(cnt), my/float64(cnt)
			for i := range f.ux {
				f.ux[i], f.uy[i] = f.ux[i]-mx, f.uy[i]-my
			}
		}
	}
	var ss float64
	for i := range f.ux {
		ss += f.ux[i]*f.ux[i] + f.uy[i]*f.uy[i]
	}
	k := 1 / math.Sqrt(max(ss/float64(w*h), 1e-12))
	for i := range f.ux {
		f.ux[i], f.uy[i] = k*f.ux[i], k*f.uy[i]
	}
	return f
}

// apply returns img displaced by amp·R(theta)·U: pixel x reads img at
// x + amp·R(theta)·U(x), bilinearly, wrapping on tiled axes and clamping
// on the others.
func (f *flow) apply(img *image.NRGBA, tile Tiling, amp, theta float64) *image.NRGBA {
	w, h := f.w, f.h
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	c, s := amp*math.Cos(theta), amp*math.Sin(theta)
	coord := func(v float64, n int, wrap bool) (int, int, float64) {
		fl := math.Floor(v)
		i0, i1 := int(fl), int(fl)+1
		if wrap {
			return wrapInt(i0, n), wrapInt(i1, n), v - fl
		}
		return min(max(i0, 0), n-1), min(max(i1, 0), n-1), v - fl
	}
	src := img.Pix
	at := func(x, y int) int { return img.PixOffset(img.Rect.Min.X+x, img.Rect.Min.Y+y) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			dx := c*f.ux[i] - s*f.uy[i]
			dy := s*f.ux[i] + c*f.uy[i]
			x0, x1, tx := coord(float64(x)+dx, w, tile.X)
			y0, y1, ty := coord(float64(y)+dy, h, tile.Y)
			p00, p10, p01, p11 := at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1)
			o := out.Pix[y*out.Stride+4*x:]
			for ch := 0; ch < 4; ch++ {
				top := float64(src[p00+ch])*(1-tx) + float64(src[p10+ch])*tx
				bot := float64(src[p01+ch])*(1-tx) + float64(src[p11+ch])*tx
				o[ch] = uint8(math.Round(top*(1-ty) + bot*ty))
			}
		}
	}
	return out
}

// meanAbsDiff8 is the mean absolute difference of the RGB values of two
// images of one size.
func meanAbsDiff8(a, b *image.NRGBA) float64 {
	var sum float64
	n := 0
	for i := 0; i+3 < len(a.Pix) && i+3 < len(b.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			sum += math.Abs(float64(a.Pix[i+c]) - float64(b.Pix[i+c]))
		}
		n += 3
	}
	return sum / float64(max(n, 1))
}
