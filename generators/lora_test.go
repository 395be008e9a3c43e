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

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLoRAMatchesTorchMerge is the end-to-end proof of the LoRA merge.
// models/lora/testdata holds a tiny diffusers-named UNet and text encoder
// exported by torch, a random kohya LoRA for both, and the same two graphs
// exported after torch merged the LoRA into their weights. Model "base"
// is the first pair with the LoRA in kiln.yaml; model "ref" the torch-
// merged pair. The same asset sampled on both (same scheduler, same seed)
// must agree within 2/255 on every pixel.
func TestLoRAMatchesTorchMerge(t *testing.T) {
	const config = `version: 1
models:
  base: {path: models/base, loras: [{path: styles/style.safetensors, scale: 0.8}]}
  plain: models/base
  ref: models/ref
`
	manifest := `version: 1
defaults: {seed: 11, steps: 4, size: [32, 32], scheduler: euler, guidance: 3}
assets:
  - {id: merged, kind: tileable, model: base, prompt: a mossy wall}
  - {id: torch, kind: tileable, model: ref, prompt: a mossy wall}
  - {id: unstyled, kind: tileable, model: plain, prompt: a mossy wall}
`
	root := project(t, "", map[string]string{manifests.ConfigFile: config, "a.kiln.yaml": manifest})
	data := filepath.Join("..", "models", "lora", "testdata")
	for folder, suffix := range map[string]string{"base": "", "ref": "_merged"} {
		dir := filepath.Join(root, "models", folder)
		if err := testmodels.Write(dir, testmodels.Optimum, testmodels.Options{VocabDir: vocabDir(t)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"unet", "text_encoder"} {
			cdir := filepath.Join(dir, c)
			if err := os.RemoveAll(cdir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(cdir, 0o755); err != nil {
				t.Fatal(err)
			}
			copyFile(t, filepath.Join(data, c+suffix+".onnx"), filepath.Join(cdir, "model.onnx"))
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "styles"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(data, "style.safetensors"), filepath.Join(root, "styles", "style.safetensors"))

	s := newSession(t, root)
	s.build()
	merged, ref, unstyled := pixels(s.decode("merged.png")), pixels(s.decode("torch.png")), pixels(s.decode("unstyled.png"))
	worst, effect := 0, 0
	for i := range ref {
		worst = max(worst, absDiff(merged[i]>>8, ref[i]>>8))
		effect = max(effect, absDiff(unstyled[i]>>8, ref[i]>>8))
	}
	clipped := 0
	for i, v := range ref {
		if i%4 != 3 && (v>>8 == 0 || v>>8 == 255) {
			clipped++
		}
	}
	t.Logf("kiln's merge vs torch's: up to %d/255; the LoRA itself changes pixels by up to %d/255; %d of %d channel values clipped", worst, effect, clipped, len(ref)*3/4)
	if clipped > len(ref)*3/8 {
		t.Errorf("%d of %d channel values of the reference are 0 or 255: a saturated image would hide differences", clipped, len(ref)*3/4)
	}
	if worst > 2 {
		t.Errorf("kiln's LoRA merge differs from torch's by %d/255 on some pixel, want at most 2", worst)
	}
	if effect < 16 {
		t.Errorf("the LoRA changes the image by only %d/255; the test does not test it", effect)
	}
}

func absDiff(a, b uint32) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}
