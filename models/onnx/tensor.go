package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
)

// DataType is TensorProto.DataType: a tensor's element type.
type DataType int32

// Element types, as numbered by onnx.proto.
const (
	Undefined      DataType = 0
	Float          DataType = 1
	Uint8          DataType = 2
	Int8           DataType = 3
	Uint16         DataType = 4
	Int16          DataType = 5
	Int32          DataType = 6
	Int64          DataType = 7
	String         DataType = 8
	Bool           DataType = 9
	Float16        DataType = 10
	Double         DataType = 11
	Uint32         DataType = 12
	Uint64         DataType = 13
	Complex64      DataType = 14
	Complex128     DataType = 15
	BFloat16       DataType = 16
	Float8E4M3FN   DataType = 17
	Float8E4M3FNUZ DataType = 18
	Float8E5M2     DataType = 19
	Float8E5M2FNUZ DataType = 20
	Uint4          DataType = 21
	Int4           DataType = 22
	Float4E2M1     DataType = 23
)

var dataTypeNames = map[DataType]string{
	Undefined: "undefined", Float: "float32", Uint8: "uint8", Int8: "int8",
	Uint16: "uint16", Int16: "int16", Int32: "int32", Int64: "int64",
	String: "string", Bool: "bool", Float16: "float16", Double: "float64",
	Uint32: "uint32", Uint64: "uint64", Complex64: "complex64",
	Complex128: "complex128", BFloat16: "bfloat16",
	Float8E4M3FN: "float8e4m3fn", Float8E4M3FNUZ: "float8e4m3fnuz",
	Float8E5M2: "float8e5m2", Float8E5M2FNUZ: "float8e5m2fnuz",
	Uint4: "uint4", Int4: "int4", Float4E2M1: "float4e2m1",
}

// String returns the element type's name as numpy spells it (float32,
// float16, int64, ...), which is what users see in ONNX tools.
func (t DataType) String() string {
	if s, ok := dataTypeNames[t]; ok {
		return s
	}
	return "DataType(" + strconv.Itoa(int(t)) + ")"
}

// Size is the number of bytes one element takes in raw data, or 0 for
// strings, sub-byte types and unknown types.
func (t DataType) Size() int {
	switch t {
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float, Int32, Uint32:
		return 4
	case Int64, Double, Uint64, Complex64:
		return 8
	case Complex128:
		return 16
	}
	return 0
}

// NumElements is the product of the tensor's dims (1 for a scalar). It
// fails on negative dims or overflow, so hostile files cannot trigger huge
// allocations.
func (t *Tensor) NumElements() (int64, error) {
	return numElements(t.Dims)
}

func numElements(dims []int64) (int64, error) {
	n := uint64(1)
	for i, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("dimension %d is negative (%d)", i, d)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("dims %v overflow", dims)
		}
		n = lo
	}
	return int64(n), nil
}

// ErrExternalData is returned by Tensor.Bytes for a tensor whose data lives
// in an external file; use Tensor.ReadData with the model's folder.
var ErrExternalData = errors.New("tensor data is stored in an external file")

// Bytes returns the tensor's elements as little-endian raw bytes (the
// layout of raw_data), converting from the typed fields when raw_data is
// not used. The result may share memory with the tensor.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.DataLocation == LocationExternal {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, ErrExternalData)
	}
	n, err := t.NumElements()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	size := t.DataType.Size()
	if size == 0 {
		return nil, fmt.Errorf("tensor %q: element type %s has no fixed-size raw layout", t.Name, t.DataType)
	}
	if n > math.MaxInt/int64(size) {
		return nil, fmt.Errorf("tensor %q: %d elements is too large", t.Name, n)
	}
	want := int(n) * size
	if len(t.RawData) > 0 || want == 0 {
		if len(t.RawData) != want {
			return nil, fmt.Errorf("tensor %q: raw_data has %d bytes, dims %v of %s need %d", t.Name, len(t.RawData), t.Dims, t.DataType, want)
		}
		return t.RawData, nil
	}
	out := make([]byte, 0, want)
	var have int
	switch t.DataType {
	case Float, Complex64:
		have = len(t.FloatData)
		for _, v := range t.FloatData {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
		if t.DataType == Complex64 {
			have /= 2
		}
	case Int32, Int16, Int8, Uint16, Uint8, Bool, Float16, BFloat16,
		Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ:
		have = len(t.Int32Data)
		for _, v := range t.Int32Data {
			switch size {
			case 1:
				out = append(out, byte(v))
			case 2:
				out = binary.LittleEndian.AppendUint16(out, uint16(v))
			default:
				out = binary.LittleEndian.AppendUint32(out, uint32(v))
			}
		}
	case Int64:
		have = len(t.Int64Data)
		for _, v := range t.Int64Data {
			out = binary.LittleEndian.AppendUint64(out, uint64(v))
		}
	case Double, Complex128:
		have = len(t.DoubleData)
		for _, v := range t.DoubleData {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
		if t.DataType == Complex128 {
			have /= 2
		}
	case Uint32, Uint64:
		have = len(t.Uint64Data)
		for _, v := range t.Uint64Data {
			if size == 4 {
				out = binary.LittleEndian.AppendUint32(out, uint32(v))
			} else {
				out = binary.LittleEndian.AppendUint64(out, v)
			}
		}
	}
	if int64(have) != n {
		return nil, fmt.Errorf("tensor %q: holds %d values, dims %v need %d", t.Name, have, t.Dims, n)
	}
	return out, nil
}

// Float32s decodes raw little-endian bytes of element type dt (float32,
// float16, bfloat16 or float64) into float32 values.
func Float32s(dt DataType, raw []byte) ([]float32, error) {
	size := dt.Size()
	switch dt {
	case Float, Float16, BFloat16, Double:
	default:
		return nil, fmt.Errorf("element type %s is not a floating-point type", dt)
	}
	if len(raw)%size != 0 {
		return nil, fmt.Errorf("%d bytes is not a whole number of %s elements", len(raw), dt)
	}
	out := make([]float32, len(raw)/size)
	for i := range out {
		b := raw[i*size:]
		switch dt {
		case Float:
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b))
		case Float16:
			out[i] = Float16ToFloat32(binary.LittleEndian.Uint16(b))
		case BFloat16:
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16)
		case Double:
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b)))
		}
	}
	return out, nil
}

