package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// builds records what Run asks of Build, and lets a test decide what each
// build does.
type builds struct {
	mu      sync.Mutex
	reqs    []Request
	causes  []error // context.Cause when each build returned
	started chan Request
	// do runs inside Build; nil returns a small successful result.
	do func(ctx context.Context, req Request) Result
}

func newBuilds() *builds { return &builds{started: make(chan Request, 1000)} }

func (b *builds) build(ctx context.Context, req Request) Result {
	b.mu.Lock()
	b.reqs = append(b.reqs, req)
	do := b.do
	b.mu.Unlock()
	b.started <- req
	res := Result{Built: 2, Cached: 14}
	if do != nil {
		res = do(ctx, req)
	}
	b.mu.Lock()
	b.causes = append(b.causes, context.Cause(ctx))
	b.mu.Unlock()
	return res
}

// next waits for the next build to start.
func (b *builds) next(t *testing.T) Request {
	t.Helper()
	select {
	case r := <-b.started:
		return r
	case <-time.After(waitFor):
		t.Fatalf("no build started within %s", waitFor)
	}
	return Request{}
}

// drain consumes the builds that start until none has for d, and returns
// how many there were.
func (b *builds) drain(d time.Duration) int {
	n := 0
	for {
		select {
		case <-b.started:
			n++
		case <-time.After(d):
			return n
		}
	}
}

// none fails if a build starts within d.
func (b *builds) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case r := <-b.started:
		t.Fatalf("unexpected build %+v", r)
	case <-time.After(d):
	}
}

func (b *builds) cause(i int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i >= len(b.causes) {
		return nil
	}
	return b.causes[i]
}

// runLoop starts Run on root and returns a stop function that cancels it
// and waits for it to return (failing the test on a non-nil error).
func runLoop(t *testing.T, o Options) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Run did not return within %s of cancellation", waitFor)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestRunRebuilds drives Run with editor-like writes and checks which
// builds ran, with which changed paths, and the status lines.
func TestRunRebuilds(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	out := &syncBuffer{}
	// Edits wait for builds to finish (OnDone), never for time to pass:
	// on a starved machine a save's events may split into two batches or
	// arrive after the build they belong to started, so the test asserts
	// only what holds whatever the timing (see the checks below).
	finished := make(chan Request, 1000)
	stop := runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build, Out: out,
		OnDone: func(req Request, _ Result) { finished <- req }})

	nextDone := func() Request {
		t.Helper()
		select {
		case r := <-finished:
			return r
		case <-time.After(waitFor):
			t.Fatalf("no build finished within %s", waitFor)
		}
		return Request{}
	}
	if r := nextDone(); !r.Initial || r.Seq != 1 || len(r.Changed) != 0 {
		t.Fatalf("first build %+v, want the initial one", r)
	}
	done, lastSeq := 1, 1
	steps := []struct {
		name string
		edit func()
		want []string
	}{
		{"save in place", func() {
			writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: [a]\n")
		}, []string{"assets/dungeon.kiln.yaml"}},
		{"temp then rename", func() {
			writeFile(t, root, "assets/dungeon.kiln.yaml___jb_tmp___", "assets: [b]\n")
			mustDo(t, os.Rename(filepath.Join(root, "assets/dungeon.kiln.yaml___jb_tmp___"), filepath.Join(root, "assets/dungeon.kiln.yaml")))
		}, []string{"assets/dungeon.kiln.yaml"}},
		{"delete and recreate", func() {
			mustDo(t, os.Remove(filepath.Join(root, "assets/floor.png")))
			writeFile(t, root, "assets/floor.png", "png 2")
		}, []string{"assets/floor.png"}},
		{"new folder holding a manifest", func() {
			writeFile(t, root, "levels/cave.kiln.yaml", "assets: []\n")
		}, []string{"levels/cave.kiln.yaml"}},
		{"burst of 50 saves", func() {
			for i := range 50 {
				writeFile(t, root, "levels/cave.kiln.yaml", fmt.Sprintf("assets: [%d]\n", i))
			}
		}, []string{"levels/cave.kiln.yaml"}},
		{"source image changed", func() {
			writeFile(t, root, "assets/floor.png", "png 3")
		}, []string{"assets/floor.png"}},
	}
	var prev []string
	for _, s := range steps {
		s.edit()
		// Guaranteed: the step's changes reach finished builds (one, or
		// several when the events split), each naming only this step's
		// paths or late ones of the step before, in order.
		seen := map[string]bool{}
		for !containsAll(seen, s.want) {
			r := nextDone()
			done++
			if r.Seq <= lastSeq || r.Initial || r.Rescan {
				t.Errorf("%s: request %+v after build %d", s.name, r, lastSeq)
			}
			lastSeq = r.Seq
			for _, p := range r.Changed {
				if !slices.Contains(s.want, p) && !slices.Contains(prev, p) {
					t.Errorf("%s: build %d names %s, which this step and the one before did not change (changed: %q)", s.name, r.Seq, p, r.Changed)
				}
				seen[p] = true
			}
		}
		prev = s.want
	}
	stop()
	done += len(finished)
	text := out.String()
	for _, want := range []string{
		"watching " + root,
		" initial build → 2 built, 14 cached, 0 failed in ",
		// Each of these steps follows one that changed other files, or
		// none, and changes one file: a build names it alone.
		" assets/dungeon.kiln.yaml changed → 2 built, 14 cached, 0 failed in ",
		" levels/cave.kiln.yaml changed → 2 built, 14 cached, 0 failed in ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// One status line per finished build, and one "restarting" line per
	// build that newer changes superseded.
	lines := strings.Count(text, " → ") - strings.Count(text, " → restarting")
	if lines != done {
		t.Errorf("%d status lines, want %d (one per finished build):\n%s", lines, done, text)
	}
}

