package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// A remote cache is a cache that several machines share: a stage that is
// missing from the local cache is looked up there before it runs, and the
// results of stages that run are sent there (in the background) for the
// other machines. kiln speaks the Bazel HTTP remote-cache protocol (see
// pipeline/remote), so the servers that Bazel users run serve it as they
// are. The remote cache is not trusted:
//
//   - every blob is checked against its SHA-256 and size before it is
//     stored in the local cache, and again while it is published;
//   - action-cache entries are decoded strictly (bounded size, one known
//     format, every field checked, output names validated like a stage's
//     own) and must name the stage's own key, kind and version;
//   - anything wrong (a timeout, a 5xx, a reset, a truncated body, wrong
//     bytes, a bad entry) makes the stage run locally: a fault degrades a
//     build, it never fails it. The report counts the faults, and one
//     warning line says what happened.
//
// An entry cannot choose where an output goes: outputs are published by
// the same code, at the same paths, as the stage's own results, through
// the output journal, so kiln's rules about what it may write hold.

// RemoteKind is one of the two halves of a remote cache.
type RemoteKind string

const (
	// RemoteAC is the action cache: a stage key's result (remoteEntry),
	// stored under the key's remote address (remoteAddress).
	RemoteAC RemoteKind = "ac"
	// RemoteCAS is the content-addressed store: output files, stored
	// under the hex SHA-256 of their content.
	RemoteCAS RemoteKind = "cas"
)

// RemoteCache is the transport of a remote cache: pipeline/remote
// implements it over HTTP. Implementations must be safe for concurrent
// use; they need not check what they transfer (the pipeline does).
type RemoteCache interface {
	// Get copies entry kind/hash into w and returns how many bytes it
	// copied. A missing entry gives an error wrapping ErrRemoteNotFound,
	// one larger than limit bytes an error wrapping ErrRemoteTooLarge;
	// after an error, w may hold part of the entry.
	Get(ctx context.Context, kind RemoteKind, hash string, limit int64, w io.Writer) (int64, error)
	// Has reports whether the remote cache holds entry kind/hash.
	Has(ctx context.Context, kind RemoteKind, hash string) (bool, error)
	// Put stores the size bytes that open returns as entry kind/hash.
	// open may be called more than once (a retry); the body it returns
	// fails rather than send bytes other than the entry's. An upload the
	// server refuses for good (no permission, a validating server)
	// gives an error wrapping ErrRemoteRefused.
	Put(ctx context.Context, kind RemoteKind, hash string, size int64, open func() (io.ReadCloser, error)) error
	// String names the remote cache in messages, without credentials.
	String() string
}

// Errors a RemoteCache wraps.
var (
	// ErrRemoteNotFound: the remote cache does not hold the entry.
	ErrRemoteNotFound = errors.New("not in the remote cache")
	// ErrRemoteTooLarge: the entry is larger than the caller accepts.
	ErrRemoteTooLarge = errors.New("remote cache entry is larger than expected")
	// ErrRemoteRefused: the server does not accept uploads from this
	// client; trying again in this build is pointless.
	ErrRemoteRefused = errors.New("the remote cache refused the upload")
)

// Limits on what an action-cache entry from a remote cache may hold. They
// are far above what any stage writes, and bound what a hostile server
// can make kiln read, allocate or store.
const (
	// remoteEntryFormat names the entry format, and is part of the
	// remote address: a kiln writing another format uses other addresses.
	remoteEntryFormat = "kiln-ac/1"
	maxEntryBytes     = 1 << 20
	maxEntryOutputs   = 4096
	maxOutputName     = 1024
	maxEntryNotes     = 64
	maxNoteKey        = 128
	maxNoteValue      = 4096
	maxEntryText      = 1024
	// maxRemoteBlob and maxRemoteTotal bound one output and one entry's
	// outputs (a 16384² RGBA PNG is about 1 GiB uncompressed).
	maxRemoteBlob  = 2 << 30
	maxRemoteTotal = 8 << 30
	// remoteFailLimit faults in a row turn the remote cache off for the
	// rest of the build, so an unreachable server costs a few timeouts,
	// not one per stage.
	remoteFailLimit = 3
	// defaultRemoteUploads is how many uploads run at once by default;
	// remoteQueue how many more may wait (each holds a small entry, not
	// the files, which are streamed from the local cache).
	defaultRemoteUploads = 4
	remoteQueue          = 64
	// defaultRemoteFetches bounds the stages downloading at once, and
	// remoteStageFetches the downloads of one stage's outputs at once.
	defaultRemoteFetches = 8
	remoteStageFetches   = 4
	// defaultRemoteDrain is how long a build waits at its end for uploads
	// still going before it abandons them.
	defaultRemoteDrain = 2 * time.Minute
)

