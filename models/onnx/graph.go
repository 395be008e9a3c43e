package onnx

import (
	"fmt"
	"strconv"
	"strings"
)

// Opset returns the version of operator set domain the model imports ("" and
// "ai.onnx" both name the default domain), or 0 when it does not import it.
func (m *Model) Opset(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.OpsetImports {
		if o == nil {
			continue
		}
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// NodesByOp returns the nodes of g (not of subgraphs) whose operator is
// opType in the default domain, in graph order.
func (g *Graph) NodesByOp(opType string) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if n != nil && n.OpType == opType && (n.Domain == "" || n.Domain == "ai.onnx") {
			out = append(out, n)
		}
	}
	return out
}

// NodeIndex returns n's position in g.Nodes, or -1.
func (g *Graph) NodeIndex(n *Node) int {
	for i, x := range g.Nodes {
		if x == n {
			return i
		}
	}
	return -1
}

// InsertNodes inserts nodes before position at (len(g.Nodes) appends).
func (g *Graph) InsertNodes(at int, nodes ...*Node) {
	at = max(0, min(at, len(g.Nodes)))
	g.Nodes = append(g.Nodes[:at], append(append([]*Node(nil), nodes...), g.Nodes[at:]...)...)
}

// InsertBefore inserts nodes just before node ref (or appends them when
// ref is not in g), keeping the graph topologically sorted when the new
// nodes only consume values available before ref.
func (g *Graph) InsertBefore(ref *Node, nodes ...*Node) {
	i := g.NodeIndex(ref)
	if i < 0 {
		i = len(g.Nodes)
	}
	g.InsertNodes(i, nodes...)
}

// RemoveNode deletes n from g and reports whether it was there.
func (g *Graph) RemoveNode(n *Node) bool {
	i := g.NodeIndex(n)
	if i < 0 {
		return false
	}
	g.Nodes = append(g.Nodes[:i], g.Nodes[i+1:]...)
	return true
}

// Producer returns the node that outputs value name, or nil for graph
// inputs, initializers and unknown names.
func (g *Graph) Producer(name string) *Node {
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		for _, o := range n.Outputs {
			if o == name {
				return n
			}
		}
	}
	return nil
}

// Consumers returns the nodes of g that read value name.
func (g *Graph) Consumers(name string) []*Node {
	var out []*Node
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		for _, in := range n.Inputs {
			if in == name {
				out = append(out, n)
				break
			}
		}
	}
	return out
}

// Initializer returns the initializer called name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t != nil && t.Name == name {
			return t
		}
	}
	return nil
}

// Input returns the graph input called name, or nil.
func (g *Graph) Input(name string) *ValueInfo { return findValue(g.Inputs, name) }

// Output returns the graph output called name, or nil.
func (g *Graph) Output(name string) *ValueInfo { return findValue(g.Outputs, name) }

func findValue(vs []*ValueInfo, name string) *ValueInfo {
	for _, v := range vs {
		if v != nil && v.Name == name {
			return v
		}
	}
	return nil
}

// RenameValue renames value old to new everywhere in g: node inputs and
// outputs, graph inputs, outputs, value_info and initializers, and the
// subgraphs of If/Loop/Scan attributes that refer to it from the outer
// scope (a subgraph that defines its own value old shadows it and is left
// alone). It returns the number of references changed.
func (g *Graph) RenameValue(old, new string) int {
	if old == new || old == "" {
		return 0
	}
	count := 0
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		for i, s := range n.Inputs {
			if s == old {
				n.Inputs[i] = new
				count++
			}
		}
		for i, s := range n.Outputs {
			if s == old {
				n.Outputs[i] = new
				count++
			}
		}
		for _, a := range n.Attributes {
			if a == nil {
				continue
			}
			subs := a.Graphs
			if a.G != nil {
				subs = append([]*Graph{a.G}, subs...)
			}
			for _, sg := range subs {
				if sg != nil && !sg.defines(old) {
					count += sg.RenameValue(old, new)
				}
			}
		}
	}
	for _, vs := range [][]*ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range vs {
			if v != nil && v.Name == old {
				v.Name = new
				count++
			}
		}
	}
	for _, t := range g.Initializers {
		if t != nil && t.Name == old {
			t.Name = new
			count++
		}
	}
	return count
}

// defines reports whether g itself introduces value name (as an input,
// initializer or node output).
func (g *Graph) defines(name string) bool {
	if g.Input(name) != nil || g.Initializer(name) != nil {
		return true
	}
	return g.Producer(name) != nil
}

