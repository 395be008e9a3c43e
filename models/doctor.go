package models

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds the machine probes of `kiln doctor`: memory, inotify
// limits, NVIDIA GPUs and which provider libraries sit beside an ONNX
// Runtime library. Each reads only files and commands, never loads a
// library, and reports what it could not read instead of failing.

// CommandRunner runs a command and returns its standard output. Probes take
// one so tests need no real nvidia-smi.
type CommandRunner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ProbeOptions says where the doctor's probes look. Zero values mean this
// machine.
type ProbeOptions struct {
	// Root is prepended to the absolute paths read (/proc, /sys); "" means
	// "/".
	Root string
	// Run runs commands (nvidia-smi); nil runs them with a 10 s timeout.
	Run CommandRunner
	// LookPath finds commands; nil means exec.LookPath.
	LookPath func(string) (string, error)
	// GOOS is the platform probed; "" means this process's.
	GOOS string
}

func (o ProbeOptions) path(p string) string {
	if o.Root == "" || o.Root == "/" {
		return p
	}
	return filepath.Join(o.Root, p)
}

func (o ProbeOptions) goos() string {
	if o.GOOS == "" {
		return runtime.GOOS
	}
	return o.GOOS
}

func (o ProbeOptions) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if o.Run != nil {
		return o.Run(ctx, name, args...)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, name, args...).Output()
}

func (o ProbeOptions) lookPath(name string) (string, error) {
	if o.LookPath != nil {
		return o.LookPath(name)
	}
	return exec.LookPath(name)
}

// MemoryReport is the machine's memory as the kernel and the control group
// report it.
type MemoryReport struct {
	// TotalBytes and AvailableBytes come from /proc/meminfo (MemTotal,
	// MemAvailable); 0 when unknown.
	TotalBytes     int64 `json:"total_bytes"`
	AvailableBytes int64 `json:"available_bytes"`
	// CgroupLimitBytes is the memory limit of the process's control group
	// (memory.max, or memory.limit_in_bytes for cgroup v1); 0 means none.
	CgroupLimitBytes int64 `json:"cgroup_limit_bytes"`
	// Cgroup is "v2", "v1", or "" when no memory controller was found.
	Cgroup string `json:"cgroup,omitempty"`
	// Problem says what could not be read.
	Problem string `json:"problem,omitempty"`
}

// cgroupNoLimit is the threshold above which a cgroup limit means "unlimited"
// (cgroup v1 reports the largest page-aligned int64).
const cgroupNoLimit = 1 << 62

// ProbeMemory reads /proc/meminfo and the process's cgroup memory limit.
func ProbeMemory(opts ProbeOptions) MemoryReport {
	var r MemoryReport
	if opts.goos() != "linux" {
		r.Problem = "memory is read from /proc, which " + opts.goos() + " does not have"
		return r
	}
	data, err := os.ReadFile(opts.path("/proc/meminfo"))
	if err != nil {
		r.Problem = "cannot read /proc/meminfo: " + err.Error()
		return r
	}
	r.TotalBytes = meminfoField(data, "MemTotal")
	r.AvailableBytes = meminfoField(data, "MemAvailable")
	r.CgroupLimitBytes, r.Cgroup = cgroupMemoryLimit(opts)
	return r
}

// meminfoField returns a /proc/meminfo field in bytes ("MemTotal: 24683772 kB").
func meminfoField(data []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != name {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n
	}
	return 0
}

// cgroupMemoryLimit finds the memory limit of the process's control group:
// cgroup v2's memory.max in its unified hierarchy, else cgroup v1's
// memory.limit_in_bytes, each at the group /proc/self/cgroup names or, in
// a cgroup namespace, at the mount's root.
func cgroupMemoryLimit(opts ProbeOptions) (int64, string) {
	data, _ := os.ReadFile(opts.path("/proc/self/cgroup"))
	var v2Path, v1Path string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1Path = parts[2]
			}
		}
	}
	read := func(p string) (int64, bool) {
		b, err := os.ReadFile(opts.path(p))
		if err != nil {
			return 0, false
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, true
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false
		}
		if n >= cgroupNoLimit {
			n = 0
		}
		return n, true
	}
	var v2 []string
	for _, mount := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if v2Path != "" {
			v2 = append(v2, filepath.Join(mount, v2Path, "memory.max"))
		}
		v2 = append(v2, filepath.Join(mount, "memory.max"))
	}
	for _, p := range v2 {
		if n, ok := read(p); ok {
			return n, "v2"
		}
	}
	const v1 = "/sys/fs/cgroup/memory"
	for _, p := range []string{filepath.Join(v1, v1Path, "memory.limit_in_bytes"), filepath.Join(v1, "memory.limit_in_bytes")} {
		if n, ok := read(p); ok {
			return n, "v1"
		}
	}
	return 0, ""
}

