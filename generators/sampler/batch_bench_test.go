package sampler_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/generators/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// BenchmarkBatch is issue 13's throughput check of cross-asset batching
// on the CPU: four guided 512×512 generations of different prompts and
// seeds (20 steps) on a generated model folder, through ONNX Runtime's CPU
// provider with one thread per session. It compares
//
//   - sequential: one after the other, as a build runs them when batching
//     is off (one accelerator stage at a time);
//   - concurrent: all four at once without batching (four accelerator
//     stages, each with its own UNet calls);
//   - batched: all four at once, sharing their UNet calls (runtime.batch
//     4; they meet before their first step).
//
// ns/op is the wall time of the four; cpu-ms/op is the process's CPU time,
// which depends less on other work on the machine; ort-ms/op is the time
// spent in ONNX Runtime's Run (summed over calls that overlap).
func BenchmarkBatch(b *testing.B) {
	for _, fl := range []testmodels.Flavour{testmodels.Optimum, testmodels.DiffusersLegacy} {
		plain, batched := batchDiffuser(b, fl, 4)
		ctx := context.Background()
		reqs := make([]sampler.Request, 4)
		for i := range reqs {
			reqs[i] = sampler.Request{Prompt: fmt.Sprintf("stone wall %d", i), NegativePrompt: "blurry", Seed: uint64(i + 1),
				Width: 512, Height: 512, Steps: 20, Guidance: 7.5}
		}
		if err := plain.Preload(ctx); err != nil {
			b.Fatal(err)
		}
		if _, _, err := sampler.Generate(ctx, plain, reqs[0]); err != nil { // warm the sessions
			b.Fatal(err)
		}
		run := func(b *testing.B, parallel bool, batcher *sampler.Batcher) {
			if batcher != nil {
				sampler.SetHook(batcher, nil)
			}
			rt := ortRuntime(b)
			cpu0, ort0 := processCPU(), rt.Stats().RunTime
			for b.Loop() {
				if batcher != nil {
					sampler.SetHook(batcher, barrier(len(reqs)))
				}
				var wg sync.WaitGroup
				for _, req := range reqs {
					req.Batcher = batcher
					gen := func() {
						m := plain
						if batcher != nil {
							m = batched
						}
						if _, _, err := sampler.Generate(ctx, m, req); err != nil {
							b.Error(err)
						}
					}
					if parallel {
						wg.Go(gen)
					} else {
						gen()
					}
				}
				wg.Wait()
			}
			b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
			b.ReportMetric(float64((rt.Stats().RunTime-ort0).Milliseconds())/float64(b.N), "ort-ms/op")
		}
		b.Run(string(fl)+"/sequential", func(b *testing.B) { run(b, false, nil) })
		b.Run(string(fl)+"/concurrent", func(b *testing.B) { run(b, true, nil) })
		b.Run(string(fl)+"/batched", func(b *testing.B) { run(b, true, batched.Batcher()) })
	}
}
