package models

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
)

// DefaultORTReleases is where Microsoft publishes ONNX Runtime's release
// archives: <DefaultORTReleases>/v<version>/<archive>.
const DefaultORTReleases = "https://github.com/microsoft/onnxruntime/releases/download"

// MirrorEnv names the environment variable that replaces
// DefaultORTReleases with a studio's mirror (same layout).
const MirrorEnv = "KILN_ORT_MIRROR"

// gpuBuild describes one official GPU release archive of ONNX Runtime and
// what kiln takes from it.
type gpuBuild struct {
	// archive is the release asset's file name; top the folder all its
	// entries lie in.
	archive, top string
	// sha256 is the archive's pinned digest; "" means kiln knows no
	// trustworthy one, and the user must supply it.
	sha256 string
	// lib is the versioned ONNX Runtime library in top/lib;
	// providers are the provider libraries beside it. All must be present.
	lib       string
	providers []string
	// notices are licence files in top/, copied when present (the MIT
	// licence asks that they travel with the binaries).
	notices []string
}

// gpuBuilds lists the GPU archives kiln setup installs, by GOOS/GOARCH.
// Microsoft publishes no Linux arm64 GPU build.
//
// The digest of onnxruntime-linux-x64-gpu-1.24.3.tgz is not pinned:
// Microsoft's release page lists no checksums, and no package manager
// recipe, lock file or issue thread kiln's authors could find quotes one
// for 1.24.3 (they quote other releases, 1.24.2 and 1.24.4, whose digests
// say nothing about 1.24.3, and one that reused a digest across versions,
// which is why third-party pins are not copied here). Until a digest is
// confirmed, kiln setup installs this archive only with a digest given by
// the user (--sha256) or by the studio's mirror, and prints the one it
// computed otherwise.
var gpuBuilds = map[string]gpuBuild{
	"linux/amd64": {
		archive:   "onnxruntime-linux-x64-gpu-" + ORTVersion + ".tgz",
		top:       "onnxruntime-linux-x64-gpu-" + ORTVersion,
		sha256:    "",
		lib:       "libonnxruntime.so." + ORTVersion,
		providers: []string{"libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"},
		notices:   []string{"LICENSE", "ThirdPartyNotices.txt", "VERSION_NUMBER", "GIT_COMMIT_ID"},
	},
}

// Bounds on what kiln setup downloads and extracts, so that a wrong or
// hostile archive cannot fill the disk: the official archive is about
// 210 MB and unpacks to under 1 GB.
const (
	maxGPUArchive   = 2 << 30 // download
	maxGPUMember    = 2 << 30 // one extracted file
	maxGPUExtracted = 4 << 30 // all extracted files
	maxGPUStream    = 8 << 30 // the whole decompressed tar stream
	maxGPUEntries   = 20000
	maxDigestFile   = 4 << 10
)

// gpuRecordName is the file in the install folder that records what was
// installed from where, so later runs can check it cheaply and truthfully.
const gpuRecordName = "kiln-install.json"

// GPULibraryDir is where SetupGPU installs the GPU build inside kiln's
// cache folder: <cacheDir>/onnxruntime/<ORTVersion>-gpu, beside the CPU
// build's <cacheDir>/onnxruntime/<ORTVersion>. One folder serves both the
// CUDA and the TensorRT provider, as one archive carries both.
func GPULibraryDir(cacheDir string) string {
	return filepath.Join(cacheDir, "onnxruntime", ORTVersion+"-gpu")
}

// GPULibraryCachePath is the library FindLibrary should use for the cuda
// and tensorrt devices once SetupGPU has run:
// <GPULibraryDir>/libonnxruntime.so.1, a link to libonnxruntime.so.<ORTVersion>
// with the provider libraries beside it (ONNX Runtime loads them from the
// folder of the library it was loaded from).
func GPULibraryCachePath(cacheDir string) string {
	return filepath.Join(GPULibraryDir(cacheDir), "libonnxruntime.so.1")
}

