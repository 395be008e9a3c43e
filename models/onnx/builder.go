package onnx

import (
	"errors"
	"fmt"
)

// DefaultOpset is the default-domain operator set version NewBuilder
// targets, the one current Stable Diffusion exports use.
const DefaultOpset = 17

// irVersionForOpset maps an opset to the IR version ONNX released with it.
func irVersionForOpset(opset int64) int64 {
	switch {
	case opset >= 21:
		return 10
	case opset >= 19:
		return 9
	case opset >= 15:
		return 8
	case opset >= 13:
		return 7
	default:
		return 6
	}
}

// Builder constructs a graph node by node. Operator methods take value
// names and return the names of the values they produce, generated to be
// unique. The first error (a bad dim, an unsupported option) is kept and
// returned by Err and Model, so call chains need no error checks in
// between.
//
// A Builder made by Extend appends to an existing model's graph, for
// rewrites; call Graph().SortTopologically() afterwards if the new nodes
// were not appended in dependency order.
type Builder struct {
	g     *Graph
	model *Model
	opset int64
	names *Namer
	err   error

	// WeightType is the element type Weight stores initializers in: Float
	// (default) or Float16. Float16 weights are cast back to float32 by a
	// Cast node, so the graph computes in float32 (ONNX Runtime's CPU
	// provider lacks float16 kernels for many operators) while the file
	// holds half-precision weights, as fp16 exports do.
	WeightType DataType
}

// NewBuilder starts an empty graph called name at DefaultOpset.
func NewBuilder(name string) *Builder {
	return NewBuilderOpset(name, DefaultOpset)
}

// NewBuilderOpset starts an empty graph targeting default-domain opset.
func NewBuilderOpset(name string, opset int64) *Builder {
	g := &Graph{Name: name}
	m := &Model{
		IRVersion:    irVersionForOpset(opset),
		ProducerName: "kiln",
		OpsetImports: []*OperatorSetID{{Domain: "", Version: opset}},
		Graph:        g,
	}
	return &Builder{g: g, model: m, opset: opset, names: NewNamer(nil), WeightType: Float}
}

// Extend returns a Builder that adds nodes and initializers to m's main
// graph, targeting the opset m imports and avoiding every name m uses.
func Extend(m *Model) (*Builder, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("onnx: extend: model has no graph")
	}
	opset := m.Opset("")
	if opset == 0 {
		return nil, errors.New("onnx: extend: model does not import the default operator set")
	}
	return &Builder{g: m.Graph, model: m, opset: opset, names: NewNamer(m.Graph), WeightType: Float}, nil
}

// Opset is the default-domain operator set version the builder targets.
func (b *Builder) Opset() int64 { return b.opset }

// Graph returns the graph being built.
func (b *Builder) Graph() *Graph { return b.g }

// Namer returns the builder's name generator.
func (b *Builder) Namer() *Namer { return b.names }

// Err returns the first error met while building, or nil.
func (b *Builder) Err() error { return b.err }

func (b *Builder) fail(format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("onnx builder: "+format, args...)
	}
}

// Model returns the finished model, or the first building error. It
// checks that every node input is defined.
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.model, nil
}

// check verifies that each node input is a graph input, initializer or
// the output of an earlier node, and that outputs exist.
func (b *Builder) check() error {
	defined := map[string]bool{"": true}
	for _, v := range b.g.Inputs {
		defined[v.Name] = true
	}
	for _, t := range b.g.Initializers {
		defined[t.Name] = true
	}
	for _, n := range b.g.Nodes {
		for _, in := range n.Inputs {
			if !defined[in] {
				return fmt.Errorf("onnx builder: node %q (%s) reads %q before it is defined", n.Name, n.OpType, in)
			}
		}
		for _, o := range n.Outputs {
			defined[o] = true
		}
	}
	for _, o := range b.g.Outputs {
		if !defined[o.Name] {
			return fmt.Errorf("onnx builder: graph output %q is never produced", o.Name)
		}
	}
	return nil
}

// Input declares a graph input. dims are as for NewValueInfo: int or
// int64 for fixed sizes, string for symbolic ones, nil for unknown; none
// for a scalar. It returns name.
func (b *Builder) Input(name string, dt DataType, dims ...any) string {
	v, err := NewValueInfo(name, dt, dims...)
	if err != nil {
		b.fail("%v", err)
		return name
	}
	b.names.Reserve(name)
	b.g.Inputs = append(b.g.Inputs, v)
	return name
}

