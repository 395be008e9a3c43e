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
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// ortPin pins one file of one npm package: the package's integrity (as the
// npm registry publishes it) and the sha256 of the member kiln extracts.
type ortPin struct {
	spec      string // npm package spec
	integrity string // "sha512-<base64>" of the .tgz
	member    string // path inside the tarball
	sha256    string // hex sha256 of the member
}

// onnxruntime-node 1.24.3 carries Microsoft's official CPU builds of ONNX
// Runtime 1.24.3. Both members come from the same tarball, so they share
// its integrity string.
const ortNodeIntegrity = "sha512-JH7+czbc8ALA819vlTgcV+Q214/+VjGeBHDjX81+ZCD0PCVCIFGFNtT0V4sXG/1JXypKPgScQcB3ij/hk3YnTg=="

// setupPins maps GOOS/GOARCH to the library Setup installs there.
var setupPins = map[string]ortPin{
	"linux/amd64": {
		spec:      "onnxruntime-node@" + ORTVersion,
		integrity: ortNodeIntegrity,
		member:    "package/bin/napi-v6/linux/x64/libonnxruntime.so.1",
		sha256:    "92ba8e44d31b80a34f5e805076a044122c3be1fffe0d88ed790de7267b0b2682",
	},
	"linux/arm64": {
		spec:      "onnxruntime-node@" + ORTVersion,
		integrity: ortNodeIntegrity,
		member:    "package/bin/napi-v6/linux/arm64/libonnxruntime.so.1",
		sha256:    "33032cb5b91c12edbf028d7c69fa40a31848d66c0095448758af237d5e0b07db",
	},
}

// maxLibrarySize bounds the member Setup extracts, so a bad tarball cannot
// fill the disk.
const maxLibrarySize = 1 << 30

