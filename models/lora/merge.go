package lora

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/models/onnx"
)

// Weighted is one LoRA as a manifest applies it: the file's name (for
// messages), its modules, and the strength it is merged at.
type Weighted struct {
	Name  string
	LoRA  *LoRA
	Scale float64
}

// target is a weight of the graph a module can change: the initializer
// feeding a MatMul, Gemm or Conv node, and whether it is stored as
// [in, out] (a Linear exported as MatMul, or Gemm without transB) rather
// than torch's [out, in, …].
type target struct {
	node       string
	init       *onnx.Tensor
	transposed bool
	shared     bool
}

// weightOps are the operators whose second input is a LoRA-able weight.
var weightOps = map[string]bool{"MatMul": true, "Gemm": true, "Conv": true}

// moduleOf returns the module a node name exported by torch belongs to,
// in kohya's spelling: "/down_blocks.0/attentions.0/transformer_blocks.0/
// attn1/to_q/MatMul" gives "down_blocks_0_attentions_0_transformer_blocks_0
// _attn1_to_q". ok is false for names without a module path.
func moduleOf(node *onnx.Node) (string, bool) {
	if !strings.HasPrefix(node.Name, "/") {
		return "", false
	}
	parts := strings.Split(node.Name[1:], "/")
	if len(parts) < 2 || !strings.HasPrefix(parts[len(parts)-1], node.OpType) {
		return "", false
	}
	path := strings.Join(parts[:len(parts)-1], "_")
	return strings.ReplaceAll(path, ".", "_"), path != ""
}

// findTargets maps module names to the weights the graph's nodes use.
// The weight is found by following the node's weight input back through
// Cast, Identity and 2-D Transpose nodes (fp16 weights cast for a float32
// graph, weights transposed by an optimizer) to an initializer.
func findTargets(g *onnx.Graph) map[string]*target {
	uses := map[string]int{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	out := map[string]*target{}
	for _, n := range g.Nodes {
		if !weightOps[n.OpType] || len(n.Inputs) < 2 {
			continue
		}
		module, ok := moduleOf(n)
		if !ok {
			continue
		}
		if _, dup := out[module]; dup {
			continue
		}
		transposed := n.OpType == "MatMul" || (n.OpType == "Gemm" && n.AttrInt("transB", 0) == 0)
		if n.OpType == "Gemm" && n.AttrInt("transA", 0) != 0 {
			continue
		}
		value, shared := n.Inputs[1], false
		var init *onnx.Tensor
	follow:
		for hop := 0; hop < 4; hop++ {
			if uses[value] > 1 {
				shared = true
			}
			if init = g.Initializer(value); init != nil {
				break
			}
			p := g.Producer(value)
			if p == nil || len(p.Inputs) == 0 {
				break
			}
			switch p.OpType {
			case "Cast", "Identity":
			case "Transpose":
				if perm := p.AttrInts("perm"); len(perm) != 0 && !(len(perm) == 2 && perm[0] == 1 && perm[1] == 0) {
					break follow
				}
				transposed = !transposed
			default:
				break follow
			}
			value = p.Inputs[0]
		}
		if init == nil {
			continue
		}
		if n.OpType != "Conv" && len(init.Dims) != 2 {
			continue
		}
		out[module] = &target{node: n.Name, init: init, transposed: transposed, shared: shared}
	}
	return out
}

// torchShape returns the weight's shape as torch orders it: [out, in, …].
func (t *target) torchShape() []int64 {
	d := t.init.Dims
	if t.transposed {
		return []int64{d[1], d[0]}
	}
	return d
}

// MatchError reports a LoRA that does not fit a model: modules that match
// no weight, or weights whose shapes differ from the LoRA's, which means
// the LoRA was trained for another base model.
type MatchError struct {
	LoRA      string // the LoRA's name
	Component string // the model component, such as "unet"
	Graph     string // the graph file, for messages
	Modules   int    // modules of the LoRA for this component
	Unmatched []string
	// Mismatched lists "module: LoRA [out×in], model [out×in]" entries.
	Mismatched []string
	// LoRABase and ModelBase name the base models the shapes suggest,
	// such as "SDXL" and "SD 1.x"; "" when they cannot be told.
	LoRABase, ModelBase string
}

func (e *MatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "LoRA %s does not fit %s (%s)", e.LoRA, e.Component, e.Graph)
	if len(e.Mismatched) > 0 {
		fmt.Fprintf(&b, ": it was made for another base model: %d of %d modules have other shapes than the model's weights (e.g. %s)", len(e.Mismatched), e.Modules, examples(e.Mismatched))
		if e.LoRABase != "" && e.ModelBase != "" && e.LoRABase != e.ModelBase {
			fmt.Fprintf(&b, "; the LoRA's shapes are those of %s, the model is %s", e.LoRABase, e.ModelBase)
		}
	}
	if len(e.Unmatched) > 0 {
		sep := ": "
		if len(e.Mismatched) > 0 {
			sep = "; and "
		}
		if len(e.Unmatched) == e.Modules {
			fmt.Fprintf(&b, "%snone of its %d modules matches a weight of the model (e.g. %s)", sep, e.Modules, examples(e.Unmatched))
		} else {
			fmt.Fprintf(&b, "%s%d of its %d modules match no weight of the model (e.g. %s)", sep, len(e.Unmatched), e.Modules, examples(e.Unmatched))
		}
	}
	b.WriteString(": use a LoRA trained for this model's base, or another model")
	return b.String()
}