// Output declares value as a graph output called name (an Identity node is
// added when the names differ) and returns name.
func (b *Builder) Output(value, name string, dt DataType, dims ...any) string {
	v, err := NewValueInfo(name, dt, dims...)
	if err != nil {
		b.fail("%v", err)
		return name
	}
	if value != name {
		b.names.Reserve(name)
		b.node("Identity", []string{value}, []string{name})
	}
	b.g.Outputs = append(b.g.Outputs, v)
	return name
}

// Initializer adds t as an initializer (renamed if its name is empty or
// taken) and returns its name.
func (b *Builder) Initializer(t *Tensor) string {
	if t.Name == "" {
		t.Name = b.names.Name("const")
	} else if !b.names.Reserve(t.Name) {
		t.Name = b.names.Name(t.Name)
	}
	b.g.Initializers = append(b.g.Initializers, t)
	return t.Name
}

// Weight adds a float initializer of the given dims, stored in the
// builder's WeightType, and returns a float32 value holding it.
func (b *Builder) Weight(name string, dims []int64, data []float32) string {
	n, err := numElements(dims)
	if err != nil || n != int64(len(data)) {
		b.fail("weight %q: %d values for dims %v", name, len(data), dims)
	}
	if b.WeightType == Float16 {
		w := b.Initializer(NewFloat16Tensor(name, dims, data))
		return b.Cast(w, Float)
	}
	return b.Initializer(NewFloat32Tensor(name, dims, data))
}

// Float32Const adds a float32 initializer with the given dims (nil dims and
// one value make a scalar) and returns its name.
func (b *Builder) Float32Const(dims []int64, data ...float32) string {
	return b.Initializer(NewFloat32Tensor("", dims, data))
}

// Scalar adds a rank-0 float32 constant.
func (b *Builder) Scalar(v float32) string { return b.Float32Const(nil, v) }

// Int64s adds a 1-D int64 constant, as Reshape, Slice and friends take.
func (b *Builder) Int64s(v ...int64) string {
	return b.Initializer(NewInt64Tensor("", []int64{int64(len(v))}, v))
}

// node appends a node with the given outputs.
func (b *Builder) node(op string, inputs, outputs []string, attrs ...*Attribute) *Node {
	n := &Node{
		Name:       b.names.Name("/" + op),
		OpType:     op,
		Inputs:     append([]string(nil), inputs...),
		Outputs:    outputs,
		Attributes: attrs,
	}
	b.g.Nodes = append(b.g.Nodes, n)
	return n
}

// OpN appends a node of any default-domain operator with nOut outputs and
// returns their generated names.
func (b *Builder) OpN(op string, inputs []string, nOut int, attrs ...*Attribute) []string {
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.names.Name(op + "_output_" + fmt.Sprint(i))
	}
	b.node(op, inputs, outs, attrs...)
	return outs
}

// Op appends a one-output node of any default-domain operator.
func (b *Builder) Op(op string, inputs []string, attrs ...*Attribute) string {
	return b.OpN(op, inputs, 1, attrs...)[0]
}

// Add, Sub, Mul, Div and Pow are the broadcasting binary operators.
func (b *Builder) Add(x, y string) string { return b.Op("Add", []string{x, y}) }

// Sub returns x - y.
func (b *Builder) Sub(x, y string) string { return b.Op("Sub", []string{x, y}) }

// Mul returns x * y.
func (b *Builder) Mul(x, y string) string { return b.Op("Mul", []string{x, y}) }

// Div returns x / y.
func (b *Builder) Div(x, y string) string { return b.Op("Div", []string{x, y}) }

// Pow returns x ** y.
func (b *Builder) Pow(x, y string) string { return b.Op("Pow", []string{x, y}) }

// Mod returns x mod y for integers (fmod=0).
func (b *Builder) Mod(x, y string) string { return b.Op("Mod", []string{x, y}) }

// MatMul returns the matrix product x @ y (numpy semantics).
func (b *Builder) MatMul(x, y string) string { return b.Op("MatMul", []string{x, y}) }

// Gemm returns alpha*A'*B' + beta*C; c may be "" to omit it.
func (b *Builder) Gemm(a, bb, c string, alpha, beta float32, transA, transB bool) string {
	in := []string{a, bb}
	if c != "" {
		in = append(in, c)
	}
	attrs := []*Attribute{FloatAttr("alpha", alpha), FloatAttr("beta", beta)}
	if transA {
		attrs = append(attrs, IntAttr("transA", 1))
	}
	if transB {
		attrs = append(attrs, IntAttr("transB", 1))
	}
	return b.Op("Gemm", in, attrs...)
}

// Unary operators.

// Relu returns max(x, 0).
func (b *Builder) Relu(x string) string { return b.Op("Relu", []string{x}) }

// Sigmoid returns 1/(1+exp(-x)).
func (b *Builder) Sigmoid(x string) string { return b.Op("Sigmoid", []string{x}) }

