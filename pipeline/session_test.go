package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// errTestSuperseded stands for watch mode's "a save superseded the build".
var errTestSuperseded = errors.New("superseded by a save")

// gated makes Accelerator stages whose runs wait for a gate, as a
// diffusion stage in the middle of its steps, and records what happened
// to each run, by the text it writes.
type gated struct {
	gate    chan struct{}
	started chan string

	mu     sync.Mutex
	events []string // "start a", "cancel a", "end a", in order
}

func newGated() *gated {
	return &gated{gate: make(chan struct{}), started: make(chan string, 16)}
}

func (g *gated) note(e string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, e)
}

func (g *gated) log() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.events, ", ")
}

func (g *gated) stage(id, text, pub string) Stage {
	s := g.cpuStage(id, text, pub)
	s.Resource = Accelerator
	return s
}

// cpuStage is stage on the CPU, as PBR map derivation or atlas packing.
func (g *gated) cpuStage(id, text, pub string) Stage {
	return Stage{
		ID: id, Asset: strings.Split(id, ":")[0], Kind: "test.gated", Version: "1",
		Params: map[string]any{"text": text}, Where: "test.kiln.yaml:4:1",
		Publish: publishMap(pub),
		Run: func(ctx context.Context, r *Run) error {
			g.note("start " + text)
			r.Progress(1, 2)
			g.started <- text
			select {
			case <-g.gate:
			case <-ctx.Done():
				g.note("cancel " + text)
				return context.Cause(ctx)
			}
			g.note("end " + text)
			r.Progress(2, 2)
			return r.WriteFile("out", []byte(text))
		},
	}
}

