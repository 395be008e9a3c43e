package sampler

import "math"

// heunSchedule turns the Euler schedule into HeunDiscreteScheduler's: every
// timestep but the first twice (the first stage of a step, then its
// correction) and every noise level between the first and the final 0
// twice, so that index k of both runs one model call.
func (s *Scheduler) heunSchedule() {
	ts, sig := s.timesteps, s.sigmas
	n := len(ts)
	outT := make([]float64, 0, 2*n-1)
	outS := make([]float64, 0, 2*n)
	outT = append(outT, ts[0])
	outS = append(outS, sig[0])
	for i := 1; i < n; i++ {
		outT = append(outT, ts[i], ts[i])
		outS = append(outS, sig[i], sig[i])
	}
	s.timesteps, s.sigmas = outT, append(outS, sig[n])
}

// heunStep is HeunDiscreteScheduler.step (no churn). Even indices are a
// first stage, an Euler step from σ_k to σ_{k+1} that keeps the sample it
// started from; odd ones the correction, which averages the two
// derivatives over the same interval. With x the Euler result, the
// correction s₀ + dt·(d₁+d₂)/2 equals (s₀ + x)/2 + dt/2·d₂, since
// x = s₀ + dt·d₁, so only the starting sample needs keeping.
func (s *Scheduler) heunStep(k, n int) coeffs {
	if cap(s.prevX0) < n {
		s.prevX0 = make([]float32, n)
	}
	s.prevX0 = s.prevX0[:n]
	first := k%2 == 0
	sigma, next := s.sigmas[k], s.sigmas[k+1]
	in := sigma
	if !first {
		sigma, next = s.sigmas[k-1], s.sigmas[k]
		in = next
	}
	var c coeffs
	c.ax, c.bx = s.eulerPredict(in)
	dt := next - sigma
	if first {
		// d = (s - x0)/σ; next = s + d·dt.
		c.cs, c.cx = 1+dt/sigma, -dt/sigma
		c.storeSample = true
		return c
	}
	// d₂ = (x - x0)/σ_next.
	c.cs, c.cx, c.cp = 0.5+dt/(2*next), -dt/(2*next), 0.5
	return c
}

// uniCoeffs are the factors of UniPC's bh2 update from noise level σ_s0
// to σ_t (predict_x0): x_t = (σ_t/σ_s0)·x − α_t·hφ₁·m0 − α_t·B_h·(…),
// with b1, b2 the right-hand side of its order conditions.
type uniCoeffs struct {
	ratio, alphaT, hphi1, bh, b1, b2 float64
}

func uniFactors(sigmaS0, sigmaT float64) uniCoeffs {
	lambda := func(sg float64) float64 {
		a, s := vpFromSigma(sg)
		return math.Log(a) - math.Log(s)
	}
	alphaT, sT := vpFromSigma(sigmaT)
	_, sS := vpFromSigma(sigmaS0)
	hh := -(lambda(sigmaT) - lambda(sigmaS0))
	hphi1 := math.Expm1(hh)
	hphik := hphi1/hh - 1
	bh := math.Expm1(hh)
	return uniCoeffs{ratio: sT / sS, alphaT: alphaT, hphi1: hphi1, bh: bh,
		b1: hphik / bh, b2: (hphik/hh - 0.5) * 2 / bh}
}

// uniRK is r_k = (λ_si − λ_s0)/h of UniPC for the earlier level σ_si.
func uniRK(sigmaSi, sigmaS0, sigmaT float64) float64 {
	lambda := func(sg float64) float64 {
		a, s := vpFromSigma(sg)
		return math.Log(a) - math.Log(s)
	}
	return (lambda(sigmaSi) - lambda(sigmaS0)) / (lambda(sigmaT) - lambda(sigmaS0))
}

// unipcStep is UniPCMultistepScheduler.step with its defaults (bh2,
// solver_order 2, predict_x0, lower_order_final, corrector on every step):
// first the model output at this step corrects the sample the previous
// predictor made (UniC), then the predictor (UniP) moves the corrected
// sample to the next level. Both are linear in the sample, the previous
// sample, and the last three predictions, so one pass computes them,
// reading the guided output u + w·(cond − u) when cond is set.
func (s *Scheduler) unipcStep(k int, u, cond []float32, w float32, sample []float32) {
	n := len(sample)
	for i := range s.uni {
		if cap(s.uni[i]) < n {
			s.uni[i] = make([]float32, n)
		}
		s.uni[i] = s.uni[i][:n]
	}
	prev1, prev2, last := s.uni[0], s.uni[1], s.uni[2]
	alphaS, sigmaS := vpFromSigma(s.sigmas[k])
	ax, bx, _, _ := s.predict(alphaS, sigmaS)

	// Corrector: xc = cL·last + c1·x0_{k-1} + c2·x0_{k-2} + cK·x0_k.
	correct := s.lowerOrder > 0
	var cL, c1, c2, cK float64
	if correct {
		f := uniFactors(s.sigmas[k-1], s.sigmas[k])
		cL = f.ratio
		c1 = -f.alphaT * f.hphi1
		if s.uniOrder == 1 {
			const rho = 0.5
			c1 += f.alphaT * f.bh * rho
			cK = -f.alphaT * f.bh * rho
		} else {
			rk := uniRK(s.sigmas[k-2], s.sigmas[k-1], s.sigmas[k])
			// Solve [1 1; rk 1]·ρ = (b1, b2).
			rho0 := (f.b1 - f.b2) / (1 - rk)
			rho1 := f.b1 - rho0
			// corr = ρ0·(x0_{k-2} − x0_{k-1})/rk + ρ1·(x0_k − x0_{k-1}).
			c1 += f.alphaT * f.bh * (rho0/rk + rho1)
			c2 = -f.alphaT * f.bh * rho0 / rk
			cK = -f.alphaT * f.bh * rho1
		}
	}

	// Predictor: next = pS·xc + pK·x0_k + p1·x0_{k-1}.
	order := min(2, len(s.timesteps)-k, s.lowerOrder+1)
	var pS, pK, p1 float64
	if s.sigmas[k+1] == 0 {
		pK = 1 // λ_t = +∞: the step lands on the prediction.
	} else {
		f := uniFactors(s.sigmas[k], s.sigmas[k+1])
		pS, pK = f.ratio, -f.alphaT*f.hphi1
		if order == 2 {
			rk := uniRK(s.sigmas[k-1], s.sigmas[k], s.sigmas[k+1])
			// D1 = (x0_{k-1} − x0_k)/rk, weighted ½.
			pK += 0.5 * f.alphaT * f.bh / rk
			p1 = -0.5 * f.alphaT * f.bh / rk
		}
	}

	fax, fbx := float32(ax), float32(bx)
	fL, f1, f2, fK := float32(cL), float32(c1), float32(c2), float32(cK)
	gS, gK, g1 := float32(pS), float32(pK), float32(p1)
	u = u[:n]
	for j, sv := range sample {
		mv := u[j]
		if cond != nil {
			mv = float32(mv + w*(cond[j]-mv))
		}
		x0 := fax*sv + fbx*mv
		xc := sv
		if correct {
			xc = fL*last[j] + f1*prev1[j] + f2*prev2[j] + fK*x0
		}
		sample[j] = gS*xc + gK*x0 + g1*prev1[j]
		last[j] = xc
		prev2[j] = prev1[j]
		prev1[j] = x0
	}
	s.uniOrder = order
	s.lowerOrder++
}
