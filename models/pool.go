package models

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"
)

// SessionSpec says which session Acquire returns.
type SessionSpec struct {
	// Path is the .onnx file.
	Path string
	// Variant names a graph variant (such as a rewritten graph with
	// circular padding) so two sessions of one file can coexist; "" is the
	// graph as it is.
	Variant string
	// Outputs selects the outputs the session computes, in this order; nil
	// means all of them. ONNX Runtime skips work only the others need.
	Outputs []string
	// ExternalDataDir, when set, is the folder ONNX Runtime reads the
	// graph's external weights from, instead of the graph file's own
	// folder. Graph variants kept in kiln's cache use it to share the
	// original model's weights without copying them: ONNX Runtime 1.24
	// refuses external data reached through symlinks that leave the
	// graph's folder. The graph is then loaded from memory, and its
	// signature is read from the ONNX file rather than by ONNX Runtime.
	ExternalDataDir string
	// LoRA, when set, merges LoRA styles into the graph's weights as the
	// session loads; the graph is then loaded from memory.
	LoRA *LoRAMerge
}

// PoolKey identifies a pooled session: the model file, the execution
// provider, and the graph variant (which includes any output selection).
type PoolKey struct {
	Path     string
	Provider string
	Variant  string
}

// pool keeps sessions loaded across stages and rebuilds. Loading a
// diffusion model takes seconds and gigabytes, so a session is created once
// per key and shared (ONNX Runtime sessions are safe for concurrent Run).
// The pool holds the estimated memory of its sessions (file sizes
// including external weights) within a budget by evicting the least
// recently used idle sessions; a session that is in use is never evicted.
type pool struct {
	rt     *Runtime
	budget int64

	mu      sync.Mutex
	entries map[PoolKey]*poolEntry
	lru     *list.List // of *poolEntry, most recently used at the front
	bytes   int64      // estimated bytes of loaded and loading entries
	closed  bool
}

type poolEntry struct {
	key      PoolKey
	elem     *list.Element
	ready    chan struct{} // closed when loading finished
	err      error         // load error, set before ready is closed
	refs     int
	bytes    int64
	sess     *ort.DynamicAdvancedSession
	inputs   []TensorInfo
	outputs  []TensorInfo
	provider string
	trt      *trtGraph // the graph's TensorRT set-up; nil on other providers
	doomed   bool      // removed from the pool; destroy when refs reaches 0
}

func newPool(rt *Runtime, budget int64) *pool {
	return &pool{rt: rt, budget: budget, entries: map[PoolKey]*poolEntry{}, lru: list.New()}
}

func (p *pool) usage() (loaded, inUse int, bytes, budget int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if e.sess != nil {
			loaded++
		}
		if e.refs > 0 {
			inUse++
		}
	}
	return loaded, inUse, p.bytes, p.budget
}

// Session is an acquired pooled session. Run it any number of times, from
// any number of goroutines, then Release it exactly once.
type Session struct {
	p        *pool
	e        *poolEntry
	released atomic.Bool
}

// Acquire returns the pooled session for spec, creating it on first use.
// Concurrent Acquires of one key share one load. Release the session when
// done; until then it cannot be evicted.
func (r *Runtime) Acquire(ctx context.Context, spec SessionSpec) (*Session, error) {
	return r.pool.acquire(ctx, spec)
}

func (p *pool) key(spec SessionSpec) (PoolKey, error) {
	abs, err := filepath.Abs(spec.Path)
	if err != nil {
		return PoolKey{}, fmt.Errorf("model %s: %w", spec.Path, err)
	}
	v := spec.Variant
	if spec.Outputs != nil {
		v += "|outputs=" + strings.Join(spec.Outputs, ",")
	}
	if spec.ExternalDataDir != "" {
		v += "|data=" + spec.ExternalDataDir
	}
	v += spec.LoRA.poolKey()
	return PoolKey{Path: abs, Provider: p.rt.requested, Variant: v}, nil
}

