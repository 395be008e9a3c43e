package onnx_test

import (
	"fmt"
	"log"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Build a one-convolution graph with a symbolic batch size and encode it.
func ExampleBuilder() {
	b := onnx.NewBuilder("tiny")
	x := b.Input("x", onnx.Float, "batch", 3, 8, 8)
	w := b.Weight("conv.weight", []int64{4, 3, 3, 3}, make([]float32, 4*3*3*3))
	y := b.Conv(x, w, "", onnx.ConvOpts{Pads: []int64{1, 1, 1, 1}})
	b.Output(b.Tanh(y), "y", onnx.Float, "batch", 4, 8, 8)
	m, err := b.Model()
	if err != nil {
		log.Fatal(err)
	}
	data, err := m.Encode()
	if err != nil {
		log.Fatal(err)
	}
	back, err := onnx.Decode(data)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range back.Graph.Nodes {
		fmt.Println(n.OpType, n.Inputs, "->", n.Outputs)
	}
	fmt.Println(back.Graph.Inputs[0].ShapeString(), "opset", back.Opset(""))
	// Output:
	// Conv [x conv.weight] -> [Conv_output_0]
	// Tanh [Conv_output_0] -> [Tanh_output_0]
	// Identity [Tanh_output_0] -> [y]
	// float32[batch,3,8,8] opset 17
}

// Rewrite a loaded model: give every padded Conv a zero-padded input built
// from nodes, the pattern of kiln's tileable rewrite.
func ExampleExtend() {
	b := onnx.NewBuilder("m")
	x := b.Input("x", onnx.Float, 1, 1, 4, 4)
	y := b.Conv(x, b.Weight("w", []int64{1, 1, 3, 3}, make([]float32, 9)), "", onnx.ConvOpts{Pads: []int64{1, 1, 1, 1}})
	b.Output(y, "y", onnx.Float, 1, 1, 4, 4)
	m, _ := b.Model()

	rw, err := onnx.Extend(m) // appends to m.Graph, names stay unique
	if err != nil {
		log.Fatal(err)
	}
	for _, conv := range m.Graph.NodesByOp("Conv") {
		in := conv.Inputs[0]
		top := rw.Slice(in, []int64{-1}, []int64{1 << 62}, []int64{2}, nil)
		bottom := rw.Slice(in, []int64{0}, []int64{1}, []int64{2}, nil)
		conv.Inputs[0] = rw.Concat(2, top, in, bottom)
		conv.SetAttr(onnx.IntsAttr("pads", 0, 1, 0, 1))
	}
	if err := m.Graph.SortTopologically(); err != nil { // new nodes were appended
		log.Fatal(err)
	}
	for _, n := range m.Graph.Nodes {
		fmt.Println(n.OpType)
	}
	// Output:
	// Slice
	// Slice
	// Concat
	// Conv
	// Identity
}