// SortTopologically reorders g.Nodes so every node comes after the
// producers of its inputs, keeping the existing order wherever it is
// already valid. Values from graph inputs, initializers and outer scopes
// (names no node of g produces) are treated as available. It fails on a
// cycle, naming a node on it.
func (g *Graph) SortTopologically() error {
	producer := map[string]int{}
	for i, n := range g.Nodes {
		if n == nil {
			return fmt.Errorf("graph %q: node %d is nil", g.Name, i)
		}
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	deps := make([][]int, len(g.Nodes))
	users := make([][]int, len(g.Nodes))
	pending := make([]int, len(g.Nodes))
	for i, n := range g.Nodes {
		seen := map[int]bool{}
		for _, in := range n.allInputs() {
			if p, ok := producer[in]; ok && p != i && !seen[p] {
				seen[p] = true
				deps[i] = append(deps[i], p)
				users[p] = append(users[p], i)
				pending[i]++
			}
		}
	}
	// Kahn's algorithm, always taking the lowest ready index, so an
	// already sorted graph is unchanged.
	ready := &intHeap{}
	for i := range g.Nodes {
		if pending[i] == 0 {
			ready.push(i)
		}
	}
	order := make([]*Node, 0, len(g.Nodes))
	for ready.len() > 0 {
		i := ready.pop()
		order = append(order, g.Nodes[i])
		for _, u := range users[i] {
			pending[u]--
			if pending[u] == 0 {
				ready.push(u)
			}
		}
	}
	if len(order) != len(g.Nodes) {
		for i, p := range pending {
			if p > 0 {
				n := g.Nodes[i]
				return fmt.Errorf("graph %q: cycle through node %q (%s)", g.Name, n.Name, n.OpType)
			}
		}
	}
	g.Nodes = order
	return nil
}

// allInputs lists the values n reads, including those its subgraphs read
// from the enclosing scope.
func (n *Node) allInputs() []string {
	out := append([]string(nil), n.Inputs...)
	for _, a := range n.Attributes {
		if a == nil {
			continue
		}
		subs := a.Graphs
		if a.G != nil {
			subs = append([]*Graph{a.G}, subs...)
		}
		for _, sg := range subs {
			if sg == nil {
				continue
			}
			for _, sn := range sg.Nodes {
				if sn == nil {
					continue
				}
				for _, in := range sn.allInputs() {
					if !sg.defines(in) {
						out = append(out, in)
					}
				}
			}
		}
	}
	return out
}

// intHeap is a min-heap of ints.
type intHeap struct{ a []int }

func (h *intHeap) len() int { return len(h.a) }
func (h *intHeap) push(v int) {
	h.a = append(h.a, v)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h.a[p] <= h.a[i] {
			break
		}
		h.a[p], h.a[i] = h.a[i], h.a[p]
		i = p
	}
}
func (h *intHeap) pop() int {
	top := h.a[0]
	last := len(h.a) - 1
	h.a[0] = h.a[last]
	h.a = h.a[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h.a) && h.a[l] < h.a[m] {
			m = l
		}
		if r < len(h.a) && h.a[r] < h.a[m] {
			m = r
		}
		if m == i {
			break
		}
		h.a[m], h.a[i] = h.a[i], h.a[m]
		i = m
	}
	return top
}

// Namer hands out names that no value or node of a graph uses yet, for
// graph rewrites that add nodes.
type Namer struct {
	used map[string]bool
	next map[string]int
}

// NewNamer returns a Namer that avoids every value, initializer and node
// name in g and its subgraphs (g may be nil).
func NewNamer(g *Graph) *Namer {
	n := &Namer{used: map[string]bool{}, next: map[string]int{}}
	if g != nil {
		n.addGraph(g)
	}
	return n
}

func (nm *Namer) addGraph(g *Graph) {
	for _, vs := range [][]*ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range vs {
			if v != nil {
				nm.used[v.Name] = true
			}
		}
	}
	for _, t := range g.Initializers {
		if t != nil {
			nm.used[t.Name] = true
		}
	}
	for _, n := range g.Nodes {
		if n == nil {
			continue
		}
		nm.used[n.Name] = true
		for _, s := range n.Inputs {
			nm.used[s] = true
		}
		for _, s := range n.Outputs {
			nm.used[s] = true
		}
		for _, a := range n.Attributes {
			if a == nil {
				continue
			}
			if a.G != nil {
				nm.addGraph(a.G)
			}
			for _, sg := range a.Graphs {
				if sg != nil {
					nm.addGraph(sg)
				}
			}
		}
	}
}

// Name returns prefix if it is free, else prefix_1, prefix_2, ..., and
// marks the result used.
func (nm *Namer) Name(prefix string) string {
	if prefix == "" {
		prefix = "v"
	}
	if !nm.used[prefix] {
		nm.used[prefix] = true
		return prefix
	}
	for i := nm.next[prefix] + 1; ; i++ {
		s := prefix + "_" + strconv.Itoa(i)
		if !nm.used[s] {
			nm.used[s] = true
			nm.next[prefix] = i
			return s
		}
	}
}

