package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// NoteStatus is the key of a running stage's status note: what it is doing
// now that takes a while, such as compiling a TensorRT engine. The
// executor shows it through a NoteProgress display and leaves it out of
// the report, whose notes say what the stage did.
const NoteStatus = "status"

// NoteProgress is implemented by Progress displays that show the notes
// running stages record (Run.Note), such as NoteStatus lines. The
// executor calls StageNote as it calls the other methods, never
// concurrently.
type NoteProgress interface {
	StageNote(id, key, value string)
}

// stageNote forwards a running stage's note to a NoteProgress display.
func (s *syncProgress) stageNote(id, key, value string) {
	np, ok := s.p.(NoteProgress)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	np.StageNote(id, key, value)
}

// work processes one ready stage on a worker. It returns true when the
// stage was handed to another goroutine (an accelerator stage waiting for
// its device), which then reports it on done itself.
func (b *builder) work(ctx context.Context, n *node, done chan<- *node) (handedOff bool) {
	start := time.Now()
	var held chan struct{}
	finish := func() {
		if held != nil {
			<-held
			held = nil
		}
		if r := n.adopted; r != nil {
			// Taken over but never waited for: the build stopped first.
			n.adopted = nil
			b.letGo(ctx, r)
		}
		n.mu.Lock()
		n.rep.Started = start
		n.rep.Queue = Duration(n.queued)
		n.rep.Duration = Duration(time.Since(start) - n.queued)
		status := n.rep.Status
		n.mu.Unlock()
		b.noteFailure(n, status)
	}
	// Dependencies were checked when n was dispatched; the build may have
	// stopped or been interrupted since.
	if status, reason := b.blocked(ctx, n); status != "" {
		n.mu.Lock()
		n.rep.Status = status
		n.rep.Reasons = []string{reason}
		n.mu.Unlock()
		return false
	}
	if err := b.waitSlot(ctx, n, &held, b.cpu); err != nil {
		n.mu.Lock()
		n.rep.Status = StatusSkipped
		n.rep.Reasons = []string{"not started: the build was interrupted"}
		n.mu.Unlock()
		finish()
		return false
	}
	parts, err := b.keyParts(n)
	if err != nil {
		n.fail(StatusFailed, err)
		finish()
		return false
	}
	key := parts.key()
	n.mu.Lock()
	n.key, n.parts = key, parts
	n.rep.Key = key.String()
	n.mu.Unlock()

	if b.readOnly {
		b.inspect(n)
		finish()
		return false
	}

	if b.o.Session != nil {
		// A run of this stage that a superseded build left running is
		// taken over if its key still holds, and cancelled if not.
		n.adopted = b.o.Session.claim(n.st.ID, key)
	}
	if b.fromCache(ctx, n) {
		if n.adopted != nil {
			n.adopted.cancel(errStale) // the cache has the result
			n.adopted = nil
		}
		b.offerCached(ctx, n)
		finish()
		return false
	}
	if b.skipStopped(n) {
		finish()
		return false
	}
	// Stages with equal keys run once: the second waits for the first and
	// then finds its result. Never wait for the lock while holding a slot.
	kl := b.keyLock(key)
	if !kl.TryLock() {
		b.switchSlot(ctx, &held, nil)
		waited := time.Now()
		kl.Lock()
		n.addQueue(time.Since(waited))
		if err := b.waitSlot(ctx, n, &held, b.cpu); err != nil {
			kl.Unlock()
			n.fail(StatusInterrupted, errors.New("interrupted"))
			finish()
			return false
		}
		if b.fromCache(ctx, n) {
			kl.Unlock()
			b.offerCached(ctx, n)
			finish()
			return false
		}
	}
	if n.st.Resource == Accelerator || b.remote != nil && b.remote.available() {
		// Free the CPU slot for other stages while waiting for the
		// device, or for the remote cache: a lookup there is network
		// time, which should not hold one of the Jobs workers (a CPU
		// stage that must run takes a CPU slot again in execute).
		b.switchSlot(ctx, &held, nil)
		go func() {
			b.build(ctx, n, &held)
			kl.Unlock()
			finish()
			done <- n
		}()
		return true
	}
	b.build(ctx, n, &held)
	kl.Unlock()
	finish()
	return false
}

