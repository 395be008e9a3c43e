package generators

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/pipeline"
)

// Env is what planning needs besides the project: the models, the limits
// and where diffusion runs.
type Env struct {
	// Models gives the models assets name. Required when the project has
	// generated assets.
	Models ModelSet
	// Limits bound sizes and counts; the zero value means the project's
	// kiln.yaml limits.
	Limits manifests.Limits
	// Device names the device diffusion stages run on ("cpu", "cuda:0"),
	// which selects the executor's accelerator limit. Empty means what
	// Models reports (if it has a Device method), else kiln.yaml's runtime
	// block.
	Device string
	// Version is kiln's version, written into every PNG's recipe. Empty
	// means the module version of the running binary, else "dev". It is
	// not part of cache keys: a cached image keeps the version that made
	// it.
	Version string
	// Log receives planning diagnostics; nil discards them.
	Log *slog.Logger
	// KeepGoing plans around a model the model set cannot describe (a
	// missing or broken model folder) instead of failing: the assets
	// that name it get stand-in model facts, their generation stages
	// fail with the model's error when they run, and every other asset
	// still builds (kiln build --keep-going, kiln watch).
	KeepGoing bool
	// Memory reads how much memory is left, for the check every stage
	// makes before it allocates: a stage whose estimated peak memory is
	// more than runtime.memory_budget or than what Memory finds, less
	// what the stages running beside it hold, fails with a message
	// saying what to lower. Nil means the operating system's (the zero
	// MemoryProbe); stages of a NewModelSet then share one check across
	// builds.
	Memory *MemoryProbe
}

// Plan expands every asset of p into pipeline stages: kind image into a
// SourceStage, the diffusion kinds into generation stages (on an
// accelerator) and post-processing stages (on the CPU), wired by from:
// references. Problems it finds (an unknown model, a size the model cannot
// make) come back together as a manifests.ErrorList, each at the position
// of the field to fix. Plan loads no model: it asks env.Models only for
// descriptions and fingerprints.
func Plan(p *manifests.Project, env *Env) ([]pipeline.Stage, error) {
	if p == nil || p.Config == nil {
		return nil, errors.New("plan: no project")
	}
	if env == nil {
		env = &Env{}
	}
	pl := &planner{
		p:      p,
		env:    env,
		lim:    env.Limits,
		infos:  map[string]modelFacts{},
		device: env.Device,
		loras:  &loraCache{},
		ver:    env.Version,
	}
	if pl.lim == (manifests.Limits{}) {
		pl.lim = p.Config.Limits
	}
	if pl.lim.MaxImageSize <= 0 {
		pl.lim.MaxImageSize = manifests.DefaultLimits().MaxImageSize
	}
	if pl.device == "" {
		if d, ok := env.Models.(interface{ Device() string }); ok {
			pl.device = d.Device()
		} else {
			pl.device = deviceName(p.Config.Runtime.Device, p.Config.Runtime.DeviceID)
		}
	}
	if pl.ver == "" {
		pl.ver = buildVersion()
	}
	pl.provider = planProviderClass(env, p.Config.Runtime)
	pl.mem = memoryCheck{guard: guardFor(env), budget: p.Config.Runtime.MemoryBudget}
	if pos, ok := p.Config.Where["runtime.memory_budget"]; ok {
		pl.mem.budgetAt = pos.String()
	}
	pl.log = env.Log
	if pl.log == nil {
		pl.log = slog.New(slog.DiscardHandler)
	}
	if env.KeepGoing && env.Models != nil {
		// Stages of an unusable model fail with the planner's error.
		e := *env
		pl.broken = &brokenModels{ModelSet: env.Models, errs: map[string]error{}}
		e.Models = pl.broken
		pl.env = &e
	}
	n := 0
	for _, a := range p.Assets {
		n += stageCount(a)
	}
	pl.stages = make([]pipeline.Stage, 0, n)
	for _, a := range p.Assets {
		pl.where = a.Pos.String()
		pl.asset(a)
	}
	if len(pl.errs) > 0 {
		pl.errs.Sort()
		return nil, pl.errs
	}
	pl.log.Debug("planned the assets", "assets", len(p.Assets), "stages", len(pl.stages), "device", pl.device)
	return pl.stages, nil
}