// SetupGPUOptions configures SetupGPU. Zero values mean the defaults.
type SetupGPUOptions struct {
	// Device is the provider the build is for: cuda or tensorrt.
	Device string
	// CacheDir is kiln's cache folder; "" means CacheDir(Getenv).
	CacheDir string
	// Getenv reads KILN_ORT_MIRROR and the cache variables; nil means
	// os.Getenv.
	Getenv Getenv
	// Mirror replaces DefaultORTReleases (and $KILN_ORT_MIRROR): a base URL
	// serving <Mirror>/v<version>/<archive>, and optionally
	// <archive>.sha256 beside it.
	Mirror string
	// SHA256 is the archive's digest in hex (a "sha256:" prefix is
	// allowed), confirmed by the user; required while kiln pins none.
	SHA256 string
	// Client downloads; nil means a default client (which follows
	// redirects, as GitHub's release downloads need).
	Client *http.Client
	// GOOS and GOARCH name the platform to install for; "" means this
	// process's.
	GOOS, GOARCH string
	// SkipChecks installs even when the provider's prerequisites are
	// missing (for example while building a container image on a machine
	// without a GPU); the report is still returned.
	SkipChecks bool
	// Prereq says where the prerequisite checks look.
	Prereq PrereqOptions
	// Progress, when set, is called as the download proceeds with the
	// bytes received and the total (-1 when the server does not say).
	Progress func(done, total int64)
	// Log receives progress messages; nil discards them.
	Log *slog.Logger
}

// GPUSetup is what SetupGPU did.
type GPUSetup struct {
	// Dir is the install folder; Library the file to point kiln at.
	Dir, Library string
	// URL is where the archive came from ("" when nothing was downloaded).
	URL string
	// SHA256 is the archive digest the install was verified against, and
	// DigestFrom where that digest came from.
	SHA256, DigestFrom string
	// Installed is false when an intact install was already there.
	Installed bool
	// Prereqs is the prerequisite check after installing.
	Prereqs *PrereqReport
}

// DigestUnknownError is returned by SetupGPU when kiln pins no digest for
// the archive and none was given: the archive was downloaded and hashed,
// but not installed. Kept is the download, which the next run with the
// digest confirmed uses instead of downloading again.
type DigestUnknownError struct {
	Archive, URL, SHA256, Kept, Device string
	Size                               int64
}

func (e *DigestUnknownError) Error() string {
	return fmt.Sprintf("downloaded %s (%d bytes) from %s; its sha256 is %s. kiln pins no digest for this archive (Microsoft publishes none kiln could verify), so it installs it only with a digest you confirm: compare %s with one from a source you trust (your studio's mirror, a copy you verified before) and run `kiln setup --device %s --sha256 %s`; the download is kept in %s, so that run does not fetch it again. A mirror can also serve the digest as %s.sha256",
		e.Archive, e.Size, e.URL, e.SHA256, e.SHA256, e.Device, e.SHA256, filepath.Dir(e.Kept), e.Archive)
}

// SetupOptionError is a bad value in SetupGPUOptions (device, mirror,
// digest): a usage error rather than a failure to install.
type SetupOptionError struct{ Err error }

func (e *SetupOptionError) Error() string { return e.Err.Error() }
func (e *SetupOptionError) Unwrap() error { return e.Err }

