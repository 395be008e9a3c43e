package generators

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/sampler"
)

// Before a stage allocates anything big it estimates its peak memory
// (the estimate functions in memory_estimate.go, arithmetic on sizes and
// counts) and asks the planner's memoryGuard to admit it. The guard
// compares the estimate with the budget: runtime.memory_budget and what
// the operating system says is left (MemoryProbe), whichever is smaller,
// less what stages already running have been admitted with. A stage that
// does not fit waits while other stages run, and fails with a message
// saying what to lower when it does not fit even alone, after the guard
// has freed what it can (garbage, idle ONNX Runtime sessions).

// Constants of the Go heap part of an estimate.
const (
	// goHeapSlack is the Go memory a stage uses besides the buffers an
	// estimate counts: small objects, stacks, the runtime's metadata.
	goHeapSlack = 32 << 20
	// heapArenaBytes is the granule in which the Go heap maps address
	// space.
	heapArenaBytes = 64 << 20
	// pacerOvershoot is how far past its goal the heap may grow while the
	// collector runs concurrently.
	pacerOvershoot = 1.1
)

// heapStats is what the Go runtime says about its heap.
type heapStats struct {
	gogc     int64 // GOGC in percent; negative when collection is off
	live     int64 // bytes live after the last collection
	free     int64 // free heap memory, still resident
	released int64 // free heap memory returned to the system, still mapped
}

