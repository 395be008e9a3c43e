package sampler

import (
	"fmt"
	"math"
	"slices"
)

// alphasCumprod returns ᾱ_t = Π(1-β) for every training timestep, rounded
// to float32 as diffusers' float32 tensors hold them (torch accumulates the
// product in double and stores floats).
func alphasCumprod(cfg SchedulerConfig) []float64 {
	n := cfg.NumTrainTimesteps
	betas := make([]float64, n)
	switch {
	case len(cfg.TrainedBetas) > 0:
		for i, b := range cfg.TrainedBetas {
			betas[i] = float64(float32(b))
		}
	case cfg.BetaSchedule == "scaled_linear":
		lo, hi := math.Sqrt(cfg.BetaStart), math.Sqrt(cfg.BetaEnd)
		for i := range betas {
			v := float32(lo + (hi-lo)*float64(i)/float64(n-1))
			betas[i] = float64(v * v)
		}
	case cfg.BetaSchedule == "squaredcos_cap_v2":
		alphaBar := func(t float64) float64 {
			c := math.Cos((t + 0.008) / 1.008 * math.Pi / 2)
			return c * c
		}
		for i := range betas {
			t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
			betas[i] = float64(float32(min(1-alphaBar(t2)/alphaBar(t1), 0.999)))
		}
	default: // linear
		for i := range betas {
			betas[i] = float64(float32(cfg.BetaStart + (cfg.BetaEnd-cfg.BetaStart)*float64(i)/float64(n-1)))
		}
	}
	if cfg.RescaleBetasZeroSNR {
		betas = rescaleZeroSNR(betas)
	}
	ac := make([]float64, n)
	prod := 1.0
	for i, b := range betas {
		prod *= float64(float32(1 - b))
		ac[i] = float64(float32(prod))
	}
	return ac
}

// rescaleZeroSNR shifts and scales sqrt(ᾱ) so that the last timestep has
// zero signal (Lin et al., "Common Diffusion Noise Schedules and Sample
// Steps are Flawed", algorithm 1).
func rescaleZeroSNR(betas []float64) []float64 {
	n := len(betas)
	sq := make([]float64, n)
	prod := 1.0
	for i, b := range betas {
		prod *= 1 - b
		sq[i] = math.Sqrt(prod)
	}
	first, last := sq[0], sq[n-1]
	for i := range sq {
		sq[i] = (sq[i] - last) * first / (first - last)
	}
	out := make([]float64, n)
	for i := range out {
		bar := sq[i] * sq[i]
		if i == 0 {
			out[i] = 1 - bar
			continue
		}
		prev := sq[i-1] * sq[i-1]
		out[i] = 1 - bar/prev
	}
	return out
}

// trainingSigmas returns σ_t = sqrt((1-ᾱ_t)/ᾱ_t) per training timestep,
// rounded to float32 as in diffusers.
func trainingSigmas(ac []float64) []float64 {
	s := make([]float64, len(ac))
	for i, a := range ac {
		s[i] = float64(float32(math.Sqrt(float64(float32(float32(1-a) / float32(a))))))
	}
	return s
}

// spacedInts is DDIM's integer timestep spacing.
func spacedInts(cfg SchedulerConfig, steps int) []float64 {
	T := cfg.NumTrainTimesteps
	ts := make([]float64, 0, steps)
	switch cfg.TimestepSpacing {
	case "linspace":
		for _, v := range linspace(0, float64(T-1), steps) {
			ts = append(ts, math.RoundToEven(v))
		}
		slices.Reverse(ts)
	case "trailing":
		for _, v := range arangeDown(float64(T), float64(T)/float64(steps)) {
			ts = append(ts, math.RoundToEven(v)-1)
		}
	default: // leading
		ratio := T / steps
		for i := steps - 1; i >= 0; i-- {
			ts = append(ts, float64(i*ratio+cfg.StepsOffset))
		}
	}
	return ts
}