// SetupGPU installs Microsoft's official GPU build of ONNX Runtime
// ORTVersion (onnxruntime-linux-x64-gpu-<version>.tgz, with the CUDA and
// TensorRT providers) into GPULibraryDir and returns what it did.
//
// The archive comes from the release downloads or a mirror with the same
// layout, and is installed only when its sha256 matches a digest kiln pins,
// the user confirms (SHA256) or the mirror serves; without any, it is
// downloaded, hashed and kept, and a *DigestUnknownError says the digest.
// Extraction takes only the libraries and licence files, refuses archives
// whose entries or links point outside the release folder, bounds sizes,
// and builds the install in a temporary folder that replaces the old one
// in one rename, so an interrupted run never leaves a half-installed
// runtime. Nothing is loaded.
//
// The provider's prerequisites (driver, CUDA, cuDNN, TensorRT) are checked
// before, as a warning, and after installing; when some are missing the
// install is kept and a *PrereqError says what to install, unless
// SkipChecks is set. Running it again with the install intact downloads
// nothing.
func SetupGPU(ctx context.Context, opts SetupGPUOptions) (*GPUSetup, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	device := strings.ToLower(strings.TrimSpace(opts.Device))
	if device != ProviderCUDA && device != ProviderTensorRT {
		return nil, &SetupOptionError{fmt.Errorf("kiln setup downloads GPU builds for the cuda and tensorrt devices, not %q", opts.Device)}
	}
	goos, goarch := opts.GOOS, opts.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	b, ok := gpuBuilds[goos+"/"+goarch]
	if !ok {
		return nil, noGPUBuildError(device, goos, goarch)
	}
	prereq := opts.Prereq
	if prereq.GOOS == "" {
		prereq.GOOS = goos
	}
	if prereq.GOARCH == "" {
		prereq.GOARCH = goarch
	}
	if prereq.Getenv == nil {
		prereq.Getenv = opts.Getenv
	}

	cacheDir := opts.CacheDir
	if cacheDir == "" {
		var err error
		if cacheDir, err = CacheDir(opts.Getenv); err != nil {
			return nil, err
		}
	}
	base, fromMirror, err := releaseBase(opts.Mirror, opts.Getenv)
	if err != nil {
		return nil, &SetupOptionError{err}
	}
	archiveURL := base + "/v" + ORTVersion + "/" + b.archive
	want, wantFrom, err := expectedDigest(b, opts.SHA256)
	if err != nil {
		return nil, &SetupOptionError{err}
	}

	dest := GPULibraryDir(cacheDir)
	res := &GPUSetup{Dir: dest, Library: GPULibraryCachePath(cacheDir)}

	rec, err := checkGPUInstall(dest, b)
	switch {
	case err == nil && (want == "" || rec.SHA256 == want):
		log.Info("ONNX Runtime GPU build already installed", "path", res.Library, "version", ORTVersion)
		res.SHA256, res.DigestFrom = rec.SHA256, rec.DigestFrom+", when it was installed"
	default:
		// Say early what is missing, as the download can take minutes.
		if before := CheckGPUPrereqs(ctx, device, prereq); !before.OK() {
			level := slog.LevelWarn
			if opts.SkipChecks {
				level = slog.LevelInfo
			}
			log.Log(ctx, level, "the GPU provider's prerequisites are missing; installing ONNX Runtime anyway, then checking again and saying what to install", "device", device, "missing", strings.Join(before.missingNames(), ", "))
		}
		switch {
		case err == nil:
			log.Info("the installed ONNX Runtime GPU build came from an archive with another digest; installing the one given", "path", dest, "installed", rec.SHA256, "given", want)
		case !errors.Is(err, fs.ErrNotExist):
			log.Warn("the installed ONNX Runtime GPU build is damaged; installing it again", "path", dest, "err", err)
		}
		if want == "" && fromMirror {
			if want, err = mirrorDigest(ctx, opts.client(), archiveURL, b.archive); err != nil {
				return nil, err
			}
			if want != "" {
				wantFrom = "the mirror's " + b.archive + ".sha256"
				log.Warn("verifying the archive with the digest the mirror serves; this protects against corrupt downloads, and against tampering only as far as you trust the mirror", "url", archiveURL+".sha256")
			}
		}
		tgz, got, size, err := fetchArchive(ctx, opts, log, filepath.Join(cacheDir, "onnxruntime", ".downloads"), archiveURL, b.archive, want)
		if err != nil {
			return nil, err
		}
		if want == "" {
			return nil, &DigestUnknownError{Archive: b.archive, URL: archiveURL, SHA256: got, Size: size, Kept: tgz, Device: device}
		}
		if got != want {
			os.Remove(tgz)
			return nil, fmt.Errorf("%s from %s has sha256 %s, but %s says %s: the download is corrupt or not Microsoft's archive; nothing was installed, and the download was deleted", b.archive, archiveURL, got, wantFrom, want)
		}
		rec := gpuRecord{Version: ORTVersion, Archive: b.archive, URL: archiveURL, SHA256: got, DigestFrom: wantFrom}
		if err := installGPUArchive(tgz, b, dest, rec); err != nil {
			return nil, err
		}
		os.Remove(tgz)
		os.Remove(filepath.Dir(tgz)) // the download folder, when nothing else is kept there
		log.Info("installed ONNX Runtime GPU build", "path", res.Library, "version", ORTVersion)
		res.URL, res.SHA256, res.DigestFrom, res.Installed = archiveURL, got, wantFrom, true
	}

	var provLibs []string
	for _, p := range b.providers {
		provLibs = append(provLibs, filepath.Join(dest, p))
	}
	res.Prereqs = CheckGPUPrereqs(ctx, device, prereq, provLibs...)
	if !res.Prereqs.OK() && !opts.SkipChecks {
		return res, &PrereqError{Report: res.Prereqs}
	}
	return res, nil
}