// containsAll reports whether every path of want is in seen.
func containsAll(seen map[string]bool, want []string) bool {
	for _, p := range want {
		if !seen[p] {
			return false
		}
	}
	return true
}

// TestRunBrokenInput checks that a failed build prints its errors in
// full, touches nothing, and that the fix builds again.
func TestRunBrokenInput(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	b.do = func(ctx context.Context, req Request) Result {
		data, err := os.ReadFile(filepath.Join(root, "assets/dungeon.kiln.yaml"))
		if err != nil {
			return Result{Errors: []string{err.Error()}}
		}
		if strings.Contains(string(data), "promt") {
			return Result{Errors: []string{
				"assets/dungeon.kiln.yaml:3:5: assets[0].promt: unknown field (did you mean \"prompt\"?)",
				"assets/dungeon.kiln.yaml:7:1: cycle: a → b → a\n  a needs b at assets/dungeon.kiln.yaml:4:9",
			}}
		}
		return Result{Built: 1, Cached: 3}
	}
	var dones []Result
	var mu sync.Mutex
	finished := make(chan struct{}, 10)
	out := &syncBuffer{}
	runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build, Out: out,
		OnDone: func(_ Request, r Result) { mu.Lock(); dones = append(dones, r); mu.Unlock(); finished <- struct{}{} }})
	// A build reads the manifest after it has started: wait for it to
	// finish before the next save, or it may read that save instead.
	next := func() {
		t.Helper()
		b.next(t)
		select {
		case <-finished:
		case <-time.After(waitFor):
			t.Fatalf("build did not finish within %s", waitFor)
		}
	}
	next()

	// Saved whole (temp file, rename), so no build can see a half-written
	// file however slow the machine: this test is about the errors.
	save := func(data string) {
		writeFile(t, root, "assets/dungeon.kiln.yaml.tmp", data)
		mustDo(t, os.Rename(filepath.Join(root, "assets/dungeon.kiln.yaml.tmp"), filepath.Join(root, "assets/dungeon.kiln.yaml")))
	}
	save("assets:\n  - id: a\n    promt: x\n")
	next()
	save("assets:\n  - id: a\n    prompt: x\n")
	next()
	b.none(t, quiet*testDebounce)

	text := out.String()
	for _, want := range []string{
		"assets/dungeon.kiln.yaml changed → error in ",
		"; last good outputs kept\n" +
			"  assets/dungeon.kiln.yaml:3:5: assets[0].promt: unknown field (did you mean \"prompt\"?)\n" +
			"  assets/dungeon.kiln.yaml:7:1: cycle: a → b → a\n" +
			"    a needs b at assets/dungeon.kiln.yaml:4:9\n",
		"assets/dungeon.kiln.yaml changed → 1 built, 3 cached, 0 failed in ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "out/dungeon/floor.png")); err != nil {
		t.Errorf("an output disappeared: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dones) != 3 || dones[1].OK() || !dones[2].OK() {
		t.Errorf("OnDone results %+v: want ok, failed, ok", dones)
	}
}

