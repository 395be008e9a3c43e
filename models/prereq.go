package models

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// What the official ONNX Runtime 1.24 GPU build for Linux x64
// (onnxruntime-linux-x64-gpu-1.24.x.tgz) runs on: CUDA 12.x and cuDNN 9.x
// (the CUDA 13 build is a separate archive, onnxruntime-linux-x64-gpu_cuda13),
// TensorRT 10 for the TensorRT provider, and an NVIDIA driver new enough for
// CUDA 12 (525.60.13 is the oldest Linux driver CUDA 12 and cuDNN 9 support).
const (
	wantCUDA     = "12.x"
	wantCUDNN    = "9.x"
	wantTensorRT = "10.x"
	// minDriver is the oldest Linux driver that runs CUDA 12.
	minDriver = "525.60.13"
)

// gpuRequirement is one shared library a GPU provider of the pinned GPU
// build asks the dynamic loader for.
type gpuRequirement struct {
	soname    string // what the loader is asked for, e.g. libcudart.so.12
	component string // what it is, for messages
	want      string // the release line this build needs
	pkg       string // the package of NVIDIA's apt/dnf repository holding it; %s is the CUDA minor ("12-9")
}

// cudaRequirements are the libraries libonnxruntime_providers_cuda.so of the
// 1.24 GPU build loads: the CUDA 12 runtime, cuBLAS, cuBLASLt, cuFFT 11 and
// cuRAND 10 (the versions CUDA 12 ships) and cuDNN 9.
var cudaRequirements = []gpuRequirement{
	{"libcudart.so.12", "CUDA runtime", "CUDA " + wantCUDA, "cuda-cudart-%s"},
	{"libcublas.so.12", "cuBLAS", "CUDA " + wantCUDA, "libcublas-%s"},
	{"libcublasLt.so.12", "cuBLASLt", "CUDA " + wantCUDA, "libcublas-%s"},
	{"libcufft.so.11", "cuFFT", "CUDA " + wantCUDA, "libcufft-%s"},
	{"libcurand.so.10", "cuRAND", "CUDA " + wantCUDA, "libcurand-%s"},
	{"libcudnn.so.9", "cuDNN", "cuDNN " + wantCUDNN, "libcudnn9-cuda-12"},
}

// tensorRTRequirements come on top of cudaRequirements for the TensorRT
// provider.
var tensorRTRequirements = []gpuRequirement{
	{"libnvinfer.so.10", "TensorRT", "TensorRT " + wantTensorRT, "libnvinfer10"},
}

// PrereqOptions says where CheckGPUPrereqs looks. Zero values mean this
// machine; tests set them to stay independent of it.
type PrereqOptions struct {
	// Root is prepended to every absolute path read (/proc, the library
	// folders, the paths the loader cache names); "" means "/". Symlinks
	// are resolved as the host resolves them, so test trees use relative
	// links.
	Root string
	// Getenv reads LD_LIBRARY_PATH; nil means os.Getenv.
	Getenv Getenv
	// LoaderCache returns the output of `ldconfig -p`; nil runs ldconfig.
	// An error means the cache could not be read, which is reported but
	// does not stop the check.
	LoaderCache func(ctx context.Context) ([]byte, error)
	// GOOS and GOARCH name the platform checked; "" means this process's.
	GOOS, GOARCH string
}

func (o PrereqOptions) path(p string) string {
	if o.Root == "" || o.Root == "/" {
		return p
	}
	return filepath.Join(o.Root, p)
}

// DriverStatus is what CheckGPUPrereqs found of the NVIDIA driver.
type DriverStatus struct {
	// Found reports that the kernel module runs and the loader finds the
	// driver's CUDA library.
	Found bool `json:"found"`
	// Version is the driver release, e.g. "550.54.14" ("" when unknown).
	Version string `json:"version,omitempty"`
	// KernelModule reports that /proc/driver/nvidia/version exists.
	KernelModule bool `json:"kernel_module"`
	// LibCUDA is the path of libcuda.so.1 the loader finds ("" when none).
	LibCUDA string `json:"libcuda,omitempty"`
	// Problem says what is wrong and what to do; "" when nothing is.
	Problem string `json:"problem,omitempty"`
}