// keyParts gathers the inputs of n's key: canonical params, models,
// source-file hashes and the output hashes of its dependencies.
func (b *builder) keyParts(n *node) (*keyParts, error) {
	s := n.st
	params, err := canonicalJSON(s.Params)
	if err != nil {
		return nil, fmt.Errorf("encode the parameters of stage %s as JSON: %v; this is a bug in the %s stage", s.ID, err, s.Kind)
	}
	p := &keyParts{Kind: s.Kind, Version: s.Version, Params: params, Models: s.Models}
	if len(s.Files) > 0 {
		p.Files = make([]fileInput, len(s.Files))
		for i, f := range s.Files {
			sha, err := b.sourceHash(f)
			if err != nil {
				return nil, err
			}
			p.Files[i] = fileInput{Path: f, SHA256: sha}
		}
	}
	if len(n.deps) > 0 {
		p.Deps = make([]depInput, len(n.deps))
		for i, d := range n.deps {
			d.mu.Lock()
			outs := d.outputs
			d.mu.Unlock()
			p.Deps[i] = depInput{ID: d.st.ID, Outputs: namedBlobs(outs)}
		}
	}
	return p, nil
}

// namedBlobs lists outputs by name.
func namedBlobs(outs outputSet) []namedBlob {
	list := make([]namedBlob, len(outs))
	for i, o := range outs {
		list[i] = namedBlob{Name: o.Name, SHA256: o.SHA256}
	}
	return list
}

// sourceHash returns the content hash of a source file, computing it at
// most once per build and not at all when the file's stat matches the
// trusted record of an earlier build.
func (b *builder) sourceHash(rel string) (digest, error) {
	b.mu.Lock()
	h := b.files[rel]
	if h == nil {
		h = &sourceHash{}
		b.files[rel] = h
	}
	b.mu.Unlock()
	h.once.Do(func() { h.sha, h.rec, h.err = b.hashSource(rel) })
	return h.sha, h.err
}

func (b *builder) hashSource(rel string) (digest, statRecord, error) {
	abs := filepath.Join(b.o.Root, filepath.FromSlash(rel))
	now := time.Now()
	mode, cur, err := b.dirs.stat(abs, true)
	if err != nil {
		if _, jerr := safepath.Join(b.o.Root, rel); jerr != nil {
			// A dangling link, or one into a folder that lacks the
			// file: the link is the problem, whatever lies beyond it.
			return digest{}, statRecord{}, fmt.Errorf("source file: %w", jerr)
		}
		if isNotExist(err) {
			return digest{}, statRecord{}, fmt.Errorf("source file %s not found (looked for %s); add the file or fix the path in the manifest", rel, abs)
		}
		return digest{}, statRecord{}, fmt.Errorf("source file %s: %w", rel, err)
	}
	if mode.IsDir() {
		return digest{}, statRecord{}, fmt.Errorf("source file %s is a folder; name a file", rel)
	}
	if !mode.IsRegular() {
		// Reading a named pipe or a device would block or never end.
		return digest{}, statRecord{}, fmt.Errorf("source file %s is not a regular file (%s); name a file", rel, fileType(mode))
	}
	if old, ok := b.old.Files[rel]; ok && !old.SHA256.IsZero() && old.unchanged(cur) {
		return old.SHA256, old, nil
	}
	if _, err := safepath.Join(b.o.Root, rel); err != nil {
		return digest{}, statRecord{}, fmt.Errorf("source file: %w", err)
	}
	b.hashed.Add(1)
	sha, _, err := hashFile(abs)
	if err != nil {
		return digest{}, statRecord{}, fmt.Errorf("source file %s: %w", rel, err)
	}
	rec := trustAt(cur, sha, now)
	if _, after, err := statFile(abs, true); err != nil || after != cur {
		rec.Size = -1 // changed while we read it: hash again next time
	}
	return sha, rec, nil
}

// fileType names a non-regular file's type for messages.
func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "mode " + m.Type().String()
}

