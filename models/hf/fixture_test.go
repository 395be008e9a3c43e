package hf

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/hf/hftest"
)

// The fake Hub is models/hf/hftest, shared with the tests of models/store
// and the kiln command; these names keep this package's tests short.
const (
	goodToken    = hftest.GoodToken
	otherToken   = hftest.OtherToken
	invalidToken = hftest.InvalidToken
)

func newFakeHub(t *testing.T) *hftest.Hub { return hftest.New(t) }

func blob(seed string, n int) []byte { return hftest.Blob(seed, n) }

func onnxRepo() map[string][]byte { return hftest.ONNXRepo() }

func commitOf(s string) string { return hftest.CommitOf(s) }

func dropAfter(w http.ResponseWriter, r *http.Request, data []byte, k int) {
	hftest.DropAfter(w, r, data, k)
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	hftest.Error(w, status, code, msg)
}

// sleeper records the waits a Client asks for, without waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// memFile is an in-memory Target.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b...)
}

// newTestClient makes a Client of the fake Hub, configured through the
// environment as the CLI would be; env adds to or overrides HF_ENDPOINT.
func newTestClient(t *testing.T, h *hftest.Hub, env map[string]string, opts Options) (*Client, *sleeper) {
	t.Helper()
	e := map[string]string{"HF_ENDPOINT": h.URL()}
	for k, v := range env {
		e[k] = v
	}
	sl := &sleeper{}
	opts.LookupEnv = func(k string) (string, bool) { v, ok := e[k]; return v, ok }
	opts.Sleep = sl.sleep
	if opts.UserAgent == "" {
		opts.UserAgent = "kiln/test"
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}
