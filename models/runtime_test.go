package models

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

func TestRuntimeRunsOnCPU(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	if rt.Provider() != ProviderCPU || rt.RequestedProvider() != ProviderCPU {
		t.Errorf("provider %s (requested %s), want cpu", rt.Provider(), rt.RequestedProvider())
	}
	if !strings.HasPrefix(rt.Version(), "1.24.") {
		t.Logf("library is ONNX Runtime %s (tests are pinned to %s)", rt.Version(), ORTVersion)
	}
	path := filepath.Join(t.TempDir(), "scale", "model.onnx")
	writeScaleModel(t, path, 2, 0)

	info, err := rt.GraphInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(info.Inputs, info.Outputs); got != "[x float32[-1 4]] [y float32[-1 4]]" {
		t.Errorf("graph info %s", got)
	}

	s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	x, _ := ort.NewTensor(ort.NewShape(2, 4), []float32{1, 2, 3, 4, 5, 6, 7, 8})
	defer x.Destroy()
	y, _ := ort.NewEmptyTensor[float32](ort.NewShape(2, 4))
	defer y.Destroy()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Run(ctx, []ort.Value{x}, []ort.Value{y}); err != nil {
		t.Fatal(err)
	}
	for i, v := range y.GetData() {
		if v != 2*float32(i+1) {
			t.Fatalf("y[%d] = %v, want %v", i, v, 2*float32(i+1))
		}
	}
	if s.Provider() != ProviderCPU {
		t.Errorf("session provider %s", s.Provider())
	}
	st := rt.Stats()
	if st.Runs != 1 || st.RunTime <= 0 || st.Loads != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestProviderUnavailable(t *testing.T) {
	lib := testLibrary(t)
	if CheckLibraryFile(lib) != nil || runtime.GOOS != "linux" {
		t.Skip("needs the Linux CPU build")
	}
	shared := filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_shared.so")
	// These are the exact messages with the pinned CPU-only build
	// (onnxruntime-node 1.24.3), which has none of these providers.
	tests := []struct {
		provider string
		device   int
		cause    string
		install  string
	}{
		{"cuda", 0, "Failed to load library " + shared + " with error: " + shared + ": cannot open shared object file: No such file or directory",
			"install the official ONNX Runtime 1.24 GPU build for Linux x64 (onnxruntime-linux-x64-gpu-1.24.x; needs an NVIDIA driver, CUDA 12 and cuDNN 9), keep libonnxruntime_providers_shared.so and libonnxruntime_providers_cuda.so next to its libonnxruntime.so.1, and point kiln at that file with --ort-lib or KILN_ORT_LIB"},
		{"tensorrt", 1, "Failed to load library " + shared + " with error: " + shared + ": cannot open shared object file: No such file or directory",
			"install the official ONNX Runtime 1.24 GPU build for Linux x64 (onnxruntime-linux-x64-gpu-1.24.x) plus NVIDIA TensorRT 10, keep libonnxruntime_providers_tensorrt.so next to its libonnxruntime.so.1, and point kiln at that file with --ort-lib or KILN_ORT_LIB"},
		{"coreml", 0, "Your platform or onnxruntime library does not support CoreML",
			"CoreML needs macOS and the official ONNX Runtime 1.24 macOS build (libonnxruntime.dylib); point kiln at it with --ort-lib or KILN_ORT_LIB"},
		{"directml", 0, "Specified provider is not supported",
			"DirectML needs Windows and the ONNX Runtime 1.24 DirectML build (onnxruntime.dll from Microsoft.ML.OnnxRuntime.DirectML); point kiln at it with --ort-lib or KILN_ORT_LIB"},
		{"openvino", 0, "SessionOptionsAppendExecutionProvider_OpenVINO_V2: Failed to load shared library",
			"install an ONNX Runtime 1.24 build with the OpenVINO execution provider (Intel's OpenVINO build, with libonnxruntime_providers_openvino.so and the OpenVINO runtime) and point kiln at its libonnxruntime.so.1 with --ort-lib or KILN_ORT_LIB"},
	}
	for _, tt := range tests {
		t.Run(tt.provider, func(t *testing.T) {
			_, err := NewRuntime(RuntimeOptions{Library: lib, Provider: tt.provider, DeviceID: tt.device})
			want := fmt.Sprintf("execution provider %q (device %d) is not available with the ONNX Runtime library %s: %s. To use it, %s; or set fallback: cpu in kiln.yaml to run on the CPU instead",
				tt.provider, tt.device, lib, tt.cause, tt.install)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func TestProviderFallback(t *testing.T) {
	var logs logBuffer
	rt := newTestRuntime(t, RuntimeOptions{Provider: "CUDA", Fallback: "cpu", Log: logs.logger()})
	if rt.Provider() != ProviderCPU || rt.RequestedProvider() != ProviderCUDA || rt.Device() != "cpu" {
		t.Errorf("provider %s (device %s) requested %s, want cpu after falling back from cuda", rt.Provider(), rt.Device(), rt.RequestedProvider())
	}
	if !strings.Contains(logs.String(), `level=WARN msg="execution provider unavailable; falling back to CPU" provider=cuda`) {
		t.Errorf("no fallback warning in log:\n%s", logs.String())
	}
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 3, 0)
	s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if s.Provider() != ProviderCPU || s.Key().Provider != ProviderCUDA {
		t.Errorf("session provider %s, key %+v", s.Provider(), s.Key())
	}
}

func TestRuntimeOptionErrors(t *testing.T) {
	lib := testLibrary(t)
	tests := []struct {
		opts RuntimeOptions
		want string
	}{
		{RuntimeOptions{Library: lib, Provider: "metal"}, `unknown execution provider "metal": use one of cpu, cuda, tensorrt, coreml, directml, openvino`},
		{RuntimeOptions{Library: lib, Fallback: "gpu"}, `unknown fallback "gpu": the only fallback is "cpu" (or none)`},
		{RuntimeOptions{Library: lib, DeviceID: -1}, "device id -1 is negative"},
		{RuntimeOptions{}, "no ONNX Runtime library given; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"},
	}
	for _, tt := range tests {
		_, err := NewRuntime(tt.opts)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewRuntime(%+v):\n%v\nwant:\n%s", tt.opts, err, tt.want)
		}
	}
}

func TestSecondLibraryRefused(t *testing.T) {
	newTestRuntime(t, RuntimeOptions{}) // loads the environment
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	writeFakeLib(t, other)
	_, err := NewRuntime(RuntimeOptions{Library: other})
	if err == nil || !strings.Contains(err.Error(), "in this process and cannot also load "+other+": use one library per kiln process") {
		t.Errorf("error %v", err)
	}
}

// TestLoadingAForeignLibrary loads a real shared library that is not ONNX
// Runtime, in a child process because the environment can be loaded once
// per process.
func TestLoadingAForeignLibrary(t *testing.T) {
	if os.Getenv("KILN_TEST_CHILD_LIB") != "" {
		_, err := NewRuntime(RuntimeOptions{Library: os.Getenv("KILN_TEST_CHILD_LIB")})
		fmt.Printf("ERR: %v\n", err)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("Linux library paths")
	}
	var foreign string
	for _, p := range []string{"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1"} {
		if CheckLibraryFile(p) == nil {
			foreign = p
			break
		}
	}
	if foreign == "" {
		t.Skip("no libz to stand in for a foreign library")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadingAForeignLibrary$")
	cmd.Env = append(os.Environ(), "KILN_TEST_CHILD_LIB="+foreign)
	out, _ := cmd.CombinedOutput()
	want := "ERR: " + foreign + " loads but is not ONNX Runtime (it has no OrtGetApiBase); run `kiln setup`"
	if !strings.Contains(string(out), want) {
		t.Errorf("child output:\n%s\nwant %q", out, want)
	}
}

func TestModelLoadErrors(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.onnx")
	os.WriteFile(corrupt, []byte("this is not protobuf \xff\xff\xff\xff"), 0o644)
	good := filepath.Join(dir, "good", "model.onnx")
	writeScaleModel(t, good, 1, 4096)
	data, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.onnx")
	os.WriteFile(truncated, data[:len(data)/2], 0o644)

	tests := []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing.onnx"), "model file " + filepath.Join(dir, "missing.onnx") + " does not exist"},
		{dir, "model " + dir + " is a folder; give the .onnx file"},
		{corrupt, "load " + corrupt + ": not a valid ONNX model (truncated or corrupt file?): re-export or re-download it"},
		{truncated, "load " + truncated + ": not a valid ONNX model (truncated or corrupt file?): re-export or re-download it"},
	}
	for _, tt := range tests {
		_, err := rt.Acquire(context.Background(), SessionSpec{Path: tt.path})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Acquire(%s):\n%v\nwant prefix:\n%s", tt.path, err, tt.want)
		}
	}
	if st := rt.Stats(); st.Loaded != 0 || st.Bytes != 0 {
		t.Errorf("failed loads left pool entries: %+v", st)
	}
}

func TestGraphInfoRemembered(t *testing.T) {
	cache := t.TempDir()
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 1, 0)
	rt1 := newTestRuntime(t, RuntimeOptions{CacheDir: cache})
	if _, err := rt1.GraphInfo(path); err != nil {
		t.Fatal(err)
	}
	rt1.GraphInfo(path)
	if n := rt1.stats.graphReads.Load(); n != 1 {
		t.Errorf("first runtime read the graph %d times, want 1", n)
	}
	rt2 := newTestRuntime(t, RuntimeOptions{CacheDir: cache})
	info, err := rt2.GraphInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := rt2.stats.graphReads.Load(); n != 0 {
		t.Errorf("second runtime read the graph %d times, want 0 (from kiln's cache)", n)
	}
	if fmt.Sprint(info.Inputs) != "[x float32[-1 4]]" {
		t.Errorf("cached info %v", info)
	}
	// A changed file is read again.
	writeScaleModel(t, path, 1, 1024)
	if _, err := rt2.GraphInfo(path); err != nil {
		t.Fatal(err)
	}
	if n := rt2.stats.graphReads.Load(); n != 1 {
		t.Errorf("changed model read %d times, want 1", n)
	}
}

func TestRunCancelled(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 1, 0)
	s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	x, _ := ort.NewTensor(ort.NewShape(1, 4), []float32{1, 2, 3, 4})
	defer x.Destroy()
	if err := s.Run(ctx, []ort.Value{x}, []ort.Value{nil}); err != context.Canceled {
		t.Errorf("Run with a cancelled context: %v", err)
	}
	if _, err := rt.Acquire(ctx, SessionSpec{Path: path}); err != context.Canceled {
		t.Errorf("Acquire with a cancelled context: %v", err)
	}
	s.Release()
	if err := s.Run(context.Background(), []ort.Value{x}, []ort.Value{nil}); err == nil {
		t.Error("Run after Release succeeded")
	}
}

