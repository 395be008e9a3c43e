package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// Options configure a build.
type Options struct {
	// Root is the project folder; source files are relative to it.
	// Default: the current folder.
	Root string
	// OutDir receives published outputs. Relative paths are relative to
	// Root. Default: Root/out.
	OutDir string
	// CacheDir holds the content-addressed cache, the build state and the
	// project lock. Relative paths are relative to Root. Default:
	// Root/.kiln/cache.
	CacheDir string
	// Jobs limits how many CPU stages run at once (and how many stages are
	// prepared at once). Default: runtime.NumCPU().
	Jobs int
	// AccelJobs limits how many Accelerator stages run at once on each
	// device. Default: 1.
	AccelJobs int
	// KeepGoing continues past failures: stages that do not depend on a
	// failed stage still build, and every failure is reported. Without
	// it, no new stage starts after the first failure (running ones
	// finish and are cached); the stages the failure does not block are
	// still looked up, so a cached one is reported cached, and only those
	// that would have to run are skipped.
	KeepGoing bool
	// DryRun computes what would run and why, running nothing and writing
	// nothing. Stages report StatusWouldBuild or StatusCached.
	DryRun bool
	// Explain fills StageReport.Reasons for stages that run (DryRun and
	// Check always do).
	Explain bool
	// Check reports StatusStale for every stage whose key is not cached or
	// whose published outputs are missing or modified, running nothing
	// and writing nothing; Build then returns an error wrapping ErrStale.
	Check bool
	// Only limits the build to these assets (or stage IDs) and what they
	// depend on. Empty builds everything. Pass the whole project's stages
	// to Build and select with Only: stages missing from the list count
	// as removed from the project (their outputs become orphans).
	Only []string
	// Log receives diagnostics. Default: discarded.
	Log *slog.Logger
	// Progress receives events for a display. May be nil.
	Progress Progress
	// Session, when set, lets this build take over work a superseded
	// build of the same session left running, and leave its own for the
	// next one (see Session). Watch mode sets it; a single build does not
	// need one.
	Session *Session
	// Remote, when set, is a cache shared with other machines: a stage
	// whose key is not in the local cache is looked up there before it
	// runs, and served from it (status StatusRemote) when it has the
	// key. Faults never fail the build: the stage runs here instead.
	// DryRun and Check do not use it.
	Remote RemoteCache
	// RemoteUpload sends the results of the stages this build runs (and
	// of diffusion stages it finds in the local cache that the remote
	// cache lacks) to Remote, in the background; the build waits for
	// them at its end, at most RemoteDrain.
	RemoteUpload bool
	// RemoteUploads bounds the uploads in flight. Default: 4.
	RemoteUploads int
	// RemoteDrain bounds how long the build waits at its end for
	// uploads still going; the rest are abandoned, with a warning.
	// Default: 2 minutes.
	RemoteDrain time.Duration
	// Shard, when set (Count > 0), builds only this shard's part of the
	// diffusion work and what it depends on (see Shard). Every machine
	// of a sharded build must be given the same stages.
	Shard Shard

	// after starts the RemoteDrain timer (time.After; tests replace it).
	after func(time.Duration) <-chan time.Time
}

// ErrFailed is wrapped by Build's error when stages failed.
var ErrFailed = errors.New("build failed")

// ErrStale is wrapped by Build's error in check mode when stages are
// stale.
var ErrStale = errors.New("outputs are not up to date")