// remoteAddress is where a stage key's entry lives in the action cache:
// the SHA-256 of the entry format's name and the key, so kilns of another
// entry format (and any other client of the server) use other addresses.
func remoteAddress(key digest) string {
	h := sha256.New()
	h.Write([]byte(remoteEntryFormat))
	h.Write([]byte{0})
	h.Write(key[:])
	return sumOf(h).String()
}

// remoteEntry is an action-cache entry: a stage's result, as JSON.
type remoteEntry struct {
	// Format is remoteEntryFormat.
	Format string `json:"format"`
	// Key is the stage key (hex SHA-256) the entry is the result of.
	Key string `json:"key"`
	// Stage is the stage that produced it (informational).
	Stage string `json:"stage"`
	// Kind and Version are the stage's (also part of the key).
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Outputs are the stage's output files, sorted by name: each is
	// the CAS blob cas/<sha256>.
	Outputs []remoteOutput `json:"outputs"`
	// Notes are the facts the stage recorded (Run.Note).
	Notes map[string]string `json:"notes,omitempty"`
	// Created is when the stage ran; Duration how long it took.
	Created  time.Time `json:"created"`
	Duration Duration  `json:"duration_ms"`
}

// remoteOutput is one output file of an entry.
type remoteOutput struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// encodeEntry is the action-cache entry for a result of stage st.
func encodeEntry(st *Stage, key digest, outs outputSet, notes map[string]string, created time.Time, took Duration) ([]byte, error) {
	e := remoteEntry{
		Format: remoteEntryFormat, Key: key.String(), Stage: st.ID, Kind: st.Kind, Version: st.Version,
		Outputs: make([]remoteOutput, len(outs)), Notes: notes, Created: created.UTC(), Duration: took,
	}
	for i, o := range outs {
		e.Outputs[i] = remoteOutput{Name: o.Name, SHA256: o.SHA256.String(), Size: o.Size}
	}
	data, err := json.Marshal(&e)
	if err != nil {
		return nil, fmt.Errorf("encode the remote cache entry of stage %s: %w", st.ID, err)
	}
	return data, nil
}

