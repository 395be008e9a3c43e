package lora_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

// torchReference is testdata/reference.json, written by
// testdata/gen_tiny.py: a tiny diffusers-named UNet and CLIP text encoder
// exported by torch.onnx, a random kohya LoRA for both (style.safetensors),
// and the outputs of the torch models with the LoRA merged into their
// weights.
type torchReference struct {
	Scale         float64   `json:"scale"`
	Modules       []string  `json:"modules"`
	Timestep      float32   `json:"timestep"`
	Sample        []float32 `json:"sample"`
	Hidden        []float32 `json:"encoder_hidden_states"`
	UNetOut       []float32 `json:"unet_out"`
	InputIDs      []int64   `json:"input_ids"`
	TextOutFirst8 []float32 `json:"text_out_first8"`
}

func readReference(t *testing.T) (torchReference, *lora.LoRA) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref torchReference
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	l, err := lora.Load(filepath.Join("testdata", "style.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return ref, l
}

// mergedTorchExport loads testdata/NAME.onnx and merges the reference
// LoRA into it as component.
func mergedTorchExport(t *testing.T, name, component string, l *lora.LoRA, scale float64) (*onnx.Model, int) {
	t.Helper()
	m, err := onnx.Load(filepath.Join("testdata", name+".onnx"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := lora.Apply(m, "testdata", name+".onnx", component, []lora.Weighted{{Name: "style.safetensors", LoRA: l, Scale: scale}})
	if err != nil {
		t.Fatal(err)
	}
	return m, n
}

// TestTorchExportWeights holds kiln's merge of the kohya LoRA into torch's
// exports to torch's own merge, weight by weight: the node names torch
// keeps find every module (MatMul weights stored transposed, Gemm with
// transB, 3×3 Convs), and the sums agree to float32 rounding.
func TestTorchExportWeights(t *testing.T) {
	ref, l := readReference(t)
	if len(l.Modules) != len(ref.Modules) {
		t.Fatalf("parsed %d modules, the reference has %d", len(l.Modules), len(ref.Modules))
	}
	total := 0
	for _, name := range []string{"unet", "text_encoder"} {
		component := lora.UNet
		if name == "text_encoder" {
			component = lora.TextEncoder
		}
		got, n := mergedTorchExport(t, name, component, l, ref.Scale)
		total += n
		want, err := onnx.Load(filepath.Join("testdata", name+"_merged.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want.Graph.Initializers {
			g := got.Graph.Initializer(w.Name)
			if g == nil || w.DataType != onnx.Float {
				continue
			}
			gv, err1 := g.Float32s()
			wv, err2 := w.Float32s()
			if err1 != nil || err2 != nil || len(gv) != len(wv) {
				t.Fatalf("%s %s: %v %v", name, w.Name, err1, err2)
			}
			for i := range wv {
				if d := math.Abs(float64(gv[i] - wv[i])); d > 1e-5 {
					t.Fatalf("%s: initializer %s[%d] = %v, torch merged %v", name, w.Name, i, gv[i], wv[i])
				}
			}
		}
	}
	if total != len(ref.Modules) {
		t.Errorf("merged %d weights, the LoRA has %d modules", total, len(ref.Modules))
	}
}

// TestTorchExportOutputs runs the merged exports on ONNX Runtime and
// compares them with the merged torch models' outputs.
func TestTorchExportOutputs(t *testing.T) {
	orttest.Init(t)
	ref, l := readReference(t)
	run := func(m *onnx.Model, ins []string, vals []ort.Value, out string, shape ort.Shape) []float32 {
		t.Helper()
		data, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, ins, []string{out}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		y, err := ort.NewEmptyTensor[float32](shape)
		if err != nil {
			t.Fatal(err)
		}
		defer y.Destroy()
		if err := s.Run(vals, []ort.Value{y}); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), y.GetData()...)
	}
	compare := func(what string, got, want []float32) {
		t.Helper()
		worst := 0.0
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
		}
		t.Logf("%s: largest difference from torch %.2g", what, worst)
		if worst > 2e-3 {
			t.Errorf("%s differs from torch by up to %v", what, worst)
		}
	}

	unet, _ := mergedTorchExport(t, "unet", lora.UNet, l, ref.Scale)
	sample, _ := ort.NewTensor(ort.NewShape(1, 4, 4, 4), ref.Sample)
	defer sample.Destroy()
	ts, _ := ort.NewScalar(ref.Timestep)
	defer ts.Destroy()
	ehs, _ := ort.NewTensor(ort.NewShape(1, 77, int64(len(ref.Hidden)/77)), ref.Hidden)
	defer ehs.Destroy()
	got := run(unet, []string{"sample", "timestep", "encoder_hidden_states"}, []ort.Value{sample, ts, ehs}, "out_sample", ort.NewShape(1, 4, 4, 4))
	compare("unet", got, ref.UNetOut)
	// Without the merge the output is far from torch's merged model's,
	// so the comparison above does test the LoRA.
	plain, err := onnx.Load(filepath.Join("testdata", "unet.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	base := run(plain, []string{"sample", "timestep", "encoder_hidden_states"}, []ort.Value{sample, ts, ehs}, "out_sample", ort.NewShape(1, 4, 4, 4))
	effect := 0.0
	for i := range base {
		effect = max(effect, math.Abs(float64(base[i]-ref.UNetOut[i])))
	}
	t.Logf("unet: the LoRA moves the output by up to %.2g", effect)
	if effect < 0.1 {
		t.Errorf("the LoRA moves the UNet's output by only %v; the reference does not test it", effect)
	}

	te, _ := mergedTorchExport(t, "text_encoder", lora.TextEncoder, l, ref.Scale)
	ids, _ := ort.NewTensor(ort.NewShape(1, 77), ref.InputIDs)
	defer ids.Destroy()
	width := int64(len(ref.TextOutFirst8) / 8)
	hidden := run(te, []string{"input_ids"}, []ort.Value{ids}, "last_hidden_state", ort.NewShape(1, 77, width))
	compare("text encoder", hidden[:8*width], ref.TextOutFirst8)
}
