package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
)

// gauge tracks how many stages of each group run at once.
type gauge struct {
	mu   sync.Mutex
	cur  map[string]int
	peak map[string]int
	cond *sync.Cond
}

func newGauge() *gauge {
	g := &gauge{cur: map[string]int{}, peak: map[string]int{}}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// enter counts a stage of group in, then waits (up to a generous bound)
// until want stages of the group are in at once, so the test proves the
// limit is reached without relying on timing; the bound only matters if
// the executor under-schedules, and then the peak assertion fails.
func (g *gauge) enter(group string, want int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cur[group]++
	g.peak[group] = max(g.peak[group], g.cur[group])
	g.cond.Broadcast()
	deadline := time.Now().Add(5 * time.Second)
	for g.peak[group] < want && time.Now().Before(deadline) {
		go func() { time.Sleep(10 * time.Millisecond); g.cond.Broadcast() }()
		g.cond.Wait()
	}
}

func (g *gauge) leave(group string) {
	g.mu.Lock()
	g.cur[group]--
	g.mu.Unlock()
}

func TestParallelismLimits(t *testing.T) {
	tests := []struct {
		name      string
		jobs      int
		accelJobs int
		cpu       int
		perDevice map[string]int
	}{
		{"cpu limited to 2", 2, 1, 8, nil},
		{"cpu limited to 1", 1, 1, 4, nil},
		{"accelerator stages do not use cpu slots", 2, 1, 6, map[string]int{"cuda:0": 3}},
		{"one slot per device by default", 1, 0, 2, map[string]int{"cuda:0": 3, "cuda:1": 3}},
		{"two slots per device", 1, 2, 0, map[string]int{"cuda:0": 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t)
			g := newGauge()
			accelLimit := max(tc.accelJobs, 1)
			var stages []Stage
			add := func(id, group string, want int, res Resource, dev string) {
				stages = append(stages, Stage{
					ID: id, Asset: id, Kind: "k", Params: id, Resource: res, Device: dev,
					Run: func(ctx context.Context, r *Run) error {
						g.enter(group, want)
						defer g.leave(group)
						g.enter("all", 0)
						defer g.leave("all")
						return r.WriteFile("out", []byte(id))
					},
				})
			}
			for i := range tc.cpu {
				add(fmt.Sprintf("cpu%d", i), "cpu", min(tc.jobs, tc.cpu), CPU, "")
			}
			for _, dev := range sortedKeys(tc.perDevice) {
				for i := range tc.perDevice[dev] {
					add(fmt.Sprintf("%s-%d", dev, i), dev, min(accelLimit, tc.perDevice[dev]), Accelerator, dev)
				}
			}
			o := p.opts()
			o.Jobs, o.AccelJobs = tc.jobs, tc.accelJobs
			rep := p.build(stages, o)
			if rep.Totals[StatusBuilt] != len(stages) {
				t.Fatalf("built %d of %d: %s", rep.Totals[StatusBuilt], len(stages), statuses(rep))
			}
			if tc.cpu > 0 && g.peak["cpu"] != min(tc.jobs, tc.cpu) {
				t.Errorf("peak CPU stages = %d, want %d", g.peak["cpu"], min(tc.jobs, tc.cpu))
			}
			for dev, n := range tc.perDevice {
				if want := min(accelLimit, n); g.peak[dev] != want {
					t.Errorf("peak stages on %s = %d, want %d", dev, g.peak[dev], want)
				}
			}
		})
	}
}

func TestDependencyOrder(t *testing.T) {
	p := newProject(t)
	// A wide, deep graph: each layer reads every stage of the layer below.
	var stages []Stage
	var prev []string
	for layer := range 4 {
		var cur []string
		for i := range 5 {
			id := fmt.Sprintf("l%d-%d:s", layer, i)
			stages = append(stages, p.catStage(id, id, "", prev...))
			cur = append(cur, id)
		}
		prev = cur
	}
	// Reverse the input so order must come from the dependencies.
	for i, j := 0, len(stages)-1; i < j; i, j = i+1, j-1 {
		stages[i], stages[j] = stages[j], stages[i]
	}
	o := p.opts()
	o.Jobs = 4
	p.build(stages, o)
	pos := map[string]int{}
	for i, id := range p.order {
		pos[id] = i
	}
	if len(pos) != 20 {
		t.Fatalf("ran %d stages, want 20", len(pos))
	}
	for _, s := range stages {
		for _, d := range s.Deps {
			if pos[d] > pos[s.ID] {
				t.Errorf("%s ran before its dependency %s", s.ID, d)
			}
		}
	}
}

