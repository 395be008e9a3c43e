package store

import (
	"fmt"
	"io"
	"sync"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// progress shows a pull: bars on a terminal, plain lines otherwise. Its
// methods are called from several download goroutines at once.
type progress interface {
	// note prints a line (above the bars on a terminal).
	note(format string, args ...any)
	// file starts showing one file's download.
	file(f File) fileBar
	// finish stops drawing, the whole pull having succeeded or not; no
	// method may be called after it.
	finish(ok bool)
}

// fileBar is one file's progress; it is used by one goroutine.
type fileBar interface {
	// set says how many bytes of the file are present.
	set(n int64)
	// add counts n more bytes.
	add(n int)
	// done marks the file verified; how says why nothing was downloaded
	// ("already downloaded") or is "".
	done(how string)
	// fail marks the file abandoned.
	fail()
}

func newProgress(w io.Writer, terminal bool) progress {
	if terminal {
		return newBarProgress(w)
	}
	return &lineProgress{w: w}
}

// lineProgress prints a line per finished file, and for large files one
// at each quarter, so logs show progress without drawing.
type lineProgress struct {
	mu sync.Mutex
	w  io.Writer
}

// lineMilestoneSize is the size from which a file's quarters are printed.
const lineMilestoneSize = 64 << 20

func (l *lineProgress) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format+"\n", args...)
}

func (l *lineProgress) file(f File) fileBar { return &lineBar{l: l, f: f} }

func (l *lineProgress) finish(bool) {}

type lineBar struct {
	l        *lineProgress
	f        File
	cur      int64
	quarters int64 // quarters already printed
}

func (b *lineBar) set(n int64) {
	b.cur = n
	if b.f.Size > 0 {
		b.quarters = 4 * n / b.f.Size
	}
}

func (b *lineBar) add(n int) {
	b.cur += int64(n)
	if b.f.Size < lineMilestoneSize {
		return
	}
	if q := 4 * b.cur / b.f.Size; q > b.quarters && q < 4 {
		b.quarters = q
		b.l.note("  %s: %d%% (%s of %s)", b.f.Path, q*25, formatBytes(b.cur), formatBytes(b.f.Size))
	}
}

func (b *lineBar) done(how string) {
	if how != "" {
		b.l.note("  ok %s (%s, %s)", b.f.Path, formatBytes(b.f.Size), how)
		return
	}
	b.l.note("  ok %s (%s)", b.f.Path, formatBytes(b.f.Size))
}

func (b *lineBar) fail() {}

// barWidth is the width of a bar's filler; names and counters come on top.
const barWidth = 24

// barProgress draws an mpb bar for the whole model and one per file being
// downloaded.
type barProgress struct {
	p     *mpb.Progress
	total *mpb.Bar

	mu   sync.Mutex
	size int64 // sum of the sizes of the files started
}

func newBarProgress(w io.Writer) *barProgress {
	// The caller has decided w is a terminal; mpb would otherwise stop
	// drawing (and drop notes) when w is not an *os.File it recognises.
	p := mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh())
	total := p.AddBar(0,
		mpb.BarPriority(1<<30),
		mpb.BarWidth(barWidth),
		mpb.PrependDecorators(decor.Name("total", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace),
		),
	)
	return &barProgress{p: p, total: total}
}

func (b *barProgress) note(format string, args ...any) {
	fmt.Fprintf(b.p, format+"\n", args...)
}

func (b *barProgress) file(f File) fileBar {
	b.mu.Lock()
	defer b.mu.Unlock()
	// The total grows as files start, so it never completes early.
	b.size += f.Size
	b.total.SetTotal(b.size, false)
	if f.Size == 0 {
		return &mpbBar{p: b, f: f}
	}
	bar := b.p.AddBar(f.Size,
		mpb.BarRemoveOnComplete(),
		mpb.BarWidth(barWidth),
		mpb.PrependDecorators(decor.Name(f.Path, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.Percentage(decor.WCSyncSpace),
		),
	)
	return &mpbBar{p: b, f: f, bar: bar}
}

func (b *barProgress) finish(ok bool) {
	b.mu.Lock()
	size := b.size
	b.mu.Unlock()
	if ok {
		b.total.SetTotal(size, true)
	} else {
		b.total.Abort(false)
	}
	b.p.Wait()
}

type mpbBar struct {
	p   *barProgress
	f   File
	bar *mpb.Bar
	cur int64
}

func (m *mpbBar) set(n int64) {
	if d := n - m.cur; d != 0 {
		m.p.total.IncrInt64(d)
	}
	m.cur = n
	if m.bar != nil {
		m.bar.SetCurrent(n)
	}
}

func (m *mpbBar) add(n int) {
	m.cur += int64(n)
	m.p.total.IncrBy(n)
	if m.bar != nil {
		m.bar.IncrBy(n)
	}
}

func (m *mpbBar) done(how string) {
	m.set(m.f.Size)
	if m.bar != nil {
		m.bar.SetTotal(m.f.Size, true)
	}
	if how != "" {
		m.p.note("  ok %s (%s, %s)", m.f.Path, formatBytes(m.f.Size), how)
	}
}

func (m *mpbBar) fail() {
	if m.bar != nil {
		m.bar.Abort(true)
	}
}
