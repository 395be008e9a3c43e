package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/store"
)

// fakeMachine lays out a file system root for the doctor's probes: memory,
// inotify limits, and (gpu) the NVIDIA driver with CUDA 12.4, cuDNN 9.1
// and TensorRT 10.0 where the loader finds them.
func fakeMachine(t *testing.T, gpu bool, watches int) (models.ProbeOptions, models.PrereqOptions) {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/meminfo":                           "MemTotal:       16777216 kB\nMemAvailable:    8388608 kB\n",
		"proc/self/cgroup":                       "0::/kiln\n",
		"sys/fs/cgroup/kiln/memory.max":          "4294967296\n",
		"proc/sys/fs/inotify/max_user_watches":   fmt.Sprintf("%d\n", watches),
		"proc/sys/fs/inotify/max_user_instances": "128\n",
	}
	var cache strings.Builder
	links := map[string]string{}
	if gpu {
		files["proc/driver/nvidia/version"] = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
		for soname, real := range map[string]string{
			"libcuda.so.1": "libcuda.so.550.54.14", "libcudart.so.12": "libcudart.so.12.4.127",
			"libcublas.so.12": "libcublas.so.12.4.5.8", "libcublasLt.so.12": "libcublasLt.so.12.4.5.8",
			"libcufft.so.11": "libcufft.so.11.2.1.3", "libcurand.so.10": "libcurand.so.10.3.5.147",
			"libcudnn.so.9": "libcudnn.so.9.1.0", "libnvinfer.so.10": "libnvinfer.so.10.0.1",
		} {
			files["usr/lib/x86_64-linux-gnu/"+real] = "stand-in"
			fmt.Fprintf(&cache, "\t%s (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/%s\n", soname, soname)
			links[soname] = real
		}
	}
	writeFiles(t, root, files)
	for soname, real := range links {
		if err := os.Symlink(real, filepath.Join(root, "usr/lib/x86_64-linux-gnu", soname)); err != nil {
			t.Fatal(err)
		}
	}
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		return []byte("0, NVIDIA GeForce RTX 4090, 24564, 550.54.14\n"), nil
	}
	look := func(string) (string, error) {
		if gpu {
			return "/usr/bin/nvidia-smi", nil
		}
		return "", errors.New("not found")
	}
	return models.ProbeOptions{Root: root, Run: run, LookPath: look, GOOS: "linux"},
		models.PrereqOptions{Root: root, LoaderCache: func(context.Context) ([]byte, error) { return []byte(cache.String()), nil }, GOOS: "linux", GOARCH: "amd64"}
}

// fakeProbes returns doctor probes that see the fake machine, find lib
// (or libErr), and start the providers in starts.
func fakeProbes(t *testing.T, gpu bool, cache, lib string, libErr error, starts ...string) doctorProbes {
	machine, prereq := fakeMachine(t, gpu, 8192)
	ok := map[string]bool{}
	for _, s := range starts {
		ok[s] = true
	}
	return doctorProbes{
		goos: "linux", goarch: "amd64", goVersion: "go1.26.8",
		getenv:   func(string) string { return "" },
		cacheDir: func() (string, error) { return cache, nil },
		findLibrary: func(models.LibraryOptions) (string, string, error) {
			if libErr != nil {
				return "", "", libErr
			}
			return lib, models.SourceCache, nil
		},
		loadRuntime: func(string) (string, error) { return models.ORTVersion, nil },
		startProvider: func(_, p string) error {
			if ok[p] {
				return nil
			}
			return fmt.Errorf("%s is not in this build", p)
		},
		providerLibraries: func(lib string) []models.ProviderLibrary { return models.ProviderLibraries(lib, "linux") },
		machine:           machine,
		prereq:            prereq,
		verify: func(_ context.Context, m store.LocalModel, _ store.VerifyOptions) store.VerifyResult {
			r := store.VerifyResult{Model: m}
			switch m.Name {
			case "good":
				r.Listed, r.Files, r.Size = 3, 3, 3<<20
			case "damaged":
				r.Listed, r.Files = 3, 2
				r.Problems = []string{"unet/model.onnx has sha256 00, kiln-manifest.json records 11 (modified or corrupt); pull the model again with --replace"}
			case "unrecorded":
				r.Notes = []string{"no kiln-manifest.json, so file hashes were not checked"}
			case "missing":
				r.Problems = []string{"the model folder does not exist"}
			}
			return r
		},
	}
}

