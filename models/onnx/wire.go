package onnx

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxDepth bounds message nesting (graphs inside attributes inside nodes
// inside graphs...), so hostile input cannot exhaust the stack.
const maxDepth = 64

// maxMessageSize is protobuf's hard limit for one serialized message. Larger
// models must keep their weights in external data files.
const maxMessageSize = math.MaxInt32

// Layout marks for a recorded field occurrence.
const (
	markSingle  = -1 // one element (or a singular field) in its own tag
	markUnknown = -2 // a field this package does not model, kept raw
)

// occurrence records one field as it appeared on the wire, in order, so the
// encoder can write fields back in the same order and packing.
type occurrence struct {
	num protowire.Number
	// n is markSingle, markUnknown, or the element count of a packed chunk.
	n int32
}

// fieldKind says how the encoder treats a known field number.
type fieldKind uint8

const (
	kindNone     fieldKind = iota // not a field of this message
	kindScalar                    // singular number or string: written where it was read, even when zero
	kindMessage                   // singular sub-message: written when non-nil
	kindRepeated                  // repeated strings, bytes or messages
	kindPacked                    // repeated numbers, packed by default
	kindUnpacked                  // repeated numbers, one tag per element by default
)

// message is implemented by every decoded ONNX message type.
type message interface {
	// wire returns the recorded field order and the unknown raw fields.
	wire() (*[]occurrence, *[][]byte)
	// nums lists the known field numbers in ascending order.
	nums() []protowire.Number
	kind(num protowire.Number) fieldKind
	// count is the number of elements field num holds now. For singular
	// fields it is 1 when the value differs from the zero value, 0 when it
	// is zero (written only where the input had it, so explicit zeros
	// survive), and -1 when it must not be written at all (the other member
	// of a oneof is in use).
	count(num protowire.Number) int
	// appendElem writes element i of field num with its tag (unpacked).
	appendElem(e *encoder, num protowire.Number, i int)
	// appendPacked writes elements [from, to) of a numeric repeated field
	// as one packed chunk, tag included.
	appendPacked(e *encoder, num protowire.Number, from, to int)
}

// encoder accumulates output and the first error met.
type encoder struct {
	b     []byte
	err   error
	depth int
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

func (e *encoder) tag(num protowire.Number, typ protowire.Type) {
	e.b = protowire.AppendTag(e.b, num, typ)
}

func (e *encoder) varint(num protowire.Number, v uint64) {
	e.tag(num, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, v)
}

func (e *encoder) int64(num protowire.Number, v int64) { e.varint(num, uint64(v)) }

// int32 writes an int32 the way protobuf does: sign-extended to 64 bits.
func (e *encoder) int32(num protowire.Number, v int32) { e.varint(num, uint64(int64(v))) }

func (e *encoder) str(num protowire.Number, s string) {
	e.tag(num, protowire.BytesType)
	e.b = protowire.AppendString(e.b, s)
}

func (e *encoder) bytes(num protowire.Number, v []byte) {
	e.tag(num, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, v)
}

func (e *encoder) float32(num protowire.Number, v float32) {
	e.tag(num, protowire.Fixed32Type)
	e.b = protowire.AppendFixed32(e.b, math.Float32bits(v))
}

func (e *encoder) float64(num protowire.Number, v float64) {
	e.tag(num, protowire.Fixed64Type)
	e.b = protowire.AppendFixed64(e.b, math.Float64bits(v))
}

// packed writes a packed chunk: tag, length, then body written by fn.
func (e *encoder) packed(num protowire.Number, fn func()) {
	e.tag(num, protowire.BytesType)
	e.lengthPrefixed(fn)
}

// lengthPrefixed reserves one byte for the length, lets fn write the body,
// then writes the real length, shifting the body when the length needs more
// than one byte. Most sub-messages (attributes, dimensions) are shorter than
// 128 bytes, so they never move; large ones move once per nesting level.
func (e *encoder) lengthPrefixed(fn func()) {
	pos := len(e.b)
	e.b = append(e.b, 0)
	fn()
	n := len(e.b) - pos - 1
	sz := protowire.SizeVarint(uint64(n))
	if sz > 1 {
		for i := 1; i < sz; i++ {
			e.b = append(e.b, 0)
		}
		copy(e.b[pos+sz:], e.b[pos+1:pos+1+n])
	}
	protowire.AppendVarint(e.b[:pos], uint64(n))
}

// message writes m as a length-delimited field num.
func (e *encoder) message(num protowire.Number, m message, what string) {
	if e.err != nil {
		return
	}
	e.tag(num, protowire.BytesType)
	e.lengthPrefixed(func() { e.body(m, what) })
}

// body writes the fields of m: first in the recorded order, then fields that
// were not in the input, in ascending field-number order, then unknown fields
// that were added after decoding.
func (e *encoder) body(m message, what string) {
	if e.err != nil {
		return
	}
	if e.depth >= maxDepth {
		e.fail(fmt.Errorf("%s: messages nested deeper than %d", what, maxDepth))
		return
	}
	e.depth++
	defer func() { e.depth-- }()

	layout, unknown := m.wire()
	var last [32]int // index of the last occurrence of each known field
	var cur [32]int  // elements of each field written so far
	for i := range last {
		last[i] = -1
	}
	for i, o := range *layout {
		if o.n != markUnknown && o.num > 0 && o.num < 32 {
			last[o.num] = i
		}
	}
	uk := 0
	for i, o := range *layout {
		if o.n == markUnknown || o.num <= 0 || o.num >= 32 {
			if uk < len(*unknown) {
				e.b = append(e.b, (*unknown)[uk]...)
				uk++
			}
			continue
		}
		num := o.num
		k := m.kind(num)
		n := m.count(num)
		isLast := i == last[num]
		switch k {
		case kindScalar:
			if isLast && n >= 0 {
				m.appendElem(e, num, 0)
			}
		case kindMessage:
			if isLast && n > 0 {
				m.appendElem(e, num, 0)
			}
		case kindRepeated, kindPacked, kindUnpacked:
			c := cur[num]
			if o.n >= 0 { // packed chunk
				want := int(o.n)
				if isLast {
					want = n - c
				}
				want = max(min(want, n-c), 0)
				if want > 0 || o.n == 0 {
					m.appendPacked(e, num, c, c+want)
					c += want
				}
			} else {
				if c < n {
					m.appendElem(e, num, c)
					c++
				}
				if isLast {
					for ; c < n; c++ {
						m.appendElem(e, num, c)
					}
				}
			}
			cur[num] = c
		}
	}
	for _, num := range m.nums() {
		if num < 32 && last[num] >= 0 {
			continue
		}
		n := m.count(num)
		if n <= 0 {
			continue
		}
		switch m.kind(num) {
		case kindPacked:
			m.appendPacked(e, num, 0, n)
		default:
			for i := 0; i < n; i++ {
				m.appendElem(e, num, i)
			}
		}
	}
	for ; uk < len(*unknown); uk++ {
		e.b = append(e.b, (*unknown)[uk]...)
	}
}

// ErrTruncated is wrapped by decode errors caused by input that ends in the
// middle of a field.
var ErrTruncated = errors.New("unexpected end of data")

// field is one field being decoded.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // value of varint and fixed fields
	b   []byte // value of length-delimited fields
	off int    // absolute offset of the value in the input
}

// decoder walks the input, tracking absolute offsets for error messages.
type decoder struct {
	depth int
}

func wireErr(n int) error {
	err := protowire.ParseError(n)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	// protowire's messages start with "proto:" and a space that is
	// sometimes a no-break space; keep just the reason.
	msg := strings.TrimLeft(strings.TrimPrefix(err.Error(), "proto:"), " \u00a0")
	return errors.New(msg)
}

// decodeFields decodes b, the body of message msgName, calling fn for each
// field. fn returns the layout mark for the field (markSingle, a packed
// count, or markUnknown when it does not handle the field, which is then
// kept raw) or an error.
func (d *decoder) decodeFields(b []byte, off int, msgName string, layout *[]occurrence, unknown *[][]byte, fn func(f *field) (int32, error)) error {
	if d.depth >= maxDepth {
		return fmt.Errorf("%s at offset %d: messages nested deeper than %d", msgName, off, maxDepth)
	}
	d.depth++
	defer func() { d.depth-- }()
	pos := 0
	for pos < len(b) {
		start := pos
		num, typ, n := protowire.ConsumeTag(b[pos:])
		if n < 0 {
			return fmt.Errorf("%s: bad field tag at offset %d: %w", msgName, off+pos, wireErr(n))
		}
		pos += n
		f := field{num: num, typ: typ, off: off + pos}
		switch typ {
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(b[pos:])
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b[pos:])
			f.v = uint64(v)
		case protowire.Fixed64Type:
			f.v, n = protowire.ConsumeFixed64(b[pos:])
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b[pos:])
			if n > 0 {
				f.off += n - len(f.b)
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b[pos:])
		}
		if n < 0 {
			return fmt.Errorf("%s at offset %d: %w", fieldName(msgName, num), off+pos, wireErr(n))
		}
		pos += n
		mark := int32(markUnknown)
		if typ != protowire.StartGroupType && typ != protowire.EndGroupType {
			var err error
			mark, err = fn(&f)
			if err != nil {
				return err
			}
		}
		if mark == markUnknown {
			*unknown = append(*unknown, b[start:pos:pos])
		}
		*layout = append(*layout, occurrence{num: num, n: mark})
	}
	return nil
}

