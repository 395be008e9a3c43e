// Package orttest finds the ONNX Runtime library for tests that run real
// graphs, so every package looks in the same places and skips with the same
// advice when it is missing.
package orttest

import (
	"os"
	"sync"
	"testing"

	"github.com/kiln-dev/kiln/models"
	ort "github.com/yalue/onnxruntime_go"
)

// Library returns $KILN_ORT_LIB, else the library kiln's set-up installs in
// kiln's cache folder. When there is none it skips t, saying how to get one.
func Library(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KILN_ORT_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("KILN_ORT_LIB=%s: %v", p, err)
		}
		return p
	}
	d, err := models.CacheDir(nil)
	if err != nil {
		t.Skipf("ONNX Runtime library not found (set KILN_ORT_LIB or run `kiln setup`): %v", err)
	}
	p := models.LibraryCachePath(d)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("ONNX Runtime library not found (set KILN_ORT_LIB or run `kiln setup`); looked at %s", p)
	}
	return p
}

// env is ONNX Runtime's process-wide environment, which can be
// initialised only once per process (a test binary).
var env struct {
	once sync.Once
	err  error
}

// Init initialises ONNX Runtime's environment with Library's library,
// once per test binary, for tests that create onnxruntime_go sessions
// themselves rather than through models.Runtime. It skips t like Library
// when there is no library, and fails it when initialisation fails.
// Such a test binary's TestMain should call ort.DestroyEnvironment.
func Init(t testing.TB) {
	t.Helper()
	lib := Library(t)
	env.once.Do(func() {
		ort.SetSharedLibraryPath(lib)
		env.err = ort.InitializeEnvironment(ort.WithLogLevelError())
	})
	if env.err != nil {
		t.Fatalf("initialise ONNX Runtime with %s: %v", lib, env.err)
	}
}