// linspace is numpy.linspace(start, stop, n) in float64.
func linspace(start, stop float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(n-1)
	for i := range out {
		out[i] = start + float64(i)*step
	}
	out[n-1] = stop
	return out
}

// arangeDown is numpy.arange(start, 0, -step) in float64: its length is
// ceil(start/step) and its values start + i·delta with delta taken from
// the first two values, as numpy fills them.
func arangeDown(start, step float64) []float64 {
	n := int(math.Ceil((0 - start) / -step))
	out := make([]float64, n)
	delta := (start - step) - start
	for i := range out {
		out[i] = start + float64(i)*delta
	}
	return out
}

// eulerSchedule is EulerDiscreteScheduler.set_timesteps (also used by the
// ancestral variant, which has no Karras option): float timesteps, σ
// interpolated at them, optionally respaced by Karras, then a final 0.
func (s *Scheduler) eulerSchedule(steps int) {
	cfg := s.cfg
	T := cfg.NumTrainTimesteps
	var ts []float64
	switch cfg.TimestepSpacing {
	case "linspace":
		for _, v := range linspace(0, float64(T-1), steps) {
			ts = append(ts, float64(float32(v)))
		}
		slices.Reverse(ts)
	case "trailing":
		for _, v := range arangeDown(float64(T), float64(T)/float64(steps)) {
			ts = append(ts, math.RoundToEven(v)-1)
		}
	default: // leading
		ratio := T / steps
		for i := steps - 1; i >= 0; i-- {
			ts = append(ts, float64(i*ratio+cfg.StepsOffset))
		}
	}
	train := trainingSigmas(s.alphasCumprod)
	if cfg.RescaleBetasZeroSNR {
		train[T-1] = float64(float32(math.Sqrt((1 - math.Ldexp(1, -24)) / math.Ldexp(1, -24))))
	}
	sig := make([]float64, len(ts))
	for i, t := range ts {
		sig[i] = interp(t, train)
	}
	if cfg.UseKarrasSigmas {
		sig = karras(sig[len(sig)-1], sig[0], steps)
		logs := logSigmas(train)
		for i, v := range sig {
			ts[i] = float64(float32(sigmaToT(v, logs)))
		}
	}
	for i := range sig {
		sig[i] = float64(float32(sig[i]))
	}
	s.timesteps = ts
	s.sigmas = append(sig, 0)
}

// dpmSchedule is DPMSolverMultistepScheduler.set_timesteps: integer
// timesteps from steps+1 points without the last, σ interpolated, or
// Karras σ from the full training range with timesteps rounded back.
func (s *Scheduler) dpmSchedule(steps int) {
	cfg := s.cfg
	T := cfg.NumTrainTimesteps
	var ts []float64
	switch cfg.TimestepSpacing {
	case "linspace":
		pts := linspace(0, float64(T-1), steps+1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, math.RoundToEven(pts[i]))
		}
	case "trailing":
		for _, v := range arangeDown(float64(T), float64(T)/float64(steps)) {
			ts = append(ts, math.RoundToEven(v)-1)
		}
	default: // leading
		ratio := T / (steps + 1)
		for i := steps; i >= 1; i-- {
			ts = append(ts, float64(i*ratio+cfg.StepsOffset))
		}
	}
	ac := s.alphasCumprod
	if cfg.RescaleBetasZeroSNR {
		ac = slices.Clone(ac)
		ac[T-1] = math.Ldexp(1, -24)
	}
	train := trainingSigmas(ac)
	var sig []float64
	if cfg.UseKarrasSigmas {
		sig = karras(train[0], train[T-1], steps)
		logs := logSigmas(train)
		ts = ts[:0]
		for _, v := range sig {
			t := sigmaToT(v, logs)
			if cfg.BetaSchedule != "squaredcos_cap_v2" {
				t = math.RoundToEven(t)
			}
			ts = append(ts, math.Trunc(t))
		}
	} else {
		sig = make([]float64, len(ts))
		for i, t := range ts {
			sig[i] = interp(t, train)
		}
	}
	last := 0.0
	if cfg.FinalSigmasType == "sigma_min" {
		last = math.Sqrt((1 - ac[0]) / ac[0])
	}
	for i := range sig {
		sig[i] = float64(float32(sig[i]))
	}
	s.timesteps = ts
	s.sigmas = append(sig, float64(float32(last)))
}

