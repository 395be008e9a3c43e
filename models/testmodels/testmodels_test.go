package testmodels

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models/onnx"
)

var (
	genOnce sync.Once
	genRoot string
	genErr  error
	genDirs map[Flavour]string

	ortOnce sync.Once
	ortErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if genRoot != "" {
		os.RemoveAll(genRoot)
	}
	if ort.IsInitialized() {
		ort.DestroyEnvironment()
	}
	os.Exit(code)
}

// clipDir returns the released CLIP vocabulary folder (../shared/data/clip
// from the repository root), or "" when it is absent.
func clipDir(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
	clip := filepath.Join(dir, "..", "shared", "data", "clip")
	if _, err := os.Stat(filepath.Join(clip, "vocab.json")); err != nil {
		t.Logf("CLIP vocabulary not found at %s; using the tiny generated vocabulary", clip)
		return ""
	}
	return clip
}

// models generates every flavour once per test binary.
func models(t testing.TB) map[Flavour]string {
	t.Helper()
	genOnce.Do(func() {
		genRoot, genErr = os.MkdirTemp("", "kiln-testmodels-")
		if genErr != nil {
			return
		}
		genDirs, genErr = WriteAll(genRoot, Options{VocabDir: clipDir(t)})
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genDirs
}

// needORT initialises ONNX Runtime once, or skips the test saying why.
func needORT(t testing.TB) {
	t.Helper()
	lib := orttest.Library(t)
	ortOnce.Do(func() {
		ort.SetSharedLibraryPath(lib)
		ortErr = ort.InitializeEnvironment(ort.WithLogLevelError())
	})
	if ortErr != nil {
		t.Skip(ortErr)
	}
}

var ortTypes = map[onnx.DataType]ort.TensorElementDataType{
	onnx.Float:   ort.TensorElementDataTypeFloat,
	onnx.Float16: ort.TensorElementDataTypeFloat16,
	onnx.Int64:   ort.TensorElementDataTypeInt64,
	onnx.Int32:   ort.TensorElementDataTypeInt32,
}

// TestSignatures checks what ONNX Runtime reads from every generated graph
// against the flavour's Spec: names, element types, ranks, fixed sizes.
func TestSignatures(t *testing.T) {
	needORT(t)
	for f, dir := range models(t) {
		spec, _ := SpecFor(f)
		for _, c := range spec.Components {
			t.Run(string(f)+"/"+c.Dir, func(t *testing.T) {
				ins, outs, err := ort.GetInputOutputInfo(filepath.Join(dir, c.Dir, "model.onnx"))
				if err != nil {
					t.Fatal(err)
				}
				compareIO(t, "input", ins, c.Inputs)
				// ONNX Runtime reports output sizes its shape inference
				// fixed (out_sample's 4 channels) even where the file says
				// symbolic, as with real exports; outputs are checked for
				// names, types and ranks.
				compareIO(t, "output", outs, c.Outputs)
			})
		}
	}
}

func compareIO(t *testing.T, kind string, got []ort.InputOutputInfo, want []IO) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d %ss, want %d: %v", len(got), kind, len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || g.DataType != ortTypes[w.Type] || len(g.Dimensions) != len(w.Shape) {
			t.Errorf("%s %d = %v, want %s %s rank %d", kind, i, &g, w.Name, w.Type, len(w.Shape))
			continue
		}
		for j, d := range w.Shape {
			if n, ok := d.(int); ok && g.Dimensions[j] != int64(n) {
				t.Errorf("%s %s dim %d = %d, want %d", kind, w.Name, j, g.Dimensions[j], n)
			}
			if _, ok := d.(string); ok && kind == "input" && g.Dimensions[j] != -1 {
				t.Errorf("%s %s dim %d = %d, want symbolic", kind, w.Name, j, g.Dimensions[j])
			}
		}
	}
}

// Concrete sizes for runs: batch 2 (classifier-free guidance), 64×64
// pixel images, 8×8 latents.
const (
	testBatch = 2
	testLat   = 8
)

