package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckGPUPrereqs(t *testing.T) {
	tests := []struct {
		name    string
		device  string
		missing []string
		// edit changes the machine after gpuMachine laid it out.
		edit func(t *testing.T, o *PrereqOptions)
		// want maps a soname (or "driver") to the problem expected; every
		// other entry must have none.
		want map[string]string
		// versions maps sonames to the version expected.
		versions map[string]string
	}{
		{
			name:     "everything there",
			device:   ProviderTensorRT,
			versions: map[string]string{"libcudart.so.12": "12.4.127", "libcudnn.so.9": "9.1.0", "libnvinfer.so.10": "10.0.1", "driver": "550.54.14"},
		},
		{
			name:    "no driver at all",
			device:  ProviderCUDA,
			missing: []string{"driver", "libcuda.so.1"},
			want:    map[string]string{"driver": "none found (no /proc/driver/nvidia/version, so no NVIDIA kernel module is loaded, and the dynamic loader finds no libcuda.so.1); install the NVIDIA driver 525.60.13 or newer (Ubuntu: sudo ubuntu-drivers install; NVIDIA's repository: the cuda-drivers package) and reboot; in a container, start it with the NVIDIA Container Toolkit (docker run --gpus all)"},
		},
		{
			name:    "library without kernel module",
			device:  ProviderCUDA,
			missing: []string{"driver"},
			want:    map[string]string{"driver": "libcuda.so.1 is at /usr/lib/x86_64-linux-gnu/libcuda.so.1, but no NVIDIA kernel module is loaded (no /proc/driver/nvidia/version): the driver is not running; reboot after installing it, or in a container start it with the NVIDIA Container Toolkit (docker run --gpus all)"},
		},
		{
			name:    "kernel module without libcuda",
			device:  ProviderCUDA,
			missing: []string{"libcuda.so.1"},
			want:    map[string]string{"driver": "the kernel module runs (driver 550.54.14), but the dynamic loader finds no libcuda.so.1, the driver's CUDA library: install the driver's user-space libraries of the same version (Ubuntu: libnvidia-compute-550)"},
		},
		{
			name:   "driver too old",
			device: ProviderCUDA,
			edit: func(t *testing.T, o *PrereqOptions) {
				writeTestFile(t, filepath.Join(o.Root, "proc/driver/nvidia/version"), "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.223.02  Sat Oct  7 15:39:11 UTC 2023\n")
			},
			want: map[string]string{"driver": "driver 470.223.02 is too old for CUDA 12: install the NVIDIA driver 525.60.13 or newer (Ubuntu: sudo ubuntu-drivers install; NVIDIA's repository: the cuda-drivers package) and reboot; in a container, start it with the NVIDIA Container Toolkit (docker run --gpus all)"},
		},
		{
			name:    "cuDNN 8 instead of 9",
			device:  ProviderCUDA,
			missing: []string{"libcudnn.so.9"},
			edit: func(t *testing.T, o *PrereqOptions) {
				dir := filepath.Join(o.Root, "usr/lib/x86_64-linux-gnu")
				writeTestFile(t, filepath.Join(dir, "libcudnn.so.8.9.7"), "old")
				os.Symlink("libcudnn.so.8.9.7", filepath.Join(dir, "libcudnn.so.8"))
				addCacheLine(o, "libcudnn.so.8", "/usr/lib/x86_64-linux-gnu/libcudnn.so.8")
			},
			want: map[string]string{"libcudnn.so.9": "the dynamic loader finds only libcudnn 8.9.7 (/usr/lib/x86_64-linux-gnu/libcudnn.so.8), but this build needs cuDNN 9.x"},
		},
		{
			name:    "CUDA in a folder the loader does not search",
			device:  ProviderCUDA,
			missing: []string{"libcublas.so.12"},
			edit: func(t *testing.T, o *PrereqOptions) {
				writeTestFile(t, filepath.Join(o.Root, "usr/local/cuda-12.4/lib64/libcublas.so.12"), "x")
			},
			want: map[string]string{"libcublas.so.12": "libcublas.so.12 is installed in /usr/local/cuda-12.4/lib64, but the dynamic loader does not search that folder: add it to LD_LIBRARY_PATH, or list it in a file in /etc/ld.so.conf.d/ and run sudo ldconfig"},
		},
		{
			name:    "LD_LIBRARY_PATH is searched",
			device:  ProviderCUDA,
			missing: []string{"libcurand.so.10"},
			edit: func(t *testing.T, o *PrereqOptions) {
				writeTestFile(t, filepath.Join(o.Root, "opt/cuda/lib/libcurand.so.10.3.5.147"), "x")
				os.Symlink("libcurand.so.10.3.5.147", filepath.Join(o.Root, "opt/cuda/lib/libcurand.so.10"))
				o.Getenv = func(k string) string {
					if k == "LD_LIBRARY_PATH" {
						return "/opt/cuda/lib"
					}
					return ""
				}
			},
			versions: map[string]string{"libcurand.so.10": "10.3.5.147"},
		},
		{
			name:    "TensorRT missing",
			device:  ProviderTensorRT,
			missing: []string{"libnvinfer.so.10"},
			want:    map[string]string{"libnvinfer.so.10": "not found by the dynamic loader"},
		},
		{
			name:    "TensorRT missing does not matter for cuda",
			device:  ProviderCUDA,
			missing: []string{"libnvinfer.so.10"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := gpuMachine(t, tt.missing...)
			if tt.edit != nil {
				tt.edit(t, &o)
			}
			r := CheckGPUPrereqs(context.Background(), tt.device, o)
			if !r.Checked {
				t.Fatalf("not checked: %s", r.Note)
			}
			got := map[string]string{}
			if r.Driver.Problem != "" {
				got["driver"] = r.Driver.Problem
			}
			vers := map[string]string{"driver": r.Driver.Version}
			for _, l := range r.Libraries {
				if l.Problem != "" {
					got[l.Name] = l.Problem
				}
				vers[l.Name] = l.Version
			}
			for k, w := range tt.want {
				if got[k] != w {
					t.Errorf("%s:\n got %q\nwant %q", k, got[k], w)
				}
			}
			for k, g := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("unexpected problem with %s: %s", k, g)
				}
			}
			for k, w := range tt.versions {
				if vers[k] != w {
					t.Errorf("%s version %q, want %q", k, vers[k], w)
				}
			}
			if r.OK() != (len(tt.want) == 0) {
				t.Errorf("OK() = %v with problems %v", r.OK(), r.Problems())
			}
			wantTRT := tt.device == ProviderTensorRT
			hasTRT := false
			for _, l := range r.Libraries {
				hasTRT = hasTRT || l.Name == "libnvinfer.so.10"
			}
			if hasTRT != wantTRT {
				t.Errorf("libnvinfer checked: %v, device %s", hasTRT, tt.device)
			}
		})
	}
}

