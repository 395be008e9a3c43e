package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// modelDir is a generated model folder shared by the tests, read-only;
// modelManifest is its manifest (named "tiny", kind turbo).
var (
	modelDir      string
	modelManifest *Manifest
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "kiln-store-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	modelDir = filepath.Join(tmp, "tiny")
	if err := testmodels.Write(modelDir, testmodels.Turbo, testmodels.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	modelManifest, err = BuildManifest(context.Background(), modelDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	modelManifest.Name, modelManifest.Kind = "tiny", "turbo"
	return m.Run()
}

// fileOf returns the manifest entry of rel.
func fileOf(t testing.TB, m *Manifest, rel string) File {
	t.Helper()
	for _, f := range m.Files {
		if f.Path == rel {
			return f
		}
	}
	t.Fatalf("no %s in the manifest", rel)
	return File{}
}

// request is one request the test server saw.
type request struct {
	Path, Range string
}

// modelServer serves modelDir under /m/ with kiln-manifest.json at its
// root, honouring Range requests, with faults tests switch on.
type modelServer struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	manifest []byte            // served as /m/kiln-manifest.json
	cutOnce  map[string]int    // file → bytes sent before the first response is cut
	corrupt  map[string]bool   // file → serve with one byte changed
	override map[string][]byte // file → serve these bytes instead
	noRange  bool              // ignore Range headers (always 200)
	block    map[string]chan struct{}
	started  chan string // receives a file's path when a blocked transfer has begun
	requests []request
}

func newModelServer(t testing.TB) *modelServer {
	t.Helper()
	s := &modelServer{t: t, cutOnce: map[string]int{}, corrupt: map[string]bool{}, override: map[string][]byte{}, block: map[string]chan struct{}{}, started: make(chan string, 16)}
	m := *modelManifest
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	s.manifest = data
	s.srv = httptest.NewServer(s) // listens on 127.0.0.1 only
	t.Cleanup(s.srv.Close)
	return s
}

// with changes the server's faults under its lock.
func (s *modelServer) with(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// base is the model's base URL.
func (s *modelServer) base() string { return s.srv.URL + "/m/" }

func (s *modelServer) setManifest(m *Manifest) {
	data, err := m.Encode()
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.manifest = data
	s.mu.Unlock()
}

// fileRequests returns the requests for files (not the manifest).
func (s *modelServer) fileRequests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []request
	for _, r := range s.requests {
		if r.Path != ManifestName && !strings.HasSuffix(r.Path, ".yaml") {
			out = append(out, r)
		}
	}
	return out
}

func (s *modelServer) requestsFor(rel string) []request {
	var out []request
	for _, r := range s.fileRequests() {
		if r.Path == rel {
			out = append(out, r)
		}
	}
	return out
}

func (s *modelServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rel, ok := strings.CutPrefix(r.URL.Path, "/m/")
	s.mu.Lock()
	s.requests = append(s.requests, request{rel, r.Header.Get("Range")})
	manifest := s.manifest
	cut, doCut := s.cutOnce[rel]
	delete(s.cutOnce, rel)
	corrupt, noRange, block := s.corrupt[rel], s.noRange, s.block[rel]
	override, overridden := s.override[rel]
	s.mu.Unlock()

	if !ok {
		http.NotFound(w, r)
		return
	}
	if rel == ManifestName {
		w.Write(manifest)
		return
	}
	if safepath.Validate(rel) != nil {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	data, err := os.ReadFile(filepath.Join(modelDir, filepath.FromSlash(rel)))
	if overridden {
		data, err = override, nil
	}
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if corrupt {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 0xff
	}
	switch {
	case doCut:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:cut])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	case block != nil:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.WriteHeader(http.StatusOK)
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		s.started <- rel
		select {
		case <-block:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	case noRange:
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	default:
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}
}

// catalog returns a one-model catalogue pointing at the server, listing
// the files unless bare.
func (s *modelServer) catalog(t testing.TB, bare bool) *Catalog {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nmodels:\n  - name: tiny\n    description: generated test model\n    kind: turbo\n    url: %s\n", s.base())
	if !bare {
		b.WriteString("    files:\n")
		for _, f := range modelManifest.Files {
			fmt.Fprintf(&b, "      - {path: %s, size: %d, sha256: %s}\n", f.Path, f.Size, f.SHA256)
		}
	}
	c, err := ParseCatalog([]byte(b.String()), CatalogName, nil)
	if err != nil {
		t.Fatalf("ParseCatalog: %v\n%s", err, b.String())
	}
	return c
}

// testOptions are PullOptions for tests: no waiting between retries.
func testOptions(root string, cat *Catalog) PullOptions {
	return PullOptions{Catalog: cat, ProjectRoot: root, RetryDelay: -1, Parallel: 2}
}

// copyDir copies a folder tree.
func copyDir(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameTree fails unless got holds exactly modelDir's files plus a
// kiln-manifest.json.
func sameTree(t testing.TB, got string) {
	t.Helper()
	m, err := BuildManifest(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFiles(m.Files, modelManifest.Files) {
		t.Fatalf("%s does not hold the model's files:\n got  %v\n want %v", got, m.Files, modelManifest.Files)
	}
	rec, err := ReadManifest(got)
	if err != nil {
		t.Fatal(err)
	}
	if !sameFiles(rec.Files, modelManifest.Files) {
		t.Fatalf("recorded manifest differs: %v", rec.Files)
	}
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// testRuntime is a one-thread CPU runtime with a private cache.
func testRuntime(t testing.TB) *models.Runtime {
	t.Helper()
	rt, err := models.NewRuntime(models.RuntimeOptions{Library: orttest.Library(t), Threads: 1, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}