// decodeEntry decodes and checks an entry from the remote cache for stage
// st with key: it must be exactly what a kiln of this entry format writes
// for that stage, and every output name must be one the stage could have
// written and published where the stage's own outputs go.
func decodeEntry(data []byte, st *Stage, key digest) (outputSet, map[string]string, Duration, error) {
	bad := func(format string, args ...any) (outputSet, map[string]string, Duration, error) {
		return nil, nil, 0, fmt.Errorf("bad action-cache entry: "+format, args...)
	}
	if len(data) > maxEntryBytes {
		return bad("%d bytes, more than %d", len(data), maxEntryBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e remoteEntry
	if err := dec.Decode(&e); err != nil {
		return bad("not a kiln entry (%v)", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the entry")
	}
	switch {
	case e.Format != remoteEntryFormat:
		return bad("format %q, want %q", clip(e.Format), remoteEntryFormat)
	case e.Key != key.String():
		return bad("it is for key %q, not %s", clip(e.Key), key)
	case e.Kind != st.Kind || e.Version != st.Version:
		return bad("it is for kind %q version %q, not %q version %q", clip(e.Kind), clip(e.Version), st.Kind, st.Version)
	case !plainText(e.Stage, maxEntryText, false):
		return bad("stage name is not plain text of at most %d bytes", maxEntryText)
	case e.Duration < 0:
		return bad("negative duration")
	case len(e.Outputs) > maxEntryOutputs:
		return bad("%d outputs, more than %d", len(e.Outputs), maxEntryOutputs)
	case len(e.Notes) > maxEntryNotes:
		return bad("%d notes, more than %d", len(e.Notes), maxEntryNotes)
	}
	for k, v := range e.Notes {
		if k == "" || !plainText(k, maxNoteKey, false) || !plainText(v, maxNoteValue, true) {
			return bad("note %q is not plain text (keys up to %d bytes, values up to %d)", clip(k), maxNoteKey, maxNoteValue)
		}
	}
	outs := make(outputSet, len(e.Outputs))
	var total int64
	published := map[string]bool{}
	for _, name := range publishNames(st) {
		published[cleanRel(st.Publish[name])] = true
	}
	for i, o := range e.Outputs {
		if len(o.Name) > maxOutputName || !utf8.ValidString(o.Name) {
			return bad("output name %q is longer than %d bytes or not UTF-8", clip(o.Name), maxOutputName)
		}
		if err := checkOutputName(o.Name); err != nil {
			return bad("%v", err)
		}
		if i > 0 && e.Outputs[i-1].Name >= o.Name {
			return bad("outputs are not sorted by name, or output %q is listed twice", clip(o.Name))
		}
		sha, ok := parseHexDigest(o.SHA256)
		if !ok {
			return bad("output %q: sha256 %q is not 64 lower-case hex digits", o.Name, clip(o.SHA256))
		}
		if o.Size < 0 || o.Size > maxRemoteBlob {
			return bad("output %q: size %d is not between 0 and %d", o.Name, o.Size, int64(maxRemoteBlob))
		}
		if total += o.Size; total > maxRemoteTotal {
			return bad("outputs hold more than %d bytes", int64(maxRemoteTotal))
		}
		if _, listed := st.Publish[o.Name]; !listed && st.PublishDir != "" {
			// Where the stage's own output of that name would go: inside
			// the stage's folder, and not onto one of its named outputs.
			rel := path.Join(st.PublishDir, o.Name)
			if err := safepath.Validate(rel); err != nil || published[rel] {
				return bad("output %q cannot be published at %s", o.Name, rel)
			}
			published[rel] = true
		}
		outs[i] = outputRef{Name: o.Name, blobRef: blobRef{SHA256: sha, Size: o.Size}}
	}
	for _, name := range publishNames(st) {
		if _, ok := outs.get(name); !ok {
			return bad("it lacks output %q, which the stage publishes", name)
		}
	}
	for rel := range published {
		// A file where another output needs a folder could not be
		// published.
		for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if published[dir] {
				return bad("output paths %s and %s: one is a file the other needs as a folder", clip(dir), clip(rel))
			}
		}
	}
	notes := e.Notes
	if len(notes) == 0 {
		notes = nil
	}
	return outs, notes, e.Duration, nil
}

// parseHexDigest decodes exactly 64 lower-case hex digits.
func parseHexDigest(s string) (digest, bool) {
	var d digest
	if len(s) != 2*len(d) || strings.ToLower(s) != s {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, false
	}
	return d, true
}

// plainText reports whether s is valid UTF-8 of at most max bytes
// without control characters (tab and newline allowed when lines), so a
// server cannot put terminal escapes into what kiln prints.
func plainText(s string, max int, lines bool) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && !(lines && (r == '\t' || r == '\n'))) || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// clip shortens an untrusted string for a message.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// RemoteReport is what a build did with the remote cache.
type RemoteReport struct {
	// URL names the remote cache (without credentials).
	URL string `json:"url"`
	// Upload is whether the build sent results to it.
	Upload bool `json:"upload"`
	// Hits counts stages it served (status remote); Misses stages it
	// did not have, which then ran (or failed) here.
	Hits   int `json:"hits"`
	Misses int `json:"misses"`
	// Uploads counts stage results sent to it (with their blobs).
	Uploads int `json:"uploads"`
	// Errors counts faults: failed requests, wrong bytes, bad entries.
	// Each made a stage run locally or an upload fail; none failed the
	// build.
	Errors int `json:"errors"`
	// Abandoned counts uploads given up when the build ended (the remote
	// cache was turned off, refused uploads, or did not finish in time).
	Abandoned int `json:"abandoned,omitempty"`
	// Downloaded and Uploaded count the bytes of blobs transferred.
	Downloaded int64 `json:"downloaded_bytes"`
	Uploaded   int64 `json:"uploaded_bytes"`
	// Warning, when anything went wrong, says what in one line: the
	// first fault and what became of the build's use of the cache.
	Warning string `json:"warning,omitempty"`
}

// summary is the remote cache's part of Report.Summary.
func (r *RemoteReport) summary() string {
	s := fmt.Sprintf("%d hits, %d misses, %d uploads", r.Hits, r.Misses, r.Uploads)
	if r.Errors > 0 {
		s += fmt.Sprintf(", %d errors", r.Errors)
	}
	if r.Abandoned > 0 {
		s += fmt.Sprintf(", %d uploads abandoned", r.Abandoned)
	}
	return s
}

// remoteRun is a build's use of the remote cache.
type remoteRun struct {
	rc     RemoteCache
	upload bool
	log    *slog.Logger
	fetch  chan struct{} // download slots
	// blobPath is where the local cache keeps a blob.
	blobPath func(digest) string

	queue     chan *uploadJob
	uploaders sync.WaitGroup
	// ctx is the uploads' context, cancelled when they are abandoned.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	rep       RemoteReport
	first     string // the first fault, for the warning
	inARow    int    // faults since the last success
	off       bool   // too many faults in a row: not used any more
	refused   string // why uploads stopped, when the server refused one
	fallbacks int    // stages that ran here after a fault
	queued    map[digest]bool
	sent      map[digest]bool // blobs the remote cache has (this build knows)
}

// uploadJob is a stage result to send.
type uploadJob struct {
	stage string
	key   digest
	entry []byte
	outs  outputSet
	// check asks first whether the remote cache already has the entry
	// (a result from the local cache, which may have been sent before).
	check bool
}

// newRemoteRun starts a build's use of rc; uploads run on ctx.
func newRemoteRun(ctx context.Context, o Options, c cache) *remoteRun {
	r := &remoteRun{
		rc: o.Remote, upload: o.RemoteUpload, log: o.Log, blobPath: c.blobPath,
		fetch:  make(chan struct{}, defaultRemoteFetches),
		queued: map[digest]bool{}, sent: map[digest]bool{},
	}
	r.rep.URL, r.rep.Upload = o.Remote.String(), o.RemoteUpload
	r.ctx, r.cancel = context.WithCancel(ctx)
	if r.upload {
		n := o.RemoteUploads
		if n <= 0 {
			n = defaultRemoteUploads
		}
		r.queue = make(chan *uploadJob, remoteQueue)
		for range n {
			r.uploaders.Add(1)
			go r.uploader()
		}
	}
	return r
}

// available reports whether the remote cache is still in use.
func (r *remoteRun) available() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.off
}