// concrete resolves a declared shape of component dir for a test run.
func concrete(dir string, io IO) []int64 {
	var dims []int64
	for i, d := range io.Shape {
		switch v := d.(type) {
		case int:
			dims = append(dims, int64(v))
		case string:
			switch {
			case i == 0:
				dims = append(dims, testBatch)
			case strings.HasPrefix(v, "sequence"):
				dims = append(dims, seqLen)
			case strings.Contains(v, "channels"):
				if strings.HasPrefix(dir, "vae") && io.Name == "sample" {
					// Pixel-space "sample" has 3 channels; the UNet's
					// latent "sample" has 4. The dims are named alike.
					dims = append(dims, 3)
				} else {
					dims = append(dims, latentChannels)
				}
			case dir == "vae_encoder" && io.Name == "sample":
				dims = append(dims, 8*testLat) // pixels
			default:
				dims = append(dims, testLat)
			}
		}
	}
	return dims
}

// value is a test tensor with its float64 view for comparisons.
type value struct {
	v    ort.Value
	dims []int64
}

// makeInput creates an input filled by fill(i) (converted to the type).
func makeInput(t *testing.T, io IO, dims []int64, fill func(i int) float64) ort.Value {
	t.Helper()
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	var v ort.Value
	var err error
	switch io.Type {
	case onnx.Float:
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(fill(i))
		}
		if len(dims) == 0 {
			v, err = ort.NewScalar(data[0])
		} else {
			v, err = ort.NewTensor(ort.NewShape(dims...), data)
		}
	case onnx.Float16:
		raw := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(raw[2*i:], onnx.Float32ToFloat16(float32(fill(i))))
		}
		v, err = ort.NewCustomDataTensor(ort.NewShape(dims...), raw, ort.TensorElementDataTypeFloat16)
	case onnx.Int64:
		data := make([]int64, n)
		for i := range data {
			data[i] = int64(fill(i))
		}
		v, err = ort.NewTensor(ort.NewShape(dims...), data)
	case onnx.Int32:
		data := make([]int32, n)
		for i := range data {
			data[i] = int32(fill(i))
		}
		v, err = ort.NewTensor(ort.NewShape(dims...), data)
	default:
		t.Fatalf("no test input for %s", io.Type)
	}
	if err != nil {
		t.Fatalf("input %s %v: %v", io.Name, dims, err)
	}
	return v
}

// floats reads a float32 or float16 output.
func floats(t *testing.T, v ort.Value) []float64 {
	t.Helper()
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		out := make([]float64, len(x.GetData()))
		for i, f := range x.GetData() {
			out[i] = float64(f)
		}
		return out
	case *ort.CustomDataTensor:
		raw := x.GetData()
		out := make([]float64, len(raw)/2)
		for i := range out {
			out[i] = float64(onnx.Float16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:])))
		}
		return out
	}
	t.Fatalf("unexpected output type %T", v)
	return nil
}

// fillFor gives each input plausible values.
func fillFor(name string, seed int) func(i int) float64 {
	switch name {
	case "input_ids":
		// BOS, a few word ids, EOS, padding.
		return func(i int) float64 {
			switch p := i % seqLen; {
			case p == 0:
				return 49406
			case p <= 4:
				return float64(320 + 37*p + 101*seed + 7*(i/seqLen))
			default:
				return 49407
			}
		}
	case "timestep":
		return func(i int) float64 { return float64(951 - 50*seed) }
	case "time_ids":
		return func(i int) float64 { return []float64{1024, 1024, 0, 0, 1024, 1024}[i%6] + float64(seed) }
	}
	return func(i int) float64 { return math.Sin(float64(i)*0.37+float64(seed)) * 0.8 }
}

