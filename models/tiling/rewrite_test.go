package tiling_test

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/onnx"
	"github.com/kiln-dev/kiln/models/tiling"
)

// convCase is one convolution to rewrite and check against a direct
// computation.
type convCase struct {
	name   string
	op     string // Conv (default), ConvInteger, QLinearConv, FusedConv or ConvTranspose
	c, o   int    // input and output channels
	h, w   int
	kh, kw int
	stride [2]int64 // 0 means 1
	dil    [2]int64 // 0 means 1
	pads   [4]int64 // y begin, x begin, y end, x end
	outPad [2]int64 // ConvTranspose's output_padding
	group  int      // 0 means 1
	// autoPad replaces pads in the graph; the reference then uses refPads.
	autoPad string
	refPads [4]int64
	static  bool // declare the input's shape fully (SAME with stride > 1 needs it)
	axes    tiling.Axes
	fp16    bool
	bias    bool
	opset   int64 // 0 means 17
	// untouched: the rewrite must change nothing (1×1, VALID, ...).
	untouched bool
}

func (c convCase) s(i int) int {
	if c.stride[i] == 0 {
		return 1
	}
	return int(c.stride[i])
}

func (c convCase) d(i int) int {
	if c.dil[i] == 0 {
		return 1
	}
	return int(c.dil[i])
}

func (c convCase) groups() int { return max(c.group, 1) }

func (c convCase) refPad() [4]int64 {
	if c.autoPad != "" {
		return c.refPads
	}
	return c.pads
}

