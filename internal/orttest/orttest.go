// Package orttest finds the ONNX Runtime library for tests that run real
// graphs, so every package looks in the same places and skips with the same
// advice when it is missing.
package orttest

import (
	"os"
	"testing"

	"github.com/kiln-dev/kiln/models"
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