// run runs a component with inputs filled by fillFor (input name ->
// seed overrides), returning each output's values and shape.
func run(t *testing.T, dir string, c Component, seeds map[string]int) ([][]float64, [][]int64) {
	t.Helper()
	var names []string
	var inputs []ort.Value
	for _, io := range c.Inputs {
		names = append(names, io.Name)
		inputs = append(inputs, makeInput(t, io, concrete(c.Dir, io), fillFor(io.Name, seeds[io.Name])))
	}
	defer func() {
		for _, v := range inputs {
			v.Destroy()
		}
	}()
	var outNames []string
	for _, o := range c.Outputs {
		outNames = append(outNames, o.Name)
	}
	s, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, c.Dir, "model.onnx"), names, outNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	// onnxruntime_go v1.27 copies ORT-allocated float16 outputs with one
	// byte per element, so float16 outputs are allocated here.
	outputs := make([]ort.Value, len(outNames))
	for i, o := range c.Outputs {
		if o.Type == onnx.Float16 {
			outputs[i] = makeInput(t, o, wantShape(c, o), func(int) float64 { return 0 })
		}
	}
	if err := s.Run(inputs, outputs); err != nil {
		t.Fatal(err)
	}
	var vals [][]float64
	var shapes [][]int64
	for _, o := range outputs {
		vals = append(vals, floats(t, o))
		shapes = append(shapes, o.GetShape())
		o.Destroy()
	}
	return vals, shapes
}

// wantShape is an output's expected concrete shape for the test sizes.
func wantShape(c Component, o IO) []int64 {
	dims := concrete(c.Dir, o)
	if c.Dir == "vae_decoder" {
		return []int64{testBatch, 3, 8 * testLat, 8 * testLat}
	}
	return dims
}

