package models

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/models/testmodels"
	ort "github.com/yalue/onnxruntime_go"
)

func ti(name string, dt ort.TensorElementDataType, shape ...int64) TensorInfo {
	return TensorInfo{Name: name, Type: dt, Shape: shape}
}

const f32, i64 = ort.TensorElementDataTypeFloat, ort.TensorElementDataTypeInt64

// sd15UNet is the signature of an SD 1.5 UNet export with dynamic batch
// and size.
var sd15UNet = GraphInfo{Inputs: []TensorInfo{
	ti("sample", f32, -1, 4, -1, -1), ti("timestep", i64, -1), ti("encoder_hidden_states", f32, -1, -1, 768),
}}

// mixedPlan is three 512² images and one 768×512 one, three of them
// guided.
var mixedPlan = ShapePlan{
	Sizes:   []ImageSize{{512, 512}, {512, 512}, {768, 512}, {512, 512}},
	Batches: []int{2, 2, 1, 2},
}

func TestProfileFor(t *testing.T) {
	sdxl := GraphInfo{Inputs: []TensorInfo{
		ti("sample", f32, -1, 4, -1, -1), ti("timestep", f32), ti("encoder_hidden_states", f32, -1, 77, 2048),
		ti("text_embeds", f32, -1, 1280), ti("time_ids", f32, -1, 6),
	}}
	lcm := GraphInfo{Inputs: []TensorInfo{
		ti("sample", f32, -1, 4, -1, -1), ti("timestep", f32, -1), ti("encoder_hidden_states", f32, -1, 77, 768), ti("timestep_cond", f32, -1, 256),
	}}
	tests := []struct {
		name          string
		info          GraphInfo
		plan          ShapePlan
		min, opt, max string
		why           string
	}{
		{"sd15 unet", sd15UNet, mixedPlan,
			"sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768",
			"sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768",
			"sample:2x4x64x96,timestep:2,encoder_hidden_states:2x77x768", ""},
		{"both orientations", sd15UNet, ShapePlan{Sizes: []ImageSize{{768, 512}, {512, 768}}, Batches: []int{2}},
			"sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768",
			"sample:2x4x64x96,timestep:2,encoder_hidden_states:2x77x768",
			"sample:2x4x96x96,timestep:2,encoder_hidden_states:2x77x768", ""},
		{"no batches given", sd15UNet, ShapePlan{Sizes: []ImageSize{{512, 512}}},
			"sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768",
			"sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768",
			"sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768", ""},
		{"sdxl unet, scalar timestep", sdxl, ShapePlan{Sizes: []ImageSize{{1024, 1024}}, Batches: []int{2}},
			"sample:2x4x128x128,encoder_hidden_states:2x77x2048,text_embeds:2x1280,time_ids:2x6",
			"sample:2x4x128x128,encoder_hidden_states:2x77x2048,text_embeds:2x1280,time_ids:2x6",
			"sample:2x4x128x128,encoder_hidden_states:2x77x2048,text_embeds:2x1280,time_ids:2x6", ""},
		{"lcm unet", lcm, ShapePlan{Sizes: []ImageSize{{512, 512}}, Batches: []int{1}},
			"sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768,timestep_cond:1x256",
			"sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768,timestep_cond:1x256",
			"sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768,timestep_cond:1x256", ""},
		{"text encoder", GraphInfo{Inputs: []TensorInfo{ti("input_ids", i64, -1, 77)}}, mixedPlan,
			"input_ids:1x77", "input_ids:2x77", "input_ids:2x77", ""},
		{"text encoder, open length", GraphInfo{Inputs: []TensorInfo{ti("input_ids", i64, -1, -1)}}, ShapePlan{Sizes: []ImageSize{{512, 512}}, Batches: []int{1}},
			"input_ids:1x77", "input_ids:1x77", "input_ids:2x77", ""},
		{"vae decoder", GraphInfo{Inputs: []TensorInfo{ti("latent_sample", f32, -1, 4, -1, -1)}}, mixedPlan,
			"latent_sample:1x4x64x64", "latent_sample:1x4x64x64", "latent_sample:1x4x64x96", ""},
		{"vae encoder", GraphInfo{Inputs: []TensorInfo{ti("sample", f32, -1, 3, -1, -1)}}, mixedPlan,
			"sample:1x3x512x512", "sample:1x3x512x512", "sample:1x3x512x768", ""},
		{"static graph", GraphInfo{Inputs: []TensorInfo{ti("x", f32, 1, 4)}}, mixedPlan, "", "", "", ""},
		{"no sizes", sd15UNet, ShapePlan{}, "", "", "", "the project's image sizes are not known"},
		{"unknown graph", GraphInfo{Inputs: []TensorInfo{ti("sample", f32, 1, 3, -1, -1), ti("alpha_bar", f32, 1)}}, mixedPlan,
			"", "", "", "kiln does not know which diffusion component the graph is"},
		{"open hidden width", GraphInfo{Inputs: []TensorInfo{ti("sample", f32, -1, 4, -1, -1), ti("timestep", i64, -1), ti("encoder_hidden_states", f32, -1, -1, -1)}}, mixedPlan,
			"", "", "", "input encoder_hidden_states float32[-1 -1 -1]: kiln cannot tell what dimension 2 is"},
		{"extra input", GraphInfo{Inputs: []TensorInfo{ti("sample", f32, -1, 4, -1, -1), ti("encoder_hidden_states", f32, -1, 77, 768), ti("controlnet_cond", f32, -1, 3, -1, -1)}}, mixedPlan,
			"", "", "", "input controlnet_cond float32[-1 3 -1 -1] is not one kiln fills"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, why := profileFor(tt.info, tt.plan)
			if why != tt.why {
				t.Errorf("why %q, want %q", why, tt.why)
			}
			if tt.min == "" {
				if p != nil {
					t.Errorf("profile %v, want none", p.ranges)
				}
				return
			}
			if p == nil {
				t.Fatal("no profile")
			}
			min, opt, max := p.options()
			if min != tt.min || opt != tt.opt || max != tt.max {
				t.Errorf("profile\nmin %s\nopt %s\nmax %s\nwant\nmin %s\nopt %s\nmax %s", min, opt, max, tt.min, tt.opt, tt.max)
			}
		})
	}
}

