package watch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long the project must be quiet after a change
// before a batch is delivered: long enough to gather one editor save (a
// temporary file, a rename, a chmod) or a "save all", short enough to feel
// instant.
const DefaultDebounce = 100 * time.Millisecond

// DefaultPollInterval is how often folders that could not be watched
// (because the watch limit is reached) are checked for changes.
const DefaultPollInterval = 2 * time.Second

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// Ignore says what to skip; the folder watched is its Root. Required.
	Ignore *Ignore
	// Debounce is the quiet time that ends a batch. Default:
	// DefaultDebounce.
	Debounce time.Duration
	// MaxDelay caps how long a continuous stream of changes can hold a
	// batch back, so a process that writes into the project without
	// pause cannot starve rebuilds. Default: ten times Debounce, at least
	// one second.
	MaxDelay time.Duration
	// PollInterval is how often folders that could not be watched are
	// compared with their last known state. Default: DefaultPollInterval.
	PollInterval time.Duration
	// Warn receives warnings meant for the user (inotify limits), one per
	// line. Default: none (they still go to Log).
	Warn io.Writer
	// Log receives diagnostics. Default: discarded.
	Log *slog.Logger
}

// Batch is one debounced set of changes.
type Batch struct {
	// Paths are the changed files (created, written, removed or renamed),
	// relative to the project root, slash-separated, sorted, each once.
	Paths []string
	// Rescan is set when change events were lost (the kernel's event
	// queue overflowed) or folders are polled because they could not be
	// watched. Paths then come from comparing file sizes and modification
	// times with the last known state, which can miss an edit that keeps
	// both; a build should treat every input as possibly changed.
	Rescan bool
}

// merge adds b's changes to a.
func (a Batch) merge(b Batch) Batch {
	a.Paths = mergeSorted(a.Paths, b.Paths)
	a.Rescan = a.Rescan || b.Rescan
	return a
}

// empty reports whether the batch carries nothing to rebuild for.
func (a Batch) empty() bool { return len(a.Paths) == 0 && !a.Rescan }

// mergeSorted returns the sorted union of two sorted sets.
func mergeSorted(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return append([]string(nil), b...)
	}
	set := make(map[string]bool, len(a)+len(b))
	for _, p := range a {
		set[p] = true
	}
	for _, p := range b {
		set[p] = true
	}
	return sortedSet(set)
}

// sortedSet returns the keys of set, sorted.
func sortedSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// stamp is what a rescan compares to decide a file changed.
type stamp struct {
	size  int64
	mtime int64
	mode  fs.FileMode
}

func stampOf(fi fs.FileInfo) stamp {
	return stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
}

// Watcher follows every folder of a project and delivers debounced
// batches of changed files on Batches. Make one with NewWatcher; stop it
// with Close.
//
// It watches folders, not files: editors save by writing a temporary file
// and renaming it over the original (vim, JetBrains safe write, VS Code),
// which would silently end a watch on the file itself. New folders are
// watched as they appear (and the files already in them reported), and
// removed folders are dropped. When the kernel drops events, or a folder
// cannot be watched because the per-user limit is reached, it rescans the
// project (see Batch.Rescan) and prints a warning explaining the limit.
type Watcher struct {
	o         WatcherOptions
	ign       *Ignore
	fw        *fsnotify.Watcher
	log       *slog.Logger
	out       chan Batch
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	// addWatch adds a watch on one folder; tests replace it to simulate
	// the watch limit.
	addWatch func(dir string) error
	timer    *time.Timer

	mu      sync.Mutex      // guards dirs and missing, read by Watched
	dirs    map[string]bool // absolute folders being watched
	missing map[string]bool // absolute folders that could not be watched (limit)

	// Owned by the loop goroutine (and NewWatcher before it starts).
	snap      map[string]stamp // absolute path → last known state, files only
	pending   map[string]bool  // relative paths changed since the last batch
	rescanned bool             // the pending changes came from a rescan
	first     time.Time        // when the first pending change was seen
	limitDir  string           // first folder refused by the watch limit in this pass
	warned    bool             // the watch-limit warning was printed for this episode
}

// NewWatcher starts watching the project folder o.Ignore.Root() and
// everything under it that o.Ignore does not skip.
func NewWatcher(o WatcherOptions) (*Watcher, error) {
	w, err := newWatcher(o, nil)
	if err != nil {
		return nil, err
	}
	w.start()
	return w, nil
}

// start runs the event loop.
func (w *Watcher) start() {
	w.wg.Add(1)
	go w.loop()
}