func (o SetupGPUOptions) client() *http.Client {
	if o.Client != nil {
		return o.Client
	}
	return http.DefaultClient
}

// noGPUBuildError explains that Microsoft ships no GPU build kiln can
// install for the platform, and what to do there.
func noGPUBuildError(device, goos, goarch string) error {
	switch {
	case goos == "darwin":
		return fmt.Errorf("there is no %s build for macOS: on a Mac, ONNX Runtime accelerates with CoreML, which is part of the standard macOS build (nothing else to fetch); set runtime.device: coreml in kiln.yaml and point KILN_ORT_LIB at libonnxruntime.dylib from onnxruntime-osx-arm64-%s.tgz", device, ORTVersion)
	case goos == "windows":
		return fmt.Errorf("kiln setup does not install GPU builds on Windows yet: for %s, unpack onnxruntime-win-x64-gpu-%s.zip from %s/v%s/ and set KILN_ORT_LIB to its lib\\onnxruntime.dll (the provider DLLs stay beside it); for any DirectX 12 GPU, use runtime.device: directml with onnxruntime.dll and DirectML.dll from the Microsoft.ML.OnnxRuntime.DirectML and Microsoft.AI.DirectML NuGet packages, side by side (see the README)", device, ORTVersion, DefaultORTReleases, ORTVersion)
	case goos == "linux" && goarch == "arm64":
		return fmt.Errorf("Microsoft publishes no Linux arm64 GPU build of ONNX Runtime; on NVIDIA Jetson, build ONNX Runtime %s with CUDA from source (or use a JetPack build) and set KILN_ORT_LIB to its libonnxruntime.so.1", ORTVersion)
	}
	return fmt.Errorf("Microsoft publishes no %s build of ONNX Runtime for %s/%s; kiln setup --device %s works on linux/amd64 only", device, goos, goarch, device)
}

// releaseBase returns the base URL of the release downloads and whether it
// is a mirror.
func releaseBase(flag string, getenv Getenv) (string, bool, error) {
	raw, from := flag, "--mirror"
	if raw == "" {
		raw, from = getenv.get(MirrorEnv), MirrorEnv
	}
	if raw == "" {
		return DefaultORTReleases, false, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false, fmt.Errorf("%s %q is not an http(s) URL: give the base URL under which the mirror serves v%s/%s, e.g. https://mirror.example.com/onnxruntime", from, raw, ORTVersion, gpuBuilds["linux/amd64"].archive)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", false, fmt.Errorf("%s %q has a query or fragment: give only the base URL; kiln appends /v%s/<archive>", from, raw, ORTVersion)
	}
	return strings.TrimRight(raw, "/"), true, nil
}

// expectedDigest returns the digest to verify against and where it comes
// from: kiln's pin, else the user's --sha256; "" when neither exists.
func expectedDigest(b gpuBuild, flag string) (string, string, error) {
	var given string
	if flag != "" {
		var err error
		if given, err = parseSHA256(flag); err != nil {
			return "", "", fmt.Errorf("--sha256 %q: %w", flag, err)
		}
	}
	switch {
	case b.sha256 != "" && given != "" && given != b.sha256:
		return "", "", fmt.Errorf("--sha256 %s differs from the digest kiln pins for %s (%s): check where your digest comes from; kiln installs only the pinned archive", given, b.archive, b.sha256)
	case b.sha256 != "":
		return b.sha256, "kiln's pinned digest", nil
	case given != "":
		return given, "--sha256", nil
	}
	return "", "", nil
}

