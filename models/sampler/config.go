package sampler

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Scheduler names, as manifests spell them.
const (
	// Euler is diffusers' EulerDiscreteScheduler.
	Euler = "euler"
	// EulerAncestral is EulerAncestralDiscreteScheduler: Euler with fresh
	// noise every step.
	EulerAncestral = "euler_a"
	// DDIM is DDIMScheduler, deterministic at eta 0.
	DDIM = "ddim"
	// DPMPP2M is DPMSolverMultistepScheduler with its defaults
	// (dpmsolver++, second order, midpoint).
	DPMPP2M = "dpmpp_2m"
	// LCM is LCMScheduler for latent-consistency-distilled models.
	LCM = "lcm"
	// Heun is HeunDiscreteScheduler: Euler corrected by a second model
	// call per step (all steps but the last).
	Heun = "heun"
	// UniPC is UniPCMultistepScheduler with its defaults (bh2, second
	// order, predicting x0): one model call per step, whose output also
	// corrects the previous step.
	UniPC = "unipc"
	// DPMPP2MSDE is DPMSolverMultistepScheduler with algorithm_type
	// sde-dpmsolver++: DPM++ 2M with fresh noise every step.
	DPMPP2MSDE = "dpmpp_2m_sde"
)

// SchedulerNames lists the schedulers kiln implements.
func SchedulerNames() []string {
	return []string{Euler, EulerAncestral, DDIM, DPMPP2M, LCM, Heun, UniPC, DPMPP2MSDE}
}

// classNames maps diffusers' scheduler class names (the _class_name of
// scheduler_config.json) to kiln's scheduler names.
var classNames = map[string]string{
	"EulerDiscreteScheduler":          Euler,
	"EulerAncestralDiscreteScheduler": EulerAncestral,
	"DDIMScheduler":                   DDIM,
	"DPMSolverMultistepScheduler":     DPMPP2M,
	"LCMScheduler":                    LCM,
	"HeunDiscreteScheduler":           Heun,
	"UniPCMultistepScheduler":         UniPC,
}

// DefaultScheduler picks the scheduler a model folder was published with,
// from the _class_name of its scheduler_config.json. Classes kiln does not
// implement (PNDM, which SD 1.x ships with, LMS, ...) fall back to Euler,
// the default of SDXL and SD-Turbo and a good general sampler.
func DefaultScheduler(raw map[string]any) string {
	if name, ok := raw["_class_name"].(string); ok {
		if s, ok := classNames[name]; ok {
			if algo, _ := raw["algorithm_type"].(string); s == DPMPP2M && algo == "sde-dpmsolver++" {
				return DPMPP2MSDE
			}
			return s
		}
	}
	return Euler
}

// SchedulerConfig holds the scheduler_config.json fields the schedulers
// read, after defaults were applied.
type SchedulerConfig struct {
	NumTrainTimesteps int
	BetaStart         float64
	BetaEnd           float64
	// BetaSchedule is linear, scaled_linear or squaredcos_cap_v2.
	BetaSchedule string
	// TrainedBetas, when not empty, replaces the beta schedule.
	TrainedBetas []float64
	// PredictionType is epsilon, v_prediction or sample.
	PredictionType string
	// TimestepSpacing is leading, linspace or trailing.
	TimestepSpacing string
	StepsOffset     int
	// SetAlphaToOne makes DDIM's and LCM's last step go to ᾱ = 1.
	SetAlphaToOne bool
	// ClipSample clamps DDIM's and LCM's predicted x0 to ±ClipSampleRange.
	ClipSample      bool
	ClipSampleRange float64
	// UseKarrasSigmas spaces Euler's and DPM++'s noise levels as Karras
	// et al. (2022) do.
	UseKarrasSigmas bool
	// RescaleBetasZeroSNR rescales the betas to a zero terminal SNR.
	RescaleBetasZeroSNR bool
	// FinalSigmasType is DPM++'s last noise level: zero or sigma_min.
	FinalSigmasType string
	// OriginalInferenceSteps is LCM's distillation schedule length.
	OriginalInferenceSteps int
	// TimestepScaling is LCM's boundary-condition timestep scale.
	TimestepScaling float64
}

