package tiling_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/models/tiling"
)

// syntheticUNet builds a graph shaped like a Stable Diffusion UNet of at
// least nodes nodes: ResNet blocks (group norm written out as exporters
// do, SiLU, two 3×3 convolutions, the timestep embedding added, a
// residual) alternating with attention blocks (1×1 projections around a
// self-attention), stride-2 downsamplers every few blocks. Channels are
// few, since the rewrite's cost depends on the graph, not the weights.
func syntheticUNet(tb testing.TB, nodes int) *onnx.Model {
	tb.Helper()
	const C = 8
	b := onnx.NewBuilder("unet")
	x := b.Input("sample", onnx.Float, "batch", 4, "height", "width")
	temb := b.Input("temb", onnx.Float, "batch", C, 1, 1)
	seed := uint64(1)
	weight := func(dims ...int64) string {
		n := int64(1)
		for _, d := range dims {
			n *= d
		}
		seed++
		return b.Float32Const(dims, pseudo(int(n), seed)...)
	}
	conv := func(x string, in, out, k, stride int64) string {
		o := onnx.ConvOpts{}
		if k > 1 {
			o.Pads = []int64{k / 2, k / 2, k / 2, k / 2}
		}
		if stride > 1 {
			o.Strides = []int64{stride, stride}
		}
		return b.Conv(x, weight(out, in, k, k), weight(out), o)
	}
	norm := func(x string) string {
		g := b.Reshape(x, 0, 2, -1)
		mean := b.ReduceMean(g, true, 2)
		d := b.Sub(g, mean)
		v := b.ReduceMean(b.Mul(d, d), true, 2)
		n := b.Div(d, b.Sqrt(b.Add(v, b.Scalar(1e-5))))
		n = b.ReshapeTo(n, b.Shape(x))
		return b.Add(b.Mul(n, weight(C, 1, 1)), weight(C, 1, 1))
	}
	h := conv(x, 4, C, 3, 1)
	for i := 0; len(b.Graph().Nodes) < nodes; i++ {
		// ResNet block.
		r := conv(b.SiLU(norm(h)), C, C, 3, 1)
		r = b.Add(r, temb)
		r = conv(b.SiLU(norm(r)), C, C, 3, 1)
		h = b.Add(h, r)
		// Attention block.
		a := conv(norm(h), C, C, 1, 1)
		seq := b.Transpose(b.Reshape(a, 0, C, -1), 0, 2, 1)
		q, k, v := b.MatMul(seq, weight(C, C)), b.MatMul(seq, weight(C, C)), b.MatMul(seq, weight(C, C))
		att := b.MatMul(b.Softmax(b.Mul(b.MatMul(q, b.Transpose(k, 0, 2, 1)), b.Scalar(0.35)), -1), v)
		a = b.ReshapeTo(b.Transpose(att, 0, 2, 1), b.Shape(h))
		h = b.Add(h, conv(a, C, C, 1, 1))
		if i%4 == 3 {
			h = conv(h, C, C, 3, 2)
		}
	}
	h = conv(b.SiLU(norm(h)), C, 4, 3, 1)
	b.Output(h, "out_sample", onnx.Float, "batch", 4, nil, nil)
	m, err := b.Model()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// benchRewrite times Rewrite on a fresh decode of data per iteration.
// (Rewrite changes the model it is given.)
func benchRewrite(b *testing.B, data []byte) {
	m, err := onnx.Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	nodes, convs := len(m.Graph.Nodes), len(m.Graph.NodesByOp("Conv"))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m, _ := onnx.Decode(data)
		runtime.GC() // so the decode's garbage is not collected on the clock
		b.StartTimer()
		if _, err := tiling.Rewrite(m, tiling.XY); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(nodes), "nodes")
	b.ReportMetric(float64(convs), "convs")
}

// BenchmarkRewrite times the in-memory rewrite of the largest generated
// test UNet (SDXL's) and of synthetic UNet-shaped graphs of 1,500 and
// 6,000 nodes (a real SD 1.5 UNet export has about 1,500–2,500).
func BenchmarkRewrite(b *testing.B) {
	dir := b.TempDir()
	if err := testmodels.Write(dir, testmodels.SDXL, testmodels.Options{}); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "unet", "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("testmodel-sdxl-unet", func(b *testing.B) { benchRewrite(b, data) })
	for _, n := range []int{1500, 6000} {
		b.Run(fmt.Sprintf("synthetic-%d", n), func(b *testing.B) {
			data, err := syntheticUNet(b, n).Encode()
			if err != nil {
				b.Fatal(err)
			}
			benchRewrite(b, data)
		})
	}
}

// BenchmarkVariant times building a variant of a 1,500-node UNet with
// external weights (load, rewrite, save, link) and finding it again.
func BenchmarkVariant(b *testing.B) {
	src := filepath.Join(b.TempDir(), "unet", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := syntheticUNet(b, 1500).SaveExternal(src, onnx.ExternalOptions{File: "model.onnx_data", MinSize: 64}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			if _, err := tiling.Variant(ctx, src, tiling.XY, b.TempDir()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		cache := b.TempDir()
		if _, err := tiling.Variant(ctx, src, tiling.XY, cache); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := tiling.Variant(ctx, src, tiling.XY, cache); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSyntheticUNetRuns makes sure the benchmark's graph is a valid model
// whose rewrite ONNX Runtime runs.
func TestSyntheticUNetRuns(t *testing.T) {
	rt := newRuntime(t)
	m := syntheticUNet(t, 300)
	feeds := []feed{{[]int64{1, 4, 16, 16}, pseudo(4*16*16, 1)}, {[]int64{1, 8, 1, 1}, pseudo(8, 2)}}
	want := runModel(t, rt, m, feeds...)[0].shape
	if n, err := tiling.Rewrite(m, tiling.XY); err != nil || n == 0 {
		t.Fatalf("Rewrite: %d, %v", n, err)
	}
	if got := runModel(t, rt, m, feeds...)[0].shape; !sameShape(got, want) {
		t.Errorf("output shape %v, was %v", got, want)
	}
}

// BenchmarkInference runs the generated SD-1.5-style VAE decoder and UNet
// (optimum flavour) on 64×64 latents (a 512×512 image), as exported and
// with circular padding, to show what the Slice and Concat copies cost at
// inference.
func BenchmarkInference(b *testing.B) {
	rt := newRuntime(b)
	dir := filepath.Join(b.TempDir(), "model")
	if err := testmodels.Write(dir, testmodels.Optimum, testmodels.Options{}); err != nil {
		b.Fatal(err)
	}
	cache := b.TempDir()
	for _, c := range []struct {
		component string
		feeds     []feed
	}{
		{"vae_decoder", []feed{{[]int64{1, 4, 64, 64}, pseudo(4*64*64, 1)}}},
		{"unet", unetFeeds(64, 64)},
	} {
		src := filepath.Join(dir, c.component, "model.onnx")
		g, err := tiling.Variant(context.Background(), src, tiling.XY, cache)
		if err != nil {
			b.Fatal(err)
		}
		for _, v := range []struct{ name, path string }{{"original", src}, {"circular", g.Path}} {
			b.Run(c.component+"/"+v.name, func(b *testing.B) {
				spec := models.SessionSpec{Path: v.path}
				runFile(b, rt, spec, c.feeds...) // load outside the clock
				for b.Loop() {
					runFile(b, rt, spec, c.feeds...)
				}
			})
		}
	}
}
