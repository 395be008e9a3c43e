package exemplar

import (
	"fmt"
	"math"

	"github.com/kiln-dev/kiln/models/sampler"
)

// FlipbookFrame returns frame k of FlipbookNoise(seed, channels, height,
// width, o), the same values, while holding four frames' worth of noise
// instead of every frame's: what one generation of a flipbook needs.
func FlipbookFrame(seed uint64, channels, height, width int, o FlipbookOptions, k int) ([]float32, error) {
	switch {
	case o.Frames < 2 || o.Frames > 1024:
		return nil, fmt.Errorf("flipbook: %d frames out of range: want 2..1024", o.Frames)
	case k < 0 || k >= o.Frames:
		return nil, fmt.Errorf("flipbook: frame %d out of range: want 0..%d", k, o.Frames-1)
	case channels < 1 || height < 1 || width < 1 || channels*height*width > 1<<28:
		return nil, fmt.Errorf("flipbook: bad frame shape %dx%dx%d", channels, height, width)
	case !(o.Motion >= 0 && o.Motion <= 1):
		return nil, fmt.Errorf("flipbook: motion %g out of range: want 0..1", o.Motion)
	case o.DriftX < -64 || o.DriftX > 64 || o.DriftY < -64 || o.DriftY > 64:
		return nil, fmt.Errorf("flipbook: drift %d,%d out of range: want -64..64 image sizes per loop", o.DriftX, o.DriftY)
	}
	// The same draws and arithmetic as FlipbookNoise, for frame k only.
	per := channels * height * width
	g := sampler.NewGenerator(seed)
	a, b, c := make([]float32, per), make([]float32, per), make([]float32, per)
	g.FillNormal(a)
	g.FillNormal(b)
	g.FillNormal(c)
	phi := o.Motion * math.Pi / 2
	ca, sp := float32(math.Cos(phi)), math.Sin(phi)
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
	return n, nil
}
