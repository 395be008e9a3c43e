package tiling

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Graph is a circular variant of a model graph, kept in kiln's cache.
type Graph struct {
	// Path is the rewritten graph file, <cache>/tiling/<key>/model.onnx.
	Path string
	// ExternalDataDir is "" when the graph loads from Path as it is: its
	// weights are inline, or hard links to the original's weight files
	// sit beside it. Otherwise the weights could not be linked (the cache
	// is on another file system than the model, or the file system
	// refused) and ExternalDataDir is the original's folder, from which
	// ONNX Runtime must read them: give it as
	// models.SessionSpec.ExternalDataDir.
	ExternalDataDir string
	// Source is the original graph file (absolute).
	Source string
	// Axes are the axes the graph wraps along.
	Axes Axes
	// Rewritten is the number of convolutions Rewrite changed; 0 means the
	// graph has no padded convolution and the variant computes what the
	// original does.
	Rewritten int
}

// manifestName is the file in each variant folder describing it. It is
// written last, and the folder is published by renaming, so a variant
// folder with a manifest is complete.
const manifestName = "variant.json"

// graphName is the rewritten graph's file name in a variant folder.
const graphName = "model.onnx"

type manifest struct {
	Version   int    `json:"version"`
	Axes      string `json:"axes"`
	Source    string `json:"source"`
	Size      int64  `json:"size"`
	ModTime   int64  `json:"mtime_ns"`
	Rewritten int    `json:"rewritten"`
	// External lists the weight files the variant links to.
	External []linkedFile `json:"external,omitempty"`
	// ExternalDataDir is set when the weights were not linked.
	ExternalDataDir string `json:"external_data_dir,omitempty"`
	// LinkError says why they were not.
	LinkError string `json:"link_error,omitempty"`
}

// linkedFile is a hard link in a variant folder: its name there, the
// source file the original graph reads, and that file with symlinks
// resolved (what the link is a link to).
type linkedFile struct {
	Name   string `json:"name"`
	From   string `json:"from"`
	Target string `json:"target"`
}

// Variant returns the circular variant of the graph file src (a
// component's model.onnx) along axes, building it in
// cacheDir/tiling/<key>/ unless it is there already. The user's model
// folder is only read.
//
// The key is a hash of the rewrite Version, the axes, and the source
// file's absolute path, size, modification time and inode, so an edited
// or replaced graph gets a new variant, and finding an existing one reads
// no graph. (A content hash would read the whole file on every call; fp16
// exports keep 1.7 GB of weights inline.)
//
// Weights are shared, never copied. External weight files are hard-linked
// into the variant's folder, so the variant loads like any model. Inline
// weights (when they total a megabyte or more) become external data that
// points into a hard link of the source graph file itself, at the offsets
// where the source holds them, so a 1.7 GB fp16 UNet costs a small graph
// file. Symlinks would also work across file systems, but ONNX Runtime
// (1.24) resolves them and refuses external data whose real path leaves
// the model's folder, as it refuses ".." and absolute locations. When
// linking fails, the variant's ExternalDataDir names the original folder
// instead. A variant whose links no longer reach the original's files
// (they were replaced) is rebuilt. Hard links keep replaced weights on
// disk until Prune removes the variants that refer to them.
//
// Variant is safe for concurrent use by goroutines and processes: each
// build happens in a private folder that is renamed into place, so racing
// builds publish one complete variant and the loser uses it.
func Variant(ctx context.Context, src string, axes Axes, cacheDir string) (*Graph, error) {
	return builder{link: os.Link, minShared: 1 << 20}.variant(ctx, src, axes, cacheDir)
}

// builder holds what tests vary about Variant.
type builder struct {
	// link makes a hard link (os.Link); tests make it fail as it does
	// across file systems.
	link func(oldname, newname string) error
	// minShared is the total size of inline weights from which they are
	// shared with the source file rather than copied into the variant.
	minShared int64
}

// sourceData is the name of the hard link to the source graph file in a
// variant folder whose inline weights point into it. Its extension makes
// the runtime's memory estimate count it as weights.
const sourceData = "source.onnx_data"

// minSharedTensor is the smallest inline tensor moved to external data, as
// the onnx tools choose.
const minSharedTensor = 1024

