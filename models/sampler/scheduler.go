package sampler

import (
	"fmt"
	"math"
)

// SchedulerOptions are the per-generation settings of a scheduler.
type SchedulerOptions struct {
	// Steps is the number of inference steps (before strength cuts the
	// schedule for img2img).
	Steps int
	// Strength in (0, 1] starts an img2img run part-way through the
	// schedule, as diffusers' img2img pipelines do; 0 means 1 (txt2img).
	Strength float64
	// Eta is DDIM's noise scale (0: deterministic DDIM, 1: DDPM-like).
	Eta float64
	// Karras, when set, overrides the config's use_karras_sigmas (see
	// KarrasApplies).
	Karras *bool
	// Spacing, when not empty, overrides the config's timestep_spacing:
	// leading, linspace or trailing (see SpacingApplies).
	Spacing string
}

// Scheduler is one configured noise schedule: the timesteps a generation
// runs, how the UNet input is scaled at each, and how a step turns the
// model output into the next latents. It follows diffusers' scheduler of
// the same name step for step (float32 data, float64 coefficients).
//
// A Scheduler keeps state across Step calls (DPM++'s previous prediction,
// scratch noise) and is used by one generation at a time.
type Scheduler struct {
	name string
	cfg  SchedulerConfig
	eta  float64

	// alphasCumprod is ᾱ per training timestep, as float32 values.
	alphasCumprod []float64
	// timesteps and sigmas are the full inference schedule; sigmas has
	// one more entry (the final level) for Euler and DPM++.
	timesteps []float64
	sigmas    []float64
	// start is the index of the first step that runs (img2img).
	start int

	noise []float32
	// prevX0 is DPM++'s previous prediction, or the sample Heun's first
	// stage started from.
	prevX0 []float32
	// lowerOrder counts DPM++ and UniPC steps taken, which picks first or
	// second order.
	lowerOrder int
	// uni holds UniPC's previous two predictions and the sample its last
	// predictor started from; uniOrder is that predictor's order.
	uni      [3][]float32
	uniOrder int
}

// eulerLike reports whether scheduler name works on x = x0 + σ·ε with the
// Euler schedule (scaled model input, init noise σ_max).
func eulerLike(name string) bool { return name == Euler || name == EulerAncestral || name == Heun }

// dpmLike reports whether scheduler name uses DPM-Solver's schedule.
func dpmLike(name string) bool { return name == DPMPP2M || name == DPMPP2MSDE || name == UniPC }

