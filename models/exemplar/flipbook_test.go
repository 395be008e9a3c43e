package exemplar

import (
	"context"
	"image"
	"math"
	"testing"

	"github.com/kiln-dev/kiln/models/sampler"
)

func corr(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestFlipbookNoise(t *testing.T) {
	const c, h, w = 3, 32, 32
	still := make([]float32, c*h*w)
	sampler.NewGenerator(11).FillNormal(still)
	frames, err := FlipbookNoise(11, c, h, w, FlipbookOptions{Frames: 4, Motion: 0})
	if err != nil {
		t.Fatal(err)
	}
	for k, f := range frames {
		if !sameFloats(f, still) {
			t.Fatalf("motion 0: frame %d differs from the still image's noise", k)
		}
	}
	for _, tc := range []struct {
		frames int
		motion float64
	}{{8, 0.5}, {12, 1}, {16, 0.3}} {
		fr, err := FlipbookNoise(11, c, h, w, FlipbookOptions{Frames: tc.frames, Motion: tc.motion})
		if err != nil {
			t.Fatal(err)
		}
		phi := tc.motion * math.Pi / 2
		want := math.Cos(phi)*math.Cos(phi) + math.Sin(phi)*math.Sin(phi)*math.Cos(2*math.Pi/float64(tc.frames))
		for k := range fr {
			var v float64
			for _, x := range fr[k] {
				v += float64(x) * float64(x)
			}
			if v /= float64(len(fr[k])); math.Abs(v-1) > 0.08 {
				t.Errorf("frames %d motion %g: frame %d has variance %.3f, want 1", tc.frames, tc.motion, k, v)
			}
			// Consecutive frames, the last and the first included (the
			// loop closes), are equally close.
			if got := corr(fr[k], fr[(k+1)%len(fr)]); math.Abs(got-want) > 0.06 {
				t.Errorf("frames %d motion %g: frames %d and %d correlate %.3f, want %.3f", tc.frames, tc.motion, k, (k+1)%len(fr), got, want)
			}
		}
	}
	drift, err := FlipbookNoise(11, c, h, w, FlipbookOptions{Frames: 4, DriftX: 1, DriftY: -1})
	if err != nil {
		t.Fatal(err)
	}
	if !sameFloats(drift[1], roll(still, c, h, w, 8, -8)) {
		t.Error("drift of one width and height per 4 frames does not roll frame 1 by (8, -8)")
	}
	for _, o := range []FlipbookOptions{{Frames: 1}, {Frames: 4, Motion: 2}, {Frames: 4, DriftX: 100}} {
		if _, err := FlipbookNoise(1, c, h, w, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

// generateFrom runs the Euler sampler from the given unit-normal initial
// noise, as sampler.Generate does from its own draw.
func generateFrom(t *testing.T, m *Model, noise []float32, w, h, steps int) *image.NRGBA {
	t.Helper()
	ctx := context.Background()
	sch, err := sampler.NewScheduler(sampler.DefaultScheduler(m.Info().Scheduler), m.Info().Scheduler, sampler.SchedulerOptions{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	lat := make([]float32, len(noise))
	k := float32(sch.InitNoiseSigma())
	for i, v := range noise {
		lat[i] = v * k
	}
	in := make([]float32, len(lat))
	for i, ts := range sch.Timesteps() {
		sc := float32(sch.InputScale(i))
		for j, v := range lat {
			in[j] = v * sc
		}
		out, err := m.UNet(ctx, sampler.UNetInput{Latents: sampler.Tensor{Shape: []int64{1, 3, int64(h), int64(w)}, Data: in}, Timestep: ts})
		if err != nil {
			t.Fatal(err)
		}
		if err := sch.Step(i, out.Data, lat, nil); err != nil {
			t.Fatal(err)
		}
	}
	imgs, err := sampler.TensorToImages(sampler.Tensor{Shape: []int64{1, 3, int64(h), int64(w)}, Data: lat})
	if err != nil {
		t.Fatal(err)
	}
	return imgs[0]
}

func meanAbsDiff(a, b *image.NRGBA) float64 {
	var s float64
	for i := range a.Pix {
		s += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
	}
	return s / float64(len(a.Pix))
}

// TestFlipbookIsCoherent generates a short fire loop: consecutive frames
// differ much less than two unrelated images do.
func TestFlipbookIsCoherent(t *testing.T) {
	rt := testRuntime(t)
	m, err := New(context.Background(), rt, smallOptions("fire", Tiling{X: true, Y: true}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	const w, h, steps = 32, 32, 8
	noise, err := FlipbookNoise(5, 3, h, w, FlipbookOptions{Frames: 8, Motion: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	f0 := generateFrom(t, m, noise[0], w, h, steps)
	f1 := generateFrom(t, m, noise[1], w, h, steps)
	other, err := FlipbookNoise(6, 3, h, w, FlipbookOptions{Frames: 2, Motion: 0})
	if err != nil {
		t.Fatal(err)
	}
	g := generateFrom(t, m, other[0], w, h, steps)
	step, apart := meanAbsDiff(f0, f1), meanAbsDiff(f0, g)
	if !(step < 0.6*apart) {
		t.Errorf("consecutive frames differ by %.1f, unrelated images by %.1f: the animation is not coherent", step, apart)
	}
	t.Logf("consecutive frames differ by %.1f/255, unrelated images by %.1f/255", step, apart)
}
