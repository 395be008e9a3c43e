package watch

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// waitFor is how long a test waits for something that should happen; it
// is generous because the race detector and a busy machine slow
// everything down. It bounds a hang, it does not measure speed.
const waitFor = 10 * time.Second

// quiet is how long a test watches for something that should not happen,
// in multiples of the debounce interval.
const quiet = 4

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes a file under root, creating folders, and fails the
// test on error.
func writeFile(t testing.TB, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// mustDo fails the test if err is not nil.
func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newTestWatcher starts a Watcher on root with the given extra ignores.
func newTestWatcher(t *testing.T, root string, debounce time.Duration, warn *syncBuffer, extra ...string) *Watcher {
	t.Helper()
	ign, err := NewIgnore(root, extra...)
	mustDo(t, err)
	o := WatcherOptions{Ignore: ign, Debounce: debounce}
	if warn != nil {
		o.Warn = warn
	}
	w, err := NewWatcher(o)
	mustDo(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

// nextBatch waits for the next batch.
func nextBatch(t *testing.T, w *Watcher) Batch {
	t.Helper()
	select {
	case b, ok := <-w.Batches():
		if !ok {
			t.Fatal("watcher closed its batches")
		}
		return b
	case <-time.After(waitFor):
		t.Fatalf("no batch within %s", waitFor)
	}
	return Batch{}
}

// noBatch fails if a batch arrives within d.
func noBatch(t *testing.T, w *Watcher, d time.Duration) {
	t.Helper()
	select {
	case b := <-w.Batches():
		t.Fatalf("unexpected batch %+v", b)
	case <-time.After(d):
	}
}

// samePaths fails unless got equals want (both sorted).
func samePaths(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}
