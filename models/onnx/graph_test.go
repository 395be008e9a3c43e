package onnx

import (
	"math"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

func TestNamer(t *testing.T) {
	g := &Graph{
		Inputs: []*ValueInfo{{Name: "x"}},
		Nodes:  []*Node{{Name: "/Conv", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	}
	n := NewNamer(g)
	tests := []struct{ prefix, want string }{
		{"x", "x_1"}, {"y", "y_1"}, {"y", "y_2"}, {"/Conv", "/Conv_1"}, {"fresh", "fresh"}, {"fresh", "fresh_1"}, {"", "v"},
	}
	for _, tt := range tests {
		if got := n.Name(tt.prefix); got != tt.want {
			t.Errorf("Name(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
	if n.Reserve("x_1") {
		t.Error("Reserve of a used name reported free")
	}
}

func TestRenameValue(t *testing.T) {
	sub := &Graph{Nodes: []*Node{{OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"out"}}}, Outputs: []*ValueInfo{{Name: "out"}}}
	shadow := &Graph{Inputs: []*ValueInfo{{Name: "a"}}, Nodes: []*Node{{OpType: "Identity", Inputs: []string{"a"}, Outputs: []string{"o2"}}}}
	g := &Graph{
		Inputs:       []*ValueInfo{{Name: "a"}},
		Initializers: []*Tensor{{Name: "w"}},
		Nodes: []*Node{
			{OpType: "Add", Inputs: []string{"a", "w"}, Outputs: []string{"b"}},
			{OpType: "If", Inputs: []string{"c"}, Outputs: []string{"d"}, Attributes: []*Attribute{GraphAttr("then_branch", sub), GraphAttr("else_branch", shadow)}},
		},
		Outputs: []*ValueInfo{{Name: "b"}},
	}
	if n := g.RenameValue("a", "A"); n != 3 {
		t.Errorf("renamed %d references, want 3 (input, Add input, subgraph)", n)
	}
	if g.Nodes[0].Inputs[0] != "A" || sub.Nodes[0].Inputs[0] != "A" || shadow.Nodes[0].Inputs[0] != "a" {
		t.Error("rename did not respect scopes")
	}
	g.RenameValue("w", "W")
	if g.Initializer("W") == nil || g.Nodes[0].Inputs[1] != "W" {
		t.Error("initializer rename failed")
	}
}

func TestSortTopologically(t *testing.T) {
	a := &Node{Name: "a", Inputs: []string{"x"}, Outputs: []string{"p"}}
	b := &Node{Name: "b", Inputs: []string{"p"}, Outputs: []string{"q"}}
	c := &Node{Name: "c", Inputs: []string{"q", "x"}, Outputs: []string{"r"}}
	d := &Node{Name: "d", Inputs: []string{"x"}, Outputs: []string{"s"}}
	g := &Graph{Nodes: []*Node{c, d, b, a}}
	if err := g.SortTopologically(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range g.Nodes {
		got = append(got, n.Name)
	}
	if s := strings.Join(got, ""); s != "dabc" {
		t.Errorf("order = %s, want dabc", s)
	}
	// Already sorted graphs keep their order.
	g.Nodes = []*Node{a, d, b, c}
	g.SortTopologically()
	if g.Nodes[1] != d {
		t.Error("sorted graph was reordered")
	}
	g.Nodes = []*Node{{Name: "x1", Inputs: []string{"y"}, Outputs: []string{"x"}}, {Name: "y1", Inputs: []string{"x"}, Outputs: []string{"y"}}}
	if err := g.SortTopologically(); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle not reported: %v", err)
	}
}

// wrapPadConvs is the shape of the tileable rewrite (issue 5): every Conv
// with spatial padding gets a wrap-padded input made of Slice + Concat of
// its borders, and its pads become zero.
func wrapPadConvs(t *testing.T, m *Model) int {
	t.Helper()
	b, err := Extend(m)
	if err != nil {
		t.Fatal(err)
	}
	g := b.Graph()
	convs := g.NodesByOp("Conv")
	for _, conv := range convs {
		p := conv.AttrInts("pads") // [top, left, bottom, right]
		if len(p) != 4 {
			continue
		}
		x := conv.Inputs[0]
		big := int64(math.MaxInt64)
		if p[0] > 0 || p[2] > 0 {
			top := b.Slice(x, []int64{-p[0]}, []int64{big}, []int64{2}, nil)
			bottom := b.Slice(x, []int64{0}, []int64{p[2]}, []int64{2}, nil)
			x = b.Concat(2, top, x, bottom)
		}
		if p[1] > 0 || p[3] > 0 {
			left := b.Slice(x, []int64{-p[1]}, []int64{big}, []int64{3}, nil)
			right := b.Slice(x, []int64{0}, []int64{p[3]}, []int64{3}, nil)
			x = b.Concat(3, left, x, right)
		}
		conv.Inputs[0] = x
		conv.SetAttr(IntsAttr("pads", 0, 0, 0, 0))
	}
	if err := g.SortTopologically(); err != nil {
		t.Fatal(err)
	}
	if b.Err() != nil {
		t.Fatal(b.Err())
	}
	return len(convs)
}

// TestWrapPadRewrite proves the rewrite helpers are enough for the tileable
// generator: the rewritten Conv equals a convolution with explicit
// wrap-around, computed here directly.
func TestWrapPadRewrite(t *testing.T) {
	needORT(t)
	m := buildConvModel(t, Float)
	data, _ := m.Encode()
	m, err := Decode(data) // rewrite a decoded model, as kiln will
	if err != nil {
		t.Fatal(err)
	}
	if n := wrapPadConvs(t, m); n != 1 {
		t.Fatalf("rewrote %d convs", n)
	}
	data, err = m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	in := ramp(2*5*6, 0.3)
	xt, _ := ort.NewTensor(ort.NewShape(1, 2, 5, 6), in)
	defer xt.Destroy()
	yt, _ := ort.NewEmptyTensor[float32](ort.NewShape(1, 3, 5, 6))
	defer yt.Destroy()
	s, err := ort.NewAdvancedSessionWithONNXData(data, []string{"x"}, []string{"y"}, []ort.Value{xt}, []ort.Value{yt}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Run(); err != nil {
		t.Fatal(err)
	}
	w := ramp(54, 0.1)
	bias := []float32{0.5, -0.25, 0}
	const C, H, W, K = 2, 5, 6, 3
	for o := 0; o < 3; o++ {
		for i := 0; i < H; i++ {
			for j := 0; j < W; j++ {
				sum := float64(bias[o])
				for c := 0; c < C; c++ {
					for ki := 0; ki < K; ki++ {
						for kj := 0; kj < K; kj++ {
							y := (i + ki - 1 + H) % H
							x := (j + kj - 1 + W) % W
							sum += float64(in[c*H*W+y*W+x] * w[((o*C+c)*K+ki)*K+kj])
						}
					}
				}
				got := yt.GetData()[o*H*W+i*W+j]
				if d := math.Abs(float64(got) - math.Tanh(sum)); d > 1e-5 {
					t.Fatalf("y[%d,%d,%d] = %v, want %v", o, i, j, got, math.Tanh(sum))
				}
			}
		}
	}
}

func TestBuilderErrors(t *testing.T) {
	b := NewBuilder("bad")
	b.Input("x", Float, 1.5)
	if _, err := b.Model(); err == nil || !strings.Contains(err.Error(), "dim 0 has type float64") {
		t.Errorf("err = %v", err)
	}
	b = NewBuilder("undefined")
	b.Output(b.Relu("nowhere"), "y", Float)
	if _, err := b.Model(); err == nil || !strings.Contains(err.Error(), `reads "nowhere"`) {
		t.Errorf("err = %v", err)
	}
	b = NewBuilder("weights")
	b.Weight("w", []int64{2, 2}, []float32{1})
	if _, err := b.Model(); err == nil || !strings.Contains(err.Error(), "1 values for dims [2 2]") {
		t.Errorf("err = %v", err)
	}
}