func (p *pool) acquire(ctx context.Context, spec SessionSpec) (*Session, error) {
	key, err := p.key(spec)
	if err != nil {
		return nil, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, errors.New("ONNX Runtime session pool is closed")
		}
		e, ok := p.entries[key]
		if !ok {
			break // p.mu still held
		}
		select {
		case <-e.ready:
			if e.err == nil {
				e.refs++
				p.lru.MoveToFront(e.elem)
				p.mu.Unlock()
				p.rt.stats.hits.Add(1)
				return &Session{p: p, e: e}, nil
			}
			// A failed load removes its entry itself; try again.
			p.mu.Unlock()
			continue
		default:
		}
		p.mu.Unlock()
		select {
		case <-e.ready:
			if e.err != nil {
				return nil, e.err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	// Load: reserve the estimated bytes, evict what no longer fits, then
	// load outside the lock so other keys are not held up.
	e := &poolEntry{key: key, ready: make(chan struct{}), refs: 1, bytes: estimateModelBytes(key.Path, spec.ExternalDataDir)}
	e.elem = p.lru.PushFront(e)
	p.entries[key] = e
	p.bytes += e.bytes
	victims := p.evictLocked()
	p.mu.Unlock()
	for _, v := range victims {
		v.sess.Destroy()
	}

	start := time.Now()
	spec.Path = key.Path
	sess, ins, outs, provider, trt, err := p.rt.createSession(ctx, spec)
	p.mu.Lock()
	if err != nil {
		e.err = err
		p.removeLocked(e)
		close(e.ready)
		p.mu.Unlock()
		return nil, err
	}
	e.sess, e.inputs, e.outputs, e.provider, e.trt = sess, ins, outs, provider, trt
	close(e.ready)
	p.mu.Unlock()
	p.rt.stats.loads.Add(1)
	p.rt.stats.loadNanos.Add(int64(time.Since(start)))
	return &Session{p: p, e: e}, nil
}

// evictLocked removes idle entries, least recently used first, until the
// pool fits its budget, and returns them for destruction outside the lock.
func (p *pool) evictLocked() []*poolEntry {
	if p.budget <= 0 {
		return nil
	}
	var victims []*poolEntry
	for el := p.lru.Back(); el != nil && p.bytes > p.budget; {
		prev := el.Prev()
		e := el.Value.(*poolEntry)
		if e.refs == 0 && e.sess != nil {
			p.removeLocked(e)
			victims = append(victims, e)
			p.rt.stats.evictions.Add(1)
			p.rt.log.Debug("evicted ONNX Runtime session", "model", e.key.Path, "variant", e.key.Variant, "bytes", e.bytes)
		}
		el = prev
	}
	if p.bytes > p.budget {
		p.rt.log.Debug("sessions in use exceed the memory budget", "bytes", p.bytes, "budget", p.budget)
	}
	return victims
}

func (p *pool) removeLocked(e *poolEntry) {
	if p.entries[e.key] == e {
		delete(p.entries, e.key)
		p.lru.Remove(e.elem)
		p.bytes -= e.bytes
	}
	e.doomed = true
}

func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	var victims []*poolEntry
	for _, e := range p.entries {
		select {
		case <-e.ready:
		default:
			// Still loading: the loader's Session will be destroyed on
			// Release.
			p.removeLocked(e)
			continue
		}
		p.removeLocked(e)
		if e.refs == 0 && e.sess != nil {
			victims = append(victims, e)
		}
	}
	p.mu.Unlock()
	for _, v := range victims {
		v.sess.Destroy()
	}
}

// Release gives the session back to the pool. Releasing twice is a no-op.
func (s *Session) Release() {
	if s == nil || !s.released.CompareAndSwap(false, true) {
		return
	}
	p, e := s.p, s.e
	p.mu.Lock()
	e.refs--
	destroy := e.refs == 0 && e.doomed && e.sess != nil
	var victims []*poolEntry
	if !p.closed && p.budget > 0 && p.bytes > p.budget {
		// Sessions that were in use when others loaded kept the pool over
		// its budget; now that one is idle, shed the least recently used.
		victims = p.evictLocked()
	}
	p.mu.Unlock()
	if destroy {
		e.sess.Destroy()
	}
	for _, v := range victims {
		v.sess.Destroy()
	}
}

// Inputs are the session's inputs, in the order Run takes them.
func (s *Session) Inputs() []TensorInfo { return s.e.inputs }

// Outputs are the outputs the session computes, in the order Run takes
// them.
func (s *Session) Outputs() []TensorInfo { return s.e.outputs }

// Provider is the execution provider this session runs on.
func (s *Session) Provider() string { return s.e.provider }

// Key is the session's pool key.
func (s *Session) Key() PoolKey { return s.e.key }

// Run runs the graph. inputs and outputs follow Inputs and Outputs; a nil
// output is allocated by ONNX Runtime (and must be destroyed by the
// caller). Cancelling ctx terminates a run in progress.
func (s *Session) Run(ctx context.Context, inputs, outputs []ort.Value) error {
	if s.released.Load() {
		return errors.New("run on a released session")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var ro *ort.RunOptions
	if ctx.Done() != nil {
		var err error
		ro, err = ort.NewRunOptions()
		if err != nil {
			return fmt.Errorf("create run options: %w", err)
		}
		var mu sync.Mutex
		stop := context.AfterFunc(ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if ro != nil {
				ro.Terminate()
			}
		})
		defer func() {
			stop()
			mu.Lock()
			ro.Destroy()
			ro = nil
			mu.Unlock()
		}()
	}
	// Shapes the TensorRT engine does not cover make TensorRT build
	// again, inside this run: say so.
	var build string
	var before map[string]fileStamp
	if t := s.e.trt; t != nil {
		var outside bool
		if build, outside = t.admit(s.e.inputs, inputs); build != "" {
			before = engineFiles(t.engineDir)
			if outside {
				s.p.rt.log.Warn("input shapes outside the TensorRT optimisation profile: TensorRT builds the engine again (minutes for a UNet); list the size in the project so that its profile covers it", "graph", t.label, "why", build)
			}
			notifyEngine(ctx, EngineEvent{Graph: t.label, Provider: ProviderTensorRT, Reason: build, Cache: t.engineDir})
		}
	}
	// The goroutine stays on its thread so that the thread's CPU clock
	// measures the run (ONNX Runtime runs on the calling thread, plus its
	// intra-op pool when it has more than one thread).
	runtime.LockOSThread()
	cpu := threadCPU()
	start := time.Now()
	err := s.e.sess.RunWithOptions(inputs, outputs, ro)
	wall := time.Since(start)
	cpu = threadCPU() - cpu
	runtime.UnlockOSThread()
	if build != "" {
		s.p.rt.engineDone(ctx, s.e.trt, build, before, wall)
	}
	st := &s.p.rt.stats
	st.runNanos.Add(int64(wall))
	st.runCPUNanos.Add(int64(cpu))
	st.runs.Add(1)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("run %s: %w", s.e.key.Path, err)
	}
	return nil
}