// buildVersion is the main module's version from the binary's build
// information, or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// planner holds one Plan call's state.
type planner struct {
	p      *manifests.Project
	env    *Env
	lim    manifests.Limits
	device string
	ver    string
	log    *slog.Logger
	infos  map[string]modelFacts // per model name, asked once per Plan
	where  string                // the current asset's position
	stages []pipeline.Stage
	errs   manifests.ErrorList
	broken *brokenModels // with KeepGoing: the models that cannot be used
	mem    memoryCheck   // what stages check their memory estimates with

	// provider is the provider class of the generation stages, in their
	// keys (genParams.Provider).
	provider string
	// loras keeps the LoRA files the stages read, so many assets with one
	// style read and hash it once.
	loras *loraCache
}

// guardFor returns the memory guard of a Plan: one for env.Memory, else
// the model set's (shared by every build that uses it), else a new one.
func guardFor(env *Env) *memoryGuard {
	s, _ := env.Models.(*modelStore)
	switch {
	case env.Memory != nil:
		var reclaim func(keep func(string) bool)
		if s != nil {
			reclaim = s.reclaim
		}
		return newMemoryGuard(env.Memory, reclaim)
	case s != nil:
		return s.guard
	}
	return newMemoryGuard(nil, nil)
}

// brokenModels is a ModelSet whose Open fails, for models the planner
// found unusable, with the error the planner found (positioned at the
// model in kiln.yaml, with its hint), so the stages of those assets fail
// clearly while every other asset builds.
type brokenModels struct {
	ModelSet
	errs map[string]error // written only while planning
}

func (b *brokenModels) Open(ctx context.Context, name string, o OpenOptions) (sampler.Model, func(), error) {
	if err := b.errs[name]; err != nil {
		return nil, nil, err
	}
	return b.ModelSet.Open(ctx, name, o)
}

// modelFacts is what the model set said about one model.
type modelFacts struct {
	info ModelInfo
	fp   string
	err  error // reported once, at the first asset that names the model
	told bool
}

// fail records a problem at an asset's field.
func (pl *planner) fail(a *manifests.Asset, field, msg, hint string) {
	pl.errs = append(pl.errs, &manifests.Error{Pos: a.At(field), Field: field, Msg: fmt.Sprintf("asset %q: %s", a.ID, msg), Hint: hint})
}

// model returns the facts of the asset's model, reporting a problem (once
// per model) when the model set cannot describe it.
func (pl *planner) model(a *manifests.Asset) (modelFacts, bool) {
	f, ok := pl.infos[a.Model]
	if !ok {
		if pl.env.Models == nil {
			f.err = errors.New("no model set was given to the planner (this is a bug in kiln)")
		} else if f.fp, f.err = pl.env.Models.Fingerprint(a.Model); f.err == nil {
			// Fingerprint first: it notices a changed folder, so Describe
			// reads the new configuration.
			f.info, f.err = pl.env.Models.Describe(a.Model)
		}
		pl.infos[a.Model] = f
	}
	if f.err == nil {
		return f, true
	}
	if errors.Is(f.err, ErrUnknownModel) {
		// Every asset with the unknown name is pointed at.
		names := make([]string, 0, len(pl.p.Config.Models))
		for n := range pl.p.Config.Models {
			names = append(names, n)
		}
		sort.Strings(names)
		pl.fail(a, "model", fmt.Sprintf("unknown model %q", a.Model),
			fmt.Sprintf("models in kiln.yaml: %s; built-in: %s", listOrNone(names), manifests.Exemplar))
		return f, false
	}
	pos := a.At("model")
	if m := pl.p.Config.Models[a.Model]; m != nil && m.Pos.IsValid() {
		pos = m.Pos
	}
	modelErr := &manifests.Error{Pos: pos, Field: "models." + a.Model,
		Msg: f.err.Error(), Hint: "fix the model folder or its path in kiln.yaml"}
	if pl.broken != nil {
		// The stages are planned as for a Stable Diffusion 1.x folder;
		// they fail with the model's error when they run.
		if !f.told {
			f.told = true
			pl.infos[a.Model] = f
			pl.broken.errs[a.Model] = modelErr
			pl.log.Debug("a model cannot be used; the assets that name it will fail, the others build", "err", modelErr)
		}
		stand := modelFacts{fp: "unavailable: " + f.err.Error(),
			info: ModelInfo{Name: a.Model, Family: "sd15", VAEFactor: 8, DefaultSize: 512, Steps: 20, Guidance: 7.5}}
		return stand, true
	}
	if !f.told {
		f.told = true
		pl.infos[a.Model] = f
		pl.errs = append(pl.errs, modelErr)
	}
	return f, false
}

