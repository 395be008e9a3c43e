package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/hf"
)

// hubSource downloads a model's files from the Hugging Face Hub, pinned
// to one commit.
type hubSource struct {
	snap   *hf.Snapshot
	files  map[string]hf.File         // by path: what the Hub listed (git blob ids of small files)
	client func() (*hf.Client, error) // made on first use, so a pull served by the download cache needs no Hub
	locked bool                       // snap comes from kiln.lock
}

// origin is what kiln-manifest.json records as the source:
// hf:REPO[/SUBFOLDER]@COMMIT.
func (h *hubSource) origin() string {
	r := h.snap.Ref
	r.Revision = h.snap.Commit
	return r.String()
}

// describe names the reference and commit for the first progress line.
func (h *hubSource) describe() string {
	how := "the commit it points to"
	if h.locked {
		how = "pinned by " + LockName
	}
	return fmt.Sprintf("%s (commit %s, %s)", h.snap.Ref, shortCommit(h.snap.Commit), how)
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// hubFetch continues out, which holds have bytes of f, from the Hub with
// models/hf (which hashes the bytes there, resumes with a range request,
// follows the redirect to the CDN and checks the data against the lock's
// or the Hub's SHA-256, or a small file's git blob id). On failure out is
// cut to the bytes a later pull can resume from.
func (p *puller) hubFetch(ctx context.Context, f File, out *os.File, have int64, bar fileBar) (fetched, error) {
	c, err := p.hub.client()
	if err != nil {
		return fetched{}, err
	}
	hfFile, ok := p.hub.files[f.Path]
	if !ok {
		hfFile = hf.File{Path: f.Path, Size: f.Size, SHA256: f.SHA256}
	}
	bar.set(have)
	if have > 0 && have < f.Size {
		p.prog.note("%s: resuming at %s of %s", f.Path, formatBytes(have), formatBytes(f.Size))
	}
	t := &progressTarget{f: out, bar: bar, cur: have, fetched: &p.fetched}
	res, err := c.Download(ctx, p.hub.snap, hfFile, t, have)
	if err != nil {
		if res.Size >= 0 {
			if terr := out.Truncate(res.Size); terr != nil {
				return fetched{}, errors.Join(err, fmt.Errorf("cut %s to its valid %d bytes: %w", out.Name(), res.Size, terr))
			}
			bar.set(res.Size)
		}
		return fetched{}, err
	}
	if res.Resumed {
		p.mu.Lock()
		p.resumed = append(p.resumed, f.Path)
		p.mu.Unlock()
	}
	return fetched{sum: res.SHA256}, nil
}

// progressTarget is the hf.Target of a download into a FILE.part: it
// writes to the file and moves the file's progress bar.
type progressTarget struct {
	f       *os.File
	bar     fileBar
	cur     int64 // end of the latest write
	fetched *atomic.Int64
}

func (t *progressTarget) WriteAt(b []byte, off int64) (int, error) {
	n, err := t.f.WriteAt(b, off)
	if off != t.cur {
		t.bar.set(off)
	}
	t.bar.add(n)
	t.cur = off + int64(n)
	t.fetched.Add(int64(n))
	return n, err
}

func (t *progressTarget) ReadAt(b []byte, off int64) (int, error) { return t.f.ReadAt(b, off) }

// DefaultHFName is the model name `kiln models pull hf:ORG/REPO` uses
// without --as: the repository's name, lower-cased ("sd-turbo" for
// hf:stabilityai/SD-Turbo).
func DefaultHFName(ref hf.Ref) string {
	return strings.ToLower(ref.Repo[strings.LastIndexByte(ref.Repo, '/')+1:])
}

// hubClient returns a function making opts' Hub client once.
func hubClient(opts PullOptions) func() (*hf.Client, error) {
	ho := opts.Hub
	if ho.HTTPClient == nil {
		ho.HTTPClient = opts.Client
	}
	if ho.Log == nil {
		ho.Log = opts.Log
	}
	return sync.OnceValues(func() (*hf.Client, error) { return hf.New(ho) })
}

// PullHF is `kiln models pull hf:REPO[/SUBFOLDER][@REVISION] [--as NAME]`
// and the pull of a kiln.yaml model with hf: (name "" means
// DefaultHFName). The folder is opts.Dest, else kiln.yaml's path for
// name, else models/NAME.
//
// When root's kiln.lock has an entry for name pulled from ref, the pull
// downloads exactly the commit and files it pins (no question to the Hub
// about what the revision points to now, so every machine gets the same
// bytes, and files in the download cache need no network at all). Else,
// or with opts.Update, it resolves ref to the commit the revision points
// to now (only the files an ONNX model folder needs; a repository without
// an ONNX export fails with hf.ErrNoONNX and the optimum-cli command that
// makes one), downloads those files and writes the entry. A folder kiln
// pulled before (or one kiln.lock governs) is replaced in place, keeping
// the files that did not change.
//
// A kiln.yaml entry for name pulling another reference is an error, as is
// a pull outside a project (kiln.lock lives beside kiln.yaml).
func PullHF(ctx context.Context, w io.Writer, ref hf.Ref, name string, opts PullOptions) (*PullResult, error) {
	ref, err := hf.ParseRef(ref.String())
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = DefaultHFName(ref)
	}
	if !validName(name) {
		return nil, fmt.Errorf("model name %q is not valid; choose one with --as (letters, digits, \"_\", \".\" and \"-\")", name)
	}
	if opts.ProjectRoot == "" {
		return nil, fmt.Errorf("cannot pull %s: no project folder; run kiln in the project (the folder of kiln.yaml), which records the pull in %s", ref, LockName)
	}
	root, err := filepath.Abs(opts.ProjectRoot)
	if err != nil {
		return nil, fmt.Errorf("resolve the project folder %s: %w", opts.ProjectRoot, err)
	}
	opts.ProjectRoot = root
	var m *manifests.Model
	if opts.Config != nil {
		m = opts.Config.Models[name]
	}
	if m != nil && m.HF != nil && !sameRef(m.HF, ref) {
		return nil, fmt.Errorf("%s: kiln.yaml pulls model %s from %s there, not %s: pull that with kiln models pull %s, change its hf:, revision: and subfolder:, or give this one another name with --as NAME",
			m.HF.Pos, name, m.HF.Ref(), ref, name)
	}

	dest, configured := opts.Dest, false
	if dest == "" {
		if dest, configured, err = DefaultDest(root, opts.Config, name); err != nil {
			return nil, err
		}
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return nil, fmt.Errorf("resolve the destination folder %s: %w", dest, err)
	}
	// A destination outside the project is refused before the Hub is
	// asked anything.
	if _, err := pullBase(root, dest); err != nil {
		return nil, err
	}

	lock, err := ReadLock(root)
	if err != nil {
		return nil, err
	}
	entry := lock.Models[name]
	client := hubClient(opts)
	hub := &hubSource{client: client, files: map[string]hf.File{}}
	var files []File
	switch {
	case entry != nil && entry.Ref() == ref && !opts.Update:
		hub.snap, hub.locked = entry.Snapshot(), true
		files = append(files, entry.Files...)
	default:
		if entry != nil && entry.Ref() != ref && !opts.Update {
			fmt.Fprintf(w, "%s pins %s to %s; pulling %s instead moves it\n", LockName, name, entry.Ref(), ref)
		}
		c, err := client()
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		snap, err := c.Resolve(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", name, err)
		}
		if entry != nil && entry.Ref() == ref && entry.Commit == snap.Commit {
			// --update found nothing new: the entry knows every hash.
			hub.snap, hub.locked = entry.Snapshot(), true
			files = append(files, entry.Files...)
			break
		}
		hub.snap = snap
		for _, f := range snap.Files {
			files = append(files, File{Path: f.Path, Size: f.Size, SHA256: f.SHA256})
		}
	}
	for _, f := range hub.snap.Files {
		hub.files[f.Path] = f
	}
	if hub.locked {
		// Sizes say whether the folder is complete, hashes (remembered
		// in kiln's cache) whether it is intact: a damaged file is
		// restored, the rest kept.
		hashes := models.OpenHashCache(opts.CacheDir)
		err := CheckLocked(ctx, name, dest, entry, hashes)
		hashes.Save()
		var lm *LockMismatchError
		switch {
		case err == nil:
		case errors.As(err, &lm) && lm.File != "":
			fmt.Fprintf(w, "%s: %s %s; restoring the files %s pins\n", name, lm.File, lm.Problem, LockName)
			opts.repair = true
		case errors.As(err, &lm):
			// No folder yet: a plain pull.
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			return nil, err
		}
	}

	// A folder kiln.lock governs, or one kiln pulled from the Hub, is
	// kiln's to replace; anything else needs --replace.
	if entry != nil || pulledFromHub(dest) {
		opts.Replace = true
	}
	kind := manifests.ModelKind("")
	if m != nil {
		kind = m.Kind
	}
	src := &Source{Name: name, Kind: kind, Files: files, From: ref.String(), hub: hub}
	res, err := Download(ctx, w, src, dest, opts)
	if res != nil {
		res.Commit = hub.snap.Commit
		res.Locked = hub.locked
	}
	if err != nil {
		return res, err
	}
	res.Configured = configured

	next := &LockEntry{Repo: ref.Repo, Subfolder: ref.Subfolder, Revision: ref.Revision, Commit: hub.snap.Commit, Files: append([]File(nil), res.Manifest.Files...)}
	if entry == nil || !sameEntry(entry, next) {
		if err := updateLock(root, name, next); err != nil {
			return res, fmt.Errorf("pull %s: the model is in %s, but %w", name, dest, err)
		}
		res.LockChanged = true
		switch {
		case entry == nil:
			fmt.Fprintf(w, "%s: pinned %s to commit %s; commit %s with kiln.yaml\n", LockName, name, shortCommit(next.Commit), LockName)
		case entry.Commit == next.Commit:
			fmt.Fprintf(w, "%s: recorded the files of %s at commit %s again\n", LockName, name, shortCommit(next.Commit))
		default:
			fmt.Fprintf(w, "%s: moved %s from commit %s to %s\n", LockName, name, shortCommit(entry.Commit), shortCommit(next.Commit))
		}
	} else if opts.Update {
		fmt.Fprintf(w, "%s: %s is already at the commit %s points to (%s)\n", LockName, name, ref.Revision, shortCommit(next.Commit))
	}

	if !configured {
		fmt.Fprintf(w, "to use it, add it to kiln.yaml under models:\n  %s: %s\n", name, hfEntryYAML(ref, root, dest, name))
	} else if m != nil && m.HF == nil {
		fmt.Fprintf(w, "kiln.yaml names %s without hf:; add hf: %s to its entry so kiln models pull knows where it comes from (%s already does)\n", name, ref.Repo, LockName)
	}
	return res, nil
}