var convCases = []convCase{
	{name: "k3 pad1 xy", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, bias: true},
	{name: "k3 pad1 x only", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.X, bias: true},
	{name: "k3 pad1 y only", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.Y, bias: true},
	{name: "k5 pad2", c: 2, o: 2, h: 7, w: 6, kh: 5, kw: 5, pads: [4]int64{2, 2, 2, 2}, axes: tiling.XY},
	{name: "k7 pad3", c: 1, o: 2, h: 8, w: 9, kh: 7, kw: 7, pads: [4]int64{3, 3, 3, 3}, axes: tiling.XY, bias: true},
	{name: "k7 pad3 image smaller than pad", c: 2, o: 2, h: 2, w: 1, kh: 7, kw: 7, pads: [4]int64{3, 3, 3, 3}, axes: tiling.XY},
	{name: "k5 pad2 one pixel", c: 1, o: 1, h: 1, w: 1, kh: 5, kw: 5, pads: [4]int64{2, 2, 2, 2}, axes: tiling.XY},
	{name: "k3 stride2 even", c: 2, o: 3, h: 8, w: 6, kh: 3, kw: 3, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "k3 stride2 odd", c: 2, o: 3, h: 7, w: 9, kh: 3, kw: 3, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "k3 stride2 pad end only (VAE encoder)", c: 3, o: 2, h: 8, w: 8, kh: 3, kw: 3, stride: [2]int64{2, 2}, pads: [4]int64{0, 0, 1, 1}, axes: tiling.XY, bias: true},
	{name: "asymmetric pads", c: 2, o: 2, h: 6, w: 7, kh: 3, kw: 4, pads: [4]int64{1, 2, 0, 1}, axes: tiling.XY},
	{name: "asymmetric pads y only", c: 2, o: 2, h: 6, w: 7, kh: 3, kw: 4, pads: [4]int64{1, 2, 0, 1}, axes: tiling.Y},
	{name: "rectangular kernel", c: 2, o: 2, h: 6, w: 7, kh: 3, kw: 5, pads: [4]int64{1, 2, 1, 2}, axes: tiling.XY},
	{name: "dilation 2", c: 2, o: 2, h: 7, w: 8, kh: 3, kw: 3, dil: [2]int64{2, 2}, pads: [4]int64{2, 2, 2, 2}, axes: tiling.XY},
	{name: "dilation 2 stride 2", c: 2, o: 2, h: 9, w: 8, kh: 3, kw: 3, dil: [2]int64{2, 2}, stride: [2]int64{2, 2}, pads: [4]int64{2, 2, 2, 2}, axes: tiling.XY},
	{name: "groups", c: 4, o: 6, h: 5, w: 6, kh: 3, kw: 3, group: 2, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, bias: true},
	{name: "depthwise", c: 3, o: 3, h: 5, w: 6, kh: 3, kw: 3, group: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "fp16", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, fp16: true, bias: true},
	{name: "fp16 k5 x only", c: 2, o: 3, h: 6, w: 5, kh: 5, kw: 5, pads: [4]int64{2, 2, 2, 2}, axes: tiling.X, fp16: true},
	{name: "opset 9 (Slice attributes)", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, opset: 9, bias: true},
	{name: "SAME_UPPER even kernel", c: 2, o: 2, h: 5, w: 6, kh: 4, kw: 2, autoPad: "SAME_UPPER", refPads: [4]int64{1, 0, 2, 1}, axes: tiling.XY},
	{name: "SAME_LOWER even kernel", c: 2, o: 2, h: 5, w: 6, kh: 4, kw: 2, autoPad: "SAME_LOWER", refPads: [4]int64{2, 1, 1, 0}, axes: tiling.XY},
	{name: "SAME_UPPER stride 2 static", c: 2, o: 2, h: 7, w: 8, kh: 3, kw: 3, stride: [2]int64{2, 2}, autoPad: "SAME_UPPER", refPads: [4]int64{1, 0, 1, 1}, static: true, axes: tiling.XY},
	{name: "1x1 untouched", c: 3, o: 2, h: 4, w: 5, kh: 1, kw: 1, axes: tiling.XY, untouched: true},
	{name: "VALID untouched", c: 2, o: 2, h: 5, w: 6, kh: 3, kw: 3, autoPad: "VALID", axes: tiling.XY, untouched: true},
	{name: "x only, pads only on y", c: 2, o: 2, h: 5, w: 6, kh: 3, kw: 1, pads: [4]int64{1, 0, 1, 0}, axes: tiling.X, untouched: true},
	{name: "ConvInteger", op: "ConvInteger", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "QLinearConv", op: "QLinearConv", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, stride: [2]int64{2, 1}, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "FusedConv", op: "FusedConv", c: 2, o: 3, h: 5, w: 6, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, bias: true},
	{name: "ConvTranspose k4 s2 p1", op: "ConvTranspose", c: 3, o: 2, h: 4, w: 5, kh: 4, kw: 4, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY, bias: true},
	{name: "ConvTranspose k4 s2 p1 x only", op: "ConvTranspose", c: 3, o: 2, h: 4, w: 5, kh: 4, kw: 4, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, axes: tiling.X, bias: true},
	{name: "ConvTranspose k3 s2 p1 output_padding 1", op: "ConvTranspose", c: 2, o: 2, h: 3, w: 4, kh: 3, kw: 3, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, outPad: [2]int64{1, 1}, axes: tiling.XY},
	{name: "ConvTranspose k2 s2 (no overlap)", op: "ConvTranspose", c: 2, o: 2, h: 3, w: 4, kh: 2, kw: 2, stride: [2]int64{2, 2}, axes: tiling.XY, bias: true},
	{name: "ConvTranspose k3 s1 p1", op: "ConvTranspose", c: 2, o: 3, h: 4, w: 5, kh: 3, kw: 3, pads: [4]int64{1, 1, 1, 1}, axes: tiling.XY},
	{name: "ConvTranspose k5 s2 p(1,2) dilation", op: "ConvTranspose", c: 2, o: 2, h: 4, w: 4, kh: 3, kw: 3, stride: [2]int64{2, 2}, dil: [2]int64{2, 2}, pads: [4]int64{1, 2, 2, 1}, axes: tiling.XY},
	{name: "ConvTranspose groups", op: "ConvTranspose", c: 4, o: 2, h: 3, w: 4, kh: 4, kw: 4, stride: [2]int64{2, 2}, pads: [4]int64{1, 1, 1, 1}, group: 2, axes: tiling.XY, bias: true},
}

