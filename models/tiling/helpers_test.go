package tiling_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/kiln-dev/kiln/internal/orttest"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/onnx"
	ort "github.com/yalue/onnxruntime_go"
)

// ortLibrary returns the ONNX Runtime library the tests run on, or skips
// the test saying how to provide one.
func ortLibrary(t testing.TB) string { return orttest.Library(t) }

// newRuntime returns a one-thread CPU runtime with a private cache folder.
func newRuntime(t testing.TB) *models.Runtime {
	t.Helper()
	rt, err := models.NewRuntime(models.RuntimeOptions{Library: ortLibrary(t), Threads: 1, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatalf("NewRuntime: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// feed is one graph input: a shape and Go data ([]float32, []uint8, ...).
type feed struct {
	shape []int64
	data  any
}

// result is one output as float64s, with its shape.
type result struct {
	shape []int64
	data  []float64
}

// runModel saves m in a temporary folder, runs it on rt with the inputs in
// graph-input order, and returns its outputs.
func runModel(t testing.TB, rt *models.Runtime, m *onnx.Model, feeds ...feed) []result {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	return runFile(t, rt, models.SessionSpec{Path: path}, feeds...)
}

func runFile(t testing.TB, rt *models.Runtime, spec models.SessionSpec, feeds ...feed) []result {
	t.Helper()
	s, err := rt.Acquire(context.Background(), spec)
	if err != nil {
		t.Fatalf("load %s: %v", spec.Path, err)
	}
	defer s.Release()
	ins := make([]ort.Value, len(feeds))
	for i, f := range feeds {
		v, err := newValue(f)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Destroy()
		ins[i] = v
	}
	outs := make([]ort.Value, len(s.Outputs()))
	if err := s.Run(context.Background(), ins, outs); err != nil {
		t.Fatalf("run %s: %v", spec.Path, err)
	}
	res := make([]result, len(outs))
	for i, v := range outs {
		defer v.Destroy()
		res[i] = result{shape: []int64(v.GetShape()), data: values(t, v)}
	}
	return res
}

func newValue(f feed) (ort.Value, error) {
	shape := ort.NewShape(f.shape...)
	if len(f.shape) == 0 {
		if d, ok := f.data.([]float32); ok && len(d) == 1 {
			return ort.NewScalar(d[0])
		}
	}
	switch d := f.data.(type) {
	case []float32:
		return ort.NewTensor(shape, d)
	case []uint8:
		return ort.NewTensor(shape, d)
	case []int8:
		return ort.NewTensor(shape, d)
	case []int64:
		return ort.NewTensor(shape, d)
	case []int32:
		return ort.NewTensor(shape, d)
	}
	return nil, fmt.Errorf("feed of type %T", f.data)
}

func values(t testing.TB, v ort.Value) []float64 {
	t.Helper()
	switch x := v.(type) {
	case *ort.Tensor[float32]:
		return conv64(x.GetData())
	case *ort.Tensor[uint8]:
		return conv64(x.GetData())
	case *ort.Tensor[int32]:
		return conv64(x.GetData())
	case *ort.Tensor[int64]:
		return conv64(x.GetData())
	}
	t.Fatalf("output of type %T", v)
	return nil
}

func conv64[T float32 | uint8 | int32 | int64](v []T) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// pseudo returns n deterministic values in [-1, 1).
func pseudo(n int, seed uint64) []float32 {
	out := make([]float32, n)
	s := seed*0x9e3779b97f4a7c15 + 1
	for i := range out {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		out[i] = float32(s>>40)/float32(1<<23) - 1
	}
	return out
}

func sameShape(a, b []int64) bool {
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
