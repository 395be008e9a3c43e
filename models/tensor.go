package models

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/kiln-dev/kiln/models/sampler"
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
	// repeats marks an input that usually has the same values from one
	// call to the next (the text conditioning of a generation): when the
	// graph needs it converted (float16), the conversion is kept in the
	// scratch and reused while the values are unchanged.
	repeats bool
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
	// dst, when it holds at least the output's element count, receives
	// the output instead of a new buffer: ONNX Runtime writes a float32
	// output straight into it, and a float16 output is converted into it.
	// It implies prealloc. The result's Data is then dst[:n].
	dst []float32
	// hint explains where the expected shape came from, for errors.
	hint string
}

// scratch holds what one call reuses from earlier calls, so that a
// denoising step allocates no full-size buffer: float16 conversion
// buffers, the converted values of inputs that repeat from call to call
// (feedValue.repeats), and the small slices run needs. Concurrent calls
// take separate scratches from a scratchPool.
type scratch struct {
	bufs [][]byte
	next int

	// repeated holds, per input name, the last values of a repeating
	// input and their conversion.
	repeated map[string]*convertedInput

	// keepViews makes viewF32 and viewF16 keep ONNX Runtime values from one call to the
	// next, in views: a separate object, so that a cleanup can destroy
	// them when the scratch is dropped.
	keepViews bool
	views     *keptViews

	feeds  map[string]feedValue
	vals   []ort.Value
	owned  []bool // whether run destroys vals[i] after the call
	halves [][]byte
	res    []sampler.Tensor
	f32    []float32 // small per-call values, such as the timestep
}

// viewKey names a graph input or output.
type viewKey struct {
	name   string
	output bool
}

// keptView is an ONNX Runtime tensor over memory kiln passes on every
// call: the sampler's reused latent, conditioning and prediction buffers,
// or the scratch's float16 buffers. It reads and writes that memory when
// a session runs, so it can be reused for as long as the memory, element
// type and shape are the same, whatever values the memory holds by then.
type keptView struct {
	v     ort.Value
	ptr   unsafe.Pointer
	bytes int
	dtype ort.TensorElementDataType
	shape []int64
}

type keptViews struct {
	m map[viewKey]*keptView
}

func (k *keptViews) destroy() {
	for key, kv := range k.m {
		kv.v.Destroy()
		delete(k.m, key)
	}
}

// convertedInput is a float32 input as it was last given (a copy) and its
// float16 conversion.
type convertedInput struct {
	src  []float32
	half []byte
}

// bytes returns the scratch's next conversion buffer, n bytes long.
// Buffers are handed out in call order, so the same call sequence gets the
// same buffers each time.
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

// half returns src as little-endian float16 bytes. It converts again only
// when src's values differ from the last ones given for name: comparing is
// several times cheaper than converting, and the comparison is by value,
// so a caller reusing one buffer for new values is always seen.
func (s *scratch) half(name string, src []float32) []byte {
	c := s.repeated[name]
	if c == nil {
		if s.repeated == nil {
			s.repeated = map[string]*convertedInput{}
		}
		c = &convertedInput{}
		s.repeated[name] = c
	}
	if len(c.src) == len(src) && len(c.half) == 2*len(src) && sameBits(c.src, src) {
		return c.half
	}
	c.src = append(c.src[:0], src...)
	if cap(c.half) < 2*len(src) {
		c.half = make([]byte, 2*len(src))
	}
	c.half = c.half[:2*len(src)]
	float32sToFloat16(c.half, src)
	return c.half
}

// sameBits reports whether a and b (of equal length) hold the same bit
// patterns.
func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	ab := unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), 4*len(a))
	bb := unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), 4*len(b))
	return bytes.Equal(ab, bb)
}

// viewF32 returns a float32 ONNX Runtime tensor of the given shape over
// data, and viewF16 a float16 one over data's bytes. In a scratch that
// keeps views (the UNet's), they reuse the value made for key by an
// earlier call when that one views the same memory the same way, which
// saves creating and releasing a value per input and output on every
// step; kept reports that, and the caller must then not destroy the
// value. Elsewhere kept is false and the value is the caller's.
//
// A kept value holds the Go slice it views, so that memory stays
// allocated while the value is kept: a later call whose slice starts at
// the same address is the same allocation, never a new one that happens
// to reuse a freed address, and the value reads whatever that memory
// holds when the session runs. The sampler's step buffers are thus held
// until a call brings other ones or the scratch is dropped. Scratches of
// calls made once per generation (text encoders, VAE) keep nothing, so
// they do not hold large images.
func (s *scratch) viewF32(key viewKey, shape []int64, data []float32) (v ort.Value, kept bool, err error) {
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	if v := s.keptView(key, ort.TensorElementDataTypeFloat, shape, ptr, 4*len(data)); v != nil {
		return v, true, nil
	}
	if v, err = ort.NewTensor(ort.Shape(shape), data); err != nil {
		return nil, false, err
	}
	return v, s.keep(key, ort.TensorElementDataTypeFloat, shape, ptr, 4*len(data), v), nil
}

