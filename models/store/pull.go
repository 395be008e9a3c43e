package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
)

// StagingSuffix is appended to a model folder's path to name the folder a
// pull downloads into; it is renamed into place only once every file is
// verified, so a half-finished pull never looks like a model.
const StagingSuffix = ".kiln-partial"

// partSuffix marks a file whose download is not finished, inside the
// staging folder.
const partSuffix = ".part"

// oldSuffix names the previous model folder while Replace swaps in a new
// one.
const oldSuffix = ".kiln-old"

// Defaults for PullOptions' zero values.
const (
	DefaultParallel     = 4
	DefaultRetries      = 3
	DefaultRetryDelay   = time.Second
	DefaultStallTimeout = time.Minute
)

// PullOptions configures Resolve, Download and Pull. The zero value pulls
// from catalogue-less URLs with default network settings.
type PullOptions struct {
	// Catalog resolves model names; nil allows only URLs.
	Catalog *Catalog
	// Name names a model pulled from a URL whose manifest has no name (or
	// chooses an entry of a remote catalogue); "" derives it.
	Name string
	// ProjectRoot and Config choose the default destination (see
	// DefaultDest) when Dest is "".
	ProjectRoot string
	Config      *manifests.Config
	// Dest is the model folder to create; "" means DefaultDest.
	Dest string
	// Replace allows replacing an existing folder that holds a different
	// model; without it such a folder is an error and is never touched.
	Replace bool
	// Client makes the requests; nil means a client without an overall
	// timeout (downloads take long) that follows redirects.
	Client *http.Client
	// Authorize adds credentials to a request (see BearerFor); nil adds
	// none.
	Authorize func(*http.Request)
	// Parallel is how many files download at once; 0 means
	// DefaultParallel.
	Parallel int
	// Retries is how many more times a file is tried after a transient
	// failure (lost connection, stalled transfer, HTTP 5xx or 429), each
	// time resuming where it stopped; 0 means DefaultRetries, negative
	// means none.
	Retries int
	// RetryDelay is the wait before the first retry, doubled for each
	// further one (at most 30 s); 0 means DefaultRetryDelay, negative
	// means no wait.
	RetryDelay time.Duration
	// StallTimeout abandons (and retries) a transfer that receives no byte
	// for this long; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Terminal draws progress bars (mpb) instead of plain lines.
	Terminal bool
	// Log receives debug messages; nil discards them.
	Log *slog.Logger
}

func (o *PullOptions) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

func (o *PullOptions) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}

// PullResult says what a pull did.
type PullResult struct {
	// Name is the model's name.
	Name string
	// Dir is the model folder (absolute).
	Dir string
	// Manifest is what was recorded in Dir's kiln-manifest.json.
	Manifest *Manifest
	// Fetched is the number of bytes downloaded by this pull.
	Fetched int64
	// Resumed lists the files whose download continued from data an
	// earlier, interrupted pull left.
	Resumed []string
	// UpToDate reports that Dir already held this model and nothing was
	// downloaded.
	UpToDate bool
	// Configured reports that kiln.yaml names the model at Dir.
	Configured bool
}

// DefaultDest returns where `kiln models pull NAME` puts a model: the folder
// kiln.yaml's models: entry NAME names, if there is one, else
// <root>/models/NAME, a folder inside the project (as kiln.yaml's model
// paths are project-relative). configured reports the first case.
func DefaultDest(root string, cfg *manifests.Config, name string) (dir string, configured bool, err error) {
	if root == "" {
		return "", false, fmt.Errorf("no project folder to pull %s into; run kiln in a project or give a destination folder", name)
	}
	if cfg != nil {
		if m := cfg.Models[name]; m != nil {
			if m.Builtin != "" {
				return "", false, fmt.Errorf("model %s is the built-in builtin:%s: it is part of kiln and has no files to pull", name, m.Builtin)
			}
			if m.Path != "" {
				dir, err := safepath.Join(root, m.Path)
				if err != nil {
					return "", false, fmt.Errorf("kiln.yaml model %s: %w", name, err)
				}
				abs, err := filepath.Abs(dir)
				return abs, true, err
			}
		}
	}
	if !validName(name) {
		return "", false, fmt.Errorf("model name %q is not valid; use letters, digits, \"_\", \".\" and \"-\"", name)
	}
	dir, err = safepath.Join(root, "models/"+name)
	if err != nil {
		return "", false, err
	}
	abs, err := filepath.Abs(dir)
	return abs, false, err
}