// parseSHA256 accepts 64 hex digits, optionally prefixed "sha256:" (as
// GitHub shows asset digests).
func parseSHA256(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != sha256.Size*2 {
		return "", fmt.Errorf("a sha256 digest is 64 hex digits, this has %d characters", len(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return "", errors.New("a sha256 digest is 64 hex digits (0-9, a-f)")
	}
	return s, nil
}

// mirrorDigest reads <archiveURL>.sha256 from a mirror: a bare digest or
// sha256sum's "<digest>  <file name>" line. A 404 means the mirror serves
// none ("", nil).
func mirrorDigest(ctx context.Context, client *http.Client, archiveURL, archive string) (string, error) {
	u := archiveURL + ".sha256"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("mirror digest %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch the mirror's digest %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", nil
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch the mirror's digest %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDigestFile+1))
	if err != nil {
		return "", fmt.Errorf("read the mirror's digest %s: %w", u, err)
	}
	if len(body) > maxDigestFile {
		return "", fmt.Errorf("the mirror's digest %s is over %d bytes: it should hold one sha256 line", u, maxDigestFile)
	}
	fields := strings.Fields(string(body))
	if len(fields) == 0 {
		return "", fmt.Errorf("the mirror's digest %s is empty: it should hold the archive's sha256 (the output of sha256sum %s)", u, archive)
	}
	d, err := parseSHA256(fields[0])
	if err != nil {
		return "", fmt.Errorf("the mirror's digest %s: %w", u, err)
	}
	if len(fields) > 1 && strings.TrimPrefix(fields[1], "*") != archive {
		return "", fmt.Errorf("the mirror's digest %s is for %s, not %s", u, fields[1], archive)
	}
	return d, nil
}

// fetchArchive returns a complete local copy of the archive and its
// sha256. A copy kept by an earlier run is used when it matches want (or
// when want is ""); otherwise the archive is downloaded into dir.
func fetchArchive(ctx context.Context, opts SetupGPUOptions, log *slog.Logger, dir, archiveURL, name, want string) (string, string, int64, error) {
	kept := filepath.Join(dir, name)
	if fi, err := os.Stat(kept); err == nil && fi.Mode().IsRegular() {
		sum, err := hashFile(kept, sha256.New())
		if err == nil && (want == "" || hex.EncodeToString(sum) == want) {
			log.Info("using the archive downloaded before", "path", kept)
			return kept, hex.EncodeToString(sum), fi.Size(), nil
		}
		os.Remove(kept)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", 0, fmt.Errorf("create download folder %s: %w", dir, err)
	}
	removeStaleLeftovers(filepath.Join(dir, "."+name+".*.part"), time.Hour)
	log.Info("downloading ONNX Runtime GPU build", "url", archiveURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, archiveURL, nil)
	if err != nil {
		return "", "", 0, fmt.Errorf("download %s: %w", archiveURL, err)
	}
	resp, err := opts.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", "", 0, fmt.Errorf("download %s: %w", archiveURL, ctx.Err())
		}
		return "", "", 0, fmt.Errorf("download %s: %w; check the network, or set --mirror / %s to a mirror you can reach", archiveURL, err, MirrorEnv)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return "", "", 0, fmt.Errorf("download %s: 404 Not Found: nothing is served there; a mirror must serve the release files as <base>/v%s/%s, exactly as %s does", archiveURL, ORTVersion, name, DefaultORTReleases)
	case resp.StatusCode != http.StatusOK:
		return "", "", 0, fmt.Errorf("download %s: %s", archiveURL, resp.Status)
	case resp.ContentLength > maxGPUArchive:
		return "", "", 0, fmt.Errorf("download %s: the server announces %d bytes, more than the %d the GPU archive may have: this is not the ONNX Runtime release archive", archiveURL, resp.ContentLength, int64(maxGPUArchive))
	}
	tmp, err := os.CreateTemp(dir, "."+name+".*.part")
	if err != nil {
		return "", "", 0, fmt.Errorf("create download file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	h := sha256.New()
	var w io.Writer = io.MultiWriter(tmp, h)
	if opts.Progress != nil {
		w = &downloadCounter{w: w, total: resp.ContentLength, f: opts.Progress}
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, maxGPUArchive+1))
	switch {
	case ctx.Err() != nil:
		return "", "", 0, fmt.Errorf("download %s: %w", archiveURL, ctx.Err())
	case err != nil:
		return "", "", 0, fmt.Errorf("download %s stopped after %d of %s bytes: %v; nothing was installed, run kiln setup again", archiveURL, n, contentLengthString(resp.ContentLength), err)
	case n > maxGPUArchive:
		return "", "", 0, fmt.Errorf("download %s: more than %d bytes: this is not the ONNX Runtime release archive", archiveURL, int64(maxGPUArchive))
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return "", "", 0, fmt.Errorf("download %s stopped after %d of %d bytes (truncated); nothing was installed, run kiln setup again", archiveURL, n, resp.ContentLength)
	}
	if err := tmp.Sync(); err != nil {
		return "", "", 0, fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return "", "", 0, fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, kept); err != nil {
		return "", "", 0, fmt.Errorf("keep download %s: %w", kept, err)
	}
	done = true
	return kept, hex.EncodeToString(h.Sum(nil)), n, nil
}

func contentLengthString(n int64) string {
	if n < 0 {
		return "an unknown number of"
	}
	return fmt.Sprint(n)
}

// downloadCounter reports the bytes written through it.
type downloadCounter struct {
	w     io.Writer
	done  int64
	total int64
	f     func(done, total int64)
}

func (p *downloadCounter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.f(p.done, p.total)
	return n, err
}

// gpuRecord is kiln-install.json: what was installed, from where, checked
// against which digest, and the files with their sizes and hashes.
type gpuRecord struct {
	Version    string          `json:"version"`
	Archive    string          `json:"archive"`
	URL        string          `json:"url"`
	SHA256     string          `json:"sha256"`
	DigestFrom string          `json:"digest_from"`
	Files      []gpuRecordFile `json:"files"`
}

type gpuRecordFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// checkGPUInstall verifies an install folder against its record: every
// file present with its size and sha256, and the library link in place.
// A missing folder or record wraps fs.ErrNotExist.
func checkGPUInstall(dir string, b gpuBuild) (*gpuRecord, error) {
	data, err := os.ReadFile(filepath.Join(dir, gpuRecordName))
	if err != nil {
		return nil, err
	}
	var rec gpuRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, gpuRecordName), err)
	}
	if rec.Version != ORTVersion || rec.Archive != b.archive {
		return nil, fmt.Errorf("%s holds %s (ONNX Runtime %s), not %s", dir, rec.Archive, rec.Version, b.archive)
	}
	have := map[string]bool{}
	for _, f := range rec.Files {
		p := filepath.Join(dir, f.Name)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("%s is missing", p)
		}
		if !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return nil, fmt.Errorf("%s is %d bytes, the install recorded %d", p, fi.Size(), f.Size)
		}
		if err := verifyFileSHA256(p, f.SHA256); err != nil {
			return nil, err
		}
		have[f.Name] = true
	}
	for _, n := range append([]string{b.lib}, b.providers...) {
		if !have[n] {
			return nil, fmt.Errorf("%s does not record %s", filepath.Join(dir, gpuRecordName), n)
		}
	}
	link := filepath.Join(dir, "libonnxruntime.so.1")
	if target, err := os.Readlink(link); err != nil || target != b.lib {
		return nil, fmt.Errorf("%s should link to %s", link, b.lib)
	}
	return &rec, nil
}

