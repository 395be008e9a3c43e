package preview

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestServeOutSpecialFiles checks that files in the output folder that are
// not regular files (a named pipe, which blocks whoever opens it for
// reading, and a folder) are refused without the handler hanging.
func TestServeOutSpecialFiles(t *testing.T) {
	out, _ := evilSetup(t)
	if err := syscall.Mkfifo(filepath.Join(out, "pipe.png"), 0o644); err != nil {
		t.Skipf("cannot make a named pipe here: %v", err)
	}
	mustDo(t, os.MkdirAll(filepath.Join(out, "dir.png"), 0o755))
	s, err := New(Options{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, target := range []string{"/out/pipe.png", "/out/dir.png"} {
		done := make(chan int, 1)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080"+target, nil))
			done <- rec.Code
		}()
		select {
		case code := <-done:
			if code != 404 {
				t.Errorf("GET %s: status %d, want 404", target, code)
			}
		case <-time.After(10 * time.Second):
			// Unblock the handler so the test can end.
			if f, err := os.OpenFile(filepath.Join(out, "pipe.png"), os.O_WRONLY, 0); err == nil {
				f.Close()
			}
			t.Fatalf("GET %s: the handler hangs", target)
		}
	}
}
