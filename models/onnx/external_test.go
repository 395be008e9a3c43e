package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadDataErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
	ext := func(loc, off, length string) *Tensor {
		tt := &Tensor{Name: "w", Dims: []int64{4}, DataType: Float, DataLocation: LocationExternal}
		tt.ExternalData = append(tt.ExternalData, &StringStringEntry{Key: "location", Value: loc})
		if off != "" {
			tt.ExternalData = append(tt.ExternalData, &StringStringEntry{Key: "offset", Value: off})
		}
		if length != "" {
			tt.ExternalData = append(tt.ExternalData, &StringStringEntry{Key: "length", Value: length})
		}
		return tt
	}
	tests := []struct {
		name string
		t    *Tensor
		want string
	}{
		{"ok", ext("w.bin", "0", "16"), ""},
		{"no length reads to end", ext("w.bin", "", ""), ""},
		{"escape", ext("../w.bin", "0", "16"), "inside the model folder"},
		{"absolute", ext("/etc/passwd", "0", "16"), "inside the model folder"},
		{"beyond end", ext("w.bin", "8", "16"), "beyond the end"},
		{"wrong size", ext("w.bin", "0", "8"), "dims [4] of float32 need 16"},
		{"bad offset", ext("w.bin", "-1", "16"), "not a non-negative integer"},
		{"missing file", ext("nope.bin", "0", "16"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.t.ReadData(dir)
			if tt.want == "" {
				if err != nil || len(b) != 16 {
					t.Fatalf("got %d bytes, %v", len(b), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTensorValues(t *testing.T) {
	tests := []struct {
		name string
		t    *Tensor
		want []float32
	}{
		{"raw float32", NewFloat32Tensor("a", []int64{2}, []float32{1.5, -2}), []float32{1.5, -2}},
		{"raw float16", NewFloat16Tensor("a", []int64{2}, []float32{1.5, -2}), []float32{1.5, -2}},
		{"float_data", &Tensor{Dims: []int64{2}, DataType: Float, FloatData: []float32{3, 4}}, []float32{3, 4}},
		{"int32_data float16", &Tensor{Dims: []int64{1}, DataType: Float16, Int32Data: []int32{0x3c00}}, []float32{1}},
		{"double_data", &Tensor{Dims: []int64{1}, DataType: Double, DoubleData: []float64{0.25}}, []float32{0.25}},
		{"scalar", NewFloat32Tensor("s", nil, []float32{7}), []float32{7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.t.Float32s()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
	ints, err := NewInt64Tensor("i", []int64{3}, []int64{-1, 0, 1 << 40}).Int64s()
	if err != nil || ints[0] != -1 || ints[2] != 1<<40 {
		t.Errorf("Int64s = %v, %v", ints, err)
	}
	if _, err := (&Tensor{Name: "bad", Dims: []int64{3}, DataType: Float, RawData: []byte{1, 2}}).Float32s(); err == nil || !strings.Contains(err.Error(), "raw_data has 2 bytes") {
		t.Errorf("size mismatch not reported: %v", err)
	}
	if _, err := (&Tensor{Dims: []int64{1 << 62, 1 << 62}, DataType: Float}).NumElements(); err == nil {
		t.Error("overflowing dims accepted")
	}
}

// bigModel is a graph with n float32 weights in one initializer.
func bigModel(b *testing.B, n int) *Model {
	bb := NewBuilder("big")
	x := bb.Input("x", Float, n)
	w := bb.Weight("w", []int64{int64(n)}, make([]float32, n))
	bb.Output(bb.Add(x, w), "y", Float, n)
	m, err := bb.Model()
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkDecode measures decoding a model with 64 MiB of inline weights
// (raw data is not copied).
func BenchmarkDecode(b *testing.B) {
	data, err := bigModel(b, 16<<20).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode measures encoding the same model.
func BenchmarkEncode(b *testing.B) {
	m := bigModel(b, 16<<20)
	data, _ := m.Encode()
	m, _ = Decode(data)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}