func failing(id string, deps ...string) Stage {
	return Stage{ID: id, Asset: id, Kind: "test.fail", Deps: deps, Where: id + ".kiln.yaml:4:2",
		Run: func(ctx context.Context, r *Run) error {
			r.WriteFile("out", []byte("partial"))
			return fmt.Errorf("boom in %s", id)
		}}
}

func TestKeepGoing(t *testing.T) {
	tests := []struct {
		name      string
		keepGoing bool
		want      string
		wantErr   string
	}{
		{"stop at first failure", false,
			"bad1=failed ok1=skipped bad2=skipped after=skipped ok2=skipped",
			"build failed: stage bad1 failed: bad1.kiln.yaml:4:2: boom in bad1"},
		{"keep going", true,
			"bad1=failed ok1=built bad2=failed after=skipped ok2=built",
			"build failed: 2 stages failed; first: stage bad1 failed: bad1.kiln.yaml:4:2: boom in bad1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t)
			stages := []Stage{
				failing("bad1"),
				p.constStage("ok1", "1", "ok1.txt"),
				failing("bad2"),
				p.catStage("after", "", "after.txt", "bad2", "ok1"),
				p.constStage("ok2", "2", "ok2.txt"),
			}
			o := p.opts()
			o.Jobs = 1 // deterministic: bad1 runs first
			o.KeepGoing = tc.keepGoing
			rep, err := Build(context.Background(), stages, o)
			if !errors.Is(err, ErrFailed) || err.Error() != tc.wantErr {
				t.Fatalf("err = %v\nwant %s", err, tc.wantErr)
			}
			if got := statuses(rep); got != tc.want {
				t.Errorf("%s\nwant %s", got, tc.want)
			}
			if s := rep.Stage("after"); s.Reasons[0] != "dependency bad2 failed" && s.Reasons[0] != "dependency bad2 was not built" {
				t.Errorf("after: reasons %q", s.Reasons)
			}
			if !tc.keepGoing {
				want := "not started: the build stopped after bad1 failed (--keep-going builds everything that does not depend on it)"
				if s := rep.Stage("ok1"); s.Reasons[0] != want {
					t.Errorf("ok1 reasons %q, want %q", s.Reasons, want)
				}
			}
			// Nothing a failed stage wrote reaches the cache.
			if entries, _ := os.ReadDir(filepath.Join(p.cacheDir(), "tmp")); len(entries) != 0 {
				t.Errorf("temporary outputs left: %v", entries)
			}
		})
	}
}

func TestPanicRecovered(t *testing.T) {
	p := newProject(t)
	stages := []Stage{
		{ID: "bad", Asset: "bad", Kind: "test.panic", Where: "p.kiln.yaml:1:1", Run: func(ctx context.Context, r *Run) error {
			var m map[string]int
			m["x"] = 1 // nil map write
			return nil
		}},
		p.constStage("good", "g", "g.txt"),
	}
	o := p.opts()
	o.KeepGoing = true
	rep, err := Build(context.Background(), stages, o)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v", err)
	}
	s := rep.Stage("bad")
	want := "p.kiln.yaml:1:1: stage panicked: assignment to entry in nil map (this is a bug in the test.panic stage; the stack trace is in the log)"
	if s.Status != StatusFailed || s.Error.Error() != want {
		t.Errorf("bad: %s %v\nwant %s", s.Status, s.Error, want)
	}
	if rep.Stage("good").Status != StatusBuilt {
		t.Errorf("good: %s", rep.Stage("good").Status)
	}
}

