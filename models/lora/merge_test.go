package lora

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Module names of the test graph, as torch's exporter names their nodes.
const (
	nodeToK   = "/down_blocks.0/attentions.0/transformer_blocks.0/attn2/to_k/MatMul"
	nodeLin   = "/time_embedding/linear_1/Gemm"
	nodeConv  = "/conv_in/Conv"
	keyToK    = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"
	keyLin    = "lora_unet_time_embedding_linear_1"
	keyConv   = "lora_unet_conv_in"
	ctxWidth  = 8 // the test graph's "text encoder width"
	linIn     = 6
	linOut    = 5
	convIn    = 2
	convOut   = 3
	imageSide = 4
)

// randoms returns n reproducible values in [-1, 1).
func randoms(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

// testGraph is a graph with a Linear exported as MatMul (weight stored
// [in, out]), a Linear exported as Gemm with transB (stored [out, in]) and
// a 3×3 Conv, named as torch names a UNet's nodes. weights holds their
// torch-layout ([out, in, …]) values.
type testGraph struct {
	model   *onnx.Model
	weights map[string][]float32 // by LoRA key
}

func buildTestGraph(t testing.TB, dt onnx.DataType) testGraph {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	b := onnx.NewBuilder("lora_test")
	b.WeightType = dt
	name := func(value, node string) {
		b.Graph().Producer(value).Name = node
	}
	tg := testGraph{weights: map[string][]float32{}}

	// to_k: torch weight [linOut, ctxWidth], stored transposed.
	wk := randoms(r, linOut*ctxWidth)
	tg.weights[keyToK] = wk
	stored := make([]float32, len(wk))
	for o := 0; o < linOut; o++ {
		for i := 0; i < ctxWidth; i++ {
			stored[i*linOut+o] = wk[o*ctxWidth+i]
		}
	}
	ctx := b.Input("ctx", onnx.Float, 1, ctxWidth)
	k := b.MatMul(ctx, b.Weight("onnx::MatMul_101", []int64{ctxWidth, linOut}, stored))
	name(k, nodeToK)
	b.Output(k, "k", onnx.Float, 1, linOut)

	wl := randoms(r, linOut*linIn)
	tg.weights[keyLin] = wl
	emb := b.Input("emb", onnx.Float, 1, linIn)
	l := b.Gemm(emb, b.Weight("time_embedding.linear_1.weight", []int64{linOut, linIn}, wl), "", 1, 0, false, true)
	name(l, nodeLin)
	b.Output(l, "lin", onnx.Float, 1, linOut)

	wc := randoms(r, convOut*convIn*9)
	tg.weights[keyConv] = wc
	x := b.Input("x", onnx.Float, 1, convIn, imageSide, imageSide)
	c := b.Conv(x, b.Weight("conv_in.weight", []int64{convOut, convIn, 3, 3}, wc), "", onnx.ConvOpts{Pads: []int64{1, 1, 1, 1}})
	name(c, nodeConv)
	b.Output(c, "conv", onnx.Float, 1, convOut, imageSide, imageSide)

	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	tg.model = m
	return tg
}

// testLoRA makes a kohya LoRA of rank 2 for the test graph's modules.
func testLoRA(t testing.TB, alpha float32) (*LoRA, map[string]testTensor) {
	t.Helper()
	r := rand.New(rand.NewPCG(3, 4))
	ts := map[string]testTensor{}
	add := func(key string, out int, downShape []int64) {
		in := int(numel(downShape[1:]))
		ts[key+".lora_down.weight"] = testTensor{downShape, randoms(r, 2*in)}
		ts[key+".lora_up.weight"] = testTensor{[]int64{int64(out), 2}, randoms(r, 2*out)}
		ts[key+".alpha"] = testTensor{nil, []float32{alpha}}
	}
	add(keyToK, linOut, []int64{2, ctxWidth})
	add(keyLin, linOut, []int64{2, linIn})
	add(keyConv, convOut, []int64{2, convIn, 3, 3})
	l, err := Parse(encodeSafetensors(ts, nil))
	if err != nil {
		t.Fatal(err)
	}
	return l, ts
}

// wantMerged is W + scale·alpha/rank·up·down in torch layout, in float64.
func wantMerged(w []float32, down, up testTensor, scale, factor float64) []float64 {
	out := int(up.shape[0])
	in := len(down.data) / 2
	res := make([]float64, len(w))
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			d := 0.0
			for r := 0; r < 2; r++ {
				d += float64(up.data[o*2+r]) * float64(down.data[r*in+i])
			}
			res[o*in+i] = float64(w[o*in+i]) + scale*factor*d
		}
	}
	return res
}