// defaultConfig returns the defaults of a scheduler class's constructor,
// which diffusers' from_config uses for every field the JSON lacks.
func defaultConfig(name string) SchedulerConfig {
	c := SchedulerConfig{
		NumTrainTimesteps: 1000,
		BetaStart:         0.0001,
		BetaEnd:           0.02,
		BetaSchedule:      "linear",
		PredictionType:    "epsilon",
		TimestepSpacing:   "linspace",
		ClipSampleRange:   1,
		FinalSigmasType:   "zero",
	}
	switch name {
	case DDIM:
		c.ClipSample = true
		c.SetAlphaToOne = true
		c.TimestepSpacing = "leading"
	case LCM:
		c.BetaStart = 0.00085
		c.BetaEnd = 0.012
		c.BetaSchedule = "scaled_linear"
		c.OriginalInferenceSteps = 50
		c.SetAlphaToOne = true
		c.TimestepSpacing = "leading"
		c.TimestepScaling = 10
	}
	return c
}

// ParseSchedulerConfig reads the fields of a decoded scheduler_config.json
// that scheduler name uses, taking that scheduler's own default for each
// missing (or null) field, as diffusers' from_config does. Fields other
// schedulers use are ignored. A field of the wrong type or an unsupported
// value is an error naming the field.
func ParseSchedulerConfig(name string, raw map[string]any) (SchedulerConfig, error) {
	if !slices.Contains(SchedulerNames(), name) {
		return SchedulerConfig{}, fmt.Errorf("unknown scheduler %q (want one of %s)", name, strings.Join(SchedulerNames(), ", "))
	}
	c := defaultConfig(name)
	p := fieldParser{raw: raw}
	p.int("num_train_timesteps", &c.NumTrainTimesteps)
	p.float("beta_start", &c.BetaStart)
	p.float("beta_end", &c.BetaEnd)
	p.str("beta_schedule", &c.BetaSchedule, "linear", "scaled_linear", "squaredcos_cap_v2")
	p.floats("trained_betas", &c.TrainedBetas)
	p.str("prediction_type", &c.PredictionType, "epsilon", "v_prediction", "sample")
	p.str("timestep_spacing", &c.TimestepSpacing, "leading", "linspace", "trailing")
	p.int("steps_offset", &c.StepsOffset)
	p.bool("rescale_betas_zero_snr", &c.RescaleBetasZeroSNR)
	switch name {
	case DDIM, LCM:
		p.bool("set_alpha_to_one", &c.SetAlphaToOne)
		p.bool("clip_sample", &c.ClipSample)
		p.float("clip_sample_range", &c.ClipSampleRange)
		var thresholding bool
		p.bool("thresholding", &thresholding)
		if thresholding && p.err == nil {
			p.err = fmt.Errorf("thresholding: dynamic thresholding is not supported (set it to false)")
		}
	}
	if KarrasApplies(name) {
		p.bool("use_karras_sigmas", &c.UseKarrasSigmas)
	}
	switch name {
	case Euler:
		var interp, ttype string
		p.str("interpolation_type", &interp, "linear")
		p.str("timestep_type", &ttype, "discrete")
	case DPMPP2M, DPMPP2MSDE, UniPC:
		p.str("final_sigmas_type", &c.FinalSigmasType, "zero", "sigma_min")
		var algo, solver string
		var order int
		if name == UniPC {
			p.str("solver_type", &solver, "bh2")
		} else {
			// The name picks the algorithm: a folder published with
			// either DPM++ variant runs the other when asked to.
			p.str("algorithm_type", &algo, "dpmsolver++", "sde-dpmsolver++")
			p.str("solver_type", &solver, "midpoint")
		}
		p.int("solver_order", &order)
		if order != 0 && order != 2 && p.err == nil {
			p.err = fmt.Errorf("solver_order: %d is not supported (%s is second order)", order, name)
		}
	case LCM:
		p.int("original_inference_steps", &c.OriginalInferenceSteps)
		p.float("timestep_scaling", &c.TimestepScaling)
	}
	if p.err != nil {
		return c, fmt.Errorf("scheduler config: %w", p.err)
	}
	switch {
	case c.NumTrainTimesteps < 2 || c.NumTrainTimesteps > 100000:
		return c, fmt.Errorf("scheduler config: num_train_timesteps %d is out of range (2..100000)", c.NumTrainTimesteps)
	case len(c.TrainedBetas) > 0 && len(c.TrainedBetas) != c.NumTrainTimesteps:
		return c, fmt.Errorf("scheduler config: trained_betas has %d values, want num_train_timesteps = %d", len(c.TrainedBetas), c.NumTrainTimesteps)
	case !(c.BetaStart > 0 && c.BetaEnd > 0 && c.BetaStart < 1 && c.BetaEnd < 1):
		return c, fmt.Errorf("scheduler config: beta_start %g and beta_end %g must lie in (0, 1)", c.BetaStart, c.BetaEnd)
	case c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps:
		return c, fmt.Errorf("scheduler config: steps_offset %d is out of range", c.StepsOffset)
	case name == LCM && (c.OriginalInferenceSteps < 1 || c.OriginalInferenceSteps > c.NumTrainTimesteps):
		return c, fmt.Errorf("scheduler config: original_inference_steps %d must lie in 1..num_train_timesteps (%d)", c.OriginalInferenceSteps, c.NumTrainTimesteps)
	}
	return c, nil
}