// NewScheduler builds scheduler name (one of SchedulerNames) from a decoded scheduler_config.json (nil for all
// defaults) and the generation's options.
func NewScheduler(name string, raw map[string]any, opt SchedulerOptions) (*Scheduler, error) {
	cfg, err := ParseSchedulerConfig(name, raw)
	if err != nil {
		return nil, err
	}
	if opt.Karras != nil {
		if *opt.Karras && !KarrasApplies(name) {
			return nil, fmt.Errorf("karras sigmas do not apply to %s", name)
		}
		cfg.UseKarrasSigmas = *opt.Karras
	}
	if opt.Spacing != "" {
		switch {
		case !SpacingApplies(name):
			return nil, fmt.Errorf("timestep spacing does not apply to %s", name)
		case opt.Spacing != "leading" && opt.Spacing != "linspace" && opt.Spacing != "trailing":
			return nil, fmt.Errorf("timestep spacing %q is not leading, linspace or trailing", opt.Spacing)
		}
		cfg.TimestepSpacing = opt.Spacing
	}
	if opt.Steps < 1 || opt.Steps > cfg.NumTrainTimesteps {
		return nil, fmt.Errorf("steps %d out of range: want 1..%d", opt.Steps, cfg.NumTrainTimesteps)
	}
	strength := opt.Strength
	if strength == 0 {
		strength = 1
	}
	if !(strength > 0 && strength <= 1) {
		return nil, fmt.Errorf("strength %g out of range: want a value in (0, 1]", opt.Strength)
	}
	if opt.Eta < 0 || math.IsNaN(opt.Eta) {
		return nil, fmt.Errorf("eta %g out of range: want 0 or more", opt.Eta)
	}
	s := &Scheduler{name: name, cfg: cfg, eta: opt.Eta}
	s.alphasCumprod = alphasCumprod(cfg)
	switch name {
	case Euler, EulerAncestral, Heun:
		s.eulerSchedule(opt.Steps)
		if name == Heun {
			s.heunSchedule()
		}
	case DPMPP2M, DPMPP2MSDE, UniPC:
		s.dpmSchedule(opt.Steps)
	case DDIM:
		s.timesteps = spacedInts(cfg, opt.Steps)
	case LCM:
		if err := s.lcmSchedule(opt.Steps, strength); err != nil {
			return nil, err
		}
	}
	for _, t := range s.timesteps {
		if !(t >= 0 && t <= float64(cfg.NumTrainTimesteps-1)) {
			return nil, fmt.Errorf("timestep %g is outside 0..%d (check timestep_spacing and steps_offset for %d steps)",
				t, cfg.NumTrainTimesteps-1, opt.Steps)
		}
	}
	if name != LCM {
		// diffusers' img2img get_timesteps: run the last
		// int(steps·strength) steps.
		init := min(int(float64(opt.Steps)*strength), opt.Steps)
		s.start = max(opt.Steps-init, 0)
		if name == Heun {
			// Two entries per step but the last (diffusers' order 2).
			s.start *= 2
		}
		if s.start >= len(s.timesteps) {
			return nil, fmt.Errorf("strength %g leaves no step to run at %d steps: raise strength or steps", strength, opt.Steps)
		}
	}
	return s, nil
}

// Name returns the scheduler's name.
func (s *Scheduler) Name() string { return s.name }

// Config returns the configuration in effect.
func (s *Scheduler) Config() SchedulerConfig { return s.cfg }

// Timesteps returns the timesteps that run, first to last (the tail of the
// schedule for img2img): one per model call, so Heun lists every step
// but the last twice.
func (s *Scheduler) Timesteps() []float64 { return s.timesteps[s.start:] }

// Sigmas returns the noise levels of the Euler and DPM-Solver families
// for the steps that run plus the final level (Heun's interleaved as its
// timesteps are); nil for DDIM and LCM.
func (s *Scheduler) Sigmas() []float64 {
	if s.sigmas == nil {
		return nil
	}
	return s.sigmas[s.start:]
}

// InitNoiseSigma is the factor txt2img multiplies the initial noise by.
func (s *Scheduler) InitNoiseSigma() float64 {
	if !eulerLike(s.name) {
		return 1
	}
	m := 0.0
	for _, v := range s.sigmas {
		m = max(m, v)
	}
	if s.cfg.TimestepSpacing == "leading" {
		return math.Sqrt(m*m + 1)
	}
	return m
}

// InputScale is the factor the latents are multiplied by before the UNet
// sees them at step i (of Timesteps): 1/sqrt(σ²+1) for Euler, 1 otherwise.
func (s *Scheduler) InputScale(i int) float64 {
	if !eulerLike(s.name) {
		return 1
	}
	sig := s.sigmas[s.start+i]
	return 1 / math.Sqrt(sig*sig+1)
}

// Stochastic reports whether Step draws noise from the generator.
func (s *Scheduler) Stochastic() bool {
	switch s.name {
	case EulerAncestral, LCM, DPMPP2MSDE:
		return true
	case DDIM:
		return s.eta > 0
	}
	return false
}

// AddNoise noises clean latents x0 to the first step that runs, in place:
// x0 becomes the img2img starting latents. noise has x0's length.
func (s *Scheduler) AddNoise(x0, noise []float32) {
	var a, b float64
	switch s.name {
	case Euler, EulerAncestral, Heun:
		a, b = 1, s.sigmas[s.start]
	case DPMPP2M, DPMPP2MSDE, UniPC:
		alpha, sigma := vpFromSigma(s.sigmas[s.start])
		a, b = alpha, sigma
	default:
		ac := s.alphasCumprod[int(s.timesteps[s.start])]
		a, b = math.Sqrt(ac), math.Sqrt(1-ac)
	}
	fa, fb := float32(a), float32(b)
	for i, v := range x0 {
		x0[i] = fa*v + fb*noise[i]
	}
}