// addCacheLine adds an ldconfig -p line to o's loader cache.
func addCacheLine(o *PrereqOptions, soname, path string) {
	prev := o.LoaderCache
	o.LoaderCache = func(ctx context.Context) ([]byte, error) {
		out, err := prev(ctx)
		return append(out, []byte("\t"+soname+" (libc6,x86-64) => "+path+"\n")...), err
	}
}

func TestCheckGPUPrereqsUnreadableCacheAndOtherOS(t *testing.T) {
	o := gpuMachine(t)
	o.LoaderCache = func(context.Context) ([]byte, error) {
		return nil, errors.New("ldconfig not found, so the loader cache was not read")
	}
	r := CheckGPUPrereqs(context.Background(), ProviderCUDA, o)
	// The standard folders still find the libraries.
	if !r.OK() {
		t.Errorf("problems: %v", r.Problems())
	}
	if !strings.Contains(strings.Join(r.Looked, ", "), "the ldconfig cache (unreadable: ldconfig not found, so the loader cache was not read)") {
		t.Errorf("looked: %v", r.Looked)
	}

	o.GOOS = "darwin"
	r = CheckGPUPrereqs(context.Background(), ProviderCUDA, o)
	if r.Checked || r.OK() || r.Note != "kiln checks GPU prerequisites only on Linux, not on darwin" {
		t.Errorf("darwin report %+v", r)
	}
}

func TestPrereqParseLoaderCache(t *testing.T) {
	out := []byte("3 libs found in cache `/etc/ld.so.cache'\n" +
		"\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12\n" +
		"\tlibcudart.so.12 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudart.so.12\n" +
		"\tlibcudart.so.12 (libc6) => /usr/lib/i386-linux-gnu/libcudart.so.12\n" +
		"\tlibcudnn.so.9 (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9\n" +
		"\tlibz.so.1 (libc6,AArch64) => /lib/aarch64-linux-gnu/libz.so.1\n")
	got := parseLoaderCache(out, "amd64")
	want := map[string]string{
		"libcudart.so.12": "/usr/local/cuda/lib64/libcudart.so.12",
		"libcudnn.so.9":   "/usr/lib/x86_64-linux-gnu/libcudnn.so.9",
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s => %q, want %q", k, got[k], v)
		}
	}
}

func TestPrereqParseNVRMVersion(t *testing.T) {
	tests := map[string]string{
		"NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n": "550.54.14",
		"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  560.35.03  Release Build\n":       "560.35.03",
		"NVRM version: NVIDIA UNIX aarch64 Kernel Module  535.104.05\n":                             "535.104.05",
		"garbage": "",
	}
	for in, want := range tests {
		if got := parseNVRMVersion(in); got != want {
			t.Errorf("parseNVRMVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrereqInstallCommand(t *testing.T) {
	tests := []struct {
		name    string
		missing []string
		want    string
	}{
		{"CUDA 12.4 there, cuFFT and cuDNN missing", []string{"libcufft.so.11", "libcudnn.so.9"},
			"sudo apt-get install libcufft-12-4 libcudnn9-cuda-12 (or dnf install; the packages come from NVIDIA's CUDA repository, developer.download.nvidia.com/compute/cuda/repos; 12-4 stands for any CUDA 12 release, best the one you have)"},
		{"no CUDA at all", []string{"libcudart.so.12", "libcublas.so.12", "libcublasLt.so.12"},
			"sudo apt-get install cuda-cudart-12-9 libcublas-12-9 (or dnf install; the packages come from NVIDIA's CUDA repository, developer.download.nvidia.com/compute/cuda/repos; 12-9 stands for any CUDA 12 release, best the one you have)"},
		{"TensorRT missing", []string{"libnvinfer.so.10"},
			"sudo apt-get install libnvinfer10 (or dnf install; the packages come from NVIDIA's CUDA repository, developer.download.nvidia.com/compute/cuda/repos)"},
		{"nothing missing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := CheckGPUPrereqs(context.Background(), ProviderTensorRT, gpuMachine(t, tt.missing...))
			if got := r.installCommand(); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