// SetupOptions configures Setup. Zero values mean the defaults.
type SetupOptions struct {
	// CacheDir is kiln's cache folder; "" means CacheDir(Getenv).
	CacheDir string
	// Getenv reads the cache variables; nil means os.Getenv.
	Getenv Getenv
	// NPM is the npm command; "" means "npm" from PATH.
	NPM string
	// GOOS and GOARCH name the platform to install for; "" means this
	// process's.
	GOOS, GOARCH string
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

// Setup installs the ONNX Runtime CPU library into kiln's cache folder and
// returns its path. It is idempotent: when the cached file is present and
// its sha256 matches the pinned value it does nothing.
//
// Otherwise it runs `npm pack onnxruntime-node@1.24.3` in a temporary
// folder (pack downloads the tarball and runs no install scripts), checks
// the tarball against the pinned sha512 integrity by hashing it, extracts
// only the library file for this platform, checks that file's sha256, and
// moves it into place atomically, so an interrupted Setup never leaves a
// half-written library behind.
func Setup(ctx context.Context, opts SetupOptions) (string, error) {
	return setup(ctx, opts, setupPins)
}

func setup(ctx context.Context, opts SetupOptions, pins map[string]ortPin) (string, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	goos, goarch := opts.GOOS, opts.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	pin, ok := pins[goos+"/"+goarch]
	if !ok {
		return "", fmt.Errorf("kiln setup installs ONNX Runtime only on linux/amd64 and linux/arm64, not on %s/%s: download the official ONNX Runtime %s release for your platform (github.com/microsoft/onnxruntime releases) and set KILN_ORT_LIB or --ort-lib to its shared library", goos, goarch, "1.24")
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = CacheDir(opts.Getenv); err != nil {
			return "", err
		}
	}
	dest := LibraryCachePath(cacheDir)
	if err := verifyFileSHA256(dest, pin.sha256); err == nil {
		log.Info("ONNX Runtime already installed", "path", dest, "version", ORTVersion)
		return dest, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		log.Warn("cached ONNX Runtime library is damaged; installing it again", "path", dest, "err", err)
	}

	npm := opts.NPM
	if npm == "" {
		npm = "npm"
	}
	npmPath, err := exec.LookPath(npm)
	if err != nil {
		return "", fmt.Errorf("kiln setup needs npm to fetch %s (Microsoft's CPU build of ONNX Runtime), but %q is not on PATH: install Node.js and npm (Debian/Ubuntu: apt-get install npm), or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24", pin.spec, npm)
	}
	tmp, err := os.MkdirTemp("", "kiln-setup-")
	if err != nil {
		return "", fmt.Errorf("kiln setup: create temporary folder: %w", err)
	}
	defer os.RemoveAll(tmp)

	log.Info("fetching ONNX Runtime with npm pack", "package", pin.spec)
	tgz, err := npmPack(ctx, npmPath, pin, tmp)
	if err != nil {
		return "", err
	}
	if err := installFromTarball(tgz, pin, dest); err != nil {
		return "", err
	}
	log.Info("installed ONNX Runtime", "path", dest, "version", ORTVersion)
	return dest, nil
}

// npmPack runs `npm pack SPEC --json` in dir and returns the tarball's path.
func npmPack(ctx context.Context, npm string, pin ortPin, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, npm, "pack", pin.spec, "--json", "--ignore-scripts", "--pack-destination", dir)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("npm pack %s: %w", pin.spec, ctx.Err())
		}
		return "", fmt.Errorf("npm pack %s failed (%v): %s; check that npm can reach its registry (npm config get registry), or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24", pin.spec, err, lastLines(stderr.String(), 5))
	}
	var packed []struct {
		Filename  string `json:"filename"`
		Integrity string `json:"integrity"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &packed); err != nil || len(packed) != 1 || packed[0].Filename == "" {
		return "", fmt.Errorf("npm pack %s: unexpected output (want a JSON list with one tarball): %s", pin.spec, lastLines(stdout.String(), 5))
	}
	if packed[0].Integrity != pin.integrity {
		return "", fmt.Errorf("npm pack %s: the registry reports integrity %s, but kiln pins %s: refusing to install a package that differs from the pinned release", pin.spec, packed[0].Integrity, pin.integrity)
	}
	// npm writes the tarball into --pack-destination; the name has no path.
	return filepath.Join(dir, filepath.Base(packed[0].Filename)), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// installFromTarball verifies tgz against pin.integrity, extracts
// pin.member, verifies its sha256 and renames it to dest.
func installFromTarball(tgz string, pin ortPin, dest string) error {
	if err := verifyIntegrity(tgz, pin.integrity); err != nil {
		return err
	}
	f, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("open %s: %w", tgz, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s does not contain %s: this is not the expected onnxruntime-node package", tgz, pin.member)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", tgz, err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != pin.member {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return fmt.Errorf("%s: %s is not a regular file in the tarball", tgz, pin.member)
		}
		if hdr.Size <= 0 || hdr.Size > maxLibrarySize {
			return fmt.Errorf("%s: %s has implausible size %d", tgz, pin.member, hdr.Size)
		}
		return writeVerified(dest, io.LimitReader(tr, hdr.Size), hdr.Size, pin.sha256)
	}
}

// verifyIntegrity hashes path and compares it with an npm integrity string
// ("sha512-<base64>"; other algorithms in the string are ignored, and at
// least one sha512 entry is required).
func verifyIntegrity(path, integrity string) error {
	var want []byte
	for _, field := range strings.Fields(integrity) {
		alg, b64, ok := strings.Cut(field, "-")
		if !ok || alg != "sha512" {
			continue
		}
		// Integrity strings may carry "?options" after the digest.
		b64, _, _ = strings.Cut(b64, "?")
		d, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(d) != sha512.Size {
			return fmt.Errorf("pinned integrity %q is not a valid sha512 digest", integrity)
		}
		want = d
	}
	if want == nil {
		return fmt.Errorf("pinned integrity %q has no sha512 digest", integrity)
	}
	got, err := hashFile(path, sha512.New())
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s failed its integrity check: sha512 is %s, want %s (download corrupted or tampered with); run `kiln setup` again", path, base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(want))
	}
	return nil
}

func hashFile(path string, h hash.Hash) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

// verifyFileSHA256 returns nil when path exists and has the given sha256;
// a missing file wraps os.ErrNotExist.
func verifyFileSHA256(path, wantHex string) error {
	got, err := hashFile(path, sha256.New())
	if err != nil {
		return err
	}
	if hex.EncodeToString(got) != wantHex {
		return fmt.Errorf("%s has sha256 %x, want %s", path, got, wantHex)
	}
	return nil
}

// writeVerified copies size bytes from r into dest through a temporary file
// in dest's folder, checks their sha256 and renames the file into place.
// Either the old dest or the complete, verified new one exists at every
// moment.
func writeVerified(dest string, r io.Reader, size int64, wantHex string) error {
	dir := filepath.Dir(dest)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".libonnxruntime-*.tmp")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmpName, err)
	}
	if n != size {
		return fmt.Errorf("write %s: got %d bytes, want %d (truncated tarball)", dest, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != wantHex {
		return fmt.Errorf("extracted library has sha256 %s, want %s: the package does not hold the pinned ONNX Runtime build; nothing was installed", got, wantHex)
	}
	if err := tmp.Chmod(0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, dest); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	ok = true
	syncDir(dir)
	return nil
}

// syncDir flushes a folder's entries so a rename survives a crash. Errors
// are ignored: some file systems do not support syncing folders.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