// LibraryStatus is what CheckGPUPrereqs found of one library.
type LibraryStatus struct {
	// Name is the soname the provider asks for (libcudart.so.12).
	Name string `json:"name"`
	// Component is what the library is (CUDA runtime, cuDNN).
	Component string `json:"component"`
	// Want is the release line the build needs (CUDA 12.x).
	Want string `json:"want"`
	// Path is where the dynamic loader finds it ("" when it does not).
	Path string `json:"path,omitempty"`
	// Version is the library's full version from its file name
	// (12.4.127), or its soname's major version when the file name carries
	// no more.
	Version string `json:"version,omitempty"`
	// Via is where the loader found it: LD_LIBRARY_PATH, the ldconfig
	// cache, or a standard folder.
	Via string `json:"via,omitempty"`
	// Problem says what is wrong and what to do; "" when nothing is.
	Problem string `json:"problem,omitempty"`
	// Package is the package that provides it (NVIDIA's apt/dnf
	// repository); set when it is missing.
	Package string `json:"package,omitempty"`
}

// PrereqReport is the verdict of CheckGPUPrereqs.
type PrereqReport struct {
	// Device is the provider checked: cuda or tensorrt.
	Device string `json:"device"`
	// Checked is false where kiln cannot check (not Linux); Note says why.
	Checked   bool            `json:"checked"`
	Note      string          `json:"note,omitempty"`
	Driver    DriverStatus    `json:"driver"`
	Libraries []LibraryStatus `json:"libraries"`
	// Looked lists where the dynamic loader searches, for messages.
	Looked []string `json:"looked,omitempty"`
}

// OK reports whether everything the provider needs was found.
func (r *PrereqReport) OK() bool {
	if !r.Checked {
		return false
	}
	if r.Driver.Problem != "" {
		return false
	}
	for _, l := range r.Libraries {
		if l.Problem != "" {
			return false
		}
	}
	return true
}

// Problems lists one line per missing or unusable prerequisite.
func (r *PrereqReport) Problems() []string {
	var out []string
	if r.Driver.Problem != "" {
		out = append(out, "NVIDIA driver: "+r.Driver.Problem)
	}
	for _, l := range r.Libraries {
		if l.Problem != "" {
			out = append(out, fmt.Sprintf("%s (%s, %s): %s", l.Name, l.Component, l.Want, l.Problem))
		}
	}
	return out
}

// missingNames names what is missing, briefly: "NVIDIA driver" and the
// sonames.
func (r *PrereqReport) missingNames() []string {
	var out []string
	if r.Driver.Problem != "" {
		out = append(out, "NVIDIA driver")
	}
	for _, l := range r.Libraries {
		if l.Problem != "" {
			out = append(out, l.Name)
		}
	}
	return out
}

