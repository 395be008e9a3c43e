package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDoctorProbeMemory(t *testing.T) {
	const meminfo = "MemTotal:       24683772 kB\nMemFree:        22779428 kB\nMemAvailable:   24229028 kB\n"
	tests := []struct {
		name  string
		files map[string]string
		goos  string
		want  MemoryReport
	}{
		{
			name: "cgroup v2 limit",
			files: map[string]string{
				"proc/meminfo":     meminfo,
				"proc/self/cgroup": "0::/user.slice/kiln.scope\n",
				"sys/fs/cgroup/user.slice/kiln.scope/memory.max": "8589934592\n",
			},
			want: MemoryReport{TotalBytes: 24683772 << 10, AvailableBytes: 24229028 << 10, CgroupLimitBytes: 8 << 30, Cgroup: "v2"},
		},
		{
			name: "cgroup v2 without limit, in a namespace",
			files: map[string]string{
				"proc/meminfo":             meminfo,
				"proc/self/cgroup":         "0::/\n",
				"sys/fs/cgroup/memory.max": "max\n",
			},
			want: MemoryReport{TotalBytes: 24683772 << 10, AvailableBytes: 24229028 << 10, Cgroup: "v2"},
		},
		{
			name: "cgroup v1 unlimited (hybrid host)",
			files: map[string]string{
				"proc/meminfo":     meminfo,
				"proc/self/cgroup": "4:memory:/process_api/4a58\n0::/\n",
				"sys/fs/cgroup/memory/process_api/4a58/memory.limit_in_bytes": "9223372036854771712\n",
			},
			want: MemoryReport{TotalBytes: 24683772 << 10, AvailableBytes: 24229028 << 10, Cgroup: "v1"},
		},
		{
			name: "cgroup v1 limit",
			files: map[string]string{
				"proc/meminfo":     meminfo,
				"proc/self/cgroup": "9:memory:/docker/abc\n",
				"sys/fs/cgroup/memory/memory.limit_in_bytes": "4294967296\n",
			},
			want: MemoryReport{TotalBytes: 24683772 << 10, AvailableBytes: 24229028 << 10, CgroupLimitBytes: 4 << 30, Cgroup: "v1"},
		},
		{
			name: "no /proc",
			want: MemoryReport{Problem: "cannot read /proc/meminfo: open ROOT/proc/meminfo: no such file or directory"},
		},
		{
			name: "macOS",
			goos: "darwin",
			want: MemoryReport{Problem: "memory is read from /proc, which darwin does not have"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for p, data := range tt.files {
				writeTestFile(t, filepath.Join(root, p), data)
			}
			got := ProbeMemory(ProbeOptions{Root: root, GOOS: orString(tt.goos, "linux")})
			tt.want.Problem = strings.ReplaceAll(tt.want.Problem, "ROOT", root)
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestDoctorProbeInotify(t *testing.T) {
	root := t.TempDir()
	writeTestFile(t, filepath.Join(root, "proc/sys/fs/inotify/max_user_watches"), "192540\n")
	got := ProbeInotify(ProbeOptions{Root: root, GOOS: "linux"})
	want := InotifyReport{MaxUserWatches: 192540, MaxUserInstances: -1, Problem: "cannot read /proc/sys/fs/inotify/max_user_instances: open " + filepath.Join(root, "proc/sys/fs/inotify/max_user_instances") + ": no such file or directory"}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	writeTestFile(t, filepath.Join(root, "proc/sys/fs/inotify/max_user_instances"), "128\n")
	if got := ProbeInotify(ProbeOptions{Root: root, GOOS: "linux"}); got != (InotifyReport{MaxUserWatches: 192540, MaxUserInstances: 128}) {
		t.Errorf("got %+v", got)
	}
}

func TestDoctorProbeGPUs(t *testing.T) {
	smi := func(out string, err error) ProbeOptions {
		return ProbeOptions{
			GOOS:     "linux",
			LookPath: func(string) (string, error) { return "/usr/bin/nvidia-smi", nil },
			Run: func(_ context.Context, name string, args ...string) ([]byte, error) {
				if name != "/usr/bin/nvidia-smi" || !strings.HasPrefix(args[0], "--query-gpu=") {
					t.Errorf("ran %s %v", name, args)
				}
				return []byte(out), err
			},
		}
	}
	noSMI := func(root string) ProbeOptions {
		return ProbeOptions{Root: root, GOOS: "linux", LookPath: func(string) (string, error) { return "", errors.New("not found") }}
	}
	procRoot := t.TempDir()
	writeTestFile(t, filepath.Join(procRoot, "proc/driver/nvidia/gpus/0000:01:00.0/information"), "Model: \t\t NVIDIA GeForce RTX 4090\nIRQ:   \t\t 140\n")

	tests := []struct {
		name string
		opts ProbeOptions
		want GPUReport
	}{
		{
			name: "nvidia-smi",
			opts: smi("0, NVIDIA GeForce RTX 4090, 24564, 550.54.14\n1, NVIDIA A10, 23028, 550.54.14\n", nil),
			want: GPUReport{Source: "nvidia-smi", Devices: []GPUDevice{
				{Index: 0, Name: "NVIDIA GeForce RTX 4090", MemoryBytes: 24564 << 20, Driver: "550.54.14"},
				{Index: 1, Name: "NVIDIA A10", MemoryBytes: 23028 << 20, Driver: "550.54.14"},
			}},
		},
		{
			name: "nvidia-smi fails, /proc has the GPU",
			opts: func() ProbeOptions {
				o := smi("", errors.New("exit status 9"))
				o.Root = procRoot
				return o
			}(),
			want: GPUReport{Source: "/proc/driver/nvidia/gpus", Devices: []GPUDevice{{Index: 0, Name: "NVIDIA GeForce RTX 4090"}}},
		},
		{
			name: "none found",
			opts: noSMI(t.TempDir()),
			want: GPUReport{Problem: "nvidia-smi is not on PATH; no /proc/driver/nvidia/gpus"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ProbeGPUs(context.Background(), tt.opts)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDoctorProviderLibraries(t *testing.T) {
	gpu := t.TempDir()
	for _, n := range []string{"libonnxruntime.so.1", "libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"} {
		writeTestFile(t, filepath.Join(gpu, n), "x")
	}
	cpu := t.TempDir()
	writeTestFile(t, filepath.Join(cpu, "libonnxruntime.so.1"), "x")
	noShared := t.TempDir()
	writeTestFile(t, filepath.Join(noShared, "libonnxruntime_providers_cuda.so"), "x")
	os.Remove(filepath.Join(noShared, "libonnxruntime_providers_shared.so"))

	compiled := func(pls []ProviderLibrary) map[string]string {
		m := map[string]string{}
		for _, p := range pls {
			if p.CompiledIn {
				m[p.Provider] = p.How
			}
		}
		return m
	}
	tests := []struct {
		name, dir, goos string
		want            map[string]string
	}{
		{"GPU build", gpu, "linux", map[string]string{"cpu": "always", "cuda": "libonnxruntime_providers_cuda.so beside the library", "tensorrt": "libonnxruntime_providers_tensorrt.so beside the library"}},
		{"CPU build", cpu, "linux", map[string]string{"cpu": "always"}},
		{"provider without the shared library", noShared, "linux", map[string]string{"cpu": "always"}},
		{"macOS build", cpu, "darwin", map[string]string{"cpu": "always", "coreml": "built into the macOS library"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compiled(ProviderLibraries(filepath.Join(tt.dir, "libonnxruntime.so.1"), tt.goos))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
	pls := ProviderLibraries(filepath.Join(noShared, "libonnxruntime.so.1"), "linux")
	if pls[1].How != "libonnxruntime_providers_cuda.so is there, but libonnxruntime_providers_shared.so is missing" {
		t.Errorf("cuda without shared: %q", pls[1].How)
	}
}