// Float32s returns an inline floating-point tensor's elements as float32.
// For external data use ReadData and the package-level Float32s.
func (t *Tensor) Float32s() ([]float32, error) {
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	v, err := Float32s(t.DataType, raw)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return v, nil
}

// Int64s returns an inline integer tensor's elements as int64 (int64,
// int32, int16, int8, uint8 and uint16 element types).
func (t *Tensor) Int64s() ([]int64, error) {
	raw, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	size := t.DataType.Size()
	out := make([]int64, 0, len(raw)/max(size, 1))
	for i := 0; i+size <= len(raw) && size > 0; i += size {
		b := raw[i:]
		switch t.DataType {
		case Int64:
			out = append(out, int64(binary.LittleEndian.Uint64(b)))
		case Int32:
			out = append(out, int64(int32(binary.LittleEndian.Uint32(b))))
		case Int16:
			out = append(out, int64(int16(binary.LittleEndian.Uint16(b))))
		case Uint16:
			out = append(out, int64(binary.LittleEndian.Uint16(b)))
		case Int8:
			out = append(out, int64(int8(b[0])))
		case Uint8:
			out = append(out, int64(b[0]))
		default:
			return nil, fmt.Errorf("tensor %q: element type %s is not an integer type", t.Name, t.DataType)
		}
	}
	return out, nil
}

// NewFloat32Tensor returns an initializer of float32 elements stored in
// raw_data, as exporters write them.
func NewFloat32Tensor(name string, dims []int64, data []float32) *Tensor {
	raw := make([]byte, 0, 4*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Float, RawData: raw}
}

// NewFloat16Tensor converts data to IEEE half precision (round to nearest
// even) and returns a float16 initializer stored in raw_data.
func NewFloat16Tensor(name string, dims []int64, data []float32) *Tensor {
	raw := make([]byte, 0, 2*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint16(raw, Float32ToFloat16(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Float16, RawData: raw}
}

// NewInt64Tensor returns an int64 initializer stored in raw_data.
func NewInt64Tensor(name string, dims []int64, data []int64) *Tensor {
	raw := make([]byte, 0, 8*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Int64, RawData: raw}
}

// NewInt32Tensor returns an int32 initializer stored in raw_data.
func NewInt32Tensor(name string, dims []int64, data []int32) *Tensor {
	raw := make([]byte, 0, 4*len(data))
	for _, v := range data {
		raw = binary.LittleEndian.AppendUint32(raw, uint32(v))
	}
	return &Tensor{Name: name, Dims: append([]int64(nil), dims...), DataType: Int32, RawData: raw}
}

// Float32ToFloat16 converts f to IEEE 754 binary16 bits, rounding to
// nearest even; out-of-range values become ±Inf, NaN stays NaN.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - e)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is correct
	}
	return sign | uint16(h)
}

// Float16ToFloat32 converts IEEE 754 binary16 bits to float32 exactly.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		v := float32(mant) / (1 << 24)
		if sign != 0 {
			return -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// Float32sToFloat16 converts a slice to half-precision bits.
func Float32sToFloat16(src []float32) []uint16 {
	out := make([]uint16, len(src))
	for i, v := range src {
		out[i] = Float32ToFloat16(v)
	}
	return out
}

// Float16sToFloat32 converts half-precision bits to float32 values.
func Float16sToFloat32(src []uint16) []float32 {
	out := make([]float32, len(src))
	for i, v := range src {
		out[i] = Float16ToFloat32(v)
	}
	return out
}