func TestCancel(t *testing.T) {
	p := newProject(t)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stages := []Stage{
		{ID: "slow", Asset: "slow", Kind: "k", Publish: map[string]string{"out": "slow.txt"}, Run: func(ctx context.Context, r *Run) error {
			w, err := r.Create("out")
			if err != nil {
				return err
			}
			w.Write([]byte("half"))
			close(started)
			<-ctx.Done() // a diffusion loop checking ctx between steps
			w.Close()
			return ctx.Err()
		}},
		p.catStage("after", "", "after.txt", "slow"),
	}
	// An earlier complete output must survive the interrupted build.
	p.build([]Stage{p.constStage("slow", "old complete", "slow.txt")}, p.opts())
	go func() { <-started; cancel() }()
	rep, err := Build(ctx, stages, p.opts())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !rep.Interrupted {
		t.Error("report not marked interrupted")
	}
	if got, want := statuses(rep), "slow=interrupted after=skipped"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	if got := p.read("slow.txt"); got != "old complete" {
		t.Errorf("slow.txt = %q, want the old complete file", got)
	}
	if blobs, _ := filepath.Glob(filepath.Join(p.cacheDir(), "cas", "*", "*")); len(blobs) != 1 {
		t.Errorf("interrupted output reached the cache: %v (want only the earlier build's blob)", blobs)
	}
	// The next build completes normally.
	stages[0].Run = func(ctx context.Context, r *Run) error { return r.WriteFile("out", []byte("new")) }
	rep = p.build(stages, p.opts())
	if got := p.read("slow.txt"); got != "new" || rep.Totals[StatusBuilt] != 2 {
		t.Errorf("after rebuild: slow.txt = %q, %s", got, statuses(rep))
	}
}

func TestCancelBeforeStart(t *testing.T) {
	p := newProject(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Build(ctx, []Stage{p.constStage("a", "a", "a.txt")}, p.opts())
	if !errors.Is(err, context.Canceled) || rep.Stage("a").Status != StatusSkipped {
		t.Fatalf("err = %v, status %s", err, rep.Stage("a").Status)
	}
	if got := p.takeRuns(); len(got) != 0 {
		t.Errorf("ran %v after cancellation", got)
	}
}

func TestCorruptBlobRebuilt(t *testing.T) {
	p := newProject(t)
	stages := func(suffix string) []Stage {
		return []Stage{p.constStage("a:gen", "generated", "a.txt"), p.catStage("b:use", suffix, "b.txt", "a:gen")}
	}
	p.build(stages("1"), p.opts())
	p.takeRuns()
	blob := findBlob(t, p.cacheDir(), "generated")
	flip := func() {
		os.Chmod(blob, 0o644)
		data, _ := os.ReadFile(blob)
		data[0] ^= 0xff
		os.WriteFile(blob, data, 0o644)
	}

	// 1. The published output is intact: nothing reads the blob, nothing
	// is rebuilt; check mode trusts the published file.
	flip()
	rep := p.build(stages("1"), p.opts())
	if got := statuses(rep); got != "a:gen=cached b:use=cached" {
		t.Errorf("intact outputs: %s", got)
	}

	// 2. A dependent must run and reads the damaged blob: the dependency
	// is rebuilt first and the dependent sees the right bytes.
	rep = p.build(stages("2"), p.opts())
	if got := p.takeRuns(); !reflect.DeepEqual(got, []string{"a:gen", "b:use"}) {
		t.Errorf("ran %v, want a:gen rebuilt for b:use", got)
	}
	if got := p.read("b.txt"); got != "generated2" {
		t.Errorf("b.txt = %q: damaged bytes were served", got)
	}
	if s := rep.Stage("a:gen"); s.Status != StatusBuilt || !strings.Contains(strings.Join(s.Reasons, ";"), "cache entry damaged; rebuilt") {
		t.Errorf("a:gen: %s %q", s.Status, s.Reasons)
	}

	// 3. The published output is missing and the blob damaged: restoring
	// detects it, discards the entry and rebuilds.
	blob = findBlob(t, p.cacheDir(), "generated")
	flip()
	os.Remove(p.out("a.txt"))
	rep = p.build(stages("2"), p.opts())
	if got := p.read("a.txt"); got != "generated" {
		t.Errorf("a.txt = %q, want rebuilt content", got)
	}
	if s := rep.Stage("a:gen"); s.Status != StatusBuilt || !strings.Contains(s.Reasons[0], "cache entry damaged") {
		t.Errorf("a:gen: %s %q", s.Status, s.Reasons)
	}
	if got := p.takeRuns(); !reflect.DeepEqual(got, []string{"a:gen"}) {
		t.Errorf("ran %v, want a:gen", got)
	}

	// 4. A damaged action record is discarded and rebuilt.
	recs, _ := filepath.Glob(filepath.Join(p.cacheDir(), "ac", "*", "*"))
	for _, r := range recs {
		os.WriteFile(r, []byte("{not json"), 0o644)
	}
	os.Remove(filepath.Join(p.cacheDir(), stateFile))
	rep = p.build(stages("2"), p.opts())
	if rep.Totals[StatusBuilt] != 2 || p.read("b.txt") != "generated2" {
		t.Errorf("after damaged records: %s, b.txt = %q", statuses(rep), p.read("b.txt"))
	}
}

func TestOutputEscapeBySymlink(t *testing.T) {
	p := newProject(t)
	outside := t.TempDir()
	os.MkdirAll(p.out(""), 0o755)
	if err := os.Symlink(outside, p.out("evil")); err != nil {
		t.Skip(err)
	}
	rep, err := Build(context.Background(), []Stage{p.constStage("a", "x", "evil/a.txt")}, p.opts())
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v", err)
	}
	want := fmt.Sprintf(`test.kiln.yaml:1:1: publish output out: %s is a symlink (to %s); kiln does not follow symlinks when it writes or deletes, so it will not publish evil/a.txt; remove the link and run kiln again`,
		p.out("evil"), outside)
	if s := rep.Stage("a"); s.Error == nil || s.Error.Error() != want {
		t.Errorf("error %v\nwant %s", s.Error, want)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the output folder: %v", entries)
	}
}

