package exemplar

import (
	"os"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/models"
)

// testLibrary returns the ONNX Runtime library the tests run on:
// $KILN_ORT_LIB, else the copy kiln's set-up installs. It skips the test
// with a message when there is none.
func testLibrary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KILN_ORT_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("KILN_ORT_LIB=%s: %v", p, err)
		}
		return p
	}
	candidates := []string{"/root/.cache/kiln/onnxruntime/" + models.ORTVersion + "/libonnxruntime.so.1"}
	if d, err := models.CacheDir(nil); err == nil {
		candidates = append(candidates, models.LibraryCachePath(d))
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skipf("ONNX Runtime library not found (set KILN_ORT_LIB or run `kiln setup`); looked at %v", candidates)
	return ""
}

var (
	rtOnce sync.Once
	rtVal  *models.Runtime
	rtErr  error
)

// testRuntime returns one CPU Runtime shared by the package's tests (ONNX
// Runtime has one environment per process), with its cache in a
// temporary folder.
func testRuntime(t testing.TB) *models.Runtime {
	t.Helper()
	lib := testLibrary(t)
	rtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-exemplar-rt-")
		if err != nil {
			rtErr = err
			return
		}
		rtVal, rtErr = models.NewRuntime(models.RuntimeOptions{Library: lib, CacheDir: dir})
	})
	if rtErr != nil {
		t.Fatalf("ONNX Runtime: %v", rtErr)
	}
	return rtVal
}
