package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testTop     = "onnxruntime-linux-x64-gpu-" + ORTVersion
	testArchive = testTop + ".tgz"
	testLib     = "libonnxruntime.so." + ORTVersion
)

// archiveEntry is one entry of a test archive.
type archiveEntry struct {
	name, link string
	typ        byte
	data       []byte
}

// fakeELF is a stand-in shared library: an x86-64 ELF header (which the
// install step checks) followed by filler. It is never loaded.
func fakeELF(filler string) []byte {
	hdr := make([]byte, 64)
	copy(hdr, "\x7fELF")
	hdr[4], hdr[5], hdr[6] = 2, 1, 1 // 64-bit, little endian, version 1
	hdr[16], hdr[18] = 3, 62         // ET_DYN, EM_X86_64
	return append(hdr, bytes.Repeat([]byte(filler), 200)...)
}

// releaseEntries is the layout of Microsoft's onnxruntime-linux-x64-gpu
// archive (tools/ci_build/github/linux/copy_strip_binary.sh and
// extract_and_bundle_gpu_package.sh), with stand-in contents.
func releaseEntries() []archiveEntry {
	d := func(n string) archiveEntry { return archiveEntry{name: n, typ: tar.TypeDir} }
	f := func(n string, b []byte) archiveEntry { return archiveEntry{name: n, data: b} }
	l := func(n, to string) archiveEntry { return archiveEntry{name: n, link: to, typ: tar.TypeSymlink} }
	t := testTop + "/"
	return []archiveEntry{
		d(t),
		f(t+"GIT_COMMIT_ID", []byte("0123456789abcdef\n")),
		f(t+"LICENSE", []byte("MIT License\n")),
		f(t+"Privacy.md", []byte("privacy\n")),
		f(t+"README.md", []byte("readme\n")),
		f(t+"ThirdPartyNotices.txt", []byte("notices\n")),
		f(t+"VERSION_NUMBER", []byte(ORTVersion+"\n")),
		d(t + "include/"),
		f(t+"include/onnxruntime_c_api.h", []byte("/* api */\n")),
		f(t+"include/tensorrt_provider_factory.h", []byte("/* trt */\n")),
		d(t + "lib/"),
		d(t + "lib/cmake/onnxruntime/"),
		f(t+"lib/cmake/onnxruntime/onnxruntimeConfig.cmake", []byte("# cmake\n")),
		d(t + "lib/pkgconfig/"),
		f(t+"lib/pkgconfig/libonnxruntime.pc", []byte("Name: onnxruntime\n")),
		l(t+"lib/libonnxruntime.so", "libonnxruntime.so.1"),
		l(t+"lib/libonnxruntime.so.1", testLib),
		f(t+"lib/"+testLib, fakeELF("core ")),
		f(t+"lib/libonnxruntime_providers_cuda.so", fakeELF("cuda ")),
		f(t+"lib/libonnxruntime_providers_shared.so", fakeELF("shared ")),
		f(t+"lib/libonnxruntime_providers_tensorrt.so", fakeELF("tensorrt ")),
	}
}