// installGPUArchive extracts the build's files from tgz into a new folder
// beside dest, records them, and swaps the folder into place.
func installGPUArchive(tgz string, b gpuBuild, dest string, rec gpuRecord) error {
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	// A run killed while extracting leaves its staging folder behind;
	// one untouched for an hour is not another run's.
	removeStaleLeftovers(filepath.Join(parent, "."+filepath.Base(dest)+".staging-*"), time.Hour)
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".staging-")
	if err != nil {
		return fmt.Errorf("create a staging folder in %s: %w", parent, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
		}
	}()
	if err := os.Chmod(staging, 0o755); err != nil {
		return fmt.Errorf("chmod %s: %w", staging, err)
	}
	files, err := extractGPUArchive(tgz, b, staging)
	if err != nil {
		return err
	}
	if err := checkELFLibrary(filepath.Join(staging, b.lib)); err != nil {
		return fmt.Errorf("%s: %w; nothing was installed", b.archive, err)
	}
	if err := os.Symlink(b.lib, filepath.Join(staging, "libonnxruntime.so.1")); err != nil {
		return fmt.Errorf("link libonnxruntime.so.1 in %s: %w", staging, err)
	}
	rec.Files = files
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(staging, gpuRecordName), append(data, '\n'), 0o644); err != nil {
		return err
	}
	syncDir(staging)

	if _, err := os.Lstat(dest); errors.Is(err, fs.ErrNotExist) {
		if err := os.Rename(staging, dest); err != nil {
			return fmt.Errorf("install %s: %w", dest, err)
		}
	} else {
		// Swap the new folder with the old one, so dest is complete at
		// every moment; where that is unsupported, move the old one aside
		// first.
		if err := atomicfile.Exchange(staging, dest); err != nil {
			if !errors.Is(err, atomicfile.ErrExchangeUnsupported) {
				return fmt.Errorf("install %s: %w", dest, err)
			}
			old := staging + ".old"
			if err := os.Rename(dest, old); err != nil {
				return fmt.Errorf("move the old install %s aside: %w", dest, err)
			}
			if err := os.Rename(staging, dest); err != nil {
				os.Rename(old, dest)
				return fmt.Errorf("install %s: %w", dest, err)
			}
			staging = old
		}
		os.RemoveAll(staging) // now the old install
	}
	ok = true
	syncDir(parent)
	return nil
}

