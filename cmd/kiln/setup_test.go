package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models"
)

// gpuArchive builds a stand-in of onnxruntime-linux-x64-gpu-<version>.tgz
// with the release layout; its libraries carry an x86-64 ELF header and
// are never loaded.
func gpuArchive(t *testing.T) []byte {
	t.Helper()
	top := "onnxruntime-linux-x64-gpu-" + models.ORTVersion + "/"
	elf := func(s string) []byte {
		h := make([]byte, 64)
		copy(h, "\x7fELF")
		h[4], h[5], h[6], h[16], h[18] = 2, 1, 1, 3, 62
		return append(h, s...)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	add := func(name string, typ byte, link string, data []byte) {
		hdr := &tar.Header{Name: name, Typeflag: typ, Linkname: link, Mode: 0o755, Size: int64(len(data))}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add(top, tar.TypeDir, "", nil)
	add(top+"LICENSE", tar.TypeReg, "", []byte("MIT\n"))
	add(top+"lib/", tar.TypeDir, "", nil)
	add(top+"lib/libonnxruntime.so.1", tar.TypeSymlink, "libonnxruntime.so."+models.ORTVersion, nil)
	add(top+"lib/libonnxruntime.so."+models.ORTVersion, tar.TypeReg, "", elf("core"))
	for _, p := range []string{"shared", "cuda", "tensorrt"} {
		add(top+"lib/libonnxruntime_providers_"+p+".so", tar.TypeReg, "", elf(p))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestSetupGPUCommand(t *testing.T) {
	archive := gpuArchive(t)
	sum := sha256.Sum256(archive)
	digest := hex.EncodeToString(sum[:])
	name := "onnxruntime-linux-x64-gpu-" + models.ORTVersion + ".tgz"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mirror/v"+models.ORTVersion+"/"+name {
			http.NotFound(w, r)
			return
		}
		w.Write(archive)
	}))
	defer srv.Close()
	cache := t.TempDir()
	env := []string{"KILN_CACHE_HOME=" + cache, models.MirrorEnv + "=" + srv.URL + "/mirror"}
	dir := t.TempDir()
	lib := filepath.Join(cache, "onnxruntime", models.ORTVersion+"-gpu", "libonnxruntime.so.1")

	// Without a digest: downloaded, hashed, not installed.
	r := kilnEnv(t, dir, env, "setup", "--device", "cuda")
	if r.code != 1 || !strings.Contains(r.stderr, "its sha256 is "+digest+".") || !strings.Contains(r.stderr, "run `kiln setup --device cuda --sha256 "+digest+"`") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(lib); err == nil {
		t.Fatal("installed without a confirmed digest")
	}

	// With it: installed; on a machine without the NVIDIA driver the
	// prerequisite check fails the command but keeps the install.
	r = kilnEnv(t, dir, env, "setup", "--device", "cuda", "--sha256", digest)
	if !strings.Contains(r.stdout, "ONNX Runtime "+models.ORTVersion+" GPU build (cuda and tensorrt providers): "+lib+"\n") ||
		!strings.Contains(r.stdout, "archive sha256 "+digest+" (checked against --sha256)") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat("/proc/driver/nvidia/version"); errors.Is(err, os.ErrNotExist) {
		if r.code != 1 || !strings.Contains(r.stderr, "kiln: the CUDA provider cannot start on this machine: the ONNX Runtime "+models.ORTVersion+" GPU build needs the NVIDIA driver (525.60.13 or newer), CUDA 12.x and cuDNN 9.x, and this is missing:\n  - NVIDIA driver: none found") {
			t.Errorf("exit %d\nstderr %s", r.code, r.stderr)
		}
	}
	if target, err := os.Readlink(lib); err != nil || target != "libonnxruntime.so."+models.ORTVersion {
		t.Errorf("%s -> %q (%v)", lib, target, err)
	}

	// --no-check accepts missing prerequisites; nothing is downloaded again.
	srv.Close()
	r = kilnEnv(t, dir, env, "setup", "--device", "tensorrt", "--no-check")
	if r.code != 0 || !strings.Contains(r.stdout, "use it: kiln build --device tensorrt, or put runtime: {device: tensorrt} in kiln.yaml (kiln finds this build in its cache)") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}

	// kiln doctor sees the install; with no CPU build in this cache, it is
	// the library kiln would use (its stand-in files do not load).
	r = kilnEnv(t, dir, env, "doctor")
	if r.code != 0 || !strings.Contains(r.stdout, "GPU build     in use: "+lib) {
		t.Errorf("doctor: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestSetupCommandUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"setup", "--sha256", "abc"}, "kiln: --mirror, --sha256 and --no-check apply to --device cuda and --device tensorrt; the CPU build comes from npm and is pinned\n"},
		{[]string{"setup", "--device", "coreml"}, "kiln: CoreML runs only on macOS; on linux use --device cuda or tensorrt (NVIDIA GPUs, Linux x64), or directml on Windows\n"},
		{[]string{"setup", "--device", "directml"}, "kiln: DirectML runs only on Windows; on linux use --device cuda or tensorrt (NVIDIA GPUs, Linux x64)\n"},
		{[]string{"setup", "--device", "vulkan"}, "kiln: unknown --device \"vulkan\": use cpu, cuda, tensorrt, coreml or directml\n"},
		{[]string{"setup", "--device", "cuda", "--mirror", "ftp://mirror"}, "kiln: --mirror \"ftp://mirror\" is not an http(s) URL: give the base URL under which the mirror serves v" + models.ORTVersion + "/onnxruntime-linux-x64-gpu-" + models.ORTVersion + ".tgz, e.g. https://mirror.example.com/onnxruntime\n"},
	}
	if runtime.GOOS != "linux" {
		t.Skip("the messages name linux")
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := kilnEnv(t, t.TempDir(), []string{"KILN_CACHE_HOME=" + t.TempDir()}, tt.args...)
			if r.code != exitUsage || r.stderr != tt.want {
				t.Errorf("exit %d, stderr:\n%s\nwant exit %d:\n%s", r.code, r.stderr, exitUsage, tt.want)
			}
		})
	}
}
