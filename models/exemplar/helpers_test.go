package exemplar

import (
	"os"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models"
)

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
	lib := orttest.Library(t)
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