// sameRef reports whether kiln.yaml's hf: source is ref.
func sameRef(h *manifests.HFSource, ref hf.Ref) bool {
	rev := h.Revision
	if rev == "" {
		rev = hf.DefaultRevision
	}
	return h.Repo == ref.Repo && h.Subfolder == ref.Subfolder && rev == ref.Revision
}

// sameEntry reports whether two lock entries pin the same thing.
func sameEntry(a, b *LockEntry) bool {
	return a.Repo == b.Repo && a.Subfolder == b.Subfolder && a.Revision == b.Revision && a.Commit == b.Commit && sameFiles(a.Files, b.Files)
}

// hfEntryYAML is the kiln.yaml entry that pulls ref into dest.
func hfEntryYAML(ref hf.Ref, root, dest, name string) string {
	parts := []string{"hf: " + ref.Repo}
	if ref.Subfolder != "" {
		parts = append(parts, "subfolder: "+ref.Subfolder)
	}
	parts = append(parts, "revision: "+ref.Revision)
	if rel, err := filepath.Rel(root, dest); err == nil {
		if rel = filepath.ToSlash(rel); rel != "models/"+name && safepath.Validate(rel) == nil {
			parts = append(parts, "path: "+rel)
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// pulledFromHub reports whether dir holds a model kiln pulled from the
// Hugging Face Hub (its kiln-manifest.json names an hf: source).
func pulledFromHub(dir string) bool {
	m, err := ReadManifest(dir)
	return err == nil && hf.IsRef(m.Source)
}

// hubModel reports whether the model called name comes from the Hub: its
// kiln.yaml entry has hf:, or (for a model kiln.yaml does not name, or
// names by path only) kiln.lock pins it. It returns the reference to pull.
func hubModel(opts PullOptions, name string) (hf.Ref, bool, error) {
	if opts.Config != nil {
		if m := opts.Config.Models[name]; m != nil && m.HF != nil {
			ref, err := hf.ParseRef(m.HF.Ref())
			if err != nil {
				return hf.Ref{}, false, fmt.Errorf("%s: model %s: %w", m.HF.Pos, name, err)
			}
			return ref, true, nil
		}
	}
	if opts.ProjectRoot == "" || !validName(name) {
		return hf.Ref{}, false, nil
	}
	lock, err := ReadLock(opts.ProjectRoot)
	if err != nil {
		return hf.Ref{}, false, err
	}
	if e := lock.Models[name]; e != nil {
		return e.Ref(), true, nil
	}
	return hf.Ref{}, false, nil
}
