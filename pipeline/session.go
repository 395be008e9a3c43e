package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
)

// Session carries work in progress from one build of a project to the
// next, for watch mode, where a save during a build supersedes it.
//
// A stage that is still running when its build is cancelled with a cause
// the session detaches (see SessionOptions.Detach) keeps running,
// detached, and stores its result in the cache. The next build in the
// session whose stage has the same cache key waits for that run instead
// of starting it again, so a diffusion step in flight is never thrown
// away while its stage is unchanged. A detached
// run that the next build shows to be stale (its stage gone, or its key
// changed) is cancelled as soon as that is known, and one no finished
// build took over is cancelled at the end of that build.
//
// The session also holds the project lock for as long as a build or a
// detached run is live, and keeps the device limits of Accelerator stages
// across builds, so a detached diffusion run and the next build's stages
// share the device as one build's stages would. (A detached CPU stage is
// short; it runs beside the next build's CPU stages.)
//
// Builds that share a session must run one after another, as watch mode
// runs them. Close the session when done.
type Session struct {
	detach func(error) bool

	mu       sync.Mutex
	detached map[digest]*sessionRun // runs no build waits for
	accel    map[string]chan struct{}
	lock     *projectLock
	lockDir  string
	refs     int // live builds and runs holding the lock
	closed   bool
	runs     sync.WaitGroup
}

// SessionOptions configure a Session.
type SessionOptions struct {
	// Detach reports whether a build whose context was cancelled with
	// this cause (context.Cause) leaves its running stages running for
	// the next build. Watch mode detaches when a save
	// superseded the build; an interrupt (Ctrl-C) cancels everything, as
	// without a session. Nil detaches nothing.
	Detach func(cause error) bool
}

// NewSession returns a session for consecutive builds of one project.
func NewSession(o SessionOptions) *Session {
	return &Session{detach: o.Detach, detached: map[digest]*sessionRun{}, accel: map[string]chan struct{}{}}
}

// Close cancels the detached runs, waits for them to stop and releases
// the project lock. Builds must not use the session afterwards.
func (s *Session) Close() {
	s.mu.Lock()
	s.closed = true
	for _, r := range s.detached {
		r.cancel(errSessionClosed)
	}
	s.mu.Unlock()
	s.runs.Wait()
}

var errSessionClosed = errors.New("watch mode stopped")

// errDetached is the error of a stage whose run was left running when
// its build was superseded.
var errDetached = errors.New("superseded by newer changes; the run goes on for the next build")

// errStale cancels a detached run whose stage the next build changed or
// removed.
var errStale = errors.New("superseded: the stage changed")

// detaches reports whether a build cancelled with cause leaves its runs
// running.
func (s *Session) detaches(cause error) bool {
	return s != nil && s.detach != nil && cause != nil && s.detach(cause)
}

// acquire takes a reference on the project lock of cacheDir, taking the
// lock itself when nothing in the session holds it. live reports that
// detached runs already held it, so their temporary files must be left
// alone.
func (s *Session) acquire(cacheDir string) (release func(), live bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, errors.New("build session is closed")
	}
	if s.lock != nil && s.lockDir != cacheDir {
		return nil, false, fmt.Errorf("a build session serves one project; it holds the lock of %s, not %s", s.lockDir, cacheDir)
	}
	live = s.lock != nil
	if s.lock == nil {
		lk, err := acquireLock(cacheDir)
		if err != nil {
			return nil, false, err
		}
		s.lock, s.lockDir = lk, cacheDir
	}
	s.refs++
	return s.unref, live, nil
}

// unref drops a reference on the project lock, releasing the lock with
// the last one.
func (s *Session) unref() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.lock != nil {
		s.lock.release()
		s.lock = nil
	}
}

// slots returns the session's limit for an accelerator device.
func (s *Session) slots(dev string, jobs int) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.accel[dev]
	if c == nil {
		c = make(chan struct{}, jobs)
		s.accel[dev] = c
	}
	return c
}

// prune cancels the detached runs of stages the build does not select.
func (s *Session) prune(selected map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.detached {
		if !selected[r.stage] {
			r.cancel(errStale)
		}
	}
}

// claim returns the detached run of stage id with key, taking it out of
// the detached set, and cancels a detached run of the same stage with
// another key: the stage changed, so that work is stale.
func (s *Session) claim(id string, key digest) *sessionRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *sessionRun
	for k, r := range s.detached {
		switch {
		case k == key:
			found = r
			delete(s.detached, k)
		case r.stage == id:
			r.cancel(errStale)
		}
	}
	return found
}

