package generators_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/pipeline"
)

// These tests plan projects without running them. The model set gets a
// library path that does not exist, so any attempt to load ONNX Runtime
// while planning would fail.

const noLibrary = "/nonexistent/libonnxruntime.so.1"

// planProject loads root and plans it with a model set that cannot load
// ONNX Runtime.
func planProject(t testing.TB, root string) ([]pipeline.Stage, generators.ModelSet, error) {
	t.Helper()
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	rt := p.Config.Runtime
	ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, Provider: rt.Device, DeviceID: rt.DeviceID, CacheDir: t.TempDir()}, nil)
	t.Cleanup(func() { ms.Close() })
	stages, err := generators.Plan(p, &generators.Env{Models: ms})
	return stages, ms, err
}

func TestPlanErrors(t *testing.T) {
	cases := []struct {
		name     string
		config   string
		manifest string
		factor16 bool
		want     string
	}{
		{
			name:     "frame size not a multiple of 8",
			config:   kilnYAML,
			manifest: "version: 1\nassets:\n  - id: s\n    kind: sprite-sheet\n    model: sd\n    prompt: p\n    sprite: {frames: 2, frame_size: 20}\n",
			want:     `a.kiln.yaml:7:37: sprite.frame_size: asset "s": the generated size (frame_size): width 20 is not a multiple of 8, the VAE factor of model "sd" (the model works in 8-pixel blocks; use 16 or 24)`,
		},
		{
			name:     "pixel-art frame size",
			config:   kilnYAML,
			manifest: "version: 1\nassets:\n  - id: s\n    kind: sprite-sheet\n    model: sd\n    prompt: p\n    sprite: {frames: 2, frame_size: [16, 15], pixel_art: {factor: 2}}\n",
			want:     `a.kiln.yaml:7:37: sprite.frame_size: asset "s": the generated size (frame_size × pixel_art.factor): height 30 is not a multiple of 8, the VAE factor of model "sd" (the model works in 8-pixel blocks; use 24 or 32)`,
		},
		{
			name:     "size not a multiple of the model's VAE factor",
			config:   kilnYAML,
			manifest: "version: 1\nassets:\n  - {id: t, kind: tileable, model: sd, prompt: p, size: [512, 520]}\n",
			factor16: true,
			want:     `a.kiln.yaml:3:57: size: asset "t": height 520 is not a multiple of 16, the VAE factor of model "sd" (the model works in 16-pixel blocks; use 512 or 528)`,
		},
		{
			name:     "consistency leaves no step",
			config:   kilnYAML,
			manifest: "version: 1\nassets:\n  - id: s\n    kind: sprite-sheet\n    model: sd\n    prompt: p\n    steps: 4\n    sprite: {frames: 2, consistency: 0.9}\n",
			want:     `a.kiln.yaml:8:38: sprite.consistency: asset "s": consistency 0.9 gives image-to-image strength 0.1, which runs no step at 4 steps (the last steps × strength steps run) (raise steps to 10 or more, or lower consistency)`,
		},
		{
			name:     "incomplete model folder",
			config:   "version: 1\nmodels:\n  sd: models/sd\n  broken: models/broken\n",
			manifest: "version: 1\nassets:\n  - {id: t, kind: tileable, model: broken, prompt: p}\n  - {id: u, kind: tileable, model: broken, prompt: p}\n",
			want:     `kiln.yaml:4:11: models.broken: model "broken": model folder models/broken is incomplete: missing text_encoder/model.onnx, unet/model.onnx, vae_decoder/model.onnx, tokenizer/vocab.json, tokenizer/merges.txt (fix the model folder or its path in kiln.yaml)`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: c.config, "a.kiln.yaml": c.manifest})
			if c.factor16 {
				setVAEFactor(t, filepath.Join(root, "models", "sd"), 16)
			}
			if strings.Contains(c.config, "broken") {
				writeFiles(t, root, map[string]string{"models/broken/model_index.json": "{}"})
			}
			_, _, err := planProject(t, root)
			if err == nil {
				t.Fatal("no error")
			}
			if got := strings.ReplaceAll(err.Error(), root+string(filepath.Separator), ""); got != c.want {
				t.Errorf("error\n got: %s\nwant: %s", got, c.want)
			}
			var list manifests.ErrorList
			if !errors.As(err, &list) {
				t.Errorf("error is %T, want manifests.ErrorList", err)
			}
		})
	}
}