// crossAttnBases names base models by the width of the UNet's
// cross-attention input (the text encoder's hidden size), and
// textBases by the text encoder's hidden size.
var (
	crossAttnBases = map[int64]string{768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}
	textBases      = map[int64]string{768: "SD 1.x or SDXL (CLIP ViT-L)", 1024: "SD 2.x", 1280: "SDXL (OpenCLIP bigG)"}
)

// baseOf guesses a base model from a module's name and its input width:
// a UNet cross-attention key or value projection, or a text encoder's
// query projection. ok is false for other modules.
func baseOf(component, module string, in int64) (string, bool) {
	switch {
	case component == UNet && (strings.HasSuffix(module, "attn2_to_k") || strings.HasSuffix(module, "attn2_to_v")):
		b, ok := crossAttnBases[in]
		return b, ok
	case component != UNet && strings.HasSuffix(module, "self_attn_q_proj"):
		b, ok := textBases[in]
		return b, ok
	}
	return "", false
}

// Apply merges LoRAs into the weights of component's graph m, whose
// external data (if any) lives in dir: each matched weight W becomes
// W + scale · (alpha/rank) · up·down, computed in float32 and stored back
// in the weight's own type (float32 or float16) as inline data, so the
// edited model can be encoded and loaded from memory without writing a
// copy of the original's weights. graph names the file for messages.
//
// Every module of every LoRA for this component must match a weight of
// the same shape; otherwise Apply returns a *MatchError and leaves m
// unchanged. It returns how many weights it changed.
func Apply(m *onnx.Model, dir, graph, component string, loras []Weighted) (int, error) {
	if m.Graph == nil {
		return 0, fmt.Errorf("%s has no graph", graph)
	}
	targets := findTargets(m.Graph)
	type update struct {
		mod   *Module
		scale float64
	}
	updates := map[*target][]update{}
	for _, w := range loras {
		e := &MatchError{LoRA: w.Name, Component: component, Graph: graph}
		for _, mod := range w.LoRA.Modules {
			if mod.Component != component {
				continue
			}
			e.Modules++
			t := targets[mod.Name]
			if t == nil {
				e.Unmatched = append(e.Unmatched, mod.Key)
				continue
			}
			ws := t.torchShape()
			in := numel(mod.Down.Shape[1:])
			if ws[0] != mod.Up.Shape[0] || numel(ws[1:]) != in {
				e.Mismatched = append(e.Mismatched, fmt.Sprintf("%s: LoRA %d×%d, model %d×%d", mod.Key, mod.Up.Shape[0], in, ws[0], numel(ws[1:])))
				if b, ok := baseOf(component, mod.Name, in); ok && e.LoRABase == "" {
					e.LoRABase = b
				}
				if b, ok := baseOf(component, mod.Name, numel(ws[1:])); ok && e.ModelBase == "" {
					e.ModelBase = b
				}
				continue
			}
			if t.shared {
				return 0, fmt.Errorf("LoRA %s: module %s changes weight %q of %s (node %s), which other nodes share; kiln cannot change it for one node only", w.Name, mod.Key, t.init.Name, graph, t.node)
			}
			updates[t] = append(updates[t], update{mod, w.Scale})
		}
		if len(e.Unmatched) > 0 || len(e.Mismatched) > 0 {
			return 0, e
		}
	}
	// Merge in a fixed order, so float rounding does not depend on maps.
	order := make([]*target, 0, len(updates))
	for t := range updates {
		order = append(order, t)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].init.Name < order[j].init.Name })
	merged := make(map[*target][]byte, len(order))
	for _, t := range order {
		dt := t.init.DataType
		if dt != onnx.Float && dt != onnx.Float16 {
			return 0, fmt.Errorf("%s: weight %q of node %s is %s; kiln merges LoRAs only into float32 and float16 weights", graph, t.init.Name, t.node, dt)
		}
		raw, err := t.init.ReadData(dir)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", graph, err)
		}
		w, err := onnx.Float32s(dt, raw)
		if err != nil {
			return 0, fmt.Errorf("%s: weight %q: %w", graph, t.init.Name, err)
		}
		for _, u := range updates[t] {
			if err := addDelta(w, t, u.mod, u.scale); err != nil {
				return 0, fmt.Errorf("%s: %w", graph, err)
			}
		}
		merged[t] = encodeFloats(dt, w)
	}
	for _, t := range order {
		t.init.RawData = merged[t]
		t.init.FloatData, t.init.Int32Data = nil, nil
		t.init.ExternalData = nil
		t.init.DataLocation = onnx.LocationDefault
	}
	return len(order), nil
}

