package onnx

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// convRef is a direct NCHW convolution with zero padding, batch 1.
func convRef(x []float32, c, h, w int, wt []float32, oc, k, pad int, bias []float32) []float32 {
	out := make([]float32, oc*h*w)
	for o := 0; o < oc; o++ {
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				s := bias[o]
				for ci := 0; ci < c; ci++ {
					for ki := 0; ki < k; ki++ {
						for kj := 0; kj < k; kj++ {
							y, xx := i+ki-pad, j+kj-pad
							if y < 0 || y >= h || xx < 0 || xx >= w {
								continue
							}
							s += x[ci*h*w+y*w+xx] * wt[((o*c+ci)*k+ki)*k+kj]
						}
					}
				}
				out[o*h*w+i*w+j] = s
			}
		}
	}
	return out
}

func ramp(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * float32((i*7)%11-5)
	}
	return v
}

func buildConvModel(t *testing.T, weightType DataType) *Model {
	t.Helper()
	b := NewBuilder("conv_test")
	b.WeightType = weightType
	x := b.Input("x", Float, "batch", 2, 5, 6)
	w := b.Weight("w", []int64{3, 2, 3, 3}, ramp(54, 0.1))
	bias := b.Weight("b", []int64{3}, []float32{0.5, -0.25, 0})
	y := b.Conv(x, w, bias, ConvOpts{Pads: []int64{1, 1, 1, 1}})
	y = b.Tanh(y)
	b.Output(y, "y", Float, "batch", 3, 5, 6)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBuilderConvRunsInORT checks that a built graph loads in ONNX Runtime
// and computes what a direct convolution computes, for float32 and float16
// weights.
func TestBuilderConvRunsInORT(t *testing.T) {
	needORT(t)
	for _, wt := range []DataType{Float, Float16} {
		t.Run(wt.String(), func(t *testing.T) {
			m := buildConvModel(t, wt)
			data, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			in := ramp(2*5*6, 0.3)
			xt, err := ort.NewTensor(ort.NewShape(1, 2, 5, 6), in)
			if err != nil {
				t.Fatal(err)
			}
			defer xt.Destroy()
			yt, err := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, 5, 6))
			if err != nil {
				t.Fatal(err)
			}
			defer yt.Destroy()
			s, err := ort.NewAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, []ort.Value{xt}, []ort.Value{yt}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			if err := s.Run(); err != nil {
				t.Fatal(err)
			}
			wts := ramp(54, 0.1)
			if wt == Float16 {
				for i, v := range wts {
					wts[i] = Float16ToFloat32(Float32ToFloat16(v))
				}
			}
			want := convRef(in, 2, 5, 6, wts, 3, 3, 1, []float32{0.5, -0.25, 0})
			for i, v := range yt.GetData() {
				if d := math.Abs(float64(v) - math.Tanh(float64(want[i]))); d > 1e-5 {
					t.Fatalf("y[%d] = %v, want %v", i, v, math.Tanh(float64(want[i])))
				}
			}
		})
	}
}

// TestBuilderRoundTrip checks that a built model survives encode, decode,
// encode byte for byte, also with its weights in an external file.
func TestBuilderRoundTrip(t *testing.T) {
	m := buildConvModel(t, Float)
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	data2, err := m2.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		t.Fatal("re-encoded model differs")
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	if err := m2.SaveExternal(path, ExternalOptions{File: "model.onnx_data", MinSize: 16}); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m3, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w := m3.Graph.Initializer("w")
	if w == nil || !w.IsExternal() {
		t.Fatalf("weight w not external: %+v", w)
	}
	x, err := w.External()
	if err != nil || x.Location != "model.onnx_data" || x.Length != 54*4 {
		t.Fatalf("external = %+v, %v", x, err)
	}
	raw, err := w.ReadData(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := Float32s(Float, raw)
	if want := ramp(54, 0.1); got[53] != want[53] || got[0] != want[0] {
		t.Fatalf("external data mismatch: %v", got[:3])
	}
	if err := m3.Save(filepath.Join(dir, "again.onnx")); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "again.onnx"))
	if !bytes.Equal(onDisk, again) {
		t.Fatal("Load->Save of an external-data model is not byte-identical")
	}
}