// fault records a failed use of the remote cache, turning it off after
// remoteFailLimit faults in a row.
func (r *remoteRun) fault(what string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Errors++
	r.inARow++
	msg := what + ": " + err.Error()
	if r.first == "" {
		r.first = msg
	}
	if r.inARow >= remoteFailLimit && !r.off {
		r.off = true
		r.log.Debug("remote cache turned off for the rest of the build", "url", r.rep.URL, "faults in a row", r.inARow)
	}
	r.log.Debug("remote cache fault", "url", r.rep.URL, "err", msg)
}

// ok records a successful request.
func (r *remoteRun) ok() {
	r.mu.Lock()
	r.inARow = 0
	r.mu.Unlock()
}

func (r *remoteRun) count(f func(*RemoteReport)) {
	r.mu.Lock()
	f(&r.rep)
	r.mu.Unlock()
}

// report returns the build's remote report, with its warning line.
func (r *remoteRun) report() *RemoteReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := r.rep
	var parts []string
	if r.first != "" {
		parts = append(parts, r.first)
		if r.fallbacks > 0 {
			parts = append(parts, fmt.Sprintf("%d stages ran locally instead", r.fallbacks))
		}
		if rep.Errors > 1 {
			parts = append(parts, fmt.Sprintf("%d faults in all", rep.Errors))
		}
		if r.off {
			parts = append(parts, fmt.Sprintf("turned off for the rest of the build after %d faults in a row", remoteFailLimit))
		}
	}
	if r.refused != "" && r.refused != r.first {
		parts = append(parts, r.refused)
	}
	if rep.Abandoned > 0 {
		parts = append(parts, fmt.Sprintf("%d uploads abandoned (those results stay in the local cache; the next build that runs them uploads them)", rep.Abandoned))
	}
	if len(parts) > 0 {
		rep.Warning = fmt.Sprintf("remote cache %s: %s", rep.URL, strings.Join(parts, "; "))
	}
	return &rep
}