// lookup finds n's key in the cache: from the build state when the key is
// unchanged (no file access: the state, in the same folder, is written
// only after the records it names, and a record or blob removed behind
// kiln's back is noticed when the outputs are next read, and rebuilt),
// else by reading the record. why explains a miss.
func (b *builder) lookup(n *node) (outs outputSet, notes map[string]string, ok bool, why string) {
	if st := b.old.Stages[n.st.ID]; st != nil && st.Key == n.key {
		return st.Outputs, st.Notes, true, ""
	}
	rec, err := b.cache.readAction(n.key)
	switch {
	case err == nil:
		return rec.Outputs, rec.Notes, true, ""
	case errors.Is(err, errCorrupt):
		n.log(b).Warn("discarding damaged cache record", "err", err)
		if !b.readOnly {
			b.cache.removeAction(n.key)
		}
		return nil, nil, false, "cache entry damaged: " + err.Error()
	case isNotExist(err):
		return nil, nil, false, ""
	default:
		return nil, nil, false, "cache entry unreadable: " + err.Error()
	}
}

// explain says why n's key differs from its previous build.
func (b *builder) explain(n *node) []string {
	prev := b.old.Stages[n.st.ID]
	if prev == nil {
		return []string{"no previous build"}
	}
	if prev.Key == n.key {
		return nil
	}
	rec, err := b.cache.readAction(prev.Key)
	if err != nil {
		return []string{"inputs changed (the previous build's cache record is gone, so kiln cannot say which)"}
	}
	reasons := diffParts(&rec.Parts, n.parts)
	if len(reasons) == 0 {
		reasons = []string{"cache key changed"}
	}
	return reasons
}