// setVAEFactor rewrites a model folder's VAE configs for a VAE factor of
// 2^k (planning reads it from there).
func setVAEFactor(t testing.TB, dir string, factor int) {
	t.Helper()
	n := 1
	for 1<<(n-1) < factor {
		n++
	}
	for _, c := range []string{"vae_decoder", "vae_encoder"} {
		p := filepath.Join(dir, c, "config.json")
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var cfg map[string]any
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		boc := make([]int, n)
		for i := range boc {
			boc[i] = 8
		}
		cfg["block_out_channels"] = boc
		data, _ = json.Marshal(cfg)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPlanUnknownModel(t *testing.T) {
	root := project(t, "", map[string]string{
		manifests.ConfigFile: "version: 1\nmodels:\n  sd: models/sd\n",
		"a.kiln.yaml":        "version: 1\nassets:\n  - {id: t, kind: tileable, model: sd, prompt: p}\n",
	})
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	// A model set made from another configuration (kiln.yaml changed while
	// watching, say) does not know "sd".
	ms := generators.NewModelSet(&manifests.Config{}, root, models.RuntimeOptions{Library: noLibrary}, nil)
	defer ms.Close()
	_, err = generators.Plan(p, &generators.Env{Models: ms})
	want := `a.kiln.yaml:3:36: model: asset "t": unknown model "sd" (models in kiln.yaml: sd; built-in: builtin:exemplar)`
	if err == nil || err.Error() != want {
		t.Errorf("error\n got: %v\nwant: %s", err, want)
	}
	if _, err := ms.Describe("sd"); !errors.Is(err, generators.ErrUnknownModel) {
		t.Errorf("Describe: %v, want ErrUnknownModel", err)
	}
	// Update teaches it the new configuration.
	ms.(interface{ Update(*manifests.Config) }).Update(p.Config)
	if _, err := ms.Describe("sd"); errors.Is(err, generators.ErrUnknownModel) {
		t.Errorf("Describe after Update: %v", err)
	}
}

func TestPlanGraph(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML + "runtime: {device: cuda, device_id: 1}\n",
		"art/hero.png":       string(pngBytes(t, 16, 16)),
		"a.kiln.yaml": `version: 1
assets:
  - {id: hero, kind: image, image: {source: art/hero.png}}
  - {id: tex, kind: texture, model: sd, prompt: p, from: hero, texture: {maps: [normal, orm]}}
  - {id: walk, kind: sprite-sheet, model: sd, prompt: p, sprite: {frames: 3}}
  - {id: idle, kind: sprite-sheet, model: ex, prompt: stone, from: walk, pick: 2, sprite: {frames: 2}}
  - {id: castle, kind: concept-art, model: sd, prompt: p, concept: {variations: 2, hires: {scale: 1.5}}}
  - {id: moat, kind: tileable, model: ex, prompt: water, from: castle, pick: 1}
`,
	})
	stages, ms, err := planProject(t, root)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		kind    string
		res     pipeline.Resource
		device  string
		deps    []string
		publish []string
	}
	got := map[string]row{}
	var order []string
	for _, s := range stages {
		var pub []string
		for _, p := range s.Publish {
			pub = append(pub, p)
		}
		sort.Strings(pub)
		dev := s.Device
		got[s.ID] = row{s.Kind, s.Resource, dev, s.Deps, pub}
		order = append(order, s.ID)
	}
	acc, cpu := pipeline.Accelerator, pipeline.CPU
	want := map[string]row{
		"hero:source":          {"image.source", cpu, "", nil, []string{"hero.png"}},
		"tex:generate":         {"texture.generate", acc, "cuda:1", []string{"hero:source"}, nil},
		"tex:derive":           {"pbr.derive", cpu, "", []string{"tex:generate"}, []string{"tex_normal.png", "tex_orm.png"}},
		"walk:frame_000":       {"sprite.frame", acc, "cuda:1", nil, nil},
		"walk:frame_001":       {"sprite.frame", acc, "cuda:1", []string{"walk:frame_000"}, nil},
		"walk:frame_002":       {"sprite.frame", acc, "cuda:1", []string{"walk:frame_000"}, nil},
		"walk:sheet":           {"sprite.sheet", cpu, "", []string{"walk:frame_000", "walk:frame_001", "walk:frame_002"}, []string{"walk.json", "walk.png", "walk/frame_000.png", "walk/frame_001.png", "walk/frame_002.png"}},
		"idle:frame_000":       {"sprite.frame", acc, "cuda:1", []string{"walk:frame_002"}, nil},
		"idle:frame_001":       {"sprite.frame", acc, "cuda:1", []string{"walk:frame_002"}, nil},
		"idle:sheet":           {"sprite.sheet", cpu, "", []string{"idle:frame_000", "idle:frame_001"}, []string{"idle.json", "idle.png", "idle/frame_000.png", "idle/frame_001.png"}},
		"castle:variation_000": {"concept.generate", acc, "cuda:1", nil, nil},
		"castle:hires_000":     {"concept.hires", acc, "cuda:1", []string{"castle:variation_000"}, []string{"castle/variation_000.png"}},
		"castle:variation_001": {"concept.generate", acc, "cuda:1", nil, nil},
		"castle:hires_001":     {"concept.hires", acc, "cuda:1", []string{"castle:variation_001"}, []string{"castle/variation_001.png"}},
		"castle:contact":       {"concept.contact", cpu, "", []string{"castle:hires_000", "castle:hires_001"}, []string{"castle.png"}},
		"moat:generate":        {"tileable.generate", acc, "cuda:1", []string{"castle:hires_001"}, []string{"moat.png"}},
	}
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("no stage %s", id)
			continue
		}
		if g.res == cpu {
			g.device = ""
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", id, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("stages %v, want %d", order, len(want))
	}
	if _, err := pipeline.Graph(stages); err != nil {
		t.Errorf("the stages do not form a valid graph: %v", err)
	}
	byID := map[string]*pipeline.Stage{}
	for i := range stages {
		byID[stages[i].ID] = &stages[i]
	}
	if w := byID["moat:generate"].DepWhere["castle:hires_001"]; w != "a.kiln.yaml:8:64" {
		t.Errorf("moat DepWhere %q", w)
	}

	// Resolved parameters: the model's defaults fill what the asset
	// leaves unset.
	params := func(id string) map[string]any {
		data, err := json.Marshal(byID[id].Params)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		return m
	}
	tex := params("tex:generate")
	if tex["steps"] != 20.0 || tex["guidance"] != 7.5 || tex["scheduler"] != "euler" || tex["width"] != 512.0 || tex["init"] != "hero" || tex["strength"] != 0.75 {
		t.Errorf("tex params %v", tex)
	}
	idle := params("idle:frame_001")
	if idle["steps"] != 24.0 || idle["width"] != 256.0 || idle["init"] != "walk#2" || idle["strength"] != 0.5 {
		t.Errorf("idle params %v", idle)
	}
	if strings.Contains(idle["prompt"].(string), "background") {
		t.Errorf("an exemplar flipbook is keyed by default: %v", idle["prompt"])
	}
	if hires := params("castle:hires_001"); hires["width"] != 768.0 || hires["seed"] != params("castle:variation_001")["seed"] {
		t.Errorf("hires params %v", hires)
	}
	fp, err := ms.Fingerprint("sd")
	if err != nil {
		t.Fatal(err)
	}
	if m := byID["tex:generate"].Models; len(m) != 1 || m[0] != fp {
		t.Errorf("tex models %v, want [%s]", m, fp)
	}

	// The exporters' view.
	p, _ := manifests.Load(root)
	if ref, err := generators.MapImage(p.Asset("tex"), "orm"); err != nil || ref != (generators.OutputRef{Stage: "tex:derive", Output: "orm.png"}) {
		t.Errorf("MapImage(tex, orm) = %v, %v", ref, err)
	}
	if _, err := generators.MapImage(p.Asset("tex"), "height"); err == nil {
		t.Error("MapImage of an unlisted map: no error")
	}
	frames, anim, err := generators.Frames(p.Asset("walk"))
	if err != nil || len(frames) != 3 || frames[2] != (generators.OutputRef{Stage: "walk:sheet", Output: "frame_002.png"}) || anim.Output != generators.AnimationOutput {
		t.Errorf("Frames(walk) = %v, %v, %v", frames, anim, err)
	}

	// Running a stage is what loads ONNX Runtime; this model set has no
	// library, so the error says so.
	_, _, err = ms.Open(context.Background(), "sd", generators.OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), noLibrary) {
		t.Errorf("Open without a library: %v", err)
	}
}

