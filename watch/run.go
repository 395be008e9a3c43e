package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"
)

// ErrSuperseded is the cause (context.Cause) of a build's context when Run
// cancels it because newer changes arrived. Run calls Build again as soon
// as the cancelled call returns, with the union of both builds' changes.
//
// A Build that can keep valid work across the restart checks
// errors.Is(context.Cause(ctx), ErrSuperseded): when it holds, work the
// next build will still need (a diffusion stage whose cache key is
// unchanged) may be left running, detached from ctx, for the next call to
// adopt; the next call must cancel whatever it does not adopt. Any other
// cause means Run is stopping, and all work should stop.
var ErrSuperseded = errors.New("superseded by newer changes")

// BusyPolicy says what Run does with changes that arrive during a build.
type BusyPolicy int

const (
	// Restart cancels the running build (cause ErrSuperseded) and starts
	// a new one with the union of changes, so stale work stops at once.
	Restart BusyPolicy = iota
	// Queue lets the running build finish, then builds again with the
	// changes that arrived meanwhile.
	Queue
)

// Request is what one call of Options.Build is asked to do.
type Request struct {
	// Seq numbers the builds of one Run from 1.
	Seq int
	// Initial is set for the build Run starts with (and for the builds
	// that replace it if it is superseded).
	Initial bool
	// Changed are the files changed since the last build that was not
	// superseded, relative to the project root, slash-separated, sorted.
	// The pipeline finds what to rebuild from content hashes; Changed is
	// for messages and for cheap early decisions (only images changed,
	// so manifests need not be reloaded, for example).
	Changed []string
	// Rescan is set when change events were lost (see Batch.Rescan):
	// treat every input as possibly changed.
	Rescan bool
	// Restart is set when this build replaces one cancelled with
	// ErrSuperseded, whose detached work it may adopt.
	Restart bool

	retried bool // the build repeats one that asked for RetryAfter
}

// Result is what a build did, for the status line and the preview.
type Result struct {
	// Changed are the changed files the build was started for; Run fills
	// it from the Request when left empty.
	Changed []string
	// Stage counts by outcome.
	Built, Cached, Failed, Skipped int
	// BuiltIDs and FailedIDs name the stages (or assets) built and
	// failed, sorted.
	BuiltIDs, FailedIDs []string
	// Duration is how long the build took; Run measures it when zero.
	Duration time.Duration
	// Errors are the problems in full, each starting with "file:line:col: "
	// when the place is known (invalid YAML, an unknown field, a cycle, a
	// missing source image, a failed stage). A non-empty list with no
	// stage counts means the project could not be loaded; the outputs of
	// the last good build are left as they are.
	Errors []string
	// Interrupted is set when the build stopped early because its context
	// was cancelled.
	Interrupted bool
	// RetryAfter, when positive, says the build could not run for a
	// passing reason (another kiln build holds the project lock): Run
	// builds the same changes again after this long, and again, until a
	// build runs, so a manual kiln build next to kiln watch never leaves
	// the watch's outputs behind the last save.
	RetryAfter time.Duration
}

// Summary says what the build did, as the status line does after the
// arrow: "2 built, 14 cached, 0 failed in 1.2s", or, when the project
// could not be loaded, "error in 4ms; last good outputs kept".
func (r Result) Summary() string {
	if r.Built+r.Cached+r.Failed+r.Skipped == 0 && len(r.Errors) > 0 {
		return fmt.Sprintf("error in %s; last good outputs kept", formatDuration(r.Duration))
	}
	s := fmt.Sprintf("%d built, %d cached, %d failed", r.Built, r.Cached, r.Failed)
	if r.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", r.Skipped)
	}
	s += " in " + formatDuration(r.Duration)
	if r.Interrupted {
		s += " (interrupted)"
	}
	return s
}

// OK reports whether the build finished without errors.
func (r Result) OK() bool { return len(r.Errors) == 0 && r.Failed == 0 && !r.Interrupted }

