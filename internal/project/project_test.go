package project

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// TestProviderOptionKeysAgree keeps kiln.yaml's table of provider options
// and the one models checks before ONNX Runtime sees them equal.
func TestProviderOptionKeysAgree(t *testing.T) {
	for _, p := range []string{models.ProviderCUDA, models.ProviderTensorRT, models.ProviderOpenVINO} {
		if got, want := manifests.ProviderOptionKeys(p), models.ProviderOptionKeys(p); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: kiln.yaml accepts\n%v\nmodels accepts\n%v", p, got, want)
		}
	}
}

// loadProject writes kiln.yaml and one manifest into a fresh folder and
// loads them.
func loadProject(t *testing.T, config, manifest string) (*manifests.Project, string) {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{manifests.ConfigFile: config, "assets.kiln.yaml": manifest} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return m, root
}

func TestRuntimeOptions(t *testing.T) {
	const config = `version: 1
models:
  sd: {path: models/sd, kind: sd15}
  xl: {path: models/xl, kind: sdxl}
  turbo: {path: models/turbo, kind: turbo}
  exemplar: builtin:exemplar
runtime:
  device: %s
  threads: 2
  spinning: false
  memory_budget: 6GiB
  provider_options:
    cuda: {cudnn_conv_algo_search: HEURISTIC}
    tensorrt: {trt_fp16_enable: false, trt_engine_cache_path: .trt, trt_timing_cache_path: /shared/timing}
`
	const manifest = `version: 1
assets:
  - {id: floor, kind: tileable, prompt: stone, model: sd, size: [512, 512]}
  - {id: wall, kind: tileable, prompt: brick, model: sd, size: [768, 512], guidance: 1}
  - {id: hero, kind: concept-art, prompt: knight, model: xl, concept: {hires: {scale: 1.5}}}
  - {id: grass, kind: tileable, prompt: grass, model: turbo}
  - {id: moss, kind: tileable, prompt: moss, model: exemplar}
`
	spinOff := false
	type want struct {
		provider string
		deviceID int
		shapes   models.ShapePlan
	}
	plan := models.ShapePlan{
		Sizes: []models.ImageSize{{Width: 512, Height: 512}, {Width: 768, Height: 512}, {Width: 1024, Height: 1024}, {Width: 1536, Height: 1536}, {Width: 512, Height: 512}},
		// The last is runtime.batch's default on tensorrt, 2, times two
		// rows: batched calls stack that many guided images.
		Batches: []int{2, 1, 2, 2, 1, 4},
	}
	cases := []struct {
		name   string
		device string
		ro     RuntimeOverrides
		want   want
	}{
		{"cpu", "cpu", RuntimeOverrides{DeviceID: -1}, want{"cpu", 0, models.ShapePlan{}}},
		{"tensorrt in kiln.yaml", "tensorrt", RuntimeOverrides{DeviceID: -1}, want{"tensorrt", 0, plan}},
		{"tensorrt from the command line", "cuda", RuntimeOverrides{Device: "TensorRT", DeviceID: 1}, want{"TensorRT", 1, plan}},
		{"cuda from the command line", "tensorrt", RuntimeOverrides{Device: "cuda", DeviceID: -1}, want{"cuda", 0, models.ShapePlan{}}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			m, root := loadProject(t, fmt.Sprintf(config, tt.device), manifest)
			got := runtimeOptions(m, root, tt.ro, nil)
			if got.Provider != tt.want.provider || got.DeviceID != tt.want.deviceID || got.Threads != 2 || got.MemoryBudget != 6<<30 {
				t.Errorf("provider %s, device %d, threads %d, budget %d", got.Provider, got.DeviceID, got.Threads, got.MemoryBudget)
			}
			if !reflect.DeepEqual(got.Spinning, &spinOff) {
				t.Errorf("spinning %v, want off", got.Spinning)
			}
			wantOpts := map[string]map[string]string{
				"cuda":     {"cudnn_conv_algo_search": "HEURISTIC"},
				"tensorrt": {"trt_fp16_enable": "0", "trt_engine_cache_path": filepath.Join(root, ".trt"), "trt_timing_cache_path": "/shared/timing"},
			}
			if !reflect.DeepEqual(got.ProviderOptions, wantOpts) {
				t.Errorf("provider options\n%v\nwant\n%v", got.ProviderOptions, wantOpts)
			}
			if !reflect.DeepEqual(got.Shapes, tt.want.shapes) {
				t.Errorf("shapes\n%+v\nwant\n%+v", got.Shapes, tt.want.shapes)
			}
		})
	}
}

// TestBuildOptionsBatch checks that the pipeline runs as many accelerator
// stages at once as runtime.batch lets share a UNet call: kiln.yaml's
// value, else 4 on GPU providers (the command line's --device included)
// and 1 on the CPU.
func TestBuildOptionsBatch(t *testing.T) {
	for _, tt := range []struct {
		name, runtime string
		ro            RuntimeOverrides
		want          int
	}{
		{"cpu default", "runtime: {device: cpu}\n", RuntimeOverrides{DeviceID: -1}, 1},
		{"cpu set", "runtime: {device: cpu, batch: 3}\n", RuntimeOverrides{DeviceID: -1}, 3},
		{"cuda default", "runtime: {device: cuda}\n", RuntimeOverrides{DeviceID: -1}, generators.DefaultBatch},
		{"cuda off", "runtime: {device: cuda, batch: 1}\n", RuntimeOverrides{DeviceID: -1}, 1},
		{"tensorrt from the command line", "runtime: {device: cpu}\n", RuntimeOverrides{Device: "tensorrt", DeviceID: -1}, generators.DefaultBatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			files := map[string]string{
				manifests.ConfigFile: "version: 1\n" + tt.runtime,
				"assets.kiln.yaml":   "version: 1\nassets:\n  - {id: a, kind: image, image: {source: a.png}}\n",
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Open(root, Options{Runtime: tt.ro})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := p.BuildOptions().AccelJobs; got != tt.want {
				t.Errorf("AccelJobs %d, want %d", got, tt.want)
			}
		})
	}
}
