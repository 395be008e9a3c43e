package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memRemote is a RemoteCache in memory, with hooks for faults.
type memRemote struct {
	mu      sync.Mutex
	entries map[string][]byte // "ac/<hash>", "cas/<hash>"
	// fault, when set, may fail a request (before it is served).
	fault func(method string, kind RemoteKind, hash string) error
	// putGate, when set, is waited on by every Put (after it is
	// counted in puts).
	putGate chan struct{}
	puts    chan string
	gets    int
	// inFlight and maxInFlight count concurrent Puts.
	inFlight, maxInFlight int
}

func newMemRemote() *memRemote {
	return &memRemote{entries: map[string][]byte{}, puts: make(chan string, 1000)}
}

func (m *memRemote) String() string { return "mem://test" }

func (m *memRemote) check(method string, kind RemoteKind, hash string) error {
	m.mu.Lock()
	f := m.fault
	m.mu.Unlock()
	if f != nil {
		return f(method, kind, hash)
	}
	return nil
}

func (m *memRemote) Get(ctx context.Context, kind RemoteKind, hash string, limit int64, w io.Writer) (int64, error) {
	if err := m.check("GET", kind, hash); err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.gets++
	data, ok := m.entries[string(kind)+"/"+hash]
	m.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("GET %s/%s: %w", kind, hash, ErrRemoteNotFound)
	}
	if int64(len(data)) > limit {
		return 0, ErrRemoteTooLarge
	}
	n, err := w.Write(data)
	return int64(n), err
}

func (m *memRemote) Has(ctx context.Context, kind RemoteKind, hash string) (bool, error) {
	if err := m.check("HEAD", kind, hash); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.entries[string(kind)+"/"+hash]
	return ok, nil
}

func (m *memRemote) Put(ctx context.Context, kind RemoteKind, hash string, size int64, open func() (io.ReadCloser, error)) error {
	m.mu.Lock()
	m.inFlight++
	m.maxInFlight = max(m.maxInFlight, m.inFlight)
	gate := m.putGate
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.inFlight--
		m.mu.Unlock()
	}()
	m.puts <- string(kind) + "/" + hash
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := m.check("PUT", kind, hash); err != nil {
		return err
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if int64(len(data)) != size {
		return fmt.Errorf("PUT %s/%s: %d bytes, said %d", kind, hash, len(data), size)
	}
	m.mu.Lock()
	m.entries[string(kind)+"/"+hash] = data
	m.mu.Unlock()
	return nil
}