// Pull is `kiln models pull NAME|URL`: it resolves arg (see Resolve),
// downloads the model into opts.Dest or DefaultDest (see Download),
// writing progress to w, and says how to use the model when kiln.yaml does
// not name it yet. A failed download still returns what it did (bytes
// fetched, files resumed) when it got that far.
func Pull(ctx context.Context, w io.Writer, arg string, opts PullOptions) (*PullResult, error) {
	src, err := Resolve(ctx, arg, opts)
	if err != nil {
		return nil, err
	}
	dest, configured := opts.Dest, false
	if dest == "" {
		dest, configured, err = DefaultDest(opts.ProjectRoot, opts.Config, src.Name)
		if err != nil {
			return nil, err
		}
	}
	res, err := Download(ctx, w, src, dest, opts)
	if err != nil {
		return res, err
	}
	res.Configured = configured
	if !configured && opts.ProjectRoot != "" {
		rel := dest
		if r, err := filepath.Rel(opts.ProjectRoot, dest); err == nil && safepath.Validate(filepath.ToSlash(r)) == nil {
			rel = filepath.ToSlash(r)
		}
		kind := ""
		if src.Kind != "" {
			kind = ", kind: " + string(src.Kind)
		}
		fmt.Fprintf(w, "to use it, add it to kiln.yaml under models:\n  %s: {path: %s%s}\n", src.Name, rel, kind)
	}
	return res, nil
}