// TestConvMatchesWrapAround rewrites single-convolution graphs and checks
// ONNX Runtime's output against the convolution computed here with
// explicit wrap-around on the wrapped axes and zeros on the others.
func TestConvMatchesWrapAround(t *testing.T) {
	rt := newRuntime(t)
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			m, feeds, inputs := buildConv(t, tc)
			before := runModel(t, rt, m, feeds...)

			n, err := tiling.Rewrite(m, tc.axes)
			if err != nil {
				t.Fatalf("Rewrite: %v", err)
			}
			if tc.untouched {
				if n != 0 {
					t.Fatalf("Rewrite changed %d nodes, want none", n)
				}
				return
			}
			if n != 1 {
				t.Fatalf("Rewrite changed %d nodes, want 1", n)
			}
			encoded, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			after := runModel(t, rt, m, feeds...)[0]
			if !sameShape(after.shape, before[0].shape) {
				t.Fatalf("output shape %v, was %v", after.shape, before[0].shape)
			}
			want := reference(tc, inputs)
			if len(want) != len(after.data) {
				t.Fatalf("%d outputs, reference has %d", len(after.data), len(want))
			}
			tol := 1e-4
			if tc.fp16 {
				tol = 2e-2
			}
			for i := range want {
				if d := math.Abs(after.data[i] - want[i]); d > tol*(1+math.Abs(want[i])) {
					t.Fatalf("y[%d] = %v, want %v (shape %v)", i, after.data[i], want[i], after.shape)
				}
			}

			// A rewritten graph is a fixed point.
			if n, err := tiling.Rewrite(m, tc.axes); n != 0 || err != nil {
				t.Fatalf("second Rewrite changed %d nodes (err %v)", n, err)
			}
			again, _ := m.Encode()
			if !bytes.Equal(encoded, again) {
				t.Error("second Rewrite changed the encoded model")
			}
		})
	}
}

// convInputs are the values a case's graph computes with, as the
// reference sees them (fp16-rounded for fp16 graphs, zero points
// subtracted for integer ones).
type convInputs struct {
	x, w, b []float64
}

