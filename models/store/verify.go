package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Runtime loads every .onnx graph; nil skips graph loading (the
	// report says so).
	Runtime *models.Runtime
	// Catalog supplies the expected files of a model folder that has no
	// kiln-manifest.json (one exported by hand and listed in the
	// catalogue); nil means none.
	Catalog *Catalog
	// Lock is the project's kiln.lock: a model it pins is checked
	// against its entry (the files, sizes and SHA-256 every machine
	// pulls) rather than its kiln-manifest.json. nil means none.
	Lock *Lock
}

// VerifyResult is the verdict on one model.
type VerifyResult struct {
	Model LocalModel
	// Listed counts the files of the manifest checked against; Files and
	// Size count those that matched.
	Listed int
	Files  int
	Size   int64
	// GraphFiles counts the .onnx graphs tried, Graphs those that loaded.
	GraphFiles int
	Graphs     int
	// Problems says what is wrong, one entry per failed check: the file,
	// what was found, what was expected and what to do. Empty means ok.
	Problems []string
	// Notes are remarks that do not fail the model (no manifest to check
	// hashes against, no runtime to load graphs, extra files).
	Notes []string
	// Locked reports that the files were checked against kiln.lock.
	Locked bool
}

// lockEntry returns the kiln.lock entry of model name, nil when none.
func (o VerifyOptions) lockEntry(name string) *LockEntry {
	if o.Lock == nil {
		return nil
	}
	return o.Lock.Models[name]
}

// OK reports whether the model passed every check.
func (r *VerifyResult) OK() bool { return len(r.Problems) == 0 }

func (r *VerifyResult) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *VerifyResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Verify is `kiln models verify [NAME]`: it checks each model (see
// VerifyModel), writes a verdict per model to w, and returns an error
// when any failed.
func Verify(ctx context.Context, w io.Writer, ms []LocalModel, opts VerifyOptions) ([]VerifyResult, error) {
	results := make([]VerifyResult, 0, len(ms))
	failed := 0
	width := 0
	for _, m := range ms {
		width = max(width, len(m.Name))
	}
	for _, m := range ms {
		r := VerifyModel(ctx, m, opts)
		if err := ctx.Err(); err != nil {
			return results, fmt.Errorf("verify stopped: %w", err)
		}
		results = append(results, r)
		status := "ok    "
		if !r.OK() {
			status = "FAILED"
			failed++
		}
		fmt.Fprintf(w, "%s  %-*s  %s\n", status, width, m.Name, r.summary())
		for _, p := range r.Problems {
			fmt.Fprintf(w, "        %s\n", p)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "        note: %s\n", n)
		}
	}
	if failed > 0 {
		return results, fmt.Errorf("%d of %d models failed verification (see above)", failed, len(ms))
	}
	return results, nil
}

func (r *VerifyResult) summary() string {
	if r.Model.Builtin != "" {
		return "built in, no files"
	}
	var parts []string
	if r.Listed > 0 {
		if r.Files == r.Listed {
			parts = append(parts, fmt.Sprintf("%d files, %s", r.Files, formatBytes(r.Size)))
		} else {
			parts = append(parts, fmt.Sprintf("%d of %d files match", r.Files, r.Listed))
		}
	}
	if r.GraphFiles > 0 {
		switch {
		case r.Graphs < r.GraphFiles:
			parts = append(parts, fmt.Sprintf("%d of %d graphs load", r.Graphs, r.GraphFiles))
		case r.Graphs == 1:
			parts = append(parts, "1 graph loads")
		default:
			parts = append(parts, fmt.Sprintf("%d graphs load", r.Graphs))
		}
	}
	if len(parts) == 0 {
		return r.Model.Dir
	}
	return r.Model.Dir + " (" + strings.Join(parts, ", ") + ")"
}

// VerifyModel checks one model: its folder exists and is a complete model
// folder (models.OpenFolder); every file its kiln.lock entry (else its
// kiln-manifest.json, else its catalogue entry) lists is present with the
// recorded size and sha256, each file that differs named with what to
// do; and every .onnx graph loads in opts.Runtime.
// Built-in models have no files and always pass.
func VerifyModel(ctx context.Context, m LocalModel, opts VerifyOptions) VerifyResult {
	r := VerifyResult{Model: m}
	if m.Builtin != "" {
		return r
	}
	st, err := os.Stat(m.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.problem("the model folder %s does not exist: pull it (kiln models pull %s) or fix its path in kiln.yaml", m.Dir, m.Name)
		return r
	case err != nil:
		r.problem("cannot read the model folder: %v", err)
		return r
	case !st.IsDir():
		r.problem("%s is a file, not a model folder; point kiln.yaml at the folder holding model_index.json", m.Dir)
		return r
	}

	recorded, from, fix := ManifestName, "", "pull the model again with --replace"
	var man *Manifest
	if e := opts.lockEntry(m.Name); e != nil {
		// kiln.lock speaks for the folder; kiln-manifest.json is a
		// copy of the same list.
		if m.HF != nil && !e.Pins(m.HF) {
			r.problem("kiln.yaml pulls %s from %s, but %s pins %s (commit %s): run kiln models pull %s to pull and pin what kiln.yaml names", m.Name, m.HF.Ref(), LockName, e.Ref(), shortCommit(e.Commit), m.Name)
		}
		man = &Manifest{Files: e.Files}
		recorded, from = LockName, LockName
		fix = fmt.Sprintf("run kiln models pull %s to restore the files %s pins (commit %s of %s), or kiln models pull --update %s to move the lock", m.Name, LockName, shortCommit(e.Commit), e.Ref(), m.Name)
		r.Locked = true
	} else {
		if m.HF != nil {
			r.problem("kiln.yaml pulls %s from %s, but %s has no entry for it: run kiln models pull %s to pin the files it should hold", m.Name, m.HF.Ref(), LockName, m.Name)
		}
		man, from, recorded = r.recordedFiles(m, opts)
	}

	if man != nil {
		r.Listed = len(man.Files)
		listed := map[string]bool{}
		for _, f := range man.Files {
			listed[f.Path] = true
			if ctx.Err() != nil {
				return r
			}
			r.checkFile(ctx, m, f, recorded, fix)
		}
		if extra := extraFiles(m.Dir, listed); len(extra) > 0 {
			r.note("files not listed in %s: %s", from, strings.Join(extra, ", "))
		}
	}

	if _, err := models.OpenFolder(m.Dir); err != nil {
		r.problem("%v", err)
	}
	r.loadGraphs(ctx, m, man, opts.Runtime)
	return r
}