// Download fetches src's files into the model folder dest. Files go to
// the staging folder dest+".kiln-partial" (unfinished ones as FILE.part),
// every file's size and sha256 are checked, kiln-manifest.json is written,
// and only then is the staging folder renamed to dest. An interrupted
// download (error, cancelled ctx, killed process) leaves the staging
// folder, and the next Download resumes from it with HTTP range requests.
//
// If dest already holds exactly this model (same kiln-manifest.json file
// list) nothing is downloaded. If it holds anything else, Download fails
// unless opts.Replace is set.
func Download(ctx context.Context, w io.Writer, src *Source, dest string, opts PullOptions) (*PullResult, error) {
	if src == nil {
		return nil, errors.New("download: no source")
	}
	if !validName(src.Name) {
		return nil, fmt.Errorf("cannot pull a model named %q; use letters, digits, \"_\", \".\" and \"-\"", src.Name)
	}
	files := append([]File(nil), src.Files...)
	if err := checkFiles(files); err != nil {
		return nil, fmt.Errorf("pull %s (%s): %w", src.Name, src.From, err)
	}
	sortFiles(files)
	base, err := baseURL(src.BaseURL, nil)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	if dest == "" {
		return nil, fmt.Errorf("pull %s: no destination folder", src.Name)
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	staging := dest + StagingSuffix
	man := &Manifest{Version: ManifestVersion, Name: src.Name, Kind: src.Kind, Description: src.Description, Source: base.String(), Files: files}
	res := &PullResult{Name: src.Name, Dir: dest, Manifest: man}

	upToDate := func() (bool, error) {
		same, err := holds(dest, files, opts.Replace)
		if same {
			res.UpToDate = true
			fmt.Fprintf(w, "%s is up to date in %s (kiln models verify %s checks its files)\n", src.Name, dest, src.Name)
		}
		return same, err
	}
	if same, err := upToDate(); same || err != nil {
		if same {
			tidyReplaced(dest, staging, nil)
		}
		return res, err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return nil, fmt.Errorf("pull %s: create %s: %w", src.Name, filepath.Dir(dest), err)
	}
	lock, err := lockStaging(staging)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	defer lock.Close()
	// Another process may have finished this pull while we waited.
	if same, err := upToDate(); same || err != nil {
		if same {
			tidyReplaced(dest, staging, lock)
		}
		os.Remove(staging) // only if empty
		return res, err
	}

	if opts.Replace {
		seedFromExisting(dest, staging, files)
	}

	prog := newProgress(w, opts.Terminal)
	prog.note("pulling %s (%d files, %s) from %s into %s", src.Name, len(files), formatBytes(man.TotalSize()), base, dest)
	p := &puller{opts: opts, base: base, staging: staging, prog: prog, log: opts.log()}
	err = p.run(ctx, files)
	prog.finish(err == nil)
	res.Fetched = p.fetched.Load()
	res.Resumed = p.resumed
	sort.Strings(res.Resumed)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("pull %s stopped: %w; what was downloaded is kept in %s and the next pull resumes from it", src.Name, ctx.Err(), staging)
		}
		if isRetryable(err) {
			return res, fmt.Errorf("pull %s: %w; what was downloaded is kept in %s: run the pull again to resume", src.Name, err, staging)
		}
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}

	if err := finishStaging(staging, man); err != nil {
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	if err := moveIntoPlace(staging, dest); err != nil {
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	// A replace interrupted between its two renames leaves the previous
	// folder under this name.
	os.RemoveAll(dest + oldSuffix)
	fmt.Fprintf(w, "pulled %s into %s: %d files, %s (%s downloaded)\n", src.Name, dest, len(files), formatBytes(man.TotalSize()), formatBytes(res.Fetched))
	return res, nil
}

// tidyReplaced removes what a replace of dest that was killed after
// putting the new folder in place left behind, once dest is known to hold
// the wanted model: the previous folder, moved aside to dest+oldSuffix or
// (after an atomic exchange) left in the staging folder, which it then
// finished and so holds a kiln-manifest.json (a partial download does
// not; it is kept for resuming). held is the staging folder's lock when
// the caller has it.
func tidyReplaced(dest, staging string, held *os.File) {
	os.RemoveAll(dest + oldSuffix)
	finished := func() bool {
		_, err := os.Lstat(filepath.Join(staging, ManifestName))
		return err == nil
	}
	if !finished() {
		return
	}
	if held == nil {
		lock, err := lockStaging(staging)
		if err != nil {
			return // another pull is using it
		}
		defer lock.Close()
	}
	if finished() {
		os.RemoveAll(staging)
	}
}

// holds reports whether dest is a model folder whose kiln-manifest.json
// lists exactly files. A dest holding something else is an error unless
// replace is set.
func holds(dest string, files []File, replace bool) (bool, error) {
	st, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check destination %s: %w", dest, err)
	}
	if !st.IsDir() {
		return false, fmt.Errorf("destination %s is a file, not a folder; remove it or pull into another folder", dest)
	}
	m, err := ReadManifest(dest)
	if err == nil && sameFiles(m.Files, files) {
		// Cheap damage check: every file there, at its size. Verify
		// checks hashes.
		damaged := ""
		for _, f := range files {
			st, err := os.Stat(filepath.Join(dest, filepath.FromSlash(f.Path)))
			if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
				damaged = f.Path
				break
			}
		}
		if damaged == "" {
			return true, nil
		}
		if replace {
			return false, nil
		}
		return false, fmt.Errorf("destination %s holds this model but its file %s is missing or has the wrong size; pull again with --replace to repair it (intact files are not downloaded again)", dest, damaged)
	}
	if replace {
		return false, nil
	}
	what := "a different version of the model (its " + ManifestName + " lists other files)"
	if errors.Is(err, fs.ErrNotExist) {
		what = "files kiln did not pull (it has no " + ManifestName + ")"
	} else if err != nil {
		what = "an unreadable " + ManifestName + " (" + err.Error() + ")"
	}
	return false, fmt.Errorf("destination %s already exists and holds %s; remove it, pull into another folder, or ask to replace it (kiln models pull --replace)", dest, what)
}

