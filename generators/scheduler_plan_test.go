package generators_test

import (
	"encoding/json"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// TestPlanSchedulerOptions checks that a scheduler: mapping's options are
// stage parameters, so every one of them is in the cache key, and that a
// plain name keeps the parameters (and keys) it had before options existed.
func TestPlanSchedulerOptions(t *testing.T) {
	tests := []struct {
		scheduler string
		want      map[string]any // parameters; nil: absent
	}{
		{"heun", map[string]any{"scheduler": "heun", "karras": nil, "spacing": nil, "eta": nil}},
		{"{name: dpmpp_2m_sde, karras: true, spacing: trailing}",
			map[string]any{"scheduler": "dpmpp_2m_sde", "karras": true, "spacing": "trailing", "eta": nil}},
		{"{name: dpmpp_2m_sde, karras: false, spacing: trailing}",
			map[string]any{"scheduler": "dpmpp_2m_sde", "karras": false, "spacing": "trailing", "eta": nil}},
		{"{name: ddim, eta: 0.3}", map[string]any{"scheduler": "ddim", "karras": nil, "spacing": nil, "eta": 0.3}},
	}
	keys := map[string]string{}
	for _, tt := range tests {
		root := project(t, testmodels.Optimum, map[string]string{
			manifests.ConfigFile: kilnYAML,
			"a.kiln.yaml":        "version: 1\nassets:\n  - {id: t, kind: tileable, model: sd, prompt: p, size: 64, scheduler: " + tt.scheduler + "}\n",
		})
		p, err := manifests.Load(root)
		if err != nil {
			t.Fatal(err)
		}
		ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, CacheDir: t.TempDir()}, nil)
		stages, err := generators.Plan(p, &generators.Env{Models: ms})
		ms.Close()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(stages[0].Params)
		var got map[string]any
		json.Unmarshal(data, &got)
		for k, w := range tt.want {
			if g, ok := got[k]; w == nil && ok || w != nil && g != w {
				t.Errorf("%s: parameter %s = %v, want %v", tt.scheduler, k, g, w)
			}
		}
		keys[tt.scheduler] = string(data)
	}
	seen := map[string]string{}
	for s, k := range keys {
		if other, ok := seen[k]; ok {
			t.Errorf("schedulers %s and %s have the same parameters", s, other)
		}
		seen[k] = s
	}
}
