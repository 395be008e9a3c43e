package main

import (
	"fmt"
	"io"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/kiln-dev/kiln/pipeline"
)

// newProgress returns the build display: live bars on a terminal (one for
// the build, one per running stage with its diffusion steps), plain lines
// otherwise, so CI logs stay readable.
func newProgress(w io.Writer, terminal bool) pipeline.Progress {
	if !terminal {
		return &lineProgress{LineProgress: pipeline.NewLineProgress(w), w: w}
	}
	return &barProgress{w: w, running: map[string]*mpb.Bar{}}
}

// lineProgress is pipeline.LineProgress with the status lines of running
// stages (a TensorRT engine compile and how long it took).
type lineProgress struct {
	*pipeline.LineProgress
	w io.Writer
}

// StageNote prints a running stage's status line.
func (l *lineProgress) StageNote(id, key, value string) { printStatus(l.w, id, key, value) }

// printStatus writes a stage's status note (pipeline.NoteStatus) as a line
// under the stage's step lines; other notes go to the report only.
func printStatus(w io.Writer, id, key, value string) {
	if key == pipeline.NoteStatus {
		fmt.Fprintf(w, "      %s: %s\n", id, value)
	}
}

// barProgress draws mpb bars. The executor never calls a Progress
// concurrently, so it needs no lock of its own.
type barProgress struct {
	w       io.Writer
	p       *mpb.Progress
	total   *mpb.Bar
	running map[string]*mpb.Bar
	lines   *pipeline.LineProgress
}

func (b *barProgress) Start(total int) {
	b.p = mpb.New(mpb.WithOutput(b.w), mpb.WithWidth(32))
	b.lines = pipeline.NewLineProgress(b.p)
	b.lines.Start(total)
	b.total = b.p.AddBar(int64(total),
		mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Name("build", decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d stages", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
	)
}

func (b *barProgress) StageStart(id string) {
	b.running[id] = b.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(id, decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d steps", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
	)
}

func (b *barProgress) StageStep(id string, done, total int) {
	if bar := b.running[id]; bar != nil {
		bar.SetTotal(int64(total), false)
		bar.SetCurrent(int64(done))
	}
}

// StageNote prints a running stage's status line above the bars.
func (b *barProgress) StageNote(id, key, value string) { printStatus(b.p, id, key, value) }

func (b *barProgress) StageDone(r pipeline.StageReport) {
	if bar := b.running[r.ID]; bar != nil {
		bar.Abort(true)
		delete(b.running, r.ID)
	}
	b.total.Increment()
	// What ran, failed or was skipped is printed above the bars.
	b.lines.StageDone(r)
}

func (b *barProgress) Done(r *pipeline.Report) {
	for id, bar := range b.running {
		bar.Abort(true)
		delete(b.running, id)
	}
	b.total.Abort(false)
	b.p.Wait()
	fmt.Fprintln(b.w, r.Summary())
	for _, o := range r.Orphans {
		fmt.Fprintf(b.w, "  no longer produced: %s\n", o)
	}
}