// fromRemote completes n from the remote cache when it has n's key: it
// downloads and checks the entry and its blobs, stores them in the local
// cache and publishes the outputs as a cached result is published. It
// returns false when the stage must run here (a miss or a fault). held
// is the caller's executor slot, released while it transfers.
func (b *builder) fromRemote(ctx context.Context, n *node, held *chan struct{}) bool {
	r := b.remote
	if r == nil || n.adopted != nil || !r.available() {
		return false
	}
	b.switchSlot(ctx, held, nil) // transfers need no executor slot
	select {
	case r.fetch <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-r.fetch }()
	n.mu.Lock()
	key, parts := n.key, n.parts
	n.mu.Unlock()

	var buf bytes.Buffer
	addr := remoteAddress(key)
	_, err := r.rc.Get(ctx, RemoteAC, addr, maxEntryBytes, &buf)
	switch {
	case ctx.Err() != nil:
		return false
	case errors.Is(err, ErrRemoteNotFound):
		r.ok()
		r.count(func(rep *RemoteReport) { rep.Misses++ })
		return false
	case err != nil:
		b.remoteFault(n, "look up stage "+n.st.ID, err)
		return false
	}
	outs, notes, took, err := decodeEntry(buf.Bytes(), n.st, key)
	if err != nil {
		b.remoteFault(n, fmt.Sprintf("stage %s (ac/%s)", n.st.ID, addr), err)
		return false
	}
	if err := b.markWrite(); err != nil {
		n.fail(StatusFailed, err)
		return true
	}
	var got int64
	for i, f := range b.fetchBlobs(ctx, outs) {
		o, nb, err := outs[i], f.n, f.err
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, ErrRemoteNotFound) {
			// The server evicted the blob but kept the entry, as an LRU
			// cache may: a miss, not a fault.
			r.ok()
			r.count(func(rep *RemoteReport) { rep.Misses++ })
			return false
		}
		if err != nil {
			b.remoteFault(n, fmt.Sprintf("output %s of stage %s (cas/%s)", o.Name, n.st.ID, o.SHA256), err)
			return false
		}
		got += nb
	}
	r.ok()
	rec := &actionRecord{Format: actionFormat, Key: key, Stage: n.st.ID, Parts: *parts,
		Outputs: outs, Notes: notes, Created: time.Now().UTC(), Duration: took}
	if err := b.cache.writeAction(rec); err != nil {
		n.fail(StatusFailed, err)
		return true
	}
	if _, err := b.publish(ctx, n, outs); err != nil {
		if ctx.Err() != nil {
			n.fail(StatusInterrupted, errors.New("interrupted while publishing outputs"))
			return true
		}
		// Whatever the entry did to the publishing (a damaged blob, a
		// file in the way of an output the entry made up), the stage's
		// own result decides: it runs here, and fails only if its own
		// outputs cannot be published either.
		b.cache.removeAction(key)
		b.remoteFault(n, "publish the result of stage "+n.st.ID, err)
		return false
	}
	r.count(func(rep *RemoteReport) { rep.Hits++; rep.Downloaded += got })
	n.mu.Lock()
	defer n.mu.Unlock()
	n.outputs, n.notes, n.known = outs, notes, true
	n.rep.Status = StatusRemote
	n.rep.Notes = notes
	n.rep.Outputs = b.outputReports(n, outs)
	if b.o.Explain {
		n.rep.Reasons = append(n.rep.Reasons, fmt.Sprintf("not in the local cache; downloaded from the remote cache (%d bytes)", got))
	}
	return true
}

// remoteFault records a fault that makes n run locally.
func (b *builder) remoteFault(n *node, what string, err error) {
	b.remote.fault(what, err)
	b.remote.mu.Lock()
	b.remote.fallbacks++
	b.remote.mu.Unlock()
	if b.o.Explain {
		n.mu.Lock()
		n.rep.Reasons = append(n.rep.Reasons, "remote cache: "+err.Error()+"; built here instead")
		n.mu.Unlock()
	}
}