// recordedFiles returns the files a folder without a kiln.lock entry
// is checked against: its kiln-manifest.json, else its catalogue entry;
// nil (with a note) when there is neither.
func (r *VerifyResult) recordedFiles(m LocalModel, opts VerifyOptions) (man *Manifest, from, recorded string) {
	recorded = ManifestName
	man, err := ReadManifest(m.Dir)
	switch {
	case err == nil:
		return man, ManifestName, recorded
	case errors.Is(err, fs.ErrNotExist):
		if opts.Catalog != nil {
			if e, lerr := opts.Catalog.Lookup(m.Name); lerr == nil && len(e.Files) > 0 {
				return &Manifest{Files: e.Files}, "the catalogue (" + e.Pos + ")", "the catalogue"
			}
		}
		r.note("no %s, so file hashes were not checked; record the folder's current files with kiln models verify --record, or pull the model", ManifestName)
	default:
		r.problem("%v; pull the model again with --replace", err)
	}
	return nil, "", recorded
}

// checkFile compares one file with its recorded size and hash; fix says
// how to repair a file that differs.
func (r *VerifyResult) checkFile(ctx context.Context, m LocalModel, f File, recorded, fix string) {
	p, err := safepath.Join(m.Dir, f.Path)
	if err != nil {
		r.problem("%s: %v", f.Path, err)
		return
	}
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if recorded == ManifestName {
			fix += " (only damaged files are downloaded)"
		}
		r.problem("%s is missing; %s", f.Path, fix)
		return
	case err != nil:
		r.problem("%s: %v", f.Path, err)
		return
	case !st.Mode().IsRegular():
		r.problem("%s is not a regular file; %s", f.Path, fix)
		return
	case st.Size() != f.Size:
		r.problem("%s is %d bytes, %s records %d (truncated or modified); %s", f.Path, st.Size(), recorded, f.Size, fix)
		return
	}
	sum, _, err := hashFile(ctx, p)
	if err != nil {
		if ctx.Err() == nil {
			r.problem("%s: %v", f.Path, err)
		}
		return
	}
	if sum != f.SHA256 {
		r.problem("%s has sha256 %s, %s records %s (modified or corrupt); %s", f.Path, sum, recorded, f.SHA256, fix)
		return
	}
	r.Files++
	r.Size += f.Size
}

// loadGraphs loads every .onnx file of the folder.
func (r *VerifyResult) loadGraphs(ctx context.Context, m LocalModel, man *Manifest, rt *models.Runtime) {
	var graphs []string
	if man != nil {
		for _, f := range man.Files {
			if strings.HasSuffix(f.Path, ".onnx") {
				graphs = append(graphs, f.Path)
			}
		}
	} else if all, err := folderFiles(m.Dir); err == nil {
		for _, p := range all {
			if strings.HasSuffix(p, ".onnx") {
				graphs = append(graphs, p)
			}
		}
	}
	if len(graphs) == 0 {
		return
	}
	if rt == nil {
		r.note("graphs were not loaded: no ONNX Runtime (run kiln setup, or give its library with --ort-lib)")
		return
	}
	for _, g := range graphs {
		if ctx.Err() != nil {
			return
		}
		p, err := safepath.Join(m.Dir, g)
		if err != nil {
			continue // reported by checkFile
		}
		if _, err := os.Stat(p); err != nil {
			continue // reported by checkFile or OpenFolder
		}
		r.GraphFiles++
		if _, err := rt.GraphInfo(p); err != nil {
			r.problem("%s does not load: %v", g, err)
			continue
		}
		r.Graphs++
	}
}

// extraFiles lists the folder's files that the manifest does not.
func extraFiles(dir string, listed map[string]bool) []string {
	all, err := folderFiles(dir)
	if err != nil {
		return nil
	}
	var extra []string
	for _, p := range all {
		if !listed[p] {
			extra = append(extra, p)
		}
	}
	return extra
}

// Record writes dir's kiln-manifest.json from the files it holds now, so
// later verifications detect changes to a folder kiln did not pull (one
// exported locally). name and kind describe the model ("" when unknown).
// It returns the manifest written.
func Record(ctx context.Context, dir, name string, kind manifests.ModelKind) (*Manifest, error) {
	if kind != "" && !validKind(kind) {
		return nil, fmt.Errorf("record %s: kind %q is not one of %s", dir, kind, strings.Join(kindNames(), ", "))
	}
	m, err := BuildManifest(ctx, dir)
	if err != nil {
		return nil, err
	}
	if err := checkFiles(m.Files); err != nil {
		return nil, fmt.Errorf("record %s: %w", dir, err)
	}
	m.Name, m.Kind = name, kind
	if err := WriteManifest(dir, m); err != nil {
		return nil, err
	}
	return m, nil
}