func (b builder) variant(ctx context.Context, src string, axes Axes, cacheDir string) (*Graph, error) {
	if axes.None() {
		return nil, fmt.Errorf("tiling: variant of %s: no axis to wrap; ask for x, y or xy", src)
	}
	if cacheDir == "" {
		return nil, fmt.Errorf("tiling: variant of %s: no cache folder to keep the rewritten graph in; set KILN_CACHE_HOME", src)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("tiling: variant of %s: %w", src, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("tiling: variant of %s: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tiling: variant of %s: not a regular file; give a component's model.onnx", src)
	}
	key := variantKey(abs, fi, axes)
	root := filepath.Join(cacheDir, "tiling")
	final := filepath.Join(root, key)
	if g, ok := lookup(final, abs, fi, axes); ok {
		return g, nil
	}

	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("tiling: variant of %s: %w", src, err)
	}
	m, err := onnx.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("tiling: %s: %w; the file is not an ONNX model or is damaged: export or download it again", abs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n, err := Rewrite(m, axes)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, abs)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("tiling: cache folder: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".build-"+key+"-")
	if err != nil {
		return nil, fmt.Errorf("tiling: cache folder: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed into place

	man := manifest{
		Version: Version, Axes: axes.String(), Source: abs,
		Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Rewritten: n,
	}
	shared := inlineWeights(m, raw, b.minShared)
	if err := b.linkWeights(m, abs, tmp, &man, len(shared) > 0); err != nil {
		return nil, err
	}
	// Inline weights now point into the source file: through its link in
	// the variant folder, or in its own folder when linking failed.
	loc := sourceData
	if man.ExternalDataDir != "" {
		loc = filepath.Base(abs)
	}
	for _, s := range shared {
		s.t.SetExternal(onnx.External{Location: loc, Offset: s.offset, Length: s.length})
	}
	if err := m.Save(filepath.Join(tmp, graphName)); err != nil {
		return nil, fmt.Errorf("tiling: write variant of %s: %w", abs, err)
	}
	data, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tiling: write variant of %s: %w", abs, err)
	}
	if err := onnx.WriteFileAtomic(filepath.Join(tmp, manifestName), append(data, '\n')); err != nil {
		return nil, fmt.Errorf("tiling: write variant of %s: %w", abs, err)
	}
	if err := publish(tmp, final, func() bool { _, ok := lookup(final, abs, fi, axes); return ok }); err != nil {
		return nil, fmt.Errorf("tiling: variant of %s: %w", abs, err)
	}
	g, ok := lookup(final, abs, fi, axes)
	if !ok {
		return nil, fmt.Errorf("tiling: variant of %s: %s vanished right after it was written; is another program cleaning kiln's cache?", abs, final)
	}
	return g, nil
}

// variantKey names a variant folder.
func variantKey(abs string, fi fs.FileInfo, axes Axes) string {
	dev, ino := fileID(fi)
	h := sha256.Sum256(fmt.Appendf(nil, "kiln tiling variant\x00%d\x00%s\x00%s\x00%d\x00%d\x00%d\x00%d",
		Version, axes, abs, fi.Size(), fi.ModTime().UnixNano(), dev, ino))
	return hex.EncodeToString(h[:16])
}

// sharedTensor is an inline initializer and where its bytes are in the
// source file.
type sharedTensor struct {
	t              *onnx.Tensor
	offset, length int64
}

// inlineWeights finds the inline initializers of at least minSharedTensor
// bytes whose raw data lies in raw, the source file's bytes (Decode shares
// memory with its input, so a tensor's RawData is a window of raw and its
// offset follows from the capacities). It returns none when they total
// less than min.
func inlineWeights(m *onnx.Model, raw []byte, min int64) []sharedTensor {
	var out []sharedTensor
	var total int64
	for _, t := range m.Graph.Initializers {
		if t == nil || t.IsExternal() || len(t.RawData) < minSharedTensor {
			continue
		}
		off := cap(raw) - cap(t.RawData)
		if off < 0 || off+len(t.RawData) > len(raw) || &raw[off] != &t.RawData[0] {
			continue // not a window of the file (copied or edited)
		}
		out = append(out, sharedTensor{t, int64(off), int64(len(t.RawData))})
		total += int64(len(t.RawData))
	}
	if total < min {
		return nil
	}
	return out
}

// linkWeights hard-links into dir the model's external weight files and,
// when withSource is set, the source graph file itself (as sourceData).
// If any link fails, the links made are removed and the manifest points
// at the source folder instead.
func (b builder) linkWeights(m *onnx.Model, src, dir string, man *manifest, withSource bool) error {
	srcDir := filepath.Dir(src)
	type want struct{ name, from string }
	var wants []want
	for _, loc := range m.ExternalFiles() {
		from, err := onnx.ExternalPath(srcDir, loc)
		if err != nil {
			return fmt.Errorf("tiling: %s: %w", src, err)
		}
		wants = append(wants, want{loc, from})
	}
	if withSource {
		wants = append(wants, want{sourceData, src})
	}
	var made []string
	for _, w := range wants {
		target, err := filepath.EvalSymlinks(w.from)
		if err != nil {
			return fmt.Errorf("tiling: %s refers to weights file %s, which cannot be read: %w; download or export the model again", src, w.from, err)
		}
		man.External = append(man.External, linkedFile{Name: w.name, From: w.from, Target: target})
		if man.LinkError != "" {
			continue
		}
		to, err := onnx.ExternalPath(dir, w.name)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(to), 0o755)
		}
		if err == nil {
			err = b.link(target, to)
		}
		if err != nil {
			man.LinkError = err.Error()
			continue
		}
		made = append(made, to)
	}
	if man.LinkError != "" {
		for _, p := range made {
			os.Remove(p)
		}
		man.ExternalDataDir = srcDir
	}
	return nil
}