// Tanh returns tanh(x).
func (b *Builder) Tanh(x string) string { return b.Op("Tanh", []string{x}) }

// Sin returns sin(x).
func (b *Builder) Sin(x string) string { return b.Op("Sin", []string{x}) }

// Cos returns cos(x).
func (b *Builder) Cos(x string) string { return b.Op("Cos", []string{x}) }

// Exp returns e**x.
func (b *Builder) Exp(x string) string { return b.Op("Exp", []string{x}) }

// Sqrt returns the square root of x.
func (b *Builder) Sqrt(x string) string { return b.Op("Sqrt", []string{x}) }

// Neg returns -x.
func (b *Builder) Neg(x string) string { return b.Op("Neg", []string{x}) }

// Identity returns a copy of x.
func (b *Builder) Identity(x string) string { return b.Op("Identity", []string{x}) }

// SiLU returns x * sigmoid(x), the activation diffusion UNets use, written
// as the two nodes exporters emit.
func (b *Builder) SiLU(x string) string { return b.Mul(x, b.Sigmoid(x)) }

// ConvOpts are Conv's attributes; zero values take ONNX defaults.
type ConvOpts struct {
	Strides   []int64
	Pads      []int64 // begin pads then end pads, e.g. [1,1,1,1]
	Dilations []int64
	Group     int64
}

// Conv convolves x with weight w ([out, in/group, kh, kw]); bias may be "".
func (b *Builder) Conv(x, w, bias string, o ConvOpts) string {
	in := []string{x, w}
	if bias != "" {
		in = append(in, bias)
	}
	var attrs []*Attribute
	if o.Dilations != nil {
		attrs = append(attrs, IntsAttr("dilations", o.Dilations...))
	}
	if o.Group > 1 {
		attrs = append(attrs, IntAttr("group", o.Group))
	}
	if o.Pads != nil {
		attrs = append(attrs, IntsAttr("pads", o.Pads...))
	}
	if o.Strides != nil {
		attrs = append(attrs, IntsAttr("strides", o.Strides...))
	}
	return b.Op("Conv", in, attrs...)
}

// ConvTranspose is the transposed convolution (w is [in, out/group, kh, kw]).
func (b *Builder) ConvTranspose(x, w, bias string, o ConvOpts) string {
	in := []string{x, w}
	if bias != "" {
		in = append(in, bias)
	}
	var attrs []*Attribute
	if o.Group > 1 {
		attrs = append(attrs, IntAttr("group", o.Group))
	}
	if o.Pads != nil {
		attrs = append(attrs, IntsAttr("pads", o.Pads...))
	}
	if o.Strides != nil {
		attrs = append(attrs, IntsAttr("strides", o.Strides...))
	}
	return b.Op("ConvTranspose", in, attrs...)
}

// Reshape reshapes x to the constant shape (0 copies a dim, -1 infers one).
func (b *Builder) Reshape(x string, shape ...int64) string {
	return b.ReshapeTo(x, b.Int64s(shape...))
}

// ReshapeTo reshapes x to the shape held by value shape.
func (b *Builder) ReshapeTo(x, shape string) string {
	return b.Op("Reshape", []string{x, shape})
}

// Transpose permutes x's axes.
func (b *Builder) Transpose(x string, perm ...int64) string {
	return b.Op("Transpose", []string{x}, IntsAttr("perm", perm...))
}

// Concat joins xs along axis.
func (b *Builder) Concat(axis int64, xs ...string) string {
	return b.Op("Concat", xs, IntAttr("axis", axis))
}

// Slice takes x[starts:ends:steps] along axes (steps may be nil).
func (b *Builder) Slice(x string, starts, ends, axes, steps []int64) string {
	in := []string{x, b.Int64s(starts...), b.Int64s(ends...)}
	if axes != nil || steps != nil {
		if axes == nil {
			b.fail("Slice: steps given without axes")
		}
		in = append(in, b.Int64s(axes...))
	}
	if steps != nil {
		in = append(in, b.Int64s(steps...))
	}
	return b.Op("Slice", in)
}

// Softmax normalises x along axis.
func (b *Builder) Softmax(x string, axis int64) string {
	return b.Op("Softmax", []string{x}, IntAttr("axis", axis))
}

// ReduceMean averages x over axes, using the attribute form before opset
// 18 and the input form from 18 on.
func (b *Builder) ReduceMean(x string, keepDims bool, axes ...int64) string {
	keep := int64(0)
	if keepDims {
		keep = 1
	}
	if b.opset >= 18 {
		return b.Op("ReduceMean", []string{x, b.Int64s(axes...)}, IntAttr("keepdims", keep))
	}
	return b.Op("ReduceMean", []string{x}, IntsAttr("axes", axes...), IntAttr("keepdims", keep))
}