func TestTensorRTGraphOptions(t *testing.T) {
	p, _ := profileFor(sd15UNet, mixedPlan)
	base := trtConfig{cacheRoot: "/c/tensorrt", fingerprint: "sha256:aa", ortVersion: "1.24.3", trtVersion: "10.9.0.34", profile: p}
	opts, dir := tensorRTGraphOptions(base)
	if !regexp.MustCompile(`^/c/tensorrt/[0-9a-f]{32}$`).MatchString(dir) {
		t.Fatalf("engine folder %s, want /c/tensorrt/<32 hex digits>", dir)
	}
	want := map[string]string{
		"device_id":               "0",
		"trt_fp16_enable":         "1",
		"trt_engine_cache_enable": "1",
		"trt_engine_cache_path":   dir,
		"trt_timing_cache_enable": "1",
		"trt_timing_cache_path":   "/c/tensorrt/timing/10.9.0.34",
		"trt_profile_min_shapes":  "sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768",
		"trt_profile_opt_shapes":  "sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768",
		"trt_profile_max_shapes":  "sample:2x4x64x96,timestep:2,encoder_hidden_states:2x77x768",
	}
	if !reflect.DeepEqual(opts, want) {
		t.Errorf("options:\n%v\nwant:\n%v", opts, want)
	}

	other, _ := profileFor(sd15UNet, ShapePlan{Sizes: []ImageSize{{1024, 1024}}})
	tests := []struct {
		name    string
		change  func(c *trtConfig)
		sameDir bool
	}{
		{"another device", func(c *trtConfig) { c.deviceID = 1 }, true},
		{"another graph", func(c *trtConfig) { c.fingerprint = "sha256:bb" }, false},
		{"other sizes", func(c *trtConfig) { c.profile = other }, false},
		{"no profile", func(c *trtConfig) { c.profile = nil }, false},
		{"another TensorRT", func(c *trtConfig) { c.trtVersion = "10.10.0.1" }, false},
		{"another ONNX Runtime", func(c *trtConfig) { c.ortVersion = "1.24.4" }, false},
		{"float32 kernels", func(c *trtConfig) { c.user = map[string]string{"trt_fp16_enable": "0"} }, false},
	}
	for _, tt := range tests {
		c := base
		tt.change(&c)
		_, d := tensorRTGraphOptions(c)
		if (d == dir) != tt.sameDir {
			t.Errorf("%s: engine folder %s (first %s), want same: %v", tt.name, d, dir, tt.sameDir)
		}
	}

	c := base
	c.user = map[string]string{"trt_engine_cache_path": "/fast/engines", "trt_builder_optimization_level": "5"}
	opts, d := tensorRTGraphOptions(c)
	if filepath.Dir(d) != "/fast/engines" || opts["trt_engine_cache_path"] != d || opts["trt_timing_cache_path"] != "/c/tensorrt/timing/10.9.0.34" || opts["trt_builder_optimization_level"] != "5" {
		t.Errorf("user cache path: folder %s, options %v", d, opts)
	}

	c = base
	c.cacheRoot, c.trtVersion = "", ""
	opts, d = tensorRTGraphOptions(c)
	wantOff := maps.Clone(want)
	delete(wantOff, "trt_engine_cache_path")
	delete(wantOff, "trt_timing_cache_path")
	wantOff["trt_engine_cache_enable"], wantOff["trt_timing_cache_enable"] = "0", "0"
	if d != "" || !reflect.DeepEqual(opts, wantOff) {
		t.Errorf("no cache folder: folder %q, options\n%v\nwant\n%v", d, opts, wantOff)
	}
}

