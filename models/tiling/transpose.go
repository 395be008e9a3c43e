package tiling

import (
	"errors"
	"fmt"
	"math"

	"github.com/kiln-dev/kiln/models/onnx"
)

// convTranspose makes a 2-D ConvTranspose circular along the wrapping
// axes and reports whether it changed it.
//
// Along one axis, an input of D pixels, stride s, kernel k and dilation d
// give the unpadded ("full") output F of L = (D−1)·s + (k−1)·d + 1
// pixels; pads crop it. Circularly, the output is one period of N = D·s
// pixels: pixel j receives every F[j'] with j' ≡ j (mod N). So the
// node's pads and output_padding become zero on the wrapped axis, the
// h = L − N = (k−1)·d + 1 − s pixels past N are added onto the first h,
// and the period is rotated left by the begin padding. That is only a
// period when the original output is N pixels (the node is an
// upsampler: pads and output_padding sum to h), which is checked. The
// bias is taken out of the node and added after the fold, which would
// otherwise count it twice.
func (r *rewriter) convTranspose(n *onnx.Node, want Axes) (bool, error) {
	if done := marked(n); !done.None() {
		if !done.contains(want) {
			return false, fmt.Errorf("it was made circular along %s only; rewrite the original graph for %s instead", done, want)
		}
		return false, nil
	}
	if len(n.Inputs) < 2 || n.Inputs[0] == "" || len(n.Outputs) == 0 || n.Outputs[0] == "" {
		return false, errors.New("it lacks an input, weight or output")
	}
	if n.Attr("output_shape") != nil {
		return false, errors.New("it sets output_shape, which hides its padding; export the model with explicit pads")
	}
	kernel, err := r.kernelShape(n)
	if err != nil {
		return false, err
	}
	const rank = 2
	if len(kernel) != rank {
		return false, nil // not an image convolution
	}
	pads := intsOr(n.AttrInts("pads"), 2*rank, 0)
	switch ap := n.AttrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
	case "VALID":
		pads = make([]int64, 2*rank)
	default:
		return false, fmt.Errorf("auto_pad %s is not supported; export the model with explicit pads", ap)
	}
	strides := intsOr(n.AttrInts("strides"), rank, 1)
	dils := intsOr(n.AttrInts("dilations"), rank, 1)
	outPad := intsOr(n.AttrInts("output_padding"), rank, 0)
	if len(pads) != 2*rank || len(strides) != rank || len(dils) != rank || len(outPad) != rank {
		return false, fmt.Errorf("pads %v, strides %v, dilations %v or output_padding %v do not fit a 2-D kernel", pads, strides, dils, outPad)
	}

	type fold struct {
		axis       int64
		overhang   int64
		begin      int64
		axisLetter string
	}
	var folds []fold
	for i, wraps := range []bool{want.Y, want.X} {
		if !wraps {
			continue
		}
		letter := "y"
		if i == 1 {
			letter = "x"
		}
		h := (kernel[i]-1)*dils[i] + 1 - strides[i]
		if h < 0 {
			return false, fmt.Errorf("its kernel (%d, dilation %d) is shorter than its stride %d along %s, so its output has gaps; it cannot wrap", kernel[i], dils[i], strides[i], letter)
		}
		if extra := h + outPad[i] - pads[i] - pads[i+rank]; extra != 0 {
			return false, fmt.Errorf("its output along %s is %+d pixels off stride × input (pads %v, output_padding %v); only a ConvTranspose that upsamples exactly by its stride can wrap", letter, extra, pads, outPad)
		}
		folds = append(folds, fold{axis: int64(2 + i), overhang: h, begin: pads[i], axisLetter: letter})
		pads[i], pads[i+rank], outPad[i] = 0, 0, 0
	}
	if len(folds) == 0 {
		return false, nil
	}

	bias := ""
	if len(n.Inputs) > 2 {
		bias = n.Inputs[2]
	}
	if bias != "" && r.opset < 5 {
		return false, errors.New("it has a bias, which the rewrite moves with Reshape, and the model's opset is older than 5")
	}

	r.added = r.added[:0]
	orig := n.Outputs[0]
	cur := r.names.Name(prefix + orig + "/full")
	n.Outputs[0] = cur
	if len(n.Inputs) > 2 {
		n.Inputs = n.Inputs[:2]
	}
	for _, f := range folds {
		cur = r.fold(cur, f.axis, f.overhang, f.begin, f.axisLetter)
	}
	if bias != "" {
		shaped := r.node("Reshape", []string{bias, r.int64s(1, -1, 1, 1)}, orig+"/bias")
		cur = r.node("Add", []string{cur, shaped}, orig+"/biased")
	}
	if len(r.added) == 0 {
		r.node("Identity", []string{cur}, orig)
	}
	// The last node now produces the original output, so its consumers
	// and the graph outputs are unchanged.
	last := r.added[len(r.added)-1]
	last.Outputs[0] = orig

	r.after[n] = append([]*onnx.Node(nil), r.added...)
	n.DeleteAttr("auto_pad")
	n.SetAttr(onnx.IntsAttr("pads", pads...))
	if n.Attr("output_padding") != nil {
		n.SetAttr(onnx.IntsAttr("output_padding", outPad...))
	}
	mark(n, want)
	return true, nil
}

// fold turns a full transposed-convolution output along axis into its
// circular period: the last h elements are added onto the first h, and
// the result is rotated left by begin.
func (r *rewriter) fold(f string, axis, h, begin int64, letter string) string {
	hint := f + "/fold_" + letter
	if h == 0 {
		return r.rotate(f, axis, begin, hint)
	}
	// F = [head | middle | over], |head| = |over| = h; the period is
	// S | middle with S = head + over.
	head := r.slice(f, axis, 0, h)
	over := r.slice(f, axis, -h, math.MaxInt64)
	middle := r.slice(f, axis, h, -h)
	s := r.node("Add", []string{head, over}, hint)
	if begin <= h {
		// Rotating S | middle left by begin ≤ |S| is S[begin:] | middle | S[:begin].
		parts := []string{}
		if begin < h {
			parts = append(parts, r.sliceOrSelf(s, axis, begin, math.MaxInt64))
		}
		parts = append(parts, middle)
		if begin > 0 {
			parts = append(parts, r.slice(s, axis, 0, begin))
		}
		return r.node("Concat", parts, hint, onnx.IntAttr("axis", axis))
	}
	period := r.node("Concat", []string{s, middle}, hint, onnx.IntAttr("axis", axis))
	return r.rotate(period, axis, begin, hint)
}

// rotate returns x rotated left by k along axis (x[k:] | x[:k]).
func (r *rewriter) rotate(x string, axis, k int64, hint string) string {
	if k == 0 {
		return x
	}
	return r.node("Concat", []string{r.slice(x, axis, k, math.MaxInt64), r.slice(x, axis, 0, k)}, hint, onnx.IntAttr("axis", axis))
}

// sliceOrSelf is slice, or x itself when the slice would be all of it.
func (r *rewriter) sliceOrSelf(x string, axis, start, stop int64) string {
	if start == 0 && stop == math.MaxInt64 {
		return x
	}
	return r.slice(x, axis, start, stop)
}
