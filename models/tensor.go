package models

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"sync"

	"github.com/kiln-dev/kiln/generators/sampler"
	ort "github.com/yalue/onnxruntime_go"
)

// feedValue is one graph input as kiln has it: float data (converted to
// whatever float type the graph declares) or integer data (converted to
// the graph's integer type), with its shape.
type feedValue struct {
	shape []int64
	f32   []float32
	i64   []int64
	// scalar allows feeding a one-element value to a rank-0 input.
	scalar bool
}

// fetch says what kiln expects of one output: its shape as far as kiln
// can tell (-1 where it cannot), and optionally where to put the data.
type fetch struct {
	name  string
	shape []int64
	// prealloc makes kiln allocate a float32 output itself (ONNX Runtime
	// writes straight into it). Otherwise ONNX Runtime allocates float32
	// outputs and kiln checks their shape afterwards; float16 outputs are
	// always allocated by kiln (see run).
	prealloc bool
	// hint explains where the expected shape came from, for errors.
	hint string
}

// scratch holds reusable conversion buffers for one call, so fp16 models
// do not allocate full-size buffers per step. Buffers are returned to a
// sync.Pool after the call; concurrent calls take separate scratches.
type scratch struct {
	bufs [][]byte
	next int
}

func (s *scratch) bytes(n int) []byte {
	if s.next == len(s.bufs) {
		s.bufs = append(s.bufs, nil)
	}
	b := s.bufs[s.next]
	if cap(b) < n {
		b = make([]byte, n)
	}
	b = b[:n]
	s.bufs[s.next] = b
	s.next++
	return b
}

type scratchPool struct{ p sync.Pool }

func (sp *scratchPool) get() *scratch {
	if s, ok := sp.p.Get().(*scratch); ok {
		s.next = 0
		return s
	}
	return &scratch{}
}

func (sp *scratchPool) put(s *scratch) { sp.p.Put(s) }

func numel(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

func shapeString(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// run feeds a session by input name and fetches the session's outputs in
// order. what names the graph in errors ("unet/model.onnx").
func run(ctx context.Context, s *Session, what string, sc *scratch, feeds map[string]feedValue, fetches []fetch) ([]sampler.Tensor, error) {
	ins := s.Inputs()
	outs := s.Outputs()
	if len(fetches) != len(outs) {
		return nil, fmt.Errorf("%s: kiln asked for %d outputs, the session computes %d", what, len(fetches), len(outs))
	}
	var vals []ort.Value
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for _, ti := range ins {
		fv, ok := feeds[ti.Name]
		if !ok {
			return nil, fmt.Errorf("%s has input %q (%s%s) that kiln does not know how to fill; kiln fills %s", what, ti.Name, dtypeName(ti.Type), shapeString(ti.Shape), strings.Join(sortedKeys(feeds), ", "))
		}
		v, err := inputValue(what, ti, fv, sc)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	nIn := len(vals)
	halves := make([][]byte, len(outs))
	for i, to := range outs {
		f := fetches[i]
		shape := make([]int64, len(to.Shape))
		known := true
		for j, d := range to.Shape {
			if d < 0 && j < len(f.shape) {
				d = f.shape[j]
			}
			shape[j] = d
			if d < 0 {
				known = false
			}
		}
		if !known && to.Type != ort.TensorElementDataTypeFloat {
			// onnxruntime_go v1.27.0 copies only one byte per element when
			// it allocates a non-float32 output itself, so kiln must.
			return nil, fmt.Errorf("%s: cannot tell the shape of %s output %q (%s) before running it", what, dtypeName(to.Type), to.Name, shapeString(to.Shape))
		}
		if to.Type == ort.TensorElementDataTypeFloat && (!known || !f.prealloc) {
			vals = append(vals, nil) // ONNX Runtime allocates it
			continue
		}
		n := numel(shape)
		switch to.Type {
		case ort.TensorElementDataTypeFloat:
			v, err := ort.NewTensor(ort.Shape(shape), make([]float32, n))
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: %w", what, to.Name, err)
			}
			vals = append(vals, v)
		case ort.TensorElementDataTypeFloat16:
			if n == 0 {
				return nil, fmt.Errorf("%s: output %q has an empty shape %v", what, to.Name, shape)
			}
			b := sc.bytes(2 * n)
			halves[i] = b
			v, err := ort.NewCustomDataTensor(ort.Shape(shape), b, ort.TensorElementDataTypeFloat16)
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: %w", what, to.Name, err)
			}
			vals = append(vals, v)
		default:
			return nil, fmt.Errorf("%s: output %q is %s; kiln reads float32 and float16 outputs", what, to.Name, dtypeName(to.Type))
		}
	}
	if err := s.Run(ctx, vals[:nIn], vals[nIn:]); err != nil {
		if m := shapeMismatch.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s produced an output of shape [%s] where kiln expected [%s]%s", what, m[1], m[2], hints(fetches))
		}
		return nil, err
	}
	res := make([]sampler.Tensor, len(outs))
	for i := range outs {
		v := vals[nIn+i]
		f := fetches[i]
		switch t := v.(type) {
		case *ort.Tensor[float32]:
			res[i] = sampler.Tensor{Shape: []int64(t.GetShape()), Data: t.GetData()}
		case *ort.CustomDataTensor:
			dst := make([]float32, len(halves[i])/2)
			float16sToFloat32(dst, halves[i])
			res[i] = sampler.Tensor{Shape: []int64(t.GetShape()), Data: dst}
		default:
			return nil, fmt.Errorf("%s: output %q came back as %T", what, outs[i].Name, v)
		}
		if !shapeMatches(res[i].Shape, f.shape) {
			hint := ""
			if f.hint != "" {
				hint = ": " + f.hint
			}
			return nil, fmt.Errorf("%s output %q has shape %v, kiln expected %s%s", what, outs[i].Name, res[i].Shape, shapeString(f.shape), hint)
		}
	}
	return res, nil
}