// buildArchive packs entries as a .tgz.
func buildArchive(t *testing.T, entries []archiveEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: typ, Mode: 0o644}
		switch typ {
		case tar.TypeReg:
			hdr.Size = int64(len(e.data))
		case tar.TypeDir:
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// mirror is a loopback server with the release download layout.
type mirror struct {
	*httptest.Server
	archive  []byte
	sideFile string // served as <archive>.sha256 when not ""
	// truncate, when > 0, announces the full length but sends only
	// that many bytes and drops the connection.
	truncate int
	gets     atomic.Int32 // archive downloads
}

func newMirror(t *testing.T, archive []byte) *mirror {
	m := &mirror{archive: archive}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ort/v" + ORTVersion + "/" + testArchive:
			m.gets.Add(1)
			w.Header().Set("Content-Length", fmt.Sprint(len(m.archive)))
			if m.truncate > 0 {
				w.Write(m.archive[:m.truncate])
				w.(http.Flusher).Flush()
				if hj, ok := w.(http.Hijacker); ok {
					conn, _, _ := hj.Hijack()
					conn.Close()
				}
				return
			}
			w.Write(m.archive)
		case "/ort/v" + ORTVersion + "/" + testArchive + ".sha256":
			if m.sideFile == "" {
				http.NotFound(w, r)
				return
			}
			fmt.Fprint(w, m.sideFile)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *mirror) base() string { return m.URL + "/ort" }

// gpuMachine lays out a file system root where the dynamic loader finds
// the NVIDIA driver, CUDA 12.4, cuDNN 9.1 and TensorRT 10.0, minus the
// sonames in missing, and returns options that check it.
func gpuMachine(t *testing.T, missing ...string) PrereqOptions {
	t.Helper()
	root := t.TempDir()
	skip := map[string]bool{}
	for _, m := range missing {
		skip[m] = true
	}
	libs := map[string]string{
		"libcuda.so.1":      "libcuda.so.550.54.14",
		"libcudart.so.12":   "libcudart.so.12.4.127",
		"libcublas.so.12":   "libcublas.so.12.4.5.8",
		"libcublasLt.so.12": "libcublasLt.so.12.4.5.8",
		"libcufft.so.11":    "libcufft.so.11.2.1.3",
		"libcurand.so.10":   "libcurand.so.10.3.5.147",
		"libcudnn.so.9":     "libcudnn.so.9.1.0",
		"libnvinfer.so.10":  "libnvinfer.so.10.0.1",
	}
	dir := "/usr/lib/x86_64-linux-gnu"
	var cache strings.Builder
	for soname, real := range libs {
		if skip[soname] {
			continue
		}
		writeTestFile(t, filepath.Join(root, dir, real), "stand-in")
		if err := os.Symlink(real, filepath.Join(root, dir, soname)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cache, "\t%s (libc6,x86-64) => %s/%s\n", soname, dir, soname)
	}
	if !skip["driver"] {
		writeTestFile(t, filepath.Join(root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\nGCC version:  gcc version 12.2.0\n")
	}
	out := fmt.Sprintf("%d libs found in cache `/etc/ld.so.cache'\n%s", len(libs), cache.String())
	return PrereqOptions{
		Root:        root,
		Getenv:      func(string) string { return "" },
		LoaderCache: func(context.Context) ([]byte, error) { return []byte(out), nil },
		GOOS:        "linux",
		GOARCH:      "amd64",
	}
}

func writeTestFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gpuOptions(t *testing.T, m *mirror, cache string) SetupGPUOptions {
	return SetupGPUOptions{
		Device:   ProviderCUDA,
		CacheDir: cache,
		Getenv:   func(string) string { return "" },
		Mirror:   m.base(),
		Client:   m.Client(),
		GOOS:     "linux",
		GOARCH:   "amd64",
		Prereq:   gpuMachine(t),
	}
}

// noLeftovers fails when staging folders or partial downloads remain.
func noLeftovers(t *testing.T, cache string) {
	t.Helper()
	var left []string
	filepath.Walk(cache, func(p string, fi os.FileInfo, err error) error {
		if err == nil && (strings.Contains(fi.Name(), ".staging-") || strings.HasSuffix(fi.Name(), ".part")) {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestSetupGPUInstallsAndIsIdempotent(t *testing.T) {
	archive := buildArchive(t, releaseEntries())
	m := newMirror(t, archive)
	cache := t.TempDir()
	opts := gpuOptions(t, m, cache)
	opts.SHA256 = "sha256:" + strings.ToUpper(digest(archive))

	// What a killed run left an hour ago goes; another run's fresh
	// staging folder stays.
	parent := filepath.Join(cache, "onnxruntime")
	old := filepath.Join(parent, "."+ORTVersion+"-gpu.staging-old")
	fresh := filepath.Join(parent, "."+ORTVersion+"-gpu.staging-fresh")
	writeTestFile(t, filepath.Join(old, testLib), "half")
	writeTestFile(t, filepath.Join(fresh, testLib), "half")
	hourAgo := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, hourAgo, hourAgo)

	res, err := SetupGPU(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); err == nil {
		t.Error("stale staging folder kept")
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Error("another run's staging folder removed")
	}
	os.RemoveAll(fresh)
	if !res.Installed || res.Library != GPULibraryCachePath(cache) || res.SHA256 != digest(archive) || res.DigestFrom != "--sha256" {
		t.Errorf("result %+v", res)
	}
	dir := GPULibraryDir(cache)
	if dir != filepath.Join(cache, "onnxruntime", ORTVersion+"-gpu") {
		t.Errorf("install folder %s", dir)
	}
	for _, e := range releaseEntries() {
		if !strings.HasPrefix(e.name, testTop+"/lib/lib") || e.typ == tar.TypeSymlink {
			continue
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.Base(e.name)))
		if err != nil || !bytes.Equal(got, e.data) {
			t.Errorf("%s not installed intact (%v)", e.name, err)
		}
	}
	if target, err := os.Readlink(res.Library); err != nil || target != testLib {
		t.Errorf("libonnxruntime.so.1 -> %q (%v), want %s", target, err, testLib)
	}
	if err := CheckLibraryFile(res.Library); err != nil && !strings.Contains(err.Error(), "built for") {
		t.Errorf("installed library fails CheckLibraryFile: %v", err)
	}
	if v := versionFromFileName(res.Library); v != ORTVersion {
		t.Errorf("FindLibrary would read version %q from the link, want %s", v, ORTVersion)
	}
	for _, n := range []string{"LICENSE", "ThirdPartyNotices.txt"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("notice %s not installed: %v", n, err)
		}
	}
	for _, n := range []string{"README.md", "onnxruntime_c_api.h", "libonnxruntime.pc"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			t.Errorf("%s was installed; kiln takes only the libraries and licence files", n)
		}
	}
	var rec gpuRecord
	if data, err := os.ReadFile(filepath.Join(dir, gpuRecordName)); err != nil || json.Unmarshal(data, &rec) != nil {
		t.Fatalf("record: %v", err)
	}
	if rec.SHA256 != digest(archive) || rec.URL != m.base()+"/v"+ORTVersion+"/"+testArchive || len(rec.Files) != 8 {
		t.Errorf("record %+v", rec)
	}
	if !res.Prereqs.OK() {
		t.Errorf("prerequisites: %v", res.Prereqs.Problems())
	}
	noLeftovers(t, cache)
	if _, err := os.Stat(filepath.Join(cache, "onnxruntime", ".downloads", testArchive)); err == nil {
		t.Error("the download was kept after installing")
	}

	// Again: nothing is downloaded, with or without the digest.
	for _, sha := range []string{opts.SHA256, ""} {
		o := opts
		o.SHA256 = sha
		res, err := SetupGPU(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Installed || m.gets.Load() != 1 {
			t.Errorf("second run installed=%v after %d downloads", res.Installed, m.gets.Load())
		}
	}

	// A damaged library is installed again, replacing the folder whole.
	os.WriteFile(filepath.Join(dir, "libonnxruntime_providers_cuda.so"), []byte("damaged"), 0o755)
	res, err = SetupGPU(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Installed || m.gets.Load() != 2 {
		t.Errorf("damaged install: installed=%v, downloads %d", res.Installed, m.gets.Load())
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "libonnxruntime_providers_cuda.so")); !bytes.Equal(got, fakeELF("cuda ")) {
		t.Error("damaged provider library not replaced")
	}
	noLeftovers(t, cache)
}

func TestSetupGPUDigestSources(t *testing.T) {
	archive := buildArchive(t, releaseEntries())
	sum := digest(archive)

	t.Run("unknown digest is printed and the download kept", func(t *testing.T) {
		m := newMirror(t, archive)
		cache := t.TempDir()
		opts := gpuOptions(t, m, cache)
		_, err := SetupGPU(context.Background(), opts)
		var du *DigestUnknownError
		if !errors.As(err, &du) {
			t.Fatalf("error %v, want a DigestUnknownError", err)
		}
		kept := filepath.Join(cache, "onnxruntime", ".downloads", testArchive)
		want := fmt.Sprintf("downloaded %s (%d bytes) from %s/v%s/%s; its sha256 is %s. kiln pins no digest for this archive (Microsoft publishes none kiln could verify), so it installs it only with a digest you confirm: compare %s with one from a source you trust (your studio's mirror, a copy you verified before) and run `kiln setup --device cuda --sha256 %s`; the download is kept in %s, so that run does not fetch it again. A mirror can also serve the digest as %s.sha256",
			testArchive, len(archive), m.base(), ORTVersion, testArchive, sum, sum, sum, filepath.Dir(kept), testArchive)
		if err.Error() != want {
			t.Errorf("message:\n%s\nwant:\n%s", err, want)
		}
		if _, err := os.Stat(GPULibraryDir(cache)); err == nil {
			t.Error("installed without a digest")
		}
		// The confirmed digest installs from the kept download.
		opts.SHA256 = sum
		res, err := SetupGPU(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Installed || m.gets.Load() != 1 {
			t.Errorf("installed=%v after %d downloads, want 1", res.Installed, m.gets.Load())
		}
	})

	t.Run("the mirror's side file", func(t *testing.T) {
		m := newMirror(t, archive)
		m.sideFile = sum + "  " + testArchive + "\n"
		res, err := SetupGPU(context.Background(), gpuOptions(t, m, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		if res.DigestFrom != "the mirror's "+testArchive+".sha256" || res.SHA256 != sum {
			t.Errorf("digest %s from %s", res.SHA256, res.DigestFrom)
		}
	})

	t.Run("KILN_ORT_MIRROR", func(t *testing.T) {
		m := newMirror(t, archive)
		m.sideFile = sum
		opts := gpuOptions(t, m, t.TempDir())
		opts.Mirror = ""
		opts.Getenv = func(k string) string {
			if k == MirrorEnv {
				return m.base() + "/"
			}
			return ""
		}
		if _, err := SetupGPU(context.Background(), opts); err != nil {
			t.Fatal(err)
		}
		if m.gets.Load() != 1 {
			t.Errorf("%d downloads from the mirror named by %s", m.gets.Load(), MirrorEnv)
		}
	})
}

func TestSetupGPUFailures(t *testing.T) {
	good := buildArchive(t, releaseEntries())
	without := func(name string) []archiveEntry {
		var out []archiveEntry
		for _, e := range releaseEntries() {
			if e.name != name {
				out = append(out, e)
			}
		}
		return out
	}
	with := func(extra ...archiveEntry) []archiveEntry { return append(releaseEntries(), extra...) }
	wrong := digest([]byte("something else"))

	tests := []struct {
		name    string
		archive []byte
		sha     string // "" means the archive's digest
		setup   func(m *mirror, o *SetupGPUOptions)
		want    string // the whole message; {url} is the archive's URL, {mirror} the server's
	}{
		{
			name: "checksum mismatch",
			sha:  wrong,
			want: testArchive + " from {url} has sha256 " + digest(good) + ", but --sha256 says " + wrong + ": the download is corrupt or not Microsoft's archive; nothing was installed, and the download was deleted",
		},
		{
			name:  "truncated download",
			setup: func(m *mirror, o *SetupGPUOptions) { m.truncate = 100 },
			want:  fmt.Sprintf("download {url} stopped after 100 of %d bytes: unexpected EOF; nothing was installed, run kiln setup again", len(good)),
		},
		{
			name:  "404 from the mirror",
			setup: func(m *mirror, o *SetupGPUOptions) { o.Mirror = m.URL + "/elsewhere" },
			want:  "download {mirror}/elsewhere/v" + ORTVersion + "/" + testArchive + ": 404 Not Found: nothing is served there; a mirror must serve the release files as <base>/v" + ORTVersion + "/" + testArchive + ", exactly as " + DefaultORTReleases + " does",
		},
		{
			name:    "entry escaping the folder",
			archive: buildArchive(t, with(archiveEntry{name: testTop + "/../../evil.so", data: []byte("x")})),
			want:    testArchive + ": entry \"" + testTop + "/../../evil.so\" points outside the archive's folder; refusing the archive, nothing was installed",
		},
		{
			name:    "absolute entry",
			archive: buildArchive(t, with(archiveEntry{name: "/tmp/evil.so", data: []byte("x")})),
			want:    testArchive + ": entry \"/tmp/evil.so\" has an absolute or unusual path; refusing the archive, nothing was installed",
		},
		{
			name:    "symlink pointing outside",
			archive: buildArchive(t, with(archiveEntry{name: testTop + "/lib/libcudnn.so.9", link: "../../../../usr/lib/libevil.so", typ: tar.TypeSymlink})),
			want:    testArchive + ": entry \"" + testTop + "/lib/libcudnn.so.9\" is a symlink to \"../../../../usr/lib/libevil.so\", outside " + testTop + "/; refusing the archive, nothing was installed",
		},
		{
			name:    "absolute symlink",
			archive: buildArchive(t, with(archiveEntry{name: testTop + "/lib/x", link: "/etc/passwd", typ: tar.TypeSymlink})),
			want:    testArchive + ": entry \"" + testTop + "/lib/x\" is a symlink to the absolute path \"/etc/passwd\"; refusing the archive, nothing was installed",
		},
		{
			name:    "hard link pointing outside",
			archive: buildArchive(t, with(archiveEntry{name: testTop + "/lib/y", link: "etc/shadow", typ: tar.TypeLink})),
			want:    testArchive + ": entry \"" + testTop + "/lib/y\" is a hard link to \"etc/shadow\", outside " + testTop + "/; refusing the archive, nothing was installed",
		},
		{
			name:    "missing library",
			archive: buildArchive(t, without(testTop+"/lib/libonnxruntime_providers_tensorrt.so")),
			want:    testArchive + " has no " + testTop + "/lib/libonnxruntime_providers_tensorrt.so: it is not the official GPU build (it must carry " + testLib + " and libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so, libonnxruntime_providers_tensorrt.so); nothing was installed",
		},
		{
			name: "library replaced by a link",
			archive: buildArchive(t, append(without(testTop+"/lib/libonnxruntime_providers_cuda.so"),
				archiveEntry{name: testTop + "/lib/libonnxruntime_providers_cuda.so", link: "libonnxruntime_providers_shared.so", typ: tar.TypeSymlink})),
			want: testArchive + ": " + testTop + "/lib/libonnxruntime_providers_cuda.so is not a regular file in the archive: this is not the official layout",
		},
		{
			name:    "not a gzip archive",
			archive: []byte("<html>rate limited</html>"),
			want:    testArchive + " is not a gzip archive: gzip: invalid header",
		},
		{
			name: "not an x86-64 library",
			archive: buildArchive(t, append(without(testTop+"/lib/"+testLib),
				archiveEntry{name: testTop + "/lib/" + testLib, data: []byte("#!/bin/sh\n")})),
			want: testArchive + ": " + testLib + " is not an ELF shared library; nothing was installed",
		},
		{
			name:  "bad --sha256",
			sha:   "abc",
			want:  "--sha256 \"abc\": a sha256 digest is 64 hex digits, this has 3 characters",
			setup: func(m *mirror, o *SetupGPUOptions) {},
		},
		{
			name:  "mirror is not a URL",
			setup: func(m *mirror, o *SetupGPUOptions) { o.Mirror = "mirror.example.com/ort" },
			want:  "--mirror \"mirror.example.com/ort\" is not an http(s) URL: give the base URL under which the mirror serves v" + ORTVersion + "/" + testArchive + ", e.g. https://mirror.example.com/onnxruntime",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			archive := tt.archive
			if archive == nil {
				archive = good
			}
			m := newMirror(t, archive)
			cache := t.TempDir()
			opts := gpuOptions(t, m, cache)
			opts.SHA256 = tt.sha
			if opts.SHA256 == "" {
				opts.SHA256 = digest(archive)
			}
			if tt.setup != nil {
				tt.setup(m, &opts)
			}
			_, err := SetupGPU(context.Background(), opts)
			want := strings.ReplaceAll(tt.want, "{url}", m.base()+"/v"+ORTVersion+"/"+testArchive)
			want = strings.ReplaceAll(want, "{mirror}", m.URL)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, want)
			}
			if _, err := os.Stat(GPULibraryDir(cache)); err == nil {
				t.Error("something was installed")
			}
			noLeftovers(t, cache)
			filepath.Walk(filepath.Dir(cache), func(p string, fi os.FileInfo, err error) error {
				if err == nil && strings.HasPrefix(fi.Name(), "evil") {
					t.Errorf("an escaping entry was written: %s", p)
				}
				return nil
			})
		})
	}
}

func TestSetupGPUPrereqsMissing(t *testing.T) {
	archive := buildArchive(t, releaseEntries())
	m := newMirror(t, archive)
	cache := t.TempDir()
	opts := gpuOptions(t, m, cache)
	opts.SHA256 = digest(archive)
	opts.Prereq = gpuMachine(t, "libcudnn.so.9", "driver", "libcuda.so.1")

	res, err := SetupGPU(context.Background(), opts)
	var pe *PrereqError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a PrereqError", err)
	}
	want := "the CUDA provider cannot start on this machine: the ONNX Runtime " + ORTVersion + " GPU build needs the NVIDIA driver (525.60.13 or newer), CUDA 12.x and cuDNN 9.x, and this is missing:\n" +
		"  - NVIDIA driver: none found (no /proc/driver/nvidia/version, so no NVIDIA kernel module is loaded, and the dynamic loader finds no libcuda.so.1); install the NVIDIA driver 525.60.13 or newer (Ubuntu: sudo ubuntu-drivers install; NVIDIA's repository: the cuda-drivers package) and reboot; in a container, start it with the NVIDIA Container Toolkit (docker run --gpus all)\n" +
		"  - libcudnn.so.9 (cuDNN, cuDNN 9.x): not found by the dynamic loader\n" +
		"to install the missing libraries: sudo apt-get install libcudnn9-cuda-12 (or dnf install; the packages come from NVIDIA's CUDA repository, developer.download.nvidia.com/compute/cuda/repos)\n" +
		"the dynamic loader looked in: LD_LIBRARY_PATH (not set), the ldconfig cache, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib64, /lib, /usr/lib"
	if err.Error() != want {
		t.Errorf("message:\n%s\nwant:\n%s", err, want)
	}
	// The install is kept: installing CUDA later needs no new download.
	if res == nil || !res.Installed {
		t.Fatalf("result %+v", res)
	}
	if _, err := os.Stat(res.Library); err != nil {
		t.Errorf("install not kept: %v", err)
	}

	// --no-check (SkipChecks) succeeds and still reports.
	opts.SkipChecks = true
	res, err = SetupGPU(context.Background(), opts)
	if err != nil || res.Prereqs.OK() {
		t.Errorf("SkipChecks: err %v, report ok %v", err, res.Prereqs.OK())
	}
}

func TestSetupGPUPlatforms(t *testing.T) {
	tests := []struct {
		device, goos, goarch, want string
	}{
		{"cpu", "linux", "amd64", `kiln setup downloads GPU builds for the cuda and tensorrt devices, not "cpu"`},
		{"cuda", "darwin", "arm64", "there is no cuda build for macOS: on a Mac, ONNX Runtime accelerates with CoreML, which is part of the standard macOS build (nothing else to fetch); set runtime.device: coreml in kiln.yaml and point KILN_ORT_LIB at libonnxruntime.dylib from onnxruntime-osx-arm64-" + ORTVersion + ".tgz"},
		{"tensorrt", "linux", "arm64", "Microsoft publishes no Linux arm64 GPU build of ONNX Runtime; on NVIDIA Jetson, build ONNX Runtime " + ORTVersion + " with CUDA from source (or use a JetPack build) and set KILN_ORT_LIB to its libonnxruntime.so.1"},
		{"cuda", "windows", "amd64", "kiln setup does not install GPU builds on Windows yet: for cuda, unpack onnxruntime-win-x64-gpu-" + ORTVersion + ".zip from " + DefaultORTReleases + "/v" + ORTVersion + "/ and set KILN_ORT_LIB to its lib\\onnxruntime.dll (the provider DLLs stay beside it); for any DirectX 12 GPU, use runtime.device: directml with onnxruntime.dll and DirectML.dll from the Microsoft.ML.OnnxRuntime.DirectML and Microsoft.AI.DirectML NuGet packages, side by side (see the README)"},
	}
	for _, tt := range tests {
		t.Run(tt.device+"/"+tt.goos+"/"+tt.goarch, func(t *testing.T) {
			_, err := SetupGPU(context.Background(), SetupGPUOptions{Device: tt.device, GOOS: tt.goos, GOARCH: tt.goarch, CacheDir: t.TempDir()})
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}
