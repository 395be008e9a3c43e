package tiling

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Version identifies what Rewrite produces. It is part of every variant's
// cache key, so it must change whenever rewritten graphs would differ.
const Version = 1

// MarkerKey is the metadata_props key Rewrite sets on every node it makes
// circular, with the axes as value ("x", "y" or "xy"), and on the model.
// Rewriting a graph again leaves marked nodes alone, so Rewrite is
// idempotent: a rewritten graph is a fixed point. (A Conv would be one
// anyway, since its pads on the wrapped axes are zero afterwards; a
// ConvTranspose would not.)
const MarkerKey = "kiln.tiling"

// prefix starts the names of every node, value and initializer Rewrite
// adds, so they are recognisable in a profile or a graph viewer.
const prefix = "kiln_tiling/"

// convOps are the operators whose input 0 is an NCHW image and whose
// padding attributes are Conv's (auto_pad, pads, strides, dilations,
// kernel_shape), keyed by domain and operator, with the index of their
// weight input (for the kernel size when auto_pad is SAME_*).
var convOps = map[[2]string]int{
	{"", "Conv"}:                   1,
	{"", "ConvInteger"}:            1,
	{"", "QLinearConv"}:            3,
	{"com.microsoft", "FusedConv"}: 1,
}

// Rewrite makes every padded 2-D convolution of m's main graph pad
// circularly along axes, and returns how many nodes it changed. Conv,
// ConvInteger, QLinearConv and ONNX Runtime's FusedConv get wrap-padded
// inputs built from Slice and Concat, with their own pads zeroed on the
// wrapped axes (auto_pad SAME_* is replaced by the explicit pads it
// stands for); ConvTranspose computes its unpadded output, whose overhang
// is folded back circularly. Convolutions without padding (1×1) are
// untouched, and so are axes that do not wrap: they keep zero padding.
//
// Padding wider than one pixel is built in one-pixel passes, which is
// exact for any image size, even one smaller than the padding (a single
// Slice would silently come up short there); Stable Diffusion's UNets and
// VAEs pad by at most one pixel, so they get one pass.
//
// Nodes already marked with MarkerKey are skipped, so rewriting twice
// changes nothing. Operators Rewrite cannot make circular (NhwcConv, or a
// convolution inside a subgraph) are an error rather than a silent seam.
func Rewrite(m *onnx.Model, axes Axes) (changed int, err error) {
	if m == nil || m.Graph == nil {
		return 0, errors.New("tiling: the model has no graph")
	}
	if axes.None() {
		return 0, nil
	}
	opset := m.Opset("")
	if opset == 0 {
		return 0, errors.New("tiling: the model does not import the default ONNX operator set")
	}
	g := m.Graph
	r := &rewriter{
		g:      g,
		opset:  opset,
		names:  onnx.NewNamer(g),
		consts: map[string]string{},
		wraps:  map[wrapKey]string{},
		before: map[*onnx.Node][]*onnx.Node{},
		after:  map[*onnx.Node][]*onnx.Node{},
	}
	// Collect first: the rewrite inserts nodes as it goes.
	var convs, transposed []*onnx.Node
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		dom := domain(n)
		switch {
		case isConv(n):
			convs = append(convs, n)
		case dom == "" && n.OpType == "ConvTranspose":
			transposed = append(transposed, n)
		case strings.Contains(n.OpType, "Conv"):
			return 0, fmt.Errorf("tiling: node %q is a %s (domain %q), which the tiling rewrite cannot make circular; use an export with plain ONNX Conv operators", n.Name, n.OpType, dom)
		}
		if sub := subgraphConv(n); sub != "" {
			return 0, fmt.Errorf("tiling: node %q (%s) has a %s inside a subgraph, which the tiling rewrite does not handle; use an export without control flow around convolutions", n.Name, n.OpType, sub)
		}
	}
	for _, n := range convs {
		ok, err := r.conv(n, axes)
		if err != nil {
			return changed, fmt.Errorf("tiling: node %q (%s): %w", n.Name, n.OpType, err)
		}
		if ok {
			changed++
		}
	}
	for _, n := range transposed {
		ok, err := r.convTranspose(n, axes)
		if err != nil {
			return changed, fmt.Errorf("tiling: node %q (ConvTranspose): %w", n.Name, err)
		}
		if ok {
			changed++
		}
	}
	r.splice()
	if changed > 0 {
		prev, _ := ParseAxes(metadata(m.MetadataProps, MarkerKey))
		m.MetadataProps = setMetadata(m.MetadataProps, MarkerKey, prev.union(axes).String())
		m.MetadataProps = setMetadata(m.MetadataProps, MarkerKey+".version", strconv.Itoa(Version))
	}
	return changed, nil
}