// Reserve marks name used and reports whether it was free.
func (nm *Namer) Reserve(name string) bool {
	free := !nm.used[name]
	nm.used[name] = true
	return free
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attribute {
	for _, a := range n.Attributes {
		if a != nil && a.Name == name {
			return a
		}
	}
	return nil
}

// SetAttr replaces the attribute with a's name in place, or appends a.
func (n *Node) SetAttr(a *Attribute) {
	for i, x := range n.Attributes {
		if x != nil && x.Name == a.Name {
			n.Attributes[i] = a
			return
		}
	}
	n.Attributes = append(n.Attributes, a)
}

// DeleteAttr removes the attribute called name and reports whether it was
// there.
func (n *Node) DeleteAttr(name string) bool {
	for i, x := range n.Attributes {
		if x != nil && x.Name == name {
			n.Attributes = append(n.Attributes[:i], n.Attributes[i+1:]...)
			return true
		}
	}
	return false
}

// AttrInt returns integer attribute name, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil && (a.Type == AttrInt || a.Type == AttrUndefined) {
		return a.I
	}
	return def
}

// AttrFloat returns float attribute name, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil && (a.Type == AttrFloat || a.Type == AttrUndefined) {
		return a.F
	}
	return def
}

// AttrString returns string attribute name, or def when absent.
func (n *Node) AttrString(name, def string) string {
	if a := n.Attr(name); a != nil && (a.Type == AttrString || a.Type == AttrUndefined) {
		return string(a.S)
	}
	return def
}

// AttrInts returns a copy of integer-list attribute name, or nil when
// absent.
func (n *Node) AttrInts(name string) []int64 {
	if a := n.Attr(name); a != nil {
		return append([]int64(nil), a.Ints...)
	}
	return nil
}

// AttrFloats returns a copy of float-list attribute name, or nil.
func (n *Node) AttrFloats(name string) []float32 {
	if a := n.Attr(name); a != nil {
		return append([]float32(nil), a.Floats...)
	}
	return nil
}

// AttrTensor returns tensor attribute name, or nil.
func (n *Node) AttrTensor(name string) *Tensor {
	if a := n.Attr(name); a != nil {
		return a.T
	}
	return nil
}

// IntAttr makes an INT attribute.
func IntAttr(name string, v int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInt, I: v}
}

// FloatAttr makes a FLOAT attribute.
func FloatAttr(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}

// StringAttr makes a STRING attribute.
func StringAttr(name, v string) *Attribute {
	return &Attribute{Name: name, Type: AttrString, S: []byte(v)}
}

// IntsAttr makes an INTS attribute.
func IntsAttr(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: append([]int64(nil), v...)}
}

// FloatsAttr makes a FLOATS attribute.
func FloatsAttr(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: append([]float32(nil), v...)}
}

// TensorAttr makes a TENSOR attribute.
func TensorAttr(name string, t *Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: t}
}

// GraphAttr makes a GRAPH attribute.
func GraphAttr(name string, g *Graph) *Attribute {
	return &Attribute{Name: name, Type: AttrGraph, G: g}
}

// NewValueInfo describes a tensor value. Each dim is an int or int64 (a
// fixed size), a string (a symbolic size such as "batch"), or nil (an
// unknown size); no dims makes a scalar.
func NewValueInfo(name string, dt DataType, dims ...any) (*ValueInfo, error) {
	shape := &TensorShape{Dims: []*Dimension{}}
	for i, d := range dims {
		switch v := d.(type) {
		case int:
			shape.Dims = append(shape.Dims, &Dimension{Value: int64(v)})
		case int64:
			shape.Dims = append(shape.Dims, &Dimension{Value: v})
		case string:
			shape.Dims = append(shape.Dims, &Dimension{Param: v})
		case nil:
			shape.Dims = append(shape.Dims, &Dimension{})
		default:
			return nil, fmt.Errorf("value %q: dim %d has type %T; want int, int64, string or nil", name, i, d)
		}
	}
	return &ValueInfo{Name: name, Type: &Type{Tensor: &TensorType{ElemType: dt, Shape: shape}}}, nil
}

// ElemType returns the value's tensor element type, or Undefined when it is
// not a tensor.
func (v *ValueInfo) ElemType() DataType {
	if v.Type == nil || v.Type.Tensor == nil {
		return Undefined
	}
	return v.Type.Tensor.ElemType
}

// Shape returns the value's dims, or nil with ok false when the rank is
// unknown. A scalar has ok true and no dims.
func (v *ValueInfo) Shape() (dims []*Dimension, ok bool) {
	if v.Type == nil || v.Type.Tensor == nil || v.Type.Tensor.Shape == nil {
		return nil, false
	}
	return v.Type.Tensor.Shape.Dims, true
}

// ShapeString formats the value's type for messages, e.g.
// "float32[batch,4,64,64]".
func (v *ValueInfo) ShapeString() string {
	dims, ok := v.Shape()
	var b strings.Builder
	b.WriteString(v.ElemType().String())
	if !ok {
		b.WriteString("[?]")
		return b.String()
	}
	b.WriteByte('[')
	for i, d := range dims {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case d == nil:
			b.WriteByte('?')
		case d.Param != "":
			b.WriteString(d.Param)
		case d.Value != 0 || len(d.layout) > 0:
			b.WriteString(strconv.FormatInt(d.Value, 10))
		default:
			b.WriteByte('?')
		}
	}
	b.WriteByte(']')
	return b.String()
}
