package generators_test

import (
	"encoding/json"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/pipeline"
)

// TestPlanProviderInKey checks that a generation stage's key holds the
// class of the provider that makes its image (a result made on a GPU is
// not served to a CPU build), that its report facts say the seed, steps,
// model and fingerprint, and that planning still loads no ONNX Runtime:
// with fallback: cpu and a runtime that cannot be made, the class is the
// requested provider's.
func TestPlanProviderInKey(t *testing.T) {
	root := project(t, "", map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml":        "version: 1\nassets:\n  - {id: t, kind: tileable, model: ex, prompt: stone, seed: 42, steps: 3, size: 64}\n",
	})
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		rt   models.RuntimeOptions
		want string
	}{
		{"cpu", models.RuntimeOptions{}, "cpu"},
		{"cuda", models.RuntimeOptions{Provider: "cuda"}, "cuda"},
		{"tensorrt", models.RuntimeOptions{Provider: "tensorrt"}, "tensorrt-fp16"},
		{"tensorrt fp32", models.RuntimeOptions{Provider: "tensorrt", ProviderOptions: map[string]map[string]string{"tensorrt": {"trt_fp16_enable": "0"}}}, "tensorrt-fp32"},
		{"cuda, fallback, no runtime", models.RuntimeOptions{Provider: "cuda", Fallback: "cpu"}, "cuda"},
	}
	params := map[string]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := tc.rt
			rt.Library, rt.CacheDir = noLibrary, t.TempDir()
			ms := generators.NewModelSet(p.Config, root, rt, nil)
			defer ms.Close()
			stages, err := generators.Plan(p, &generators.Env{Models: ms})
			if err != nil {
				t.Fatal(err)
			}
			var gen *pipeline.Stage
			for i := range stages {
				if stages[i].Resource == pipeline.Accelerator {
					gen = &stages[i]
				}
			}
			if gen == nil {
				t.Fatal("no generation stage")
			}
			data, err := json.Marshal(gen.Params)
			if err != nil {
				t.Fatal(err)
			}
			var ps struct {
				Provider string `json:"provider"`
			}
			json.Unmarshal(data, &ps)
			if ps.Provider != tc.want {
				t.Errorf("params provider %q, want %q", ps.Provider, tc.want)
			}
			g := gen.Generation
			if g == nil || g.Seed != 42 || g.Steps != 3 || g.Model != "ex" || g.ModelFingerprint != gen.Models[0] || g.Provider != tc.want {
				t.Errorf("generation %+v (fingerprint %v)", g, gen.Models)
			}
			params[tc.name] = string(data)
		})
	}
	if params["cpu"] == params["cuda"] || params["tensorrt"] == params["tensorrt fp32"] {
		t.Errorf("providers share keys: %v", params)
	}
}
