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
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/hf"
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
	// chooses an entry of a remote catalogue), or one Pull is given an
	// hf: reference for (--as); "" derives it.
	Name string
	// ProjectRoot and Config choose the default destination (see
	// DefaultDest) when Dest is "". ProjectRoot is also the trusted folder
	// of the pull: the destination must lie inside it (else the pull fails
	// with an *OutsideError), and no symlink below it is followed when the
	// pull creates, writes, renames or removes anything. Without a
	// ProjectRoot the nearest existing folder above the destination is
	// the trusted one.
	ProjectRoot string
	Config      *manifests.Config
	// Dest is the model folder to create, resolved against the working
	// directory when relative; "" means DefaultDest.
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

	// CacheDir is kiln's cache folder (models.CacheDir). Downloaded
	// files are kept in its blobs/sha256/ folder, shared by every
	// project, and linked (or copied) from there instead of downloaded
	// again; files' hashes are remembered in it (models.HashCache) so
	// checking a folder against kiln.lock does not read it again. ""
	// keeps no download cache.
	CacheDir string
	// Hub configures the Hugging Face Hub client of hf: pulls: the
	// endpoint and token (pass LookupEnv: os.LookupEnv for HF_ENDPOINT
	// and HF_TOKEN), retries and timeouts. Its HTTPClient defaults to
	// Client and its Log to Log.
	Hub hf.Options
	// Update makes an hf: pull ask the Hub what the revision points to
	// now and move the model's kiln.lock entry there, instead of pulling
	// the commit and files the entry pins.
	Update bool

	// repair makes Download stage the folder again even when its
	// kiln-manifest.json lists the wanted files: a file's content is
	// known to differ (PullHF checked it against kiln.lock).
	repair bool
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
	// Commit is the Hugging Face commit an hf: pull downloaded, "" for
	// other pulls.
	Commit string
	// Locked reports that an hf: pull downloaded what kiln.lock pinned
	// (rather than what the revision points to now).
	Locked bool
	// LockChanged reports that the pull wrote the model's kiln.lock
	// entry (a new model, or --update moved it).
	LockChanged bool
}

// OutsideError is returned when a pull's destination folder is not inside
// the project: kiln.yaml names model folders relative to the project, and a
// pull writes nowhere else.
type OutsideError struct {
	// Dest is the destination asked for and Root the project folder, both
	// absolute.
	Dest, Root string
}

// Error names both folders and what to do.
func (e *OutsideError) Error() string {
	what := "is not inside the project " + e.Root
	if e.Dest == e.Root {
		what = "is the project folder itself"
	}
	return fmt.Sprintf("the destination folder %s %s; a pulled model must go in a folder inside the project, such as %s: choose one there, or run kiln in the project that should hold the model", e.Dest, what, filepath.Join(e.Root, "models", "NAME"))
}