func (m *memRemote) keys(prefix string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// remoteStages are a small graph: two sources, a diffusion-like stage
// reading one, and a stage reading all.
func remoteStages(p *project) []Stage {
	gen := p.catStage("g:gen", "+gen", "g.png", "a:src")
	gen.Resource = Accelerator
	gen.Params = map[string]any{"suffix": "+gen", "width": 64, "height": 64, "steps": 4}
	return []Stage{
		p.constStage("a:src", "alpha", "a.txt"),
		p.constStage("b:src", "beta", "b.txt"),
		gen,
		p.catStage("all:cat", "!", "all.txt", "a:src", "b:src", "g:gen"),
	}
}

func remoteOpts(p *project, rc RemoteCache, upload bool) Options {
	o := p.opts()
	o.Remote, o.RemoteUpload = rc, upload
	return o
}

// TestRemoteSharesWork: a project built with a read-write remote cache
// is built by a second clone (its own local cache) from the remote
// cache alone, byte for byte, with status remote; the third build of
// the clone is all local.
func TestRemoteSharesWork(t *testing.T) {
	rc := newMemRemote()
	a := newProject(t)
	rep := a.build(remoteStages(a), remoteOpts(a, rc, true))
	if got := statuses(rep); got != "a:src=built b:src=built g:gen=built all:cat=built" {
		t.Fatalf("clone A: %s", got)
	}
	if r := rep.Remote; r == nil || r.Misses != 4 || r.Uploads != 4 || r.Hits != 0 || r.Errors != 0 || r.Warning != "" {
		t.Fatalf("clone A remote report: %+v", rep.Remote)
	}
	if n := len(rc.keys("ac/")); n != 4 {
		t.Fatalf("remote has %d entries, want 4", n)
	}

	b := newProject(t)
	rep = b.build(remoteStages(b), remoteOpts(b, rc, false))
	if got := statuses(rep); got != "a:src=remote b:src=remote g:gen=remote all:cat=remote" {
		t.Fatalf("clone B: %s", got)
	}
	if runs := b.takeRuns(); len(runs) != 0 {
		t.Fatalf("clone B ran %v", runs)
	}
	for _, f := range []string{"a.txt", "b.txt", "g.png", "all.txt"} {
		if a.read(f) != b.read(f) || b.read(f) == "" {
			t.Errorf("%s: clone B has %q, clone A %q", f, b.read(f), a.read(f))
		}
	}
	if r := rep.Remote; r.Hits != 4 || r.Misses != 0 || r.Uploads != 0 || r.Downloaded == 0 {
		t.Errorf("clone B remote report: %+v", r)
	}
	if !strings.Contains(rep.Summary(), "4 remote") || !strings.Contains(rep.Summary(), "remote cache: 4 hits") {
		t.Errorf("summary: %s", rep.Summary())
	}
	// The outputs went through the journal and the state: the next build
	// is a local no-op, and kiln clean would know them.
	rep = b.build(remoteStages(b), remoteOpts(b, rc, false))
	if got := statuses(rep); got != "a:src=cached b:src=cached g:gen=cached all:cat=cached" {
		t.Fatalf("clone B again: %s", got)
	}
	st := loadState(b.cacheDir(), nil)
	if len(st.Outputs) != 4 {
		t.Errorf("state records %d outputs, want 4", len(st.Outputs))
	}
}

// TestRemoteReadOnlyUploadsNothing: upload false sends nothing.
func TestRemoteReadOnlyUploadsNothing(t *testing.T) {
	rc := newMemRemote()
	p := newProject(t)
	rep := p.build(remoteStages(p), remoteOpts(p, rc, false))
	if n := len(rc.keys("")); n != 0 || rep.Remote.Uploads != 0 || rep.Remote.Misses != 4 {
		t.Fatalf("read-only build: remote holds %d entries, report %+v", n, rep.Remote)
	}
}

// TestRemoteUploadsCachedDiffusion: a diffusion stage found in the local
// cache that the remote lacks is uploaded; one it has is not.
func TestRemoteUploadsCachedDiffusion(t *testing.T) {
	p := newProject(t)
	p.build(remoteStages(p), p.opts()) // no remote: the local cache only
	rc := newMemRemote()
	rep := p.build(remoteStages(p), remoteOpts(p, rc, true))
	if rep.Remote.Uploads != 1 || len(rc.keys("ac/")) != 1 {
		t.Fatalf("uploads %d, remote entries %v; want the diffusion stage's", rep.Remote.Uploads, rc.keys("ac/"))
	}
	rep = p.build(remoteStages(p), remoteOpts(p, rc, true))
	if rep.Remote.Uploads != 0 {
		t.Fatalf("uploaded again: %+v", rep.Remote)
	}
}

// entryFor returns a remote entry body for stage st with outputs.
func entryFor(t *testing.T, st *Stage, key digest, outs map[string][]byte) []byte {
	var set outputSet
	for _, name := range sortedKeys(outs) {
		set = append(set, outputRef{Name: name, blobRef: blobRef{SHA256: sha256.Sum256(outs[name]), Size: int64(len(outs[name]))}})
	}
	data, err := encodeEntry(st, key, set, nil, time.Unix(0, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeEntry: an entry that is not exactly a well-formed result of
// the stage is refused, whatever is wrong with it.
func TestDecodeEntry(t *testing.T) {
	st := &Stage{ID: "x:gen", Kind: "k", Version: "1", Publish: map[string]string{"image.png": "x.png"}}
	dir := &Stage{ID: "atlas", Kind: "atlas", Version: "2", PublishDir: "ui/atlas", Publish: map[string]string{"atlas.json": "ui/atlas/atlas.json"}}
	dir2 := &Stage{ID: "atlas", Kind: "atlas", Version: "2", PublishDir: "ui/atlas", Publish: map[string]string{"data": "ui/atlas/atlas.json"}}
	key := digest(sha256.Sum256([]byte("key")))
	good := map[string]any{
		"format": remoteEntryFormat, "key": key.String(), "stage": "x:gen", "kind": "k", "version": "1",
		"outputs":     []any{map[string]any{"name": "image.png", "sha256": strings.Repeat("ab", 32), "size": 10}},
		"created":     "2026-01-01T00:00:00Z",
		"duration_ms": 12.5,
	}
	with := func(k string, v any) []byte {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		data, _ := json.Marshal(m)
		return data
	}
	out := func(name, sha string, size int64) map[string]any {
		return map[string]any{"name": name, "sha256": sha, "size": size}
	}
	h := strings.Repeat("ab", 32)
	cases := []struct {
		name  string
		stage *Stage
		data  []byte
		want  string // "" accepts
	}{
		{"good", st, with("format", remoteEntryFormat), ""},
		{"good with notes", st, with("notes", map[string]string{"seams": "x=1.00", "warning": "line\nline"}), ""},
		{"not JSON", st, []byte("\x00\x01garbage"), "not a kiln entry"},
		{"JSON array", st, []byte("[1,2]"), "not a kiln entry"},
		{"trailing data", st, append(with("format", remoteEntryFormat), []byte(" {}")...), "data after the entry"},
		{"too large", st, bytes.Repeat([]byte(" "), maxEntryBytes+1), "more than"},
		{"unknown field", st, with("executable", true), "unknown field"},
		{"other format", st, with("format", "kiln-ac/2"), "format"},
		{"Bazel ActionResult", st, []byte("\x0a\x05hello"), "not a kiln entry"},
		{"other key", st, with("key", strings.Repeat("cd", 32)), "it is for key"},
		{"other kind", st, with("kind", "other"), "it is for kind"},
		{"other version", st, with("version", "0"), "it is for kind"},
		{"missing published output", st, with("outputs", []any{out("other.png", h, 1)}), "lacks output \"image.png\""},
		{"no outputs", st, with("outputs", nil), "lacks output"},
		{"path traversal", st, with("outputs", []any{out("../../etc/passwd", h, 1), out("image.png", h, 1)}), "not allowed"},
		{"absolute name", st, with("outputs", []any{out("/etc/passwd", h, 1), out("image.png", h, 1)}), "not allowed"},
		{"backslash", st, with("outputs", []any{out("image.png", h, 1), out(`a\..\b`, h, 1)}), "not allowed"},
		{"dot file", st, with("outputs", []any{out(".git", h, 1), out("image.png", h, 1)}), "not allowed"},
		{"NUL", st, with("outputs", []any{out("image.png", h, 1), out("a\x00b", h, 1)}), "not allowed"},
		{"duplicate name", st, with("outputs", []any{out("image.png", h, 1), out("image.png", h, 1)}), "listed twice"},
		{"unsorted", st, with("outputs", []any{out("z", h, 1), out("image.png", h, 1)}), "not sorted"},
		{"short digest", st, with("outputs", []any{out("image.png", "abcd", 1)}), "64 lower-case hex"},
		{"upper-case digest", st, with("outputs", []any{out("image.png", strings.Repeat("AB", 32), 1)}), "64 lower-case hex"},
		{"non-hex digest", st, with("outputs", []any{out("image.png", strings.Repeat("zz", 32), 1)}), "64 lower-case hex"},
		{"negative size", st, with("outputs", []any{out("image.png", h, -1)}), "size -1"},
		{"huge size", st, with("outputs", []any{out("image.png", h, 1<<40)}), "is not between"},
		{"too many outputs", st, with("outputs", func() []any {
			var l []any
			for i := range maxEntryOutputs + 1 {
				l = append(l, out(fmt.Sprintf("o%05d", i), h, 1))
			}
			return l
		}()), "outputs, more than"},
		{"total too large", st, with("outputs", []any{out("a", h, maxRemoteBlob), out("b", h, maxRemoteBlob), out("c", h, maxRemoteBlob),
			out("d", h, maxRemoteBlob), out("image.png", h, 1)}), "hold more than"},
		{"escape in a note", st, with("notes", map[string]string{"x": "\x1b[2J"}), "not plain text"},
		{"escape in the stage", st, with("stage", "a\x1b]0;pwned\x07"), "stage name"},
		{"negative duration", st, with("duration_ms", -5), "negative duration"},
		{"folder output", dir, with("outputs", nil), "lacks output"},
		{"folder output ok", dir, []byte(fmt.Sprintf(`{"format":%q,"key":%q,"stage":"atlas","kind":"atlas","version":"2","outputs":[{"name":"atlas.json","sha256":%q,"size":1},{"name":"godot/a.tres","sha256":%q,"size":1}],"created":"2026-01-01T00:00:00Z","duration_ms":1}`,
			remoteEntryFormat, key, h, h)), ""},
		{"file where a folder goes", dir, []byte(fmt.Sprintf(`{"format":%q,"key":%q,"stage":"atlas","kind":"atlas","version":"2","outputs":[{"name":"atlas.json","sha256":%q,"size":1},{"name":"g","sha256":%q,"size":1},{"name":"g/a.tres","sha256":%q,"size":1}],"created":"2026-01-01T00:00:00Z","duration_ms":1}`,
			remoteEntryFormat, key, h, h, h)), "one is a file the other needs as a folder"},
		{"folder output onto a named one", dir2, []byte(fmt.Sprintf(`{"format":%q,"key":%q,"stage":"atlas","kind":"atlas","version":"2","outputs":[{"name":"atlas.json","sha256":%q,"size":1},{"name":"data","sha256":%q,"size":1}],"created":"2026-01-01T00:00:00Z","duration_ms":1}`,
			remoteEntryFormat, key, h, h)), "cannot be published at ui/atlas/atlas.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.data
			if tc.stage == dir && tc.name == "folder output" {
				data = bytes.ReplaceAll(bytes.ReplaceAll(with("outputs", nil), []byte(`"kind":"k"`), []byte(`"kind":"atlas"`)), []byte(`"version":"1"`), []byte(`"version":"2"`))
			}
			_, _, _, err := decodeEntry(data, tc.stage, key)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q; want %q", err, tc.want)
			}
		})
	}
}

// TestRemoteHostile: whatever a hostile server serves, the stage runs
// locally, the outputs are right, and nothing is written outside the
// output and cache folders.
func TestRemoteHostile(t *testing.T) {
	p0 := newProject(t)
	stages0 := remoteStages(p0)
	genStage := stages0[2]
	p0.build(stages0, p0.opts())
	rec0 := loadState(p0.cacheDir(), nil)
	genKey := rec0.Stages["g:gen"].Key

	cases := []struct {
		name  string
		serve func(m *memRemote)
	}{
		{"blob with other bytes", func(m *memRemote) {
			good := []byte("alpha+gen")
			m.entries["ac/"+remoteAddress(genKey)] = entryFor(t, &genStage, genKey, map[string][]byte{"out": good})
			s := sha256.Sum256(good)
			m.entries["cas/"+digest(s).String()] = []byte("EVIL BYTES")
		}},
		{"blob longer than said", func(m *memRemote) {
			good := []byte("alpha+gen")
			m.entries["ac/"+remoteAddress(genKey)] = entryFor(t, &genStage, genKey, map[string][]byte{"out": good})
			s := sha256.Sum256(good)
			m.entries["cas/"+digest(s).String()] = append(good, "and more"...)
		}},
		{"blob shorter than said", func(m *memRemote) {
			good := []byte("alpha+gen")
			m.entries["ac/"+remoteAddress(genKey)] = entryFor(t, &genStage, genKey, map[string][]byte{"out": good})
			s := sha256.Sum256(good)
			m.entries["cas/"+digest(s).String()] = good[:3]
		}},
		{"entry escaping the output folder", func(m *memRemote) {
			m.entries["ac/"+remoteAddress(genKey)] = []byte(fmt.Sprintf(`{"format":%q,"key":%q,"stage":"g:gen","kind":"test.cat","version":"1","outputs":[{"name":"../../../../tmp/pwned","sha256":%q,"size":4},{"name":"out","sha256":%q,"size":4}],"created":"2026-01-01T00:00:00Z","duration_ms":1}`,
				remoteEntryFormat, genKey, digest(sha256.Sum256([]byte("evil"))), digest(sha256.Sum256([]byte("evil")))))
			m.entries["cas/"+digest(sha256.Sum256([]byte("evil"))).String()] = []byte("evil")
		}},
		{"garbage entry", func(m *memRemote) {
			m.entries["ac/"+remoteAddress(genKey)] = []byte("<html>cache</html>")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newMemRemote()
			tc.serve(rc)
			p := newProject(t)
			before := snapshotDir(t, filepath.Dir(p.root))
			rep := p.build(remoteStages(p), remoteOpts(p, rc, false))
			if got := rep.Stage("g:gen").Status; got != StatusBuilt {
				t.Fatalf("g:gen %s; want built", got)
			}
			if got := p.read("g.png"); got != "alpha+gen" {
				t.Fatalf("g.png = %q", got)
			}
			if r := rep.Remote; r.Errors != 1 || r.Hits != 0 || !strings.Contains(r.Warning, "1 stages ran locally instead") {
				t.Fatalf("remote report %+v", r)
			}
			after := snapshotDir(t, filepath.Dir(p.root))
			for f := range after {
				if _, ok := before[f]; !ok && !strings.HasPrefix(f, filepath.Base(p.root)+"/out/") && !strings.HasPrefix(f, filepath.Base(p.root)+"/.kiln/cache/") {
					t.Errorf("new file outside the output and cache folders: %s", f)
				}
			}
			// The blob the hostile server served is not in the local cache.
			for _, f := range after {
				if f == "evil" || f == "EVIL BYTES" {
					t.Errorf("hostile bytes stored locally")
				}
			}
		})
	}
}

// snapshotDir maps files under dir to their content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			data, _ := os.ReadFile(p)
			out[filepath.ToSlash(rel)] = string(data)
		}
		return nil
	})
	return out
}