func TestApplyMergesEveryLayout(t *testing.T) {
	for _, dt := range []onnx.DataType{onnx.Float, onnx.Float16} {
		t.Run(dt.String(), func(t *testing.T) {
			tg := buildTestGraph(t, dt)
			l, ts := testLoRA(t, 1) // alpha 1, rank 2: factor 0.5
			const scale = 0.8
			n, err := Apply(tg.model, "", "unet/model.onnx", UNet, []Weighted{{Name: "style.safetensors", LoRA: l, Scale: scale}})
			if err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Fatalf("changed %d weights, want 3", n)
			}
			tol := 1e-6
			if dt == onnx.Float16 {
				tol = 2e-3 // one float16 rounding of values below 4
			}
			g := tg.model.Graph
			check := func(key, init string, transposed bool) {
				want := wantMerged(tg.weights[key], ts[key+".lora_down.weight"], ts[key+".lora_up.weight"], scale, 0.5)
				tensor := g.Initializer(init)
				if tensor.DataType != dt {
					t.Fatalf("%s: stored as %s, want %s", init, tensor.DataType, dt)
				}
				got, err := tensor.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				out := int(ts[key+".lora_up.weight"].shape[0])
				in := len(want) / out
				for o := 0; o < out; o++ {
					for i := 0; i < in; i++ {
						v := got[o*in+i]
						if transposed {
							v = got[i*out+o]
						}
						if d := math.Abs(float64(v) - want[o*in+i]); d > tol {
							t.Fatalf("%s[%d,%d] = %v, want %v", init, o, i, v, want[o*in+i])
						}
					}
				}
			}
			check(keyToK, "onnx::MatMul_101", true)
			check(keyLin, "time_embedding.linear_1.weight", false)
			check(keyConv, "conv_in.weight", false)
		})
	}
}

func TestApplyExternalWeights(t *testing.T) {
	tg := buildTestGraph(t, onnx.Float)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := tg.model.SaveExternal(path, onnx.ExternalOptions{File: "model.onnx_data", MinSize: 1}); err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Graph.Initializer("conv_in.weight").IsExternal() {
		t.Fatal("test set-up: weights were not saved externally")
	}
	l, _ := testLoRA(t, 2) // factor 1
	if _, err := Apply(m, dir, path, UNet, []Weighted{{Name: "a", LoRA: l, Scale: 1}, {Name: "b", LoRA: l, Scale: -1}}); err != nil {
		t.Fatal(err)
	}
	// +1 and -1 of the same LoRA cancel; the merged weight is inline.
	w := m.Graph.Initializer("conv_in.weight")
	if w.IsExternal() {
		t.Fatal("merged weight still refers to the external file")
	}
	got, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if d := math.Abs(float64(v - tg.weights[keyConv][i])); d > 1e-5 {
			t.Fatalf("conv_in.weight[%d] = %v, want %v", i, v, tg.weights[keyConv][i])
		}
	}
}

