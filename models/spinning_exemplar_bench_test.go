package models_test

import (
	"context"
	"flag"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/models/sampler"
)

var spinExemplarSize = flag.Int("spinning.exemplar-size", 256, "image side of BenchmarkSpinningExemplar's generations")

// BenchmarkSpinningExemplar measures builtin:exemplar, whose denoiser
// graphs run through the same Runtime and session options as a model
// folder's, with each models.SpinningCase: one whole tileable generation
// (exemplar.DefaultSteps steps) per operation, after one untimed
// generation that makes its banks, graphs and sessions.
//
//	go test -run '^$' -bench SpinningExemplar -benchtime 3x ./models/
func BenchmarkSpinningExemplar(b *testing.B) {
	lib := orttest.Library(b)
	ctx := context.Background()
	cache := b.TempDir()
	size := max(64, *spinExemplarSize)
	req := sampler.Request{Prompt: "mossy cobblestone", Width: size, Height: size, Steps: exemplar.DefaultSteps}
	for _, c := range models.SpinningCases() {
		b.Run(c.Name(), func(b *testing.B) {
			spin := c.Spinning
			rt, err := models.NewRuntime(models.RuntimeOptions{Library: lib, Threads: c.Threads, Spinning: &spin, CacheDir: cache})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			m, err := exemplar.New(ctx, rt, exemplar.Options{Prompt: req.Prompt, Tile: exemplar.Tiling{X: true, Y: true}, CacheDir: cache})
			if err != nil {
				b.Fatal(err)
			}
			if err := m.Preload(ctx, size, size); err != nil {
				b.Fatal(err)
			}
			if _, _, err := sampler.Generate(ctx, m, req); err != nil { // warm up
				b.Fatal(err)
			}
			if c.Busy {
				defer models.StartCPUBurners(0)()
			}
			b.ResetTimer()
			cpu0, start := models.ProcessCPU(), time.Now()
			calls := 0
			for i := 0; i < b.N; i++ {
				req.Seed = uint64(i)
				_, rep, err := sampler.Generate(ctx, m, req)
				if err != nil {
					b.Fatal(err)
				}
				calls += rep.UNetCalls
			}
			b.StopTimer()
			n := float64(max(1, calls))
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/n, "ms/step")
			if cpu := models.ProcessCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/step")
			}
		})
	}
}