// TestRunSupersede saves during a build: the build's context is cancelled
// with ErrSuperseded and the next build carries both builds' changes.
func TestRunSupersede(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	b.do = func(ctx context.Context, req Request) Result {
		if req.Seq == 2 {
			<-ctx.Done() // a long build, stopped only by cancellation
			return Result{Interrupted: true}
		}
		return Result{Built: 1}
	}
	out := &syncBuffer{}
	runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build, Out: out})
	b.next(t)
	writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: [1]\n")
	if r := b.next(t); r.Seq != 2 {
		t.Fatalf("second build %+v", r)
	}
	writeFile(t, root, "assets/floor.png", "png 2")
	r := b.next(t)
	if r.Seq != 3 || !r.Restart || r.Initial {
		t.Errorf("restarted build %+v, want seq 3 with Restart", r)
	}
	samePaths(t, "restarted build", r.Changed, []string{"assets/dungeon.kiln.yaml", "assets/floor.png"})
	if c := b.cause(1); !errors.Is(c, ErrSuperseded) {
		t.Errorf("cause of the cancelled build = %v, want ErrSuperseded", c)
	}
	b.none(t, quiet*testDebounce)
	text := out.String()
	if !strings.Contains(text, "assets/dungeon.kiln.yaml, assets/floor.png changed → restarting (cancelled after ") {
		t.Errorf("no restart line:\n%s", text)
	}
	if !strings.Contains(text, "assets/dungeon.kiln.yaml, assets/floor.png changed → 1 built, 0 cached, 0 failed") {
		t.Errorf("no status line for the restarted build:\n%s", text)
	}
	if strings.Contains(text, "interrupted") {
		t.Errorf("the superseded build got a status line:\n%s", text)
	}
}

// TestRunSupersedeInitial checks that an initial build replaced by a
// newer one stays an initial build.
func TestRunSupersedeInitial(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	b.do = func(ctx context.Context, req Request) Result {
		if req.Seq == 1 {
			<-ctx.Done()
		}
		return Result{}
	}
	runLoop(t, Options{Root: root, Ignore: []string{"out"}, Debounce: testDebounce, Build: b.build})
	b.next(t)
	writeFile(t, root, "kiln.yaml", "version: 1 # 2\n")
	r := b.next(t)
	if !r.Initial || !r.Restart || !slices.Equal(r.Changed, []string{"kiln.yaml"}) {
		t.Errorf("replacement of the initial build: %+v", r)
	}
}

// TestRunQueue checks the Queue policy: the running build finishes and
// the changes are built after it.
func TestRunQueue(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	release := make(chan struct{})
	b.do = func(ctx context.Context, req Request) Result {
		if req.Seq == 2 {
			<-release
		}
		return Result{Built: 1}
	}
	runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build, OnBusy: Queue})
	b.next(t)
	writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: [1]\n")
	b.next(t)
	writeFile(t, root, "assets/floor.png", "png 2")
	b.none(t, quiet*testDebounce) // waits for the running build
	close(release)
	r := b.next(t)
	if r.Seq != 3 || r.Restart {
		t.Errorf("queued build %+v", r)
	}
	samePaths(t, "queued build", r.Changed, []string{"assets/floor.png"})
	if c := b.cause(1); c != nil {
		t.Errorf("the queued-behind build was cancelled: %v", c)
	}
}

// TestRunStop cancels Run during a build: the build sees the caller's
// cause, not ErrSuperseded, and Run returns after it.
func TestRunStop(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	returned := make(chan struct{})
	b.do = func(ctx context.Context, req Request) Result {
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // still cleaning up
		close(returned)
		return Result{Interrupted: true}
	}
	stop := runLoop(t, Options{Root: root, Debounce: testDebounce, Build: b.build})
	b.next(t)
	stop()
	select {
	case <-returned:
	default:
		t.Fatal("Run returned before the build did")
	}
	if c := b.cause(0); !errors.Is(c, context.Canceled) || errors.Is(c, ErrSuperseded) {
		t.Errorf("cause = %v, want context.Canceled", c)
	}
}

// TestRunPanic checks that a crashing build is reported and watching
// goes on.
func TestRunPanic(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	b.do = func(ctx context.Context, req Request) Result {
		if req.Seq == 2 {
			var m map[string]int
			m["boom"]++ // a bug
		}
		return Result{Built: 1}
	}
	out := &syncBuffer{}
	runLoop(t, Options{Root: root, Ignore: []string{"out"}, Debounce: testDebounce, Build: b.build, Out: out})
	b.next(t)
	writeFile(t, root, "kiln.yaml", "a")
	b.next(t)
	writeFile(t, root, "kiln.yaml", "b")
	b.next(t)
	if text := out.String(); !strings.Contains(text, "kiln crashed while building: assignment to entry in nil map") {
		t.Errorf("no crash report:\n%s", text)
	}
}

