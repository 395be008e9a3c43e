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

	"github.com/kiln-dev/kiln/exporters"
	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
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
	m, err := manifests.Load(root)
	if err != nil {
		return nil, err
	}
	p := &Project{Root: root, Manifests: m, Models: o.Models, log: log}
	if u, ok := p.Models.(interface{ Update(*manifests.Config) }); ok {
		// A model set kept across rebuilds follows edits to kiln.yaml.
		u.Update(m.Config)
	}
	if p.Models == nil {
		p.Models = generators.NewModelSet(m.Config, root, runtimeOptions(m.Config, o.Runtime, log), log)
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
// overrides.
func runtimeOptions(cfg *manifests.Config, ro RuntimeOverrides, log *slog.Logger) models.RuntimeOptions {
	r := cfg.Runtime
	opts := models.RuntimeOptions{
		Library:      r.Library,
		Provider:     r.Device,
		DeviceID:     r.DeviceID,
		Fallback:     r.Fallback,
		Threads:      r.Threads,
		MemoryBudget: r.MemoryBudget,
		Log:          log,
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
	return opts
}

// BuildOptions returns pipeline options for the project's output and cache
// folders; callers add the flags of the command at hand.
func (p *Project) BuildOptions() pipeline.Options {
	return pipeline.Options{
		Root:     p.Root,
		OutDir:   p.Manifests.Config.Output,
		CacheDir: p.Manifests.Config.Cache,
		Log:      p.log,
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