// viewF16: see viewF32.
func (s *scratch) viewF16(key viewKey, shape []int64, data []byte) (v ort.Value, kept bool, err error) {
	var ptr unsafe.Pointer
	if len(data) > 0 {
		ptr = unsafe.Pointer(&data[0])
	}
	if v := s.keptView(key, ort.TensorElementDataTypeFloat16, shape, ptr, len(data)); v != nil {
		return v, true, nil
	}
	if v, err = ort.NewCustomDataTensor(ort.Shape(shape), data, ort.TensorElementDataTypeFloat16); err != nil {
		return nil, false, err
	}
	return v, s.keep(key, ort.TensorElementDataTypeFloat16, shape, ptr, len(data), v), nil
}

// keptView returns the value kept for key if it views size bytes at ptr
// as dtype with shape, else nil.
func (s *scratch) keptView(key viewKey, dtype ort.TensorElementDataType, shape []int64, ptr unsafe.Pointer, size int) ort.Value {
	if !s.keepViews || s.views == nil {
		return nil
	}
	kv := s.views.m[key]
	if kv != nil && kv.ptr == ptr && kv.bytes == size && kv.dtype == dtype && slices.Equal(kv.shape, shape) {
		return kv.v
	}
	return nil
}

// keep remembers v as key's view, destroying the one it replaces, and
// reports whether it did (only scratches that keep views do).
func (s *scratch) keep(key viewKey, dtype ort.TensorElementDataType, shape []int64, ptr unsafe.Pointer, size int, v ort.Value) bool {
	if !s.keepViews {
		return false
	}
	if s.views == nil {
		s.views = &keptViews{m: map[viewKey]*keptView{}}
		// Kept values own a little C memory each: release it when the
		// scratch is dropped with its Diffuser.
		runtime.AddCleanup(s, func(k *keptViews) { k.destroy() }, s.views)
	}
	kv := s.views.m[key]
	if kv != nil {
		kv.v.Destroy()
	} else {
		kv = &keptView{}
		s.views.m[key] = kv
	}
	*kv = keptView{v: v, ptr: ptr, bytes: size, dtype: dtype, shape: append(kv.shape[:0], shape...)}
	return true
}

// feedMap returns the scratch's feed map, emptied.
func (s *scratch) feedMap() map[string]feedValue {
	if s.feeds == nil {
		s.feeds = make(map[string]feedValue, 8)
	}
	clear(s.feeds)
	return s.feeds
}

// floats returns n float32s from the scratch for small per-call values;
// they stay valid until the scratch is reset.
func (s *scratch) floats(n int) []float32 {
	if len(s.f32)+n > cap(s.f32) {
		s.f32 = make([]float32, 0, max(2*cap(s.f32), n, 16))
	}
	s.f32 = s.f32[:len(s.f32)+n]
	return s.f32[len(s.f32)-n:]
}

func (s *scratch) reset() {
	s.next = 0
	s.f32 = s.f32[:0]
}

// scratchPool hands out scratches. Unlike a sync.Pool it keeps them
// across garbage collections, so a long generation does not lose its
// conversion buffers (and reallocate them) when the collector runs. It
// holds at most as many scratches as calls have ever run at once.
type scratchPool struct {
	// keepViews is set for calls made on every step (see scratch.viewF32).
	keepViews bool

	mu   sync.Mutex
	free []*scratch
}

func (sp *scratchPool) get() *scratch {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if n := len(sp.free); n > 0 {
		s := sp.free[n-1]
		sp.free = sp.free[:n-1]
		return s
	}
	return &scratch{keepViews: sp.keepViews}
}

