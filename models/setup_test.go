package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

type tarEntry struct {
	name string
	data []byte
	typ  byte
}

// makeTarball writes a gzip'd tar like the ones npm packs and returns its
// path and npm integrity string.
func makeTarball(t *testing.T, dir string, entries []tarEntry) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: typ}
		if typ != tar.TypeReg {
			hdr.Size = 0
			hdr.Linkname = "elsewhere"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(e.data)
		}
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(dir, "onnxruntime-node-1.24.3.tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	return p, "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestInstallFromTarball(t *testing.T) {
	lib := bytes.Repeat([]byte("pretend ELF library bytes "), 1000)
	const member = "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
	entries := []tarEntry{
		{name: "package/README.md", data: []byte("readme")},
		{name: "package/bin/napi-v6/linux/arm64/libonnxruntime.so.1", data: []byte("arm")},
		{name: member, data: lib},
	}

	t.Run("good", func(t *testing.T) {
		dir := t.TempDir()
		tgz, integrity := makeTarball(t, dir, entries)
		dest := filepath.Join(dir, "cache", "onnxruntime", "1.24.3", "libonnxruntime.so.1")
		pin := ortPin{spec: "x@1", integrity: integrity, member: member, sha256: sha256Hex(lib)}
		if err := installFromTarball(tgz, pin, dest); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(dest)
		if err != nil || !bytes.Equal(got, lib) {
			t.Fatalf("installed file differs (err %v)", err)
		}
		leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".libonnxruntime-*"))
		if len(leftovers) != 0 {
			t.Errorf("temporary files left: %v", leftovers)
		}
	})

	tests := []struct {
		name    string
		entries []tarEntry
		pin     func(p ortPin) ortPin
		want    string
	}{
		{
			name:    "tampered tarball",
			entries: entries,
			pin: func(p ortPin) ortPin {
				p.integrity = "sha512-" + base64.StdEncoding.EncodeToString(make([]byte, 64))
				return p
			},
			want: "failed its integrity check: sha512 is",
		},
		{
			name:    "integrity without sha512",
			entries: entries,
			pin:     func(p ortPin) ortPin { p.integrity = "sha1-abc"; return p },
			want:    `pinned integrity "sha1-abc" has no sha512 digest`,
		},
		{
			name:    "library differs from pin",
			entries: entries,
			pin:     func(p ortPin) ortPin { p.sha256 = sha256Hex([]byte("other")); return p },
			want:    "extracted library has sha256 " + sha256Hex(lib) + ", want " + sha256Hex([]byte("other")) + ": the package does not hold the pinned ONNX Runtime build; nothing was installed",
		},
		{
			name:    "member missing",
			entries: entries[:2],
			want:    "does not contain " + member + ": this is not the expected onnxruntime-node package",
		},
		{
			name:    "member is a symlink",
			entries: []tarEntry{{name: member, typ: tar.TypeSymlink}},
			want:    member + " is not a regular file in the tarball",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tgz, integrity := makeTarball(t, dir, tt.entries)
			pin := ortPin{spec: "x@1", integrity: integrity, member: member, sha256: sha256Hex(lib)}
			if tt.pin != nil {
				pin = tt.pin(pin)
			}
			dest := filepath.Join(dir, "cache", "libonnxruntime.so.1")
			err := installFromTarball(tgz, pin, dest)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Errorf("%s was installed despite the error", dest)
			}
			leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(dest), ".libonnxruntime-*"))
			if len(leftovers) != 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

// fakeNPM writes a stand-in for the npm command that answers `npm pack`
// like npm does (tarball into --pack-destination, JSON on stdout) from a
// prepared tarball, and counts its calls. It lets the whole Setup flow run
// without network access.
func fakeNPM(t *testing.T, tgz, integrity string) (string, string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell script stand-in")
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	script := fmt.Sprintf(`#!/bin/sh
echo "$@" >> %q
dest=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--pack-destination" ]; then dest="$2"; fi
  shift
done
cp %q "$dest/onnxruntime-node-1.24.3.tgz"
printf '[{"id":"onnxruntime-node@1.24.3","filename":"onnxruntime-node-1.24.3.tgz","integrity":"%s"}]\n'
`, calls, tgz, integrity)
	p := filepath.Join(dir, "npm")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p, calls
}