// readHeapStats reads the heap's state from runtime/metrics.
func readHeapStats() heapStats {
	s := []metrics.Sample{
		{Name: "/gc/gogc:percent"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	hs := heapStats{gogc: 100, live: int64(u(1)), free: int64(u(2)), released: int64(u(3))}
	if s[0].Value.Kind() == metrics.KindUint64 {
		hs.gogc = int64(u(0)) // off reads as the largest uint64: -1
	}
	return hs
}

// memNeed is a stage's estimated peak memory by where it lives.
type memNeed struct {
	heap     int64 // the Go heap, garbage the collector has not yet freed included
	native   int64 // ONNX Runtime: sessions, weights, working memory
	reserved int64 // address space reserved, not resident: thread stacks, allocator arenas
}

// resident is what the need takes of free memory or a cgroup's limit.
func (n memNeed) resident() int64 { return n.heap + n.native }

// virtual is what the need takes of an address-space limit.
func (n memNeed) virtual() int64 { return n.heap + n.native + n.reserved }

func (n memNeed) plus(o memNeed) memNeed {
	return memNeed{heap: n.heap + o.heap, native: n.native + o.native, reserved: n.reserved + o.reserved}
}

func (n memNeed) minus(o memNeed) memNeed {
	return memNeed{heap: n.heap - o.heap, native: n.native - o.native, reserved: n.reserved - o.reserved}
}

// needOf turns an estimate into the memory it takes. The Go heap holds
// what is live and the garbage not yet collected: never more than all the
// stage allocates, and, while collection is on, at most (1+GOGC/100)
// times what is live (plus the pacer's overshoot), the garbage allowance
// of what the process already holds included.
func needOf(m sampler.Memory, hs heapStats) memNeed {
	heap := m.Live + m.Churn
	if hs.gogc >= 0 {
		g := pacerOvershoot * (1 + float64(hs.gogc)/100)
		heap = min(heap, int64(g*float64(m.Live)+(g-1)*float64(hs.live)))
	}
	// The heap maps address space in arenas: one more may be mapped.
	return memNeed{heap: max(heap, m.Live) + goHeapSlack, native: m.Native, reserved: m.Reserved + heapArenaBytes}
}

// stageMemory is what a stage asks the guard for.
type stageMemory struct {
	// what the stage does, for messages: "generate 8192x8192 with model
	// \"exemplar\"".
	what string
	mem  sampler.Memory
	// budget is runtime.memory_budget (0: none) and budgetAt where
	// kiln.yaml sets it.
	budget   int64
	budgetAt string
	// lower says what to lower so the stage fits: given a test of
	// whether an estimate fits, it returns advice such as "lower size
	// (a.kiln.yaml:6:11) to 1024x1024 or less"; nil or "" gives general
	// advice.
	lower func(fits func(sampler.Memory) bool) string
	// log receives the estimate and the budget; nil discards them.
	log *slog.Logger
	// keep names the ONNX Runtime sessions (graph files) the stage will
	// use that are loaded now: the estimate does not count their memory
	// again, so freeing memory for the stage must not release them.
	keep func(path string) bool
}

// memoryGuard admits stages whose estimated memory fits the budget.
// Stages admitted together hold their estimates until they finish, so
// concurrent stages cannot overcommit between them. It is safe for
// concurrent use.
type memoryGuard struct {
	limits func() []MemoryLimit // what the system has left (MemoryProbe.Limits)
	heap   func() heapStats
	// reclaim frees what can be freed (garbage, idle ONNX Runtime
	// sessions but those keep names).
	reclaim func(keep func(path string) bool)
	// reserve makes the Go heap hold n bytes of address space it can
	// reuse (reserveHeap).
	reserve func(n int64)

	mu      sync.Mutex
	held    memNeed // what running stages were admitted with
	running int
	// paid is the most address space a finished stage reserved for
	// ONNX Runtime's threads: the C allocator keeps the arenas it made
	// for them mapped, and later threads reuse them.
	paid int64
	wake chan struct{} // closed when a stage finishes
}

// newMemoryGuard returns a guard reading probe (nil: the operating
// system's); reclaim, when not nil, frees memory before a stage is
// refused.
func newMemoryGuard(probe *MemoryProbe, reclaim func(keep func(path string) bool)) *memoryGuard {
	if probe == nil {
		probe = &MemoryProbe{}
	}
	if reclaim == nil {
		reclaim = func(func(string) bool) { debug.FreeOSMemory() }
	}
	return &memoryGuard{limits: probe.Limits, heap: readHeapStats, reclaim: reclaim, reserve: reserveHeap, wake: make(chan struct{})}
}

// reserveHeap grows the Go heap's address space by n bytes and frees it
// again: the pages are mapped but never touched (resident memory does
// not grow), and the heap reuses them before it asks the system for
// more. Under an address-space limit that a stage's estimate only just
// fits, this keeps ONNX Runtime's arenas, which reserve more than they
// use while there is room (and back off when there is none), from taking
// the room the Go heap will need later in the stage: Go cannot back off.
func reserveHeap(n int64) {
	if n <= 0 {
		return
	}
	b := make([]byte, n)
	runtime.KeepAlive(b)
	b = nil
	runtime.GC()
}

// admit waits until sm fits beside the stages running, reserves its
// estimate and returns the function that gives it back. It fails when sm
// does not fit even with no other stage running, once the guard has
// freed what it can, or when ctx is done.
func (g *memoryGuard) admit(ctx context.Context, sm stageMemory) (release func(), err error) {
	hs := g.heap()
	need := needOf(sm.mem, hs)
	reclaimed := false
	for {
		limits := g.budgetLimits(sm) // read before locking: it reads files
		g.mu.Lock()
		v := decide(need, g.held, g.running == 0, g.paid, limits, hs)
		if sm.log != nil {
			sm.log.Debug("memory estimate", "work", sm.what, "resident", need.resident(), "address_space", need.virtual(),
				"go_heap", need.heap, "onnx_runtime", need.native, "reserved", need.reserved,
				"resident_left", v.residentAvail, "address_space_left", v.virtualAvail, "held_by_others", g.held.resident(), "fits", v.ok)
		}
		if v.ok {
			alone := g.running == 0
			g.held = g.held.plus(need)
			g.running++
			g.mu.Unlock()
			if v.virtualAvail >= 0 && v.virtualAvail-need.virtual() < need.native {
				// Only what the heap's free memory (counted as
				// available) does not cover: mapping more could itself
				// exceed the limit.
				n := need.heap
				if alone {
					n -= hs.free + hs.released
				}
				g.reserve(n)
			}
			var once sync.Once
			return func() { once.Do(func() { g.done(need) }) }, nil
		}
		if g.running > 0 {
			// Others hold memory: wait for one to finish.
			wake := g.wake
			g.mu.Unlock()
			select {
			case <-wake:
				hs = g.heap()
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		g.mu.Unlock()
		if !reclaimed {
			reclaimed = true
			g.reclaim(sm.keep)
			hs = g.heap()
			continue
		}
		return nil, refusal(sm, need, v, hs)
	}
}

// done gives back a finished stage's reservation.
func (g *memoryGuard) done(need memNeed) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.held = g.held.minus(need)
	g.running--
	g.paid = max(g.paid, need.reserved)
	close(g.wake)
	g.wake = make(chan struct{})
}

// budgetLimits returns the limits a stage is checked against: what the
// probe finds and runtime.memory_budget.
func (g *memoryGuard) budgetLimits(sm stageMemory) []MemoryLimit {
	limits := g.limits()
	if sm.budget > 0 {
		src := "runtime.memory_budget"
		if sm.budgetAt != "" {
			src += " (" + sm.budgetAt + ")"
		}
		limits = append(limits, MemoryLimit{Bytes: sm.budget, Source: src, configured: true})
	}
	return limits
}

// verdict is decide's answer.
type verdict struct {
	ok bool
	// limit is the bound the need exceeds (when not ok), avail what it
	// leaves for the stage; residentAvail and virtualAvail are the least
	// any bound leaves of each kind (-1: no bound of that kind).
	limit         MemoryLimit
	avail         int64
	residentAvail int64
	virtualAvail  int64
}

// decide checks need against limits, less what running stages hold
// (held). When no other stage runs (alone), memory the process holds but
// will reuse counts as available too: the Go heap's free memory, which
// the heap reuses before it asks the system for more (free and released
// memory for an address-space limit, which counts both; only the
// unreleased free memory for the others, which count released memory as
// available already), and, for an address-space limit, the allocator
// arenas of ONNX Runtime threads that earlier stages left (paid: eight
// ninths of a thread's reserve, the rest being its stack, which is freed).
func decide(need, held memNeed, alone bool, paid int64, limits []MemoryLimit, hs heapStats) verdict {
	v := verdict{ok: true, residentAvail: -1, virtualAvail: -1}
	worst := int64(0)
	for _, l := range limits {
		avail, want := l.Bytes-held.resident(), need.resident()
		if l.AddressSpace {
			avail, want = l.Bytes-held.virtual(), need.virtual()
			if alone {
				avail += hs.free + hs.released + min(paid, need.reserved)/9*8
			}
			if v.virtualAvail < 0 || avail < v.virtualAvail {
				v.virtualAvail = avail
			}
		} else {
			if alone && !l.configured {
				avail += hs.free
			}
			if v.residentAvail < 0 || avail < v.residentAvail {
				v.residentAvail = avail
			}
		}
		if short := want - avail; short > 0 && (v.ok || short > worst) {
			v.ok, v.limit, v.avail, worst = false, l, avail, short
		}
	}
	return v
}

// fits reports whether an estimate fits what v says is available.
func (v verdict) fits(m sampler.Memory, hs heapStats) bool {
	n := needOf(m, hs)
	return (v.residentAvail < 0 || n.resident() <= v.residentAvail) && (v.virtualAvail < 0 || n.virtual() <= v.virtualAvail)
}

// refusal is the error of a stage that does not fit: what it needs and
// why, the budget and where it comes from, and what to lower.
func refusal(sm stageMemory, need memNeed, v verdict, hs heapStats) error {
	kind, total := "memory", need.resident()
	parts := []string{"Go heap " + formatBytes(need.heap)}
	if need.native > 0 {
		parts = append(parts, "ONNX Runtime "+formatBytes(need.native))
	}
	if v.limit.AddressSpace {
		kind, total = "address space", need.virtual()
		if need.reserved > 0 {
			parts = append(parts, "reserved by threads and allocators "+formatBytes(need.reserved))
		}
	}
	var advice string
	if sm.lower != nil {
		advice = sm.lower(func(m sampler.Memory) bool { return v.fits(m, hs) })
	}
	if advice == "" {
		advice = "make the asset smaller"
	}
	budget := "give kiln more memory (close other programs, or raise the limit)"
	if v.limit.configured {
		budget = "raise runtime.memory_budget in kiln.yaml if the machine has the memory"
	}
	return fmt.Errorf("not enough memory to %s: it needs an estimated %s of %s (%s), but %s is available under %s; %s, or %s",
		sm.what, formatBytes(total), kind, strings.Join(parts, ", "), formatBytes(max(v.avail, 0)), v.limit.Source, advice, budget)
}

// memoryCheck is what a stage needs to be admitted: the planner's guard
// and runtime.memory_budget.
type memoryCheck struct {
	guard    *memoryGuard
	budget   int64
	budgetAt string
}

// admit asks the guard for a stage that will need m to do what (see
// stageMemory); with no guard it admits everything.
// The estimate is logged (kiln -v) whether or not the stage fits.
func (c memoryCheck) admit(ctx context.Context, log *slog.Logger, what string, m sampler.Memory, lower func(fits func(sampler.Memory) bool) string) (func(), error) {
	return c.admitKeeping(ctx, log, what, m, lower, nil)
}

// admitKeeping is admit for a stage that will use the loaded sessions
// keep names (see stageMemory.keep).
func (c memoryCheck) admitKeeping(ctx context.Context, log *slog.Logger, what string, m sampler.Memory, lower func(fits func(sampler.Memory) bool) string, keep func(string) bool) (func(), error) {
	if c.guard == nil {
		return func() {}, nil
	}
	return c.guard.admit(ctx, stageMemory{what: what, mem: m, budget: c.budget, budgetAt: c.budgetAt, lower: lower, log: log, keep: keep})
}

// sizeEstimate estimates a stage at another size.
type sizeEstimate func(w, h int) (sampler.Memory, error)

// largestFit returns the largest size with w×h's aspect ratio, smaller
// than w×h and in steps of step on its longer side, whose estimate fits;
// ok is false when not even the smallest does.
func largestFit(w, h, step int, est sizeEstimate, fits func(sampler.Memory) bool) (fw, fh int, ok bool) {
	step = max(step, 1)
	long := max(w, h)
	at := func(k int) (int, int) {
		side := func(n int) int { return max(step, (n*k*step+long/2)/long/step*step) }
		return side(w), side(h)
	}
	try := func(k int) bool {
		x, y := at(k)
		m, err := est(x, y)
		return err == nil && fits(m)
	}
	lo, hi := 0, (long-1)/step // lo fits (0: none known), hi+1 does not
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if try(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		return 0, 0, false
	}
	fw, fh = at(lo)
	return fw, fh, true
}

// sizeAdvice says which size to set so a stage of size w×h fits: "lower
// size (a.kiln.yaml:6:11) to 1024x1024 or less"; "" when no size fits.
func sizeAdvice(a *manifests.Asset, w, h, step int, est sizeEstimate, fits func(sampler.Memory) bool) string {
	fw, fh, ok := largestFit(w, h, step, est, fits)
	if !ok {
		return ""
	}
	if a.Has("size") {
		return fmt.Sprintf("lower size (%s) to %dx%d or less", a.At("size"), fw, fh)
	}
	return fmt.Sprintf("set size to %dx%d or less (it is %dx%d)", fw, fh, w, h)
}

// sizeStep is the step in which sizes are suggested: 64 pixels, or the
// model's blocks when they are larger.
func sizeStep(info ModelInfo) int { return max(info.VAEFactor, 64) }