// TestRunOwnOutputs checks that a build writing its outputs (and kiln's
// temporary files) inside the project does not trigger another build.
func TestRunOwnOutputs(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	b.do = func(ctx context.Context, req Request) Result {
		// Build runs on Run's goroutine, so errors are returned, not
		// fatal.
		var errs []string
		for _, f := range []string{"out/.floor.png.kiln-tmp-77", fmt.Sprintf("out/dungeon/new%d/floor.png", req.Seq), ".kiln/cache/blobs/x"} {
			p := filepath.Join(root, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				errs = append(errs, err.Error())
			}
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				errs = append(errs, err.Error())
			}
		}
		return Result{Built: 1, Errors: errs}
	}
	runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build})
	b.next(t)
	b.none(t, quiet*testDebounce)
	writeFile(t, root, "kiln.yaml", "x")
	b.next(t)
	b.none(t, quiet*testDebounce)
}

func TestRunOptionErrors(t *testing.T) {
	if err := Run(context.Background(), Options{Root: t.TempDir()}); err == nil {
		t.Error("no Build: no error")
	}
	if err := Run(context.Background(), Options{Root: filepath.Join(t.TempDir(), "nope"), Build: newBuilds().build}); err == nil {
		t.Error("missing root: no error")
	}
}

func TestStatusLine(t *testing.T) {
	at := time.Date(2025, 1, 2, 12, 3, 4, 0, time.UTC)
	tests := []struct {
		name string
		req  Request
		res  Result
		want string
	}{
		{"one change", Request{Changed: []string{"assets/dungeon.kiln.yaml"}},
			Result{Built: 2, Cached: 14, Duration: 1234 * time.Millisecond},
			"12:03:04 assets/dungeon.kiln.yaml changed → 2 built, 14 cached, 0 failed in 1.2s\n"},
		{"initial", Request{Initial: true}, Result{Cached: 16, Duration: 41 * time.Millisecond},
			"12:03:04 initial build → 0 built, 16 cached, 0 failed in 41ms\n"},
		{"three", Request{Changed: []string{"a", "b", "c"}}, Result{Built: 1, Duration: 2500 * time.Microsecond},
			"12:03:04 a, b, c changed → 1 built, 0 cached, 0 failed in 2.5ms\n"},
		{"many", Request{Changed: []string{"a", "b", "c", "d", "e"}}, Result{Built: 1, Duration: 90 * time.Second},
			"12:03:04 a, b and 3 more changed → 1 built, 0 cached, 0 failed in 1m30s\n"},
		{"rescan", Request{Rescan: true}, Result{Cached: 3, Duration: time.Millisecond},
			"12:03:04 rescan → 0 built, 3 cached, 0 failed in 1.0ms\n"},
		{"rescan with paths", Request{Rescan: true, Changed: []string{"x.png"}}, Result{Cached: 3, Duration: time.Millisecond},
			"12:03:04 rescan, x.png changed → 0 built, 3 cached, 0 failed in 1.0ms\n"},
		{"failed stage", Request{Changed: []string{"a.kiln.yaml"}},
			Result{Built: 1, Cached: 2, Failed: 1, Skipped: 2, Duration: 3 * time.Second, Errors: []string{"a.kiln.yaml:4:3: stage a:generate failed: model missing"}},
			"12:03:04 a.kiln.yaml changed → 1 built, 2 cached, 1 failed, 2 skipped in 3.0s\n  a.kiln.yaml:4:3: stage a:generate failed: model missing\n"},
		{"load error", Request{Changed: []string{"a.kiln.yaml"}},
			Result{Duration: 3 * time.Millisecond, Errors: []string{"a.kiln.yaml:1:1: invalid YAML"}},
			"12:03:04 a.kiln.yaml changed → error in 3.0ms; last good outputs kept\n  a.kiln.yaml:1:1: invalid YAML\n"},
		{"result names changes", Request{}, Result{Changed: []string{"z"}, Built: 1, Duration: 12 * time.Millisecond},
			"12:03:04 z changed → 1 built, 0 cached, 0 failed in 12ms\n"},
		{"nothing", Request{}, Result{}, "12:03:04 rebuild → 0 built, 0 cached, 0 failed in 0.0ms\n"},
	}
	for _, tt := range tests {
		if got := StatusLine(at, tt.req, tt.res); got != tt.want {
			t.Errorf("%s:\ngot  %q\nwant %q", tt.name, got, tt.want)
		}
	}
}