func TestSetupFlowIsIdempotent(t *testing.T) {
	lib := []byte("library bytes for the setup flow test")
	const member = "package/bin/napi-v6/linux/x64/libonnxruntime.so.1"
	dir := t.TempDir()
	tgz, integrity := makeTarball(t, dir, []tarEntry{{name: member, data: lib}})
	npm, calls := fakeNPM(t, tgz, integrity)
	pins := map[string]ortPin{"linux/amd64": {spec: "onnxruntime-node@1.24.3", integrity: integrity, member: member, sha256: sha256Hex(lib)}}
	cache := filepath.Join(dir, "cache")
	opts := SetupOptions{CacheDir: cache, NPM: npm, GOOS: "linux", GOARCH: "amd64"}

	for i := 0; i < 2; i++ {
		p, err := setup(context.Background(), opts, pins)
		if err != nil {
			t.Fatalf("setup #%d: %v", i+1, err)
		}
		if p != LibraryCachePath(cache) {
			t.Errorf("setup returned %s, want %s", p, LibraryCachePath(cache))
		}
	}
	log, _ := os.ReadFile(calls)
	if n := strings.Count(string(log), "\n"); n != 1 {
		t.Errorf("npm ran %d times over two setups, want 1:\n%s", n, log)
	}
	if !strings.Contains(string(log), "pack onnxruntime-node@1.24.3 --json --ignore-scripts --pack-destination") {
		t.Errorf("npm arguments: %s", log)
	}

	// A damaged cached file is replaced.
	os.WriteFile(LibraryCachePath(cache), []byte("damaged"), 0o644)
	if _, err := setup(context.Background(), opts, pins); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(LibraryCachePath(cache)); !bytes.Equal(got, lib) {
		t.Error("damaged library was not reinstalled")
	}

	// The registry reporting a different integrity is refused before
	// anything is extracted.
	npm2, _ := fakeNPM(t, tgz, "sha512-"+base64.StdEncoding.EncodeToString(make([]byte, 64)))
	opts.NPM = npm2
	opts.CacheDir = filepath.Join(dir, "cache2")
	_, err := setup(context.Background(), opts, pins)
	if err == nil || !strings.Contains(err.Error(), "refusing to install a package that differs from the pinned release") {
		t.Errorf("error %v", err)
	}
}

func TestSetupErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		opts SetupOptions
		want string
	}{
		{
			"unsupported platform",
			SetupOptions{CacheDir: dir, GOOS: "darwin", GOARCH: "arm64"},
			"kiln setup installs ONNX Runtime only on linux/amd64 and linux/arm64, not on darwin/arm64: download the official ONNX Runtime 1.24 release for your platform (github.com/microsoft/onnxruntime releases) and set KILN_ORT_LIB or --ort-lib to its shared library",
		},
		{
			"no npm",
			SetupOptions{CacheDir: dir, GOOS: "linux", GOARCH: "amd64", NPM: filepath.Join(dir, "no-such-npm")},
			"kiln setup needs npm to fetch onnxruntime-node@1.24.3 (Microsoft's CPU build of ONNX Runtime), but \"" + filepath.Join(dir, "no-such-npm") + "\" is not on PATH: install Node.js and npm (Debian/Ubuntu: apt-get install npm), or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Setup(context.Background(), tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

// TestSetupWithNPM runs the real `npm pack` against the registry. It
// downloads 86 MB, so it runs only when KILN_TEST_NPM=1.
func TestSetupWithNPM(t *testing.T) {
	if os.Getenv("KILN_TEST_NPM") != "1" {
		t.Skip("set KILN_TEST_NPM=1 to fetch onnxruntime-node with npm")
	}
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm not installed")
	}
	cache := t.TempDir()
	p, err := Setup(context.Background(), SetupOptions{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyFileSHA256(p, setupPins["linux/amd64"].sha256); err != nil {
		t.Fatal(err)
	}
	if err := CheckLibraryFile(p); err != nil {
		t.Fatal(err)
	}
}
