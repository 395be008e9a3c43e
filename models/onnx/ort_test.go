package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// ortLibrary returns the ONNX Runtime shared library tests use:
// $KILN_ORT_LIB, else where `kiln setup` puts it in the user's cache
// folder. (This package sits below models, so it cannot ask models, or
// internal/orttest, which imports models, where that is.)
func ortLibrary() string {
	if p := os.Getenv("KILN_ORT_LIB"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "kiln", "onnxruntime", "1.24.3", "libonnxruntime.so.1")
}

var (
	ortOnce sync.Once
	ortErr  error
)

// needORT initialises ONNX Runtime once per test binary, or skips the test
// with a message saying how to provide the library.
func needORT(t testing.TB) {
	t.Helper()
	ortOnce.Do(func() {
		lib := ortLibrary()
		if _, err := os.Stat(lib); err != nil {
			ortErr = fmt.Errorf("ONNX Runtime library not found at %s (set KILN_ORT_LIB or run `task setup`): %w", lib, err)
			return
		}
		ort.SetSharedLibraryPath(lib)
		ortErr = ort.InitializeEnvironment(ort.WithLogLevelError())
	})
	if ortErr != nil {
		t.Skip(ortErr)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if ort.IsInitialized() {
		ort.DestroyEnvironment()
	}
	os.Exit(code)
}