// buildConv makes the graph y = op(x) for tc, with its inputs.
func buildConv(t *testing.T, tc convCase) (*onnx.Model, []feed, convInputs) {
	t.Helper()
	opset := tc.opset
	if opset == 0 {
		opset = 17
	}
	op := tc.op
	if op == "" {
		op = "Conv"
	}
	b := onnx.NewBuilderOpset("conv", opset)
	g := tc.groups()
	var wdims []int64
	if op == "ConvTranspose" {
		wdims = []int64{int64(tc.c), int64(tc.o / g), int64(tc.kh), int64(tc.kw)}
	} else {
		wdims = []int64{int64(tc.o), int64(tc.c / g), int64(tc.kh), int64(tc.kw)}
	}
	nw := int(wdims[0] * wdims[1] * wdims[2] * wdims[3])
	nx := tc.c * tc.h * tc.w
	xshape := []int64{1, int64(tc.c), int64(tc.h), int64(tc.w)}
	var dims []any
	if tc.static {
		dims = []any{1, tc.c, tc.h, tc.w}
	} else {
		dims = []any{"batch", tc.c, "height", "width"}
	}
	var in convInputs
	var feeds []feed
	var inputs []string
	outType := onnx.Float

	switch op {
	case "ConvInteger", "QLinearConv":
		xq := make([]uint8, nx)
		for i, v := range pseudo(nx, 1) {
			xq[i] = uint8(2 + 2*v) // 0..3
		}
		const xzp = 1
		in.x = make([]float64, nx)
		for i, v := range xq {
			in.x[i] = float64(v) - xzp
		}
		feeds = append(feeds, feed{xshape, xq})
		x := b.Input("x", onnx.Uint8, dims...)
		in.w = make([]float64, nw)
		wraw := make([]byte, nw)
		for i, v := range pseudo(nw, 2) {
			q := int(math.Round(float64(2 * v))) // -2..2
			in.w[i] = float64(q)
			if op == "ConvInteger" {
				wraw[i] = byte(q + 2) // uint8 with zero point 2
			} else {
				wraw[i] = byte(int8(q)) // int8 with zero point 0
			}
		}
		if op == "ConvInteger" {
			w := b.Initializer(&onnx.Tensor{Name: "w", Dims: wdims, DataType: onnx.Uint8, RawData: wraw})
			inputs = []string{x, w, b.Initializer(&onnx.Tensor{Name: "xzp", DataType: onnx.Uint8, RawData: []byte{xzp}}),
				b.Initializer(&onnx.Tensor{Name: "wzp", DataType: onnx.Uint8, RawData: []byte{2}})}
			outType = onnx.Int32
		} else {
			one := b.Scalar(1)
			w := b.Initializer(&onnx.Tensor{Name: "w", Dims: wdims, DataType: onnx.Int8, RawData: wraw})
			inputs = []string{x, one, b.Initializer(&onnx.Tensor{Name: "xzp", DataType: onnx.Uint8, RawData: []byte{xzp}}),
				w, one, b.Initializer(&onnx.Tensor{Name: "wzp", DataType: onnx.Int8, RawData: []byte{0}}),
				one, b.Initializer(&onnx.Tensor{Name: "yzp", DataType: onnx.Uint8, RawData: []byte{128}})}
			outType = onnx.Uint8
		}
	default:
		xf := pseudo(nx, 1)
		wf := pseudo(nw, 2)
		for i := range wf {
			wf[i] *= 0.5
		}
		var bf []float32
		if tc.bias {
			bf = pseudo(tc.o, 3)
		}
		feeds = append(feeds, feed{xshape, xf})
		x := b.Input("x", onnx.Float, dims...)
		var w, bias string
		if tc.fp16 {
			x = b.Cast(x, onnx.Float16)
			w = b.Initializer(onnx.NewFloat16Tensor("w", wdims, wf))
			if bf != nil {
				bias = b.Initializer(onnx.NewFloat16Tensor("b", []int64{int64(tc.o)}, bf))
			}
			xf, wf, bf = round16(xf), round16(wf), round16(bf)
		} else {
			w = b.Initializer(onnx.NewFloat32Tensor("w", wdims, wf))
			if bf != nil {
				bias = b.Initializer(onnx.NewFloat32Tensor("b", []int64{int64(tc.o)}, bf))
			}
		}
		in.x, in.w, in.b = conv64(xf), conv64(wf), conv64(bf)
		inputs = []string{x, w}
		if bias != "" {
			inputs = append(inputs, bias)
		}
	}

	var attrs []*onnx.Attribute
	if tc.autoPad != "" {
		attrs = append(attrs, onnx.StringAttr("auto_pad", tc.autoPad))
	} else if tc.pads != ([4]int64{}) {
		attrs = append(attrs, onnx.IntsAttr("pads", tc.pads[:]...))
	}
	if tc.stride != ([2]int64{}) {
		attrs = append(attrs, onnx.IntsAttr("strides", int64(tc.s(0)), int64(tc.s(1))))
	}
	if tc.dil != ([2]int64{}) {
		attrs = append(attrs, onnx.IntsAttr("dilations", int64(tc.d(0)), int64(tc.d(1))))
	}
	if tc.group > 1 {
		attrs = append(attrs, onnx.IntAttr("group", int64(tc.group)))
	}
	if tc.outPad != ([2]int64{}) {
		attrs = append(attrs, onnx.IntsAttr("output_padding", tc.outPad[:]...))
	}
	if op == "FusedConv" {
		attrs = append(attrs, onnx.StringAttr("activation", "Relu"))
	}
	y := b.Op(op, inputs, attrs...)
	if op == "FusedConv" {
		g := b.Graph()
		g.Nodes[len(g.Nodes)-1].Domain = "com.microsoft"
	}
	if tc.fp16 {
		y = b.Cast(y, onnx.Float)
	}
	b.Output(y, "y", outType, nil, nil, nil, nil)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if op == "FusedConv" {
		m.OpsetImports = append(m.OpsetImports, &onnx.OperatorSetID{Domain: "com.microsoft", Version: 1})
	}
	// Rewrite a decoded model, as kiln does with files.
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if m, err = onnx.Decode(data); err != nil {
		t.Fatal(err)
	}
	return m, feeds, in
}

func round16(v []float32) []float32 {
	if v == nil {
		return nil
	}
	return onnx.Float16sToFloat32(onnx.Float32sToFloat16(v))
}

