package models

import (
	"context"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/testmodels"
)

// BenchmarkUNetStep measures one classifier-free-guidance denoiser call
// (batch 2) at 512×512 (64×64 latents) on the generated test models, as
// the sampler makes it: with UNetInput.Out, a reused buffer the prediction
// is written into. It reports:
//
//   - %in-ort: the share of wall time spent inside ONNX Runtime's Run;
//   - µs-kiln/op: wall time per call outside Run;
//   - cpu-µs-kiln/op: the process's CPU time per call minus the CPU time
//     spent inside Run (RuntimeStats.RunCPU), which a loaded machine blurs
//     less than wall time (Linux only; the Runtime has one thread);
//   - B/op and allocs/op: what kiln allocates per step. No full-size
//     buffer: the latents and conditioning go to ONNX Runtime without
//     copying (float32) or through buffers kept from call to call
//     (float16), and the prediction lands in Out, so B/op stays far below
//     one prediction (2×4×64×64 float32 = 128 KiB).
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
			in.Out = make([]float32, len(in.Latents.Data))
			if _, err := d.UNet(ctx, in); err != nil { // load the session
				b.Fatal(err)
			}
			before := d.rt.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				out, err := d.UNet(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				if &out.Data[0] != &in.Out[0] {
					b.Fatal("the prediction was not written into UNetInput.Out")
				}
			}
			wall := time.Since(start)
			cpu := processCPU() - cpu0
			b.StopTimer()
			after := d.rt.Stats()
			run := after.RunTime - before.RunTime
			runCPU := after.RunCPU - before.RunCPU
			b.ReportMetric(100*float64(run)/float64(wall), "%in-ort")
			b.ReportMetric(float64((wall-run).Microseconds())/float64(b.N), "µs-kiln/op")
			if cpu > 0 && runCPU > 0 {
				b.ReportMetric(float64((cpu-runCPU).Microseconds())/float64(b.N), "cpu-µs-kiln/op")
			}
		})
	}
}