// addDelta adds scale · factor · up·down to the weight w of t, in t's
// storage order.
func addDelta(w []float32, t *target, mod *Module, scale float64) error {
	up, err := mod.Up.Float32s()
	if err != nil {
		return err
	}
	down, err := mod.Down.Float32s()
	if err != nil {
		return err
	}
	out, rank := int(mod.Up.Shape[0]), int(mod.Rank())
	in := int(numel(mod.Down.Shape[1:]))
	if len(w) != out*in {
		return fmt.Errorf("weight %q has %d values, module %s needs %d×%d", t.init.Name, len(w), mod.Key, out, in)
	}
	f := scale * mod.Factor()
	row := make([]float64, in)
	for o := 0; o < out; o++ {
		clear(row)
		for r := 0; r < rank; r++ {
			u := float64(up[o*rank+r])
			if u == 0 {
				continue
			}
			d := down[r*in : (r+1)*in]
			for k, v := range d {
				row[k] += u * float64(v)
			}
		}
		for k, v := range row {
			i := o*in + k
			if t.transposed {
				i = k*out + o
			}
			w[i] += float32(f * v)
		}
	}
	return nil
}

// encodeFloats stores float32 values as raw little-endian dt bytes.
func encodeFloats(dt onnx.DataType, v []float32) []byte {
	if dt == onnx.Float16 {
		out := make([]byte, 2*len(v))
		for i, h := range onnx.Float32sToFloat16(v) {
			binary.LittleEndian.PutUint16(out[2*i:], h)
		}
		return out
	}
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}
