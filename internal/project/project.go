// Package project opens a kiln project: it loads and validates the
// manifests, sets up the models they name (lazily: nothing is loaded until
// a stage runs), and expands assets, atlases and materials into pipeline
// stages. The CLI and watch mode share it, so both build the same graph.
package project

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-dev/kiln/exporters"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/exemplar"
	"github.com/kiln-dev/kiln/pipeline"
)

// RuntimeOverrides are command-line settings that take precedence over
// kiln.yaml's runtime block. Zero values (and DeviceID < 0) leave
// kiln.yaml's settings alone.
type RuntimeOverrides struct {
	Library  string
	Device   string
	DeviceID int
}

// Options configure Open.
type Options struct {
	Log     *slog.Logger
	Runtime RuntimeOverrides
	// Version is kiln's version, written into generated images' recipes.
	Version string
	// Models, when set, is reused instead of a new model set, so watch
	// mode keeps models loaded between rebuilds.
	Models generators.ModelSet
	// KeepGoing plans assets whose model folder is missing or broken as
	// stages that fail, instead of failing the whole project, so that
	// every other asset still builds (see generators.Env.KeepGoing).
	KeepGoing bool
}

// Project is an opened project: its manifests and its stages.
type Project struct {
	Root      string
	Manifests *manifests.Project
	Stages    []pipeline.Stage
	Models    generators.ModelSet

	log       *slog.Logger
	ownModels bool
	// batch is runtime.batch for the device the build runs on
	// (generators.BatchSize): how many accelerator stages run at once.
	batch int
}

// Open loads the project in dir and plans its stages. Manifest errors come
// back as a manifests.ErrorList (every error of every file), planning
// errors with their manifest positions.
func Open(dir string, o Options) (*Project, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("project folder %s: %w", dir, err)
	}
	m, err := manifests.LoadWith(root, manifests.LoadOptions{ExemplarPrompt: exemplar.ReadsPrompt})
	if err != nil {
		return nil, err
	}
	p := &Project{Root: root, Manifests: m, Models: o.Models, log: log,
		batch: generators.BatchSize(m.Config.Runtime.Batch, provider(m, o.Runtime))}
	if u, ok := p.Models.(interface{ Update(*manifests.Config) }); ok {
		// A model set kept across rebuilds follows edits to kiln.yaml.
		u.Update(m.Config)
	}
	if p.Models == nil {
		p.Models = generators.NewModelSet(m.Config, root, runtimeOptions(m, root, o.Runtime, log), log)
		p.ownModels = true
	}
	stages, err := generators.Plan(m, &generators.Env{Models: p.Models, Version: o.Version, Log: log, KeepGoing: o.KeepGoing})
	if err != nil {
		p.Close()
		return nil, err
	}
	more, err := exporters.Plan(m)
	if err != nil {
		p.Close()
		return nil, err
	}
	p.Stages = append(stages, more...)
	return p, nil
}

// runtimeOptions merges kiln.yaml's runtime block with command-line
// overrides. For the tensorrt provider it also gives the image and batch
// sizes the project generates, from which TensorRT's optimisation
// profiles are made.
func runtimeOptions(m *manifests.Project, root string, ro RuntimeOverrides, log *slog.Logger) models.RuntimeOptions {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := m.Config.Runtime
	opts := models.RuntimeOptions{
		Library:         r.Library,
		Provider:        r.Device,
		DeviceID:        r.DeviceID,
		Fallback:        r.Fallback,
		Threads:         r.Threads,
		Spinning:        r.Spinning,
		MemoryBudget:    r.MemoryBudget,
		ProviderOptions: providerOptions(r.ProviderOptions, root),
		Log:             log,
	}
	if ro.Library != "" {
		opts.Library = ro.Library
	}
	if ro.Device != "" {
		opts.Provider = ro.Device
	}
	if ro.DeviceID >= 0 && ro.Device != "" || ro.DeviceID > 0 {
		opts.DeviceID = ro.DeviceID
	}
	if strings.EqualFold(strings.TrimSpace(opts.Provider), models.ProviderTensorRT) {
		opts.Shapes = shapePlan(m, root, log)
		if b := generators.BatchSize(r.Batch, opts.Provider); b >= 2 && slices.Contains(opts.Shapes.Batches, 2) {
			// Batched calls stack up to runtime.batch generations of
			// two rows each (one-row generations are not batched).
			opts.Shapes.Batches = append(opts.Shapes.Batches, 2*b)
		}
	}
	return opts
}

// provider is the execution provider the project runs on: --device over
// kiln.yaml's runtime.device.
func provider(m *manifests.Project, ro RuntimeOverrides) string {
	if ro.Device != "" {
		return ro.Device
	}
	return m.Config.Runtime.Device
}