// asset plans one asset.
func (pl *planner) asset(a *manifests.Asset) {
	switch a.Kind {
	case manifests.KindImage:
		if a.Image == nil {
			pl.fail(a, "image", "kind image without an image block", "")
			return
		}
		pl.stages = append(pl.stages, sourceStage(a.ID, a.Image.Source, pl.where, pl.lim.MaxImageSize, pl.mem))
	case manifests.KindTileable:
		pl.tileable(a)
	case manifests.KindTexture:
		pl.texture(a)
	case manifests.KindSpriteSheet:
		pl.sprite(a)
	case manifests.KindConceptArt:
		pl.concept(a)
	default:
		pl.fail(a, "kind", fmt.Sprintf("unknown kind %q", a.Kind), "use image, texture, tileable, sprite-sheet or concept-art")
	}
}

// checkSize reports a size the model cannot make: not a multiple of its
// VAE factor, or beyond the image size limit. field is the manifest field
// the size came from; what describes it when it was derived.
func (pl *planner) checkSize(a *manifests.Asset, field, what string, w, h int, info ModelInfo) bool {
	f := max(info.VAEFactor, 1)
	for _, side := range []struct {
		name string
		n    int
	}{{"width", w}, {"height", h}} {
		switch {
		case side.n < f:
			pl.fail(a, field, fmt.Sprintf("%s%s %d is less than %d, the smallest size model %q makes", what, side.name, side.n, f, a.Model), "")
			return false
		case side.n%f != 0:
			lo := side.n / f * f
			pl.fail(a, field, fmt.Sprintf("%s%s %d is not a multiple of %d, the VAE factor of model %q", what, side.name, side.n, f, a.Model),
				fmt.Sprintf("the model works in %d-pixel blocks; use %d or %d", f, max(lo, f), lo+f))
			return false
		case side.n > pl.lim.MaxImageSize:
			pl.fail(a, field, fmt.Sprintf("%s%s %d is more than limits.max_image_size (%d)", what, side.name, side.n, pl.lim.MaxImageSize),
				"lower it, or raise limits.max_image_size in kiln.yaml")
			return false
		}
	}
	return true
}

// checkStrength reports an img2img strength that runs no denoising step:
// the sampler (as diffusers) runs the last int(steps × strength) steps.
// Strength 0 is allowed: it keeps the init image as it is. The lcm
// scheduler picks its img2img steps itself.
func (pl *planner) checkStrength(a *manifests.Asset, field, what string, hint func(need int) string, strength float64, steps int, scheduler string) bool {
	if strength <= 0 || scheduler == sampler.LCM || int(float64(steps)*strength) >= 1 {
		return true
	}
	need := int(math.Ceil(1/strength - 1e-9))
	unit := "steps"
	if steps == 1 {
		unit = "step"
	}
	pl.fail(a, field, fmt.Sprintf("%s gives image-to-image strength %s, which runs no step at %d %s (the last steps × strength steps run)", what, formatFloat(strength), steps, unit),
		hint(need))
	return false
}

// stepsHint says how to make an image-to-image pass run: more steps (the
// named field), or other.
func stepsHint(field, other string) func(int) string {
	return func(need int) string { return fmt.Sprintf("raise %s to %d or more, or %s", field, need, other) }
}