// release puts a run no build waits for any more into the detached set.
func (s *Session) release(r *sessionRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-r.done:
		return // ended meanwhile; its result is in the cache
	default:
	}
	if s.closed {
		r.cancel(errSessionClosed)
		return
	}
	if old := s.detached[r.key]; old != nil && old != r {
		// Two stages with one key: the second is a duplicate.
		r.cancel(errStale)
		return
	}
	s.detached[r.key] = r
}

// finishBuild cancels the detached runs that a build which ran to its end
// did not take over: nothing needs them.
func (s *Session) finishBuild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.detached {
		r.cancel(errStale)
	}
}

// finished removes a run that has ended from the detached set and
// announces its end, under the session's lock so that release never
// keeps a run that has ended.
func (s *Session) finished(r *sessionRun) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detached[r.key] == r {
		delete(s.detached, r.key)
	}
	close(r.done)
}

// sessionRun is one stage's run, on its own goroutine, that a
// build waits for and can leave running.
type sessionRun struct {
	key    digest
	stage  string
	cancel context.CancelCauseFunc
	done   chan struct{}

	// Set before done is closed.
	outs  outputSet
	notes map[string]string
	err   error
	// blobs are the stat records of the blobs the run stored, for the
	// build that takes its result to trust.
	blobs map[digest]statRecord

	mu   sync.Mutex
	prog *syncProgress // the display of the build waiting, nil when detached
	step [2]int        // the last progress reported (done, total)
}

// progress forwards the stage's progress to the build waiting for it.
func (r *sessionRun) progress(done, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.step = [2]int{done, total}
	if r.prog != nil {
		r.prog.stageStep(r.stage, done, total)
	}
}

// attach points the run's progress at a build's display, showing where
// the run has got to.
func (r *sessionRun) attach(p *syncProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prog = p
	if p != nil && r.step[1] > 0 {
		p.stageStep(r.stage, r.step[0], r.step[1])
	}
}

// startRun runs n on a goroutine of the session, with its device slot
// (taken from *held, which is left nil) released when the run ends.
func (b *builder) startRun(ctx context.Context, n *node, inputs map[string]map[string]string, held *chan struct{}) *sessionRun {
	s := b.o.Session
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	n.mu.Lock()
	key := n.key
	n.mu.Unlock()
	r := &sessionRun{key: key, stage: n.st.ID, cancel: cancel, done: make(chan struct{}), prog: b.prog}
	slot := *held
	*held = nil
	// The run holds the project lock until it ends, whatever happens to
	// the build that started it (which holds it now).
	s.mu.Lock()
	s.refs++
	s.mu.Unlock()
	s.runs.Add(1)
	// The run may outlive this build, so it writes nothing into the
	// build's own records: it gets a builder of its own for the cache.
	rb := &builder{o: b.o, cache: b.cache, old: b.old, prog: &syncProgress{}, blobs: map[digest]statRecord{}}
	go func() {
		defer s.runs.Done()
		defer s.unref()
		outs, notes, err := rb.runAndStore(rctx, n, inputs, r.progress)
		if slot != nil {
			<-slot
		}
		cancel(nil)
		r.outs, r.notes, r.err, r.blobs = outs, maps.Clone(notes), err, rb.blobs
		s.finished(r)
	}()
	return r
}

// await waits for run r. When ctx is cancelled first, the run
// is left running if the session detaches the cause, and cancelled (and
// waited for) otherwise.
func (b *builder) await(ctx context.Context, r *sessionRun) (outputSet, map[string]string, error) {
	result := func() (outputSet, map[string]string, error) {
		b.mu.Lock()
		maps.Copy(b.blobs, r.blobs)
		b.mu.Unlock()
		return r.outs, r.notes, r.err
	}
	select {
	case <-r.done:
		return result()
	case <-ctx.Done():
	}
	if b.letGo(ctx, r) {
		return nil, nil, errDetached
	}
	<-r.done
	return result()
}

// letGo gives up on run r when the build stops (ctx is done, or the
// stage never got to wait for it): the run is left going for the next
// build if the session detaches the build's cause, and cancelled
// otherwise. It reports whether the run was left going.
func (b *builder) letGo(ctx context.Context, r *sessionRun) bool {
	if b.o.Session.detaches(context.Cause(ctx)) {
		r.attach(nil)
		b.o.Session.release(r)
		b.o.Log.Debug("build superseded; the stage keeps running for the next build", "stage", r.stage)
		return true
	}
	r.cancel(context.Cause(ctx))
	return false
}
