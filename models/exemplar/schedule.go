package exemplar

import (
	"fmt"
	"math"
)

// The noise schedule the model publishes to the sampler (its
// scheduler_config.json, as a model folder would ship it). The model
// predicts x0 directly (prediction_type "sample"); Stable Diffusion's
// scaled-linear betas span noise levels σ from 0.029 to 14.6, which covers
// pixel values in [-1, 1] from "pure noise" to "clean"; Karras spacing puts
// most steps at low noise, where the small patches place the fine detail.
const (
	trainSteps = 1000
	betaStart  = 0.00085
	betaEnd    = 0.012
)

// SchedulerConfig returns the scheduler configuration the model publishes
// in its Info: Euler, x0 prediction, Karras sigmas.
func SchedulerConfig() map[string]any {
	return map[string]any{
		"_class_name":         "EulerDiscreteScheduler",
		"num_train_timesteps": float64(trainSteps),
		"beta_start":          betaStart,
		"beta_end":            betaEnd,
		"beta_schedule":       "scaled_linear",
		"prediction_type":     "sample",
		"timestep_spacing":    "linspace",
		"steps_offset":        0.0,
		"use_karras_sigmas":   true,
	}
}

// DefaultSteps is the number of sampler steps the model is tuned for.
// Generators should pass it when the manifest sets no steps.
const DefaultSteps = 24

// sigmaTable holds σ_t = sqrt((1-ᾱ_t)/ᾱ_t) per training timestep.
type sigmaTable []float64

func newSigmaTable() sigmaTable {
	s := make(sigmaTable, trainSteps)
	lo, hi := math.Sqrt(betaStart), math.Sqrt(betaEnd)
	prod := 1.0
	for i := range s {
		beta := lo + (hi-lo)*float64(i)/float64(trainSteps-1)
		beta *= beta
		prod *= 1 - beta
		s[i] = math.Sqrt((1 - prod) / prod)
	}
	return s
}

// alphaBar maps a (possibly fractional) timestep to the signal level ᾱ,
// interpolating σ linearly between training timesteps as the Euler
// scheduler does.
func (s sigmaTable) alphaBar(t float64) float64 {
	var sig float64
	switch {
	case math.IsNaN(t) || t <= 0:
		sig = s[0]
	case t >= float64(len(s)-1):
		sig = s[len(s)-1]
	default:
		i := int(t)
		f := t - float64(i)
		sig = s[i]*(1-f) + s[i+1]*f
	}
	return 1 / (1 + sig*sig)
}

// PatchLevel is one entry of a patch-size schedule: at noise levels σ
// (Euler's σ = sqrt((1-ᾱ)/ᾱ)) of at least MinSigma, patches are Size
// pixels square on the image average-pooled by Down (1 or 0: full
// resolution), so they span Size·Down pixels (unless a later entry with a
// higher MinSigma applies).
type PatchLevel struct {
	MinSigma float64
	Size     int
	Down     int
}

// DefaultPatchSchedule shrinks the patches' extent from 72 to 5 pixels as
// the noise falls. While the noise is high only a wide context carries
// enough signal to choose between exemplar patches, and it is what lays
// out the large structure (rows of bricks, boards, stones); as the noise
// falls, smaller patches mix and match exemplar detail more freely, which
// is where the model invents new arrangements (Kamb & Ganguli's locality
// scale, which also grows with the noise level). Wide patches are compared
// on the image pooled by 8, 4 or 2, which keeps them cheap; each coarse
// pixel still predicts full-resolution detail (see buildGraph). The
// extent shrinks gradually: an abrupt drop makes the finer level tear the
// structure the coarser one laid out.
func DefaultPatchSchedule() []PatchLevel {
	return []PatchLevel{
		{0, 5, 1},
		{0.15, 7, 1},
		{0.3, 9, 2},
		{0.6, 11, 4},
		{2, 9, 8},
	}
}

func checkSchedule(levels []PatchLevel) error {
	if len(levels) == 0 {
		return fmt.Errorf("patch schedule is empty")
	}
	for i, l := range levels {
		if l.Size < 1 || l.Size%2 == 0 || l.Size > 63 {
			return fmt.Errorf("patch schedule entry %d: size %d must be odd and in 1..63", i+1, l.Size)
		}
		if l.Down < 0 || l.Down > 16 {
			return fmt.Errorf("patch schedule entry %d: downscale %d must be in 1..16", i+1, l.Down)
		}
		if math.IsNaN(l.MinSigma) || l.MinSigma < 0 {
			return fmt.Errorf("patch schedule entry %d: min sigma %g must be 0 or more", i+1, l.MinSigma)
		}
		if i > 0 && !(l.MinSigma > levels[i-1].MinSigma) {
			return fmt.Errorf("patch schedule entry %d: min sigma %g must exceed the previous entry's %g", i+1, l.MinSigma, levels[i-1].MinSigma)
		}
	}
	if levels[0].MinSigma != 0 {
		return fmt.Errorf("patch schedule: the first entry must start at sigma 0")
	}
	return nil
}

// levelFor returns the schedule entry for signal level ᾱ on a w×h image,
// with Down reduced to the largest power-of-two factor of it that divides
// both sides.
func levelFor(levels []PatchLevel, alphaBar float64, w, h int) PatchLevel {
	sig := math.Sqrt(max(1-alphaBar, 0) / max(alphaBar, 1e-12))
	lv := levels[0]
	for _, l := range levels {
		if sig >= l.MinSigma {
			lv = l
		}
	}
	lv.Down = max(lv.Down, 1)
	for lv.Down > 1 && (w%lv.Down != 0 || h%lv.Down != 0 || w/lv.Down < lv.Size || h/lv.Down < lv.Size) {
		lv.Down /= 2
	}
	return lv
}