// TestRemoteEvictedBlob: an entry whose blob the server no longer holds
// (an LRU cache evicted it) is a miss, not a fault: the stage builds
// here, with no warning, and its result is uploaded again.
func TestRemoteEvictedBlob(t *testing.T) {
	rc := newMemRemote()
	a := newProject(t)
	a.build(remoteStages(a), remoteOpts(a, rc, true))
	for _, k := range rc.keys("cas/") {
		if strings.Contains(string(rc.entries[k]), "+gen") && !strings.Contains(string(rc.entries[k]), "!") {
			delete(rc.entries, k)
		}
	}
	b := newProject(t)
	rep := b.build(remoteStages(b), remoteOpts(b, rc, true))
	if got := statuses(rep); got != "a:src=remote b:src=remote g:gen=built all:cat=remote" {
		t.Fatalf("statuses %s", got)
	}
	if r := rep.Remote; r.Errors != 0 || r.Warning != "" || r.Misses != 1 || r.Uploads != 1 {
		t.Fatalf("remote report %+v", r)
	}
	if len(rc.keys("cas/")) != 4 {
		t.Errorf("the evicted blob was not uploaded again: %v", rc.keys("cas/"))
	}
}

// TestRemoteFaultsDegrade: every kind of failure makes stages run
// locally; the build succeeds; the report counts errors and carries one
// warning line; after remoteFailLimit faults in a row the remote cache
// is not asked any more.
func TestRemoteFaultsDegrade(t *testing.T) {
	down := errors.New("connection refused")
	cases := []struct {
		name     string
		fault    func(method string, kind RemoteKind, hash string) error
		upload   bool
		errors   int
		maxGets  int
		contains string
	}{
		{name: "down", fault: func(string, RemoteKind, string) error { return down }, errors: remoteFailLimit, contains: "turned off for the rest of the build"},
		{name: "cas down", fault: func(m string, k RemoteKind, _ string) error {
			if k == RemoteCAS {
				return down
			}
			return nil
		}, upload: true, contains: "connection refused"},
		{name: "uploads refused", fault: func(m string, k RemoteKind, _ string) error {
			if m == "PUT" {
				return fmt.Errorf("PUT: 403 Forbidden: %w", ErrRemoteRefused)
			}
			return nil
		}, upload: true, errors: 1, contains: "uploads stopped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newMemRemote()
			if tc.name == "cas down" {
				// A warm AC whose blobs cannot be fetched.
				w := newProject(t)
				w.build(remoteStages(w), remoteOpts(w, rc, true))
			}
			rc.fault = tc.fault
			p := newProject(t)
			rep, err := Build(context.Background(), remoteStages(p), remoteOpts(p, rc, tc.upload))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := statuses(rep); got != "a:src=built b:src=built g:gen=built all:cat=built" {
				t.Fatalf("statuses %s", got)
			}
			if p.read("all.txt") != "alphabetaalpha+gen!" {
				t.Fatalf("all.txt = %q", p.read("all.txt"))
			}
			r := rep.Remote
			if r.Errors == 0 || (tc.errors > 0 && r.Errors != tc.errors) || !strings.Contains(r.Warning, tc.contains) || strings.Contains(r.Warning, "\n") {
				t.Fatalf("remote report %+v; want %d errors and a warning line with %q", r, tc.errors, tc.contains)
			}
		})
	}
}