// inspect decides a stage's status without running or writing anything
// (dry-run and check).
func (b *builder) inspect(n *node) {
	outs, notes, ok, why := b.lookup(n)
	var reasons []string
	if !ok {
		reasons = b.explain(n)
		if why != "" {
			reasons = append(reasons, why)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		n.rep.Status = StatusWouldBuild
		if b.o.Check {
			n.rep.Status = StatusStale
		}
		n.rep.Reasons = reasons
		return
	}
	if prev := b.old.Stages[n.st.ID]; prev != nil && prev.Key != n.key {
		reasons = append(b.explain(n), "result for the new inputs found in the cache")
	}
	stale := false
	for _, pub := range publishedPaths(n.st, outs) {
		name, rel := pub.name, pub.rel
		ref, have := outs.get(name)
		if !have {
			reasons = append(reasons, fmt.Sprintf("cached result has no output %q", name))
			stale = true
			continue
		}
		if current, what := b.outputCurrent(n, rel, name, ref); !current {
			stale = true
			if b.o.Check {
				reasons = append(reasons, fmt.Sprintf("output %s %s", rel, what))
			} else {
				reasons = append(reasons, fmt.Sprintf("output %s %s; would be restored from the cache", rel, what))
			}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.outputs, n.notes, n.known = outs, notes, true
	n.rep.Status = StatusCached
	if b.o.Check && stale {
		n.rep.Status = StatusStale
	}
	n.rep.Reasons = reasons
	n.rep.Notes = notes
	n.rep.Outputs = b.outputReports(n, outs)
}

// fromCache completes n from the cache if its key is there and its blobs
// are sound. It returns false when the stage must run; a damaged entry is
// discarded first.
func (b *builder) fromCache(ctx context.Context, n *node) bool {
	outs, notes, ok, why := b.lookup(n)
	if !ok {
		if why != "" {
			n.mu.Lock()
			n.rep.Reasons = append(n.rep.Reasons, why)
			n.mu.Unlock()
		}
		return false
	}
	var reasons []string
	if b.o.Explain {
		if prev := b.old.Stages[n.st.ID]; prev != nil && prev.Key != n.key {
			reasons = append(b.explain(n), "result for the new inputs found in the cache")
		}
	}
	restored, err := b.publish(ctx, n, outs)
	if err != nil {
		if errors.Is(err, errCorrupt) {
			n.log(b).Warn("discarding damaged cache entry; rebuilding", "err", err)
			b.cache.removeAction(n.key)
			n.mu.Lock()
			n.rep.Reasons = append(n.rep.Reasons, "cache entry damaged ("+err.Error()+"); rebuilt")
			n.mu.Unlock()
			return false
		}
		if ctx.Err() != nil {
			n.fail(StatusInterrupted, errors.New("interrupted while publishing outputs"))
		} else {
			n.fail(StatusFailed, err)
		}
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.outputs, n.notes, n.known = outs, notes, true
	n.rep.Status = StatusCached
	n.rep.Notes = notes
	n.rep.Outputs = b.outputReports(n, outs)
	n.rep.Reasons = append(reasons, restored...)
	return true
}

// build runs n, stores its outputs in the cache and publishes them.
func (b *builder) build(ctx context.Context, n *node, held *chan struct{}) {
	if b.o.Explain {
		reasons := b.explain(n)
		n.mu.Lock()
		n.rep.Reasons = append(reasons, n.rep.Reasons...)
		n.mu.Unlock()
	}
	if b.fromRemote(ctx, n, held) {
		return
	}
	start := time.Now()
	outs, notes, err := b.execute(ctx, n, held)
	took := Duration(time.Since(start))
	if err != nil {
		if ctx.Err() != nil {
			// A stage failing while the build is cancelled most likely
			// failed because of it.
			n.fail(StatusInterrupted, err)
		} else {
			n.fail(StatusFailed, err)
		}
		return
	}
	// Publishing needs no executor slot: it is file copying.
	b.switchSlot(ctx, held, nil)
	if _, err := b.publish(ctx, n, outs); err != nil {
		if ctx.Err() != nil {
			n.fail(StatusInterrupted, fmt.Errorf("interrupted while publishing outputs: %w", ctx.Err()))
		} else {
			n.fail(StatusFailed, err)
		}
		return
	}
	n.mu.Lock()
	n.outputs, n.notes, n.known = outs, notes, true
	n.rep.Status = StatusBuilt
	n.rep.Notes = notes
	n.rep.Outputs = b.outputReports(n, outs)
	n.mu.Unlock()
	b.offerUpload(ctx, n, false, took)
}

// offerCached offers a diffusion stage found in the local cache for
// upload, in case the remote cache lacks it (it was built while the
// remote cache was off or unreachable, or the server lost it): its
// result is what the other machines would pay most to run again.
func (b *builder) offerCached(ctx context.Context, n *node) {
	if b.remote == nil || n.st.Resource != Accelerator || n.status() != StatusCached {
		return
	}
	b.offerUpload(ctx, n, true, 0)
}

// execute runs n's Run under n's executor limit and stores its outputs in
// the cache. held is the slot the caller holds; execute moves it to n's.
func (b *builder) execute(ctx context.Context, n *node, held *chan struct{}) (outputSet, map[string]string, error) {
	if r := n.adopted; r != nil {
		n.adopted = nil
		b.prog.stageStart(n.st.ID)
		r.attach(b.prog)
		n.log(b).Debug("taking over the run a superseded build left going")
		outs, notes, err := b.await(ctx, r)
		switch {
		case err == nil:
			n.mu.Lock()
			n.rep.Reasons = append(n.rep.Reasons, "finished the run a superseded build had started")
			n.mu.Unlock()
			return outs, notes, nil
		case errors.Is(err, errDetached), ctx.Err() != nil:
			return nil, nil, err
		}
		// The run failed or was stopped: run the stage here.
		n.log(b).Debug("the run a superseded build started did not finish; running again", "err", err)
	}
	if err := b.waitSlot(ctx, n, held, b.slotFor(n)); err != nil {
		return nil, nil, fmt.Errorf("interrupted while waiting to run: %w", err)
	}
	inputs, err := b.prepareInputs(ctx, n, held)
	if err != nil {
		return nil, nil, err
	}
	if err := b.markWrite(); err != nil {
		return nil, nil, err
	}
	b.prog.stageStart(n.st.ID)
	n.log(b).Debug("running stage")
	if b.o.Session != nil {
		return b.await(ctx, b.startRun(ctx, n, inputs, held))
	}
	return b.runAndStore(ctx, n, inputs, func(done, total int) { b.prog.stageStep(n.st.ID, done, total) })
}

// runAndStore runs n's Run and stores its outputs and action record in
// the cache.
func (b *builder) runAndStore(ctx context.Context, n *node, inputs map[string]map[string]string, progress func(done, total int)) (outputSet, map[string]string, error) {
	start := time.Now()
	outs, notes, err := b.runStage(ctx, n, inputs, progress)
	if err != nil {
		return nil, nil, err
	}
	n.mu.Lock()
	rec := &actionRecord{
		Format: actionFormat, Key: n.key, Stage: n.st.ID, Parts: *n.parts,
		Outputs: outs, Notes: notes, Created: time.Now().UTC(), Duration: Duration(time.Since(start)),
	}
	n.mu.Unlock()
	if err := b.cache.writeAction(rec); err != nil {
		return nil, nil, err
	}
	return outs, notes, nil
}

// prepareInputs verifies the blobs of n's dependencies before n reads
// them, rebuilding a dependency whose cache entry turns out damaged. It
// returns the blob path of each dependency output.
func (b *builder) prepareInputs(ctx context.Context, n *node, held *chan struct{}) (map[string]map[string]string, error) {
	inputs := make(map[string]map[string]string, len(n.deps))
	for i, d := range n.deps {
		d.mu.Lock()
		outs := d.outputs
		d.mu.Unlock()
		for _, o := range outs {
			err := b.verifyBlob(o.blobRef)
			if err == nil {
				continue
			}
			if !errors.Is(err, errCorrupt) {
				return nil, fmt.Errorf("read output %s of dependency %s: %w", o.Name, d.st.ID, err)
			}
			d.log(b).Warn("cache entry damaged; rebuilding it", "for", n.st.ID, "err", err)
			fixed, rerr := b.repair(ctx, d, held)
			if rerr != nil {
				return nil, fmt.Errorf("dependency %s: its cache entry was damaged and rebuilding it failed: %w", d.st.ID, rerr)
			}
			if !slicesEqual(namedBlobs(fixed), n.parts.Deps[i].Outputs) {
				return nil, fmt.Errorf("dependency %s was rebuilt because its cache entry was damaged, and produced different bytes than before (its implementation is not deterministic); run the build again", d.st.ID)
			}
			break // all of d's outputs were just rebuilt and stored
		}
		paths := make(map[string]string, len(outs))
		for _, o := range outs {
			paths[o.Name] = b.cache.blobPath(o.SHA256)
		}
		inputs[d.st.ID] = paths
	}
	return inputs, nil
}

func slicesEqual(a, b []namedBlob) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// repair rebuilds dependency d (already finished in this build, from the
// cache) because a blob of it is damaged, and returns its new outputs.
// The caller's slot is released meanwhile and taken again afterwards.
func (b *builder) repair(ctx context.Context, d *node, held *chan struct{}) (outputSet, error) {
	orig := *held
	b.switchSlot(ctx, held, nil)
	defer b.switchSlot(ctx, held, orig)

	d.repairMu.Lock()
	defer d.repairMu.Unlock()
	d.mu.Lock()
	outs := d.outputs
	d.mu.Unlock()
	sound := true
	for _, o := range outs {
		if b.verifyBlob(o.blobRef) != nil {
			sound = false
			break
		}
	}
	if sound {
		return outs, nil // another dependent repaired it meanwhile
	}
	b.cache.removeAction(d.key)
	var dHeld chan struct{}
	defer b.switchSlot(ctx, &dHeld, nil)
	outs, notes, err := b.execute(ctx, d, &dHeld)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.outputs, d.notes, d.known = outs, notes, true
	d.rep.Status = StatusBuilt
	d.rep.Notes = notes
	d.rep.Outputs = b.outputReports(d, outs)
	d.rep.Reasons = append(d.rep.Reasons, "cache entry damaged; rebuilt")
	d.mu.Unlock()
	return outs, nil
}

// outFile is an output being written by a stage: hashed as it is written.
type outFile struct {
	name   string
	path   string
	f      *os.File
	h      hash.Hash
	size   int64
	closed bool
	err    error
}

func (o *outFile) Write(p []byte) (int, error) {
	if o.closed {
		return 0, fmt.Errorf("write output %s: %w", o.name, os.ErrClosed)
	}
	n, err := o.f.Write(p)
	o.h.Write(p[:n])
	o.size += int64(n)
	if err != nil {
		o.err = err
	}
	return n, err
}

func (o *outFile) Close() error {
	if o.closed {
		return nil
	}
	o.closed = true
	if err := o.f.Close(); err != nil {
		o.err = err
		return fmt.Errorf("close output %s: %w", o.name, err)
	}
	return nil
}

// checkOutputName accepts plain file names and slash-separated paths of
// them.
func checkOutputName(name string) error {
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." || elem == ".." || strings.ContainsAny(elem, "\\\x00") || strings.HasPrefix(elem, ".") {
			return fmt.Errorf("output name %q is not allowed; use a plain file name such as \"albedo.png\" (or plain names joined by /)", name)
		}
	}
	return nil
}

// runStage calls n's Run with outputs going to a fresh temporary folder,
// recovering a panic as a failure, and moves the outputs into the blob
// store when Run succeeds.
func (b *builder) runStage(ctx context.Context, n *node, inputs map[string]map[string]string, progress func(done, total int)) (outputSet, map[string]string, error) {
	tmp, err := os.MkdirTemp(b.cache.tmpDir(), "run-")
	if err != nil {
		return nil, nil, fmt.Errorf("create temporary folder for outputs: %w", err)
	}
	defer os.RemoveAll(tmp)

	var mu sync.Mutex
	created := map[string]*outFile{}
	notes := map[string]string{}
	input := func(dep, name string) (string, error) {
		outs, ok := inputs[dep]
		if !ok {
			return "", fmt.Errorf("stage %s reads from %q, which is not one of its dependencies; add it to Deps", n.st.ID, dep)
		}
		p, ok := outs[name]
		if !ok {
			hint := ""
			for _, d := range n.deps {
				if d.st.ID == dep && d.status() == StatusRemote {
					// Its result came from an entry some other machine (or
					// server) wrote.
					hint = "; its result came from the remote cache, whose entry lacks that output: build with --remote-cache off, and remove the entry from the server"
				}
			}
			return "", fmt.Errorf("dependency %s has no output %q (it has: %s)%s", dep, name, joinNames(sortedKeys(outs)), hint)
		}
		return p, nil
	}
	create := func(name string) (io.WriteCloser, error) {
		if err := checkOutputName(name); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if _, dup := created[name]; dup {
			return nil, fmt.Errorf("output %q created twice", name)
		}
		p := filepath.Join(tmp, filepath.FromSlash(name))
		if strings.Contains(name, "/") {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, fmt.Errorf("create output %s: %w", name, err)
			}
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, fmt.Errorf("create output %s: %w", name, err)
		}
		o := &outFile{name: name, path: p, f: f, h: sha256.New()}
		created[name] = o
		return o, nil
	}
	note := func(k, v string) {
		if k != NoteStatus {
			mu.Lock()
			notes[k] = v
			mu.Unlock()
		}
		b.prog.stageNote(n.st.ID, k, v)
	}
	r := NewRun(b.o.Root, n.log(b), input, create, progress, note)

	runErr := safeRun(ctx, n, r, r.Log)
	mu.Lock()
	defer mu.Unlock()
	var unclosed []string
	for _, name := range sortedKeys(created) {
		o := created[name]
		if !o.closed {
			o.f.Close()
			unclosed = append(unclosed, name)
		}
	}
	if runErr != nil {
		return nil, nil, runErr
	}
	if len(unclosed) > 0 {
		return nil, nil, fmt.Errorf("stage left outputs %s open; a stage must close every output it creates (this is a bug in the %s stage)", joinNames(unclosed), n.st.Kind)
	}
	var missing []string
	for _, name := range publishNames(n.st) {
		if _, ok := created[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("stage did not create outputs %s that it publishes (it created: %s); this is a bug in the %s stage", joinNames(missing), joinNames(sortedKeys(created)), n.st.Kind)
	}
	outs := make(outputSet, 0, len(created))
	for _, name := range sortedKeys(created) {
		o := created[name]
		if o.err != nil {
			return nil, nil, fmt.Errorf("write output %s: %w", name, o.err)
		}
		ref := blobRef{SHA256: sumOf(o.h), Size: o.size}
		if err := b.storeBlob(o.path, ref); err != nil {
			return nil, nil, err
		}
		outs = append(outs, outputRef{Name: name, blobRef: ref})
	}
	if len(notes) == 0 {
		notes = nil
	}
	return outs, maps.Clone(notes), nil
}

// safeRun calls Run, turning a panic into an error (and logging its stack).
func safeRun(ctx context.Context, n *node, r *Run, log *slog.Logger) (err error) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("stage panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("stage panicked: %v (this is a bug in the %s stage; the stack trace is in the log)", v, n.st.Kind)
		}
	}()
	return n.st.Run(ctx, r)
}