// resolved fills defaults and makes folders absolute.
func (o Options) resolved() (Options, error) {
	if o.DryRun && o.Check {
		return o, errors.New("dry-run and check cannot be combined; use one of them")
	}
	if o.Root == "" {
		o.Root = "."
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return o, fmt.Errorf("resolve project folder %s: %w", o.Root, err)
	}
	o.Root = root
	abs := func(p, def string) string {
		if p == "" {
			p = def
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		return filepath.Clean(p)
	}
	o.OutDir = abs(o.OutDir, "out")
	o.CacheDir = abs(o.CacheDir, filepath.Join(".kiln", "cache"))
	if o.OutDir == o.CacheDir {
		return o, fmt.Errorf("output folder and cache folder are both %s; give them different folders", o.OutDir)
	}
	for _, f := range []struct{ what, dir string }{{"output folder", o.OutDir}, {"cache folder", o.CacheDir}} {
		if err := contained(root, f.dir); err != nil {
			return o, fmt.Errorf("%s: %w", f.what, err)
		}
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.AccelJobs <= 0 {
		o.AccelJobs = 1
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Shard.Count > 0 {
		if err := o.Shard.check(); err != nil {
			return o, err
		}
	}
	if o.RemoteDrain <= 0 {
		o.RemoteDrain = defaultRemoteDrain
	}
	if o.after == nil {
		o.after = time.After
	}
	return o, nil
}

// contained checks that a folder inside the project (by its spelling) does
// not lead out of it through a symlink: kiln writes there, and clean and
// the cache's housekeeping delete there, so a link to elsewhere could make
// it overwrite or remove files outside the project. A folder a caller
// placed outside the project on purpose is the caller's business.
func contained(root, dir string) error {
	rel, err := filepath.Rel(root, dir)
	if err != nil || rel == "." || !safepath.Within(root, dir) {
		return nil
	}
	_, err = safepath.Join(root, filepath.ToSlash(rel))
	return err
}

// prepareFolders creates the cache folder and its layout (cas/, ac/,
// tmp/) and checks the output folder, refusing a symlink at any component
// below the project root: everything kiln writes goes through these
// folders, so a link planted in a checkout could otherwise redirect a
// write out of the project, or onto a source inside it. A folder the
// caller placed outside the project on purpose is checked from its own
// spelling on.
func (o Options) prepareFolders() error {
	if err := mkdirNoLinks(o.Root, o.CacheDir, "create the cache folder"); err != nil {
		return err
	}
	for _, sub := range []string{"cas", "ac", "tmp"} {
		if err := safepath.MkdirAll(o.CacheDir, filepath.Join(o.CacheDir, sub), "write to the cache"); err != nil {
			return err
		}
	}
	if safepath.Within(o.Root, o.OutDir) {
		return safepath.CheckNoLinks(o.Root, o.OutDir, "write outputs there")
	}
	return nil
}

// mkdirNoLinks creates dir with safepath.MkdirAll from root when dir is
// inside root, and with os.MkdirAll when the caller put it elsewhere.
func mkdirNoLinks(root, dir, op string) error {
	if safepath.Within(root, dir) {
		return safepath.MkdirAll(root, dir, op)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (o Options) mode() string {
	switch {
	case o.DryRun:
		return "dry-run"
	case o.Check:
		return "check"
	}
	return "build"
}

// Build brings the outputs of stages up to date: each selected stage whose
// key is in the cache is materialised from it, every other one runs, in
// dependency order, in parallel within the CPU and accelerator limits.
//
// The returned report is non-nil whenever the graph was valid, even with
// an error. The error wraps: a *GraphError for an invalid graph or unknown
// Only names; ErrLocked when another build holds the project lock;
// context.Canceled (or the context's error) when ctx was cancelled;
// ErrFailed when stages failed; ErrStale when Check found stale stages.
//
// A real build holds the project lock; DryRun and Check take no lock and
// write nothing, so they can run next to a build (and report what they
// see at that moment).
func Build(ctx context.Context, stages []Stage, o Options) (*Report, error) {
	started := time.Now()
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	readOnly := o.DryRun || o.Check
	if readOnly {
		o.Session = nil
	}
	liveRuns := false
	if !readOnly {
		if err := o.prepareFolders(); err != nil {
			return nil, err
		}
		if o.Session != nil {
			release, live, err := o.Session.acquire(o.CacheDir)
			if err != nil {
				return nil, err
			}
			defer release()
			liveRuns = live
		} else {
			lk, err := acquireLock(o.CacheDir)
			if err != nil {
				return nil, err
			}
			defer lk.release()
		}
	}
	// Read the build state while the graph is validated.
	stateCh := make(chan *buildState, 1)
	go func() { stateCh <- loadState(o.CacheDir, o.Log) }()
	dag, mask, err := plan(stages, o, readOnly)
	state := <-stateCh
	if err != nil {
		return nil, err
	}
	journaled := mergeJournal(o.CacheDir, state)

	b := newBuilder(o, dag, mask, state)
	defer b.dirs.close()
	b.journaled = journaled && !readOnly
	if o.Shard.Count > 0 {
		b.shard = dag.shardReport(o)
	}
	if o.Remote != nil && !readOnly {
		b.remote = newRemoteRun(ctx, o, b.cache)
	}
	if !readOnly {
		// Runs a superseded build of the session left going write into
		// the cache's temporary folder, and the session has held the
		// lock since they started: nothing there is left over.
		if err := b.recover(!liveRuns); err != nil {
			return nil, err
		}
	}
	if o.Session != nil {
		selected := make(map[string]bool, b.selected)
		for _, n := range b.nodes {
			if n.selected {
				selected[n.st.ID] = true
			}
		}
		o.Session.prune(selected)
	}
	b.prog.start(b.selected)
	b.run(ctx)
	if o.Session != nil && !o.Session.detaches(context.Cause(ctx)) {
		o.Session.finishBuild()
	}
	var finishErr error
	if !readOnly {
		finishErr = b.finish()
	}
	if b.remote != nil {
		// The uploads read blobs from the cache: they end before the
		// project lock is released.
		b.remote.finish(ctx, o.after(o.RemoteDrain))
	}
	rep := b.report(started)
	rep.Interrupted = ctx.Err() != nil
	b.prog.done(rep)

	switch {
	case ctx.Err() != nil:
		return rep, fmt.Errorf("build interrupted: %w", ctx.Err())
	case finishErr != nil:
		return rep, finishErr
	case rep.Totals[StatusFailed] > 0:
		return rep, fmt.Errorf("%w: %s", ErrFailed, failureSummary(rep))
	case o.Check && rep.Totals[StatusStale] > 0:
		return rep, fmt.Errorf("%w: %d of %d stages are stale (run kiln build to update them)", ErrStale, rep.Totals[StatusStale], len(rep.Stages))
	}
	return rep, nil
}

// plan validates the stages and selects those to build.
func plan(stages []Stage, o Options, readOnly bool) (*DAG, []bool, error) {
	dag, err := Graph(stages)
	if err != nil {
		return nil, nil, err
	}
	mask, err := dag.Select(o.Only)
	if err != nil {
		return nil, nil, err
	}
	if o.Shard.Count > 0 {
		mask = dag.shardMask(mask, o.Shard)
	}
	if !readOnly {
		var problems []Problem
		for i, s := range dag.stages {
			if mask[i] && s.Run == nil {
				problems = append(problems, Problem{Where: s.Where,
					Message: fmt.Sprintf("stage %q (kind %q) has no Run function; this is a bug in kiln, please report it", s.ID, s.Kind)})
			}
		}
		if len(problems) > 0 {
			return nil, nil, &GraphError{Problems: problems}
		}
	}
	return dag, mask, nil
}

// failureSummary names the failed stages, the first one in full.
func failureSummary(rep *Report) string {
	var failed []StageReport
	for _, s := range rep.Stages {
		if s.Status == StatusFailed {
			failed = append(failed, s)
		}
	}
	first := failed[0]
	msg := fmt.Sprintf("stage %s failed", first.ID)
	if first.Error != nil {
		msg += ": " + first.Error.Error()
	}
	if len(failed) > 1 {
		msg = fmt.Sprintf("%d stages failed; first: %s", len(failed), msg)
	}
	return msg
}

// node is a stage during a build.
type node struct {
	st         *Stage
	deps       []*node
	dependents []*node
	selected   bool
	pending    int // unfinished selected deps; owned by the coordinator

	// adopted is the run of this stage a superseded build left going,
	// which this build takes over; owned by the stage's worker.
	adopted *sessionRun

	// repairMu serialises rebuilding this stage when a dependent finds
	// its cache entry damaged.
	repairMu sync.Mutex

	// mu guards the results below. They are written by the stage's worker
	// before it reports completion, and again only by a repair.
	mu      sync.Mutex
	key     digest
	parts   *keyParts
	outputs outputSet
	known   bool // outputs are known (the stage is built or cached)
	notes   map[string]string
	rep     StageReport
	queued  time.Duration // waited for slots and equal keys (rep.Queue)
}

// log returns the stage's logger (made on demand: most stages of a
// no-op build never log).
func (n *node) log(b *builder) *slog.Logger { return b.o.Log.With("stage", n.st.ID) }

// status returns the node's current status.
func (n *node) status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rep.Status
}

// builder runs one build.
type builder struct {
	o        Options
	readOnly bool
	dag      *DAG
	nodes    []*node
	selected int
	cache    cache
	old      *buildState
	prog     *syncProgress
	cpu      chan struct{}
	accel    map[string]chan struct{}

	remote *remoteRun   // nil without a remote cache
	shard  *ShardReport // nil unless sharded

	clock   func() time.Time       // what queue times are measured with; nil: time.Now
	dirs    *statDirs              // stats the sources and outputs of the build
	stopped atomic.Pointer[string] // the stage whose failure stopped the build
	hashed  atomic.Int64           // files hashed to check them (not outputs being written)

	mu       sync.Mutex // guards the fields below
	files    map[string]*sourceHash
	blobs    map[digest]statRecord   // blobs verified in this build
	outputs  map[string]outputRecord // outputs published or checked in this build
	keyLocks map[digest]*sync.Mutex
	wrote    bool     // files were written to the output folder or the cache
	journal  *os.File // the output journal, once this build published a file
	// journaled is set when the loaded state took entries from the output
	// journal of a killed build: the state must be saved so they last.
	journaled bool
}

// sourceHash is the content hash of one source file, computed once.
type sourceHash struct {
	once sync.Once
	sha  digest
	rec  statRecord
	err  error
}

func newBuilder(o Options, dag *DAG, mask []bool, old *buildState) *builder {
	b := &builder{
		o:        o,
		readOnly: o.DryRun || o.Check,
		dag:      dag,
		cache:    cache{dir: o.CacheDir},
		old:      old,
		prog:     &syncProgress{p: o.Progress},
		cpu:      make(chan struct{}, o.Jobs),
		accel:    map[string]chan struct{}{},
		files:    make(map[string]*sourceHash, len(dag.files)),
		blobs:    map[digest]statRecord{},
		outputs:  map[string]outputRecord{},
		keyLocks: map[digest]*sync.Mutex{},
		dirs:     newStatDirs(),
	}
	b.nodes = make([]*node, len(dag.stages))
	for i, s := range dag.stages {
		b.nodes[i] = &node{st: s, selected: mask[i], rep: StageReport{ID: s.ID, Asset: s.Asset, Kind: s.Kind, Generation: s.Generation}}
		if mask[i] {
			b.selected++
		}
		if s.Resource == Accelerator {
			dev := deviceName(s.Device)
			if b.accel[dev] == nil {
				if o.Session != nil {
					b.accel[dev] = o.Session.slots(dev, o.AccelJobs)
				} else {
					b.accel[dev] = make(chan struct{}, o.AccelJobs)
				}
			}
		}
	}
	for i, n := range b.nodes {
		for _, j := range dag.deps[i] {
			n.deps = append(n.deps, b.nodes[j])
			if n.selected {
				n.pending++
			}
		}
		for _, j := range dag.dependents[i] {
			n.dependents = append(n.dependents, b.nodes[j])
		}
	}
	return b
}

// recover clears what an earlier, killed build may have left: the cache's
// temporary folder, temporary files next to the state file, and (if that
// build was writing outputs) temporary files next to published outputs.
// It runs under the project lock.
func (b *builder) recover(clearTmp bool) error {
	if !clearTmp {
		return nil
	}
	if err := os.RemoveAll(b.cache.tmpDir()); err != nil {
		return fmt.Errorf("clear cache temporary folder %s: %w", b.cache.tmpDir(), err)
	}
	if err := safepath.MkdirAll(b.o.CacheDir, b.cache.tmpDir(), "create the cache's temporary folder"); err != nil {
		return err
	}
	if _, err := atomicfile.CleanTemps(b.o.CacheDir); err != nil {
		return err
	}
	if _, err := os.Lstat(b.cache.markerPath()); err != nil {
		return nil
	}
	b.o.Log.Info("the previous build did not finish; removing its temporary files")
	dirs := map[string]bool{b.o.OutDir: true}
	for p := range b.old.Outputs {
		dirs[filepath.Join(b.o.OutDir, filepath.FromSlash(path.Dir(p)))] = true
	}
	for _, s := range b.dag.stages {
		for _, p := range s.Publish {
			dirs[filepath.Join(b.o.OutDir, filepath.FromSlash(path.Dir(path.Clean(p))))] = true
		}
		if s.PublishDir != "" {
			dirs[filepath.Join(b.o.OutDir, filepath.FromSlash(path.Clean(s.PublishDir)))] = true
		}
	}
	for d := range dirs {
		removed, err := atomicfile.CleanTemps(d)
		if err != nil {
			return err
		}
		for _, r := range removed {
			b.o.Log.Debug("removed leftover temporary file", "path", r)
		}
	}
	if err := os.Remove(b.cache.markerPath()); err != nil && !isNotExist(err) {
		return fmt.Errorf("remove %s: %w", b.cache.markerPath(), err)
	}
	return nil
}

// markWrite records that the build is about to write files, creating the
// marker that tells the next build to clean up if this one is killed.
func (b *builder) markWrite() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wrote {
		return nil
	}
	if err := atomicfile.WriteFile(b.cache.markerPath(), []byte("a build is writing files; if no build is running, the next one cleans up\n"), 0o644); err != nil {
		return err
	}
	b.wrote = true
	return nil
}

// run schedules the selected stages: a coordinator (this goroutine) hands
// ready stages to Jobs workers and decides the fate of stages whose
// dependencies failed; workers report completion on done.
func (b *builder) run(ctx context.Context) {
	ready := make(chan *node, b.selected)
	done := make(chan *node, b.selected)
	var wg sync.WaitGroup
	for range b.o.Jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range ready {
				if !b.work(ctx, n, done) {
					done <- n
				}
			}
		}()
	}
	var finished []*node // decided without running
	dispatch := func(n *node) {
		if status, reason := b.blocked(ctx, n); status != "" {
			n.rep.Status = status
			n.rep.Reasons = []string{reason}
			finished = append(finished, n)
			return
		}
		ready <- n
	}
	for _, n := range b.nodes {
		if n.selected && n.pending == 0 {
			dispatch(n)
		}
	}
	for remaining := b.selected; remaining > 0; remaining-- {
		var n *node
		if k := len(finished); k > 0 {
			n, finished = finished[k-1], finished[:k-1]
		} else {
			n = <-done
		}
		n.mu.Lock()
		rep := n.rep
		n.mu.Unlock()
		b.noteFailure(n, rep.Status)
		b.prog.stageDone(rep)
		for _, d := range n.dependents {
			if !d.selected {
				continue
			}
			d.pending--
			if d.pending == 0 {
				dispatch(d)
			}
		}
	}
	close(ready)
	wg.Wait()
}

// noteFailure stops the build after n's failure unless KeepGoing. Workers
// call it as soon as a stage fails, so no further stage starts.
func (b *builder) noteFailure(n *node, status Status) {
	if status == StatusFailed && !b.o.KeepGoing && !b.readOnly {
		id := n.st.ID
		b.stopped.CompareAndSwap(nil, &id)
	}
}

// blocked decides, for a stage whose dependencies have all finished,
// whether it cannot run: a dependency failed or was skipped (skipped), a
// dependency would be rebuilt or is stale (so its outputs are unknown), or
// the build was interrupted.
func (b *builder) blocked(ctx context.Context, n *node) (Status, string) {
	var unknown *node
	for _, d := range n.deps {
		switch d.status() {
		case StatusFailed:
			return StatusSkipped, fmt.Sprintf("dependency %s failed", d.st.ID)
		case StatusSkipped, StatusInterrupted:
			return StatusSkipped, fmt.Sprintf("dependency %s was not built", d.st.ID)
		case StatusWouldBuild, StatusStale:
			// A stale stage whose key is cached (only its published
			// file is off) still has known outputs.
			d.mu.Lock()
			known := d.known
			d.mu.Unlock()
			if unknown == nil && !known {
				unknown = d
			}
		}
	}
	if unknown != nil {
		if b.o.Check {
			return StatusStale, fmt.Sprintf("dependency %s is stale", unknown.st.ID)
		}
		return StatusWouldBuild, fmt.Sprintf("dependency %s would be rebuilt", unknown.st.ID)
	}
	if ctx.Err() != nil {
		return StatusSkipped, "not started: the build was interrupted"
	}
	// A build stopped after a failure still looks up the stages the
	// failure does not block (work skips them only if they would run),
	// so a cached stage is reported cached, not skipped.
	return "", ""
}

// switchSlot moves the caller from the executor slot it holds (*held, nil
// for none) to want (nil to release), waiting for a free slot. It fails
// only when ctx is cancelled, leaving *held nil.
func (b *builder) switchSlot(ctx context.Context, held *chan struct{}, want chan struct{}) error {
	if *held == want {
		return nil
	}
	if *held != nil {
		<-*held
		*held = nil
	}
	if want == nil {
		return nil
	}
	select {
	case want <- struct{}{}:
		*held = want
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slotFor returns the limit stage n runs under.
func (b *builder) slotFor(n *node) chan struct{} {
	if n.st.Resource == Accelerator {
		return b.accel[deviceName(n.st.Device)]
	}
	return b.cpu
}

// keyLock returns the mutex that makes stages with equal keys run once.
func (b *builder) keyLock(key digest) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.keyLocks[key]
	if m == nil {
		m = &sync.Mutex{}
		b.keyLocks[key] = m
	}
	return m
}

// fail records a finished stage's status and error.
func (n *node) fail(status Status, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.rep.Status = status
	n.rep.Error = &StageError{Message: err.Error() + diskHint(err), Where: n.st.Where}
}

// diskHint says what to do about a full disk, which stage code reports as
// a bare write error.
func diskHint(err error) string {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return " (the disk is full: free some space and run kiln build again; stages that finished are kept)"
	}
	return ""
}

// report assembles the build report.
func (b *builder) report(started time.Time) *Report {
	rep := &Report{
		SchemaVersion: ReportSchemaVersion,
		Mode:          b.o.mode(),
		Root:          b.o.Root,
		OutDir:        b.o.OutDir,
		CacheDir:      b.o.CacheDir,
		Started:       started,
		Totals:        map[Status]int{},
		Stages:        make([]StageReport, 0, b.selected),
	}
	for _, n := range b.nodes {
		if !n.selected {
			continue
		}
		n.mu.Lock()
		sr := n.rep
		n.mu.Unlock()
		rep.Stages = append(rep.Stages, sr)
		rep.Totals[sr.Status]++
	}
	rep.Orphans = b.orphans()
	rep.FilesHashed = int(b.hashed.Load())
	if b.remote != nil {
		rep.Remote = b.remote.report()
	}
	rep.Shard = b.shard
	rep.Duration = Duration(time.Since(started))
	return rep
}

// orphans lists outputs an earlier build published that no stage
// publishes any more and that still exist.
func (b *builder) orphans() []string {
	var out []string
	dynamic := b.dynamicOutputs()
	for _, p := range sortedKeys(b.old.Outputs) {
		if b.dag.published[p] != nil || dynamic.has(p) {
			continue
		}
		if _, err := os.Lstat(filepath.Join(b.o.OutDir, filepath.FromSlash(p))); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// finish makes everything written durable, then saves the build state if
// it changed and removes the unfinished-build marker.
func (b *builder) finish() error {
	journal := b.journal != nil || b.journaled
	if b.journal != nil {
		b.journal.Close()
	}
	changed := journal || b.stateChanged()
	if b.wrote || changed {
		// One flush of each file system instead of one per file; the
		// state that vouches for the files is written only after it
		// (files it newly vouches for may have been written by an
		// earlier build that was killed before its flush).
		for _, dir := range []string{b.o.CacheDir, b.o.OutDir} {
			if err := atomicfile.SyncFS(dir); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	if changed {
		if err := b.newState().save(b.o.CacheDir); err != nil {
			return err
		}
	}
	if journal {
		if err := removeJournal(b.o.CacheDir); err != nil {
			return err
		}
	}
	if b.wrote {
		if err := os.Remove(b.cache.markerPath()); err != nil && !isNotExist(err) {
			return fmt.Errorf("remove %s: %w", b.cache.markerPath(), err)
		}
	}
	return nil
}

// stateChanged reports whether this build learnt anything the saved state
// lacks, without building a new state (a no-op build answers no cheaply).
// When unsure it answers yes, which only costs a save.
func (b *builder) stateChanged() bool {
	for p, rec := range b.outputs {
		if b.old.Outputs[p] != rec {
			return true
		}
	}
	for sha, rec := range b.blobs {
		if b.old.Blobs[sha] != rec {
			return true
		}
	}
	for _, n := range b.nodes {
		n.mu.Lock()
		status, key, outs, notes, known := n.rep.Status, n.key, n.outputs, n.notes, n.known
		n.mu.Unlock()
		if n.selected && (status == StatusBuilt || status == StatusCached || status == StatusRemote) && known {
			prev := b.old.Stages[n.st.ID]
			if prev == nil || prev.Key != key || !slices.Equal(prev.Outputs, outs) || !maps.Equal(prev.Notes, notes) {
				return true
			}
		}
	}
	for id := range b.old.Stages {
		if _, ok := b.dag.index[id]; !ok {
			return true
		}
	}
	for f, h := range b.files {
		if h.err == nil && !h.rec.SHA256.IsZero() && b.old.Files[f] != h.rec {
			return true
		}
	}
	for f := range b.old.Files {
		if !b.dag.files[f] {
			return true
		}
	}
	for p := range b.old.Outputs {
		if b.dag.published[p] == nil {
			if _, err := os.Lstat(filepath.Join(b.o.OutDir, filepath.FromSlash(p))); err != nil {
				return true
			}
		}
	}
	// Blob records are pruned to the blobs the saved stages name, so with
	// the stages unchanged there is nothing to prune.
	return false
}

// newState merges this build's results into the previous state, dropping
// entries for stages, files, orphaned outputs and blobs that no longer
// exist.
func (b *builder) newState() *buildState {
	st := &buildState{
		Stages:  make(map[string]*stageState, len(b.nodes)),
		Files:   make(map[string]statRecord, len(b.dag.files)),
		Outputs: make(map[string]outputRecord, len(b.dag.published)),
		Blobs:   make(map[digest]statRecord, len(b.old.Blobs)),
	}
	for _, n := range b.nodes {
		id := n.st.ID
		n.mu.Lock()
		status, key, outs, notes, known := n.rep.Status, n.key, n.outputs, n.notes, n.known
		n.mu.Unlock()
		if n.selected && (status == StatusBuilt || status == StatusCached || status == StatusRemote) && known {
			ss := &stageState{Key: key, Outputs: outs, Notes: notes}
			st.Stages[id] = ss
		} else if prev := b.old.Stages[id]; prev != nil {
			st.Stages[id] = prev
		}
	}

	for f := range b.dag.files {
		if h := b.files[f]; h != nil && h.err == nil && !h.rec.SHA256.IsZero() {
			st.Files[f] = h.rec
		} else if rec, ok := b.old.Files[f]; ok {
			st.Files[f] = rec
		}
	}

	dynamic := b.dynamicOutputs()
	for p, rec := range b.old.Outputs {
		if b.dag.published[p] == nil && !dynamic.has(p) {
			// An orphan: keep tracking it while it exists, so clean
			// can remove it.
			if _, err := os.Lstat(filepath.Join(b.o.OutDir, filepath.FromSlash(p))); err != nil {
				continue
			}
		}
		st.Outputs[p] = rec
	}
	for p, rec := range b.outputs {
		st.Outputs[p] = rec
	}

	// Keep verified-stat records only for blobs some stage still names.
	live := make(map[digest]bool, len(st.Stages))
	for _, s := range st.Stages {
		for _, o := range s.Outputs {
			live[o.SHA256] = true
		}
	}
	for sha, rec := range b.old.Blobs {
		if live[sha] {
			st.Blobs[sha] = rec
		}
	}
	for sha, rec := range b.blobs {
		if live[sha] {
			st.Blobs[sha] = rec
		}
	}
	return st
}

// joinNames lists names for messages.
func joinNames(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// dynamicSet holds the paths PublishDir stages publish now.
type dynamicSet struct {
	paths map[string]bool
	// open are the folders of PublishDir stages whose outputs are not
	// known in this build (not selected, or failed): everything inside
	// them counts as published, so nothing of theirs becomes an orphan.
	open []string
}

func (d dynamicSet) has(p string) bool {
	if d.paths[p] {
		return true
	}
	for _, dir := range d.open {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}

// dynamicOutputs collects what PublishDir stages publish in this build.
func (b *builder) dynamicOutputs() dynamicSet {
	d := dynamicSet{paths: map[string]bool{}}
	for _, n := range b.nodes {
		dir := n.st.PublishDir
		if dir == "" {
			continue
		}
		n.mu.Lock()
		outs, known := n.outputs, n.known
		n.mu.Unlock()
		if !known {
			d.open = append(d.open, path.Clean(dir))
			continue
		}
		for _, pub := range publishedPaths(n.st, outs) {
			d.paths[pub.rel] = true
		}
	}
	return d
}