// providerOptions copies kiln.yaml's provider options, making the
// TensorRT cache folders, which kiln.yaml writes relative to the project,
// absolute (ONNX Runtime would take them from the working folder).
func providerOptions(in map[string]map[string]string, root string) map[string]map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]map[string]string, len(in))
	for provider, opts := range in {
		c := make(map[string]string, len(opts))
		for k, v := range opts {
			if (k == "trt_engine_cache_path" || k == "trt_timing_cache_path") && v != "" && !filepath.IsAbs(v) {
				v = filepath.Join(root, v)
			}
			c[k] = v
		}
		out[provider] = c
	}
	return out
}

// shapePlan lists the sizes the project's diffusion-model assets are
// generated at (each asset's size, its model's native size when it sets
// none, and a concept's hires size) and the UNet batch sizes they run
// with: 2 with classifier-free guidance (a guidance above 1, or none
// written for a model whose default guides), 1 without. Models it cannot open count at 512×512 (1024×1024
// for SDXL-named kinds); the plan only shapes TensorRT's profiles, so an
// approximate plan costs a recompile at worst, which kiln reports.
func shapePlan(m *manifests.Project, root string, log *slog.Logger) models.ShapePlan {
	var plan models.ShapePlan
	native := map[string]models.ImageSize{}
	nativeSize := func(name string) models.ImageSize {
		if s, ok := native[name]; ok {
			return s
		}
		s := models.ImageSize{Width: 512, Height: 512}
		if def := m.Config.Models[name]; def != nil {
			if strings.Contains(strings.ToLower(string(def.Kind)), "xl") {
				s = models.ImageSize{Width: 1024, Height: 1024}
			}
			if def.Path != "" {
				dir := def.Path
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(root, dir)
				}
				if f, err := models.OpenFolder(dir); err == nil && f.SampleSize > 0 && f.VAEFactor > 0 {
					n := f.SampleSize * f.VAEFactor
					s = models.ImageSize{Width: n, Height: n}
				} else if err != nil {
					log.Debug("cannot read the model's native size for TensorRT's profiles", "model", name, "err", err)
				}
			}
		}
		native[name] = s
		return s
	}
	for _, a := range m.Assets {
		def := m.Config.Models[a.Model]
		if !a.Kind.Generated() || def == nil || def.Builtin != "" {
			continue
		}
		size := models.ImageSize{Width: a.Size.W, Height: a.Size.H}
		if a.Size.IsZero() {
			size = nativeSize(a.Model)
		}
		// Turbo models default to no guidance, and LCM models take theirs
		// through timestep_cond: one UNet row per image.
		batch := 2
		if a.Guidance != nil && *a.Guidance <= 1 || a.Guidance == nil && (def.Kind == manifests.ModelTurbo || def.Kind == manifests.ModelLCM) {
			batch = 1
		}
		plan.Sizes = append(plan.Sizes, size)
		plan.Batches = append(plan.Batches, batch)
		if a.Concept != nil && a.Concept.Hires != nil && a.Concept.Hires.Scale > 0 {
			sc := a.Concept.Hires.Scale
			plan.Sizes = append(plan.Sizes, models.ImageSize{Width: roundTo8(float64(size.Width) * sc), Height: roundTo8(float64(size.Height) * sc)})
			plan.Batches = append(plan.Batches, batch)
		}
	}
	return plan
}

// roundTo8 rounds to the nearest multiple of the VAE factor, 8.
func roundTo8(v float64) int { return int(v/8+0.5) * 8 }

// BuildOptions returns pipeline options for the project's output and cache
// folders; callers add the flags of the command at hand.
func (p *Project) BuildOptions() pipeline.Options {
	return pipeline.Options{
		Root:     p.Root,
		OutDir:   p.Manifests.Config.Output,
		CacheDir: p.Manifests.Config.Cache,
		Log:      p.log,
		// The stages of one batch must run at once to share their UNet
		// calls.
		AccelJobs: max(p.batch, 1),
	}
}

// Close releases the models the project loaded (not a model set passed in
// Options.Models, which belongs to the caller).
func (p *Project) Close() error {
	if p.ownModels && p.Models != nil {
		return p.Models.Close()
	}
	return nil
}

// Error is one error with its manifest position, for machine-readable
// reports.
type Error struct {
	Message string
	Where   string
}

// Errors flattens err into positioned errors: each entry of a manifest
// error list, each problem of an invalid graph, or err itself.
func Errors(err error) []Error {
	if err == nil {
		return nil
	}
	var list manifests.ErrorList
	if errors.As(err, &list) {
		out := make([]Error, 0, len(list))
		for _, e := range list {
			msg := e.Msg
			if e.Field != "" {
				msg = e.Field + ": " + msg
			}
			if e.Hint != "" {
				msg += " (" + e.Hint + ")"
			}
			out = append(out, Error{Message: msg, Where: e.Pos.String()})
		}
		return out
	}
	var ge *pipeline.GraphError
	if errors.As(err, &ge) {
		out := make([]Error, 0, len(ge.Problems))
		for _, pr := range ge.Problems {
			out = append(out, Error{Message: pr.Message, Where: pr.Where})
		}
		return out
	}
	return []Error{{Message: err.Error()}}
}