// TestRun runs every graph of every flavour: outputs have the declared
// shapes and finite, bounded values, and change when any input changes.
func TestRun(t *testing.T) {
	needORT(t)
	for f, dir := range models(t) {
		spec, _ := SpecFor(f)
		for _, c := range spec.Components {
			t.Run(string(f)+"/"+c.Dir, func(t *testing.T) {
				base, shapes := run(t, dir, c, nil)
				for i, o := range c.Outputs {
					want := wantShape(c, o)
					if fmt.Sprint(shapes[i]) != fmt.Sprint(want) {
						t.Errorf("output %s shape %v, want %v", o.Name, shapes[i], want)
					}
					for j, v := range base[i] {
						if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 100 {
							t.Fatalf("output %s[%d] = %v", o.Name, j, v)
						}
					}
				}
				for _, in := range c.Inputs {
					changed, _ := run(t, dir, c, map[string]int{in.Name: 1})
					if equal(base[0], changed[0]) {
						t.Errorf("output %s does not depend on input %s", c.Outputs[0].Name, in.Name)
					}
				}
			})
		}
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSamplingStaysFinite runs 20 Euler steps through each flavour's UNet
// from noise at σ_max of the SD schedule, the loop kiln's sampler runs.
func TestSamplingStaysFinite(t *testing.T) {
	needORT(t)
	for f, dir := range models(t) {
		spec, _ := SpecFor(f)
		c := *spec.Component("unet")
		t.Run(string(f), func(t *testing.T) {
			sess, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, "unet", "model.onnx"), inputNames(c), []string{"out_sample"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Destroy()
			dims := concrete(c.Dir, c.Inputs[0])
			n := int(dims[0] * dims[1] * dims[2] * dims[3])
			x := make([]float64, n)
			const sigmaMax, steps = 14.6146, 20
			for i := range x {
				x[i] = sigmaMax * math.Sin(float64(i)*12.9898)
			}
			for s := 0; s < steps; s++ {
				sigma := sigmaMax * (1 - float64(s)/steps)
				next := sigmaMax * (1 - float64(s+1)/steps)
				scale := 1 / math.Sqrt(sigma*sigma+1)
				var inputs []ort.Value
				for _, io := range c.Inputs {
					fill := fillFor(io.Name, 0)
					switch io.Name {
					case "sample":
						fill = func(i int) float64 { return x[i] * scale }
					case "timestep":
						ts := float64(999 - 50*s)
						fill = func(int) float64 { return ts }
					}
					inputs = append(inputs, makeInput(t, io, concrete(c.Dir, io), fill))
				}
				out := []ort.Value{nil}
				if spec.Float == onnx.Float16 {
					out[0] = makeInput(t, c.Outputs[0], dims, func(int) float64 { return 0 })
				}
				if err := sess.Run(inputs, out); err != nil {
					t.Fatal(err)
				}
				eps := floats(t, out[0])
				for i := range x {
					x[i] += (next - sigma) * eps[i]
				}
				out[0].Destroy()
				for _, v := range inputs {
					v.Destroy()
				}
			}
			for i, v := range x {
				if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 2*sigmaMax {
					t.Fatalf("latent[%d] = %v after %d steps", i, v, steps)
				}
			}
		})
	}
}

func inputNames(c Component) []string {
	var out []string
	for _, io := range c.Inputs {
		out = append(out, io.Name)
	}
	return out
}

// TestRoundTrip loads every generated graph with models/onnx and saves it
// again: the bytes must be identical, and external weights readable.
func TestRoundTrip(t *testing.T) {
	for f, dir := range models(t) {
		spec, _ := SpecFor(f)
		for _, c := range spec.Components {
			t.Run(string(f)+"/"+c.Dir, func(t *testing.T) {
				path := filepath.Join(dir, c.Dir, "model.onnx")
				in, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				m, err := onnx.Load(path)
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(t.TempDir(), "model.onnx")
				if err := m.Save(out); err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(out)
				if !bytes.Equal(in, got) {
					t.Fatal("Load->Save is not byte-identical")
				}
				files := m.ExternalFiles()
				if c.ExternalData == "" {
					if len(files) != 0 {
						t.Fatalf("unexpected external files %v", files)
					}
					return
				}
				if len(files) != 1 || files[0] != c.ExternalData {
					t.Fatalf("external files %v, want [%s]", files, c.ExternalData)
				}
				external := 0
				for _, init := range m.Graph.Initializers {
					if !init.IsExternal() {
						continue
					}
					external++
					if _, err := init.ReadData(filepath.Dir(path)); err != nil {
						t.Fatal(err)
					}
				}
				if external == 0 {
					t.Fatal("no external initializers")
				}
			})
		}
	}
}

// TestDeterministic checks that the same seed gives the same bytes and a
// different seed different weights.
func TestDeterministic(t *testing.T) {
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	for _, w := range []struct {
		dir  string
		seed uint64
	}{{a, 0}, {b, 1}, {c, 2}} {
		if err := Write(w.dir, Optimum, Options{Seed: w.seed}); err != nil {
			t.Fatal(err)
		}
	}
	for _, rel := range []string{"unet/model.onnx", "unet/model.onnx_data", "vae_decoder/model.onnx", "text_encoder/model.onnx", "tokenizer/vocab.json", "scheduler/scheduler_config.json"} {
		x, _ := os.ReadFile(filepath.Join(a, rel))
		y, _ := os.ReadFile(filepath.Join(b, rel))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs between runs with the same seed", rel)
		}
	}
	x, _ := os.ReadFile(filepath.Join(a, "unet/model.onnx_data"))
	z, _ := os.ReadFile(filepath.Join(c, "unet/model.onnx_data"))
	if bytes.Equal(x, z) {
		t.Error("seed does not change the weights")
	}
}

// TestFolderFiles checks the JSON files of each flavour hold what real
// exports hold.
func TestFolderFiles(t *testing.T) {
	dirs := models(t)
	tests := []struct {
		flavour Flavour
		file    string
		key     string
		want    any // nil means the key must be absent
	}{
		{DiffusersLegacy, "model_index.json", "_class_name", "OnnxStableDiffusionPipeline"},
		{DiffusersLegacy, "scheduler/scheduler_config.json", "prediction_type", nil},
		{DiffusersLegacy, "scheduler/scheduler_config.json", "timestep_spacing", nil},
		{DiffusersLegacy, "scheduler/scheduler_config.json", "beta_schedule", "scaled_linear"},
		{DiffusersLegacy, "vae_decoder/config.json", "", nil},
		{Optimum, "scheduler/scheduler_config.json", "timestep_spacing", "leading"},
		{Optimum, "vae_decoder/config.json", "scaling_factor", 0.18215},
		{Optimum, "unet/config.json", "in_channels", 4.0},
		{SDXL, "vae_decoder/config.json", "scaling_factor", 0.13025},
		{SDXL, "tokenizer_2/special_tokens_map.json", "pad_token", map[string]any{"content": "!", "lstrip": false, "normalized": true, "rstrip": false, "single_word": false}},
		{SDXL, "tokenizer_2/tokenizer_config.json", "pad_token", "!"},
		{SDXL, "tokenizer/tokenizer_config.json", "pad_token", "<|endoftext|>"},
		{SDXL, "model_index.json", "text_encoder_2", []any{"transformers", "CLIPTextModelWithProjection"}},
		{LCM, "scheduler/scheduler_config.json", "_class_name", "LCMScheduler"},
		{LCM, "scheduler/scheduler_config.json", "original_inference_steps", 50.0},
		{LCM, "unet/config.json", "time_cond_proj_dim", 256.0},
		{SD2V, "scheduler/scheduler_config.json", "prediction_type", "v_prediction"},
		{SD2V, "tokenizer/tokenizer_config.json", "pad_token", "!"},
		{Turbo, "scheduler/scheduler_config.json", "timestep_spacing", "trailing"},
		{FP16, "text_encoder/config.json", "torch_dtype", "float16"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.flavour, tt.file, tt.key), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dirs[tt.flavour], tt.file))
			if tt.key == "" {
				if err == nil {
					t.Fatalf("%s exists", tt.file)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			got, ok := m[tt.key]
			if tt.want == nil {
				if ok {
					t.Fatalf("%s = %v, want absent", tt.key, got)
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("%s = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}

func TestTinyVocab(t *testing.T) {
	vocab, merges := tinyVocab()
	var v map[string]int
	if err := json.Unmarshal(vocab, &v); err != nil {
		t.Fatal(err)
	}
	if v["!"] != 0 || v["a</w>"] != 256+v["a"] {
		t.Errorf(`"!" = %d, "a</w>" = %d`, v["!"], v["a</w>"])
	}
	if v["<|endoftext|>"] != len(v)-1 || v["<|startoftext|>"] != len(v)-2 {
		t.Errorf("special tokens not last: %d %d of %d", v["<|startoftext|>"], v["<|endoftext|>"], len(v))
	}
	lines := strings.Split(strings.TrimSpace(string(merges)), "\n")
	if lines[0] != "#version: 0.2" {
		t.Errorf("merges header %q", lines[0])
	}
	for _, l := range lines[1:] {
		p := strings.Split(l, " ")
		if len(p) != 2 {
			t.Fatalf("bad merge %q", l)
		}
		if _, ok := v[p[0]+p[1]]; !ok {
			t.Fatalf("merge %q makes a token missing from the vocabulary", l)
		}
	}
	if _, ok := v["photo</w>"]; !ok {
		t.Error(`no "photo</w>" token`)
	}
}

func TestBadFlavour(t *testing.T) {
	err := Write(t.TempDir(), "sd9", Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown test model flavour "sd9"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := ParseFlavour("fp16"); err != nil {
		t.Fatal(err)
	}
	err = Write(t.TempDir(), Optimum, Options{VocabDir: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkUNet512 times one UNet evaluation at 512×512 output size
// (64×64 latents, batch 2 for guidance), the per-step cost of a generation
// on these models.
func BenchmarkUNet512(b *testing.B) {
	needORT(b)
	dir := models(b)[Optimum]
	spec, _ := SpecFor(Optimum)
	c := *spec.Component("unet")
	sess, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, "unet", "model.onnx"), inputNames(c), []string{"out_sample"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Destroy()
	t := &testing.T{}
	var inputs []ort.Value
	for _, io := range c.Inputs {
		dims := concrete(c.Dir, io)
		if io.Name == "sample" {
			dims = []int64{2, 4, 64, 64}
		}
		inputs = append(inputs, makeInput(t, io, dims, fillFor(io.Name, 0)))
	}
	out, _ := ort.NewEmptyTensor[float32](ort.NewShape(2, 4, 64, 64))
	b.ResetTimer()
	for b.Loop() {
		if err := sess.Run(inputs, []ort.Value{out}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVAEDecoder512 times decoding 64×64 latents to a 512×512 image.
func BenchmarkVAEDecoder512(b *testing.B) {
	needORT(b)
	dir := models(b)[Optimum]
	sess, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, "vae_decoder", "model.onnx"), []string{"latent_sample"}, []string{"sample"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sess.Destroy()
	in, _ := ort.NewTensor(ort.NewShape(1, 4, 64, 64), make([]float32, 4*64*64))
	out, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, 512, 512))
	for b.Loop() {
		if err := sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWrite times generating one flavour's folder.
func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		if err := Write(dir, SDXL, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