// lookup returns the variant in dir if it is complete and still matches
// the source.
func lookup(dir, abs string, fi fs.FileInfo, axes Axes) (*Graph, bool) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, false
	}
	var man manifest
	if json.Unmarshal(data, &man) != nil || man.Version != Version || man.Axes != axes.String() ||
		man.Source != abs || man.Size != fi.Size() || man.ModTime != fi.ModTime().UnixNano() {
		return nil, false
	}
	path := filepath.Join(dir, graphName)
	if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
		return nil, false
	}
	if !linksValid(dir, &man) {
		return nil, false
	}
	return &Graph{Path: path, ExternalDataDir: man.ExternalDataDir, Source: abs, Axes: axes, Rewritten: man.Rewritten}, true
}

// linksValid reports whether the variant's weight links are still the
// files the source graph refers to.
func linksValid(dir string, man *manifest) bool {
	if man.ExternalDataDir != "" {
		return true // the weights are read from the source folder itself
	}
	for _, e := range man.External {
		target, err := filepath.EvalSymlinks(e.From)
		if err != nil || target != e.Target {
			return false
		}
		to, err := onnx.ExternalPath(dir, e.Name)
		if err != nil {
			return false
		}
		a, err1 := os.Stat(target)
		b, err2 := os.Stat(to)
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			return false
		}
	}
	return true
}

// publish renames the finished build folder tmp to final. If final exists
// and valid says it is usable (a concurrent build finished first), tmp
// is dropped; if it is stale, it is moved aside and removed.
func publish(tmp, final string, valid func() bool) error {
	var err error
	for range 4 {
		if err = os.Rename(tmp, final); err == nil {
			return nil
		}
		if _, serr := os.Stat(final); errors.Is(serr, fs.ErrNotExist) {
			continue // removed in between; try again
		}
		if valid() {
			return nil
		}
		aside := fmt.Sprintf("%s.stale-%d", filepath.Join(filepath.Dir(final), "."+filepath.Base(final)), time.Now().UnixNano())
		if rerr := os.Rename(final, aside); rerr == nil {
			os.RemoveAll(aside)
		}
	}
	return fmt.Errorf("cannot move the new variant into place at %s: %w", final, err)
}

// Prune removes from cacheDir/tiling the variants that no longer match
// their source graph (it was deleted, edited or replaced, its weights were
// replaced, or the rewrite Version changed), and builds that were left
// unfinished more than an hour ago, and returns how many folders it
// removed. Variants hold hard links to weight files, so pruning is what
// frees the disk space of weights the user has deleted.
func Prune(cacheDir string) (removed int, err error) {
	root := filepath.Join(cacheDir, "tiling")
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("tiling: prune %s: %w", root, err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if !stale(dir, e) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("tiling: prune %s: %w", root, err)
	}
	return removed, nil
}

// stale reports whether a folder of the variant cache can go.
func stale(dir string, e fs.DirEntry) bool {
	old := func() bool {
		info, err := e.Info()
		return err == nil && time.Since(info.ModTime()) > time.Hour
	}
	if strings.HasPrefix(e.Name(), ".") {
		// An unfinished build (possibly still running) or a stale variant
		// moved aside.
		return strings.Contains(e.Name(), ".stale-") || old()
	}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return old()
	}
	var man manifest
	if json.Unmarshal(data, &man) != nil {
		return old()
	}
	axes, err := ParseAxes(man.Axes)
	if err != nil {
		return true
	}
	fi, err := os.Stat(man.Source)
	if err != nil || variantKey(man.Source, fi, axes) != e.Name() {
		return true
	}
	_, ok := lookup(dir, man.Source, fi, axes)
	return !ok
}