// Gather picks entries of data along axis by indices.
func (b *Builder) Gather(data, indices string, axis int64) string {
	return b.Op("Gather", []string{data, indices}, IntAttr("axis", axis))
}

// GatherElements picks data elements by an index tensor of the same rank.
func (b *Builder) GatherElements(data, indices string, axis int64) string {
	return b.Op("GatherElements", []string{data, indices}, IntAttr("axis", axis))
}

// ArgMax returns the index of the largest element along axis.
func (b *Builder) ArgMax(x string, axis int64, keepDims bool) string {
	keep := int64(0)
	if keepDims {
		keep = 1
	}
	return b.Op("ArgMax", []string{x}, IntAttr("axis", axis), IntAttr("keepdims", keep))
}

// Cast converts x to element type to.
func (b *Builder) Cast(x string, to DataType) string {
	return b.Op("Cast", []string{x}, IntAttr("to", int64(to)))
}

// Unsqueeze inserts size-1 axes (input form from opset 13 on).
func (b *Builder) Unsqueeze(x string, axes ...int64) string {
	if b.opset >= 13 {
		return b.Op("Unsqueeze", []string{x, b.Int64s(axes...)})
	}
	return b.Op("Unsqueeze", []string{x}, IntsAttr("axes", axes...))
}

// Squeeze removes size-1 axes (input form from opset 13 on).
func (b *Builder) Squeeze(x string, axes ...int64) string {
	if b.opset >= 13 {
		return b.Op("Squeeze", []string{x, b.Int64s(axes...)})
	}
	return b.Op("Squeeze", []string{x}, IntsAttr("axes", axes...))
}

// Expand broadcasts x to the shape held by value shape.
func (b *Builder) Expand(x, shape string) string {
	return b.Op("Expand", []string{x, shape})
}

// Shape returns x's shape as a 1-D int64 tensor.
func (b *Builder) Shape(x string) string { return b.Op("Shape", []string{x}) }

// Constant emits a Constant node holding t.
func (b *Builder) Constant(t *Tensor) string {
	return b.Op("Constant", nil, TensorAttr("value", t))
}

// Split cuts x along axis into pieces of the given sizes.
func (b *Builder) Split(x string, axis int64, sizes ...int64) []string {
	if b.opset >= 13 {
		return b.OpN("Split", []string{x, b.Int64s(sizes...)}, len(sizes), IntAttr("axis", axis))
	}
	return b.OpN("Split", []string{x}, len(sizes), IntAttr("axis", axis), IntsAttr("split", sizes...))
}

// Resize scales x by constant per-axis factors with mode "nearest" or
// "linear" (asymmetric coordinates, floor rounding for nearest, as the
// UNet and VAE upsamplers export).
func (b *Builder) Resize(x string, mode string, scales ...float32) string {
	return b.Op("Resize", []string{x, "", b.Float32Const([]int64{int64(len(scales))}, scales...)}, b.resizeAttrs(mode)...)
}

// ResizeTo resizes x to the 1-D int64 sizes held by value sizes.
func (b *Builder) ResizeTo(x, sizes, mode string) string {
	return b.Op("Resize", []string{x, "", "", sizes}, b.resizeAttrs(mode)...)
}

func (b *Builder) resizeAttrs(mode string) []*Attribute {
	attrs := []*Attribute{StringAttr("mode", mode)}
	if mode == "nearest" {
		attrs = append(attrs, StringAttr("coordinate_transformation_mode", "asymmetric"), StringAttr("nearest_mode", "floor"))
	}
	return attrs
}

// LayerNorm normalises x over the axes from axis on, then scales and
// shifts (opset 17's LayerNormalization).
func (b *Builder) LayerNorm(x, scale, bias string, axis int64, epsilon float32) string {
	if b.opset < 17 {
		b.fail("LayerNormalization needs opset 17, builder targets %d", b.opset)
	}
	return b.Op("LayerNormalization", []string{x, scale, bias}, IntAttr("axis", axis), FloatAttr("epsilon", epsilon))
}

// Where selects x where cond is true, else y.
func (b *Builder) Where(cond, x, y string) string { return b.Op("Where", []string{cond, x, y}) }

// Equal compares x and y elementwise.
func (b *Builder) Equal(x, y string) string { return b.Op("Equal", []string{x, y}) }

// Clip limits x to [lo, hi] (values; "" omits a bound).
func (b *Builder) Clip(x, lo, hi string) string { return b.Op("Clip", []string{x, lo, hi}) }