// KarrasApplies reports whether scheduler name can space its noise levels
// as Karras et al. (2022) do (use_karras_sigmas).
func KarrasApplies(name string) bool {
	switch name {
	case Euler, Heun, DPMPP2M, DPMPP2MSDE, UniPC:
		return true
	}
	return false
}

// SpacingApplies reports whether scheduler name takes a timestep_spacing
// (LCM takes its timesteps from its distillation schedule).
func SpacingApplies(name string) bool { return name != LCM && slices.Contains(SchedulerNames(), name) }

// fieldParser decodes fields of a generic JSON object, keeping the first
// error.
type fieldParser struct {
	raw map[string]any
	err error
}

func (p *fieldParser) get(key string) (any, bool) {
	if p.err != nil || p.raw == nil {
		return nil, false
	}
	v, ok := p.raw[key]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

func (p *fieldParser) float(key string, dst *float64) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		p.err = fmt.Errorf("%s: want a number, got %v", key, v)
		return
	}
	*dst = f
}

func (p *fieldParser) int(key string, dst *int) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		p.err = fmt.Errorf("%s: want an integer, got %v", key, v)
		return
	}
	*dst = int(f)
}

func (p *fieldParser) bool(key string, dst *bool) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	b, ok := v.(bool)
	if !ok {
		p.err = fmt.Errorf("%s: want true or false, got %v", key, v)
		return
	}
	*dst = b
}

func (p *fieldParser) str(key string, dst *string, allowed ...string) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	s, ok := v.(string)
	if !ok {
		p.err = fmt.Errorf("%s: want a string, got %v", key, v)
		return
	}
	if !slices.Contains(allowed, s) {
		p.err = fmt.Errorf("%s: %q is not supported (want %s)", key, s, strings.Join(allowed, " or "))
		return
	}
	*dst = s
}

func (p *fieldParser) floats(key string, dst *[]float64) {
	v, ok := p.get(key)
	if !ok {
		return
	}
	list, ok := v.([]any)
	if !ok {
		p.err = fmt.Errorf("%s: want a list of numbers", key)
		return
	}
	out := make([]float64, len(list))
	for i, e := range list {
		f, ok := e.(float64)
		if !ok || !(f >= 0 && f < 1) {
			p.err = fmt.Errorf("%s[%d]: want a number in [0, 1), got %v", key, i, e)
			return
		}
		out[i] = f
	}
	*dst = out
}