func TestBadStageOutputs(t *testing.T) {
	tests := []struct {
		name string
		run  func(ctx context.Context, r *Run) error
		pub  map[string]string
		want string
	}{
		{"bad output name", func(ctx context.Context, r *Run) error { return r.WriteFile("../x", nil) }, nil,
			`output name "../x" is not allowed; use a plain file name such as "albedo.png" (or plain names joined by /)`},
		{"published output not created", func(ctx context.Context, r *Run) error { return r.WriteFile("a", nil) }, map[string]string{"b": "b.png"},
			"stage did not create outputs b that it publishes (it created: a); this is a bug in the test.bad stage"},
		{"output left open", func(ctx context.Context, r *Run) error { _, err := r.Create("a"); return err }, nil,
			"stage left outputs a open; a stage must close every output it creates (this is a bug in the test.bad stage)"},
		{"output created twice", func(ctx context.Context, r *Run) error { r.WriteFile("a", nil); return r.WriteFile("a", nil) }, nil,
			`output "a" created twice`},
		{"input not a dependency", func(ctx context.Context, r *Run) error { _, err := r.Input("other", "out"); return err }, nil,
			`stage s reads from "other", which is not one of its dependencies; add it to Deps`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t)
			rep, err := Build(context.Background(), []Stage{{ID: "s", Kind: "test.bad", Run: tc.run, Publish: tc.pub}}, p.opts())
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("err = %v", err)
			}
			if s := rep.Stage("s"); s.Error == nil || s.Error.Message != tc.want {
				t.Errorf("error %v\nwant %s", s.Error, tc.want)
			}
		})
	}
}