// fetched is the outcome of one fetchBlob.
type fetched struct {
	n   int64
	err error
}

// fetchBlobs fetches the blobs of outs at once, remoteStageFetches at a
// time: a stage's outputs (a texture's base colour, normal and ORM maps)
// are independent downloads, and a chain of stages waits for each one.
// The results are in outs' order.
func (b *builder) fetchBlobs(ctx context.Context, outs outputSet) []fetched {
	res := make([]fetched, len(outs))
	if len(outs) == 1 {
		res[0].n, res[0].err = b.fetchBlob(ctx, outs[0].blobRef)
		return res
	}
	slots := make(chan struct{}, remoteStageFetches)
	var wg sync.WaitGroup
	for i, o := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			res[i].n, res[i].err = b.fetchBlob(ctx, o.blobRef)
		}()
	}
	wg.Wait()
	return res
}

// fetchBlob makes sure blob ref is in the local cache, downloading it if
// it is not. The download goes to the cache's temporary folder and is
// stored only if its size and SHA-256 are ref's. It returns the bytes
// downloaded.
func (b *builder) fetchBlob(ctx context.Context, ref blobRef) (int64, error) {
	if b.verifyBlob(ref) == nil {
		return 0, nil
	}
	f, err := os.CreateTemp(b.cache.tmpDir(), "remote-")
	if err != nil {
		return 0, fmt.Errorf("create a temporary file for a download: %w", err)
	}
	tmp := f.Name()
	stored := false
	defer func() {
		if !stored {
			os.Remove(tmp)
		}
	}()
	h := sha256.New()
	w := &cappedWriter{w: io.MultiWriter(f, h), left: ref.Size}
	var n int64
	if ref.Size > 0 || ref.SHA256 != emptySHA256 {
		// The empty blob is known without asking (servers may not keep
		// it).
		n, err = b.remote.rc.Get(ctx, RemoteCAS, ref.SHA256.String(), ref.Size, w)
	}
	cerr := f.Close()
	switch {
	case err != nil:
		return n, err
	case cerr != nil:
		return n, fmt.Errorf("write download %s: %w", tmp, cerr)
	case w.over || n != ref.Size:
		return n, fmt.Errorf("got %d bytes, the entry says %d", n+w.extra, ref.Size)
	case sumOf(h) != ref.SHA256:
		return n, fmt.Errorf("the bytes have SHA-256 %s, not the one they are stored under", sumOf(h))
	}
	if err := b.storeBlob(tmp, ref); err != nil {
		return n, err
	}
	stored = true
	return n, nil
}

// emptySHA256 is the SHA-256 of no bytes.
var emptySHA256 = digest(sha256.Sum256(nil))

// cappedWriter passes on at most left bytes and notes any more.
type cappedWriter struct {
	w     io.Writer
	left  int64
	over  bool
	extra int64
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > c.left {
		c.over = true
		c.extra += int64(len(p)) - c.left
		p = p[:c.left]
		if _, err := c.w.Write(p); err != nil {
			return 0, err
		}
		c.left = 0
		return 0, errors.New("more bytes than the entry says")
	}
	n, err := c.w.Write(p)
	c.left -= int64(n)
	return n, err
}

// offerUpload queues the result of n, which this build ran (or found in
// the local cache, when check), for the remote cache. It waits while the
// queue is full, so uploads that lag hold the build back rather than
// take memory.
func (b *builder) offerUpload(ctx context.Context, n *node, check bool, took Duration) {
	r := b.remote
	if r == nil || !r.upload {
		return
	}
	n.mu.Lock()
	key, outs, notes := n.key, n.outputs, n.notes
	n.mu.Unlock()
	r.mu.Lock()
	skip := r.queued[key] || r.off || r.refused != ""
	r.queued[key] = true
	r.mu.Unlock()
	if skip {
		return
	}
	entry, err := encodeEntry(n.st, key, outs, notes, time.Now(), took)
	if err != nil {
		n.log(b).Warn("not uploading", "err", err)
		return
	}
	job := &uploadJob{stage: n.st.ID, key: key, entry: entry, outs: outs, check: check}
	select {
	case r.queue <- job:
	case <-ctx.Done():
		r.count(func(rep *RemoteReport) { rep.Abandoned++ })
	}
}