// waitStart waits for a run of text to start.
func (g *gated) waitStart(t *testing.T, text string) {
	t.Helper()
	select {
	case got := <-g.started:
		if got != text {
			t.Fatalf("run %q started, want %q", got, text)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run %q did not start; events: %s", text, g.log())
	}
}

// startBuild runs Build on a goroutine under a context cancelled with a
// cause by the returned function.
func startBuild(stages []Stage, o Options) (cancel context.CancelCauseFunc, result func() (*Report, error)) {
	ctx, cancel := context.WithCancelCause(context.Background())
	type res struct {
		rep *Report
		err error
	}
	ch := make(chan res, 1)
	go func() {
		rep, err := Build(ctx, stages, o)
		ch <- res{rep, err}
	}()
	return cancel, func() (*Report, error) {
		r := <-ch
		return r.rep, r.err
	}
}

func stageReport(t *testing.T, rep *Report, id string) StageReport {
	t.Helper()
	for _, s := range rep.Stages {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no stage %s in the report: %s", id, statuses(rep))
	return StageReport{}
}

// sessionProject is a project, gated stages and a session that detaches
// runs on errTestSuperseded, with build options that use it.
func sessionProject(t *testing.T) (*project, *gated, *Session, Options) {
	p := newProject(t)
	g := newGated()
	sess := NewSession(SessionOptions{Detach: func(c error) bool { return errors.Is(c, errTestSuperseded) }})
	t.Cleanup(sess.Close)
	o := p.opts()
	o.Session = sess
	return p, g, sess, o
}

// supersede builds stages, whose first is a gated stage writing "a", and
// supersedes the build once that stage runs. It returns the superseded
// build's report.
func supersede(t *testing.T, g *gated, o Options, stages ...Stage) *Report {
	t.Helper()
	cancel, result := startBuild(stages, o)
	g.waitStart(t, "a")
	cancel(errTestSuperseded)
	rep, err := result()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("superseded build: error %v, want one wrapping context.Canceled", err)
	}
	return rep
}

// TestSessionKeepsUnchangedRun: a build superseded while a diffusion
// stage runs leaves the run going; the next build, in which the stage is
// unchanged, takes it over, so the stage runs once, and builds the rest.
func TestSessionKeepsUnchangedRun(t *testing.T) {
	p, g, _, o := sessionProject(t)

	rep := supersede(t, g, o, g.stage("rock:gen", "a", "rock.png"), p.constStage("note:c", "one", "note.txt"))
	if s := stageReport(t, rep, "rock:gen"); s.Status != StatusInterrupted || s.Error == nil || !strings.Contains(s.Error.Message, "goes on for the next build") {
		t.Fatalf("superseded stage: %+v", s)
	}
	// The detached run holds the project lock: another build must wait.
	if _, err := Build(context.Background(), nil, p.opts()); !errors.Is(err, ErrLocked) {
		t.Fatalf("a build beside a detached run: %v, want ErrLocked", err)
	}

	_, result := startBuild([]Stage{g.stage("rock:gen", "a", "rock.png"), p.constStage("note:c", "two", "note.txt")}, o)
	time.Sleep(50 * time.Millisecond) // let it reach the run and wait
	close(g.gate)
	rep, err := result()
	if err != nil {
		t.Fatal(err)
	}
	s := stageReport(t, rep, "rock:gen")
	if s.Status != StatusBuilt || !strings.Contains(strings.Join(s.Reasons, "; "), "superseded build had started") {
		t.Fatalf("taken-over stage: %+v", s)
	}
	if got, want := g.log(), "start a, end a"; got != want {
		t.Fatalf("runs: %s, want %s", got, want)
	}
	if p.read("rock.png") != "a" || p.read("note.txt") != "two" {
		t.Fatalf("outputs %q %q", p.read("rock.png"), p.read("note.txt"))
	}
	// Nothing is live: the lock is free, and the result is cached.
	rep = p.build([]Stage{g.stage("rock:gen", "a", "rock.png"), p.constStage("note:c", "two", "note.txt")}, p.opts())
	if st := statuses(rep); st != "rock:gen=cached note:c=cached" {
		t.Fatalf("next build: %s", st)
	}
}

// TestSessionCancelsStaleRun: a detached run is cancelled when the next
// build changes its stage, removes it, or runs to its end without it, and
// when the session closes; an interrupt that the session does not detach
// cancels at once. Device slots are shared: the next build's diffusion
// stage starts only after the detached run has stopped.
func TestSessionCancelsStaleRun(t *testing.T) {
	tests := []struct {
		name string
		// next runs after the first build was superseded while "a" ran
		// and returns the events wanted.
		next func(t *testing.T, p *project, g *gated, o Options, sess *Session) string
	}{
		{"changed", func(t *testing.T, p *project, g *gated, o Options, _ *Session) string {
			_, result := startBuild([]Stage{g.stage("rock:gen", "b", "rock.png")}, o)
			g.waitStart(t, "b")
			close(g.gate)
			if rep, err := result(); err != nil || p.read("rock.png") != "b" {
				t.Fatalf("next build: %v %s", err, statuses(rep))
			}
			return "start a, cancel a, start b, end b"
		}},
		{"removed", func(t *testing.T, p *project, g *gated, o Options, _ *Session) string {
			p.build([]Stage{p.constStage("note:c", "one", "note.txt")}, o)
			return "start a, cancel a"
		}},
		{"not reached", func(t *testing.T, p *project, g *gated, o Options, _ *Session) string {
			// The stage is still in the project but this build builds
			// only the note, to its end.
			o.Only = []string{"note"}
			p.build([]Stage{g.stage("rock:gen", "a", "rock.png"), p.constStage("note:c", "one", "note.txt")}, o)
			return "start a, cancel a"
		}},
		{"session closed", func(t *testing.T, p *project, g *gated, o Options, sess *Session) string {
			sess.Close()
			return "start a, cancel a"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, g, sess, o := sessionProject(t)
			supersede(t, g, o, g.stage("rock:gen", "a", "rock.png"))
			want := tt.next(t, p, g, o, sess)
			sess.Close() // waits for every run
			if got := g.log(); got != want {
				t.Fatalf("runs: %s, want %s", got, want)
			}
			if _, err := Build(context.Background(), nil, p.opts()); err != nil {
				t.Fatalf("the lock was not released: %v", err)
			}
		})
	}

	t.Run("interrupt", func(t *testing.T) {
		_, g, _, o := sessionProject(t)
		cancel, result := startBuild([]Stage{g.stage("rock:gen", "a", "rock.png")}, o)
		g.waitStart(t, "a")
		cancel(context.Canceled)
		rep, _ := result()
		// Build returns only after the run has stopped.
		if got := g.log(); got != "start a, cancel a" {
			t.Fatalf("runs: %s", got)
		}
		if s := stageReport(t, rep, "rock:gen"); s.Status != StatusInterrupted {
			t.Fatalf("stage: %+v", s)
		}
	})

	t.Run("device shared", func(t *testing.T) {
		_, g, _, o := sessionProject(t)
		supersede(t, g, o, g.stage("rock:gen", "a", "rock.png"))
		// The next build keeps "a" and adds "c" on the same device.
		_, result := startBuild([]Stage{g.stage("rock:gen", "a", "rock.png"), g.stage("moss:gen", "c", "moss.png")}, o)
		time.Sleep(50 * time.Millisecond)
		if got := g.log(); got != "start a" {
			t.Fatalf("a second diffusion stage started while the device was busy: %s", got)
		}
		close(g.gate)
		g.waitStart(t, "c")
		if rep, err := result(); err != nil {
			t.Fatalf("%v: %s", err, statuses(rep))
		}
		if got, want := g.log(), "start a, end a, start c, end c"; got != want {
			t.Fatalf("runs: %s, want %s", got, want)
		}
	})
}

// TestSessionSupersededTwice: a run survives any number of superseded
// builds, each one taking it over and leaving it again.
func TestSessionSupersededTwice(t *testing.T) {
	p, g, _, o := sessionProject(t)
	stages := func(note string) []Stage {
		return []Stage{g.stage("rock:gen", "a", "rock.png"), p.constStage("note:c", note, "note.txt")}
	}
	cancel, result := startBuild(stages("one"), o)
	g.waitStart(t, "a")
	for i := range 3 {
		cancel(errTestSuperseded)
		if _, err := result(); !errors.Is(err, context.Canceled) {
			t.Fatalf("build %d: %v", i+1, err)
		}
		cancel, result = startBuild(stages(fmt.Sprint(i)), o)
		time.Sleep(20 * time.Millisecond)
	}
	close(g.gate)
	if rep, err := result(); err != nil {
		t.Fatalf("%v: %s", err, statuses(rep))
	}
	if got, want := g.log(), "start a, end a"; got != want {
		t.Fatalf("runs: %s, want %s", got, want)
	}
	if p.read("rock.png") != "a" || p.read("note.txt") != "2" {
		t.Fatalf("outputs %q %q", p.read("rock.png"), p.read("note.txt"))
	}
}

// TestSessionKeepsCPUStage: a CPU stage running when its build is
// superseded is kept as a diffusion stage is.
func TestSessionKeepsCPUStage(t *testing.T) {
	p, g, _, o := sessionProject(t)
	supersede(t, g, o, g.cpuStage("atlas:pack", "a", "atlas.png"))
	_, result := startBuild([]Stage{g.cpuStage("atlas:pack", "a", "atlas.png"), p.constStage("note:c", "x", "note.txt")}, o)
	time.Sleep(20 * time.Millisecond)
	close(g.gate)
	if rep, err := result(); err != nil {
		t.Fatalf("%v: %s", err, statuses(rep))
	}
	if got, want := g.log(), "start a, end a"; got != want {
		t.Fatalf("runs: %s, want %s", got, want)
	}
	if p.read("atlas.png") != "a" {
		t.Fatalf("output %q", p.read("atlas.png"))
	}
}