func TestDoctorReport(t *testing.T) {
	cache := t.TempDir()
	gpuLib := models.GPULibraryCachePath(cache)
	writeFiles(t, filepath.Dir(gpuLib), map[string]string{
		"libonnxruntime.so." + models.ORTVersion: "x", "libonnxruntime_providers_shared.so": "x",
		"libonnxruntime_providers_cuda.so": "x", "libonnxruntime_providers_tensorrt.so": "x",
	})
	os.Symlink("libonnxruntime.so."+models.ORTVersion, gpuLib)
	cpuLib := models.LibraryCachePath(cache)
	writeFiles(t, filepath.Dir(cpuLib), map[string]string{"libonnxruntime.so.1": "x"})

	project := t.TempDir()
	writeFiles(t, project, map[string]string{
		"kiln.yaml":                          "version: 1\nruntime: {device: cuda, fallback: cpu}\nmodels:\n  good: models/good\n  damaged: models/damaged\n  unrecorded: models/unrecorded\n  missing: models/missing\n",
		"kiln.lock":                          `{"version": 1, "models": {"good": {"hf": "org/repo", "revision": "main", "commit": "` + strings.Repeat("a", 40) + `", "files": [{"path": "model_index.json", "size": 2, "sha256": "` + strings.Repeat("c", 64) + `"}]}}}`,
		"models/good/model_index.json":       "{}",
		"models/damaged/model_index.json":    "{}",
		"models/unrecorded/model_index.json": "{}",
		"art/a/b/c.png":                      "x",
	})

	tests := []struct {
		name  string
		dir   string
		probe doctorProbes
		// check inspects the report; text lists lines the text form holds.
		check func(t *testing.T, r *doctorReport)
		text  []string
	}{
		{
			name:  "GPU machine using the GPU build",
			dir:   project,
			probe: fakeProbes(t, true, cache, gpuLib, nil, "cuda", "tensorrt"),
			check: func(t *testing.T, r *doctorReport) {
				if !r.Runtime.GPUBuild.Installed || !r.Runtime.GPUBuild.InUse || r.Runtime.Version != models.ORTVersion || r.Runtime.Device != "cuda" || r.Runtime.Fallback != "cpu" {
					t.Errorf("runtime %+v", r.Runtime)
				}
				want := map[string][2]bool{"cpu": {true, true}, "cuda": {true, true}, "tensorrt": {true, true}, "openvino": {false, false}, "coreml": {false, false}, "directml": {false, false}}
				for _, p := range r.Providers {
					if w := want[p.Name]; p.CompiledIn != w[0] || p.Starts != w[1] || !p.Checked {
						t.Errorf("provider %+v, want compiled in %v, starts %v", p, w[0], w[1])
					}
				}
				if len(r.GPU.Devices) != 1 || r.GPU.Source != "nvidia-smi" || !r.GPU.Driver.Found || r.GPU.Driver.Version != "550.54.14" {
					t.Errorf("gpu %+v", r.GPU)
				}
				for _, l := range r.GPU.Libraries {
					if l.Problem != "" || l.Version == "" {
						t.Errorf("library %+v", l)
					}
				}
				if r.Memory.CgroupLimitBytes != 4<<30 || r.Memory.TotalBytes != 16<<30 {
					t.Errorf("memory %+v", r.Memory)
				}
			},
			text: []string{
				"GPU build     in use: " + gpuLib,
				"device        cuda (fallback cpu)",
				"GPU       1 NVIDIA GPU(s): 0: NVIDIA GeForce RTX 4090 (24.0 GiB)",
				"  driver  550.54.14 (/usr/lib/x86_64-linux-gnu/libcuda.so.1)",
				"libcudnn.so.9 9.1.0 (/usr/lib/x86_64-linux-gnu/libcudnn.so.9, via ldconfig cache)",
				"memory  16.0 GiB total, 8.0 GiB available; cgroup v2 limit 4.0 GiB",
			},
		},
		{
			name:  "GPU-less machine with the CPU build",
			dir:   project,
			probe: fakeProbes(t, false, t.TempDir(), cpuLib, nil),
			check: func(t *testing.T, r *doctorReport) {
				if r.Runtime.GPUBuild.Installed || r.Runtime.Library != cpuLib {
					t.Errorf("runtime %+v", r.Runtime)
				}
				if len(r.GPU.Devices) != 0 || r.GPU.Driver.Found || !strings.HasPrefix(r.GPU.Summary, "none found: no NVIDIA GPU or driver") {
					t.Errorf("gpu %+v", r.GPU)
				}
				for _, p := range r.Providers {
					if p.Starts != (p.Name == "cpu") {
						t.Errorf("provider %+v", p)
					}
				}
			},
			text: []string{
				"GPU          none found: no NVIDIA GPU or driver (nvidia-smi is not on PATH; no /proc/driver/nvidia/gpus); kiln runs on the CPU, and the cuda and tensorrt devices cannot start here",
				"  driver     none found (no /proc/driver/nvidia/version, so no NVIDIA kernel module is loaded, and the dynamic loader finds no libcuda.so.1)",
				"  not found  libcudart.so.12, libcublas.so.12, libcublasLt.so.12, libcufft.so.11, libcurand.so.10, libcudnn.so.9, libnvinfer.so.10 (CUDA 12.x, cuDNN 9.x, TensorRT 10.x wanted; kiln setup --device cuda says what to install)",
				"  cuda      no (no libonnxruntime_providers_cuda.so beside the library)      no (not in this build)",
			},
		},
		{
			name:  "no library at all",
			dir:   project,
			probe: fakeProbes(t, false, t.TempDir(), "", &models.LibraryNotFoundError{Looked: []string{"--ort-lib: not set"}}),
			check: func(t *testing.T, r *doctorReport) {
				if r.Runtime.Library != "" || !strings.HasPrefix(r.Runtime.Error, "ONNX Runtime library not found") {
					t.Errorf("runtime %+v", r.Runtime)
				}
				for _, p := range r.Providers {
					if p.Checked || p.Starts {
						t.Errorf("provider %+v tried without a library", p)
					}
				}
			},
			text: []string{"ONNX Runtime  not found: ONNX Runtime library not found; looked at: …", "  cpu       no (no library loaded)  not tried (no library loaded)"},
		},
		{
			name:  "models: present, verified, locked",
			dir:   project,
			probe: fakeProbes(t, false, t.TempDir(), cpuLib, nil),
			check: func(t *testing.T, r *doctorReport) {
				got := map[string]doctorModel{}
				for _, m := range r.Models {
					got[m.Name] = m
				}
				want := map[string][4]bool{ // present, checked, verified, locked
					"good":       {true, true, true, true},
					"damaged":    {true, true, false, false},
					"unrecorded": {true, false, false, false},
					"missing":    {false, false, false, false},
				}
				for n, w := range want {
					m := got[n]
					if m.Present != w[0] || m.Checked != w[1] || m.Verified != w[2] || m.Locked != w[3] {
						t.Errorf("%s: %+v, want present/checked/verified/locked %v", n, m, w)
					}
				}
				if !got["builtin:exemplar"].Builtin || !r.Project.Lock.Present {
					t.Errorf("exemplar %+v, lock %+v", got["builtin:exemplar"], r.Project.Lock)
				}
				// art/a/b, art/a, art, models/* and the root; out and .kiln are skipped.
				if r.Inotify.WatchFolders != 8 || !r.Inotify.OK || r.Inotify.MaxUserWatches != 8192 {
					t.Errorf("inotify %+v", r.Inotify)
				}
			},
			text: []string{
				"model present locked verified",
				"good yes yes yes (3 files, 3.0 MiB)",
				"damaged yes no FAILED: unet/model.onnx has sha256 00, kiln-manifest.json records 11 (modified or corrupt); pull the model again with --replace",
				"unrecorded yes no not checked (no kiln-manifest.json records its files)",
				"missing no no FAILED: the model folder does not exist",
				"builtin:exemplar yes - built in",
				"inotify  max_user_watches 8192, max_user_instances 128; kiln watch here needs 8 watches and 1 instance: ok",
			},
		},
		{
			name: "few inotify watches",
			dir:  project,
			probe: func() doctorProbes {
				p := fakeProbes(t, false, t.TempDir(), cpuLib, nil)
				p.machine, _ = fakeMachine(t, false, 5)
				return p
			}(),
			check: func(t *testing.T, r *doctorReport) {
				if r.Inotify.OK || !strings.HasPrefix(r.Inotify.Advice, "kiln watch needs 8 watches but the limit is 5, so it would poll some folders: sudo sysctl fs.inotify.max_user_watches=524288") {
					t.Errorf("inotify %+v", r.Inotify)
				}
			},
		},
		{
			name: "macOS",
			dir:  project,
			probe: func() doctorProbes {
				p := fakeProbes(t, false, t.TempDir(), cpuLib, nil)
				p.goos, p.machine.GOOS, p.prereq.GOOS = "darwin", "", ""
				return p
			}(),
			check: func(t *testing.T, r *doctorReport) {
				if r.GPU.Checked || r.GPU.Note != "kiln checks GPU prerequisites only on Linux, not on darwin" || r.Memory.Problem == "" || r.Inotify.Problem == "" {
					t.Errorf("gpu %+v memory %+v inotify %+v", r.GPU, r.Memory, r.Inotify)
				}
			},
			text: []string{"  driver, CUDA  not checked: kiln checks GPU prerequisites only on Linux, not on darwin"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
			r, err := a.doctor(context.Background(), tt.dir, true, false, tt.probe)
			if err != nil {
				t.Fatalf("doctor: %v", err)
			}
			if r.Kiln.Version != version || r.Kiln.Go != "go1.26.8" || r.Runtime.Expected != models.ORTVersion {
				t.Errorf("header %+v %+v", r.Kiln, r.Runtime)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			var out bytes.Buffer
			if err := writeDoctor(&out, r); err != nil {
				t.Fatal(err)
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(out.String(), "\n") {
				lines[squeeze(l)] = true
			}
			for _, line := range tt.text {
				if !lines[squeeze(line)] {
					t.Errorf("text lacks line %q:\n%s", line, out.String())
				}
			}
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("json: %v", err)
			}
		})
	}
}

// squeeze joins a line's fields with single spaces, so lines compare
// whatever width tabwriter gave their columns.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

func TestDoctorProjectErrors(t *testing.T) {
	broken := t.TempDir()
	writeFiles(t, broken, map[string]string{"kiln.yaml": "version: 1\nmodels: [\n"})
	empty := t.TempDir()
	tests := []struct {
		name     string
		dir      string
		explicit bool
		wantErr  bool
		wantNote string
	}{
		{"broken kiln.yaml", broken, false, true, ""},
		{"named folder without kiln.yaml", empty, true, true, ""},
		{"current folder without kiln.yaml", empty, false, false, "no kiln.yaml in " + empty + ": run kiln doctor in a project folder, or name it, to check its models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
			r, err := a.doctor(context.Background(), tt.dir, tt.explicit, false, fakeProbes(t, false, t.TempDir(), "/lib/libonnxruntime.so.1", nil))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if r == nil || r.Kiln.Version == "" || len(r.Providers) != len(models.Providers) || r.Memory.TotalBytes == 0 {
				t.Fatalf("report incomplete: %+v", r)
			}
			if tt.wantNote != "" && r.Project.Error != tt.wantNote {
				t.Errorf("project note %q, want %q", r.Project.Error, tt.wantNote)
			}
			if tt.wantErr && r.Project.Error == "" {
				t.Error("the project error is not in the report")
			}
		})
	}
}