// newWatcher sets a Watcher up without starting its loop, with a
// replaceable watch-adding function (tests simulate the watch limit).
func newWatcher(o WatcherOptions, add func(*fsnotify.Watcher, string) error) (*Watcher, error) {
	if o.Ignore == nil {
		return nil, errors.New("watch: WatcherOptions.Ignore is required (make it with NewIgnore)")
	}
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = max(10*o.Debounce, time.Second)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	root := o.Ignore.Root()
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("watch %s: not a folder; give the project folder", root)
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		if isInstanceLimit(err) {
			return nil, instanceLimitError(err)
		}
		return nil, fmt.Errorf("start watching files: %w", err)
	}
	w := &Watcher{
		o:       o,
		ign:     o.Ignore,
		fw:      fw,
		log:     o.Log,
		out:     make(chan Batch),
		done:    make(chan struct{}),
		timer:   time.NewTimer(time.Hour),
		dirs:    map[string]bool{},
		missing: map[string]bool{},
		snap:    map[string]stamp{},
		pending: map[string]bool{},
	}
	w.timer.Stop()
	w.addWatch = fw.Add
	if add != nil {
		w.addWatch = func(dir string) error { return add(fw, dir) }
	}
	if err := w.addTree(root, false); err != nil {
		fw.Close()
		return nil, err
	}
	w.warnLimit()
	return w, nil
}

// Batches delivers each debounced batch of changes. It is closed when the
// watcher is closed.
func (w *Watcher) Batches() <-chan Batch { return w.out }

// Close stops watching and closes Batches. It is safe to call more than
// once.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		err = w.fw.Close()
		w.wg.Wait()
	})
	return err
}

// Watched returns the folders being watched, relative to the project root
// and sorted ("." is the root).
func (w *Watcher) Watched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.dirs))
	for d := range w.dirs {
		out = append(out, w.ign.Rel(d))
	}
	sort.Strings(out)
	return out
}

// Unwatched returns the folders that could not be watched because of the
// watch limit and are polled instead, relative to the project root.
func (w *Watcher) Unwatched() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.missing))
	for d := range w.missing {
		out = append(out, w.ign.Rel(d))
	}
	sort.Strings(out)
	return out
}

// loop handles events until Close.
func (w *Watcher) loop() {
	defer w.wg.Done()
	defer close(w.out)
	defer w.timer.Stop()
	var (
		out   chan Batch // w.out while ready holds a batch, else nil
		ready Batch
		poll  *time.Ticker
		pollC <-chan time.Time
	)
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		// Poll exactly while some folder could not be watched.
		switch polling := w.polling(); {
		case polling && poll == nil:
			poll = time.NewTicker(w.o.PollInterval)
			pollC = poll.C
		case !polling && poll != nil:
			poll.Stop()
			poll, pollC = nil, nil
			w.warned = false
			w.log.Info("every folder is watched again; polling stopped")
		}
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			w.handle(ev)
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			w.handleError(err)
		case <-w.timer.C:
			ready = ready.merge(w.take())
			if !ready.empty() {
				out = w.out
			}
		case out <- ready:
			out, ready = nil, Batch{}
		case <-pollC:
			w.rescan(false)
		}
	}
}

// polling reports whether some folders are polled.
func (w *Watcher) polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.missing) > 0
}

// handle processes one event.
func (w *Watcher) handle(ev fsnotify.Event) {
	p := filepath.Clean(ev.Name)
	if w.ign.Match(p) {
		return
	}
	w.log.Debug("file event", "path", p, "op", ev.Op.String())
	if ev.Op == fsnotify.Chmod {
		// Permission or timestamp changes (touch, indexers, backup
		// tools) do not change content.
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if w.dropTree(p) {
			return // a folder: its files were marked
		}
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
			// A new or moved-in folder: watch it and report what it
			// already holds (files written before the watch existed
			// produce no events).
			if err := w.addTree(p, true); err != nil {
				w.log.Warn("cannot watch new folder", "folder", p, "err", err)
			}
			w.warnLimit()
			return
		}
	}
	w.fileChanged(p)
}

// handleError processes an error from fsnotify.
func (w *Watcher) handleError(err error) {
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.overflow()
		return
	}
	if isWatchLimit(err) {
		w.warnf("%s", watchLimitWarning(w.ign.Root(), 1, w.o.PollInterval.String()))
		w.rescan(true)
		return
	}
	w.log.Warn("file watcher error", "err", err)
}

// overflow handles lost events: a warning and a full rescan.
func (w *Watcher) overflow() {
	w.warnf("%s", overflowWarning())
	w.rescan(true)
}

// warnf prints a warning for the user and logs it.
func (w *Watcher) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.log.Warn(msg)
	if w.o.Warn != nil {
		fmt.Fprintln(w.o.Warn, msg)
	}
}

// warnLimit prints the watch-limit warning once per episode, after a pass
// that hit the limit.
func (w *Watcher) warnLimit() {
	if w.limitDir == "" {
		return
	}
	dir := w.limitDir
	w.limitDir = ""
	if w.warned {
		return
	}
	w.warned = true
	w.mu.Lock()
	n := len(w.missing)
	w.mu.Unlock()
	w.warnf("%s", watchLimitWarning(dir, n, w.o.PollInterval.String()))
}

// watchDir starts watching one folder. A folder refused because of the
// watch limit is remembered for polling.
func (w *Watcher) watchDir(dir string) error {
	err := w.addWatch(dir)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case err == nil:
		w.dirs[dir] = true
		delete(w.missing, dir)
		return nil
	case isWatchLimit(err):
		w.missing[dir] = true
		if w.limitDir == "" {
			w.limitDir = dir
		}
		return nil
	}
	return fmt.Errorf("watch folder %s: %w", dir, err)
}