// createSession creates an ONNX Runtime session for path on the Runtime's
// provider, falling back to the CPU when that is allowed and the provider
// fails at session creation (for example a CUDA build on a machine whose
// driver is missing). On the tensorrt provider it also sets up the
// graph's engine cache and profile, and reports the engine build to
// ctx's WithEngineNotify.
func (r *Runtime) createSession(ctx context.Context, spec SessionSpec) (*ort.DynamicAdvancedSession, []TensorInfo, []TensorInfo, string, *trtGraph, error) {
	path, outputs := spec.Path, spec.Outputs
	info, err := r.specGraphInfo(spec)
	if err != nil {
		return nil, nil, nil, "", nil, err
	}
	outs := info.Outputs
	if outputs != nil {
		outs = nil
		for _, n := range outputs {
			o, ok := info.Output(n)
			if !ok {
				return nil, nil, nil, "", nil, fmt.Errorf("%s has no output %q (it has %s)", path, n, strings.Join(names(info.Outputs), ", "))
			}
			outs = append(outs, o)
		}
	}
	provider := r.Provider()
	var trt *trtGraph
	if provider == ProviderTensorRT {
		if trt, err = r.prepareTensorRT(ctx, spec, info); err != nil {
			return nil, nil, nil, "", nil, err
		}
	}
	sess, err := r.newSessionReporting(ctx, spec, info, outs, provider, trt)
	var merr *mergeError
	if err != nil && provider != ProviderCPU && r.fallback && !errors.As(err, &merr) {
		r.log.Warn("execution provider failed to create a session; falling back to CPU", "provider", provider, "model", path, "err", err)
		cpu := ProviderCPU
		r.effective.Store(&cpu)
		r.stats.fallbacks.Add(1)
		provider, trt = ProviderCPU, nil
		sess, err = r.newSession(spec, info.Inputs, outs, provider, nil)
	}
	if err != nil {
		return nil, nil, nil, "", nil, err
	}
	return sess, info.Inputs, outs, provider, trt, nil
}