func TestGraphFingerprint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "unet")
	graph := filepath.Join(dir, "model.onnx")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("model.onnx", "graph")
	write("model.onnx_data", "weights")
	write("config.json", "{}")
	cache := t.TempDir()
	fp := func() string {
		t.Helper()
		s, err := graphFingerprint(context.Background(), cache, graph, "")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := fp()
	if !strings.HasPrefix(first, "sha256:") || fp() != first {
		t.Fatalf("fingerprint %s is not stable", first)
	}
	write("config.json", `{"changed": true}`)
	if fp() != first {
		t.Error("a config change changed the fingerprint")
	}
	time.Sleep(10 * time.Millisecond) // a new modification time for the hash cache
	write("model.onnx_data", "other weights")
	if fp() == first {
		t.Error("new weights kept the fingerprint")
	}
}

// trtTestGraph is the TensorRT set-up of sd15UNet with mixedPlan's
// profile, or without a profile.
func trtTestGraph(withProfile bool) *trtGraph {
	var p *shapeProfile
	if withProfile {
		p, _ = profileFor(sd15UNet, mixedPlan)
	}
	return newTRTGraph("unet/model.onnx", nil, "", p, sd15UNet)
}

func TestTRTAdmit(t *testing.T) {
	newTestRuntime(t, RuntimeOptions{}) // ONNX Runtime makes the tensors
	values := func(batch, h, w int64) []ort.Value {
		t.Helper()
		s, err := ort.NewEmptyTensor[float32](ort.NewShape(batch, 4, h, w))
		if err != nil {
			t.Fatal(err)
		}
		ts, _ := ort.NewEmptyTensor[int64](ort.NewShape(batch))
		hs, _ := ort.NewEmptyTensor[float32](ort.NewShape(batch, 77, 768))
		t.Cleanup(func() { s.Destroy(); ts.Destroy(); hs.Destroy() })
		return []ort.Value{s, ts, hs}
	}
	steps := []struct {
		profile bool
		b, h, w int64
		want    string
	}{
		{true, 2, 64, 64, ""},
		{true, 1, 64, 96, ""},
		{true, 2, 128, 128, "input shapes outside the optimisation profile: sample 2x4x128x128 (the engine covers 1x4x64x64 to 2x4x64x96)"},
		{true, 2, 128, 128, ""}, // the engine built for it covers it now
		{true, 2, 96, 96, ""},
		{false, 2, 64, 64, "first run, with sample 2x4x64x64, timestep 2, encoder_hidden_states 2x77x768"},
		{false, 2, 64, 64, ""},
		{false, 1, 64, 64, "input shapes outside the optimisation profile: sample 1x4x64x64 (the engine covers 2x4x64x64 to 2x4x64x64), timestep 1 (the engine covers 2 to 2), encoder_hidden_states 1x77x768 (the engine covers 2x77x768 to 2x77x768)"},
	}
	graphs := map[bool]*trtGraph{true: trtTestGraph(true), false: trtTestGraph(false)}
	for i, s := range steps {
		got, outside := graphs[s.profile].admit(sd15UNet.Inputs, values(s.b, s.h, s.w))
		if got != s.want || outside != strings.HasPrefix(s.want, "input shapes outside") {
			t.Errorf("step %d (%dx%dx%d, profile %v):\n%q (outside: %v)\nwant\n%q", i, s.b, s.h, s.w, s.profile, got, outside, s.want)
		}
	}
}