// fieldNames names the fields of each message for error messages.
var fieldNames = map[string]map[protowire.Number]string{
	"ModelProto": {1: "ir_version", 2: "producer_name", 3: "producer_version", 4: "domain", 5: "model_version",
		6: "doc_string", 7: "graph", 8: "opset_import", 14: "metadata_props", 20: "training_info", 25: "functions"},
	"GraphProto": {1: "node", 2: "name", 5: "initializer", 10: "doc_string", 11: "input", 12: "output",
		13: "value_info", 14: "quantization_annotation", 15: "sparse_initializer", 16: "metadata_props"},
	"NodeProto": {1: "input", 2: "output", 3: "name", 4: "op_type", 5: "attribute", 6: "doc_string", 7: "domain",
		8: "overload", 9: "metadata_props"},
	"AttributeProto": {1: "name", 2: "f", 3: "i", 4: "s", 5: "t", 6: "g", 7: "floats", 8: "ints", 9: "strings",
		10: "tensors", 11: "graphs", 13: "doc_string", 14: "tp", 20: "type", 21: "ref_attr_name"},
	"TensorProto": {1: "dims", 2: "data_type", 3: "segment", 4: "float_data", 5: "int32_data", 6: "string_data",
		7: "int64_data", 8: "name", 9: "raw_data", 10: "double_data", 11: "uint64_data", 12: "doc_string",
		13: "external_data", 14: "data_location", 16: "metadata_props"},
	"ValueInfoProto": {1: "name", 2: "type", 3: "doc_string", 4: "metadata_props"},
}

