package exemplar

import (
	"fmt"
	"math"

	"github.com/kiln-dev/kiln/generators/sampler"
)

// FlipbookOptions shapes the noise of a looping flipbook animation.
type FlipbookOptions struct {
	// Frames is the number of frames in the loop (2..1024).
	Frames int
	// Motion in [0, 1] is how much the frames move: 0 gives the same
	// frame every time. For FlipbookNoise it is how far the frames'
	// noises wander from a shared base noise (1: a full circle through
	// independent noises); for Model.Animate, the radius of the flow's
	// circles (motionPixels·Motion pixels). At 0.5 (consistency 0.5)
	// animated frames stay coherent while fire and water visibly move.
	Motion float64
	// DriftX and DriftY are how many whole image widths (heights) the
	// noise scrolls during one loop; with a model that tiles along that
	// axis the pattern then flows (water, lava) and the loop still closes.
	// 0 means no drift. Drift needs the axis to tile.
	DriftX, DriftY int
}

// FlipbookNoise returns the initial noise of each frame of a looping
// animation: frames × (channels·height·width) unit-normal values in the
// sampler's NCHW layout, to be scaled by the scheduler's initial sigma as
// the sampler does with the noise it draws itself.
//
// Frame k is
//
//	n_k = cos(φ)·a + sin(φ)·(cos(θ_k)·b + sin(θ_k)·c),  θ_k = 2πk/frames
//
// with a, b, c independent standard normal fields drawn from seed (in
// that order, with sampler.NewGenerator) and φ = Motion·π/2. Every n_k is
// again standard normal, consecutive frames are close, and the loop closes
// (θ_frames = θ_0); drift then rolls frame k by k/frames of the drift.
// With a deterministic scheduler (euler, ddim at eta 0) each frame's image
// depends only on its noise, so the frames change smoothly; stochastic
// schedulers should get the same seed for every frame.
func FlipbookNoise(seed uint64, channels, height, width int, o FlipbookOptions) ([][]float32, error) {
	switch {
	case o.Frames < 2 || o.Frames > 1024:
		return nil, fmt.Errorf("flipbook: %d frames out of range: want 2..1024", o.Frames)
	case channels < 1 || height < 1 || width < 1 || channels*height*width > 1<<28:
		return nil, fmt.Errorf("flipbook: bad frame shape %dx%dx%d", channels, height, width)
	case !(o.Motion >= 0 && o.Motion <= 1):
		return nil, fmt.Errorf("flipbook: motion %g out of range: want 0..1", o.Motion)
	case o.DriftX < -64 || o.DriftX > 64 || o.DriftY < -64 || o.DriftY > 64:
		return nil, fmt.Errorf("flipbook: drift %d,%d out of range: want -64..64 image sizes per loop", o.DriftX, o.DriftY)
	}
	per := channels * height * width
	g := sampler.NewGenerator(seed)
	a, b, c := make([]float32, per), make([]float32, per), make([]float32, per)
	g.FillNormal(a)
	g.FillNormal(b)
	g.FillNormal(c)
	phi := o.Motion * math.Pi / 2
	ca, sp := float32(math.Cos(phi)), math.Sin(phi)
	out := make([][]float32, o.Frames)
	for k := range out {
		th := 2 * math.Pi * float64(k) / float64(o.Frames)
		cb, cc := float32(sp*math.Cos(th)), float32(sp*math.Sin(th))
		n := make([]float32, per)
		for i := range n {
			n[i] = ca*a[i] + cb*b[i] + cc*c[i]
		}
		dx := int(math.Round(float64(k) * float64(o.DriftX*width) / float64(o.Frames)))
		dy := int(math.Round(float64(k) * float64(o.DriftY*height) / float64(o.Frames)))
		if dx%width != 0 || dy%height != 0 {
			n = roll(n, channels, height, width, dx, dy)
		}
		out[k] = n
	}
	return out, nil
}

// roll shifts every channel of an NCHW image by (dx, dy) pixels with
// wrap-around: out[y][x] = in[y-dy][x-dx].
func roll(in []float32, channels, height, width, dx, dy int) []float32 {
	out := make([]float32, len(in))
	for c := 0; c < channels; c++ {
		plane := in[c*height*width : (c+1)*height*width]
		dst := out[c*height*width : (c+1)*height*width]
		for y := 0; y < height; y++ {
			sy := wrapInt(y-dy, height)
			for x := 0; x < width; x++ {
				dst[y*width+x] = plane[sy*width+wrapInt(x-dx, width)]
			}
		}
	}
	return out
}
