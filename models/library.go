package models

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// Where FindLibrary found the library, in the order it looks.
const (
	SourceFlag   = "--ort-lib"
	SourceEnv    = "KILN_ORT_LIB"
	SourceConfig = "kiln.yaml runtime.library"
	SourceSystem = "system library path"
	SourceCache  = "kiln cache"
	// SourceGPUCache is the GPU build `kiln setup --device cuda` installs.
	SourceGPUCache = "kiln cache (GPU build)"
)

// libraryHint is the advice every "library not usable" error ends with.
const libraryHint = "run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"

// LibraryOptions says where FindLibrary may look for the ONNX Runtime shared
// library. Zero values mean "not set" or "the default".
type LibraryOptions struct {
	// Flag is the value of the --ort-lib command-line flag.
	Flag string
	// Config is runtime.library from kiln.yaml. A relative path is taken
	// relative to ConfigDir (the folder holding kiln.yaml).
	Config    string
	ConfigDir string
	// Getenv reads KILN_ORT_LIB, LD_LIBRARY_PATH and the cache variables;
	// nil means os.Getenv.
	Getenv Getenv
	// SystemDirs replaces the system search (LD_LIBRARY_PATH, the standard
	// library folders and the ldconfig cache) when non-nil. Tests use it to
	// stay independent of the machine.
	SystemDirs []string
	// CacheDir is kiln's cache folder; "" means CacheDir(Getenv).
	CacheDir string
	// Device is the execution provider the library is for. For cuda and
	// tensorrt the GPU build in kiln's cache comes before the system
	// search; for any device it is the last place looked, as it runs the
	// CPU provider too.
	Device string
}

// LibraryNotFoundError is returned by FindLibrary when no usable library
// exists anywhere it looked. Looked lists every place with what was found
// there, so the user can see why each one was passed over.
type LibraryNotFoundError struct {
	Looked []string
}

func (e *LibraryNotFoundError) Error() string {
	var b strings.Builder
	b.WriteString("ONNX Runtime library not found; looked at:\n")
	for _, l := range e.Looked {
		b.WriteString("  ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(libraryHint)
	return b.String()
}

// FindLibrary locates the ONNX Runtime shared library: the --ort-lib flag,
// then $KILN_ORT_LIB, then runtime.library from kiln.yaml, then the system
// library path, then kiln's cache folder (where Setup installs it). It
// returns the path and which of those places it came from (one of the
// Source constants).
//
// A place the user set explicitly (flag, environment, kiln.yaml) must hold
// a usable library: if it does not, that is the error, rather than quietly
// using a different library. System and cache candidates that are missing,
// for another CPU architecture, or visibly too old are skipped and listed in
// the LibraryNotFoundError.
func FindLibrary(opts LibraryOptions) (path string, source string, err error) {
	getenv := opts.Getenv
	var looked []string

	env := getenv.get("KILN_ORT_LIB")
	if env == "" {
		env = getenv.get("KILN_ORT_LIBRARY") // the longer spelling works too
	}
	explicit := []struct{ source, value string }{
		{SourceFlag, opts.Flag},
		{SourceEnv, env},
		{SourceConfig, opts.Config},
	}
	for _, c := range explicit {
		if c.value == "" {
			looked = append(looked, c.source+": not set")
			continue
		}
		p := c.value
		if c.source == SourceConfig && !filepath.IsAbs(p) && opts.ConfigDir != "" {
			p = filepath.Join(opts.ConfigDir, p)
		}
		if c.source == SourceConfig && opts.ConfigDir != "" && insideProject(opts.ConfigDir, p) {
			return "", "", fmt.Errorf("%s: %s is inside the project, and kiln loads that library as native code, so a checkout could run code of its own on your machine; a library inside the project can only be chosen outside the project's files: pass --ort-lib %s or set KILN_ORT_LIB=%s", c.source, p, p, p)
		}
		if err := CheckLibraryFile(p); err != nil {
			return "", "", fmt.Errorf("%s: %w; %s", c.source, err, libraryHint)
		}
		return p, c.source, nil
	}

	cacheDir := opts.CacheDir
	var cacheErr error
	if cacheDir == "" {
		cacheDir, cacheErr = CacheDir(getenv)
	}
	gpu := func() (string, bool) {
		if cacheErr != nil {
			return "", false
		}
		p := GPULibraryCachePath(cacheDir)
		if err := CheckLibraryFile(p); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				looked = append(looked, SourceGPUCache+": "+err.Error())
			}
			return "", false
		}
		return p, true
	}
	wantsGPU := opts.Device == ProviderCUDA || opts.Device == ProviderTensorRT
	if wantsGPU {
		if p, ok := gpu(); ok {
			return p, SourceGPUCache, nil
		}
		looked = append(looked, SourceGPUCache+": "+GPULibraryCachePath(cacheDir)+" not installed (kiln setup --device "+opts.Device+" installs it)")
	}

	for _, p := range systemCandidates(opts) {
		if err := CheckLibraryFile(p); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				looked = append(looked, SourceSystem+": "+err.Error())
			}
			continue
		}
		if v := versionFromFileName(p); v != "" && !versionAtLeast(v, 1, ORTAPIMinor) {
			looked = append(looked, fmt.Sprintf("%s: %s is ONNX Runtime %s, older than 1.%d", SourceSystem, p, v, ORTAPIMinor))
			continue
		}
		return p, SourceSystem, nil
	}
	looked = append(looked, SourceSystem+": "+strings.Join(systemPlaces(opts), ", ")+": no "+strings.Join(libraryNames(), " or "))

	if cacheErr != nil {
		looked = append(looked, SourceCache+": "+cacheErr.Error())
	} else {
		p := LibraryCachePath(cacheDir)
		if err := CheckLibraryFile(p); err != nil {
			looked = append(looked, SourceCache+": "+err.Error())
		} else {
			return p, SourceCache, nil
		}
		if !wantsGPU {
			if p, ok := gpu(); ok {
				return p, SourceGPUCache, nil
			}
		}
	}
	return "", "", &LibraryNotFoundError{Looked: looked}
}