// Options configure Run.
type Options struct {
	// Root is the project folder. Default: the current folder.
	Root string
	// Ignore lists more paths to skip besides the built-in rules (see
	// NewIgnore): kiln's output and cache folders (relative to Root or
	// absolute) and any user patterns. The output folder must be listed
	// when it is inside Root, or every build would trigger the next.
	Ignore []string
	// Debounce is the quiet time that ends a burst of changes. Default:
	// DefaultDebounce.
	Debounce time.Duration
	// PollInterval is how often folders that cannot be watched (watch
	// limit reached) are checked. Default: DefaultPollInterval.
	PollInterval time.Duration
	// OnBusy says what to do with changes during a build. Default:
	// Restart.
	OnBusy BusyPolicy
	// SkipInitial skips the build Run otherwise starts with.
	SkipInitial bool
	// Build runs one build. It must honour ctx (see ErrSuperseded) and
	// must not delete outputs when it fails. Required.
	Build func(ctx context.Context, req Request) Result
	// OnStart, if set, is called (on Run's goroutine) before each build.
	OnStart func(Request)
	// OnDone, if set, is called (on Run's goroutine) after each build
	// that was not superseded, after its status line is printed: the
	// place to publish the new state to a preview.
	OnDone func(Request, Result)
	// Out receives the status lines, errors and warnings. Default: none.
	Out io.Writer
	// Log receives diagnostics. Default: discarded.
	Log *slog.Logger
}

// finished is a build's end, as seen by Run.
type finished struct {
	req   Request
	res   Result
	cause error // context.Cause of the build's context, nil if not cancelled
}

// Run watches the project and rebuilds it until ctx is done: once at the
// start (unless SkipInitial), then once per debounced batch of changes. At
// most one build runs at a time; changes that arrive during a build
// restart it or wait for it (OnBusy). After each build it prints one
// status line such as
//
//	12:03:04 assets/dungeon.kiln.yaml changed → 2 built, 14 cached, 0 failed in 1.2s
//
// followed by the build's errors in full. A failed build changes nothing
// else: Run keeps watching, and the next save builds again.
//
// Run returns nil when ctx is done (after the running build, cancelled
// with ctx's cause, has returned), or an error if watching cannot start.
func Run(ctx context.Context, o Options) error {
	if o.Build == nil {
		return errors.New("watch: Options.Build is required")
	}
	if o.Root == "" {
		o.Root = "."
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ign, err := NewIgnore(o.Root, o.Ignore...)
	if err != nil {
		return err
	}
	w, err := NewWatcher(WatcherOptions{Ignore: ign, Debounce: o.Debounce, PollInterval: o.PollInterval, Warn: o.Out, Log: o.Log})
	if err != nil {
		return err
	}
	defer w.Close()
	l := &loop{o: o, w: w, done: make(chan finished, 1)}
	return l.run(ctx)
}

// loop is the state of one Run.
type loop struct {
	o       Options
	w       *Watcher
	seq     int
	running bool
	cancel  context.CancelCauseFunc
	done    chan finished
	// pending are changes not yet handed to a build; restartInitial and
	// restart describe a superseded build they replace.
	pending        Batch
	restart        bool
	restartInitial bool
	superseded     bool // the running build was cancelled with ErrSuperseded
	// retry fires when a build that asked to be retried (RetryAfter)
	// should run again; nil when none is waiting.
	retry    <-chan time.Time
	retrying bool // the pending changes include a build to retry
}

func (l *loop) run(ctx context.Context) error {
	fmt.Fprintf(l.o.Out, "watching %s (%d folders); press Ctrl-C to stop\n", displayRoot(l.o.Root), len(l.w.Watched()))
	if !l.o.SkipInitial {
		l.start(ctx, Request{Initial: true})
	}
	for {
		select {
		case <-ctx.Done():
			if l.running {
				l.cancel(context.Cause(ctx))
				<-l.done
			}
			return nil
		case b, ok := <-l.w.Batches():
			if !ok {
				return errors.New("watch: the file watcher stopped unexpectedly")
			}
			l.pending = l.pending.merge(b)
			if !l.running {
				l.retry = nil // the new build retries the waiting one too
				l.startPending(ctx)
				continue
			}
			if l.o.OnBusy == Restart && !l.superseded {
				l.superseded = true
				l.cancel(ErrSuperseded)
				l.o.Log.Debug("build superseded", "changed", b.Paths)
			}
		case f := <-l.done:
			l.running = false
			l.superseded = false
			if f.cause != nil && errors.Is(f.cause, ErrSuperseded) {
				// Build again with everything the cancelled build was
				// for, plus what arrived since.
				l.pending = l.pending.merge(Batch{Paths: f.req.Changed, Rescan: f.req.Rescan})
				l.restart = true
				l.restartInitial = l.restartInitial || f.req.Initial
				// A cancelled retry is still the same wait for the lock:
				// do not announce it again.
				l.retrying = l.retrying || f.req.retried
				fmt.Fprintf(l.o.Out, "%s %s → restarting (cancelled after %s)\n",
					time.Now().Format("15:04:05"), describeChanges(l.pending.Paths, l.pending.Rescan, false), formatDuration(f.res.Duration))
			} else if f.res.RetryAfter > 0 && ctx.Err() == nil {
				// Build the same again later; say so once, not on every
				// attempt.
				l.pending = l.pending.merge(Batch{Paths: f.req.Changed, Rescan: f.req.Rescan})
				l.restartInitial = l.restartInitial || f.req.Initial
				if !f.req.retried {
					io.WriteString(l.o.Out, strings.TrimSuffix(StatusLine(time.Now(), f.req, f.res), "\n")+
						"\n  building again when it is free\n")
				}
				l.retrying = true
				l.retry = time.After(f.res.RetryAfter)
				continue
			} else {
				io.WriteString(l.o.Out, StatusLine(time.Now(), f.req, f.res))
				if l.o.OnDone != nil {
					l.o.OnDone(f.req, f.res)
				}
			}
			if !l.pending.empty() || l.restart {
				l.startPending(ctx)
			}
		case <-l.retry:
			l.retry = nil
			if !l.running {
				l.startPending(ctx)
			}
		}
	}
}

// startPending starts a build for the pending changes.
func (l *loop) startPending(ctx context.Context) {
	req := Request{Initial: l.restartInitial, Changed: l.pending.Paths, Rescan: l.pending.Rescan, Restart: l.restart, retried: l.retrying}
	l.pending, l.restart, l.restartInitial, l.retrying = Batch{}, false, false, false
	l.start(ctx, req)
}

// start runs one build on its own goroutine; its end arrives on l.done.
func (l *loop) start(ctx context.Context, req Request) {
	l.seq++
	req.Seq = l.seq
	bctx, cancel := context.WithCancelCause(ctx)
	l.cancel = cancel
	l.running = true
	if l.o.OnStart != nil {
		l.o.OnStart(req)
	}
	go func() {
		t0 := time.Now()
		res := l.call(bctx, req)
		if res.Duration <= 0 {
			res.Duration = time.Since(t0)
		}
		if len(res.Changed) == 0 {
			res.Changed = req.Changed
		}
		cause := context.Cause(bctx)
		cancel(nil)
		l.done <- finished{req: req, res: res, cause: cause}
	}()
}

// call runs Build, turning a panic into a reported error so one bad
// build does not end the watch.
func (l *loop) call(ctx context.Context, req Request) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			l.o.Log.Error("build panicked", "panic", p, "stack", string(debug.Stack()))
			res = Result{Errors: []string{fmt.Sprintf("kiln crashed while building: %v; this is a bug in kiln, please report it (watch mode keeps running; run with --log-level=debug for the stack)", p)}}
		}
	}()
	return l.o.Build(ctx, req)
}