// InotifyReport holds the per-user inotify limits kiln watch counts
// against.
type InotifyReport struct {
	// MaxUserWatches and MaxUserInstances are fs.inotify's limits; -1 when
	// unknown.
	MaxUserWatches   int64  `json:"max_user_watches"`
	MaxUserInstances int64  `json:"max_user_instances"`
	Problem          string `json:"problem,omitempty"`
}

// ProbeInotify reads /proc/sys/fs/inotify/max_user_watches and
// max_user_instances.
func ProbeInotify(opts ProbeOptions) InotifyReport {
	r := InotifyReport{MaxUserWatches: -1, MaxUserInstances: -1}
	if opts.goos() != "linux" {
		r.Problem = "inotify is Linux's; kiln watch uses " + opts.goos() + "'s own file events there"
		return r
	}
	var problems []string
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"max_user_watches", &r.MaxUserWatches}, {"max_user_instances", &r.MaxUserInstances}} {
		p := "/proc/sys/fs/inotify/" + f.name
		b, err := os.ReadFile(opts.path(p))
		if err != nil {
			problems = append(problems, "cannot read "+p+": "+err.Error())
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			problems = append(problems, p+" holds "+strings.TrimSpace(string(b)))
			continue
		}
		*f.dst = n
	}
	r.Problem = strings.Join(problems, "; ")
	return r
}

// GPUDevice is one NVIDIA GPU.
type GPUDevice struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	MemoryBytes int64  `json:"memory_bytes,omitempty"`
	Driver      string `json:"driver,omitempty"`
}

// GPUReport lists the NVIDIA GPUs found and how.
type GPUReport struct {
	Devices []GPUDevice `json:"devices"`
	// Source is "nvidia-smi" or "/proc/driver/nvidia/gpus"; "" when no
	// GPU was found.
	Source string `json:"source,omitempty"`
	// Problem says what failed (nvidia-smi's error) when no GPU was found.
	Problem string `json:"problem,omitempty"`
}

// ProbeGPUs lists NVIDIA GPUs: from nvidia-smi when it is on PATH, else
// from the driver's /proc/driver/nvidia/gpus/*/information files.
func ProbeGPUs(ctx context.Context, opts ProbeOptions) GPUReport {
	var r GPUReport
	var problems []string
	if smi, err := opts.lookPath("nvidia-smi"); err == nil {
		out, err := opts.run(ctx, smi, "--query-gpu=index,name,memory.total,driver_version", "--format=csv,noheader,nounits")
		if err == nil {
			if devs, perr := parseNvidiaSMI(out); perr == nil && len(devs) > 0 {
				r.Devices, r.Source = devs, "nvidia-smi"
				return r
			} else if perr != nil {
				problems = append(problems, "nvidia-smi printed "+strings.TrimSpace(string(out)))
			}
		} else {
			msg := err.Error()
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				msg = strings.TrimSpace(string(ee.Stderr))
			}
			problems = append(problems, "nvidia-smi failed: "+msg)
		}
	} else {
		problems = append(problems, "nvidia-smi is not on PATH")
	}
	if opts.goos() == "linux" {
		matches, _ := filepath.Glob(opts.path("/proc/driver/nvidia/gpus/*/information"))
		sort.Strings(matches)
		for i, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				continue
			}
			d := GPUDevice{Index: i}
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				k, v, ok := strings.Cut(sc.Text(), ":")
				if ok && strings.TrimSpace(k) == "Model" {
					d.Name = strings.TrimSpace(v)
				}
			}
			r.Devices = append(r.Devices, d)
		}
		if len(r.Devices) > 0 {
			r.Source = "/proc/driver/nvidia/gpus"
			return r
		}
		problems = append(problems, "no /proc/driver/nvidia/gpus")
	}
	r.Problem = strings.Join(problems, "; ")
	return r
}

