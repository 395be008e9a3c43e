package generators

import (
	"context"
	"fmt"
	"strings"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// genStage builds the stage that runs one generation and writes its image
// (with recipe) as ImageOutput. A tiled image also gets its seam metric
// in the report ("seams": "x=1.03 y=1.05").
func (pl *planner) genStage(a *manifests.Asset, id, kind string, gen genParams, mf modelFacts, init *OutputRef, initWhere string) pipeline.Stage {
	step := sizeStep(mf.info)
	return pl.genStageWith(a, id, kind, gen, mf, init, initWhere, func(est sizeEstimate, fits func(sampler.Memory) bool) string {
		return sizeAdvice(a, gen.Width, gen.Height, step, est, fits)
	})
}

// genStageWith is genStage with its own advice on what to lower when the
// generation does not fit in memory.
func (pl *planner) genStageWith(a *manifests.Asset, id, kind string, gen genParams, mf modelFacts, init *OutputRef, initWhere string,
	advise func(est sizeEstimate, fits func(sampler.Memory) bool) string) pipeline.Stage {
	s := pl.stage(a, id, kind, genVersion, true)
	job := &genJob{models: pl.env.Models, model: a.Model, fp: mf.fp, version: pl.ver, p: gen, maxSize: pl.lim.MaxImageSize,
		mem: pl.mem, advise: advise, loraCache: pl.loras}
	job.p.Provider = pl.provider
	s.Params = &job.p
	s.Models = []string{mf.fp}
	s.Generation = &pipeline.Generation{Seed: gen.Seed, Steps: gen.Steps, Model: a.Model, ModelFingerprint: mf.fp, Provider: pl.provider}
	if len(gen.Exemplars) > 0 || len(gen.LoRAs) > 0 {
		s.Files = append(append([]string(nil), gen.Exemplars...), loraFiles(gen.LoRAs)...)
	}
	if gen.Inpaint != nil {
		s.Files = append(s.Files[:len(s.Files):len(s.Files)], gen.Inpaint.Mask)
	}
	if init != nil {
		job.initRef = *init // the caller may reuse its variable
		job.init = &job.initRef
		addDep(&s, init.Stage, initWhere)
	}
	s.Run = func(ctx context.Context, r *pipeline.Run) error {
		release, err := job.admit(ctx, r)
		if err != nil {
			return err
		}
		defer release()
		img, rec, err := job.run(ctx, r)
		if err != nil {
			return err
		}
		if job.p.Tile != "" && job.p.Inpaint == nil {
			// (An inpainted image keeps its source's origin: the kept
			// region stays where it was.)
			// A wrap-around image tiles the same whatever its origin; put
			// the origin between a typical pair of columns (rows), so the
			// file's own edge does not happen to fall on its strongest
			// feature and read as a seam.
			t := manifests.Tile(job.p.Tile)
			dx, dy := exemplar.SeamShift(img, exemplar.Tiling{X: t.X(), Y: t.Y()})
			img = exemplar.Roll(img, dx, dy)
			r.Note("seams", seamNote(imageops.FromImage(img), job.p.Tile))
		}
		return writePNG(r, ImageOutput, img, rec)
	}
	return s
}

// seamNote formats the seam metric of the tiled axes.
func seamNote(f *imageops.Float, tile string) string {
	x, y := imageops.Seams(f)
	var parts []string
	t := manifests.Tile(tile)
	if t.X() {
		parts = append(parts, fmt.Sprintf("x=%.2f", x))
	}
	if t.Y() {
		parts = append(parts, fmt.Sprintf("y=%.2f", y))
	}
	return strings.Join(parts, " ")
}

// tileable plans a kind: tileable asset: one generation with the model's
// wrap-around variant, published as <id>.png.
func (pl *planner) tileable(a *manifests.Asset) {
	gen, mf, ok := pl.base(a, string(manifests.KindTileable))
	if !ok {
		return
	}
	tile := manifests.TileXY
	if a.Tileable != nil && a.Tileable.Tile != "" {
		tile = a.Tileable.Tile
	}
	if tile != manifests.TileNone {
		gen.Tile = string(tile)
	}
	if a.Tileable != nil && a.Tileable.RepairSeams && gen.Tile != "" {
		gen.RepairSeams = seamRepairFor(gen.Width, gen.Height)
	}
	init, ok := pl.initFrom(a, &gen)
	if !ok {
		return
	}
	s := pl.genStage(a, GenerateStage(a.ID), "tileable.generate", gen, mf, init, a.At("from").String())
	s.Publish = map[string]string{ImageOutput: MainPath(a.ID)}
	pl.stages = append(pl.stages, s)
}

// initFrom resolves the asset's from: reference for img2img, recording it
// in gen. It returns nil when the asset has no from:, and ok false when a
// problem was reported.
func (pl *planner) initFrom(a *manifests.Asset, gen *genParams) (*OutputRef, bool) {
	if a.From == "" {
		return nil, true
	}
	ref, ok := pl.from(a)
	if !ok {
		return nil, false
	}
	gen.Init = initName(a.From, a.Pick, pl.p.Asset(a.From))
	gen.Strength = a.Strength
	gen.Inpaint = inpaintFrom(a)
	if !pl.checkStrength(a, "strength", "strength "+formatFloat(a.Strength), stepsHint("steps", "raise the strength"), gen.Strength, gen.Steps, gen.Scheduler) {
		return nil, false
	}
	return &ref, true
}

// initName names an init image for the recipe: "asset" or "asset#3" for a
// picked frame or variation.
func initName(id string, pick int, src *manifests.Asset) string {
	if src != nil && (src.Kind == manifests.KindSpriteSheet || src.Kind == manifests.KindConceptArt) {
		return fmt.Sprintf("%s#%d", id, pick)
	}
	return id
}