// storeBlob moves a finished output file into the blob store under its
// hash. An existing blob is kept if it verifies, replaced if damaged.
func (b *builder) storeBlob(tmpPath string, ref blobRef) error {
	dst := b.cache.blobPath(ref.SHA256)
	if _, err := os.Lstat(dst); err == nil {
		if b.verifyBlob(ref) == nil {
			os.Remove(tmpPath)
			return nil
		}
	}
	if err := safepath.MkdirAll(b.o.CacheDir, filepath.Dir(dst), "store an output in the cache"); err != nil {
		return err
	}
	if err := os.Chmod(tmpPath, 0o444); err != nil {
		return fmt.Errorf("store output in cache: %w", err)
	}
	now := time.Now()
	if err := os.Rename(tmpPath, dst); err != nil {
		return fmt.Errorf("store output in cache %s: %w", dst, err)
	}
	if _, cur, err := statFile(dst, false); err == nil {
		b.mu.Lock()
		b.blobs[ref.SHA256] = trustAt(cur, digest{}, now)
		b.mu.Unlock()
	}
	return nil
}

// verifyBlob checks that a blob exists and has its content hash, by stat
// against a trusted record or else by hashing it. A damaged blob is
// removed and reported as errCorrupt.
func (b *builder) verifyBlob(ref blobRef) error {
	p := b.cache.blobPath(ref.SHA256)
	now := time.Now()
	fi, cur, err := statFile(p, false)
	if err != nil {
		if isNotExist(err) {
			return &corruptError{p, "missing"}
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		os.RemoveAll(p)
		return &corruptError{p, "not a regular file"}
	}
	if b.blobTrusted(ref.SHA256, cur) {
		return nil
	}
	b.hashed.Add(1)
	sha, size, err := hashFile(p)
	if err != nil {
		return err
	}
	if sha != ref.SHA256 || size != ref.Size {
		if !b.readOnly {
			os.Remove(p)
		}
		return &corruptError{p, "content does not match its hash"}
	}
	b.mu.Lock()
	b.blobs[ref.SHA256] = trustAt(cur, digest{}, now)
	b.mu.Unlock()
	return nil
}

// blobTrusted reports whether a verified-stat record vouches for a blob.
func (b *builder) blobTrusted(sha digest, cur statRecord) bool {
	b.mu.Lock()
	rec, ok := b.blobs[sha]
	b.mu.Unlock()
	if !ok {
		rec, ok = b.old.Blobs[sha]
	}
	return ok && rec.unchanged(cur)
}

// outputReports lists n's outputs for the report.
func (b *builder) outputReports(n *node, outs outputSet) []OutputReport {
	list := make([]OutputReport, len(outs))
	for i, o := range outs {
		list[i] = OutputReport{Name: o.Name, SHA256: o.SHA256.String(), Size: o.Size}
		if p, ok := n.st.Publish[o.Name]; ok {
			list[i].Path = cleanRel(p)
		} else if n.st.PublishDir != "" {
			list[i].Path = path.Join(n.st.PublishDir, o.Name)
		}
	}
	return list
}