func (sp *scratchPool) put(s *scratch) {
	s.reset()
	clear(s.feeds)
	sp.mu.Lock()
	sp.free = append(sp.free, s)
	sp.mu.Unlock()
}

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
// order. what names the graph in errors ("unet/model.onnx"). The returned
// slice belongs to sc and is reused by its next call: take its elements
// before giving sc back.
func run(ctx context.Context, s *Session, what string, sc *scratch, feeds map[string]feedValue, fetches []fetch) ([]sampler.Tensor, error) {
	ins := s.Inputs()
	outs := s.Outputs()
	if len(fetches) != len(outs) {
		return nil, fmt.Errorf("%s: kiln asked for %d outputs, the session computes %d", what, len(fetches), len(outs))
	}
	nIn := len(ins)
	vals, owned := sc.vals[:0], sc.owned[:0]
	defer func() {
		for i, v := range vals {
			if v != nil && owned[i] {
				v.Destroy()
			}
			vals[i] = nil
		}
		sc.vals, sc.owned = vals[:0], owned[:0]
	}()
	for _, ti := range ins {
		fv, ok := feeds[ti.Name]
		if !ok {
			return nil, fmt.Errorf("%s has input %q (%s%s) that kiln does not know how to fill; kiln fills %s", what, ti.Name, dtypeName(ti.Type), shapeString(ti.Shape), strings.Join(sortedKeys(feeds), ", "))
		}
		v, kept, err := inputValue(what, ti, fv, sc)
		if err != nil {
			return nil, err
		}
		vals, owned = append(vals, v), append(owned, !kept)
	}
	halves := sc.halves[:0]
	for i, to := range outs {
		f := fetches[i]
		halves = append(halves, nil)
		key := viewKey{name: to.Name, output: true}
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
		if to.Type == ort.TensorElementDataTypeFloat && (!known || !f.prealloc && f.dst == nil) {
			// ONNX Runtime allocates it.
			vals, owned = append(vals, nil), append(owned, true)
			continue
		}
		n := numel(shape)
		switch to.Type {
		case ort.TensorElementDataTypeFloat:
			var v ort.Value
			var err error
			if len(f.dst) >= n && n > 0 {
				// The caller's buffer, usually the same every step.
				var kept bool
				v, kept, err = sc.viewF32(key, shape, f.dst[:n:n])
				owned = append(owned, !kept)
			} else {
				v, err = ort.NewTensor(ort.Shape(shape), make([]float32, n))
				owned = append(owned, true)
			}
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
			v, kept, err := sc.viewF16(key, shape, b)
			if err != nil {
				return nil, fmt.Errorf("%s: output %q: %w", what, to.Name, err)
			}
			vals, owned = append(vals, v), append(owned, !kept)
		default:
			return nil, fmt.Errorf("%s: output %q is %s; kiln reads float32 and float16 outputs", what, to.Name, dtypeName(to.Type))
		}
	}
	sc.halves = halves
	if err := s.Run(ctx, vals[:nIn], vals[nIn:]); err != nil {
		if m := shapeMismatch.FindStringSubmatch(err.Error()); m != nil {
			return nil, fmt.Errorf("%s produced an output of shape [%s] where kiln expected [%s]%s", what, m[2], m[1], hints(fetches))
		}
		return nil, err
	}
	res := sc.res[:0]
	for i := range outs {
		v := vals[nIn+i]
		f := fetches[i]
		var t sampler.Tensor
		switch ov := v.(type) {
		case *ort.Tensor[float32]:
			t = sampler.Tensor{Shape: []int64(ov.GetShape()), Data: ov.GetData()}
		case *ort.CustomDataTensor:
			n := len(halves[i]) / 2
			dst := f.dst
			if len(dst) >= n {
				dst = dst[:n:n]
			} else {
				dst = make([]float32, n)
			}
			float16sToFloat32(dst, halves[i])
			t = sampler.Tensor{Shape: []int64(ov.GetShape()), Data: dst}
		default:
			return nil, fmt.Errorf("%s: output %q came back as %T", what, outs[i].Name, v)
		}
		if !shapeMatches(t.Shape, f.shape) {
			hint := ""
			if f.hint != "" {
				hint = ": " + f.hint
			}
			return nil, fmt.Errorf("%s output %q has shape %v, kiln expected %s%s", what, outs[i].Name, t.Shape, shapeString(f.shape), hint)
		}
		res = append(res, t)
	}
	sc.res = res
	return res, nil
}