// TestDoctorOnThisMachine runs the binary on the real machine: it must
// tell the truth about it (no GPU here, normally) and exit 0.
func TestDoctorOnThisMachine(t *testing.T) {
	p := modelProject(t, writeTurbo(t, t.TempDir(), "turbo"))
	if r := kiln(t, p, "models", "verify", "--record", "sd"); r.code != 0 {
		t.Fatalf("verify --record: exit %d: %s", r.code, r.stderr)
	}
	writeFiles(t, p, map[string]string{"kiln.lock": `{"version": 1, "models": {"sd": {"hf": "org/sd", "revision": "main", "commit": "` + strings.Repeat("b", 40) + `", "files": [{"path": "model_index.json", "size": 2, "sha256": "` + strings.Repeat("c", 64) + `"}]}}}` + "\n"})
	r := kiln(t, p, "doctor", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep doctorReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if rep.Kiln.Version == "" || rep.Kiln.OS == "" || rep.Kiln.Go == "" || rep.Runtime.Expected != models.ORTVersion {
		t.Errorf("kiln %+v runtime %+v", rep.Kiln, rep.Runtime)
	}
	if lib, _, err := models.FindLibrary(models.LibraryOptions{}); err == nil {
		if rep.Runtime.Library == "" || rep.Runtime.Version == "" || rep.Runtime.Source == "" {
			t.Errorf("library %s exists, but doctor reports %+v", lib, rep.Runtime)
		}
		if rep.Providers[0].Name != "cpu" || !rep.Providers[0].Starts {
			t.Errorf("cpu provider %+v", rep.Providers[0])
		}
	} else if rep.Runtime.Error == "" {
		t.Errorf("no library here, but doctor reports no error: %+v", rep.Runtime)
	}
	if len(rep.Providers) != len(models.Providers) {
		t.Errorf("providers %+v", rep.Providers)
	}
	if _, err := os.Stat("/proc/driver/nvidia/version"); errors.Is(err, os.ErrNotExist) {
		if len(rep.GPU.Devices) != 0 || rep.GPU.Driver.Found || !strings.HasPrefix(rep.GPU.Summary, "none found") {
			t.Errorf("this machine has no NVIDIA driver, but doctor says %+v", rep.GPU)
		}
	}
	if rep.Memory.TotalBytes <= 0 || rep.Memory.AvailableBytes <= 0 || rep.Inotify.MaxUserWatches <= 0 || rep.Inotify.WatchFolders < 1 {
		t.Errorf("memory %+v inotify %+v", rep.Memory, rep.Inotify)
	}
	var sd *doctorModel
	for i := range rep.Models {
		if rep.Models[i].Name == "sd" {
			sd = &rep.Models[i]
		}
	}
	if sd == nil || !sd.Present || !sd.Checked || !sd.Verified || !sd.Locked || sd.Files == 0 {
		t.Errorf("model sd: %+v", sd)
	}

	// --deep loads the graphs too.
	if rep.Runtime.Version != "" {
		r := kiln(t, p, "doctor", "--json", "--deep")
		var deep doctorReport
		if err := json.Unmarshal([]byte(r.stdout), &deep); err != nil || r.code != 0 {
			t.Fatalf("--deep: exit %d, %v\n%s", r.code, err, r.stderr)
		}
		for _, m := range deep.Models {
			if m.Name == "sd" && (m.Graphs == 0 || !m.Verified) {
				t.Errorf("--deep: model sd %+v", m)
			}
		}
	}

	// The text form is one screen.
	txt := kiln(t, p, "doctor")
	if txt.code != 0 || !strings.Contains(txt.stdout, "\nprovider ") || strings.Count(txt.stdout, "\n") > 45 {
		t.Errorf("exit %d, %d lines:\n%s%s", txt.code, strings.Count(txt.stdout, "\n"), txt.stdout, txt.stderr)
	}
}
