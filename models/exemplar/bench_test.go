package exemplar

import (
	"context"
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/models/sampler"
)

// BenchmarkGenerate256 measures what the target is about: a whole
// 256×256 tileable texture through sampler.Generate with the default
// steps. "cold" includes everything a first build pays (rendering the
// exemplars, the patch banks and their PCA, writing the graphs, creating
// the sessions); "warm" is a model whose graphs are already loaded, as in
// a build with several assets of one material or a watch-mode rebuild.
//
//	go test -run '^$' -bench Generate256 -benchtime 3x ./models/exemplar
func BenchmarkGenerate256(b *testing.B) {
	rt := testRuntime(b)
	ctx := context.Background()
	req := sampler.Request{Prompt: "mossy cobblestone", Width: 256, Height: 256, Steps: DefaultSteps}
	report := func(b *testing.B, rep sampler.Report, img *image.NRGBA) {
		b.ReportMetric(rep.UNetTime.Seconds()/float64(rep.UNetCalls), "s/step")
		sx, sy := imageops.Seams(imageops.FromImage(img))
		b.ReportMetric(max(sx, sy), "seam-max")
	}
	// CPU time of the whole process per generation (processCPU): on a
	// shared machine the wall time depends on the other load, the CPU
	// time does not. An idle machine with c cores runs the generation in
	// about cpu-s/op / c (ONNX Runtime uses one thread per core).
	cpu := processCPU
	b.Run("cold", func(b *testing.B) {
		c0 := cpu()
		defer func() { b.ReportMetric((cpu()-c0)/float64(b.N), "cpu-s/op") }()
		for i := 0; i < b.N; i++ {
			m, err := New(ctx, rt, Options{Prompt: req.Prompt, Tile: Tiling{X: true, Y: true}, CacheDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			req.Seed = uint64(i)
			imgs, rep, err := sampler.Generate(ctx, m, req)
			if err != nil {
				b.Fatal(err)
			}
			report(b, rep, imgs[0])
		}
	})
	b.Run("warm", func(b *testing.B) {
		m, err := New(ctx, rt, Options{Prompt: req.Prompt, Tile: Tiling{X: true, Y: true}, CacheDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := m.Preload(ctx, 256, 256); err != nil {
			b.Fatal(err)
		}
		b.Logf("preload (banks, graphs, sessions): %v", time.Since(t0))
		b.ResetTimer()
		c0 := cpu()
		defer func() { b.ReportMetric((cpu()-c0)/float64(b.N), "cpu-s/op") }()
		for i := 0; i < b.N; i++ {
			req.Seed = uint64(i)
			imgs, rep, err := sampler.Generate(ctx, m, req)
			if err != nil {
				b.Fatal(err)
			}
			report(b, rep, imgs[0])
		}
	})
}

// BenchmarkDenoise measures one denoiser call per schedule level on a
// 256×256 image, to show where a generation's time goes.
func BenchmarkDenoise(b *testing.B) {
	rt := testRuntime(b)
	ctx := context.Background()
	m, err := New(ctx, rt, Options{Prompt: "stone", Tile: Tiling{X: true, Y: true}, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	const s = 256
	x := make([]float32, 3*s*s)
	sampler.NewGenerator(1).FillNormal(x)
	dst := make([]float32, len(x))
	for _, lv := range m.schedule {
		ab := 1 / (1 + (lv.MinSigma+0.01)*(lv.MinSigma+0.01))
		l := levelFor(m.schedule, ab, s, s)
		b.Run(fmtLevel(l), func(b *testing.B) {
			if err := m.Denoise(ctx, dst, x, s, s, ab); err != nil { // builds and loads the graph
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := m.Denoise(ctx, dst, x, s, s, ab); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fmtLevel(l PatchLevel) string { return fmt.Sprintf("p%d-down%d", l.Size, l.Down) }