// extractGPUArchive checks every entry of the archive and writes the
// build's libraries and notices into dir, returning them with their sizes
// and hashes. Any entry outside the release folder, absolute, or a link
// pointing outside it fails the whole archive, as does a missing library.
func extractGPUArchive(tgz string, b gpuBuild, dir string) ([]gpuRecordFile, error) {
	f, err := os.Open(tgz)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", tgz, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s is not a gzip archive: %w", b.archive, err)
	}
	stream := &boundedReader{r: zr, left: maxGPUStream}
	tr := tar.NewReader(stream)

	wanted := map[string]os.FileMode{} // archive path -> mode
	wanted[b.top+"/lib/"+b.lib] = 0o755
	for _, p := range b.providers {
		wanted[b.top+"/lib/"+p] = 0o755
	}
	for _, n := range b.notices {
		wanted[b.top+"/"+n] = 0o644
	}
	var files []gpuRecordFile
	got := map[string]bool{}
	var total int64
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if stream.exceeded {
				return nil, fmt.Errorf("%s unpacks to more than %d bytes: this is not the ONNX Runtime release archive", b.archive, int64(maxGPUStream))
			}
			return nil, fmt.Errorf("read %s: %w (truncated or corrupt archive)", b.archive, err)
		}
		if entries >= maxGPUEntries {
			return nil, fmt.Errorf("%s has more than %d entries: this is not the ONNX Runtime release archive", b.archive, maxGPUEntries)
		}
		name, err := checkArchiveEntry(hdr, b.top)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; refusing the archive, nothing was installed", b.archive, err)
		}
		mode, want := wanted[name]
		if !want {
			continue
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("%s: %s is not a regular file in the archive: this is not the official layout", b.archive, name)
		}
		if got[name] {
			return nil, fmt.Errorf("%s holds %s twice: refusing an ambiguous archive", b.archive, name)
		}
		if hdr.Size < 0 || hdr.Size > maxGPUMember {
			return nil, fmt.Errorf("%s: %s has implausible size %d", b.archive, name, hdr.Size)
		}
		if total += hdr.Size; total > maxGPUExtracted {
			return nil, fmt.Errorf("%s: the files kiln extracts exceed %d bytes: this is not the ONNX Runtime release archive", b.archive, int64(maxGPUExtracted))
		}
		out := filepath.Join(dir, path.Base(name))
		sum, err := writeMember(out, tr, hdr.Size, mode)
		if err != nil {
			return nil, fmt.Errorf("%s: extract %s: %w", b.archive, name, err)
		}
		got[name] = true
		files = append(files, gpuRecordFile{Name: path.Base(name), Size: hdr.Size, SHA256: sum})
	}
	for _, n := range append([]string{b.lib}, b.providers...) {
		if !got[b.top+"/lib/"+n] {
			return nil, fmt.Errorf("%s has no %s/lib/%s: it is not the official GPU build (it must carry %s and %s); nothing was installed", b.archive, b.top, n, b.lib, strings.Join(b.providers, ", "))
		}
	}
	return files, nil
}

