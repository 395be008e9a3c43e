package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

const toQNode = "/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul"

// writeToQModel writes y = x·W for x [1,2], with W the identity stored
// as a MatMul initializer in an external data file, under torch's node
// name for a UNet's to_q projection.
func writeToQModel(t *testing.T, dir string) string {
	t.Helper()
	b := onnx.NewBuilder("to_q")
	x := b.Input("x", onnx.Float, 1, 2)
	y := b.MatMul(x, b.Weight("onnx::MatMul_9", []int64{2, 2}, []float32{1, 0, 0, 1}))
	b.Graph().Producer(y).Name = toQNode
	b.Output(y, "y", onnx.Float, 1, 2)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "model.onnx")
	if err := m.SaveExternal(path, onnx.ExternalOptions{File: "model.onnx_data", MinSize: 1}); err != nil {
		t.Fatal(err)
	}
	return path
}

// rank1LoRA is a kohya-style update up·down for to_q with the given
// halves (down [1,2], up [2,1]) and alpha equal to the rank.
func rank1LoRA(down, up []float32) *lora.LoRA {
	return &lora.LoRA{SHA256: "test", Modules: []*lora.Module{{
		Component: lora.UNet,
		Name:      "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
		Key:       "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
		Down:      lora.NewF32Tensor("", []int64{1, int64(len(down))}, down),
		Up:        lora.NewF32Tensor("", []int64{int64(len(up)), 1}, up),
	}}}
}

func runToQ(t *testing.T, s *Session) []float32 {
	t.Helper()
	x, err := ort.NewTensor(ort.NewShape(1, 2), []float32{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Destroy()
	y, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 2))
	if err != nil {
		t.Fatal(err)
	}
	defer y.Destroy()
	if err := s.Run(context.Background(), []ort.Value{x}, []ort.Value{y}); err != nil {
		t.Fatal(err)
	}
	return slices.Clone(y.GetData())
}

// TestSessionMergesLoRA loads one graph plain and with a LoRA at two
// scales: each is its own pooled session, the merge reads the external
// weights, and nothing is written beside the model.
func TestSessionMergesLoRA(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	dir := t.TempDir()
	path := writeToQModel(t, dir)
	before, _ := os.ReadDir(dir)
	// up·down = [[1,1],[0,0]] in torch's [out,in]: y0 += x0+x1.
	l := rank1LoRA([]float32{1, 1}, []float32{1, 0})
	ctx := context.Background()
	for _, tc := range []struct {
		merge *LoRAMerge
		want  []float32
	}{
		{nil, []float32{1, 2}},
		{&LoRAMerge{Component: lora.UNet, LoRAs: []lora.Weighted{{Name: "s", LoRA: l, Scale: 1}}}, []float32{4, 2}},
		{&LoRAMerge{Component: lora.UNet, LoRAs: []lora.Weighted{{Name: "s", LoRA: l, Scale: 0.5}}}, []float32{2.5, 2}},
	} {
		s, err := rt.Acquire(ctx, SessionSpec{Path: path, LoRA: tc.merge})
		if err != nil {
			t.Fatal(err)
		}
		if got := runToQ(t, s); !slices.Equal(got, tc.want) {
			t.Errorf("LoRA %s: y = %v, want %v", tc.merge.poolKey(), got, tc.want)
		}
		s.Release()
	}
	if n := len(rt.PooledSessions()); n != 3 {
		t.Errorf("%d pooled sessions, want 3 (plain and two scales)", n)
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Errorf("the model folder had %d files and has %d after merging", len(before), len(after))
	}
}

func TestSessionLoRAMismatch(t *testing.T) {
	rt := newTestRuntime(t, RuntimeOptions{})
	path := writeToQModel(t, t.TempDir())
	l := rank1LoRA([]float32{1, 1, 1}, []float32{1, 0})
	_, err := rt.Acquire(context.Background(), SessionSpec{Path: path, LoRA: &LoRAMerge{Component: lora.UNet, LoRAs: []lora.Weighted{{Name: "wide.safetensors", LoRA: l, Scale: 1}}}})
	var me *lora.MatchError
	if !errors.As(err, &me) || len(me.Mismatched) != 1 {
		t.Fatalf("err = %v, want a shape mismatch", err)
	}
	if n := len(rt.PooledSessions()); n != 0 {
		t.Errorf("%d sessions pooled after a failed merge", n)
	}
}

func TestLoRAMergesNeedComponents(t *testing.T) {
	l := rank1LoRA([]float32{1}, []float32{1})
	l.Modules[0].Component = lora.TextEncoder2
	_, err := loraMerges(&Folder{Dir: "sd15"}, []lora.Weighted{{Name: "xl.safetensors", LoRA: l, Scale: 1}})
	if err == nil {
		t.Fatal("an SDXL text encoder LoRA was accepted for an SD 1.x folder")
	}
	m, err := loraMerges(&Folder{Dir: "xl", SDXL: true}, []lora.Weighted{{Name: "xl.safetensors", LoRA: l, Scale: 1}})
	if err != nil || m[TextEncoder2] == nil || m[UNet] != nil {
		t.Fatalf("merges %v, %v", m, err)
	}
}

func TestMergedGraphSizeLimit(t *testing.T) {
	path := writeToQModel(t, t.TempDir())
	m := &LoRAMerge{Component: lora.UNet, LoRAs: []lora.Weighted{{Name: "s", LoRA: rank1LoRA([]float32{1, 1}, []float32{1, 0}), Scale: 1}}}
	if _, _, err := mergedGraph(path, "", m, 1<<20); err != nil {
		t.Fatal(err)
	}
	// The merged 2×2 float32 weight is 16 inline bytes.
	_, _, err := mergedGraph(path, "", m, 15)
	var merr *mergeError
	if !errors.As(err, &merr) || !strings.Contains(err.Error(), "above the 2 GB") {
		t.Fatalf("err = %v, want the size limit", err)
	}
}