// base resolves the generation parameters every diffusion kind shares:
// the model's defaults for what the asset leaves unset. ok is false when a
// problem was reported.
func (pl *planner) base(a *manifests.Asset, kind string) (gen genParams, mf modelFacts, ok bool) {
	mf, ok = pl.model(a)
	if !ok {
		return gen, mf, false
	}
	info := mf.info
	gen = genParams{
		Kind:      kind,
		Prompt:    a.Prompt,
		Negative:  a.NegativePrompt,
		Seed:      a.Seed,
		Steps:     a.Steps,
		Scheduler: a.Scheduler,
		Karras:    a.SchedulerOptions.Karras,
		Spacing:   a.SchedulerOptions.Spacing,
		Eta:       a.SchedulerOptions.Eta,
		Width:     a.Size.W,
		Height:    a.Size.H,
	}
	if gen.Steps == 0 {
		gen.Steps = info.Steps
	}
	if a.Guidance != nil {
		gen.Guidance = *a.Guidance
	} else {
		gen.Guidance = info.Guidance
	}
	if gen.Scheduler == "" {
		gen.Scheduler = info.Scheduler
	}
	if a.Size.IsZero() {
		gen.Width, gen.Height = info.DefaultSize, info.DefaultSize
		if !pl.checkSize(a, "size", "the model's default size: ", gen.Width, gen.Height, info) {
			return gen, mf, false
		}
	} else if !pl.checkSize(a, "size", "", gen.Width, gen.Height, info) {
		return gen, mf, false
	}
	if len(a.Exemplars) > 0 {
		gen.Exemplars = append([]string(nil), a.Exemplars...)
	}
	if gen.LoRAs, ok = pl.planLoRAs(a, info); !ok {
		return gen, mf, false
	}
	if info.Family == familyExemplar {
		seed := a.Seed
		gen.ModelSeed = &seed
	}
	return gen, mf, true
}

// from resolves an asset's from: reference into the stage and output
// holding the source image. ok is false when a problem was reported.
func (pl *planner) from(a *manifests.Asset) (ref OutputRef, ok bool) {
	src := pl.p.Asset(a.From)
	if src == nil {
		pl.fail(a, "from", fmt.Sprintf("from: %q is not an asset of this project", a.From), "check the id")
		return ref, false
	}
	ref, err := SourceImage(src, a.Pick)
	if err != nil {
		field := "pick"
		if !a.Has("pick") {
			field = "from"
		}
		pl.fail(a, field, err.Error(), "")
		return ref, false
	}
	return ref, true
}

// stage fills the fields every generated stage shares.
func (pl *planner) stage(a *manifests.Asset, id, kind, version string, accel bool) pipeline.Stage {
	s := pipeline.Stage{
		ID:      id,
		Asset:   a.ID,
		Kind:    kind,
		Version: version,
		Where:   pl.where,
	}
	if accel {
		s.Resource = pipeline.Accelerator
		s.Device = pl.device
	}
	return s
}

// stageCount is the number of stages Plan makes for an asset.
func stageCount(a *manifests.Asset) int {
	switch a.Kind {
	case manifests.KindTexture:
		return 2
	case manifests.KindSpriteSheet:
		return spriteFrames(a) + 1
	case manifests.KindConceptArt:
		n := conceptVariations(a)
		if a.Concept != nil && a.Concept.Hires != nil {
			n *= 2
		}
		return n + 1
	}
	return 1
}

// addDep adds a dependency with the manifest position that created it.
func addDep(s *pipeline.Stage, dep, where string) {
	for _, d := range s.Deps {
		if d == dep {
			return
		}
	}
	s.Deps = append(s.Deps, dep)
	if where != "" {
		if s.DepWhere == nil {
			s.DepWhere = map[string]string{}
		}
		s.DepWhere[dep] = where
	}
}

// providerOf is the provider name used in notes; "" (a model that does
// not say) is the CPU.
func providerOf(p string) string {
	if p == "" {
		return models.ProviderCPU
	}
	return strings.ToLower(p)
}