func TestEqualKeysRunOnce(t *testing.T) {
	p := newProject(t)
	var runs atomic.Int32
	mk := func(id, pub string) Stage {
		return Stage{ID: id, Asset: id, Kind: "k", Params: "same", Publish: map[string]string{"out": pub},
			Run: func(ctx context.Context, r *Run) error {
				runs.Add(1)
				time.Sleep(10 * time.Millisecond)
				return r.WriteFile("out", []byte("same"))
			}}
	}
	rep := p.build([]Stage{mk("a", "a.txt"), mk("b", "b.txt")}, p.opts())
	if runs.Load() != 1 {
		t.Errorf("ran %d times, want once", runs.Load())
	}
	if p.read("a.txt") != "same" || p.read("b.txt") != "same" {
		t.Errorf("outputs not both published: %s", statuses(rep))
	}
}

func TestLock(t *testing.T) {
	p := newProject(t)
	os.MkdirAll(p.cacheDir(), 0o755)
	lk, err := acquireLock(p.cacheDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), []Stage{p.constStage("a", "a", "a.txt")}, p.opts())
	want := fmt.Sprintf("another kiln build (pid %d) holds the lock on %s; wait for it to finish or stop it", os.Getpid(), lockPath(p.cacheDir()))
	if !errors.Is(err, ErrLocked) || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if _, err := Clean(p.opts(), false); !errors.Is(err, ErrLocked) {
		t.Errorf("Clean while locked: err = %v", err)
	}
	// Dry-run and check take no lock.
	dry := p.opts()
	dry.DryRun = true
	if _, err := Build(context.Background(), []Stage{p.constStage("a", "a", "a.txt")}, dry); err != nil {
		t.Errorf("dry run while locked: %v", err)
	}
	lk.release()
	p.build([]Stage{p.constStage("a", "a", "a.txt")}, p.opts())
}

// TestLockHelperProcess is not a real test: TestLockAcrossProcesses runs
// the test binary with it to hold the lock from another process.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("KILN_LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestLockAcrossProcesses")
	}
	lk, err := acquireLock(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	buf := make([]byte, 1)
	os.Stdin.Read(buf) // hold until the parent closes stdin
	lk.release()
	os.Exit(0)
}

func TestLockAcrossProcesses(t *testing.T) {
	p := newProject(t)
	os.MkdirAll(p.cacheDir(), 0o755)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "KILN_LOCK_HELPER_DIR="+p.cacheDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 7)
	if _, err := stdout.Read(line); err != nil || string(line) != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	_, err := Build(context.Background(), []Stage{p.constStage("a", "a", "a.txt")}, p.opts())
	var le *LockedError
	if !errors.As(err, &le) || le.PID != cmd.Process.Pid {
		t.Errorf("err = %v, want a LockedError naming pid %d", err, cmd.Process.Pid)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	p.build([]Stage{p.constStage("a", "a", "a.txt")}, p.opts())
	if p.read("a.txt") != "a" {
		t.Error("build after the other process finished did not publish")
	}
}