// libraryNames are the file names of the ONNX Runtime library on this OS.
func libraryNames() []string {
	switch runtime.GOOS {
	case "windows":
		return []string{"onnxruntime.dll"}
	case "darwin":
		return []string{"libonnxruntime.dylib"}
	default:
		return []string{"libonnxruntime.so.1", "libonnxruntime.so"}
	}
}

// systemPlaces describes the system search for error messages.
func systemPlaces(opts LibraryOptions) []string {
	if opts.SystemDirs != nil {
		return opts.SystemDirs
	}
	dirs := []string{"LD_LIBRARY_PATH"}
	dirs = append(dirs, standardLibDirs()...)
	return append(dirs, "ldconfig cache")
}

func standardLibDirs() []string {
	dirs := []string{"/usr/local/lib", "/usr/lib"}
	if t := multiarchTriplet(); t != "" {
		dirs = append(dirs, "/usr/lib/"+t, "/lib/"+t)
	}
	return append(dirs, "/usr/lib64")
}

func multiarchTriplet() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	}
	return ""
}

// systemCandidates lists candidate files, most specific first.
func systemCandidates(opts LibraryOptions) []string {
	var dirs []string
	if opts.SystemDirs != nil {
		dirs = opts.SystemDirs
	} else {
		for _, d := range filepath.SplitList(opts.Getenv.get("LD_LIBRARY_PATH")) {
			if d != "" {
				dirs = append(dirs, d)
			}
		}
		dirs = append(dirs, standardLibDirs()...)
	}
	var out []string
	for _, d := range dirs {
		for _, n := range libraryNames() {
			out = append(out, filepath.Join(d, n))
		}
	}
	if opts.SystemDirs == nil && runtime.GOOS == "linux" {
		out = append(out, ldconfigCandidates()...)
	}
	return out
}

// ldconfigCandidates asks the dynamic linker's cache (ldconfig -p) for the
// library. A missing ldconfig is not an error: the cache is only one place
// among several.
func ldconfigCandidates() []string {
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
			return nil
		}
		bin = p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p").Output()
	if err != nil {
		return nil
	}
	return parseLdconfig(out)
}