// vpFromSigma converts a noise level σ of x = x0 + σ·ε into the
// variance-preserving pair (α, σ') of x = α·x0 + σ'·ε.
func vpFromSigma(sigma float64) (alpha, sigmaT float64) {
	alpha = 1 / math.Sqrt(sigma*sigma+1)
	return alpha, sigma * alpha
}

// coeffs are one step's update as a linear combination:
//
//	x0   = clamp(ax·s + bx·m)       (clamped when clip is set)
//	eps  = ae·s + be·m
//	next = cs·s + cx·x0 + ce·eps + cp·prevX0 + cn·noise
//
// where s is the sample and m the model output. Every scheduler step here
// is of this form, so one loop applies them all without temporaries.
type coeffs struct {
	ax, bx, ae, be     float64
	cs, cx, ce, cp, cn float64
	clip               float64 // 0: no clamp
	storeX0            bool
	// storeSample keeps the sample in prevX0 (Heun's first stage).
	storeSample bool
}

// predict returns x0 = ax·s + bx·m and eps = ae·s + be·m for a variance-
// preserving x = α·x0 + σ·ε under the configured prediction type.
func (s *Scheduler) predict(alpha, sigma float64) (ax, bx, ae, be float64) {
	switch s.cfg.PredictionType {
	case "v_prediction":
		return alpha, -sigma, sigma, alpha
	case "sample":
		return 0, 1, 1 / sigma, -alpha / sigma
	default: // epsilon
		return 1 / alpha, -sigma / alpha, 0, 1
	}
}

// Step advances sample in place by step i (of Timesteps) given the model
// output for that step (guidance already applied). Stochastic schedulers
// draw noise of sample's size from g, as diffusers draws it with the
// pipeline's generator.
func (s *Scheduler) Step(i int, modelOut, sample []float32, g *Generator) error {
	return s.step(i, modelOut, nil, 0, sample, g)
}

// step is Step on the model output u, or, when cond is not nil, on the
// guided output u + w·(cond − u) computed element by element as the step
// reads it (u is then the unconditional prediction), which saves the
// sampler a pass over the latents and a buffer.
func (s *Scheduler) step(i int, u, cond []float32, w float32, sample []float32, g *Generator) error {
	if len(u) != len(sample) || cond != nil && len(cond) != len(sample) {
		return fmt.Errorf("scheduler step: model output has %d values, latents %d", len(u), len(sample))
	}
	k := s.start + i
	if i < 0 || k >= len(s.timesteps) {
		return fmt.Errorf("scheduler step %d out of range (%d steps)", i, len(s.timesteps)-s.start)
	}
	var c coeffs
	switch s.name {
	case Euler, EulerAncestral:
		c = s.eulerStep(k)
	case DDIM:
		c = s.ddimStep(k)
	case DPMPP2M, DPMPP2MSDE:
		c = s.dpmStep(k, len(sample))
	case LCM:
		c = s.lcmStep(k)
	case Heun:
		c = s.heunStep(k, len(sample))
	case UniPC:
		s.unipcStep(k, u, cond, w, sample)
		return nil
	}
	var noise []float32
	if s.Stochastic() && !(s.name == LCM && k == len(s.timesteps)-1) {
		if g == nil {
			return fmt.Errorf("scheduler %s needs a random generator", s.name)
		}
		if cap(s.noise) < len(sample) {
			s.noise = make([]float32, len(sample))
		}
		noise = s.noise[:len(sample)]
		g.FillNormal(noise)
	}
	apply(c, sample, u, cond, w, s.prevX0, noise)
	return nil
}