// displayRoot names the project folder for the greeting.
func displayRoot(root string) string {
	if abs, err := filepath.Abs(root); err == nil {
		return abs
	}
	return root
}

// StatusLine formats the one-line account of a finished build, followed
// by its errors in full (each indented by two spaces), ending in a
// newline:
//
//	12:03:04 assets/dungeon.kiln.yaml changed → 2 built, 14 cached, 0 failed in 1.2s
//	12:03:09 assets/dungeon.kiln.yaml changed → error in 4ms; last good outputs kept
//	  assets/dungeon.kiln.yaml:12:5: assets[1].prompt: unknown field "promt" (did you mean "prompt"?)
func StatusLine(at time.Time, req Request, res Result) string {
	var b strings.Builder
	b.WriteString(at.Format("15:04:05"))
	b.WriteByte(' ')
	changed := res.Changed
	if len(changed) == 0 {
		changed = req.Changed
	}
	b.WriteString(describeChanges(changed, req.Rescan, req.Initial))
	b.WriteString(" → ")
	b.WriteString(res.Summary())
	b.WriteByte('\n')
	for _, e := range res.Errors {
		for _, line := range strings.Split(strings.TrimRight(e, "\n"), "\n") {
			b.WriteString("  ")
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// describeChanges names what a build is for: "initial build", "a.yaml
// changed", "a.yaml, b.png changed", "a.yaml, b.png and 3 more changed",
// "rescan".
func describeChanges(paths []string, rescan, initial bool) string {
	var s string
	switch n := len(paths); {
	case n == 0:
		s = ""
	case n <= 3:
		s = strings.Join(paths, ", ") + " changed"
	default:
		s = fmt.Sprintf("%s and %d more changed", strings.Join(paths[:2], ", "), n-2)
	}
	prefix := ""
	switch {
	case initial:
		prefix = "initial build"
	case rescan:
		prefix = "rescan"
	}
	switch {
	case prefix == "" && s == "":
		return "rebuild"
	case prefix == "":
		return s
	case s == "":
		return prefix
	}
	return prefix + ", " + s
}

// formatDuration rounds d for the status line: "1.2s", "340ms", "0.8ms".
func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
}