func TestApplyErrors(t *testing.T) {
	down := func(in int64) testTensor { return testTensor{[]int64{2, in}, make([]float32, 2*int(in))} }
	up := func(out int64) testTensor { return testTensor{[]int64{out, 2}, make([]float32, 2*int(out))} }
	lora := func(mods map[string][2]testTensor) *LoRA {
		ts := map[string]testTensor{}
		for k, m := range mods {
			ts[k+".lora_down.weight"], ts[k+".lora_up.weight"] = m[0], m[1]
		}
		l, err := Parse(encodeSafetensors(ts, nil))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	tests := []struct {
		name string
		lora *LoRA
		want []string
	}{
		{"none match", lora(map[string][2]testTensor{
			"lora_unet_up_blocks_3_attentions_0_proj_in": {down(4), up(4)},
			"lora_unet_up_blocks_3_attentions_1_proj_in": {down(4), up(4)},
		}), []string{"none of its 2 modules", "lora_unet_up_blocks_3_attentions_0_proj_in", "style.safetensors"}},
		{"some match", lora(map[string][2]testTensor{
			keyConv: {testTensor{[]int64{2, convIn, 3, 3}, make([]float32, 2*convIn*9)}, up(convOut)},
			keyLin:  {down(linIn), up(linOut)},
			"lora_unet_up_blocks_3_attentions_0_proj_in": {down(4), up(4)},
		}), []string{"1 of its 3 modules match no weight", "lora_unet_up_blocks_3_attentions_0_proj_in"}},
		{"other base", lora(map[string][2]testTensor{
			keyToK: {down(2048), up(linOut)},
		}), []string{"made for another base model", "1 of 1 modules", "LoRA 5×2048, model 5×8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := buildTestGraph(t, onnx.Float)
			before, _ := tg.model.Encode()
			_, err := Apply(tg.model, "", "unet/model.onnx", UNet, []Weighted{{Name: "style.safetensors", LoRA: tt.lora, Scale: 1}})
			var me *MatchError
			if !errors.As(err, &me) {
				t.Fatalf("err = %v, want a *MatchError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			after, _ := tg.model.Encode()
			if string(before) != string(after) {
				t.Error("a refused LoRA changed the model")
			}
		})
	}
}

// toKLoRA is a rank-1 LoRA of zeros for the to_k module, in→out wide.
func toKLoRA(t *testing.T, in, out int64) *LoRA {
	t.Helper()
	l, err := Parse(encodeSafetensors(map[string]testTensor{
		keyToK + ".lora_down.weight": {[]int64{1, in}, make([]float32, in)},
		keyToK + ".lora_up.weight":   {[]int64{out, 1}, make([]float32, out)},
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestApplyNamesBases(t *testing.T) {
	// An SDXL LoRA (cross-attention width 2048) on an SD 1.x UNet (768).
	b := onnx.NewBuilder("sd15")
	ctx := b.Input("ctx", onnx.Float, 1, 768)
	k := b.MatMul(ctx, b.Weight("w", []int64{768, 4}, make([]float32, 768*4)))
	b.Graph().Producer(k).Name = nodeToK
	b.Output(k, "k", onnx.Float, 1, 4)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	l := toKLoRA(t, 2048, 4)
	_, err = Apply(m, "", "unet/model.onnx", UNet, []Weighted{{Name: "xl.safetensors", LoRA: l, Scale: 1}})
	var me *MatchError
	if !errors.As(err, &me) || me.LoRABase != "SDXL" || me.ModelBase != "SD 1.x" {
		t.Fatalf("err = %v (%+v), want SDXL LoRA on SD 1.x", err, me)
	}
	if !strings.Contains(err.Error(), "those of SDXL, the model is SD 1.x") {
		t.Errorf("message %q does not name the bases", err)
	}
}

func TestApplySharedWeight(t *testing.T) {
	b := onnx.NewBuilder("shared")
	x := b.Input("x", onnx.Float, 1, 4)
	w := b.Weight("w", []int64{4, 4}, make([]float32, 16))
	y := b.MatMul(x, w)
	b.Graph().Producer(y).Name = nodeToK
	z := b.MatMul(y, w)
	b.Output(z, "z", onnx.Float, 1, 4)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	l := toKLoRA(t, 4, 4)
	if _, err := Apply(m, "", "g", UNet, []Weighted{{Name: "s", LoRA: l, Scale: 1}}); err == nil || !strings.Contains(err.Error(), "share") {
		t.Fatalf("err = %v, want a shared-weight error", err)
	}
}

func TestModuleOf(t *testing.T) {
	tests := []struct {
		name, op, want string
		ok             bool
	}{
		{"/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul", "MatMul", "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", true},
		{"/text_model/encoder/layers.11/mlp/fc2/MatMul_1", "MatMul", "text_model_encoder_layers_11_mlp_fc2", true},
		{"/conv_in/Conv", "Conv", "conv_in", true},
		{"/MatMul", "MatMul", "", false},
		{"MatMul_12", "MatMul", "", false},
		{"/a/b/Add", "MatMul", "", false},
	}
	for _, tt := range tests {
		got, ok := moduleOf(&onnx.Node{Name: tt.name, OpType: tt.op})
		if got != tt.want || ok != tt.ok {
			t.Errorf("moduleOf(%q) = %q, %v; want %q, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