// apply runs one step update over all elements, in place on sample. The
// model output is m, or m + w·(cond − m) when cond is not nil.
func apply(c coeffs, sample, m, cond []float32, w float32, prev, noise []float32) {
	ax, bx, ae, be := float32(c.ax), float32(c.bx), float32(c.ae), float32(c.be)
	cs, cx, ce, cp, cn := float32(c.cs), float32(c.cx), float32(c.ce), float32(c.cp), float32(c.cn)
	lim := float32(c.clip)
	m = m[:len(sample)]
	if lim == 0 && ce == 0 && cp == 0 && noise == nil && !c.storeX0 && !c.storeSample {
		// Euler, DDIM with eta 0 and LCM's last step: the same sums as
		// below, without the per-element branches.
		if cond != nil {
			cond = cond[:len(sample)]
			for j, sv := range sample {
				uv := m[j]
				mv := float32(uv + w*(cond[j]-uv))
				x0 := ax*sv + bx*mv
				sample[j] = cs*sv + cx*x0
			}
			return
		}
		for j, sv := range sample {
			x0 := ax*sv + bx*m[j]
			sample[j] = cs*sv + cx*x0
		}
		return
	}
	for j, sv := range sample {
		mv := m[j]
		if cond != nil {
			mv = float32(mv + w*(cond[j]-mv))
		}
		x0 := ax*sv + bx*mv
		if lim > 0 {
			x0 = min(max(x0, -lim), lim)
		}
		out := cs*sv + cx*x0
		if ce != 0 {
			out += ce * (ae*sv + be*mv)
		}
		if cp != 0 {
			out += cp * prev[j]
		}
		if noise != nil {
			out += cn * noise[j]
		}
		if c.storeX0 {
			prev[j] = x0
		}
		if c.storeSample {
			prev[j] = sv
		}
		sample[j] = out
	}
}

// eulerStep is EulerDiscreteScheduler.step (no churn) and, for euler_a,
// EulerAncestralDiscreteScheduler.step.
func (s *Scheduler) eulerStep(k int) coeffs {
	sigma, next := s.sigmas[k], s.sigmas[k+1]
	var c coeffs
	c.ax, c.bx = s.eulerPredict(sigma)
	target := next
	if s.name == EulerAncestral {
		up := math.Sqrt(next * next * (sigma*sigma - next*next) / (sigma * sigma))
		target = math.Sqrt(next*next - up*up)
		c.cn = up
	}
	// derivative d = (s - x0)/σ; next = s + d·(target - σ).
	dt := (target - sigma) / sigma
	c.cs, c.cx = 1+dt, -dt
	return c
}

// eulerPredict returns x0 = ax·s + bx·m at noise level σ for the Euler
// family, which works on x = x0 + σ·ε: in variance-preserving terms, α =
// 1/sqrt(σ²+1) times the model input.
func (s *Scheduler) eulerPredict(sigma float64) (ax, bx float64) {
	switch s.cfg.PredictionType {
	case "v_prediction":
		return 1 / (sigma*sigma + 1), -sigma / math.Sqrt(sigma*sigma+1)
	case "sample":
		return 0, 1
	}
	return 1, -sigma
}

// ddimStep is DDIMScheduler.step with use_clipped_model_output false.
func (s *Scheduler) ddimStep(k int) coeffs {
	t := int(s.timesteps[k])
	prevT := t - s.cfg.NumTrainTimesteps/(len(s.timesteps))
	at := s.alphasCumprod[t]
	ap := s.finalAlpha()
	if prevT >= 0 {
		ap = s.alphasCumprod[prevT]
	}
	var c coeffs
	c.ax, c.bx, c.ae, c.be = s.predict(math.Sqrt(at), math.Sqrt(1-at))
	if s.cfg.ClipSample {
		c.clip = s.cfg.ClipSampleRange
	}
	variance := (1 - ap) / (1 - at) * (1 - at/ap)
	std := s.eta * math.Sqrt(variance)
	c.cx = math.Sqrt(ap)
	c.ce = math.Sqrt(max(1-ap-std*std, 0))
	c.cn = std
	return c
}

func (s *Scheduler) finalAlpha() float64 {
	if s.cfg.SetAlphaToOne {
		return 1
	}
	return s.alphasCumprod[0]
}