// shapeMismatch matches ONNX Runtime's error for a preallocated output of
// the wrong shape.
var shapeMismatch = regexp.MustCompile(`OrtValue shape verification failed\. Current shape:\{([0-9,]*)\} Requested shape:\{([0-9,]*)\}`)

func hints(fetches []fetch) string {
	for _, f := range fetches {
		if f.hint != "" {
			return ": " + f.hint
		}
	}
	return ""
}

// shapeMatches reports whether got fits want, where -1 in want matches any
// size.
func shapeMatches(got, want []int64) bool {
	if want == nil {
		return true
	}
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if want[i] >= 0 && got[i] != want[i] {
			return false
		}
	}
	return true
}

// inputValue converts fv to an ONNX Runtime value of the type and rank ti
// declares. Float data goes to float32 (shared, not copied), float16 or
// float64; integer data to int64 or int32.
func inputValue(what string, ti TensorInfo, fv feedValue, sc *scratch) (ort.Value, error) {
	n := numel(fv.shape)
	if fv.f32 != nil && len(fv.f32) != n || fv.i64 != nil && len(fv.i64) != n {
		return nil, fmt.Errorf("%s input %q: %d values for shape %v", what, ti.Name, len(fv.f32)+len(fv.i64), fv.shape)
	}
	if ti.Rank() == 0 {
		if n != 1 || !fv.scalar && len(fv.shape) != 0 {
			return nil, fmt.Errorf("%s input %q is a scalar, kiln has shape %v", what, ti.Name, fv.shape)
		}
		return scalarValue(what, ti, fv)
	}
	if ti.Rank() != len(fv.shape) {
		return nil, fmt.Errorf("%s input %q wants rank %d %s, kiln has shape %v", what, ti.Name, ti.Rank(), shapeString(ti.Shape), fv.shape)
	}
	for i, d := range ti.Shape {
		if d > 0 && d != fv.shape[i] {
			return nil, fmt.Errorf("%s input %q has fixed shape %s, kiln has %v (the export fixed this size; re-export with dynamic axes or use the size it was exported for)", what, ti.Name, shapeString(ti.Shape), fv.shape)
		}
	}
	shape := ort.Shape(fv.shape)
	if fv.f32 != nil {
		switch ti.Type {
		case ort.TensorElementDataTypeFloat:
			return ort.NewTensor(shape, fv.f32)
		case ort.TensorElementDataTypeFloat16:
			b := sc.bytes(2 * n)
			float32sToFloat16(b, fv.f32)
			return ort.NewCustomDataTensor(shape, b, ort.TensorElementDataTypeFloat16)
		case ort.TensorElementDataTypeDouble:
			d := make([]float64, n)
			for i, v := range fv.f32 {
				d[i] = float64(v)
			}
			return ort.NewTensor(shape, d)
		case ort.TensorElementDataTypeInt64:
			d := make([]int64, n)
			for i, v := range fv.f32 {
				d[i] = int64(v) // truncates, as numpy's astype does
			}
			return ort.NewTensor(shape, d)
		case ort.TensorElementDataTypeInt32:
			d := make([]int32, n)
			for i, v := range fv.f32 {
				d[i] = int32(v)
			}
			return ort.NewTensor(shape, d)
		}
	} else {
		switch ti.Type {
		case ort.TensorElementDataTypeInt64:
			return ort.NewTensor(shape, fv.i64)
		case ort.TensorElementDataTypeInt32:
			d := make([]int32, n)
			for i, v := range fv.i64 {
				d[i] = int32(v)
			}
			return ort.NewTensor(shape, d)
		}
	}
	return nil, fmt.Errorf("%s input %q is %s, which kiln cannot fill", what, ti.Name, dtypeName(ti.Type))
}