// reference computes tc's output directly: along a wrapped axis input
// positions are taken modulo the size, along the others positions outside
// the image read zero.
func reference(tc convCase, in convInputs) []float64 {
	if tc.op == "ConvTranspose" {
		return referenceTransposed(tc, in)
	}
	p := tc.refPad()
	ho := (tc.h+int(p[0]+p[2])-((tc.kh-1)*tc.d(0)+1))/tc.s(0) + 1
	wo := (tc.w+int(p[1]+p[3])-((tc.kw-1)*tc.d(1)+1))/tc.s(1) + 1
	cg, og := tc.c/tc.groups(), tc.o/tc.groups()
	out := make([]float64, tc.o*ho*wo)
	for o := 0; o < tc.o; o++ {
		grp := o / og
		for i := 0; i < ho; i++ {
			for j := 0; j < wo; j++ {
				sum := 0.0
				if in.b != nil {
					sum = in.b[o]
				}
				for ci := 0; ci < cg; ci++ {
					c := grp*cg + ci
					for ki := 0; ki < tc.kh; ki++ {
						y, ok := position(i*tc.s(0)+ki*tc.d(0)-int(p[0]), tc.h, tc.axes.Y)
						if !ok {
							continue
						}
						for kj := 0; kj < tc.kw; kj++ {
							x, ok := position(j*tc.s(1)+kj*tc.d(1)-int(p[1]), tc.w, tc.axes.X)
							if !ok {
								continue
							}
							sum += in.x[(c*tc.h+y)*tc.w+x] * in.w[((o*cg+ci)*tc.kh+ki)*tc.kw+kj]
						}
					}
				}
				switch tc.op {
				case "FusedConv":
					sum = max(sum, 0)
				case "QLinearConv":
					sum = min(max(math.RoundToEven(sum)+128, 0), 255)
				}
				out[(o*ho+i)*wo+j] = sum
			}
		}
	}
	return out
}

// position maps a padded coordinate to the image: modulo n when the axis
// wraps, else only inside [0, n).
func position(v, n int, wraps bool) (int, bool) {
	if wraps {
		return ((v % n) + n) % n, true
	}
	return v, v >= 0 && v < n
}

// referenceTransposed computes a ConvTranspose whose wrapped axes are
// periodic: every contribution lands at its output position modulo
// stride × input.
func referenceTransposed(tc convCase, in convInputs) []float64 {
	p := tc.pads
	size := func(i, n, k int, wraps bool) int {
		if wraps {
			return n * tc.s(i)
		}
		return (n-1)*tc.s(i) + (k-1)*tc.d(i) + 1 + int(tc.outPad[i]) - int(p[i]+p[i+2])
	}
	ho := size(0, tc.h, tc.kh, tc.axes.Y)
	wo := size(1, tc.w, tc.kw, tc.axes.X)
	cg, og := tc.c/tc.groups(), tc.o/tc.groups()
	out := make([]float64, tc.o*ho*wo)
	for c := 0; c < tc.c; c++ {
		grp := c / cg
		for i := 0; i < tc.h; i++ {
			for j := 0; j < tc.w; j++ {
				x := in.x[(c*tc.h+i)*tc.w+j]
				for oi := 0; oi < og; oi++ {
					o := grp*og + oi
					for ki := 0; ki < tc.kh; ki++ {
						y, ok := position(i*tc.s(0)+ki*tc.d(0)-int(p[0]), ho, tc.axes.Y)
						if !ok {
							continue
						}
						for kj := 0; kj < tc.kw; kj++ {
							xx, ok := position(j*tc.s(1)+kj*tc.d(1)-int(p[1]), wo, tc.axes.X)
							if !ok {
								continue
							}
							out[(o*ho+y)*wo+xx] += x * in.w[((c*og+oi)*tc.kh+ki)*tc.kw+kj]
						}
					}
				}
			}
		}
	}
	if in.b != nil {
		for o := 0; o < tc.o; o++ {
			for k := 0; k < ho*wo; k++ {
				out[o*ho*wo+k] += in.b[o]
			}
		}
	}
	return out
}