// addTree watches dir and every folder under it, records the files it
// holds and, when report is set, marks them changed.
func (w *Watcher) addTree(dir string, report bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // gone again before we looked
				}
				return fmt.Errorf("read folder %s: %w", p, err)
			}
			w.log.Warn("cannot read", "path", p, "err", err)
			return nil
		}
		if w.ign.Match(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// Watch before reading the folder, so no file created in
			// between is missed.
			if err := w.watchDir(p); err != nil {
				if p == dir {
					return err
				}
				w.log.Warn("cannot watch folder", "folder", p, "err", err)
			}
			return nil
		}
		if fi, err := d.Info(); err == nil {
			w.snap[p] = stampOf(fi)
		}
		if report {
			w.mark(p)
		}
		return nil
	})
}

// dropTree forgets p if it was a watched folder, together with everything
// under it, and marks the files it held as changed (they are gone from
// there). It reports whether p was a folder.
func (w *Watcher) dropTree(p string) bool {
	w.mu.Lock()
	var gone []string
	for d := range w.dirs {
		if d == p || isUnder(d, p) {
			gone = append(gone, d)
			delete(w.dirs, d)
		}
	}
	polled := false
	for d := range w.missing {
		if d == p || isUnder(d, p) {
			delete(w.missing, d)
			polled = true
		}
	}
	w.mu.Unlock()
	if len(gone) == 0 && !polled {
		return false
	}
	for _, d := range gone {
		// The kernel drops the watch of a deleted folder itself, so
		// errors here only mean it already did.
		_ = w.fw.Remove(d)
	}
	for f := range w.snap {
		if isUnder(f, p) {
			delete(w.snap, f)
			w.mark(f)
		}
	}
	return true
}

// isUnder reports whether p lies strictly inside dir.
func isUnder(p, dir string) bool {
	return len(p) > len(dir) && p[len(dir)] == filepath.Separator && p[:len(dir)] == dir
}

// fileChanged records the current state of the file at p and marks it.
func (w *Watcher) fileChanged(p string) {
	if fi, err := os.Lstat(p); err == nil && !fi.IsDir() {
		w.snap[p] = stampOf(fi)
	} else {
		delete(w.snap, p)
	}
	w.mark(p)
}

// mark adds p (absolute) to the pending changes and (re)arms the
// debounce timer: it fires Debounce after the latest change, but no later
// than MaxDelay after the first.
func (w *Watcher) mark(p string) {
	w.pending[w.ign.Rel(p)] = true
	w.arm()
}

// arm (re)starts the debounce timer.
func (w *Watcher) arm() {
	now := time.Now()
	if w.first.IsZero() {
		w.first = now
	}
	wait := w.o.Debounce
	if left := w.first.Add(w.o.MaxDelay).Sub(now); left < wait {
		wait = max(left, 0)
	}
	w.timer.Reset(wait)
}

// take returns the pending changes as a batch and clears them.
func (w *Watcher) take() Batch {
	b := Batch{Paths: sortedSet(w.pending), Rescan: w.rescanned}
	clear(w.pending)
	w.rescanned = false
	w.first = time.Time{}
	return b
}

// rescan walks the whole project again: it watches folders that are not
// watched yet (new ones, or ones refused by the limit before), drops
// folders that are gone, and marks every file whose size, modification
// time or type differs from the last known state, or that appeared or
// disappeared. With force, a batch is delivered even if nothing differs,
// because events were lost and an edit may have kept size and time.
func (w *Watcher) rescan(force bool) {
	root := w.ign.Root()
	seen := map[string]bool{}
	now := map[string]stamp{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil
		}
		if w.ign.Match(p) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			seen[p] = true
			w.mu.Lock()
			watched := w.dirs[p]
			w.mu.Unlock()
			if !watched {
				if err := w.watchDir(p); err != nil {
					w.log.Warn("cannot watch folder", "folder", p, "err", err)
				}
			}
			return nil
		}
		if fi, err := d.Info(); err == nil {
			now[p] = stampOf(fi)
		}
		return nil
	})
	if err != nil {
		w.log.Warn("rescan failed", "folder", root, "err", err)
	}
	w.mu.Lock()
	var gone []string
	for d := range w.dirs {
		if !seen[d] {
			gone = append(gone, d)
			delete(w.dirs, d)
		}
	}
	for d := range w.missing {
		if !seen[d] {
			delete(w.missing, d)
		}
	}
	w.mu.Unlock()
	for _, d := range gone {
		_ = w.fw.Remove(d)
	}
	changed := false
	for p, s := range now {
		if old, ok := w.snap[p]; !ok || old != s {
			w.pending[w.ign.Rel(p)] = true
			changed = true
		}
	}
	for p := range w.snap {
		if _, ok := now[p]; !ok {
			w.pending[w.ign.Rel(p)] = true
			changed = true
		}
	}
	w.snap = now
	w.warnLimit()
	if changed || force {
		w.rescanned = true
		w.arm()
	}
}