func TestCrashLeftoversCleaned(t *testing.T) {
	p := newProject(t)
	stages := []Stage{p.constStage("a:gen", "a", "sub/a.txt")}
	p.build(stages, p.opts())
	// Simulate a build killed mid-write.
	leftovers := []string{
		p.out("sub/.a.txt.kiln-tmp-123"),
		filepath.Join(p.cacheDir(), "tmp", "run-1", "out"),
		filepath.Join(p.cacheDir(), ".state.kiln-tmp-9"),
	}
	for _, f := range leftovers {
		os.MkdirAll(filepath.Dir(f), 0o755)
		os.WriteFile(f, []byte("partial"), 0o644)
	}
	os.WriteFile(filepath.Join(p.cacheDir(), "build.incomplete"), nil, 0o644)
	p.build(stages, p.opts())
	for _, f := range leftovers {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("leftover %s not removed", f)
		}
	}
	if _, err := os.Stat(filepath.Join(p.cacheDir(), "build.incomplete")); !os.IsNotExist(err) {
		t.Error("marker not removed")
	}
	// A finished build leaves no temporary files next to outputs.
	filepath.Walk(p.root, func(path string, info os.FileInfo, err error) error {
		if err == nil && atomicfile.IsTemp(path) {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
}

func TestOrphansAndClean(t *testing.T) {
	p := newProject(t)
	two := []Stage{p.constStage("a", "a", "x/a.txt"), p.constStage("b", "b", "x/y/b.txt")}
	p.build(two, p.opts())
	os.WriteFile(p.out("mine.txt"), []byte("not kiln's"), 0o644)

	rep := p.build(two[:1], p.opts())
	if !reflect.DeepEqual(rep.Orphans, []string{"x/y/b.txt"}) {
		t.Errorf("orphans %v", rep.Orphans)
	}
	if p.read("x/y/b.txt") != "b" {
		t.Error("orphan removed by build; builds leave it for clean")
	}
	if !strings.Contains(rep.Summary(), "1 outputs no longer produced") {
		t.Errorf("summary %q", rep.Summary())
	}
	// Still reported on the next build.
	if rep := p.build(two[:1], p.opts()); len(rep.Orphans) != 1 {
		t.Errorf("orphans on second build: %v", rep.Orphans)
	}

	p.build(two, p.opts())
	os.WriteFile(p.out("x/a.txt"), []byte("edited by hand"), 0o644)
	res, err := Clean(p.opts(), false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Removed, []string{"x/y/b.txt"}) || !reflect.DeepEqual(res.Kept, []string{"x/a.txt"}) {
		t.Errorf("removed %v kept %v", res.Removed, res.Kept)
	}
	if _, err := os.Stat(p.out("x/y")); !os.IsNotExist(err) {
		t.Error("empty folder x/y left")
	}
	if p.read("mine.txt") != "not kiln's" || p.read("x/a.txt") != "edited by hand" {
		t.Error("clean touched files that are not kiln's outputs")
	}
	// Outputs come back from the cache without running, but the file
	// clean kept is the user's now: the build refuses to replace it.
	p.takeRuns()
	kg := p.opts()
	kg.KeepGoing = true
	rep, err = Build(context.Background(), two, kg)
	if !errors.Is(err, ErrFailed) || rep.Stage("a").Error == nil || !strings.Contains(rep.Stage("a").Error.Error(), "kiln did not write it") {
		t.Fatalf("build over the kept file: %v", err)
	}
	if got := p.takeRuns(); len(got) != 0 || p.read("x/y/b.txt") != "b" || p.read("x/a.txt") != "edited by hand" {
		t.Errorf("after clean ran %v, b = %q, a = %q", got, p.read("x/y/b.txt"), p.read("x/a.txt"))
	}
	os.Remove(p.out("x/a.txt"))
	p.build(two, p.opts())
	res, err = Clean(p.opts(), true)
	if err != nil || !res.CacheRemoved {
		t.Fatalf("clean --cache: %v %+v", err, res)
	}
	if entries, _ := os.ReadDir(p.cacheDir()); len(entries) != 1 || entries[0].Name() != "lock" {
		t.Errorf("cache holds %v after clean --cache", entries)
	}
	p.build(two, p.opts())
	if got := p.takeRuns(); len(got) != 2 {
		t.Errorf("after clean --cache ran %v, want both", got)
	}
}

func TestLineProgress(t *testing.T) {
	p := newProject(t)
	var buf bytes.Buffer
	lp := NewLineProgress(&buf)
	stages := []Stage{
		{ID: "gen", Asset: "gen", Kind: "k", Run: func(ctx context.Context, r *Run) error {
			for i := 1; i <= 3; i++ {
				r.Progress(i, 3)
			}
			return r.WriteFile("out", []byte("x"))
		}},
		failing("bad"),
	}
	o := p.opts()
	o.Jobs = 1
	o.KeepGoing = true
	o.Progress = lp
	Build(context.Background(), stages, o)
	out := buf.String()
	for _, want := range []string{"start gen\n", "      gen: step 1/3\n", "      gen: step 3/3\n", "[1/2] built gen (", "[2/2] failed bad: bad.kiln.yaml:4:2: boom in bad\n", "2 stages: 1 built, 1 failed in "} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "step 2/3") {
		t.Errorf("step lines not throttled:\n%s", out)
	}
}