// BenchmarkPlan1000 plans a project of 1,000 assets (every kind, two
// models), as a no-op build does before finding every stage cached.
func BenchmarkPlan1000(b *testing.B) {
	var m strings.Builder
	m.WriteString("version: 1\nassets:\n")
	for i := 0; i < 1000; i++ {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&m, "  - {id: a%d, kind: tileable, model: sd, prompt: stone %d, size: 64}\n", i, i)
		case 1:
			fmt.Fprintf(&m, "  - {id: a%d, kind: texture, model: ex, prompt: brick %d}\n", i, i)
		case 2:
			fmt.Fprintf(&m, "  - {id: a%d, kind: sprite-sheet, model: sd, prompt: hero %d, sprite: {frames: 4}}\n", i, i)
		case 3:
			fmt.Fprintf(&m, "  - {id: a%d, kind: concept-art, model: sd, prompt: castle %d, concept: {variations: 2}}\n", i, i)
		case 4:
			fmt.Fprintf(&m, "  - {id: a%d, kind: tileable, model: ex, prompt: grass, from: a%d}\n", i, i-4)
		}
	}
	root := project(b, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": m.String()})
	p, err := manifests.Load(root)
	if err != nil {
		b.Fatal(err)
	}
	ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, CacheDir: b.TempDir()}, nil)
	defer ms.Close()
	var n int
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		stages, err := generators.Plan(p, &generators.Env{Models: ms})
		if err != nil {
			b.Fatal(err)
		}
		n = len(stages)
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(n), "stages")
}

