package models

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// elfHeader returns the first 20 bytes of an ELF shared object for the
// given machine and class, enough for CheckLibraryFile.
func elfHeader(machine uint16, class byte, typ uint16) []byte {
	h := make([]byte, 64)
	copy(h, []byte{0x7f, 'E', 'L', 'F', class, 1, 1})
	h[16], h[17] = byte(typ), byte(typ>>8)
	h[18], h[19] = byte(machine), byte(machine>>8)
	return h
}

// writeFakeLib writes a file with a valid ELF header for this machine; the
// library search never loads it, it only inspects the header.
func writeFakeLib(t *testing.T, path string) string {
	t.Helper()
	m, c := goarchELF()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, elfHeader(m, c, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) Getenv {
	return func(k string) string { return m[k] }
}

func TestFindLibraryOrder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("library search layout is Linux's")
	}
	root := t.TempDir()
	flagLib := writeFakeLib(t, filepath.Join(root, "flag", "libonnxruntime.so.1"))
	envLib := writeFakeLib(t, filepath.Join(root, "env", "libonnxruntime.so.1"))
	cfgLib := writeFakeLib(t, filepath.Join(root, "opt", "lib", "libonnxruntime.so.1"))
	os.MkdirAll(filepath.Join(root, "project"), 0o755)
	sysDir := filepath.Join(root, "sys")
	sysLib := writeFakeLib(t, filepath.Join(sysDir, "libonnxruntime.so.1"))
	cache := filepath.Join(root, "cache")
	cacheLib := writeFakeLib(t, LibraryCachePath(cache))
	emptyDir := filepath.Join(root, "empty")

	tests := []struct {
		name       string
		opts       LibraryOptions
		wantPath   string
		wantSource string
	}{
		{"flag wins", LibraryOptions{Flag: flagLib, Getenv: env(map[string]string{"KILN_ORT_LIB": envLib}), Config: cfgLib, SystemDirs: []string{sysDir}, CacheDir: cache}, flagLib, SourceFlag},
		{"env next", LibraryOptions{Getenv: env(map[string]string{"KILN_ORT_LIB": envLib}), Config: cfgLib, SystemDirs: []string{sysDir}, CacheDir: cache}, envLib, SourceEnv},
		{"env's longer spelling", LibraryOptions{Getenv: env(map[string]string{"KILN_ORT_LIBRARY": envLib}), Config: cfgLib, SystemDirs: []string{sysDir}, CacheDir: cache}, envLib, SourceEnv},
		{"config outside the project", LibraryOptions{Getenv: env(nil), Config: cfgLib, ConfigDir: filepath.Join(root, "project"), SystemDirs: []string{sysDir}, CacheDir: cache}, cfgLib, SourceConfig},
		{"config relative to kiln.yaml, leading out", LibraryOptions{Getenv: env(nil), Config: "../opt/lib/libonnxruntime.so.1", ConfigDir: filepath.Join(root, "project"), SystemDirs: []string{sysDir}, CacheDir: cache}, filepath.Join(root, "project", "../opt/lib/libonnxruntime.so.1"), SourceConfig},
		{"system path", LibraryOptions{Getenv: env(nil), SystemDirs: []string{emptyDir, sysDir}, CacheDir: cache}, sysLib, SourceSystem},
		{"cache last", LibraryOptions{Getenv: env(nil), SystemDirs: []string{emptyDir}, CacheDir: cache}, cacheLib, SourceCache},
		{"cache from KILN_CACHE_HOME", LibraryOptions{Getenv: env(map[string]string{"KILN_CACHE_HOME": cache}), SystemDirs: []string{}}, cacheLib, SourceCache},
		{"cache from XDG_CACHE_HOME", LibraryOptions{Getenv: env(map[string]string{"XDG_CACHE_HOME": root}), SystemDirs: []string{}}, writeFakeLib(t, LibraryCachePath(filepath.Join(root, "kiln"))), SourceCache},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, src, err := FindLibrary(tt.opts)
			if err != nil {
				t.Fatalf("FindLibrary: %v", err)
			}
			if p != tt.wantPath || src != tt.wantSource {
				t.Errorf("got %s from %q, want %s from %q", p, src, tt.wantPath, tt.wantSource)
			}
		})
	}
}