// uploader sends queued results until the queue is closed.
func (r *remoteRun) uploader() {
	defer r.uploaders.Done()
	for job := range r.queue {
		r.mu.Lock()
		skip := r.off || r.refused != ""
		r.mu.Unlock()
		if skip || r.ctx.Err() != nil {
			r.count(func(rep *RemoteReport) { rep.Abandoned++ })
			continue
		}
		sent, err := r.send(job)
		switch {
		case err == nil:
			r.ok()
			if job.entry != nil {
				r.count(func(rep *RemoteReport) { rep.Uploads++; rep.Uploaded += sent })
			}
		case r.ctx.Err() != nil:
			r.count(func(rep *RemoteReport) { rep.Abandoned++ })
		case errors.Is(err, ErrRemoteRefused):
			r.fault("upload "+job.stage, err)
			r.mu.Lock()
			if r.refused == "" {
				r.refused = "uploads stopped: upload " + job.stage + ": " + err.Error()
			}
			r.mu.Unlock()
		default:
			r.fault("upload "+job.stage, err)
		}
	}
}

// send uploads one result: its blobs the remote cache lacks, then the
// entry, so an entry never names a blob that was not sent. With
// job.check, nothing is sent when the entry is there already (the job's
// entry is then cleared, so it is not counted).
func (r *remoteRun) send(job *uploadJob) (int64, error) {
	ctx := r.ctx
	addr := remoteAddress(job.key)
	if job.check {
		has, err := r.rc.Has(ctx, RemoteAC, addr)
		if err != nil {
			return 0, err
		}
		if has {
			job.entry = nil
			return 0, nil
		}
	}
	var sent int64
	for _, o := range job.outs {
		r.mu.Lock()
		known := r.sent[o.SHA256]
		r.mu.Unlock()
		if known {
			continue
		}
		if o.Size > 0 || o.SHA256 != emptySHA256 {
			has, err := r.rc.Has(ctx, RemoteCAS, o.SHA256.String())
			if err != nil {
				return sent, err
			}
			if !has {
				ref := o.blobRef
				open := func() (io.ReadCloser, error) { return r.openBlob(ref) }
				if err := r.rc.Put(ctx, RemoteCAS, o.SHA256.String(), o.Size, open); err != nil {
					return sent, err
				}
				sent += o.Size
			}
		}
		r.mu.Lock()
		r.sent[o.SHA256] = true
		r.mu.Unlock()
	}
	entry := job.entry
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(entry)), nil }
	return sent, r.rc.Put(ctx, RemoteAC, addr, int64(len(entry)), open)
}

// openBlob opens a blob of the local cache for upload.
func (r *remoteRun) openBlob(ref blobRef) (io.ReadCloser, error) {
	f, err := safepath.OpenFile(r.blobPath(ref.SHA256), os.O_RDONLY, 0, "upload it to the remote cache")
	if err != nil {
		return nil, err
	}
	return &checkedReader{f: f, r: io.LimitReader(f, ref.Size), h: sha256.New(), want: ref}, nil
}

// checkedReader reads a blob for upload, failing instead of ending when
// the bytes are not the blob's: the request is then cut short, so the
// server never receives a whole body of wrong bytes.
type checkedReader struct {
	f    *os.File
	r    io.Reader
	h    hash.Hash
	n    int64
	want blobRef
}

func (c *checkedReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if err == io.EOF {
		var got digest
		c.h.Sum(got[:0])
		if c.n != c.want.Size || got != c.want.SHA256 {
			return n, fmt.Errorf("blob %s in the local cache is damaged (it does not match its hash); not uploading it", c.want.SHA256)
		}
	}
	return n, err
}

func (c *checkedReader) Close() error { return c.f.Close() }

// finish waits for the uploads still going, at most until after fires
// or ctx is done, then abandons the rest.
func (r *remoteRun) finish(ctx context.Context, after <-chan time.Time) {
	if r.queue == nil {
		r.cancel()
		return
	}
	close(r.queue)
	done := make(chan struct{})
	go func() {
		r.uploaders.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	case <-after:
	}
	r.cancel()
	<-done
}