// shapeMismatch matches ONNX Runtime's error for a preallocated output of
// the wrong shape: the current shape is the preallocated tensor's (what
// kiln expected), the requested one what the graph computed.
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
// float64; integer data to int64 or int32. kept reports that the value is
// one of sc's kept views, which the caller must not destroy.
func inputValue(what string, ti TensorInfo, fv feedValue, sc *scratch) (v ort.Value, kept bool, err error) {
	n := numel(fv.shape)
	if fv.f32 != nil && len(fv.f32) != n || fv.i64 != nil && len(fv.i64) != n {
		return nil, false, fmt.Errorf("%s input %q: %d values for shape %v", what, ti.Name, len(fv.f32)+len(fv.i64), fv.shape)
	}
	if ti.Rank() == 0 {
		if n != 1 || !fv.scalar && len(fv.shape) != 0 {
			return nil, false, fmt.Errorf("%s input %q is a scalar, kiln has shape %v", what, ti.Name, fv.shape)
		}
		v, err := scalarValue(what, ti, fv)
		return v, false, err
	}
	if ti.Rank() != len(fv.shape) {
		return nil, false, fmt.Errorf("%s input %q wants rank %d %s, kiln has shape %v", what, ti.Name, ti.Rank(), shapeString(ti.Shape), fv.shape)
	}
	for i, d := range ti.Shape {
		if d > 0 && d != fv.shape[i] {
			return nil, false, fmt.Errorf("%s input %q has fixed shape %s, kiln has %v (the export fixed this size; re-export with dynamic axes or use the size it was exported for)", what, ti.Name, shapeString(ti.Shape), fv.shape)
		}
	}
	key := viewKey{name: ti.Name}
	shape := ort.Shape(fv.shape)
	if fv.f32 != nil {
		switch ti.Type {
		case ort.TensorElementDataTypeFloat:
			return sc.viewF32(key, fv.shape, fv.f32)
		case ort.TensorElementDataTypeFloat16:
			var b []byte
			if fv.repeats {
				b = sc.half(ti.Name, fv.f32)
			} else {
				b = sc.bytes(2 * n)
				float32sToFloat16(b, fv.f32)
			}
			return sc.viewF16(key, fv.shape, b)
		case ort.TensorElementDataTypeDouble:
			d := make([]float64, n)
			for i, v := range fv.f32 {
				d[i] = float64(v)
			}
			v, err := ort.NewTensor(shape, d)
			return v, false, err
		case ort.TensorElementDataTypeInt64:
			d := make([]int64, n)
			for i, v := range fv.f32 {
				d[i] = int64(v) // truncates, as numpy's astype does
			}
			v, err := ort.NewTensor(shape, d)
			return v, false, err
		case ort.TensorElementDataTypeInt32:
			d := make([]int32, n)
			for i, v := range fv.f32 {
				d[i] = int32(v)
			}
			v, err := ort.NewTensor(shape, d)
			return v, false, err
		}
	} else {
		switch ti.Type {
		case ort.TensorElementDataTypeInt64:
			v, err := ort.NewTensor(shape, fv.i64)
			return v, false, err
		case ort.TensorElementDataTypeInt32:
			d := make([]int32, n)
			for i, v := range fv.i64 {
				d[i] = int32(v)
			}
			v, err := ort.NewTensor(shape, d)
			return v, false, err
		}
	}
	return nil, false, fmt.Errorf("%s input %q is %s, which kiln cannot fill", what, ti.Name, dtypeName(ti.Type))
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
// an fp16 overflow produces, so it is caught where it happens. It tests
// the exponent bits (all ones for NaN and Inf), which is several times
// faster than converting each value for math.IsNaN and math.IsInf.
func checkFinite(what string, t sampler.Tensor) error {
	// v·0 is 0 for every finite v and NaN for ±Inf and NaN, so a sum of
	// them is 0 exactly when all are finite; four sums keep the loop
	// free of branches and of a single dependency chain. Only a bad
	// tensor is searched for the first bad element.
	var s0, s1, s2, s3 float32
	d := t.Data
	i := 0
	for ; i+4 <= len(d); i += 4 {
		q := d[i : i+4 : i+4]
		s0 += q[0] * 0
		s1 += q[1] * 0
		s2 += q[2] * 0
		s3 += q[3] * 0
	}
	for ; i < len(d); i++ {
		s0 += d[i] * 0
	}
	if s0+s1+s2+s3 == 0 {
		return nil
	}
	for i, v := range t.Data {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return fmt.Errorf("%s produced %v at element %d of %v", what, v, i, t.Shape)
		}
	}
	return nil
}
