// Package pipeline turns stages into a DAG and runs it against a
// content-addressed cache, so that only stages whose inputs changed run again.
//
// A Stage is the unit of cached work. Packages that know about asset kinds
// (generators, exporters) produce stages; this package knows nothing about
// images or models, only about keys, files and dependencies.
package pipeline

import (
	"context"
	"io"
	"log/slog"
)

// Resource names the executor limit a stage counts against.
type Resource int

const (
	// CPU stages share a limit that defaults to the number of cores.
	CPU Resource = iota
	// Accelerator stages share a limit per device (default 1 per device),
	// because a GPU runs one diffusion at a time well and many badly.
	Accelerator
)

// Stage is one unit of cached work: a pure function of its key parts
// (kind, version, params, model fingerprints, source files, dependency
// outputs) that writes named output files.
type Stage struct {
	// ID is unique in a build, e.g. "dungeon/floor:generate".
	ID string
	// Asset is the manifest entry (asset, atlas or material id) this stage
	// belongs to; --only and reports group by it.
	Asset string
	// Kind names the implementation, e.g. "image.source" or "pbr.derive".
	Kind string
	// Version changes whenever the implementation would produce different
	// bytes for the same inputs, so stale cache entries are not served.
	Version string
	// Params are the resolved parameters. They are encoded as canonical
	// JSON (sorted keys) into the cache key and shown by --explain.
	Params any
	// Models are fingerprints of the models the stage uses.
	Models []string
	// Generation, set by generated (diffusion) stages, is copied into the
	// stage's report (see Generation); it is not part of the key.
	Generation *Generation
	// Files are source files the stage reads, relative to the project root
	// (slash-separated). Their content hashes go into the key.
	Files []string
	// Deps are IDs of stages whose outputs this stage reads.
	Deps []string
	// DepWhere optionally gives, per dependency ID, the manifest position
	// ("file:line:col") of the reference that created the edge, so a cycle
	// error can point at each edge.
	DepWhere map[string]string
	// Resource and Device select the executor limit. Device is ignored for
	// CPU stages; for Accelerator stages it names the device ("cuda:0").
	Resource Resource
	Device   string
	// Where is the manifest position ("file:line:col") of the entry that
	// produced the stage, for error messages.
	Where string
	// Publish maps an output name to a path relative to the output folder.
	// After the stage is built or found in the cache, each listed output is
	// materialised (atomically) at that path. Outputs not listed stay in
	// the cache, for other stages to read.
	Publish map[string]string
	// PublishDir, when set, publishes every output that Publish does not
	// name at PublishDir/<output name>, for stages whose outputs are known
	// only when they run (an atlas's pages). The folder belongs to the
	// stage: no other stage may publish inside it.
	PublishDir string
	// Run produces the outputs. It must honour ctx cancellation and must
	// write only through r.
	Run func(ctx context.Context, r *Run) error
}

// Run is what a running stage sees: its inputs, a place for its outputs,
// a logger, and a progress sink.
type Run struct {
	// Root is the absolute project root.
	Root string
	// Log is the stage's logger.
	Log *slog.Logger

	input    func(dep, name string) (string, error)
	create   func(name string) (io.WriteCloser, error)
	progress func(done, total int)
	note     func(key, value string)
}

// NewRun builds a Run from its callbacks. The executor uses it; tests of
// stage implementations use it to run a stage outside a build.
func NewRun(root string, log *slog.Logger,
	input func(dep, name string) (string, error),
	create func(name string) (io.WriteCloser, error),
	progress func(done, total int),
	note func(key, value string),
) *Run {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Run{Root: root, Log: log, input: input, create: create, progress: progress, note: note}
}

// Input returns the path of output name of dependency dep. The file is
// read-only and lives in the cache; callers must not modify it.
func (r *Run) Input(dep, name string) (string, error) { return r.input(dep, name) }

// Create opens a new output file called name. The output becomes part of
// the stage's result only if Run returns nil. A name is a plain file name
// or a slash-separated path of plain names ("godot/hero.tres"), which
// PublishDir publishes as sub-folders.
func (r *Run) Create(name string) (io.WriteCloser, error) { return r.create(name) }

// WriteFile writes a whole output file called name.
func (r *Run) WriteFile(name string, data []byte) error {
	w, err := r.create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Progress reports that done of total steps are finished (diffusion steps,
// for example). It is safe to call from the stage's goroutine only.
func (r *Run) Progress(done, total int) {
	if r.progress != nil {
		r.progress(done, total)
	}
}

// Note records a fact for the build report, such as the execution provider
// that actually ran or a truncated-prompt warning.
func (r *Run) Note(key, value string) {
	if r.note != nil {
		r.note(key, value)
	}
}