// parseNvidiaSMI reads `nvidia-smi --query-gpu=index,name,memory.total,driver_version
// --format=csv,noheader,nounits` (memory in MiB).
func parseNvidiaSMI(out []byte) ([]GPUDevice, error) {
	rd := csv.NewReader(bytes.NewReader(out))
	rd.TrimLeadingSpace = true
	rows, err := rd.ReadAll()
	if err != nil {
		return nil, err
	}
	var devs []GPUDevice
	for _, row := range rows {
		if len(row) != 4 {
			return nil, fmt.Errorf("nvidia-smi row %q has %d fields, want 4", strings.Join(row, ","), len(row))
		}
		idx, err := strconv.Atoi(strings.TrimSpace(row[0]))
		if err != nil {
			return nil, fmt.Errorf("nvidia-smi index %q", row[0])
		}
		d := GPUDevice{Index: idx, Name: strings.TrimSpace(row[1]), Driver: strings.TrimSpace(row[3])}
		if mib, err := strconv.ParseInt(strings.TrimSpace(row[2]), 10, 64); err == nil {
			d.MemoryBytes = mib << 20
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// ProviderLibrary says whether one execution provider is in an ONNX
// Runtime build.
type ProviderLibrary struct {
	Provider string `json:"provider"`
	// CompiledIn is true when the build carries the provider.
	CompiledIn bool `json:"compiled_in"`
	// How says how that was decided: a provider library beside the
	// library, or the platform for providers built into it.
	How string `json:"how"`
}

// ProviderLibraries reports which of kiln's execution providers the ONNX
// Runtime build at lib carries. onnxruntime_go v1.27.0 has no binding for
// ONNX Runtime's GetAvailableProviders, so this follows how the official
// builds ship: CUDA, TensorRT and OpenVINO are separate shared libraries
// (libonnxruntime_providers_<name>.so, with libonnxruntime_providers_shared.so)
// beside the library, CoreML is built into the macOS library and DirectML
// into the DirectML build's onnxruntime.dll, which only a probe can tell
// apart; CPU is always there.
func ProviderLibraries(lib, goos string) []ProviderLibrary {
	if goos == "" {
		goos = runtime.GOOS
	}
	dir := filepath.Dir(lib)
	file := func(p string) string {
		switch goos {
		case "windows":
			return "onnxruntime_providers_" + p + ".dll"
		case "darwin":
			return "libonnxruntime_providers_" + p + ".dylib"
		}
		return "libonnxruntime_providers_" + p + ".so"
	}
	present := func(name string) bool {
		fi, err := os.Stat(filepath.Join(dir, name))
		return err == nil && fi.Mode().IsRegular()
	}
	shared := present(file("shared"))
	var out []ProviderLibrary
	for _, p := range Providers {
		pl := ProviderLibrary{Provider: p}
		switch p {
		case ProviderCPU:
			pl.CompiledIn, pl.How = true, "always"
		case ProviderCoreML:
			pl.CompiledIn = goos == "darwin"
			pl.How = "built into the macOS library"
			if goos != "darwin" {
				pl.How = "macOS only"
			}
		case ProviderDirectML:
			pl.CompiledIn = false
			pl.How = "Windows only"
			if goos == "windows" {
				pl.How = "built into the DirectML build's onnxruntime.dll: see whether it starts"
			}
		default:
			name := file(p)
			switch {
			case present(name) && shared:
				pl.CompiledIn, pl.How = true, name+" beside the library"
			case present(name):
				pl.How = name + " is there, but " + file("shared") + " is missing"
			default:
				pl.How = "no " + name + " beside the library"
			}
		}
		out = append(out, pl)
	}
	return out
}

// ProbeRuntime loads the ONNX Runtime library lib (once per process, as
// NewRuntime does) and returns the version it reports.
func ProbeRuntime(lib string) (string, error) {
	rt, err := NewRuntime(RuntimeOptions{Library: lib})
	if err != nil {
		return "", err
	}
	defer rt.Close()
	return rt.Version(), nil
}

// ProbeProvider reports whether provider can start with the library lib:
// it creates a Runtime for it with no fallback, which appends the provider
// to session options, where ONNX Runtime loads the provider's own
// libraries, and closes it again. The error is ONNX Runtime's reason,
// without the installation advice NewRuntime adds to it.
func ProbeProvider(lib, provider string) error {
	rt, err := NewRuntime(RuntimeOptions{Library: lib, Provider: provider})
	if err != nil {
		return errors.New(providerReason(err.Error(), lib))
	}
	return rt.Close()
}

// providerReason cuts the reason out of a "provider unavailable" message
// ("execution provider ... is not available with the ONNX Runtime library
// LIB: REASON. To use it, ..."); other messages are returned whole.
func providerReason(msg, lib string) string {
	marker := "the ONNX Runtime library " + lib + ": "
	i := strings.Index(msg, marker)
	if i < 0 {
		return msg
	}
	rest := msg[i+len(marker):]
	if j := strings.Index(rest, ". To use it, "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}