// pullBase returns the trusted folder of a pull into dest (absolute and
// clean): the project root, which dest must lie inside, or without one the
// nearest existing folder above dest. Everything a pull writes is below
// it, reached without following a symlink.
func pullBase(root, dest string) (string, error) {
	if root == "" {
		base := filepath.Dir(dest)
		for {
			if _, err := os.Stat(base); err == nil {
				return base, nil
			}
			up := filepath.Dir(base)
			if up == base {
				return base, nil
			}
			base = up
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("resolve the project folder %s: %w", root, err)
	}
	if strictlyInside(root, dest) {
		return root, nil
	}
	// The project may have been named through a symlink and dest in its
	// resolved spelling; the project folder is trusted as a whole.
	if real, err := filepath.EvalSymlinks(root); err == nil && strictlyInside(real, dest) {
		return real, nil
	}
	return "", &OutsideError{Dest: dest, Root: root}
}

// strictlyInside reports whether p lies inside base and is not base itself,
// comparing spellings.
func strictlyInside(base, p string) bool {
	return filepath.Clean(p) != filepath.Clean(base) && safepath.Within(base, p)
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
//
// An hf:REPO[/SUBFOLDER][@REVISION] argument, and the NAME of a kiln.yaml
// model with hf: (or one kiln.lock pins), is pulled from the Hugging Face
// Hub by PullHF, opts.Name naming the model of an hf: argument.
func Pull(ctx context.Context, w io.Writer, arg string, opts PullOptions) (*PullResult, error) {
	if hf.IsRef(arg) {
		ref, err := hf.ParseRef(arg)
		if err != nil {
			return nil, err
		}
		return PullHF(ctx, w, ref, opts.Name, opts)
	}
	if ref, ok, err := hubModel(opts, arg); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return PullHF(ctx, w, ref, arg, opts)
	}
	// A destination outside the project is refused before the network is
	// asked anything.
	if opts.Dest != "" {
		dest, err := filepath.Abs(opts.Dest)
		if err != nil {
			return nil, fmt.Errorf("resolve the destination folder %s: %w", opts.Dest, err)
		}
		if _, err := pullBase(opts.ProjectRoot, dest); err != nil {
			return nil, err
		}
	}
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
// A failed download removes what holds no data: empty partial files,
// empty folders, and the staging folder and the folders above dest it
// created when nothing is left in them.
//
// A file the download cache (opts.CacheDir) holds with the listed
// sha256 is linked or copied from there instead of downloaded; every
// file downloaded is added to it.
//
// If dest already holds exactly this model (same kiln-manifest.json file
// list) nothing is downloaded. If it holds anything else, Download fails
// unless opts.Replace is set.
//
// With opts.ProjectRoot set, dest must lie inside it (else the error is an
// *OutsideError). Download never writes, renames or removes through a
// symlink below the project root (see PullOptions.ProjectRoot): a symlink
// among dest's parents, at dest, at the staging folder, at
// dest+".kiln-old" or inside the staging folder fails the pull with a
// *safepath.LinkError naming it, and neither the link nor what it points
// to is touched. Reading dest to compare it may follow symlinks that stay
// inside the project.
func Download(ctx context.Context, w io.Writer, src *Source, dest string, opts PullOptions) (*PullResult, error) {
	if src == nil {
		return nil, errors.New("download: no source")
	}
	if !validName(src.Name) {
		return nil, fmt.Errorf("cannot pull a model named %q; use letters, digits, \"_\", \".\" and \"-\"", src.Name)
	}
	files := append([]File(nil), src.Files...)
	if err := checkFileList(files, src.hub == nil); err != nil {
		return nil, fmt.Errorf("pull %s (%s): %w", src.Name, src.From, err)
	}
	sortFiles(files)
	var (
		base   *url.URL
		origin string // where the files come from, for the manifest and messages
		err    error
	)
	if src.hub != nil {
		origin = src.hub.origin()
	} else {
		if base, err = baseURL(src.BaseURL, nil); err != nil {
			return nil, fmt.Errorf("pull %s: %w", src.Name, err)
		}
		origin = base.String()
	}
	if dest == "" {
		return nil, fmt.Errorf("pull %s: no destination folder", src.Name)
	}
	if dest, err = filepath.Abs(dest); err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	trusted, err := pullBase(opts.ProjectRoot, dest)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	staging, old := dest+StagingSuffix, dest+oldSuffix
	man := &Manifest{Version: ManifestVersion, Name: src.Name, Kind: src.Kind, Description: src.Description, Source: origin, Files: files}
	res := &PullResult{Name: src.Name, Dir: dest, Manifest: man}

	upToDate := func() (bool, error) {
		same, err := holds(trusted, dest, files, opts.Replace)
		if same && opts.repair {
			same = false
		}
		if same {
			res.UpToDate = true
			fmt.Fprintf(w, "%s is up to date in %s (kiln models verify %s checks its files)\n", src.Name, dest, src.Name)
		}
		return same, err
	}
	tidy := func(held *os.File) {
		if err := tidyReplaced(trusted, dest, staging, held); err != nil {
			fmt.Fprintf(w, "warning: %v\n", err)
		}
	}
	if same, err := upToDate(); same || err != nil {
		if same {
			tidy(nil)
		}
		return res, err
	}
	// From here on things are created, written, renamed and removed: no
	// symlink may stand anywhere on the way.
	created, err := makeParents(trusted, filepath.Dir(dest), "create the model folder for "+src.Name+" in it")
	if err == nil {
		err = safepath.CheckNoLinks(trusted, dest, "replace it with "+src.Name)
	}
	if err == nil {
		err = safepath.CheckNoLinks(trusted, old, "set the previous model folder aside there")
	}
	if err != nil {
		removeEmpty(created)
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	lock, err := lockStaging(trusted, staging, "download "+src.Name+" into it")
	if err != nil {
		removeEmpty(created)
		return nil, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	defer lock.Close()
	// abandon removes what a failed pull leaves that holds no data, and
	// reports whether the staging folder is gone.
	abandon := func() bool {
		if !pruneStaging(staging) {
			return false
		}
		removeEmpty(created)
		return true
	}
	// Another process may have finished this pull while we waited.
	if same, err := upToDate(); same || err != nil {
		if same {
			tidy(lock)
		}
		abandon()
		return res, err
	}

	var seeded map[string]string
	if opts.Replace {
		seeded = seedFromExisting(dest, staging, files)
	}

	prog := newProgress(w, opts.Terminal)
	prog.note("pulling %s (%d files, %s) from %s into %s", src.Name, len(files), formatBytes(man.TotalSize()), src.describe(origin), dest)
	p := &puller{opts: opts, base: base, hub: src.hub, staging: staging, prog: prog, log: opts.log(), sums: map[string]string{}, seeded: seeded}
	if opts.CacheDir != "" {
		p.hashes = models.OpenHashCache(opts.CacheDir)
		p.cache = &blobCache{dir: filepath.Join(opts.CacheDir, BlobsDir), hashes: p.hashes, log: opts.log()}
	}
	err = p.run(ctx, files)
	prog.finish(err == nil)
	res.Fetched = p.fetched.Load()
	res.Resumed = p.resumed
	sort.Strings(res.Resumed)
	if err != nil {
		kept := !abandon()
		if errors.Is(err, hf.ErrTruncated) {
			// The Hub client retried already; another run resumes.
			err = &retryableError{err}
		}
		switch {
		case ctx.Err() != nil && kept:
			return res, fmt.Errorf("pull %s stopped: %w; what was downloaded is kept in %s and the next pull resumes from it", src.Name, ctx.Err(), staging)
		case ctx.Err() != nil:
			return res, fmt.Errorf("pull %s stopped: %w", src.Name, ctx.Err())
		case isRetryable(err) && kept:
			return res, fmt.Errorf("pull %s: %w; what was downloaded is kept in %s: run the pull again to resume", src.Name, err, staging)
		case isRetryable(err):
			return res, fmt.Errorf("pull %s: %w; run the pull again to retry", src.Name, err)
		}
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}

	// Small files of a first hf: pull were hashed as they came.
	for i := range man.Files {
		if man.Files[i].SHA256 == "" {
			man.Files[i].SHA256 = p.sums[man.Files[i].Path]
		}
	}
	if err := checkFiles(man.Files); err != nil {
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	if err := finishStaging(staging, man); err != nil {
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	if err := moveIntoPlace(trusted, staging, dest); err != nil {
		return res, fmt.Errorf("pull %s: %w", src.Name, err)
	}
	// Every file was hashed on its way in: remember that, so the first
	// build's check against kiln.lock does not read the model again.
	p.rememberHashes(dest, man.Files)
	// A replace interrupted between its two renames leaves the previous
	// folder under this name.
	if err := removeTree(trusted, old, "remove the previous model folder"); err != nil {
		fmt.Fprintf(w, "warning: %v\n", err)
	}
	fmt.Fprintf(w, "pulled %s into %s: %d files, %s (%s downloaded)\n", src.Name, dest, len(files), formatBytes(man.TotalSize()), formatBytes(res.Fetched))
	return res, nil
}

// makeParents creates dir and its missing parents below base without
// following a symlink (see safepath.MkdirAll) and returns the folders it
// was to create, outermost first, so a failed pull can remove them again.
// On error, some of them may exist.
func makeParents(base, dir, op string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); strictlyInside(base, d); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	slices.Reverse(missing)
	return missing, safepath.MkdirAll(base, dir, op)
}

// removeEmpty removes those of dirs (outermost first, as makeParents
// returns them) that are empty folders, innermost first. It never removes
// a symlink or a folder with anything in it.
func removeEmpty(dirs []string) {
	for i := len(dirs) - 1; i >= 0; i-- {
		if fi, err := os.Lstat(dirs[i]); err == nil && fi.IsDir() {
			os.Remove(dirs[i]) // fails unless empty
		}
	}
}

// pruneStaging removes what a failed pull leaves in staging that holds no
// data, so it is not mistaken for a download to resume: empty FILE.part
// files, empty folders, and staging itself when nothing else is left.
// Symlinks and files with data are left alone. It reports whether staging
// is gone. The caller holds staging's lock.
func pruneStaging(staging string) bool {
	var dirs []string
	filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil // leave what cannot be read
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular() && strings.HasSuffix(p, partSuffix):
			if fi, err := d.Info(); err == nil && fi.Size() == 0 {
				safepath.RemoveFile(p, "remove an empty partial download")
			}
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i]) // fails unless empty
	}
	_, err := os.Lstat(staging)
	return errors.Is(err, fs.ErrNotExist)
}

// removeTree removes the folder p below base, refusing a symlink at p or
// above it. Symlinks inside p are removed, never followed (os.RemoveAll
// does not follow them). A missing p is fine.
func removeTree(base, p, op string) error {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := safepath.CheckNoLinks(base, p, op); err != nil {
		return err
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// tidyReplaced removes what a replace of dest that was killed after
// putting the new folder in place left behind, once dest is known to hold
// the wanted model: the previous folder, moved aside to dest+oldSuffix or
// (after an atomic exchange) left in the staging folder, which it then
// finished and so holds a kiln-manifest.json (a partial download does
// not; it is kept for resuming). held is the staging folder's lock when
// the caller has it. A symlink at either is refused and left alone.
func tidyReplaced(base, dest, staging string, held *os.File) error {
	const op = "remove the previous model folder"
	if err := removeTree(base, dest+oldSuffix, op); err != nil {
		return err
	}
	finished := func() bool {
		_, err := os.Lstat(filepath.Join(staging, ManifestName))
		return err == nil
	}
	if _, err := os.Lstat(staging); err != nil {
		return nil
	}
	if err := safepath.CheckNoLinks(base, staging, op); err != nil {
		return err
	}
	if !finished() {
		return nil
	}
	if held == nil {
		lock, err := lockStaging(base, staging, op)
		if err != nil {
			return nil // another pull is using it
		}
		defer lock.Close()
	}
	if finished() {
		return removeTree(base, staging, op)
	}
	return nil
}

// holds reports whether dest is a model folder whose kiln-manifest.json
// lists exactly files. A dest holding something else is an error unless
// replace is set. Reading dest follows symlinks only when they stay
// inside base.
func holds(base, dest string, files []File, replace bool) (bool, error) {
	// readable checks that p can be read without leaving base.
	readable := func(p string) error {
		rel, err := filepath.Rel(base, p)
		if err == nil {
			_, err = safepath.Join(base, filepath.ToSlash(rel))
		}
		if err != nil {
			return fmt.Errorf("check destination %s: %w", dest, err)
		}
		return nil
	}
	if err := readable(dest); err != nil {
		return false, err
	}
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
	if err := readable(filepath.Join(dest, ManifestName)); err != nil {
		return false, err
	}
	m, err := ReadManifest(dest)
	if err == nil && sameFiles(m.Files, files) {
		// Cheap damage check: every file there, at its size. Verify
		// checks hashes.
		damaged := ""
		for _, f := range files {
			p := filepath.Join(dest, filepath.FromSlash(f.Path))
			if err := readable(p); err != nil {
				return false, err
			}
			st, err := os.Stat(p)
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
// folders, and writes kiln-manifest.json. A symlink in staging, which kiln
// never makes, is refused rather than removed.
func finishStaging(staging string, man *Manifest) error {
	const op = "tidy the staging folder"
	wantFile := map[string]bool{}
	wantDir := map[string]bool{".": true}
	for _, f := range man.Files {
		wantFile[f.Path] = true
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			wantDir[d] = true
		}
	}
	var extraDirs []string // outermost first
	err := filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			if !wantDir[rel] {
				extraDirs = append(extraDirs, p)
			}
			return nil
		case wantFile[rel] && d.Type().IsRegular():
			return nil
		}
		return safepath.RemoveFile(p, op) // refuses a symlink
	})
	for i := len(extraDirs) - 1; err == nil && i >= 0; i-- {
		err = os.Remove(extraDirs[i])
	}
	if err != nil {
		var le *safepath.LinkError
		if errors.As(err, &le) {
			return err
		}
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
// Renames never follow a symlink; one standing at dest or dest+".kiln-old"
// is refused (Download checked that before downloading, this is for what
// appeared since).
func moveIntoPlace(base, staging, dest string) error {
	const oldOp = "remove the previous model folder"
	parent := filepath.Dir(dest)
	if _, err := os.Lstat(dest); err == nil {
		if err := safepath.CheckNoLinks(base, dest, "replace it"); err != nil {
			return err
		}
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
			if err := removeTree(base, old, oldOp); err != nil {
				return err
			}
			if err := os.Rename(staging, old); err != nil {
				return fmt.Errorf("move the previous %s aside: %w", dest, err)
			}
			if err := removeTree(base, old, oldOp); err != nil {
				return err
			}
			return nil
		case !errors.Is(err, atomicfile.ErrExchangeUnsupported):
			return fmt.Errorf("move %s into place: %w", dest, err)
		}
		if err := removeTree(base, old, oldOp); err != nil {
			return err
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
		if err := removeTree(base, old, oldOp); err != nil {
			return err
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
// Failures (a file system without hard links, a symlink in the way, which
// the download then reports) only cost downloads. It returns the files it
// linked: path → the file of dest it is.
func seedFromExisting(dest, staging string, files []File) map[string]string {
	const op = "reuse a file of the folder being replaced"
	seeded := map[string]string{}
	for _, f := range files {
		from, err := safepath.Join(dest, f.Path)
		if err != nil {
			continue
		}
		to, err := safepath.JoinNoLinks(staging, f.Path, op)
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
		// os.Link makes a new name and never writes through one: it
		// fails if to exists, even as a symlink.
		if safepath.MkdirAll(staging, filepath.Dir(to), op) == nil && os.Link(from, to) == nil {
			seeded[f.Path] = from
		}
	}
	return seeded
}

// lockStaging creates the staging folder below base without following a
// symlink (op says why, for the error) and takes an exclusive lock on it,
// so two pulls never write the same files. The lock dies with the process.
func lockStaging(base, staging, op string) (*os.File, error) {
	for range 3 {
		if err := safepath.MkdirAll(base, staging, op); err != nil {
			return nil, err
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
		// pull that held the lock, or swapped for a symlink; then lock a
		// fresh one (MkdirAll refuses the symlink).
		a, aerr := d.Stat()
		b, berr := os.Lstat(staging)
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
	base    *url.URL   // files are base + path, for URL and catalogue pulls
	hub     *hubSource // or they come from the Hugging Face Hub
	staging string
	prog    progress
	log     *slog.Logger
	cache   *blobCache        // nil without opts.CacheDir
	hashes  *models.HashCache // nil without opts.CacheDir

	seeded  map[string]string // path → the file of the replaced folder linked there
	fetched atomic.Int64
	mu      sync.Mutex
	resumed []string
	sums    map[string]string // path → sha256 computed for files listed without one
}

// keptSum hashes a file found in the staging folder. One linked from the
// folder being replaced is the same file as that one, whose hash the hash
// memory may already know, so repairing one file of a large model does
// not read the others.
func (p *puller) keptSum(ctx context.Context, f File, final string) (string, error) {
	if from, ok := p.seeded[f.Path]; ok && p.hashes != nil {
		a, aerr := os.Lstat(final)
		b, berr := os.Stat(from)
		if aerr == nil && berr == nil && os.SameFile(a, b) {
			sum, _, err := p.hashes.SHA256(ctx, from)
			return sum, err
		}
	}
	sum, _, err := hashFile(ctx, final)
	return sum, err
}

// rememberHashes records the verified hashes of the files now in dir, so
// models.HashCache users (the lock check, Fingerprint) need not read
// them again.
func (p *puller) rememberHashes(dir string, files []File) {
	if p.hashes == nil {
		return
	}
	for _, f := range files {
		abs := filepath.Join(dir, filepath.FromSlash(f.Path))
		if fi, err := os.Lstat(abs); err == nil && fi.Mode().IsRegular() && fi.Size() == f.Size {
			p.hashes.Remember(abs, fi, f.SHA256)
		}
	}
	if err := p.hashes.Save(); err != nil {
		p.log.Debug("remember file hashes", "error", err)
	}
}

// run downloads files with opts.Parallel workers, largest first. The first
// failure stops the others; a cancelled ctx is a failure even when it
// came before any file started.
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
	if firstErr == nil {
		// Files skipped because the caller cancelled are not downloaded.
		firstErr = ctx.Err()
	}
	return firstErr
}
