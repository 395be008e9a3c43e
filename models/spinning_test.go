package models

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestSpinningReachesSessions(t *testing.T) {
	on, off := true, false
	tests := []struct {
		name     string
		spinning *bool
		want     map[string]string
	}{
		{"default is off", nil, map[string]string{"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}},
		{"on", &on, map[string]string{"session.intra_op.allow_spinning": "1", "session.inter_op.allow_spinning": "1"}},
		{"off", &off, map[string]string{"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}},
	}
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 3, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Two threads, so that there is an intra-op pool to spin or not.
			rt := newTestRuntime(t, RuntimeOptions{Threads: 2, Spinning: tt.spinning})
			if got := rt.sessionConfig(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("session config %v, want %v", got, tt.want)
			}
			// ONNX Runtime checks the entries' values when the session
			// is made: the session must be made and run.
			s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			runScale(t, s, 3)
		})
	}
}

// TestSpinningKeysAreONNXRuntimes checks that the configuration keys
// kiln sets are ones the library reads: ONNX Runtime takes any key and
// checks no value of these ("1" is on, anything else off), so a misspelt
// key would silently do nothing. The library names the keys it reads.
func TestSpinningKeysAreONNXRuntimes(t *testing.T) {
	data, err := os.ReadFile(testLibrary(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{configIntraOpSpinning, configInterOpSpinning} {
		if !bytes.Contains(data, []byte(key+"\x00")) {
			t.Errorf("the ONNX Runtime library does not know the session option %s", key)
		}
	}
}

// unavailableError is the error NewRuntime gives for a GPU provider the
// pinned CPU build lacks (see TestProviderUnavailable).
func unavailableError(lib, provider string, device int) string {
	shared := filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_shared.so")
	return "execution provider \"" + provider + "\" (device " + string(rune('0'+device)) + ") is not available with the ONNX Runtime library " + lib +
		": Failed to load library " + shared + " with error: " + shared + ": cannot open shared object file: No such file or directory. To use it, " +
		providerInstall[provider] + "; or set fallback: cpu in kiln.yaml to run on the CPU instead"
}

// TestGPUOptionsOnCPUBuild checks that provider options and shape plans
// change nothing about an unavailable provider: the same error, or the
// same fallback, and no TensorRT cache folders.
func TestGPUOptionsOnCPUBuild(t *testing.T) {
	lib := testLibrary(t)
	if CheckLibraryFile(lib) != nil || runtime.GOOS != "linux" {
		t.Skip("needs the Linux CPU build")
	}
	opts := map[string]map[string]string{
		"cuda":     {"cudnn_conv_algo_search": "HEURISTIC", "enable_cuda_graph": "0"},
		"tensorrt": {"trt_fp16_enable": "0", "trt_builder_optimization_level": "2"},
	}
	plan := ShapePlan{Sizes: []ImageSize{{512, 512}}, Batches: []int{2}}
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 3, 0)
	for _, provider := range []string{ProviderCUDA, ProviderTensorRT} {
		t.Run(provider, func(t *testing.T) {
			cache := t.TempDir()
			_, err := NewRuntime(RuntimeOptions{Library: lib, Provider: provider, ProviderOptions: opts, Shapes: plan, CacheDir: cache})
			if want := unavailableError(lib, provider, 0); err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}

			var logs logBuffer
			rt := newTestRuntime(t, RuntimeOptions{Provider: provider, Fallback: "cpu", ProviderOptions: opts, Shapes: plan, CacheDir: cache, Log: logs.logger()})
			if rt.Provider() != ProviderCPU {
				t.Fatalf("provider %s after fallback", rt.Provider())
			}
			if !strings.Contains(logs.String(), "falling back to CPU") {
				t.Errorf("no fallback warning:\n%s", logs.String())
			}
			s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			runScale(t, s, 3)
			if s.e.trt != nil {
				t.Error("a CPU session has a TensorRT set-up")
			}
			if _, err := os.Stat(filepath.Join(cache, "tensorrt")); !os.IsNotExist(err) {
				t.Errorf("TensorRT cache folder made on the CPU: %v", err)
			}
		})
	}
}