func TestExplainLoadError(t *testing.T) {
	const lib = "/opt/ort/libonnxruntime.so.1"
	hint := "; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"
	tests := []struct {
		in, want string
	}{
		{"Platform-specific initialization failed: Error setting ORT API base: 2",
			lib + " does not provide version 24 of the ONNX Runtime C API: it is older than ONNX Runtime 1.24" + hint},
		{`Platform-specific initialization failed: Error looking up OrtGetApiBase in "` + lib + `": undefined symbol`,
			lib + " loads but is not ONNX Runtime (it has no OrtGetApiBase)" + hint},
		{`Platform-specific initialization failed: Error loading ONNX shared library "` + lib + `": libcublas.so.12: cannot open shared object file`,
			"cannot load " + lib + `: Platform-specific initialization failed: Error loading ONNX shared library "` + lib + `": libcublas.so.12: cannot open shared object file (a library it needs may be missing: check ` + "`ldd " + lib + "`)" + hint},
	}
	for _, tt := range tests {
		if got := explainLoadError(lib, fmt.Errorf("%s", tt.in)).Error(); got != tt.want {
			t.Errorf("explainLoadError(%q):\n%s\nwant:\n%s", tt.in, got, tt.want)
		}
	}
	if got := cleanORTMessage("/onnxruntime_src/x.cc:12 f() [ONNXRuntimeError] : 1 : FAIL : Failed to load library x.so."); got != "Failed to load library x.so" {
		t.Errorf("cleanORTMessage: %q", got)
	}
}