// TestRemoteUploadsBoundedAndAbandoned: uploads run at most
// RemoteUploads at once, and those still going when the drain time is
// up are abandoned with a warning; the build still succeeds.
func TestRemoteUploadsBoundedAndAbandoned(t *testing.T) {
	rc := newMemRemote()
	rc.putGate = make(chan struct{}) // every upload waits
	p := newProject(t)
	var stages []Stage
	for i := range 12 {
		stages = append(stages, p.constStage(fmt.Sprintf("s%02d:src", i), fmt.Sprint("text", i), fmt.Sprintf("s%02d.txt", i)))
	}
	o := remoteOpts(p, rc, true)
	o.RemoteUploads = 3
	drain := make(chan time.Time)
	o.after = func(time.Duration) <-chan time.Time { return drain }
	go func() {
		// Time is up once three uploads are waiting at once.
		for range 3 {
			<-rc.puts
		}
		close(drain)
	}()
	rep, err := Build(context.Background(), stages, o)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Remote
	if r.Uploads != 0 || r.Abandoned != 12 || !strings.Contains(r.Warning, "12 uploads abandoned") {
		t.Fatalf("remote report %+v; want all 12 uploads abandoned", r)
	}
	if rc.maxInFlight > 3 {
		t.Errorf("%d uploads at once, want at most 3", rc.maxInFlight)
	}
	if rep.Totals[StatusBuilt] != 12 {
		t.Errorf("totals %v", rep.Totals)
	}
}

