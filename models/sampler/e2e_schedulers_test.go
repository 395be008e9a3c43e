package sampler_test

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// e2eRef is the part of testdata/sched2.json the end-to-end tests read.
type e2eRef struct {
	Cases []struct {
		Label     string      `json:"label"`
		Timesteps []float64   `json:"timesteps"`
		Scales    []float64   `json:"input_scales"`
		Start     []float64   `json:"start"`
		Sigmas    []float64   `json:"sigmas"`
		Traj      [][]float64 `json:"trajectory"`
	} `json:"cases"`
}

// TestNewSchedulersEndToEnd runs heun, unipc and dpmpp_2m_sde (and heun
// with the karras and spacing options) on the optimum test model folder
// through ONNX Runtime. Each run must be deterministic, call the UNet at
// the timesteps diffusers' scheduler class lists for the folder's
// scheduler_config.json (sched2.json, "e2e" cases: heun's 2n-1 calls for
// n steps), report one progress tick per call, and start its trajectory
// where diffusers' does: the first UNet input is the seed's noise times
// init_noise_sigma times the first input scale. (The later steps depend
// on the ONNX UNet, which the reference cannot run; the scheduler steps
// themselves are matched in TestSchedulersMatchDiffusers.)
func TestNewSchedulersEndToEnd(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "sched2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref e2eRef
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	refs := map[string]int{}
	for i, c := range ref.Cases {
		refs[c.Label] = i
	}
	yes := true
	runs := []struct {
		label     string
		scheduler string
		karras    *bool
		spacing   string
	}{
		{"e2e heun", sampler.Heun, nil, ""},
		{"e2e unipc", sampler.UniPC, nil, ""},
		{"e2e dpmpp_2m_sde", sampler.DPMPP2MSDE, nil, ""},
		{"e2e heun karras trailing", sampler.Heun, &yes, "trailing"},
	}
	d := diffuser(t, testmodels.Optimum)
	ctx := context.Background()
	for _, r := range runs {
		t.Run(r.label, func(t *testing.T) {
			i, ok := refs[r.label]
			if !ok {
				t.Fatalf("sched2.json has no case %q", r.label)
			}
			c := ref.Cases[i]
			var progress [][2]int
			// 32×32 pixels are 1×4×4×4 latents, the reference's shape;
			// seed 1 is its noise.
			req := sampler.Request{
				Prompt: "a stone wall", NegativePrompt: "blurry", Width: 32, Height: 32,
				Steps: 3, Guidance: 5, Scheduler: r.scheduler, Karras: r.karras, Spacing: r.spacing, Seed: 1,
				Progress: func(done, total int) { progress = append(progress, [2]int{done, total}) },
			}
			rec := &recorder{Model: d}
			imgs, rep, err := sampler.Generate(ctx, rec, req)
			if err != nil {
				t.Fatal(err)
			}
			n := len(c.Timesteps)
			if len(rec.timesteps) != n || rep.UNetCalls != n || len(rep.Timesteps) != n {
				t.Fatalf("%d UNet calls at %v (report: %d calls, %d timesteps), want %d at %v",
					len(rec.timesteps), rec.timesteps, rep.UNetCalls, len(rep.Timesteps), n, c.Timesteps)
			}
			if r.scheduler == sampler.Heun && n != 2*req.Steps-1 {
				t.Errorf("heun made %d calls for %d steps, want %d", n, req.Steps, 2*req.Steps-1)
			}
			for k, ts := range rec.timesteps {
				if math.Abs(ts-c.Timesteps[k]) > 1e-3 {
					t.Fatalf("UNet timesteps %v, want %v", rec.timesteps, c.Timesteps)
				}
			}
			if len(progress) != n || progress[n-1] != [2]int{n, n} {
				t.Errorf("progress %v for %d calls", progress, n)
			}
			// Guidance doubles the batch: both halves get the same latents.
			first := rec.inputs[0]
			if len(first) != 2*len(c.Start) {
				t.Fatalf("first UNet input has %d values, want 2×%d", len(first), len(c.Start))
			}
			for j, s := range c.Start {
				want := s * c.Scales[0]
				if math.Abs(float64(first[j])-want) > 1e-5*math.Max(1, math.Abs(want)) || first[j] != first[len(c.Start)+j] {
					t.Fatalf("first UNet input[%d] = %.9g, want %.9g", j, first[j], want)
				}
			}
			again, _, err := sampler.Generate(ctx, d, req)
			if err != nil {
				t.Fatal(err)
			}
			if !samePixels(imgs[0], again[0]) {
				t.Error("the same request gave different images")
			}
		})
	}
}
