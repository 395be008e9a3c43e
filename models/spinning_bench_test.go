package models

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/testmodels"
)

// Flags of BenchmarkSpinning and BenchmarkSpinningExemplar.
var (
	spinSteps   = flag.Int("spinning.steps", 20, "denoising steps per operation of the spinning benchmarks")
	spinLatent  = flag.Int("spinning.latent", 64, "latent side of BenchmarkSpinning's UNet calls (64: a 512×512 image)")
	spinBurners = flag.Int("spinning.burners", 0, "CPU-burning goroutines beside the busy cases (0: one per CPU)")
)

// SpinningCase is one configuration the spinning benchmarks measure.
type SpinningCase struct {
	Threads  int
	Spinning bool
	Busy     bool // CPU-burning goroutines run beside the model
}

// Name is the sub-benchmark name, "threads=2/spin=off/busy".
func (c SpinningCase) Name() string {
	spin, load := "off", "alone"
	if c.Spinning {
		spin = "on"
	}
	if c.Busy {
		load = "busy"
	}
	return fmt.Sprintf("threads=%d/spin=%s/%s", c.Threads, spin, load)
}

// SpinningCases are the configurations issue 13 asks for: one thread and
// two, spinning on and off, alone and beside CPU work.
func SpinningCases() []SpinningCase {
	var cs []SpinningCase
	for _, threads := range []int{1, 2} {
		for _, spin := range []bool{true, false} {
			for _, busy := range []bool{false, true} {
				cs = append(cs, SpinningCase{threads, spin, busy})
			}
		}
	}
	return cs
}

// SpinningSteps is the -spinning.steps flag.
func SpinningSteps() int { return max(1, *spinSteps) }

// StartCPUBurners starts n goroutines (0: one per CPU) that hash a buffer
// over and over, as CPU stages (image processing, PNG encoding) running
// beside a denoiser do, and returns the function that stops them.
func StartCPUBurners(n int) (stop func()) {
	if n <= 0 {
		n = *spinBurners
	}
	if n <= 0 {
		n = runtime.NumCPU()
	}
	var done atomic.Bool
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64<<10)
			for !done.Load() {
				sum := sha256.Sum256(buf)
				buf[0] = sum[0]
			}
		}()
	}
	return func() {
		done.Store(true)
		wg.Wait()
	}
}

// ProcessCPU is the process's CPU time, for the benchmarks of package
// models_test.
func ProcessCPU() time.Duration { return processCPU() }

// BenchmarkSpinning measures the generated test UNet (the optimum
// flavour, batch 2 as classifier-free guidance runs it) for
// -spinning.steps steps per operation, with each SpinningCase. On a quiet
// machine,
//
//	go test -run '^$' -bench Spinning -benchtime 5x ./models/
//
// gives the table the default of runtime.spinning is chosen from:
// ms/step is wall time per denoising step, cpu-ms/step the process's CPU
// time per step (the burners' included in the busy cases, so compare
// ms/step there).
func BenchmarkSpinning(b *testing.B) {
	lib := testLibrary(b)
	root, err := os.MkdirTemp("", "kiln-spinning-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(root)
	dir := filepath.Join(root, "model")
	if err := testmodels.Write(dir, testmodels.Optimum, testmodels.Options{}); err != nil {
		b.Fatal(err)
	}
	f, err := OpenFolder(dir)
	if err != nil {
		b.Fatal(err)
	}
	f.CacheDir = filepath.Join(root, "cache")
	ctx := context.Background()
	for _, c := range SpinningCases() {
		b.Run(c.Name(), func(b *testing.B) {
			spin := c.Spinning
			rt, err := NewRuntime(RuntimeOptions{Library: lib, Threads: c.Threads, Spinning: &spin, CacheDir: f.CacheDir})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			d, err := NewDiffuser(rt, f, DiffuserOptions{})
			if err != nil {
				b.Fatal(err)
			}
			cond, _, err := d.EncodeText(ctx, []string{"stone wall", ""})
			if err != nil {
				b.Fatal(err)
			}
			side := int64(max(8, *spinLatent))
			in := unetInput(d.Info(), cond, 500, side, side)
			in.Out = make([]float32, len(in.Latents.Data))
			if _, err := d.UNet(ctx, in); err != nil { // load the session
				b.Fatal(err)
			}
			if c.Busy {
				defer StartCPUBurners(0)()
			}
			steps := SpinningSteps()
			b.ResetTimer()
			cpu0, start := processCPU(), time.Now()
			for i := 0; i < b.N; i++ {
				for k := 0; k < steps; k++ {
					in.Timestep = float64(999 - k*999/steps)
					if _, err := d.UNet(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			n := float64(b.N * steps)
			b.ReportMetric(float64(time.Since(start).Microseconds())/1000/n, "ms/step")
			if cpu := processCPU() - cpu0; cpu > 0 {
				b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/step")
			}
		})
	}
}