// TestRemoteUploadsFinish: the build waits for its uploads.
func TestRemoteUploadsFinish(t *testing.T) {
	rc := newMemRemote()
	rc.putGate = make(chan struct{})
	p := newProject(t)
	o := remoteOpts(p, rc, true)
	o.RemoteUploads = 2
	go func() {
		<-rc.puts // the first upload has started: let them all go
		close(rc.putGate)
	}()
	rep := p.build(remoteStages(p), o)
	if rep.Remote.Uploads != 4 || rep.Remote.Abandoned != 0 || len(rc.keys("ac/")) != 4 {
		t.Fatalf("remote report %+v, entries %v", rep.Remote, rc.keys("ac/"))
	}
	if rc.maxInFlight > 2 {
		t.Errorf("%d uploads at once, want at most 2", rc.maxInFlight)
	}
}

// TestRemoteNotUsedReadOnly: dry-run and check ask nothing.
func TestRemoteNotUsedReadOnly(t *testing.T) {
	rc := newMemRemote()
	p := newProject(t)
	o := remoteOpts(p, rc, true)
	o.DryRun = true
	rep, err := Build(context.Background(), remoteStages(p), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Remote != nil || rc.gets != 0 {
		t.Errorf("dry-run used the remote cache: %+v, %d gets", rep.Remote, rc.gets)
	}
}

// TestRemoteAddress: the address depends on the key and the format.
func TestRemoteAddress(t *testing.T) {
	k1, k2 := digest(sha256.Sum256([]byte("1"))), digest(sha256.Sum256([]byte("2")))
	if remoteAddress(k1) == remoteAddress(k2) || remoteAddress(k1) == k1.String() || len(remoteAddress(k1)) != 64 {
		t.Errorf("addresses %s %s", remoteAddress(k1), remoteAddress(k2))
	}
}

// FuzzDecodeEntry: no entry a server sends makes the decoder panic, and
// every one it accepts names only outputs the stage could publish.
func FuzzDecodeEntry(f *testing.F) {
	st := &Stage{ID: "x:gen", Kind: "k", Version: "1", PublishDir: "x", Publish: map[string]string{"image.png": "x/image.png"}}
	key := digest(sha256.Sum256([]byte("key")))
	good, _ := encodeEntry(st, key, outputSet{{Name: "image.png", blobRef: blobRef{SHA256: emptySHA256}}, {Name: "a/b.tres", blobRef: blobRef{SHA256: emptySHA256, Size: 3}}}, map[string]string{"n": "v"}, time.Unix(0, 0), 1)
	f.Add(good)
	f.Add([]byte(`{"format":"kiln-ac/1"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		outs, notes, _, err := decodeEntry(data, st, key)
		if err != nil {
			return
		}
		for _, o := range outs {
			if checkOutputName(o.Name) != nil || o.Size < 0 {
				t.Fatalf("accepted output %+v", o)
			}
		}
		for k, v := range notes {
			if !plainText(k, maxNoteKey, false) || !plainText(v, maxNoteValue, true) {
				t.Fatalf("accepted note %q=%q", k, v)
			}
		}
	})
}
