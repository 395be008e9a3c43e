package exemplar

import (
	"bytes"
	"context"
	"image"
	"math"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/models/sampler"
)

// smallOptions keeps model tests fast: a small bank and exemplars, and a
// schedule with a coarse level that fits 32-pixel images.
func smallOptions(prompt string, tile Tiling, dir string) Options {
	return Options{
		Prompt: prompt, Tile: tile, CacheDir: dir,
		BankSize: 192, Dims: 16, ExemplarSize: 64,
		Schedule: []PatchLevel{{0, 5, 1}, {0.3, 5, 2}, {1.5, 5, 4}},
	}
}

func TestModelInfoAndPassthrough(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	m, err := New(ctx, rt, smallOptions("red brick", Tiling{}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	info := m.Info()
	if info.LatentChannels != 3 || info.VAEFactor != 1 || info.ScalingFactor != 1 || info.Provider == "" {
		t.Errorf("info %+v", info)
	}
	cfg, err := sampler.ParseSchedulerConfig(sampler.DefaultScheduler(info.Scheduler), info.Scheduler)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PredictionType != "sample" {
		t.Errorf("prediction type %q, want sample", cfg.PredictionType)
	}
	if got := m.Selection().String(); got != "brick; colour red" {
		t.Errorf("selection %q", got)
	}
	cond, warns, err := m.EncodeText(ctx, []string{"", "red brick"})
	if err != nil || len(warns) != 0 || len(cond.Hidden.Shape) != 3 || cond.Hidden.Shape[0] != 2 {
		t.Errorf("EncodeText: %v %v %v", cond.Hidden.Shape, warns, err)
	}
	if _, warns, _ := m.EncodeText(ctx, []string{"blue ice"}); len(warns) != 1 {
		t.Errorf("a different prompt gave warnings %v, want one", warns)
	}
	img := sampler.Tensor{Shape: []int64{1, 3, 2, 2}, Data: []float32{-1, 0, 1, 0.5, 0, 0, 0, 0, 1, 1, 1, 1}}
	dec, err := m.DecodeLatents(ctx, img)
	if err != nil || !sameFloats(dec.Data, img.Data) {
		t.Errorf("DecodeLatents is not the identity: %v %v", dec.Data, err)
	}
	mean, logvar, err := m.EncodeImage(ctx, img)
	if err != nil || !sameFloats(mean.Data, img.Data) || len(logvar.Data) != 0 {
		t.Errorf("EncodeImage is not the identity: %v %v %v", mean.Data, logvar.Data, err)
	}
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNewErrors(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no keyword", Options{Prompt: "a castle"}, "names no material"},
		{"bank", Options{Prompt: "stone", BankSize: 3}, "bank size 3 out of range"},
		{"schedule", Options{Prompt: "stone", Schedule: []PatchLevel{{0, 4, 1}}}, "size 4 must be odd"},
		{"schedule order", Options{Prompt: "stone", Schedule: []PatchLevel{{0, 5, 1}, {0, 7, 1}}}, "must exceed"},
		{"tiny exemplar", Options{Exemplars: []image.Image{image.NewNRGBA(image.Rect(0, 0, 8, 8))}}, "at least 15 pixels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.CacheDir = t.TempDir()
			_, err := New(ctx, rt, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	m, err := New(ctx, rt, smallOptions("stone", Tiling{}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.UNet(ctx, sampler.UNetInput{Latents: sampler.Tensor{Shape: []int64{1, 4, 8, 8}, Data: make([]float32, 256)}})
	if err == nil || !strings.Contains(err.Error(), "want [batch, 3, height, width]") {
		t.Errorf("4-channel latents: %v", err)
	}
	x := make([]float32, 3*2*2)
	if err := m.Denoise(ctx, make([]float32, len(x)), x, 2, 2, 0.5); err == nil || !strings.Contains(err.Error(), "too small") {
		t.Errorf("2x2 image: %v", err)
	}
}

// TestTilingIsExact proves the wrap-around: for a model that tiles, the
// denoiser commutes with circular shifts by multiples of its coarsest
// pooling, at every level, so its output has no seam by construction. A
// model that does not tile does not commute.
func TestTilingIsExact(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	const w, h = 40, 32
	x := make([]float32, 3*w*h)
	sampler.NewGenerator(4).FillNormal(x)
	for _, tc := range []struct {
		tile       Tiling
		dx, dy     int
		equivarant bool
	}{
		{Tiling{X: true, Y: true}, 8, 12, true},
		{Tiling{X: true}, 16, 0, true},
		{Tiling{Y: true}, 0, 4, true},
		{Tiling{}, 8, 0, false},
	} {
		m, err := New(ctx, rt, smallOptions("cobblestone", tc.tile, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		for _, ab := range []float64{0.05, 0.5, 0.97} {
			y := make([]float32, len(x))
			if err := m.Denoise(ctx, y, x, w, h, ab); err != nil {
				t.Fatal(err)
			}
			ys := make([]float32, len(x))
			if err := m.Denoise(ctx, ys, roll(x, 3, h, w, tc.dx, tc.dy), w, h, ab); err != nil {
				t.Fatal(err)
			}
			want := roll(y, 3, h, w, tc.dx, tc.dy)
			worst := 0.0
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(want[i]-ys[i])))
			}
			if tc.equivarant && worst > 1e-4 {
				t.Errorf("tile %s, ᾱ %g: shifting the input by (%d, %d) changes the output by up to %g beyond the shift", tc.tile, ab, tc.dx, tc.dy, worst)
			}
			if !tc.equivarant && worst < 1e-2 {
				t.Errorf("tile %s, ᾱ %g: the denoiser wraps around although the model does not tile", tc.tile, ab)
			}
		}
	}
}

// TestGenerateTilesAndIsDeterministic runs the sampler end to end on a
// small tileable texture: the seams score ≤ 1.15 on both axes, the same
// seed gives the same bytes, another seed another picture.
func TestGenerateTilesAndIsDeterministic(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	m, err := New(ctx, rt, smallOptions("grass", Tiling{X: true, Y: true}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	gen := func(seed uint64) *image.NRGBA {
		imgs, _, err := sampler.Generate(ctx, m, sampler.Request{Prompt: "grass", Width: 64, Height: 64, Steps: 8, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return imgs[0]
	}
	a, b, c := gen(1), gen(1), gen(2)
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Error("the same seed gave different images")
	}
	if bytes.Equal(a.Pix, c.Pix) {
		t.Error("different seeds gave the same image")
	}
	for _, img := range []*image.NRGBA{a, c} {
		sx, sy := imageops.Seams(imageops.FromImage(img))
		if sx > imageops.SeamlessScore || sy > imageops.SeamlessScore {
			t.Errorf("seams %.3f, %.3f, want ≤ %.2f", sx, sy, imageops.SeamlessScore)
		}
		if ox, oy := wrapOutlier(img); ox > 1.0001 || oy > 1.0001 {
			t.Errorf("the wrap-around pair stands out: %.3f, %.3f", ox, oy)
		}
	}
	// The output looks like its exemplars: mostly green.
	var r, g, bl float64
	for i := 0; i < len(a.Pix); i += 4 {
		r += float64(a.Pix[i])
		g += float64(a.Pix[i+1])
		bl += float64(a.Pix[i+2])
	}
	if !(g > 1.3*r && g > 1.3*bl) {
		t.Errorf("grass is not green: mean RGB %.0f %.0f %.0f", r/4096, g/4096, bl/4096)
	}
}

// TestUserExemplars draws patches from the caller's images instead of the
// library: a picture in two colours gives an output in those colours.
func TestUserExemplars(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	ex := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 40; x++ {
			i := y*ex.Stride + 4*x
			if (x/5+y/5)%2 == 0 {
				copy(ex.Pix[i:], []uint8{230, 40, 30, 255})
			} else {
				copy(ex.Pix[i:], []uint8{20, 40, 220, 255})
			}
		}
	}
	o := smallOptions("", Tiling{X: true, Y: true}, t.TempDir())
	o.Exemplars = []image.Image{ex}
	m, err := New(ctx, rt, o)
	if err != nil {
		t.Fatal(err)
	}
	imgs, _, err := sampler.Generate(ctx, m, sampler.Request{Width: 32, Height: 32, Steps: 8, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	img := imgs[0]
	red, blue := 0, 0
	for i := 0; i < len(img.Pix); i += 4 {
		switch {
		case img.Pix[i] > 150 && img.Pix[i+2] < 100:
			red++
		case img.Pix[i+2] > 150 && img.Pix[i] < 100:
			blue++
		}
	}
	if n := 32 * 32; red+blue < n*8/10 || red < n/5 || blue < n/5 {
		t.Errorf("output is not made of the exemplar's two colours: %d red, %d blue of %d pixels", red, blue, n)
	}
}

// TestGuidanceCostsNothing: under classifier-free guidance the sampler
// sends each image twice; the result equals the unguided one and the
// denoiser graph runs once per step.
func TestGuidanceCostsNothing(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	m, err := New(ctx, rt, smallOptions("sand", Tiling{X: true, Y: true}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	req := sampler.Request{Prompt: "sand", Width: 32, Height: 32, Steps: 4, Seed: 8}
	plain, _, err := sampler.Generate(ctx, m, req)
	if err != nil {
		t.Fatal(err)
	}
	before := rt.Stats().Runs
	req.Guidance = 7
	guided, rep, err := sampler.Generate(ctx, m, req)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Guided {
		t.Fatal("the sampler did not guide")
	}
	if runs := rt.Stats().Runs - before; runs != 4 {
		t.Errorf("%d graph runs for 4 guided steps, want 4", runs)
	}
	if !bytes.Equal(plain[0].Pix, guided[0].Pix) {
		t.Error("guidance changed the image")
	}
}

// TestSmallExemplarFallsBack: an exemplar smaller than the coarsest
// level's patches (9 pixels pooled by 8 = 72) still works: that level
// compares at a finer pooling.
func TestSmallExemplarFallsBack(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	ex, err := RenderMaterial("cobblestone", 40, 1)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(ctx, rt, Options{Exemplars: []image.Image{ex}, ExemplarsTile: true, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), BankSize: 128})
	if err != nil {
		t.Fatal(err)
	}
	if lv := m.fit(PatchLevel{MinSigma: 2, Size: 9, Down: 8}); lv.Down != 4 {
		t.Errorf("9-pixel patches pooled by 8 on a 40-pixel exemplar: fitted to pooling %d, want 4", lv.Down)
	}
	if _, _, err := sampler.Generate(ctx, m, sampler.Request{Width: 64, Height: 64, Steps: 3, Seed: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentDenoise: one Model used from several goroutines builds
// each bank and graph once and gives every caller the same answer.
func TestConcurrentDenoise(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	m, err := New(ctx, rt, smallOptions("lava", Tiling{X: true, Y: true}, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	const w, h = 32, 32
	x := make([]float32, 3*w*h)
	sampler.NewGenerator(2).FillNormal(x)
	want := make([]float32, len(x))
	outs := make([][]float32, 4)
	errs := make(chan error, len(outs))
	for i := range outs {
		outs[i] = make([]float32, len(x))
		go func(dst []float32) { errs <- m.Denoise(ctx, dst, x, w, h, 0.3) }(outs[i])
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Denoise(ctx, want, x, w, h, 0.3); err != nil {
		t.Fatal(err)
	}
	for i, o := range outs {
		if !sameFloats(o, want) {
			t.Errorf("goroutine %d got a different result", i)
		}
	}
	if len(m.banks) != 1 || len(m.graphs) != 1 {
		t.Errorf("%d banks and %d graphs for one level, want 1 and 1", len(m.banks), len(m.graphs))
	}
}
