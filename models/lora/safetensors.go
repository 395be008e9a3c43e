package lora

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/kiln-dev/kiln/models/onnx"
)

// MaxHeaderSize bounds a .safetensors JSON header. Real LoRA headers are
// tens to hundreds of kilobytes (one entry per tensor plus training
// metadata); anything larger is a corrupt or hostile file, and reading it
// would cost memory before anything else could be checked.
const MaxHeaderSize = 64 << 20

// Tensor is one tensor of a .safetensors file: its element type as the
// format spells it (F32, F16, BF16, F64), its shape, and its raw
// little-endian bytes, which share memory with the file's data.
type Tensor struct {
	Name  string
	DType string
	Shape []int64
	Data  []byte
}

// Safetensors is a parsed .safetensors file: its tensors by name and the
// string map the format keeps under "__metadata__".
type Safetensors struct {
	Tensors  map[string]*Tensor
	Metadata map[string]string
}

// Names returns the tensor names in sorted order, so messages and merges
// do not depend on map order.
func (s *Safetensors) Names() []string {
	out := make([]string, 0, len(s.Tensors))
	for n := range s.Tensors {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// dtypeSize is the element size of the float types a LoRA may hold.
// Integer types are valid safetensors but never LoRA weights, so they are
// refused when converted, not when parsed.
var dtypeSize = map[string]int{
	"F64": 8, "F32": 4, "F16": 2, "BF16": 2,
	"I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
	"U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}

type headerEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// ParseSafetensors parses a whole .safetensors file held in memory. The
// format is an 8-byte little-endian header length, a JSON object mapping
// tensor names to {dtype, shape, data_offsets}, then the tensors' bytes;
// offsets are relative to the end of the header. Every length, offset,
// shape and dtype is checked, so a truncated or hostile file returns an
// error and never panics or reads out of bounds.
func ParseSafetensors(data []byte) (*Safetensors, error) {
	if len(data) < 8 {
		return nil, fmt.Errorf("safetensors: %d bytes is too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("safetensors: header of %d bytes exceeds the %d-byte limit; the file is corrupt or not a safetensors file", n, MaxHeaderSize)
	}
	if n > uint64(len(data)-8) {
		return nil, fmt.Errorf("safetensors: header of %d bytes runs past the end of the %d-byte file; the file is truncated", n, len(data))
	}
	header := data[8 : 8+n]
	body := data[8+n:]
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("safetensors: header is not a JSON object: %w", err)
	}
	s := &Safetensors{Tensors: make(map[string]*Tensor, len(raw))}
	type span struct {
		begin, end int64
		name       string
	}
	var spans []span
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &s.Metadata); err != nil {
				return nil, fmt.Errorf("safetensors: __metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		var e headerEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, fmt.Errorf("safetensors: tensor %q: %w", name, err)
		}
		size, ok := dtypeSize[e.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q has unknown dtype %q", name, e.DType)
		}
		if len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets must be [begin, end], got %v", name, e.DataOffsets)
		}
		begin, end := e.DataOffsets[0], e.DataOffsets[1]
		if begin < 0 || end < begin || end > int64(len(body)) {
			return nil, fmt.Errorf("safetensors: tensor %q: data_offsets [%d, %d] are outside the %d data bytes; the file is truncated or corrupt", name, begin, end, len(body))
		}
		count := int64(1)
		for _, d := range e.Shape {
			if d < 0 {
				return nil, fmt.Errorf("safetensors: tensor %q has negative dimension in shape %v", name, e.Shape)
			}
			if d != 0 && count > math.MaxInt64/int64(size)/d {
				return nil, fmt.Errorf("safetensors: tensor %q: shape %v is too large", name, e.Shape)
			}
			count *= d
		}
		if count*int64(size) != end-begin {
			return nil, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, e.Shape, e.DType, count*int64(size), end-begin)
		}
		s.Tensors[name] = &Tensor{Name: name, DType: e.DType, Shape: e.Shape, Data: body[begin:end:end]}
		spans = append(spans, span{begin, end, name})
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if spans[i].begin < spans[i-1].end {
			return nil, fmt.Errorf("safetensors: tensors %q and %q overlap", spans[i-1].name, spans[i].name)
		}
	}
	return s, nil
}

// Float32s returns the tensor's elements as float32, converting from F16,
// BF16 and F64. Other dtypes are an error: LoRA weights are floats.
func (t *Tensor) Float32s() ([]float32, error) {
	var dt onnx.DataType
	switch t.DType {
	case "F32":
		dt = onnx.Float
	case "F16":
		dt = onnx.Float16
	case "BF16":
		dt = onnx.BFloat16
	case "F64":
		dt = onnx.Double
	default:
		return nil, fmt.Errorf("tensor %q has dtype %s; LoRA weights must be F32, F16, BF16 or F64", t.Name, t.DType)
	}
	v, err := onnx.Float32s(dt, t.Data)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	return v, nil
}

// numel is the element count of a shape already checked by the parser.
func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// EncodeSafetensors writes tensors (and optional metadata) in the
// .safetensors layout, in name order, for tools and tests that make LoRA
// files. Each tensor's Data must hold its shape's bytes in its DType.
func EncodeSafetensors(tensors []*Tensor, metadata map[string]string) ([]byte, error) {
	sorted := append([]*Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	header := map[string]any{}
	if metadata != nil {
		header["__metadata__"] = metadata
	}
	var size int64
	for _, t := range sorted {
		es, ok := dtypeSize[t.DType]
		if !ok {
			return nil, fmt.Errorf("safetensors: tensor %q has unknown dtype %q", t.Name, t.DType)
		}
		if _, dup := header[t.Name]; dup || t.Name == "__metadata__" {
			return nil, fmt.Errorf("safetensors: tensor name %q is used twice or reserved", t.Name)
		}
		if numel(t.Shape)*int64(es) != int64(len(t.Data)) {
			return nil, fmt.Errorf("safetensors: tensor %q: shape %v of %s needs %d bytes, has %d", t.Name, t.Shape, t.DType, numel(t.Shape)*int64(es), len(t.Data))
		}
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		header[t.Name] = headerEntry{DType: t.DType, Shape: shape, DataOffsets: []int64{size, size + int64(len(t.Data))}}
		size += int64(len(t.Data))
	}
	h, err := json.Marshal(header)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	out := make([]byte, 8, 8+int64(len(h))+size)
	binary.LittleEndian.PutUint64(out, uint64(len(h)))
	out = append(out, h...)
	for _, t := range sorted {
		out = append(out, t.Data...)
	}
	return out, nil
}

// NewF32Tensor makes an F32 tensor from float32 values.
func NewF32Tensor(name string, shape []int64, values []float32) *Tensor {
	data := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: "F32", Shape: shape, Data: data}
}