// TestRewriteErrors checks graphs the rewrite refuses, and that each
// message says what to do.
func TestRewriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(b *onnx.Builder, x string) string
		want  string
	}{
		{"NhwcConv", func(b *onnx.Builder, x string) string {
			y := b.Op("NhwcConv", []string{x, b.Float32Const([]int64{1, 3, 3, 1}, make([]float32, 9)...)}, onnx.IntsAttr("pads", 1, 1, 1, 1))
			b.Graph().Nodes[len(b.Graph().Nodes)-1].Domain = "com.microsoft"
			return y
		}, "use an export with plain ONNX Conv operators"},
		{"SAME stride 2 dynamic", func(b *onnx.Builder, x string) string {
			return b.Op("Conv", []string{x, b.Float32Const([]int64{1, 1, 3, 3}, make([]float32, 9)...)}, onnx.StringAttr("auto_pad", "SAME_UPPER"), onnx.IntsAttr("strides", 2, 2))
		}, "export the model with explicit pads"},
		{"ConvTranspose output_shape", func(b *onnx.Builder, x string) string {
			return b.Op("ConvTranspose", []string{x, b.Float32Const([]int64{1, 1, 4, 4}, make([]float32, 16)...)}, onnx.IntsAttr("strides", 2, 2), onnx.IntsAttr("output_shape", 8, 8))
		}, "output_shape"},
		{"ConvTranspose not an exact upsampler", func(b *onnx.Builder, x string) string {
			return b.Op("ConvTranspose", []string{x, b.Float32Const([]int64{1, 1, 3, 3}, make([]float32, 9)...)}, onnx.IntsAttr("strides", 2, 2))
		}, "only a ConvTranspose that upsamples exactly by its stride can wrap"},
		{"Conv in a subgraph", func(b *onnx.Builder, x string) string {
			sub := &onnx.Graph{Name: "then", Nodes: []*onnx.Node{{OpType: "Conv", Inputs: []string{x, x}, Outputs: []string{"z"}}}, Outputs: []*onnx.ValueInfo{{Name: "z"}}}
			return b.Op("If", []string{b.Initializer(&onnx.Tensor{Name: "cond", DataType: onnx.Bool, RawData: []byte{1}})}, onnx.GraphAttr("then_branch", sub), onnx.GraphAttr("else_branch", sub))
		}, "inside a subgraph"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := onnx.NewBuilder("bad")
			x := b.Input("x", onnx.Float, "b", 1, "h", "w")
			b.Output(tt.build(b, x), "y", onnx.Float, nil, nil, nil, nil)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			_, err = tiling.Rewrite(m, tiling.XY)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, err := tiling.Rewrite(&onnx.Model{}, tiling.XY); err == nil {
		t.Error("a model without a graph was accepted")
	}
}

// TestRewriteAxesLater rewrites along x, then along xy: the y padding is
// wrapped by the second pass and the result matches a direct xy rewrite.
func TestRewriteAxesLater(t *testing.T) {
	rt := newRuntime(t)
	tc := convCases[0]
	m, feeds, in := buildConv(t, tc)
	if n, err := tiling.Rewrite(m, tiling.X); n != 1 || err != nil {
		t.Fatalf("x: %d, %v", n, err)
	}
	if n, err := tiling.Rewrite(m, tiling.XY); n != 1 || err != nil {
		t.Fatalf("then xy: %d, %v", n, err)
	}
	got := runModel(t, rt, m, feeds...)[0].data
	want := reference(tc, in) // tc.axes is XY
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-4 {
			t.Fatalf("y[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if v := metadataValue(m.MetadataProps, tiling.MarkerKey); v != "xy" {
		t.Errorf("model metadata %s = %q, want xy", tiling.MarkerKey, v)
	}

	// A ConvTranspose made circular along x cannot be extended later.
	ct := convCases[len(convCases)-3]
	ct.axes = tiling.X
	m, _, _ = buildConv(t, ct)
	if _, err := tiling.Rewrite(m, tiling.X); err != nil {
		t.Fatal(err)
	}
	if _, err := tiling.Rewrite(m, tiling.XY); err == nil || !strings.Contains(err.Error(), "rewrite the original graph") {
		t.Errorf("err = %v", err)
	}
}

func metadataValue(es []*onnx.StringStringEntry, key string) string {
	for _, e := range es {
		if e.Key == key {
			return e.Value
		}
	}
	return ""
}

// TestRewriteSharesPadding checks that convolutions reading one value with
// the same padding share its wrap-padded copy, as a ResNet block's conv
// and a parallel branch would.
func TestRewriteSharesPadding(t *testing.T) {
	b := onnx.NewBuilder("shared")
	x := b.Input("x", onnx.Float, 1, 2, "h", "w")
	w := b.Float32Const([]int64{2, 2, 3, 3}, pseudo(36, 4)...)
	o := onnx.ConvOpts{Pads: []int64{1, 1, 1, 1}}
	y := b.Add(b.Conv(x, w, "", o), b.Conv(x, w, "", o))
	b.Output(y, "y", onnx.Float, 1, 2, "h", "w")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tiling.Rewrite(m, tiling.XY); n != 2 || err != nil {
		t.Fatalf("Rewrite: %d, %v", n, err)
	}
	if c := len(m.Graph.NodesByOp("Concat")); c != 2 {
		t.Errorf("%d Concat nodes, want 2 (one per axis, shared)", c)
	}
	if s := len(m.Graph.NodesByOp("Slice")); s != 4 {
		t.Errorf("%d Slice nodes, want 4", s)
	}
}
