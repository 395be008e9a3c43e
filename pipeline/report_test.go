package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStopKeepsCachedStatus checks the case: without KeepGoing, a
// missing source file fails its stage, and the stages the failure does
// not block keep their status: cached ones are reported cached (not
// skipped), a stage that would have to run is skipped, and a dependent
// of the failed stage is skipped for it.
func TestStopKeepsCachedStatus(t *testing.T) {
	p := newProject(t)
	p.write("art/a.png", "a")
	stages := []Stage{
		p.fileStage("a", "art/a.png", "a.png"),
		p.constStage("c1", "1", "c1.txt"),
		p.constStage("c2", "2", "c2.txt"),
		p.catStage("c3", "!", "c3.txt", "c1"),
	}
	p.build(stages, p.opts())
	p.takeRuns()

	if err := os.Remove(filepath.Join(p.root, "art/a.png")); err != nil {
		t.Fatal(err)
	}
	stages = append(stages,
		p.catStage("uses-a", "", "uses-a.txt", "a"),
		p.constStage("new", "n", "new.txt"),
	)
	o := p.opts()
	o.Jobs = 1 // a fails first: it comes first in the graph's order
	rep, err := Build(context.Background(), stages, o)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want ErrFailed", err)
	}
	want := map[string]Status{"a": StatusFailed, "c1": StatusCached, "c2": StatusCached, "c3": StatusCached,
		"uses-a": StatusSkipped, "new": StatusSkipped}
	for id, st := range want {
		if got := rep.Stage(id).Status; got != st {
			t.Errorf("%s: %s, want %s (%q)", id, got, st, rep.Stage(id).Reasons)
		}
	}
	if r := rep.Stage("new").Reasons; len(r) == 0 || !strings.Contains(r[len(r)-1], "the build stopped after a failed") {
		t.Errorf("new: reasons %q", r)
	}
	if r := rep.Stage("uses-a").Reasons; len(r) != 1 || r[0] != "dependency a failed" {
		t.Errorf("uses-a: reasons %q", r)
	}
	if runs := p.takeRuns(); len(runs) != 0 {
		t.Errorf("stages ran after the failure: %v", runs)
	}
	if p.read("c2.txt") != "2" {
		t.Error("a cached stage's output is gone")
	}
}

// TestWaitSlotQueueTime checks, with a clock the test moves, that the
// time a stage waits for its executor slot is its queue time.
func TestWaitSlotQueueTime(t *testing.T) {
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	asked := make(chan struct{}, 2)
	b := &builder{clock: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		asked <- struct{}{}
		return clock
	}}
	n := &node{}
	slot := make(chan struct{}, 1)
	slot <- struct{}{} // another stage holds the device
	var held chan struct{}
	errc := make(chan error, 1)
	go func() { errc <- b.waitSlot(context.Background(), n, &held, slot) }()
	<-asked // the wait began
	mu.Lock()
	clock = clock.Add(7 * time.Second)
	mu.Unlock()
	<-slot // the other stage is done
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n.queued != 7*time.Second || held != slot {
		t.Errorf("queued %s (holding the slot: %v), want 7s", n.queued, held == slot)
	}
	// Holding the slot already is no wait.
	if err := b.waitSlot(context.Background(), n, &held, slot); err != nil || n.queued != 7*time.Second {
		t.Errorf("second wait: %v, queued %s", err, n.queued)
	}
}

// TestStageTimes checks the times a build reports: every stage a worker
// took up has a start time, and its queue and run times fit in the
// build's duration (they no longer count a stage's wait twice).
func TestStageTimes(t *testing.T) {
	p := newProject(t)
	var stages []Stage
	for _, id := range []string{"g1", "g2", "g3"} {
		s := p.constStage(id, id, id+".txt")
		s.Resource, s.Device = Accelerator, "gpu:0"
		stages = append(stages, s)
	}
	o := p.opts()
	o.AccelJobs = 1
	rep := p.build(stages, o)
	if rep.SchemaVersion != ReportSchemaVersion {
		t.Errorf("schema version %d, want %d", rep.SchemaVersion, ReportSchemaVersion)
	}
	var device time.Duration
	for _, s := range rep.Stages {
		if s.Started.IsZero() || s.Started.Before(rep.Started) {
			t.Errorf("%s: started %v, build started %v", s.ID, s.Started, rep.Started)
		}
		if s.Queue < 0 || s.Duration < 0 || time.Duration(s.Queue+s.Duration) > time.Duration(rep.Duration) {
			t.Errorf("%s: queue %s + run %s, build %s", s.ID, s.Queue, s.Duration, rep.Duration)
		}
		device += time.Duration(s.Duration)
	}
	t.Logf("run times add up to %s in a %s build", device, rep.Duration)
}

// TestLineProgressExplainsBuilt checks that a built stage's line carries
// its reasons (kiln build --explain), as a would-build line does.
func TestLineProgressExplainsBuilt(t *testing.T) {
	tests := []struct {
		name string
		r    StageReport
		want string
	}{
		{"built with reasons", StageReport{ID: "a:gen", Status: StatusBuilt, Duration: Duration(1500 * time.Millisecond),
			Reasons: []string{"params.prompt changed"}}, "[1/1] built a:gen (1.5s): params.prompt changed\n"},
		{"built without", StageReport{ID: "a:gen", Status: StatusBuilt, Duration: Duration(2 * time.Millisecond)},
			"[1/1] built a:gen (2ms)\n"},
		{"remote with reasons", StageReport{ID: "a:gen", Status: StatusRemote, Duration: Duration(3 * time.Millisecond),
			Reasons: []string{"no previous build"}}, "[1/1] remote a:gen (3ms): no previous build\n"},
		{"would build", StageReport{ID: "a:gen", Status: StatusWouldBuild, Reasons: []string{"no previous build"}},
			"[1/1] would-build a:gen: no previous build\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			lp := NewLineProgress(&buf)
			lp.Start(1)
			lp.StageDone(tc.r)
			if buf.String() != tc.want {
				t.Errorf("got %q, want %q", buf.String(), tc.want)
			}
		})
	}
}

// TestExplainRealBuild checks that a real build with Explain reports why
// each stage ran.
func TestExplainRealBuild(t *testing.T) {
	p := newProject(t)
	o := p.opts()
	o.Explain = true
	var buf bytes.Buffer
	o.Progress = NewLineProgress(&buf)
	p.build([]Stage{p.constStage("a", "1", "a.txt")}, o)
	rep := p.build([]Stage{p.constStage("a", "2", "a.txt")}, o)
	s := rep.Stage("a")
	if s.Status != StatusBuilt || len(s.Reasons) == 0 || !strings.Contains(strings.Join(s.Reasons, "; "), "params") {
		t.Fatalf("a: %s, reasons %q", s.Status, s.Reasons)
	}
	if !strings.Contains(buf.String(), "built a (") || !strings.Contains(buf.String(), "): "+s.Reasons[0]) {
		t.Errorf("the progress lines lack the reasons:\n%s", buf.String())
	}
}