func TestPlanModelFolderChanges(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml":        "version: 1\nassets:\n  - {id: t, kind: tileable, model: sd, prompt: p, size: 64}\n",
	})
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, CacheDir: t.TempDir()}, nil)
	defer ms.Close()
	plan := func() (string, map[string]any) {
		stages, err := generators.Plan(p, &generators.Env{Models: ms})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(stages[0].Params)
		var m map[string]any
		json.Unmarshal(data, &m)
		return stages[0].Models[0], m
	}
	fp1, params1 := plan()
	if fp2, _ := plan(); fp2 != fp1 {
		t.Fatalf("fingerprint changed without a change: %s, %s", fp1, fp2)
	}
	// A new export with another scheduler: a new fingerprint, and the
	// new default scheduler in the parameters.
	cfg := filepath.Join(root, "models", "sd", "scheduler", "scheduler_config.json")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var sc map[string]any
	json.Unmarshal(data, &sc)
	sc["_class_name"] = "DDIMScheduler"
	data, _ = json.Marshal(sc)
	if err := os.WriteFile(cfg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	fp3, params3 := plan()
	if fp3 == fp1 {
		t.Error("the fingerprint did not change with the model's files")
	}
	if params1["scheduler"] != "euler" || params3["scheduler"] != "ddim" {
		t.Errorf("default scheduler before %v, after %v; want euler, then ddim", params1["scheduler"], params3["scheduler"])
	}
}

