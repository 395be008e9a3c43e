package generators

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// contactVersion changes whenever the contact stage would write different
// bytes for the same variations.
const contactVersion = "1"

// contactThumb is the largest side of a contact sheet thumbnail.
const contactThumb = 384

// contactParams are the Params of a concept-art contact stage.
type contactParams struct {
	Seeds []int64 `json:"seeds"`
	Thumb int     `json:"thumb"`
}

// concept plans a kind: concept-art asset: per variation k a generation
// stage with seed+k (and from: art as init image when set), optionally a
// hires stage (upscale, then img2img), and one contact stage that draws
// every variation labelled with its seed.
func (pl *planner) concept(a *manifests.Asset) {
	gen, mf, ok := pl.base(a, string(manifests.KindConceptArt))
	if !ok {
		return
	}
	init, ok := pl.initFrom(a, &gen)
	if !ok {
		return
	}
	n := conceptVariations(a)
	var hires *manifests.Hires
	if a.Concept != nil {
		hires = a.Concept.Hires
	}
	var hw, hh, hsteps int
	if hires != nil {
		f := max(mf.info.VAEFactor, 1)
		// The upscaled size is rounded to the model's block size, so any
		// scale works.
		hw = roundTo(float64(gen.Width)*hires.Scale, f)
		hh = roundTo(float64(gen.Height)*hires.Scale, f)
		if !pl.checkSize(a, "concept.hires.scale", fmt.Sprintf("the hires size (%dx%d × %s): ", gen.Width, gen.Height, formatFloat(hires.Scale)), hw, hh, mf.info) {
			return
		}
		hsteps = hires.Steps
		if hsteps == 0 {
			hsteps = gen.Steps
		}
		if !pl.checkStrength(a, "concept.hires.strength", "hires.strength "+formatFloat(hires.Strength), stepsHint("hires.steps", "raise hires.strength"), hires.Strength, hsteps, gen.Scheduler) {
			return
		}
	}
	seeds := make([]int64, n)
	finals := make([]OutputRef, n)
	for k := 0; k < n; k++ {
		vp := gen
		vp.Seed = gen.Seed + int64(k)
		seeds[k] = vp.Seed
		vp.Extra = map[string]string{"variation": strconv.Itoa(k)}
		v := pl.genStage(a, VariationStage(a.ID, k, n), "concept.generate", vp, mf, init, a.At("from").String())
		pl.stages = append(pl.stages, v)
		final := OutputRef{v.ID, ImageOutput}
		if hires != nil {
			hp := vp
			hp.Width, hp.Height, hp.Steps = hw, hh, hsteps
			hp.Init = fmt.Sprintf("%s#%d", a.ID, k)
			hp.Strength = hires.Strength
			hp.Extra = map[string]string{"variation": strconv.Itoa(k), "hires": formatFloat(hires.Scale)}
			h := pl.genStageWith(a, HiresStage(a.ID, k, n), "concept.hires", hp, mf, &final, "", hiresAdvice(a, gen, hw, hh, sizeStep(mf.info)))
			pl.stages = append(pl.stages, h)
			final = OutputRef{h.ID, ImageOutput}
		}
		// The last stage of the variation publishes it.
		last := &pl.stages[len(pl.stages)-1]
		last.Publish = map[string]string{ImageOutput: VariationPath(a.ID, k, n)}
		finals[k] = final
	}

	c := pl.stage(a, ContactStage(a.ID), "concept.contact", contactVersion, false)
	c.Params = contactParams{Seeds: seeds, Thumb: contactThumb}
	for _, f := range finals {
		c.Deps = append(c.Deps, f.Stage)
	}
	c.Publish = map[string]string{ContactOutput: MainPath(a.ID)}
	maxSize, mem, step := pl.lim.MaxImageSize, pl.mem, sizeStep(mf.info)
	c.Run = func(ctx context.Context, r *pipeline.Run) error {
		sz, ok := inputSize(r, finals[0], maxSize)
		if ok {
			est := func(w, h int) (sampler.Memory, error) {
				return contactMemory(len(finals), sz.at(w, h), contactThumb), nil
			}
			m, _ := est(sz.W, sz.H)
			release, err := mem.admit(ctx, r.Log, fmt.Sprintf("draw the contact sheet of %d variations of %dx%d", len(finals), sz.W, sz.H), m,
				func(fits func(sampler.Memory) bool) string {
					if hires != nil {
						return hiresAdvice(a, gen, sz.W, sz.H, step)(est, fits)
					}
					return sizeAdvice(a, sz.W, sz.H, step, est, fits)
				})
			if err != nil {
				return err
			}
			defer release()
		}
		return contactSheet(ctx, r, finals, seeds, maxSize)
	}
	pl.stages = append(pl.stages, c)
}

// hiresAdvice says how far to lower an asset's hires scale so that a
// stage working at the hires size hw×hh (the pass itself, or the contact
// sheet) fits in memory; the base size is gen's, sizes go in steps of
// step pixels.
func hiresAdvice(a *manifests.Asset, gen genParams, hw, hh, step int) func(sizeEstimate, func(sampler.Memory) bool) string {
	return func(est sizeEstimate, fits func(sampler.Memory) bool) string {
		fw, _, ok := largestFit(hw, hh, step, est, fits)
		if !ok {
			return ""
		}
		scale := math.Floor(float64(fw)/float64(max(gen.Width, 1))*100) / 100
		if scale < 1 {
			if alt := sizeAdvice(a, gen.Width, gen.Height, step, est, fits); alt != "" {
				return fmt.Sprintf("remove concept.hires (%s), or %s", a.At("concept.hires"), alt)
			}
			return fmt.Sprintf("remove concept.hires (%s)", a.At("concept.hires"))
		}
		return fmt.Sprintf("lower concept.hires.scale (%s) to %s or less", a.At("concept.hires.scale"), formatFloat(scale))
	}
}

// roundTo rounds v to the nearest positive multiple of f.
func roundTo(v float64, f int) int {
	return max(f, int(math.Round(v/float64(f)))*f)
}

// contactSheet runs a contact stage.
func contactSheet(ctx context.Context, r *pipeline.Run, finals []OutputRef, seeds []int64, maxSize int) error {
	imgs := make([]*imageops.Float, len(finals))
	labels := make([]string, len(finals))
	var first *imageops.Recipe
	for i, ref := range finals {
		if err := ctx.Err(); err != nil {
			return err
		}
		img, rec, err := readInput(r, ref, maxSize)
		if err != nil {
			return err
		}
		if i == 0 {
			first = rec
		}
		// Only the thumbnail is kept: the contact sheet draws no more.
		if imgs[i], err = imageops.Thumbnail(imageops.FromImage(img), contactThumb); err != nil {
			return fmt.Errorf("variation %d: %w", i, err)
		}
		labels[i] = "seed " + strconv.FormatInt(seeds[i], 10)
		r.Progress(i+1, len(finals)+1)
	}
	sheet, err := imageops.ContactSheet(imgs, labels, imageops.ContactOptions{Thumb: contactThumb})
	if err != nil {
		return err
	}
	rec := cloneRecipe(first)
	delete(rec.Extra, "variation")
	rec.Extra["contact_sheet"] = fmt.Sprintf("%d variations, seeds %d to %d", len(seeds), seeds[0], seeds[len(seeds)-1])
	if err := writePNG(r, ContactOutput, sheet, rec); err != nil {
		return err
	}
	r.Progress(len(finals)+1, len(finals)+1)
	return nil
}