// fieldName formats "Message.field" (or "Message field N" when unnamed).
func fieldName(msgName string, num protowire.Number) string {
	if name, ok := fieldNames[msgName][num]; ok {
		return msgName + "." + name
	}
	return fmt.Sprintf("%s field %d", msgName, num)
}

// sub decodes a sub-message field.
func (d *decoder) sub(f *field, parent, name string, fn func(b []byte, off int) error) error {
	if err := fn(f.b, f.off); err != nil {
		return fmt.Errorf("%s.%s: %w", parent, name, err)
	}
	return nil
}

// packedVarints decodes a packed chunk of varints.
func packedVarints(f *field, msgName, name string, add func(uint64)) (int32, error) {
	b := f.b
	var count int32
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			return 0, fmt.Errorf("%s.%s: packed value at offset %d: %w", msgName, name, f.off+len(f.b)-len(b), wireErr(n))
		}
		add(v)
		b = b[n:]
		count++
	}
	return count, nil
}

// packedFixed decodes a packed chunk of fixed-size values.
func packedFixed(f *field, size int, msgName, name string, add func([]byte)) (int32, error) {
	if len(f.b)%size != 0 {
		return 0, fmt.Errorf("%s.%s at offset %d: packed length %d is not a multiple of %d", msgName, name, f.off, len(f.b), size)
	}
	for i := 0; i < len(f.b); i += size {
		add(f.b[i : i+size])
	}
	return int32(len(f.b) / size), nil
}