func domain(n *onnx.Node) string {
	if n.Domain == "ai.onnx" {
		return ""
	}
	return n.Domain
}

func isConv(n *onnx.Node) bool {
	_, ok := convOps[[2]string{domain(n), n.OpType}]
	return ok
}

// subgraphConv returns the operator of a convolution inside one of n's
// subgraphs, or "".
func subgraphConv(n *onnx.Node) string {
	for _, a := range n.Attributes {
		if a == nil {
			continue
		}
		subs := a.Graphs
		if a.G != nil {
			subs = append([]*onnx.Graph{a.G}, subs...)
		}
		for _, sg := range subs {
			if sg == nil {
				continue
			}
			for _, sn := range sg.Nodes {
				if sn == nil {
					continue
				}
				if strings.Contains(sn.OpType, "Conv") {
					return sn.OpType
				}
				if s := subgraphConv(sn); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// rewriter holds the state of one Rewrite.
type rewriter struct {
	g      *onnx.Graph
	opset  int64
	names  *onnx.Namer
	consts map[string]string  // 1-D int64 initializers by value
	wraps  map[wrapKey]string // wrap-padded values already built
	added  []*onnx.Node       // nodes built for the node being rewritten
	// Nodes to insert just before or after a node, spliced in at the end
	// in one pass (inserting one by one costs a pass per convolution).
	before, after map[*onnx.Node][]*onnx.Node
}

// splice inserts the new nodes into the graph: a convolution's padding
// right before it, a ConvTranspose's fold right after it. The graph stays
// topologically sorted, since a shared wrap-padded value is inserted
// before the first convolution that reads it.
func (r *rewriter) splice() {
	if len(r.before) == 0 && len(r.after) == 0 {
		return
	}
	extra := 0
	for _, ns := range r.before {
		extra += len(ns)
	}
	for _, ns := range r.after {
		extra += len(ns)
	}
	nodes := make([]*onnx.Node, 0, len(r.g.Nodes)+extra)
	for _, n := range r.g.Nodes {
		nodes = append(nodes, r.before[n]...)
		nodes = append(nodes, n)
		nodes = append(nodes, r.after[n]...)
	}
	r.g.Nodes = nodes
}

// wrapKey identifies a wrap-padded value, so convolutions that read the
// same input with the same padding share one.
type wrapKey struct {
	value      string
	axis       int64
	begin, end int64
}

// conv rewrites one Conv-like node and reports whether it changed it.
func (r *rewriter) conv(n *onnx.Node, want Axes) (bool, error) {
	done := marked(n)
	axes := Axes{X: want.X && !done.X, Y: want.Y && !done.Y}
	if axes.None() {
		return false, nil
	}
	if len(n.Inputs) == 0 || n.Inputs[0] == "" {
		return false, errors.New("it has no input")
	}
	pads, err := r.convPads(n)
	if err != nil || len(pads) != 4 {
		// No padding, or not a 2-D convolution: nothing wraps.
		return false, err
	}
	// pads is [y_begin, x_begin, y_end, x_end].
	wrapY := axes.Y && (pads[0] > 0 || pads[2] > 0)
	wrapX := axes.X && (pads[1] > 0 || pads[3] > 0)
	if !wrapY && !wrapX {
		return false, nil
	}
	r.added = r.added[:0]
	x := n.Inputs[0]
	if wrapY {
		x = r.wrap(x, 2, pads[0], pads[2])
		pads[0], pads[2] = 0, 0
	}
	if wrapX {
		x = r.wrap(x, 3, pads[1], pads[3])
		pads[1], pads[3] = 0, 0
	}
	r.before[n] = append([]*onnx.Node(nil), r.added...)
	n.Inputs[0] = x
	n.DeleteAttr("auto_pad")
	n.SetAttr(onnx.IntsAttr("pads", pads...))
	mark(n, done.union(want))
	return true, nil
}

// convPads returns a Conv-like node's explicit pads (begins then ends),
// nil when it pads nothing. auto_pad SAME_* is turned into the pads it
// means: (k−1)·d in total per axis at stride 1, and at larger strides as
// much as the input size (which must then be known from the graph's
// shapes) requires; SAME_UPPER puts the odd pixel at the end, SAME_LOWER
// at the beginning.
func (r *rewriter) convPads(n *onnx.Node) ([]int64, error) {
	switch ap := n.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		pads := n.AttrInts("pads")
		if len(pads)%2 != 0 {
			return nil, fmt.Errorf("pads %v has an odd length", pads)
		}
		zero := true
		for _, p := range pads {
			if p < 0 {
				return nil, fmt.Errorf("pads %v has a negative entry", pads)
			}
			zero = zero && p == 0
		}
		if zero {
			return nil, nil
		}
		return pads, nil
	case "VALID":
		return nil, nil
	case "SAME_UPPER", "SAME_LOWER":
		kernel, err := r.kernelShape(n)
		if err != nil {
			return nil, err
		}
		rank := len(kernel)
		strides := intsOr(n.AttrInts("strides"), rank, 1)
		dils := intsOr(n.AttrInts("dilations"), rank, 1)
		if len(strides) != rank || len(dils) != rank {
			return nil, fmt.Errorf("strides %v or dilations %v do not match kernel %v", strides, dils, kernel)
		}
		var size []int64
		pads := make([]int64, 2*rank)
		for i := range rank {
			extent := (kernel[i]-1)*dils[i] + 1
			total := extent - 1
			if strides[i] > 1 {
				if size == nil {
					size = r.staticSpatial(n.Inputs[0], rank)
				}
				if size == nil {
					return nil, fmt.Errorf("auto_pad %s with stride %d pads by an amount that depends on the input size, which the graph leaves open; export the model with explicit pads", ap, strides[i])
				}
				out := (size[i] + strides[i] - 1) / strides[i]
				total = max(0, (out-1)*strides[i]+extent-size[i])
			}
			small := total / 2
			if ap == "SAME_UPPER" {
				pads[i], pads[i+rank] = small, total-small
			} else {
				pads[i], pads[i+rank] = total-small, small
			}
		}
		return pads, nil
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
}

// kernelShape returns the spatial kernel size: the kernel_shape attribute,
// else the dims after the first two of the weight, found as an
// initializer or Constant (possibly behind Cast, Identity or
// DequantizeLinear, as fp16 and quantized exports have).
func (r *rewriter) kernelShape(n *onnx.Node) ([]int64, error) {
	if k := n.AttrInts("kernel_shape"); len(k) > 0 {
		return k, nil
	}
	wi := 1 // Conv, ConvTranspose
	if i, ok := convOps[[2]string{domain(n), n.OpType}]; ok {
		wi = i
	}
	if wi >= len(n.Inputs) {
		return nil, fmt.Errorf("it has no weight input")
	}
	name := n.Inputs[wi]
	for range 8 {
		if t := r.g.Initializer(name); t != nil {
			if len(t.Dims) < 3 {
				return nil, fmt.Errorf("weight %q has dims %v, want [out, in, kernel...]", name, t.Dims)
			}
			return t.Dims[2:], nil
		}
		p := r.g.Producer(name)
		if p == nil {
			break
		}
		if p.OpType == "Constant" {
			if t := p.AttrTensor("value"); t != nil && len(t.Dims) >= 3 {
				return t.Dims[2:], nil
			}
			break
		}
		if (p.OpType != "Cast" && p.OpType != "Identity" && p.OpType != "DequantizeLinear") || len(p.Inputs) == 0 {
			break
		}
		name = p.Inputs[0]
	}
	if dims := r.staticDims(n.Inputs[wi]); len(dims) >= 3 {
		return dims[2:], nil
	}
	return nil, fmt.Errorf("auto_pad needs the kernel size, but the node has no kernel_shape and its weight %q has no known shape; export the model with explicit pads", n.Inputs[wi])
}

// staticDims returns the fully known dims of a value declared in the
// graph's inputs, outputs or value_info, or nil.
func (r *rewriter) staticDims(name string) []int64 {
	for _, vs := range [][]*onnx.ValueInfo{r.g.Inputs, r.g.ValueInfo, r.g.Outputs} {
		for _, v := range vs {
			if v == nil || v.Name != name {
				continue
			}
			dims, ok := v.Shape()
			if !ok {
				return nil
			}
			out := make([]int64, len(dims))
			for i, d := range dims {
				if d == nil || d.Param != "" || d.Value <= 0 {
					return nil
				}
				out[i] = d.Value
			}
			return out
		}
	}
	return nil
}

// staticSpatial returns the last rank dims of value name when the graph
// fixes them, or nil.
func (r *rewriter) staticSpatial(name string, rank int) []int64 {
	dims := r.staticDims(name)
	if len(dims) < rank {
		return nil
	}
	return dims[len(dims)-rank:]
}

func intsOr(v []int64, n int, def int64) []int64 {
	if len(v) > 0 {
		return v
	}
	out := make([]int64, n)
	for i := range out {
		out[i] = def
	}
	return out
}

// wrap returns x padded circularly along axis by begin and end elements.
//
// The padded tensor E covers indices [−a, D+b) of x taken modulo D, where
// D is x's size along axis. One pass prepends the q indices before −a,
// which E holds at its positions [D−q, D), that is [−(a+b+q), −(a+b))
// counted from its end, and appends the q indices after D+b−1, which E
// holds at positions [a+b, a+b+q). Both need q ≤ D, so a pass adds one
// element per side; the first pass may add the whole padding when it is
// one element, which covers every convolution in Stable Diffusion.
func (r *rewriter) wrap(x string, axis, begin, end int64) string {
	key := wrapKey{x, axis, begin, end}
	if v, ok := r.wraps[key]; ok {
		return v
	}
	axisName := "y"
	if axis == 3 {
		axisName = "x"
	}
	cur := x
	var a, b int64
	for a < begin || b < end {
		qa, qb := min(begin-a, 1), min(end-b, 1)
		parts := make([]string, 0, 3)
		if qa > 0 {
			stop := -(a + b)
			if stop == 0 {
				stop = math.MaxInt64
			}
			parts = append(parts, r.slice(cur, axis, -(a+b+qa), stop))
		}
		parts = append(parts, cur)
		if qb > 0 {
			parts = append(parts, r.slice(cur, axis, a+b, a+b+qb))
		}
		cur = r.node("Concat", parts, x+"/wrap_"+axisName, onnx.IntAttr("axis", axis))
		a += qa
		b += qb
	}
	r.wraps[key] = cur
	return cur
}

// slice returns x[start:stop] along axis, in the input form of Slice from
// opset 10 on and the attribute form before.
func (r *rewriter) slice(x string, axis, start, stop int64) string {
	if r.opset < 10 {
		return r.node("Slice", []string{x}, x+"/slice",
			onnx.IntsAttr("starts", start), onnx.IntsAttr("ends", stop), onnx.IntsAttr("axes", axis))
	}
	return r.node("Slice", []string{x, r.int64s(start), r.int64s(stop), r.int64s(axis)}, x+"/slice")
}

// int64s returns a 1-D int64 initializer holding v, shared by every node
// that needs the same values.
func (r *rewriter) int64s(v ...int64) string {
	var key strings.Builder
	for _, x := range v {
		key.WriteString(strconv.FormatInt(x, 10))
		key.WriteByte(',')
	}
	if name, ok := r.consts[key.String()]; ok {
		return name
	}
	name := r.names.Name(prefix + "const")
	r.g.Initializers = append(r.g.Initializers, onnx.NewInt64Tensor(name, []int64{int64(len(v))}, v))
	r.consts[key.String()] = name
	return name
}

// node appends a one-output node to r.added and returns its output, named
// after hint.
func (r *rewriter) node(op string, inputs []string, hint string, attrs ...*onnx.Attribute) string {
	out := r.names.Name(prefix + hint)
	r.added = append(r.added, &onnx.Node{
		Name:       r.names.Name(prefix + op),
		OpType:     op,
		Inputs:     inputs,
		Outputs:    []string{out},
		Attributes: attrs,
	})
	return out
}

// marked returns the axes a node was already made circular along.
func marked(n *onnx.Node) Axes {
	a, _ := ParseAxes(metadata(n.Metadata, MarkerKey))
	return a
}

func mark(n *onnx.Node, a Axes) {
	n.Metadata = setMetadata(n.Metadata, MarkerKey, a.String())
}

func metadata(es []*onnx.StringStringEntry, key string) string {
	for _, e := range es {
		if e != nil && e.Key == key {
			return e.Value
		}
	}
	return ""
}

func setMetadata(es []*onnx.StringStringEntry, key, value string) []*onnx.StringStringEntry {
	for _, e := range es {
		if e != nil && e.Key == key {
			e.Value = value
			return es
		}
	}
	return append(es, &onnx.StringStringEntry{Key: key, Value: value})
}
