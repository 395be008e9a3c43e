package models

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// BenchmarkUNetStep measures one classifier-free-guidance denoiser call
// (batch 2) at 512×512 (64×64 latents) on the generated test models, and
// reports the share of wall time spent inside ONNX Runtime's Run and kiln's
// own time per call. allocs/op and B/op show what kiln allocates per step:
// the result tensor (2×4×64×64 float32 = 128 KiB) and small wrappers; the
// inputs are passed to ONNX Runtime without copying (float32) or through
// reused conversion buffers (float16).
func BenchmarkUNetStep(b *testing.B) {
	for _, fl := range []testmodels.Flavour{testmodels.Optimum, testmodels.FP16, testmodels.SDXL, testmodels.LCM} {
		b.Run(string(fl), func(b *testing.B) {
			d := sharedDiffuser(b, fl)
			ctx := context.Background()
			cond, _, err := d.EncodeText(ctx, []string{"stone wall", ""})
			if err != nil {
				b.Fatal(err)
			}
			in := unetInput(d.Info(), cond, 500, 64, 64)
			if _, err := d.UNet(ctx, in); err != nil { // load the session
				b.Fatal(err)
			}
			before := d.rt.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var out sampler.Tensor
			for i := 0; i < b.N; i++ {
				out, err = d.UNet(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
			}
			wall := time.Since(start)
			b.StopTimer()
			_ = out
			after := d.rt.Stats()
			run := after.RunTime - before.RunTime
			b.ReportMetric(100*float64(run)/float64(wall), "%in-ort")
			b.ReportMetric(float64((wall-run).Microseconds())/float64(b.N), "µs-kiln/op")
		})
	}
}