// newSessionReporting is newSession, reporting the TensorRT engine build
// that session creation does when the graph's shapes are all known.
func (r *Runtime) newSessionReporting(ctx context.Context, spec SessionSpec, info GraphInfo, outs []TensorInfo, provider string, trt *trtGraph) (*ort.DynamicAdvancedSession, error) {
	if trt == nil || !trt.buildsAtCreation(info) {
		return r.newSession(spec, info.Inputs, outs, provider, trt)
	}
	const reason = "new session"
	before := engineFiles(trt.engineDir)
	notifyEngine(ctx, EngineEvent{Graph: trt.label, Provider: provider, Reason: reason, Cache: trt.engineDir})
	start := time.Now()
	sess, err := r.newSession(spec, info.Inputs, outs, provider, trt)
	r.engineDone(ctx, trt, reason, before, time.Since(start))
	return sess, err
}

// engineDone logs and reports the end of TensorRT engine work that took
// took: a compile when the engine folder gained or rewrote an engine
// file, a load from the cache otherwise.
func (r *Runtime) engineDone(ctx context.Context, trt *trtGraph, reason string, before map[string]fileStamp, took time.Duration) {
	e := EngineEvent{Graph: trt.label, Provider: ProviderTensorRT, Reason: reason, Cache: trt.engineDir, Done: true, Took: took,
		Compiled: changedFiles(before, engineFiles(trt.engineDir))}
	if e.Compiled {
		r.log.Info("compiled TensorRT engine", "graph", e.Graph, "took", took.Round(time.Millisecond), "why", reason, "cache", e.Cache)
	} else {
		r.log.Debug("TensorRT engine ready", "graph", e.Graph, "took", took.Round(time.Millisecond), "why", reason, "cache", e.Cache)
	}
	notifyEngine(ctx, e)
}

func (r *Runtime) newSession(spec SessionSpec, ins, outs []TensorInfo, provider string, trt *trtGraph) (*ort.DynamicAdvancedSession, error) {
	path := spec.Path
	so, err := r.sessionOptions(provider, trt)
	if err != nil {
		return nil, err
	}
	defer so.Destroy()
	var sess *ort.DynamicAdvancedSession
	if spec.ExternalDataDir != "" || spec.LoRA != nil {
		data, dir, rerr := readMergedGraph(spec)
		if rerr != nil {
			return nil, rerr
		}
		if err := so.AddSessionConfigEntry("session.model_external_initializers_file_folder_path", dir); err != nil {
			return nil, fmt.Errorf("load %s: set external data folder %s: %w", path, dir, err)
		}
		sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, names(ins), names(outs), so)
	} else {
		sess, err = ort.NewDynamicAdvancedSession(path, names(ins), names(outs), so)
	}
	if err != nil {
		if provider != ProviderCPU {
			return nil, r.providerError(provider, explainModelError(path, err))
		}
		return nil, explainModelError(path, err)
	}
	return sess, nil
}

// estimateModelBytes estimates the memory a session of the model takes:
// the .onnx file plus the external weight files beside it. In the
// diffusers layout every component has its own folder, so the other files
// in the folder (except other graphs and JSON/text metadata) are its
// external data.
func estimateModelBytes(path, externalDataDir string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	total := fi.Size()
	dir := filepath.Dir(path)
	if externalDataDir != "" {
		dir = externalDataDir
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return total
	}
	for _, de := range ents {
		name := de.Name()
		if name == filepath.Base(path) || strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(filepath.Ext(name)) {
		case ".onnx", ".json", ".txt", ".md", ".yaml", ".yml":
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Mode().IsRegular() {
			total += st.Size()
		}
	}
	return total
}

// PooledSessions lists the keys of the loaded sessions, most recently used
// first (for diagnostics and tests).
func (r *Runtime) PooledSessions() []PoolKey {
	p := r.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []PoolKey
	for el := p.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*poolEntry)
		if e.sess != nil {
			keys = append(keys, e.key)
		}
	}
	return keys
}