func sameFiles(a, b []File) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// finishStaging removes everything in staging that is not a listed file
// (leftover partial files, files of an earlier version), flushes the
// folders, and writes kiln-manifest.json.
func finishStaging(staging string, man *Manifest) error {
	wantFile := map[string]bool{}
	wantDir := map[string]bool{".": true}
	for _, f := range man.Files {
		wantFile[f.Path] = true
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			wantDir[d] = true
		}
	}
	err := filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if wantDir[rel] {
				return nil
			}
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		if !wantFile[rel] || !d.Type().IsRegular() {
			return os.Remove(p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tidy staging folder %s: %w", staging, err)
	}
	dirs := make([]string, 0, len(wantDir))
	for d := range wantDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		if err := atomicfile.SyncDir(filepath.Join(staging, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	return WriteManifest(staging, man)
}

// moveIntoPlace renames the finished staging folder to dest, swapping out
// an existing dest (only reached with Replace) through dest+".kiln-old".
func moveIntoPlace(staging, dest string) error {
	parent := filepath.Dir(dest)
	if _, err := os.Lstat(dest); err == nil {
		old := dest + oldSuffix
		// Swap the folders in one step where the system can, so a
		// process killed in between never leaves dest missing.
		switch err := atomicfile.Exchange(staging, dest); {
		case err == nil:
			if err := atomicfile.SyncDir(parent); err != nil {
				return err
			}
			// staging now holds the previous folder; a kill from here on
			// leaves it for the next pull, which verifies what it finds.
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("remove %s: %w", old, err)
			}
			if err := os.Rename(staging, old); err != nil {
				return fmt.Errorf("move the previous %s aside: %w", dest, err)
			}
			if err := os.RemoveAll(old); err != nil {
				return fmt.Errorf("remove the previous model folder %s: %w", old, err)
			}
			return nil
		case !errors.Is(err, atomicfile.ErrExchangeUnsupported):
			return fmt.Errorf("move %s into place: %w", dest, err)
		}
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("remove %s: %w", old, err)
		}
		if err := os.Rename(dest, old); err != nil {
			return fmt.Errorf("move the previous %s aside: %w", dest, err)
		}
		if err := os.Rename(staging, dest); err != nil {
			if rerr := os.Rename(old, dest); rerr != nil {
				return fmt.Errorf("move %s into place: %w (and restoring the previous folder failed: %v; it is at %s)", dest, err, rerr, old)
			}
			return fmt.Errorf("move %s into place: %w", dest, err)
		}
		if err := atomicfile.SyncDir(parent); err != nil {
			return err
		}
		if err := os.RemoveAll(old); err != nil {
			return fmt.Errorf("remove the previous model folder %s: %w", old, err)
		}
		return nil
	}
	if err := os.Rename(staging, dest); err != nil {
		return fmt.Errorf("move %s into place: %w", dest, err)
	}
	return atomicfile.SyncDir(parent)
}

// seedFromExisting hard-links the files of the folder being replaced into
// the staging folder where a file of the same path and size is wanted and
// staging has none, so a repair or an update downloads only what changed:
// the puller hashes every file it finds in staging and drops those that do
// not verify. Downloads never write into an existing file (they write
// FILE.part and rename it), so the shared inodes are never modified.
// Failures (a file system without hard links) only cost downloads.
func seedFromExisting(dest, staging string, files []File) {
	for _, f := range files {
		from, err := safepath.Join(dest, f.Path)
		if err != nil {
			continue
		}
		to, err := safepath.Join(staging, f.Path)
		if err != nil {
			continue
		}
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		st, err := os.Lstat(from)
		if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
			continue
		}
		if os.MkdirAll(filepath.Dir(to), 0o755) == nil {
			os.Link(from, to)
		}
	}
}

// lockStaging creates the staging folder and takes an exclusive lock on it,
// so two pulls never write the same files. The lock dies with the process.
func lockStaging(staging string) (*os.File, error) {
	for range 3 {
		if err := os.MkdirAll(staging, 0o755); err != nil {
			return nil, fmt.Errorf("create staging folder %s: %w", staging, err)
		}
		d, err := os.Open(staging)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // renamed into place by another pull just now
			}
			return nil, fmt.Errorf("open staging folder %s: %w", staging, err)
		}
		if err := lockFile(d); err != nil {
			d.Close()
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("another kiln is pulling into %s; wait for it to finish", staging)
			}
			return nil, fmt.Errorf("lock staging folder %s: %w", staging, err)
		}
		// The folder we locked may have been renamed into place by the
		// pull that held the lock; then lock a fresh one.
		a, aerr := d.Stat()
		b, berr := os.Stat(staging)
		if aerr == nil && berr == nil && os.SameFile(a, b) {
			return d, nil
		}
		d.Close()
	}
	return nil, fmt.Errorf("cannot lock staging folder %s: another process keeps replacing it", staging)
}

// puller downloads the files of one pull.
type puller struct {
	opts    PullOptions
	base    *url.URL
	staging string
	prog    progress
	log     *slog.Logger

	fetched atomic.Int64
	mu      sync.Mutex
	resumed []string
}

// run downloads files with opts.Parallel workers, largest first. The first
// failure stops the others.
func (p *puller) run(ctx context.Context, files []File) error {
	order := append([]File(nil), files...)
	sort.SliceStable(order, func(i, j int) bool { return order[i].Size > order[j].Size })
	n := p.opts.Parallel
	if n <= 0 {
		n = DefaultParallel
	}
	n = min(n, len(order))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan File)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := p.fetchFile(ctx, f); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
	for _, f := range order {
		jobs <- f
	}
	close(jobs)
	wg.Wait()
	return firstErr
}