func scalarValue(what string, ti TensorInfo, fv feedValue) (ort.Value, error) {
	var f float64
	if fv.f32 != nil {
		f = float64(fv.f32[0])
	} else {
		f = float64(fv.i64[0])
	}
	// A new scalar per call: onnxruntime_go's Scalar.Set does not update
	// the value ONNX Runtime sees.
	switch ti.Type {
	case ort.TensorElementDataTypeFloat:
		return ort.NewScalar(float32(f))
	case ort.TensorElementDataTypeDouble:
		return ort.NewScalar(f)
	case ort.TensorElementDataTypeInt64:
		return ort.NewScalar(int64(f))
	case ort.TensorElementDataTypeInt32:
		return ort.NewScalar(int32(f))
	}
	// onnxruntime_go v1.27.0 cannot make rank-0 float16 values; the
	// Diffuser runs such graphs through a variant with a float32 input.
	return nil, fmt.Errorf("%s input %q is a %s scalar, which kiln cannot feed directly", what, ti.Name, dtypeName(ti.Type))
}

// float32sToFloat16 writes IEEE half-precision bits of src into dst
// (little-endian, 2 bytes per value), as ONNX Runtime expects, rounding to
// nearest even. It runs on every step of an fp16 model, so it avoids the
// per-bit branching of onnx.Float32ToFloat16 (which the tests check it
// against): normal numbers are rebiased and rounded with integer
// arithmetic, and subnormal halves are rounded by the FPU.
func float32sToFloat16(dst []byte, src []float32) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		h := f32ToF16(v)
		dst[2*i] = byte(h)
		dst[2*i+1] = byte(h >> 8)
	}
}

func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	b &= 0x7fffffff
	switch {
	case b >= 0x47800000: // |f| >= 65536, Inf or NaN
		if b > 0x7f800000 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case b < 0x38800000: // below the smallest normal half, 2^-14
		// In 0.5 + |f| the float32 unit in the last place is 2^-24, the
		// half subnormal step, so the FPU's addition rounds |f| to a
		// whole number of steps, to nearest even.
		v := math.Float32frombits(b) + 0.5
		return sign | uint16(math.Float32bits(v)-0x3f000000)
	}
	// Rebias the exponent (127 → 15) and round the 13 dropped mantissa
	// bits to nearest even; a carry into the exponent is correct, up to
	// Inf.
	odd := (b >> 13) & 1
	b += 0xc8000fff + odd
	return sign | uint16(b>>13)
}

// float16sToFloat32 converts little-endian half-precision bits to float32.
func float16sToFloat32(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = f16ToF32(uint16(src[2*i]) | uint16(src[2*i+1])<<8)
	}
}

func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	em := uint32(h & 0x7fff)
	switch {
	case em >= 0x7c00: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | (em&0x3ff)<<13)
	case em < 0x400: // zero or subnormal: em × 2^-24
		return math.Float32frombits(sign | math.Float32bits(float32(em)*(1.0/(1<<24))))
	}
	return math.Float32frombits(sign | (em<<13 + 112<<23))
}

// checkFinite reports the first NaN or Inf in t, which a broken export or
// an fp16 overflow produces, so it is caught where it happens.
func checkFinite(what string, t sampler.Tensor) error {
	for i, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s produced %v at element %d of %v", what, v, i, t.Shape)
		}
	}
	return nil
}
