package generators_test

import (
	"context"
	"encoding/json"
	"image"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/pipeline"
)

// toQNode is torch's name for a UNet's first self-attention query
// projection; toQKey is its kohya LoRA key.
const (
	toQNode = "/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul"
	toQKey  = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
)

// nameToQ gives the test UNet's attention query projection torch's node
// name, so a LoRA can find it, and returns its weight's [in, out] dims.
func nameToQ(t *testing.T, root string) []int64 {
	t.Helper()
	path := filepath.Join(root, "models", "sd", "unet", "model.onnx")
	m, err := onnx.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range m.Graph.NodesByOp("MatMul") {
		if w := m.Graph.Initializer(n.Inputs[1]); w != nil && w.Name == "attn.to_q.weight" {
			n.Name = toQNode
			if err := m.Save(path); err != nil {
				t.Fatal(err)
			}
			return w.Dims
		}
	}
	t.Fatal("the test UNet has no attn.to_q MatMul")
	return nil
}

// writeLoRA writes a rank-1 kohya LoRA for module key with down [1, in]
// and up [out, 1] filled with v.
func writeLoRA(t *testing.T, path, key string, in, out int64, v float32) {
	t.Helper()
	fill := func(n int64) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = v * float32(1+i%3)
		}
		return s
	}
	data, err := lora.EncodeSafetensors([]*lora.Tensor{
		lora.NewF32Tensor(key+".lora_down.weight", []int64{1, in}, fill(in)),
		lora.NewF32Tensor(key+".lora_up.weight", []int64{out, 1}, fill(out)),
		lora.NewF32Tensor(key+".alpha", nil, []float32{1}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoRAChangesTheImage(t *testing.T) {
	manifest := `version: 1
defaults: {model: sd, seed: 3, steps: 2, size: [32, 32]}
assets:
  - {id: plain, kind: tileable, prompt: moss}
  - {id: off, kind: tileable, prompt: moss, loras: [{path: styles/s.safetensors, scale: 0}]}
  - {id: styled, kind: tileable, prompt: moss, loras: [{path: styles/s.safetensors, scale: 1.5}]}
`
	root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": manifest})
	dims := nameToQ(t, root)
	writeLoRA(t, filepath.Join(root, "styles", "s.safetensors"), toQKey, dims[0], dims[1], 0.3)
	s := newSession(t, root)
	s.build()
	plain, off, styled := s.decode("plain.png"), s.decode("off.png"), s.decode("styled.png")
	if !reflect.DeepEqual(pixels(plain), pixels(off)) {
		t.Error("a LoRA at scale 0 changed the image")
	}
	if reflect.DeepEqual(pixels(plain), pixels(styled)) {
		t.Error("a LoRA at scale 1.5 left the image unchanged")
	}
	rec := s.recipe("styled.png")
	if got := rec.Extra["loras"]; !strings.HasPrefix(got, "styles/s.safetensors sha256:") || !strings.HasSuffix(got, " scale 1.5") {
		t.Errorf("recipe loras = %q", got)
	}
	if _, ok := s.recipe("plain.png").Extra["loras"]; ok {
		t.Error("the recipe of an image without LoRAs names some")
	}

	// The scale is in the stage's key through its Params, the file
	// through its Files (whose SHA-256 the pipeline hashes).
	for _, st := range s.stages {
		if st.Asset != "styled" || st.Params == nil {
			continue
		}
		if !reflect.DeepEqual(st.Files, []string{"styles/s.safetensors"}) {
			t.Errorf("stage %s Files = %v", st.ID, st.Files)
		}
		p, _ := json.Marshal(st.Params)
		if !strings.Contains(string(p), `"loras":[{"path":"styles/s.safetensors","scale":1.5}]`) {
			t.Errorf("stage %s params %s", st.ID, p)
		}
	}
}

func TestLoRAThatMatchesNothingFailsTheBuild(t *testing.T) {
	manifest := `version: 1
assets:
  - {id: t, kind: tileable, model: sd, prompt: moss, steps: 2, size: [32, 32], loras: [{path: styles/xl.safetensors}]}
`
	root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": manifest})
	writeLoRA(t, filepath.Join(root, "styles", "xl.safetensors"), "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640, 1)
	s := newSession(t, root)
	stages := s.plan()
	rep, err := pipeline.Build(context.Background(), stages, pipeline.Options{Root: s.root, Jobs: 1})
	if err == nil {
		t.Fatal("the build succeeded")
	}
	var msgs []string
	for _, st := range rep.Stages {
		if st.Error != nil {
			msgs = append(msgs, st.Error.Error())
		}
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"LoRA styles/xl.safetensors", "none of its 1 modules", "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"} {
		if !strings.Contains(all, want) {
			t.Errorf("stage errors %q do not mention %q", all, want)
		}
	}
}

func TestPlanLoRAsNeedADiffusionModel(t *testing.T) {
	manifest := `version: 1
assets:
  - {id: t, kind: tileable, model: ex, prompt: moss, loras: [{path: styles/s.safetensors}]}
`
	root := project(t, "", map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": manifest})
	_, _, err := planProject(t, root)
	if err == nil || !strings.Contains(err.Error(), "a.kiln.yaml:3:") || !strings.Contains(err.Error(), "LoRAs apply to Stable Diffusion models") {
		t.Fatalf("err = %v", err)
	}
}

// pixels returns an image's RGBA values.
func pixels(img image.Image) []uint32 {
	b := img.Bounds()
	out := make([]uint32, 0, 4*b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			out = append(out, r, g, bl, a)
		}
	}
	return out
}
