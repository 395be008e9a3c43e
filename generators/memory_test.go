package generators

import (
	"context"
	"errors"
	"image"
	"image/color"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-dev/kiln/models/sampler"
)

// allowance is the heap the collector lets grow at GOGC gogc over live
// bytes, the process holding base.
func allowance(gogc, live, base int64) int64 {
	g := pacerOvershoot * (1 + float64(gogc)/100)
	return int64(g*float64(live) + (g-1)*float64(base))
}

func TestNeedOf(t *testing.T) {
	tests := []struct {
		name     string
		m        sampler.Memory
		hs       heapStats
		wantHeap int64 // without goHeapSlack
	}{
		{name: "no garbage", m: sampler.Memory{Live: gib}, hs: heapStats{gogc: 100}, wantHeap: gib},
		{name: "little garbage", m: sampler.Memory{Live: gib, Churn: 100 * mib}, hs: heapStats{gogc: 100}, wantHeap: gib + 100*mib},
		// The collector runs before the heap doubles (with a tenth of
		// overshoot), however much garbage is made.
		{name: "much garbage", m: sampler.Memory{Live: gib, Churn: 40 * gib}, hs: heapStats{gogc: 100}, wantHeap: allowance(100, gib, 0)},
		{name: "GOGC=50", m: sampler.Memory{Live: gib, Churn: 40 * gib}, hs: heapStats{gogc: 50}, wantHeap: allowance(50, gib, 0)},
		// What the process already holds grows the garbage allowance.
		{name: "live heap", m: sampler.Memory{Live: gib, Churn: 40 * gib}, hs: heapStats{gogc: 100, live: 100 * mib}, wantHeap: allowance(100, gib, 100*mib)},
		// Collection off: everything allocated stays.
		{name: "GOGC=off", m: sampler.Memory{Live: gib, Churn: 40 * gib}, hs: heapStats{gogc: -1}, wantHeap: 41 * gib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.m.Native, tc.m.Reserved = 3*gib, 200*mib
			n := needOf(tc.m, tc.hs)
			if got := n.heap - goHeapSlack; got != tc.wantHeap {
				t.Errorf("heap %d, want %d", got, tc.wantHeap)
			}
			if n.resident() != n.heap+3*gib || n.virtual() != n.resident()+200*mib+heapArenaBytes {
				t.Errorf("resident %d, virtual %d for %+v", n.resident(), n.virtual(), n)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	need := memNeed{heap: 1 * gib, native: 2 * gib, reserved: 576 * mib} // resident 3 GiB, virtual 3.56 GiB
	avail := func(n int64) MemoryLimit { return MemoryLimit{Bytes: n, Source: "MemAvailable in /proc/meminfo"} }
	as := func(n int64) MemoryLimit {
		return MemoryLimit{Bytes: n, Source: "the address-space limit", AddressSpace: true}
	}
	budget := func(n int64) MemoryLimit {
		return MemoryLimit{Bytes: n, Source: "runtime.memory_budget (kiln.yaml:5:18)", configured: true}
	}
	tests := []struct {
		name     string
		held     memNeed
		alone    bool
		paid     int64
		limits   []MemoryLimit
		hs       heapStats
		ok       bool
		failing  string // the limit's source when not ok
		wantLeft int64  // what the failing limit leaves
	}{
		{name: "no limits", alone: true, ok: true},
		{name: "enough memory", alone: true, limits: []MemoryLimit{avail(8 * gib)}, ok: true},
		{name: "too little memory", alone: true, limits: []MemoryLimit{avail(2 * gib)}, failing: "MemAvailable in /proc/meminfo", wantLeft: 2 * gib},
		// Reserved address space counts only against the address-space
		// limit, with the heap's arena granule.
		{name: "resident fits, address space does not", alone: true, limits: []MemoryLimit{avail(4 * gib), as(3*gib + 512*mib)}, failing: "the address-space limit", wantLeft: 3*gib + 512*mib},
		{name: "address space fits", alone: true, limits: []MemoryLimit{avail(4 * gib), as(4 * gib)}, ok: true},
		// The smaller of the budget and the machine.
		{name: "over the budget", alone: true, limits: []MemoryLimit{avail(16 * gib), budget(2 * gib)}, failing: "runtime.memory_budget (kiln.yaml:5:18)", wantLeft: 2 * gib},
		{name: "within the budget", alone: true, limits: []MemoryLimit{avail(16 * gib), budget(3*gib + mib)}, ok: true},
		// Running stages hold what they were admitted with.
		{name: "beside a running stage", held: memNeed{heap: 2 * gib}, limits: []MemoryLimit{avail(4 * gib)}, failing: "MemAvailable in /proc/meminfo", wantLeft: 2 * gib},
		{name: "budget shared with a running stage", held: memNeed{native: 1 * gib}, limits: []MemoryLimit{budget(3*gib + mib)}, failing: "runtime.memory_budget (kiln.yaml:5:18)", wantLeft: 2*gib + mib},
		// Alone, memory the process will reuse counts: the Go heap's
		// free memory (and, under ulimit -v, its released memory and the
		// arenas of threads earlier stages left).
		{name: "free heap counts when alone", alone: true, limits: []MemoryLimit{avail(2 * gib)}, hs: heapStats{free: gib, released: 8 * gib}, ok: true},
		{name: "released heap is free memory already", alone: true, limits: []MemoryLimit{avail(2 * gib)}, hs: heapStats{free: 512 * mib, released: 8 * gib}, failing: "MemAvailable in /proc/meminfo", wantLeft: 2*gib + 512*mib},
		{name: "free heap does not count beside others", held: memNeed{heap: 1}, limits: []MemoryLimit{avail(3 * gib)}, hs: heapStats{free: gib}, failing: "MemAvailable in /proc/meminfo", wantLeft: 3*gib - 1},
		{name: "the heap does not stretch the budget", alone: true, limits: []MemoryLimit{budget(2 * gib)}, hs: heapStats{free: 4 * gib}, failing: "runtime.memory_budget (kiln.yaml:5:18)", wantLeft: 2 * gib},
		{name: "released heap and thread arenas under ulimit -v", alone: true, paid: 576 * mib, limits: []MemoryLimit{as(2 * gib)}, hs: heapStats{free: 512 * mib, released: gib}, ok: true},
		{name: "thread arenas count once", alone: true, paid: 8 * gib, limits: []MemoryLimit{as(2*gib + 512*mib)}, hs: heapStats{free: 512 * mib}, failing: "the address-space limit", wantLeft: 3*gib + 576*mib/9*8},
		// The worst shortfall is reported.
		{name: "worst limit", alone: true, limits: []MemoryLimit{avail(2 * gib), budget(gib)}, failing: "runtime.memory_budget (kiln.yaml:5:18)", wantLeft: gib},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := decide(need, tc.held, tc.alone, tc.paid, tc.limits, tc.hs)
			if v.ok != tc.ok {
				t.Fatalf("ok %v, want %v (%+v)", v.ok, tc.ok, v)
			}
			if !tc.ok && (v.limit.Source != tc.failing || v.avail != tc.wantLeft) {
				t.Errorf("failing limit %q leaving %d, want %q leaving %d", v.limit.Source, v.avail, tc.failing, tc.wantLeft)
			}
		})
	}
}

// testGuard returns a guard with fixed limits, an empty heap, and
// counters of its reclaims and heap reservations.
func testGuard(limits ...MemoryLimit) (g *memoryGuard, reclaims, reserves *atomic.Int64) {
	reclaims, reserves = new(atomic.Int64), new(atomic.Int64)
	g = newMemoryGuard(nil, func(func(string) bool) { reclaims.Add(1) })
	g.heap = func() heapStats { return heapStats{gogc: 100} }
	g.reserve = func(int64) { reserves.Add(1) }
	g.limits = func() []MemoryLimit { return limits }
	return g, reclaims, reserves
}

func TestMemoryGuardAdmit(t *testing.T) {
	ctx := context.Background()
	mem := func(live int64) sampler.Memory { return sampler.Memory{Live: live} }
	t.Run("fits", func(t *testing.T) {
		g, reclaims, _ := testGuard(MemoryLimit{Bytes: 4 * gib, Source: "MemAvailable in /proc/meminfo"})
		release, err := g.admit(ctx, stageMemory{what: "generate 512x512", mem: mem(gib)})
		if err != nil {
			t.Fatal(err)
		}
		release()
		release() // twice is harmless
		if g.running != 0 || g.held != (memNeed{}) || reclaims.Load() != 0 {
			t.Errorf("after release: running %d, held %+v, reclaims %d", g.running, g.held, reclaims.Load())
		}
	})
	t.Run("refused after reclaiming once", func(t *testing.T) {
		g, reclaims, _ := testGuard(MemoryLimit{Bytes: 2 * gib, Source: "MemAvailable in /proc/meminfo"})
		sm := stageMemory{what: "generate 8192x8192 with model \"exemplar\"", mem: sampler.Memory{Live: 3 * gib, Native: gib},
			lower: func(fits func(sampler.Memory) bool) string {
				if !fits(mem(gib)) || fits(mem(2*gib)) {
					t.Error("fits does not compare with what is left")
				}
				return "lower size (a.kiln.yaml:6:11) to 1024x1024 or less"
			}}
		_, err := g.admit(ctx, sm)
		want := "not enough memory to generate 8192x8192 with model \"exemplar\": it needs an estimated 4.03 GiB of memory (Go heap 3.03 GiB, ONNX Runtime 1.00 GiB), but 2.00 GiB is available under MemAvailable in /proc/meminfo; lower size (a.kiln.yaml:6:11) to 1024x1024 or less, or give kiln more memory (close other programs, or raise the limit)"
		if err == nil || err.Error() != want {
			t.Errorf("error\n%v\nwant\n%s", err, want)
		}
		if reclaims.Load() != 1 || g.running != 0 {
			t.Errorf("reclaims %d, running %d; want 1, 0", reclaims.Load(), g.running)
		}
	})
	t.Run("budget", func(t *testing.T) {
		g, _, _ := testGuard()
		_, err := g.admit(ctx, stageMemory{what: "derive the PBR maps of a 4096x4096 albedo", mem: mem(2 * gib), budget: gib, budgetAt: "kiln.yaml:7:18"})
		if err == nil || !strings.Contains(err.Error(), "but 1.00 GiB is available under runtime.memory_budget (kiln.yaml:7:18); make the asset smaller, or raise runtime.memory_budget in kiln.yaml if the machine has the memory") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("address space", func(t *testing.T) {
		g, _, reserves := testGuard(MemoryLimit{Bytes: 3 * gib, Source: "the address-space limit (ulimit -v 3.81 GiB, of which kiln uses 832 MiB)", AddressSpace: true})
		_, err := g.admit(ctx, stageMemory{what: "generate", mem: sampler.Memory{Live: gib, Native: 2 * gib, Reserved: 100 * mib}})
		if err == nil || !strings.Contains(err.Error(), "of address space (Go heap 1.03 GiB, ONNX Runtime 2.00 GiB, reserved by threads and allocators 164 MiB)") {
			t.Errorf("error %v", err)
		}
		// A stage that fits with less room to spare than ONNX Runtime's
		// memory makes the Go heap take its room first.
		release, err := g.admit(ctx, stageMemory{what: "generate", mem: sampler.Memory{Live: gib, Native: 1536 * mib}})
		if err != nil {
			t.Fatal(err)
		}
		release()
		if reserves.Load() != 1 {
			t.Errorf("heap reserved %d times, want 1", reserves.Load())
		}
		release, err = g.admit(ctx, stageMemory{what: "generate", mem: sampler.Memory{Live: 64 * mib, Native: 64 * mib}})
		if err != nil {
			t.Fatal(err)
		}
		release()
		if reserves.Load() != 1 {
			t.Errorf("heap reserved for a small stage")
		}
	})
	t.Run("waits for a running stage", func(t *testing.T) {
		g, reclaims, _ := testGuard(MemoryLimit{Bytes: 3 * gib, Source: "MemAvailable in /proc/meminfo"})
		first, err := g.admit(ctx, stageMemory{what: "first", mem: mem(2 * gib)})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			release, err := g.admit(ctx, stageMemory{what: "second", mem: mem(2 * gib)})
			if err == nil {
				release()
			}
			done <- err
		}()
		// The second stage cannot be admitted while the first runs;
		// whether it has started waiting yet does not matter.
		select {
		case err := <-done:
			t.Fatalf("second stage admitted beside the first: %v", err)
		default:
		}
		first()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if reclaims.Load() != 0 {
			t.Errorf("reclaimed %d times while a stage ran", reclaims.Load())
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		g, _, _ := testGuard(MemoryLimit{Bytes: 3 * gib, Source: "MemAvailable in /proc/meminfo"})
		first, err := g.admit(ctx, stageMemory{what: "first", mem: mem(2 * gib)})
		if err != nil {
			t.Fatal(err)
		}
		defer first()
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := g.admit(cctx, stageMemory{what: "second", mem: mem(2 * gib)}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
}

func TestLargestFit(t *testing.T) {
	perPixel := func(b int64) sizeEstimate {
		return func(w, h int) (sampler.Memory, error) { return sampler.Memory{Live: b * int64(w) * int64(h)}, nil }
	}
	under := func(n int64) func(sampler.Memory) bool { return func(m sampler.Memory) bool { return m.Live <= n } }
	tests := []struct {
		name         string
		w, h, step   int
		est          sizeEstimate
		fits         func(sampler.Memory) bool
		wantW, wantH int
		ok           bool
	}{
		{name: "square", w: 8192, h: 8192, step: 64, est: perPixel(100), fits: under(100 * 1000 * 1000), wantW: 960, wantH: 960, ok: true},
		{name: "aspect kept", w: 8192, h: 4096, step: 64, est: perPixel(100), fits: under(100 * 1024 * 512), wantW: 1024, wantH: 512, ok: true},
		{name: "tall", w: 512, h: 2048, step: 8, est: perPixel(1), fits: under(256 * 1024), wantW: 256, wantH: 1024, ok: true},
		{name: "nothing fits", w: 1024, h: 1024, step: 64, est: perPixel(1), fits: under(10), ok: false},
		{name: "errors do not fit", w: 1024, h: 1024, step: 64, est: func(int, int) (sampler.Memory, error) { return sampler.Memory{}, errors.New("x") }, fits: under(gib), ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, h, ok := largestFit(tc.w, tc.h, tc.step, tc.est, tc.fits)
			if ok != tc.ok || w != tc.wantW || h != tc.wantH {
				t.Errorf("got %dx%d %v, want %dx%d %v", w, h, ok, tc.wantW, tc.wantH, tc.ok)
			}
		})
	}
}

// png8 is a w×h 8-bit RGB PNG file, as stages write them.
func png8(w, h int) imageFile { return imageFile{W: w, H: h, Temp: 5} }

func TestStageEstimates(t *testing.T) {
	ex := exemplarMemory(nil, 1)
	gen := func(w, h int, p genParams) int64 {
		t.Helper()
		if p.Steps == 0 {
			p.Steps = 24
		}
		m, err := generationMemory(&p, w, h, ex, nil, imageFile{})
		if err != nil {
			t.Fatal(err)
		}
		return needOf(m, heapStats{gogc: 100}).virtual()
	}
	tests := []struct {
		name        string
		small, big  int64
		minPerPixel int64 // big's bytes per pixel at least
		pixels      int64
	}{
		// builtin:exemplar: two full-resolution patch levels of 2.25×32
		// floats per pixel each dominate.
		{name: "tileable", small: gen(512, 512, genParams{Tile: "xy"}), big: gen(2048, 2048, genParams{Tile: "xy"}), minPerPixel: 2 * 288, pixels: 2048 * 2048},
		// All seven maps, kept for the ORM pack, the albedo as floats.
		{name: "derive", small: needOf(deriveMemory(png8(512, 512), true), heapStats{gogc: 100}).resident(), big: needOf(deriveMemory(png8(4096, 4096), true), heapStats{gogc: 100}).resident(), minPerPixel: 60, pixels: 4096 * 4096},
		// Every frame is kept at frame size, then the sheet twice.
		{name: "sheet", small: needOf(sheetMemory(2, png8(512, 512), 512, 512, 2, 1, true, false), heapStats{gogc: 100}).resident(), big: needOf(sheetMemory(64, png8(512, 512), 512, 512, 8, 8, true, true), heapStats{gogc: 100}).resident(), minPerPixel: 36, pixels: 64 * 512 * 512},
		// Only thumbnails are kept: variations add little.
		{name: "contact", small: needOf(contactMemory(1, png8(4096, 4096), 384), heapStats{gogc: 100}).resident(), big: needOf(contactMemory(64, png8(4096, 4096), 384), heapStats{gogc: 100}).resident(), minPerPixel: 36, pixels: 4096 * 4096},
		{name: "source", small: needOf(sourceMemory(png8(512, 512)), heapStats{gogc: 100}).resident(), big: needOf(sourceMemory(png8(8192, 8192)), heapStats{gogc: 100}).resident(), minPerPixel: 9, pixels: 8192 * 8192},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.big <= tc.small {
				t.Errorf("bigger work needs %d bytes, smaller %d", tc.big, tc.small)
			}
			if tc.big < tc.minPerPixel*tc.pixels {
				t.Errorf("%d bytes, want at least %d per pixel (%d)", tc.big, tc.minPerPixel, tc.minPerPixel*tc.pixels)
			}
		})
	}
	if c1, c64 := contactMemory(1, png8(4096, 4096), 384).Live, contactMemory(64, png8(4096, 4096), 384).Live; c64 > c1+64*(16+4)*384*384+64*mib {
		t.Errorf("64 variations hold %d bytes, one %d: more than their thumbnails", c64, c1)
	}
	// A strength-0 img2img only fits the init image: no model runs.
	p := genParams{Steps: 24, Strength: 0}
	m, err := generationMemory(&p, 1024, 1024, ex, nil, imageFile{W: 512, H: 512, Temp: 5})
	if err != nil {
		t.Fatal(err)
	}
	if m.Native != 0 || m.Reserved != 0 {
		t.Errorf("strength 0 counts ONNX Runtime memory: %+v", m)
	}
	// Guidance doubles the batch: more memory.
	if g, u := gen(1024, 1024, genParams{Guidance: 7}), gen(1024, 1024, genParams{}); g <= u {
		t.Errorf("guided %d bytes, unguided %d", g, u)
	}
}

func TestDecoderBytes(t *testing.T) {
	tests := []struct {
		name   string
		model  color.Model
		format string
		want   int64
	}{
		{"8-bit RGBA PNG decodes to NRGBA", color.NRGBAModel, "png", 1},
		{"8-bit RGB PNG is converted", color.RGBAModel, "png", 5},
		{"gray", color.GrayModel, "png", 2},
		{"16-bit gray", color.Gray16Model, "png", 3},
		{"16-bit colour", color.NRGBA64Model, "png", 9},
		{"paletted", color.Palette{color.Black, color.White}, "png", 2},
		{"JPEG, perhaps progressive", color.YCbCrModel, "jpeg", 16},
		{"unknown", color.CMYKModel, "png", decodeBytes},
	}
	for _, tc := range tests {
		if got := decoderBytes(image.Config{ColorModel: tc.model, Width: 1, Height: 1}, tc.format); got != tc.want {
			t.Errorf("%s: %d bytes per pixel, want %d", tc.name, got, tc.want)
		}
	}
}