// checkArchiveEntry returns an entry's cleaned name, or an error when it is
// absolute, leaves the release folder top, is a link whose target lies
// outside top, or is a kind of file a release archive does not hold.
func checkArchiveEntry(hdr *tar.Header, top string) (string, error) {
	raw := hdr.Name
	name := strings.TrimPrefix(raw, "./")
	if name == "" || name == "." {
		return ".", nil
	}
	if path.IsAbs(name) || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("entry %q has an absolute or unusual path", raw)
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", fmt.Errorf("entry %q points outside the archive's folder", raw)
	}
	if clean != top && !strings.HasPrefix(clean, top+"/") {
		return "", fmt.Errorf("entry %q lies outside %s/, the folder every entry of the release archive is in", raw, top)
	}
	within := func(p string) bool { return p == top || strings.HasPrefix(p, top+"/") }
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink:
		if path.IsAbs(hdr.Linkname) {
			return "", fmt.Errorf("entry %q is a symlink to the absolute path %q", raw, hdr.Linkname)
		}
		if t := path.Join(path.Dir(clean), hdr.Linkname); !within(t) {
			return "", fmt.Errorf("entry %q is a symlink to %q, outside %s/", raw, hdr.Linkname, top)
		}
	case tar.TypeLink:
		if t := path.Clean(strings.TrimPrefix(hdr.Linkname, "./")); path.IsAbs(hdr.Linkname) || !within(t) {
			return "", fmt.Errorf("entry %q is a hard link to %q, outside %s/", raw, hdr.Linkname, top)
		}
	case tar.TypeXHeader, tar.TypeXGlobalHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
	default:
		return "", fmt.Errorf("entry %q is a device, pipe or other special file (type %q)", raw, hdr.Typeflag)
	}
	return clean, nil
}

// writeMember writes size bytes from r to a new file at p with mode and
// returns their sha256.
func writeMember(p string, r io.Reader, size int64, mode os.FileMode) (string, error) {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(r, size))
	if err == nil && n != size {
		err = fmt.Errorf("got %d of %d bytes (truncated archive)", n, size)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkELFLibrary checks that p begins like an x86-64 ELF shared object,
// the kind the Linux x64 archive holds, without loading it.
func checkELFLibrary(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	var hdr [20]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != "\x7fELF" {
		return fmt.Errorf("%s is not an ELF shared library", filepath.Base(p))
	}
	if hdr[4] != 2 || hdr[5] != 1 || hdr[16] != 3 || hdr[17] != 0 || hdr[18] != 62 || hdr[19] != 0 {
		return fmt.Errorf("%s is not an x86-64 ELF shared library", filepath.Base(p))
	}
	return nil
}

// removeStale removes what matches pattern and was last modified more than
// age ago: what killed runs left behind. Errors are ignored; the leftovers
// only take space.
func removeStaleLeftovers(pattern string, age time.Duration) {
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && time.Since(fi.ModTime()) > age {
			os.RemoveAll(m)
		}
	}
}

// boundedReader reads at most left bytes and remembers whether more were
// available, so the caller can tell a bomb from a truncated stream.
type boundedReader struct {
	r        io.Reader
	left     int64
	exceeded bool
}

func (l *boundedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			l.exceeded = true
			return 0, errors.New("decompressed stream too large")
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}