// installCommand is the one command that installs every missing library,
// or "" when none is missing.
func (r *PrereqReport) installCommand() string {
	minor := "12-9"
	for _, l := range r.Libraries {
		if l.Name == "libcudart.so.12" && l.Path != "" {
			if parts := strings.Split(l.Version, "."); len(parts) >= 2 && parts[0] == "12" {
				minor = "12-" + parts[1]
			}
		}
	}
	seen := map[string]bool{}
	var pkgs []string
	usesMinor := false
	for _, l := range r.Libraries {
		if l.Problem == "" || l.Package == "" {
			continue
		}
		p := l.Package
		if strings.Contains(p, "%s") {
			p = fmt.Sprintf(p, minor)
			usesMinor = true
		}
		if !seen[p] {
			seen[p] = true
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) == 0 {
		return ""
	}
	note := ""
	if usesMinor {
		note = "; " + minor + " stands for any CUDA 12 release, best the one you have"
	}
	return "sudo apt-get install " + strings.Join(pkgs, " ") + " (or dnf install; the packages come from NVIDIA's CUDA repository, developer.download.nvidia.com/compute/cuda/repos" + note + ")"
}

// PrereqError is returned when a GPU provider's prerequisites are
// missing. Its message lists each one with what to install.
type PrereqError struct {
	Report *PrereqReport
}

func (e *PrereqError) Error() string {
	r := e.Report
	var b strings.Builder
	name := "CUDA"
	if r.Device == ProviderTensorRT {
		name = "TensorRT"
	}
	fmt.Fprintf(&b, "the %s provider cannot start on this machine: the ONNX Runtime %s GPU build needs the NVIDIA driver (%s or newer), CUDA %s and cuDNN %s", name, ORTVersion, minDriver, wantCUDA, wantCUDNN)
	if r.Device == ProviderTensorRT {
		fmt.Fprintf(&b, ", and TensorRT %s", wantTensorRT)
	}
	if !r.Checked {
		fmt.Fprintf(&b, "; %s", r.Note)
		return b.String()
	}
	b.WriteString(", and this is missing:")
	for _, p := range r.Problems() {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	if c := r.installCommand(); c != "" {
		b.WriteString("\nto install the missing libraries: ")
		b.WriteString(c)
	}
	if len(r.Looked) > 0 {
		b.WriteString("\nthe dynamic loader looked in: ")
		b.WriteString(strings.Join(r.Looked, ", "))
	}
	return b.String()
}

// CheckGPUPrereqs checks, without loading anything, what the GPU build's
// provider for device (cuda or tensorrt) needs from the machine: the NVIDIA
// driver (its kernel module in /proc/driver/nvidia and libcuda.so.1) and the
// CUDA, cuDNN and (for tensorrt) TensorRT libraries, looked up as the
// dynamic loader looks them up: LD_LIBRARY_PATH, the ldconfig cache, then
// the standard folders. Each library found is reported with its version;
// each missing one with what was found instead (another major version, or
// a copy in a folder the loader does not search) and the package to
// install.
//
// providerLibs are provider libraries already installed
// (libonnxruntime_providers_cuda.so); the libraries they name as ELF
// dependencies are checked too, so after installing the check follows the
// binary rather than kiln's table. Files that are not readable ELF are
// ignored.
func CheckGPUPrereqs(ctx context.Context, device string, opts PrereqOptions, providerLibs ...string) *PrereqReport {
	goos, goarch := opts.GOOS, opts.GOARCH
	if goos == "" {
		goos = runtime.GOOS
	}
	if goarch == "" {
		goarch = runtime.GOARCH
	}
	r := &PrereqReport{Device: device}
	if goos != "linux" {
		r.Note = fmt.Sprintf("kiln checks GPU prerequisites only on Linux, not on %s", goos)
		return r
	}
	r.Checked = true
	ix := newLoaderIndex(ctx, opts, goarch)
	r.Looked = ix.describe()

	r.Driver = checkDriver(opts, ix)

	reqs := append([]gpuRequirement(nil), cudaRequirements...)
	if device == ProviderTensorRT {
		reqs = append(reqs, tensorRTRequirements...)
	}
	known := map[string]bool{}
	for _, q := range reqs {
		known[q.soname] = true
	}
	for _, p := range providerLibs {
		needed, err := elfNeeded(p)
		if err != nil {
			continue
		}
		for _, n := range needed {
			if known[n] || !isGPULibrary(n) {
				continue
			}
			known[n] = true
			reqs = append(reqs, gpuRequirement{soname: n, component: "needed by " + filepath.Base(p), want: "as named"})
		}
	}
	for _, q := range reqs {
		r.Libraries = append(r.Libraries, ix.check(opts, q))
	}
	return r
}

// isGPULibrary reports whether a dependency is one of NVIDIA's (CUDA,
// cuDNN, TensorRT) rather than a system library.
func isGPULibrary(soname string) bool {
	return strings.HasPrefix(soname, "libcu") || strings.HasPrefix(soname, "libnv")
}

// elfNeeded lists the DT_NEEDED entries of an ELF shared library.
func elfNeeded(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ImportedLibraries()
}

// checkDriver looks for the NVIDIA kernel module and libcuda.so.1.
func checkDriver(opts PrereqOptions, ix *loaderIndex) DriverStatus {
	var d DriverStatus
	if b, err := os.ReadFile(opts.path("/proc/driver/nvidia/version")); err == nil {
		d.KernelModule = true
		d.Version = parseNVRMVersion(string(b))
	}
	if p, _ := ix.find(opts, "libcuda.so.1"); p != "" {
		d.LibCUDA = p
		if v := versionFromName(opts, p, "libcuda.so."); d.Version == "" && strings.Contains(v, ".") {
			d.Version = v
		}
	}
	const install = "install the NVIDIA driver " + minDriver + " or newer (Ubuntu: sudo ubuntu-drivers install; NVIDIA's repository: the cuda-drivers package) and reboot; in a container, start it with the NVIDIA Container Toolkit (docker run --gpus all)"
	switch {
	case !d.KernelModule && d.LibCUDA == "":
		d.Problem = "none found (no /proc/driver/nvidia/version, so no NVIDIA kernel module is loaded, and the dynamic loader finds no libcuda.so.1); " + install
	case !d.KernelModule:
		d.Problem = "libcuda.so.1 is at " + d.LibCUDA + ", but no NVIDIA kernel module is loaded (no /proc/driver/nvidia/version): the driver is not running; reboot after installing it, or in a container start it with the NVIDIA Container Toolkit (docker run --gpus all)"
	case d.LibCUDA == "":
		d.Problem = "the kernel module runs (driver " + versionOrUnknown(d.Version) + "), but the dynamic loader finds no libcuda.so.1, the driver's CUDA library: install the driver's user-space libraries of the same version (Ubuntu: libnvidia-compute-" + driverMajor(d.Version) + ")"
	case d.Version != "" && compareDotted(d.Version, minDriver) < 0:
		d.Problem = "driver " + d.Version + " is too old for CUDA 12: " + install
	default:
		d.Found = true
	}
	return d
}

func versionOrUnknown(s string) string {
	if s == "" {
		return "version unknown"
	}
	return s
}

func driverMajor(v string) string {
	if m, _, ok := strings.Cut(v, "."); ok && m != "" {
		return m
	}
	return "VERSION"
}

var anyDriverVersion = regexp.MustCompile(`\b([0-9]{3}\.[0-9]+(?:\.[0-9]+)?)\b`)

var nvrmVersion = regexp.MustCompile(`Kernel Module(?: for [^ ]+)?\s+([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)

// parseNVRMVersion reads the driver version from /proc/driver/nvidia/version
// ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ...").
func parseNVRMVersion(s string) string {
	if m := nvrmVersion.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	if m := anyDriverVersion.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// compareDotted compares dotted numeric versions; missing parts are 0.
func compareDotted(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// loaderIndex emulates the dynamic loader's search for a soname.
type loaderIndex struct {
	ldPath   []string          // LD_LIBRARY_PATH folders
	ldSet    bool              // LD_LIBRARY_PATH was set
	cache    map[string]string // soname -> path, from ldconfig -p
	names    []string          // every soname the cache lists
	cacheErr error
	std      []string // standard folders
	goarch   string
}

func newLoaderIndex(ctx context.Context, opts PrereqOptions, goarch string) *loaderIndex {
	ix := &loaderIndex{cache: map[string]string{}, goarch: goarch}
	if v := opts.Getenv.get("LD_LIBRARY_PATH"); v != "" {
		ix.ldSet = true
		for _, d := range filepath.SplitList(v) {
			if d != "" {
				ix.ldPath = append(ix.ldPath, d)
			}
		}
	}
	load := opts.LoaderCache
	if load == nil {
		load = runLdconfig
	}
	out, err := load(ctx)
	if err != nil {
		ix.cacheErr = err
	}
	for name, p := range parseLoaderCache(out, goarch) {
		ix.cache[name] = p
		ix.names = append(ix.names, name)
	}
	sort.Strings(ix.names)
	switch goarch {
	case "amd64":
		ix.std = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	case "arm64":
		ix.std = []string{"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	default:
		ix.std = []string{"/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	}
	return ix
}

// runLdconfig returns the output of `ldconfig -p`.
func runLdconfig(ctx context.Context) ([]byte, error) {
	bin := ""
	for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		p, err := exec.LookPath("ldconfig")
		if err != nil {
			return nil, errors.New("ldconfig not found, so the loader cache was not read")
		}
		bin = p
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p").Output()
	if err != nil {
		return nil, fmt.Errorf("%s -p: %w", bin, err)
	}
	return out, nil
}

// parseLoaderCache maps each soname `ldconfig -p` lists for goarch to the
// first path it names ("\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12").
func parseLoaderCache(out []byte, goarch string) map[string]string {
	tag := map[string]string{"amd64": "x86-64", "arm64": "AArch64"}[goarch]
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " (")
		if !ok {
			continue
		}
		flags, p, ok := strings.Cut(rest, ") => ")
		if !ok {
			continue
		}
		if tag != "" && !strings.Contains(flags, tag) {
			continue
		}
		if _, dup := m[name]; !dup {
			m[name] = strings.TrimSpace(p)
		}
	}
	return m
}

func (ix *loaderIndex) describe() []string {
	var out []string
	if ix.ldSet {
		out = append(out, "LD_LIBRARY_PATH ("+strings.Join(ix.ldPath, ":")+")")
	} else {
		out = append(out, "LD_LIBRARY_PATH (not set)")
	}
	if ix.cacheErr != nil {
		out = append(out, "the ldconfig cache (unreadable: "+ix.cacheErr.Error()+")")
	} else {
		out = append(out, "the ldconfig cache")
	}
	return append(out, ix.std...)
}

func existsUnder(opts PrereqOptions, p string) bool {
	fi, err := os.Stat(opts.path(p))
	return err == nil && !fi.IsDir()
}

// find returns where the loader finds soname and by which route.
func (ix *loaderIndex) find(opts PrereqOptions, soname string) (path, via string) {
	for _, d := range ix.ldPath {
		if p := filepath.Join(d, soname); existsUnder(opts, p) {
			return p, "LD_LIBRARY_PATH"
		}
	}
	if p, ok := ix.cache[soname]; ok && existsUnder(opts, p) {
		return p, "ldconfig cache"
	}
	for _, d := range ix.std {
		if p := filepath.Join(d, soname); existsUnder(opts, p) {
			return p, d
		}
	}
	return "", ""
}

// versionFromName returns the version a library's real file name carries
// after prefix ("libcudart.so." + "12.4.127"), or the soname's when the file
// name has no more.
func versionFromName(opts PrereqOptions, p, prefix string) string {
	name := filepath.Base(p)
	if real, err := filepath.EvalSymlinks(opts.path(p)); err == nil {
		if rb := filepath.Base(real); strings.HasPrefix(rb, prefix) {
			name = rb
		}
	}
	return strings.TrimPrefix(name, prefix)
}

// offPathDirs are folders CUDA, cuDNN and TensorRT installers use that the
// loader searches only when configured to.
var offPathDirs = []string{
	"/usr/local/cuda/lib64",
	"/usr/local/cuda-*/lib64",
	"/usr/local/cuda-*/targets/*/lib",
	"/usr/local/cuda/targets/*/lib",
	"/opt/TensorRT-*/lib",
	"/usr/local/TensorRT-*/lib",
}

// check looks for one required library and explains what is wrong.
func (ix *loaderIndex) check(opts PrereqOptions, q gpuRequirement) LibraryStatus {
	s := LibraryStatus{Name: q.soname, Component: q.component, Want: q.want}
	base, _, _ := strings.Cut(q.soname, ".so")
	if p, via := ix.find(opts, q.soname); p != "" {
		s.Path, s.Via = p, via
		s.Version = versionFromName(opts, p, base+".so.")
		return s
	}
	s.Package = q.pkg
	// Another major version the loader finds explains most failures
	// (CUDA 11 or cuDNN 8 installed instead).
	var others []string
	for _, n := range ix.names {
		if strings.HasPrefix(n, base+".so.") && n != q.soname {
			if p := ix.cache[n]; existsUnder(opts, p) {
				others = append(others, fmt.Sprintf("%s (%s)", versionFromName(opts, p, base+".so."), p))
			}
		}
	}
	if len(others) > 0 {
		s.Problem = fmt.Sprintf("the dynamic loader finds only %s %s, but this build needs %s", base, strings.Join(others, ", "), q.want)
		return s
	}
	// A copy in a folder the loader does not search.
	for _, pattern := range offPathDirs {
		matches, _ := filepath.Glob(opts.path(filepath.Join(pattern, q.soname)))
		for _, m := range matches {
			host := m
			if opts.Root != "" && opts.Root != "/" {
				if rel, err := filepath.Rel(opts.Root, m); err == nil {
					host = "/" + filepath.ToSlash(rel)
				}
			}
			dir := filepath.Dir(host)
			s.Problem = fmt.Sprintf("%s is installed in %s, but the dynamic loader does not search that folder: add it to LD_LIBRARY_PATH, or list it in a file in /etc/ld.so.conf.d/ and run sudo ldconfig", q.soname, dir)
			s.Package = ""
			return s
		}
	}
	s.Problem = "not found by the dynamic loader"
	return s
}