func TestEngineEvents(t *testing.T) {
	var logs logBuffer
	r := &Runtime{log: logs.logger()}
	dir := t.TempDir()
	g := &trtGraph{label: "unet/model.onnx", engineDir: dir}
	var events []EngineEvent
	ctx := WithEngineNotify(context.Background(), func(e EngineEvent) { events = append(events, e) })

	before := engineFiles(dir)
	if err := os.WriteFile(filepath.Join(dir, "TensorrtExecutionProvider_TRTKernel_graph_0_sm86.engine"), []byte("engine"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.engineDone(ctx, g, "new session", before, 192*time.Second)
	r.engineDone(ctx, g, "new session", engineFiles(dir), 1500*time.Millisecond)
	r.engineDone(context.Background(), g, "new session", before, time.Second) // nobody listening

	want := []EngineEvent{
		{Graph: "unet/model.onnx", Provider: ProviderTensorRT, Reason: "new session", Cache: dir, Done: true, Compiled: true, Took: 192 * time.Second},
		{Graph: "unet/model.onnx", Provider: ProviderTensorRT, Reason: "new session", Cache: dir, Done: true, Took: 1500 * time.Millisecond},
	}
	if !reflect.DeepEqual(events, want) {
		t.Fatalf("events:\n%+v\nwant:\n%+v", events, want)
	}
	texts := []struct{ got, want string }{
		{events[0].String(), "compiled the TensorRT engine for unet/model.onnx in 3m12s"},
		{events[0].Note(), "unet/model.onnx 3m12s"},
		{events[1].String(), "loaded the TensorRT engine for unet/model.onnx from the cache in 1.5s"},
		{EngineEvent{Graph: "unet/model.onnx", Reason: "new session"}.String(), "preparing the TensorRT engine for unet/model.onnx (new session; a first build compiles, which takes minutes)"},
	}
	for _, tt := range texts {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
	if n := strings.Count(logs.String(), `msg="compiled TensorRT engine" graph=unet/model.onnx`); n != 2 {
		t.Errorf("%d compile log lines, want 2:\n%s", n, logs.String())
	}
}

func TestPrepareTensorRT(t *testing.T) {
	root := t.TempDir()
	if err := testmodels.Write(root, testmodels.Optimum, testmodels.Options{}); err != nil {
		t.Fatal(err)
	}
	rt := newTestRuntime(t, RuntimeOptions{Shapes: ShapePlan{Sizes: []ImageSize{{64, 64}, {128, 64}}, Batches: []int{2}}})
	rt.trtVersionFn = func() string { return "10.9.0.34" }
	for _, component := range []string{UNet, TextEncoder, VAEDecoder, VAEEncoder} {
		t.Run(component, func(t *testing.T) {
			spec := SessionSpec{Path: filepath.Join(root, component, "model.onnx")}
			info, err := rt.GraphInfo(spec.Path)
			if err != nil {
				t.Fatal(err)
			}
			g, err := rt.prepareTensorRT(context.Background(), spec, info)
			if err != nil {
				t.Fatal(err)
			}
			if hasDynamicInput(info) && g.profile == nil {
				t.Errorf("no profile for %v", info.Inputs)
			}
			if filepath.Dir(g.engineDir) != filepath.Join(rt.cacheDir, "tensorrt") || g.options["trt_engine_cache_path"] != g.engineDir {
				t.Errorf("engine folder %s, options %v", g.engineDir, g.options)
			}
			for _, d := range []string{g.engineDir, g.options["trt_timing_cache_path"]} {
				if st, err := os.Stat(d); err != nil || !st.IsDir() {
					t.Errorf("cache folder %s not made: %v", d, err)
				}
			}
			if g.label != component+"/model.onnx" {
				t.Errorf("label %s", g.label)
			}
			t.Logf("%s: %s", component, g.options["trt_profile_max_shapes"])
		})
	}
}

// TestRunReportsEngineWork checks Session.Run's wiring on a CPU session
// given a TensorRT set-up: a run whose shapes the engine does not cover
// reports the work before and after it; one it covers reports nothing.
func TestRunReportsEngineWork(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	path := filepath.Join(t.TempDir(), "m", "model.onnx")
	writeScaleModel(t, path, 3, 0)
	s, err := rt.Acquire(context.Background(), SessionSpec{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	info, err := rt.GraphInfo(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s.e.trt = newTRTGraph("m/model.onnx", nil, dir, nil, info) // x [batch, 4]: no profile
	var events []EngineEvent
	ctx := WithEngineNotify(context.Background(), func(e EngineEvent) { events = append(events, e) })
	run := func() {
		t.Helper()
		x, _ := ort.NewTensor(ort.NewShape(1, 4), []float32{1, 2, 3, 4})
		y, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 4))
		defer x.Destroy()
		defer y.Destroy()
		if err := s.Run(ctx, []ort.Value{x}, []ort.Value{y}); err != nil {
			t.Fatal(err)
		}
	}
	run()
	run()
	if len(events) != 2 || events[0].Done || !events[1].Done || events[1].Compiled || events[0].Reason != "first run, with x 1x4" || events[1].Cache != dir {
		t.Errorf("events %+v, want a start and a finish (no compile) of the first run", events)
	}
}
