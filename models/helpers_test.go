package models

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
)

// testLibrary returns the ONNX Runtime library tests run on: $KILN_ORT_LIB,
// else the copy `kiln setup` puts in kiln's cache folder. It
// skips the test with a message when there is none.
func testLibrary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KILN_ORT_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("KILN_ORT_LIB=%s: %v", p, err)
		}
		return p
	}
	var candidates []string
	if d, err := CacheDir(nil); err == nil {
		candidates = append(candidates, LibraryCachePath(d))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("ONNX Runtime library not found (set KILN_ORT_LIB or run `kiln setup`); looked at %v", candidates)
	return ""
}

// logBuffer is a concurrency-safe slog sink for asserting on warnings.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newTestRuntime makes a CPU Runtime with one thread (the test machine is
// shared) and a private cache folder.
func newTestRuntime(t testing.TB, opts RuntimeOptions) *Runtime {
	t.Helper()
	opts.Library = testLibrary(t)
	if opts.Threads == 0 {
		opts.Threads = 1
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	rt, err := NewRuntime(opts)
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// writeScaleModel writes a graph y = x * factor with x float32
// [batch, 4], plus padBytes of unused weights so the file has a known size
// for memory-budget tests.
func writeScaleModel(t testing.TB, path string, factor float32, padBytes int) {
	t.Helper()
	b := onnx.NewBuilder("scale")
	x := b.Input("x", onnx.Float, "batch", 4)
	y := b.Mul(x, b.Float32Const(nil, factor))
	if padBytes > 0 {
		b.Float32Const([]int64{int64(padBytes / 4)}, make([]float32, padBytes/4)...)
	}
	b.Output(y, "y", onnx.Float, "batch", 4)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
}
