package models

import (
	"errors"
	"os"
	"path/filepath"
)

// Pinned ONNX Runtime release. onnxruntime_go v1.27.0 is built against the
// C API of ONNX Runtime 1.24 (ORT_API_VERSION 24), so the library kiln
// installs and expects is from that release line.
const (
	// ORTVersion is the ONNX Runtime release kiln installs with Setup.
	ORTVersion = "1.24.3"
	// ORTAPIMinor is the minor version of the C API onnxruntime_go needs;
	// a library older than 1.<ORTAPIMinor> cannot serve it.
	ORTAPIMinor = 24
)

// Getenv looks up an environment variable. Options structs take one so
// tests can run in parallel without touching the process environment; nil
// means os.Getenv.
type Getenv func(key string) string

func (g Getenv) get(key string) string {
	if g == nil {
		return os.Getenv(key)
	}
	return g(key)
}

// CacheDir returns kiln's per-user cache folder: $KILN_CACHE_HOME when set
// (tests and CI use it to stay hermetic), else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln. The folder is not created.
func CacheDir(getenv Getenv) (string, error) {
	if d := getenv.get("KILN_CACHE_HOME"); d != "" {
		return filepath.Abs(d)
	}
	// The XDG spec says a relative XDG_CACHE_HOME is invalid and must be
	// ignored.
	if d := getenv.get("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "kiln"), nil
	}
	home := getenv.get("HOME")
	if home == "" {
		var err error
		home, err = os.UserHomeDir()
		if err != nil || home == "" {
			return "", errors.New("cannot find kiln's cache folder: neither KILN_CACHE_HOME, XDG_CACHE_HOME nor HOME is set; set KILN_CACHE_HOME to a writable folder")
		}
	}
	return filepath.Join(home, ".cache", "kiln"), nil
}

// LibraryCachePath is where Setup installs the ONNX Runtime library inside
// kiln's cache folder: <cacheDir>/onnxruntime/<ORTVersion>/libonnxruntime.so.1.
func LibraryCachePath(cacheDir string) string {
	return filepath.Join(cacheDir, "onnxruntime", ORTVersion, "libonnxruntime.so.1")
}