// dpmStep is DPMSolverMultistepScheduler.step for dpmsolver++ (or, for
// dpmpp_2m_sde, sde-dpmsolver++), order 2, midpoint, lower_order_final:
// first order on the first and last steps.
func (s *Scheduler) dpmStep(k, n int) coeffs {
	if cap(s.prevX0) < n {
		s.prevX0 = make([]float32, n)
	}
	s.prevX0 = s.prevX0[:n]
	alphaS, sigmaS := vpFromSigma(s.sigmas[k])
	alphaT, sigmaT := vpFromSigma(s.sigmas[k+1])
	var c coeffs
	c.ax, c.bx, _, _ = s.predict(alphaS, sigmaS)
	c.storeX0 = true
	last := k == len(s.timesteps)-1
	if s.sigmas[k+1] == 0 {
		// λ_t = +∞: the step lands on the prediction itself.
		c.cx = 1
		s.lowerOrder++
		return c
	}
	lambda := func(a, sg float64) float64 { return math.Log(a) - math.Log(sg) }
	h := lambda(alphaT, sigmaT) - lambda(alphaS, sigmaS)
	em1 := math.Expm1(-h) // e^{-h} - 1
	c.cs = sigmaT / sigmaS
	lowerFinal := last && (len(s.timesteps) < 15 || s.cfg.FinalSigmasType == "zero")
	if s.name == DPMPP2MSDE {
		// sde-dpmsolver++: next = (σ_t/σ_s)e^{-h}·s + α_t(1-e^{-2h})·(D0 + ½D1)
		// + σ_t·sqrt(1-e^{-2h})·noise.
		a := -alphaT * math.Expm1(-2*h)
		c.cs = sigmaT / sigmaS * math.Exp(-h)
		c.cn = sigmaT * math.Sqrt(-math.Expm1(-2*h))
		if s.lowerOrder < 1 || lowerFinal {
			c.cx = a
		} else {
			alphaP, sigmaP := vpFromSigma(s.sigmas[k-1])
			r0 := (lambda(alphaS, sigmaS) - lambda(alphaP, sigmaP)) / h
			c.cx = a * (1 + 0.5/r0)
			c.cp = -a * 0.5 / r0
		}
		s.lowerOrder++
		return c
	}
	if s.lowerOrder < 1 || lowerFinal {
		c.cx = -alphaT * em1
	} else {
		alphaP, sigmaP := vpFromSigma(s.sigmas[k-1])
		h0 := lambda(alphaS, sigmaS) - lambda(alphaP, sigmaP)
		r0 := h0 / h
		// D0 = x0, D1 = (x0 - x0prev)/r0;
		// next = cs·s - α_t(e^{-h}-1)·D0 - ½α_t(e^{-h}-1)·D1.
		c.cx = -alphaT * em1 * (1 + 0.5/r0)
		c.cp = alphaT * em1 * 0.5 / r0
	}
	s.lowerOrder++
	return c
}

// lcmStep is LCMScheduler.step: the consistency function's boundary
// condition, then fresh noise to the next timestep (none after the last).
func (s *Scheduler) lcmStep(k int) coeffs {
	t := int(s.timesteps[k])
	last := k == len(s.timesteps)-1
	prevT := t
	if !last {
		prevT = int(s.timesteps[k+1])
	}
	at := s.alphasCumprod[t]
	ap := s.alphasCumprod[prevT]
	const sigmaData = 0.5
	scaled := float64(t) * s.cfg.TimestepScaling
	cSkip := sigmaData * sigmaData / (scaled*scaled + sigmaData*sigmaData)
	cOut := scaled / math.Sqrt(scaled*scaled+sigmaData*sigmaData)
	var c coeffs
	c.ax, c.bx, _, _ = s.predict(math.Sqrt(at), math.Sqrt(1-at))
	if s.cfg.ClipSample {
		c.clip = s.cfg.ClipSampleRange
	}
	if last {
		c.cs, c.cx = cSkip, cOut
		return c
	}
	a := math.Sqrt(ap)
	c.cs, c.cx, c.cn = a*cSkip, a*cOut, math.Sqrt(1-ap)
	return c
}