// lcmSchedule is LCMScheduler.set_timesteps: the distillation schedule of
// original_inference_steps timesteps (cut by strength for img2img), from
// which steps evenly spaced ones are taken.
func (s *Scheduler) lcmSchedule(steps int, strength float64) error {
	cfg := s.cfg
	k := cfg.NumTrainTimesteps / cfg.OriginalInferenceSteps
	n := int(float64(cfg.OriginalInferenceSteps) * strength)
	if n/steps < 1 {
		return errLCMSteps(cfg.OriginalInferenceSteps, strength, steps)
	}
	if steps > cfg.OriginalInferenceSteps {
		return errLCMSteps(cfg.OriginalInferenceSteps, strength, steps)
	}
	// origin[j] = (j+1)·k - 1 for j < n, taken in reverse.
	idx := linspaceNoEnd(float64(n), steps)
	ts := make([]float64, steps)
	for i, f := range idx {
		j := n - 1 - int(math.Floor(f))
		ts[i] = float64((j+1)*k - 1)
	}
	s.timesteps = ts
	return nil
}

func errLCMSteps(orig int, strength float64, steps int) error {
	return fmt.Errorf("lcm: %d steps do not fit the distillation schedule of original_inference_steps %d × strength %g: use fewer steps or a higher strength",
		steps, orig, strength)
}

// linspaceNoEnd is numpy.linspace(0, stop, n, endpoint=False).
func linspaceNoEnd(stop float64, n int) []float64 {
	out := make([]float64, n)
	step := stop / float64(n)
	for i := range out {
		out[i] = float64(i) * step
	}
	return out
}

// interp is numpy.interp(t, arange(len(ys)), ys).
func interp(t float64, ys []float64) float64 {
	if t <= 0 {
		return ys[0]
	}
	if t >= float64(len(ys)-1) {
		return ys[len(ys)-1]
	}
	i := int(math.Floor(t))
	f := t - float64(i)
	if f == 0 {
		return ys[i]
	}
	return ys[i] + (ys[i+1]-ys[i])*f
}

// karras is the noise schedule of Karras et al. (2022), ρ = 7, from
// sigmaMax down to sigmaMin in n levels.
func karras(sigmaMin, sigmaMax float64, n int) []float64 {
	const rho = 7.0
	minInv, maxInv := math.Pow(sigmaMin, 1/rho), math.Pow(sigmaMax, 1/rho)
	out := make([]float64, n)
	for i, r := range linspace(0, 1, n) {
		out[i] = math.Pow(maxInv+r*(minInv-maxInv), rho)
	}
	return out
}

func logSigmas(train []float64) []float64 {
	out := make([]float64, len(train))
	for i, v := range train {
		out[i] = float64(float32(math.Log(v)))
	}
	return out
}

// sigmaToT maps a noise level back to a fractional training timestep by
// linear interpolation of log σ, as diffusers' _sigma_to_t does.
func sigmaToT(sigma float64, logs []float64) float64 {
	ls := math.Log(max(sigma, 1e-10))
	// low is the last index whose log σ is <= ls, clipped to len-2.
	low := 0
	for i, v := range logs {
		if ls-v >= 0 {
			low = i
		}
	}
	low = min(low, len(logs)-2)
	lo, hi := logs[low], logs[low+1]
	w := (lo - ls) / (lo - hi)
	w = min(max(w, 0), 1)
	return (1-w)*float64(low) + w*float64(low+1)
}