func TestFindLibraryErrors(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("messages name linux/amd64")
	}
	root := t.TempDir()
	missing := filepath.Join(root, "nope", "libonnxruntime.so.1")
	arm := filepath.Join(root, "arm", "libonnxruntime.so.1")
	os.MkdirAll(filepath.Dir(arm), 0o755)
	os.WriteFile(arm, elfHeader(183, 2, 3), 0o644)
	sys := filepath.Join(root, "sys")
	cache := filepath.Join(root, "cache")

	tests := []struct {
		name string
		opts LibraryOptions
		want string
	}{
		{
			"flag points at nothing",
			LibraryOptions{Flag: missing, Getenv: env(nil), SystemDirs: []string{}, CacheDir: cache},
			"--ort-lib: " + missing + ": file does not exist; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24",
		},
		{
			"env has the wrong architecture",
			LibraryOptions{Getenv: env(map[string]string{"KILN_ORT_LIB": arm}), SystemDirs: []string{}, CacheDir: cache},
			"KILN_ORT_LIB: " + arm + " is built for AArch64 (arm64), but kiln runs on linux/amd64: use the ONNX Runtime 1.24 build for amd64; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24",
		},
		{
			"nothing anywhere",
			LibraryOptions{Getenv: env(nil), SystemDirs: []string{sys}, CacheDir: cache},
			"ONNX Runtime library not found; looked at:\n" +
				"  --ort-lib: not set\n" +
				"  KILN_ORT_LIB: not set\n" +
				"  kiln.yaml runtime.library: not set\n" +
				"  system library path: " + sys + ": no libonnxruntime.so.1 or libonnxruntime.so\n" +
				"  kiln cache: " + LibraryCachePath(cache) + ": file does not exist\n" +
				"run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := FindLibrary(tt.opts)
			if err == nil {
				t.Fatal("FindLibrary succeeded, want error")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", err, tt.want)
			}
		})
	}

	_, _, err := FindLibrary(LibraryOptions{Getenv: env(nil), SystemDirs: []string{}, CacheDir: cache})
	var nf *LibraryNotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("error %T is not a *LibraryNotFoundError", err)
	}
}

func TestFindLibrarySkipsUnusableSystemLibraries(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("messages name linux/amd64")
	}
	root := t.TempDir()
	// An old system library (by its versioned file name) and a foreign one
	// are passed over; the cached one is used.
	old := filepath.Join(root, "old")
	writeFakeLib(t, filepath.Join(old, "libonnxruntime.so.1.21.0"))
	os.Symlink("libonnxruntime.so.1.21.0", filepath.Join(old, "libonnxruntime.so.1"))
	foreign := filepath.Join(root, "foreign")
	os.MkdirAll(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "libonnxruntime.so"), elfHeader(40, 1, 3), 0o644)
	cache := filepath.Join(root, "cache")
	want := writeFakeLib(t, LibraryCachePath(cache))

	p, src, err := FindLibrary(LibraryOptions{Getenv: env(nil), SystemDirs: []string{old, foreign}, CacheDir: cache})
	if err != nil || p != want || src != SourceCache {
		t.Fatalf("got %s %s %v, want %s from cache", p, src, err, want)
	}
	_, _, err = FindLibrary(LibraryOptions{Getenv: env(nil), SystemDirs: []string{old, foreign}, CacheDir: filepath.Join(root, "none")})
	msg := err.Error()
	for _, s := range []string{
		"system library path: " + filepath.Join(old, "libonnxruntime.so.1") + " is ONNX Runtime 1.21.0, older than 1.24",
		"system library path: " + filepath.Join(foreign, "libonnxruntime.so") + " is built for ARM (32-bit)",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("error lacks %q:\n%s", s, msg)
		}
	}
}

func TestCheckLibraryFile(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("messages name linux/amd64")
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		path string
		want string // "" means no error
	}{
		{"good", write("good.so", elfHeader(62, 2, 3)), ""},
		{"truncated", write("short.so", []byte{0x7f, 'E', 'L'}), "short.so is not a shared library (3 bytes, too short for an ELF header): the file is truncated or corrupt"},
		{"not elf", write("html.so", []byte("<html><body>404 not found</body></html>")), "html.so is not a shared library (no ELF header): the file is corrupt or not ONNX Runtime"},
		{"arm64", write("arm.so", elfHeader(183, 2, 3)), "arm.so is built for AArch64 (arm64), but kiln runs on linux/amd64: use the ONNX Runtime 1.24 build for amd64"},
		{"32-bit x86", write("x86.so", elfHeader(3, 1, 3)), "x86.so is built for x86 (32-bit), but kiln runs on linux/amd64: use the ONNX Runtime 1.24 build for amd64"},
		{"executable", write("exe", elfHeader(62, 2, 2)), "exe is an ELF file but not a shared library (type 2)"},
		{"folder", dir, " is a folder, not the library file"},
		{"missing", filepath.Join(dir, "missing.so"), "missing.so: file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLibraryFile(tt.path)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasSuffix(err.Error(), tt.want) {
				t.Errorf("error %v, want suffix %q", err, tt.want)
			}
		})
	}
}