// parseLdconfig extracts the paths of libonnxruntime entries from the
// output of `ldconfig -p` ("\tlibonnxruntime.so.1 (libc6,x86-64) => /usr/lib/libonnxruntime.so.1").
func parseLdconfig(out []byte) []string {
	var paths []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, rest, ok := strings.Cut(line, " ")
		if !ok || (name != "libonnxruntime.so.1" && name != "libonnxruntime.so") {
			continue
		}
		if _, p, ok := strings.Cut(rest, "=> "); ok {
			paths = append(paths, strings.TrimSpace(p))
		}
	}
	return paths
}

var soVersion = regexp.MustCompile(`\.so\.(\d+\.\d+(?:\.\d+)?)$`)

// versionFromFileName returns the release a versioned library file name
// (after resolving symlinks) states, such as "1.21.0" for
// libonnxruntime.so.1.21.0, or "" when the name carries no full version.
func versionFromFileName(p string) string {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	m := soVersion.FindStringSubmatch(filepath.Base(real))
	if m == nil {
		return ""
	}
	return m[1]
}

// versionAtLeast reports whether a "major.minor[.patch]" version is at
// least major.minor.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.Split(v, ".")
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// CheckLibraryFile checks, without loading it, that path is a shared
// library this process could load: it exists, is a regular file, and (on
// ELF systems) is an ELF shared object for this CPU architecture. The errors
// name the file and what is wrong with it (missing, truncated, not a
// library, built for another architecture); os.ErrNotExist is wrapped for
// a missing file.
func CheckLibraryFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %w", path, os.ErrNotExist)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a folder, not the library file", path)
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	var hdr [20]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return fmt.Errorf("%s is not a shared library (%d bytes, too short for an ELF header): the file is truncated or corrupt", path, fi.Size())
	}
	return checkELFHeader(path, hdr[:])
}

// ELF machine numbers for the architectures Go runs on.
var elfMachines = map[uint16]string{
	3:   "x86 (32-bit)",
	8:   "MIPS",
	20:  "PowerPC",
	21:  "PowerPC64",
	22:  "s390x",
	40:  "ARM (32-bit)",
	62:  "x86-64",
	183: "AArch64 (arm64)",
	243: "RISC-V",
	258: "LoongArch",
}

func goarchELF() (machine uint16, class byte) {
	switch runtime.GOARCH {
	case "amd64":
		return 62, 2
	case "arm64":
		return 183, 2
	case "386":
		return 3, 1
	case "arm":
		return 40, 1
	case "riscv64":
		return 243, 2
	case "ppc64le", "ppc64":
		return 21, 2
	case "s390x":
		return 22, 2
	case "loong64":
		return 258, 2
	}
	return 0, 0
}

func checkELFHeader(path string, hdr []byte) error {
	if !bytes.Equal(hdr[:4], []byte{0x7f, 'E', 'L', 'F'}) {
		return fmt.Errorf("%s is not a shared library (no ELF header): the file is corrupt or not ONNX Runtime", path)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if hdr[5] == 2 {
		bo = binary.BigEndian
	}
	typ := bo.Uint16(hdr[16:18])
	machine := bo.Uint16(hdr[18:20])
	wantMachine, wantClass := goarchELF()
	if wantMachine != 0 && (machine != wantMachine || hdr[4] != wantClass) {
		name := elfMachines[machine]
		if name == "" {
			name = fmt.Sprintf("ELF machine %d", machine)
		}
		return fmt.Errorf("%s is built for %s, but kiln runs on %s/%s: use the ONNX Runtime 1.24 build for %s", path, name, runtime.GOOS, runtime.GOARCH, runtime.GOARCH)
	}
	if typ != 3 { // ET_DYN
		return fmt.Errorf("%s is an ELF file but not a shared library (type %d)", path, typ)
	}
	return nil
}

// insideProject reports whether the library path p lies inside the project
// folder dir once symlinks are resolved (a missing p is judged by its
// spelling).
func insideProject(dir, p string) bool {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		realDir = dir
	}
	realP, err := filepath.EvalSymlinks(p)
	if err != nil {
		if realP, err = filepath.Abs(p); err != nil {
			return false
		}
	}
	absDir, _ := filepath.Abs(dir)
	return safepath.Within(realDir, realP) || safepath.Within(absDir, realP)
}
