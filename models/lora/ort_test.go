package lora_test

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models/lora"
	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if ort.IsInitialized() {
		ort.DestroyEnvironment()
	}
	os.Exit(code)
}

// TestMergedGraphRuns runs a to_q projection exported as MatMul (weight
// stored [in, out], fp32 and fp16) through ONNX Runtime after a merge, and
// compares it with x·(W + scale·up·down)ᵀ computed in torch's layout.
func TestMergedGraphRuns(t *testing.T) {
	orttest.Init(t)
	const in, out, rank, scale = 6, 4, 2, 0.7
	r := rand.New(rand.NewPCG(5, 6))
	rnd := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 2*r.Float32() - 1
		}
		return v
	}
	w, down, up, x := rnd(out*in), rnd(rank*in), rnd(out*rank), rnd(in)
	stored := make([]float32, in*out)
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			stored[i*out+o] = w[o*in+i]
		}
	}
	l := &lora.LoRA{Modules: []*lora.Module{{
		Component: lora.UNet,
		Name:      "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
		Key:       "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
		Down:      lora.NewF32Tensor("down", []int64{rank, in}, down),
		Up:        lora.NewF32Tensor("up", []int64{out, rank}, up),
		Alpha:     rank, HasAlpha: true,
	}}}
	for _, dt := range []onnx.DataType{onnx.Float, onnx.Float16} {
		t.Run(dt.String(), func(t *testing.T) {
			b := onnx.NewBuilder("to_q")
			b.WeightType = dt
			xv := b.Input("x", onnx.Float, 1, in)
			y := b.MatMul(xv, b.Weight("onnx::MatMul_7", []int64{in, out}, stored))
			b.Graph().Producer(y).Name = "/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul"
			b.Output(y, "y", onnx.Float, 1, out)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lora.Apply(m, "", "to_q.onnx", lora.UNet, []lora.Weighted{{Name: "s", LoRA: l, Scale: scale}}); err != nil {
				t.Fatal(err)
			}
			data, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			s, err := ort.NewDynamicAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			xt, err := ort.NewTensor(ort.NewShape(1, in), x)
			if err != nil {
				t.Fatal(err)
			}
			defer xt.Destroy()
			yt, err := ort.NewEmptyTensor[float32](ort.NewShape(1, out))
			if err != nil {
				t.Fatal(err)
			}
			defer yt.Destroy()
			if err := s.Run([]ort.Value{xt}, []ort.Value{yt}); err != nil {
				t.Fatal(err)
			}
			tol := 1e-5
			if dt == onnx.Float16 {
				tol = 1e-2 // six products of float16-rounded weights
			}
			for o, got := range yt.GetData() {
				want := 0.0
				for i := 0; i < in; i++ {
					d := 0.0
					for k := 0; k < rank; k++ {
						d += float64(up[o*rank+k]) * float64(down[k*in+i])
					}
					want += float64(x[i]) * (float64(w[o*in+i]) + scale*d)
				}
				if math.Abs(float64(got)-want) > tol {
					t.Errorf("y[%d] = %v, want %v", o, got, want)
				}
			}
		})
	}
}