func TestParseLdconfig(t *testing.T) {
	out := []byte("1234 libs found in cache `/etc/ld.so.cache'\n" +
		"\tlibonnxruntime_providers_shared.so (libc6,x86-64) => /opt/ort/lib/libonnxruntime_providers_shared.so\n" +
		"\tlibonnxruntime.so.1 (libc6,x86-64) => /opt/ort/lib/libonnxruntime.so.1\n" +
		"\tlibonnxruntime.so (libc6,x86-64) => /opt/ort/lib/libonnxruntime.so\n" +
		"\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n")
	got := parseLdconfig(out)
	want := []string{"/opt/ort/lib/libonnxruntime.so.1", "/opt/ort/lib/libonnxruntime.so"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestCacheDir(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KILN_CACHE_HOME": "/k", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/k"},
		{map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/kiln"},
		{map[string]string{"XDG_CACHE_HOME": "relative", "HOME": "/h"}, "/h/.cache/kiln"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/kiln"},
	}
	for _, tt := range tests {
		got, err := CacheDir(env(tt.env))
		if err != nil || got != tt.want {
			t.Errorf("CacheDir(%v) = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
	if got := LibraryCachePath("/k"); got != "/k/onnxruntime/1.24.3/libonnxruntime.so.1" {
		t.Errorf("LibraryCachePath = %s", got)
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v    string
		want bool
	}{
		{"1.24.3", true}, {"1.24", true}, {"1.25.0", true}, {"2.0.0", true},
		{"1.23.2", false}, {"1.9.0", false}, {"0.99", false}, {"x.y", false}, {"1", false},
	}
	for _, tt := range tests {
		if got := versionAtLeast(tt.v, 1, 24); got != tt.want {
			t.Errorf("versionAtLeast(%q) = %v", tt.v, got)
		}
	}
}

// TestFindLibraryRefusesProjectLibrary checks that kiln.yaml cannot make
// kiln load a library from inside the project (a checkout's own native
// code), directly or through a symlink, while the flag and the
// environment can.
func TestFindLibraryRefusesProjectLibrary(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("library search layout is Linux's")
	}
	root := t.TempDir()
	proj := filepath.Join(root, "project")
	inside := writeFakeLib(t, filepath.Join(proj, "lib", "libonnxruntime.so.1"))
	os.Symlink(filepath.Join(proj, "lib"), filepath.Join(root, "outside-link"))
	for _, cfg := range []string{"lib/libonnxruntime.so.1", inside, filepath.Join(root, "outside-link", "libonnxruntime.so.1")} {
		_, _, err := FindLibrary(LibraryOptions{Getenv: env(nil), Config: cfg, ConfigDir: proj, SystemDirs: []string{}, CacheDir: filepath.Join(root, "cache")})
		if err == nil || !strings.Contains(err.Error(), "is inside the project") || !strings.Contains(err.Error(), "--ort-lib") {
			t.Errorf("runtime.library %s: %v", cfg, err)
		}
	}
	for _, o := range []LibraryOptions{
		{Flag: inside, Getenv: env(nil), Config: inside, ConfigDir: proj},
		{Getenv: env(map[string]string{"KILN_ORT_LIB": inside}), Config: inside, ConfigDir: proj},
	} {
		if p, _, err := FindLibrary(o); err != nil || p != inside {
			t.Errorf("chosen outside the project's files: %s, %v", p, err)
		}
	}
}

// TestFindLibraryGPUBuild checks where the GPU build that kiln setup
// --device cuda installs comes in the search: before the system library
// for cuda and tensorrt, and after kiln's CPU build for other devices.
func TestFindLibraryGPUBuild(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("library search layout is Linux's")
	}
	root := t.TempDir()
	sysDir := filepath.Join(root, "sys")
	sysLib := writeFakeLib(t, filepath.Join(sysDir, "libonnxruntime.so.1"))
	withCPU := filepath.Join(root, "cache-both")
	cpuLib := writeFakeLib(t, LibraryCachePath(withCPU))
	gpuLib := writeFakeLib(t, GPULibraryCachePath(withCPU))
	gpuOnly := filepath.Join(root, "cache-gpu")
	gpuOnlyLib := writeFakeLib(t, GPULibraryCachePath(gpuOnly))
	tests := []struct {
		name       string
		opts       LibraryOptions
		wantPath   string
		wantSource string
	}{
		{"cuda prefers the GPU build to the system", LibraryOptions{Device: ProviderCUDA, SystemDirs: []string{sysDir}, CacheDir: withCPU}, gpuLib, SourceGPUCache},
		{"tensorrt too", LibraryOptions{Device: ProviderTensorRT, SystemDirs: []string{sysDir}, CacheDir: withCPU}, gpuLib, SourceGPUCache},
		{"cpu keeps the system library", LibraryOptions{Device: ProviderCPU, SystemDirs: []string{sysDir}, CacheDir: withCPU}, sysLib, SourceSystem},
		{"cpu prefers the CPU build in the cache", LibraryOptions{Device: ProviderCPU, SystemDirs: []string{}, CacheDir: withCPU}, cpuLib, SourceCache},
		{"the GPU build runs the CPU provider too", LibraryOptions{SystemDirs: []string{}, CacheDir: gpuOnly}, gpuOnlyLib, SourceGPUCache},
		{"cuda without a GPU build falls back", LibraryOptions{Device: ProviderCUDA, SystemDirs: []string{sysDir}, CacheDir: filepath.Join(root, "none")}, sysLib, SourceSystem},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Getenv = env(nil)
			p, src, err := FindLibrary(tt.opts)
			if err != nil || p != tt.wantPath || src != tt.wantSource {
				t.Errorf("got %s from %q (%v), want %s from %q", p, src, err, tt.wantPath, tt.wantSource)
			}
		})
	}
}