func TestDescribeDefaults(t *testing.T) {
	cases := []struct {
		fl   testmodels.Flavour
		kind string // kiln.yaml kind, "" to guess
		want generators.ModelInfo
	}{
		{testmodels.Optimum, "", generators.ModelInfo{Family: "sd15", VAEFactor: 8, DefaultSize: 512, Steps: 20, Guidance: 7.5, Scheduler: "euler"}},
		{testmodels.DiffusersLegacy, "", generators.ModelInfo{Family: "sd15", VAEFactor: 8, DefaultSize: 512, Steps: 20, Guidance: 7.5, Scheduler: "euler"}},
		{testmodels.SD2V, "", generators.ModelInfo{Family: "sd2", VAEFactor: 8, DefaultSize: 768, Steps: 20, Guidance: 7.5, Scheduler: "ddim"}},
		{testmodels.SDXL, "", generators.ModelInfo{Family: "sdxl", VAEFactor: 8, DefaultSize: 1024, Steps: 20, Guidance: 5, Scheduler: "euler"}},
		{testmodels.LCM, "", generators.ModelInfo{Family: "lcm", VAEFactor: 8, DefaultSize: 512, Steps: 4, Guidance: 8.5, Scheduler: "lcm"}},
		{testmodels.Turbo, "", generators.ModelInfo{Family: "turbo", VAEFactor: 8, DefaultSize: 512, Steps: 4, Guidance: 0, Scheduler: "euler"}},
		{testmodels.Optimum, "turbo", generators.ModelInfo{Family: "turbo", VAEFactor: 8, DefaultSize: 512, Steps: 4, Guidance: 0, Scheduler: "euler"}},
	}
	for _, c := range cases {
		t.Run(string(c.fl)+"/"+c.kind, func(t *testing.T) {
			entry := "models/sd"
			if c.kind != "" {
				entry = "{path: models/sd, kind: " + c.kind + "}"
			}
			root := project(t, c.fl, map[string]string{manifests.ConfigFile: "version: 1\nmodels:\n  sd: " + entry + "\n"})
			p, err := manifests.Load(root)
			if err != nil {
				t.Fatal(err)
			}
			ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary}, nil)
			defer ms.Close()
			got, err := ms.Describe("sd")
			if err != nil {
				t.Fatal(err)
			}
			c.want.Name = "sd"
			if got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
	ms := generators.NewModelSet(&manifests.Config{}, t.TempDir(), models.RuntimeOptions{Library: noLibrary}, nil)
	defer ms.Close()
	got, err := ms.Describe(manifests.Exemplar)
	if err != nil || got.Family != "exemplar" || got.VAEFactor != 1 || got.DefaultSize != 256 || got.Scheduler != "euler" {
		t.Errorf("builtin:exemplar: %+v, %v", got, err)
	}
	if fp, err := ms.Fingerprint(manifests.Exemplar); err != nil || fp == "" {
		t.Errorf("builtin:exemplar fingerprint %q, %v", fp, err)
	}
}

// TestPlanKeepGoingBrokenModel: without KeepGoing a missing model folder
// fails planning at its line in kiln.yaml; with it, the assets that name
// the model are planned, and their generation stages fail with that same
// error when they run, so the rest of the project builds.
func TestPlanKeepGoingBrokenModel(t *testing.T) {
	root := project(t, "", map[string]string{
		manifests.ConfigFile: "version: 1\nmodels:\n  sd: models/sd\n",
		"a.kiln.yaml":        "version: 1\nassets:\n  - {id: g, kind: concept-art, model: sd, prompt: p, size: 64, steps: 1}\n  - {id: t, kind: tileable, prompt: stone, size: 64}\n",
	})
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	ms := generators.NewModelSet(p.Config, root, models.RuntimeOptions{Library: noLibrary, CacheDir: t.TempDir()}, nil)
	defer ms.Close()
	want := "kiln.yaml:3:7: models.sd: model \"sd\": model folder " + filepath.Join(root, "models", "sd") + " does not exist (fix the model folder or its path in kiln.yaml)"
	if _, err := generators.Plan(p, &generators.Env{Models: ms}); err == nil || err.Error() != want {
		t.Fatalf("error\n got: %v\nwant: %s", err, want)
	}
	stages, err := generators.Plan(p, &generators.Env{Models: ms, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	var gen *pipeline.Stage
	assets := map[string]bool{}
	for i, s := range stages {
		assets[s.Asset] = true
		if s.Asset == "g" && s.Resource == pipeline.Accelerator && gen == nil {
			gen = &stages[i]
		}
	}
	if !assets["g"] || !assets["t"] || gen == nil {
		t.Fatalf("planned assets %v (generation stage of g: %v)", assets, gen != nil)
	}
	rep, err := pipeline.Build(context.Background(), stages, pipeline.Options{Root: root, KeepGoing: true, Only: []string{"g"}})
	if !errors.Is(err, pipeline.ErrFailed) {
		t.Fatalf("build: %v", err)
	}
	for _, s := range rep.Stages {
		if s.ID == gen.ID && (s.Status != pipeline.StatusFailed || s.Error == nil || !strings.Contains(s.Error.Message, want)) {
			t.Fatalf("stage %s: %s %+v, want a failure saying %q", s.ID, s.Status, s.Error, want)
		}
	}
}
