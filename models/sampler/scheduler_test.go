package sampler

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sd15 is stable-diffusion-v1-5's scheduler_config.json (a PNDM config).
var sd15 = map[string]any{
	"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
	"beta_schedule": "scaled_linear", "num_train_timesteps": 1000.0, "set_alpha_to_one": false,
	"skip_prk_steps": true, "steps_offset": 1.0, "trained_betas": nil, "clip_sample": false,
}

func with(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func TestSD15Sigmas(t *testing.T) {
	cfg, err := ParseSchedulerConfig(Euler, sd15)
	if err != nil {
		t.Fatal(err)
	}
	sig := trainingSigmas(alphasCumprod(cfg))
	if got := sig[len(sig)-1]; math.Abs(got-14.6146) > 5e-5 {
		t.Errorf("σ_max = %.6f, want 14.6146", got)
	}
	if got := sig[0]; math.Abs(got-0.0292) > 5e-5 {
		t.Errorf("σ_min = %.6f, want 0.0292", got)
	}
}

func TestTimestepChecks(t *testing.T) {
	leading := []float64{}
	for v := 951.0; v >= 1; v -= 50 {
		leading = append(leading, v)
	}
	tests := []struct {
		name      string
		scheduler string
		raw       map[string]any
		steps     int
		want      []float64
	}{
		{"euler leading offset 1", Euler, with(sd15, "timestep_spacing", "leading"), 20, leading},
		{"euler trailing", Euler, with(sd15, "timestep_spacing", "trailing"), 4, []float64{999, 749, 499, 249}},
		{"ddim trailing", DDIM, with(sd15, "timestep_spacing", "trailing"), 4, []float64{999, 749, 499, 249}},
		{"lcm 4 of 50", LCM, map[string]any{"original_inference_steps": 50.0}, 4, []float64{999, 759, 499, 259}},
		{"lcm default original steps", LCM, nil, 4, []float64{999, 759, 499, 259}},
		{"euler_a trailing", EulerAncestral, with(sd15, "timestep_spacing", "trailing"), 4, []float64{999, 749, 499, 249}},
	}
	for _, tt := range tests {
		s, err := NewScheduler(tt.scheduler, tt.raw, SchedulerOptions{Steps: tt.steps})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got := s.Timesteps(); !slices.Equal(got, tt.want) {
			t.Errorf("%s: timesteps %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDefaultsPerScheduler checks that fields missing from the config take
// the chosen scheduler's own defaults (SD 1.5's config has no
// timestep_spacing: Euler spaces linearly, DDIM leads).
func TestDefaultsPerScheduler(t *testing.T) {
	tests := []struct {
		name    string
		spacing string
		clip    bool
	}{
		{Euler, "linspace", false},
		{EulerAncestral, "linspace", false},
		{DPMPP2M, "linspace", false},
		{DDIM, "leading", false},
		{LCM, "leading", false},
	}
	for _, tt := range tests {
		cfg, err := ParseSchedulerConfig(tt.name, sd15)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TimestepSpacing != tt.spacing || cfg.ClipSample != tt.clip || cfg.StepsOffset != 1 || cfg.BetaSchedule != "scaled_linear" {
			t.Errorf("%s: %+v", tt.name, cfg)
		}
	}
	cfg, _ := ParseSchedulerConfig(DDIM, nil)
	if !cfg.ClipSample || !cfg.SetAlphaToOne || cfg.BetaSchedule != "linear" || cfg.BetaStart != 0.0001 {
		t.Errorf("DDIM defaults: %+v", cfg)
	}
	cfg, _ = ParseSchedulerConfig(LCM, nil)
	if cfg.BetaSchedule != "scaled_linear" || cfg.OriginalInferenceSteps != 50 || cfg.TimestepScaling != 10 {
		t.Errorf("LCM defaults: %+v", cfg)
	}
}

func TestDefaultScheduler(t *testing.T) {
	tests := map[string]string{
		"EulerDiscreteScheduler": Euler, "DDIMScheduler": DDIM, "LCMScheduler": LCM,
		"DPMSolverMultistepScheduler": DPMPP2M, "EulerAncestralDiscreteScheduler": EulerAncestral,
		"PNDMScheduler": Euler, "": Euler,
		"HeunDiscreteScheduler": Heun, "UniPCMultistepScheduler": UniPC,
	}
	for class, want := range tests {
		if got := DefaultScheduler(map[string]any{"_class_name": class}); got != want {
			t.Errorf("%q → %s, want %s", class, got, want)
		}
	}
	sde := map[string]any{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"}
	if got := DefaultScheduler(sde); got != DPMPP2MSDE {
		t.Errorf("DPM-Solver with sde-dpmsolver++ → %s, want %s", got, DPMPP2MSDE)
	}
}

func TestSchedulerErrors(t *testing.T) {
	tests := []struct {
		name, scheduler string
		raw             map[string]any
		opt             SchedulerOptions
		want            string
	}{
		{"unknown", "pndm", nil, SchedulerOptions{Steps: 10}, `unknown scheduler "pndm"`},
		{"bad spacing", Euler, map[string]any{"timestep_spacing": "random"}, SchedulerOptions{Steps: 10}, `timestep_spacing: "random" is not supported`},
		{"wrong type", Euler, map[string]any{"beta_start": "0.1"}, SchedulerOptions{Steps: 10}, "beta_start: want a number"},
		{"zero steps", Euler, nil, SchedulerOptions{Steps: 0}, "steps 0 out of range"},
		{"strength", Euler, nil, SchedulerOptions{Steps: 10, Strength: 1.5}, "strength 1.5 out of range"},
		{"tiny strength", Euler, nil, SchedulerOptions{Steps: 10, Strength: 0.05}, "leaves no step to run"},
		{"lcm too many steps", LCM, nil, SchedulerOptions{Steps: 8, Strength: 0.1}, "do not fit the distillation schedule"},
		{"karras on ddim", DDIM, nil, SchedulerOptions{Steps: 10, Karras: ptr(true)}, "karras sigmas do not apply to ddim"},
		{"karras on euler_a", EulerAncestral, nil, SchedulerOptions{Steps: 10, Karras: ptr(true)}, "karras sigmas do not apply to euler_a"},
		{"spacing on lcm", LCM, nil, SchedulerOptions{Steps: 4, Spacing: "trailing"}, "timestep spacing does not apply to lcm"},
		{"bad spacing option", Heun, nil, SchedulerOptions{Steps: 4, Spacing: "random"}, `timestep spacing "random" is not leading, linspace or trailing`},
		{"unipc solver order", UniPC, map[string]any{"solver_order": 3.0}, SchedulerOptions{Steps: 10}, "solver_order: 3 is not supported (unipc is second order)"},
		{"unipc bh1", UniPC, map[string]any{"solver_type": "bh1"}, SchedulerOptions{Steps: 10}, `solver_type: "bh1" is not supported`},
		{"thresholding", DDIM, map[string]any{"thresholding": true}, SchedulerOptions{Steps: 10}, "thresholding"},
		{"prediction", Euler, map[string]any{"prediction_type": "flow"}, SchedulerOptions{Steps: 10}, "prediction_type"},
		{"leading out of range", DDIM, map[string]any{"steps_offset": 999.0}, SchedulerOptions{Steps: 10}, "outside 0..999"},
	}
	for _, tt := range tests {
		_, err := NewScheduler(tt.scheduler, tt.raw, tt.opt)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}

type schedRef struct {
	SD15 struct {
		SigmaMax float64 `json:"sigma_max"`
		SigmaMin float64 `json:"sigma_min"`
		AC0      float64 `json:"alphas_cumprod_0"`
		AC999    float64 `json:"alphas_cumprod_999"`
	} `json:"sd15"`
	Cases []struct {
		Label      string         `json:"label"`
		Name       string         `json:"name"`
		Config     map[string]any `json:"config"`
		Steps      int            `json:"steps"`
		Strength   float64        `json:"strength"`
		Eta        float64        `json:"eta"`
		Timesteps  []float64      `json:"timesteps"`
		InitSigma  float64        `json:"init_noise_sigma"`
		Scales     []float64      `json:"input_scales"`
		Sigmas     []float64      `json:"sigmas"`
		Start      []float64      `json:"start"`
		AfterFirst []float64      `json:"after_first"`
		Final      []float64      `json:"final"`
	} `json:"cases"`
}

func closeTo(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(1, math.Abs(want))
}

// TestSchedulersMatchReference runs every scheduler through whole
// trajectories (txt2img and img2img) on fixed model outputs and compares
// timesteps, noise levels, input scales and the latents after the first
// and the last step with testdata/sched.json, computed by gen_sched.py
// from diffusers' formulas on float32 torch tensors. The per-step noise of
// the stochastic schedulers comes from a generator seeded 5, as in the
// reference.
func TestSchedulersMatchReference(t *testing.T) {
	var ref schedRef
	readRef(t, "sched.json", &ref)
	cfg, _ := ParseSchedulerConfig(Euler, sd15)
	ac := alphasCumprod(cfg)
	if !closeTo(ac[0], ref.SD15.AC0, 1e-6) || !closeTo(ac[999], ref.SD15.AC999, 1e-5) {
		t.Errorf("ᾱ_0 = %.9g, ᾱ_999 = %.9g; want %.9g, %.9g", ac[0], ac[999], ref.SD15.AC0, ref.SD15.AC999)
	}
	shape := []int64{1, 4, 4, 4}
	for _, c := range ref.Cases {
		t.Run(c.Label, func(t *testing.T) {
			s, err := NewScheduler(c.Name, c.Config, SchedulerOptions{Steps: c.Steps, Strength: c.Strength, Eta: c.Eta})
			if err != nil {
				t.Fatal(err)
			}
			ts := s.Timesteps()
			x := startLatents(t, s, c.Timesteps, c.Sigmas, c.Strength, c.InitSigma)
			for i, want := range c.Start {
				if !closeTo(float64(x[i]), want, 1e-5) {
					t.Fatalf("start[%d] = %.9g, want %.9g", i, x[i], want)
				}
			}
			g := NewGenerator(5)
			for k := range ts {
				if !closeTo(s.InputScale(k), c.Scales[k], 2e-6) {
					t.Errorf("input scale %d = %.9g, want %.9g", k, s.InputScale(k), c.Scales[k])
				}
				m := NewGenerator(uint64(100 + k)).Randn(shape...).Data
				if err := s.Step(k, m, x, g); err != nil {
					t.Fatal(err)
				}
				if k == 0 {
					compare(t, "after first step", x, c.AfterFirst)
				}
			}
			compare(t, "final", x, c.Final)
		})
	}
}

// readRef decodes testdata/name into v.
func readRef(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// startLatents checks a scheduler's timesteps, noise levels (when sigmas
// is not nil) and init noise σ (txt2img) against a reference, and returns
// the reference run's starting latents for a 1×4×4×4 sample: the noise of
// seed 1 scaled for txt2img, or, below strength 1, noised to the first
// step with the noise of seed 2.
func startLatents(t *testing.T, s *Scheduler, timesteps, sigmas []float64, strength, initSigma float64) []float32 {
	t.Helper()
	ts := s.Timesteps()
	if len(ts) != len(timesteps) {
		t.Fatalf("timesteps %v, want %v", ts, timesteps)
	}
	for i := range ts {
		if !closeTo(ts[i], timesteps[i], 2e-6) {
			t.Fatalf("timesteps %v, want %v", ts, timesteps)
		}
	}
	if sigmas != nil {
		sig := s.Sigmas()
		if len(sig) != len(sigmas) {
			t.Fatalf("sigmas %v, want %v", sig, sigmas)
		}
		for i := range sig {
			if !closeTo(sig[i], sigmas[i], 2e-6) {
				t.Errorf("σ[%d] = %.9g, want %.9g", i, sig[i], sigmas[i])
			}
		}
	}
	if strength == 1 && !closeTo(s.InitNoiseSigma(), initSigma, 2e-6) {
		t.Errorf("init noise sigma %.9g, want %.9g", s.InitNoiseSigma(), initSigma)
	}
	shape := []int64{1, 4, 4, 4}
	x := NewGenerator(1).Randn(shape...).Data
	if strength < 1 {
		s.AddNoise(x, NewGenerator(2).Randn(shape...).Data)
		return x
	}
	k := float32(s.InitNoiseSigma())
	for i := range x {
		x[i] *= k
	}
	return x
}

func compare(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if !closeTo(float64(got[i]), want[i], 2e-5) {
			bad++
			if bad <= 4 {
				t.Errorf("%s[%d] = %.9g, want %.9g", what, i, got[i], want[i])
			}
		}
	}
}

func TestStepDoesNotAllocate(t *testing.T) {
	for _, name := range SchedulerNames() {
		s, err := NewScheduler(name, sd15, SchedulerOptions{Steps: 40, Eta: 1})
		if err != nil {
			t.Fatal(err)
		}
		g := NewGenerator(3)
		x := g.Randn(1, 4, 64, 64).Data
		m := g.Randn(1, 4, 64, 64).Data
		s.Step(0, m, x, g) // allocates the scratch buffers once
		k := 1
		allocs := testing.AllocsPerRun(5, func() {
			if err := s.Step(k, m, x, g); err != nil {
				t.Fatal(err)
			}
			k++
		})
		if allocs != 0 {
			t.Errorf("%s: Step allocates %v times per call", name, allocs)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkStep measures the sampler's own work per step on a 512×512
// latent (one image): the scheduler update, plus the noise draw for the
// stochastic schedulers.
func BenchmarkStep(b *testing.B) {
	for _, name := range SchedulerNames() {
		b.Run(name, func(b *testing.B) {
			g := NewGenerator(3)
			x := g.Randn(1, 4, 64, 64).Data
			m := g.Randn(1, 4, 64, 64).Data
			b.ReportAllocs()
			for b.Loop() {
				s, err := NewScheduler(name, sd15, SchedulerOptions{Steps: 4})
				if err != nil {
					b.Fatal(err)
				}
				for k := range s.Timesteps() {
					if err := s.Step(k, m, x, g); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
