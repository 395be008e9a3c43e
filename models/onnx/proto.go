package onnx

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Model is an ONNX ModelProto: a graph plus the operator sets it uses and
// producer metadata.
type Model struct {
	IRVersion       int64                // field 1, ir_version
	OpsetImports    []*OperatorSetID     // field 8, opset_import
	ProducerName    string               // field 2
	ProducerVersion string               // field 3
	Domain          string               // field 4
	ModelVersion    int64                // field 5
	DocString       string               // field 6
	Graph           *Graph               // field 7
	MetadataProps   []*StringStringEntry // field 14
	// Unknown holds fields this package does not model (training_info,
	// functions, configuration, and anything newer), each a complete
	// wire-format field (tag and value), kept so saving loses nothing.
	Unknown [][]byte

	layout   []occurrence
	sizeHint int
}

// Graph is an ONNX GraphProto: nodes in topological order, the values that
// feed the graph (inputs, initializers) and the values it produces.
type Graph struct {
	Nodes        []*Node              // field 1, node
	Name         string               // field 2
	Initializers []*Tensor            // field 5, initializer
	DocString    string               // field 10
	Inputs       []*ValueInfo         // field 11, input
	Outputs      []*ValueInfo         // field 12, output
	ValueInfo    []*ValueInfo         // field 13, value_info
	Metadata     []*StringStringEntry // field 16, metadata_props
	// Unknown keeps unmodelled fields (sparse_initializer,
	// quantization_annotation, ...) as raw wire-format fields.
	Unknown [][]byte

	layout []occurrence
}

// Node is an ONNX NodeProto: one operator application. An empty string in
// Inputs or Outputs marks an omitted optional argument.
type Node struct {
	Inputs     []string             // field 1
	Outputs    []string             // field 2
	Name       string               // field 3
	OpType     string               // field 4
	Attributes []*Attribute         // field 5
	DocString  string               // field 6
	Domain     string               // field 7
	Overload   string               // field 8
	Metadata   []*StringStringEntry // field 9, metadata_props
	// Unknown keeps unmodelled fields as raw wire-format fields.
	Unknown [][]byte

	layout []occurrence
}

// AttrType is AttributeProto.AttributeType: which value field of an
// Attribute is in use.
type AttrType int32

// Attribute types, as numbered by onnx.proto.
const (
	AttrUndefined    AttrType = 0
	AttrFloat        AttrType = 1
	AttrInt          AttrType = 2
	AttrString       AttrType = 3
	AttrTensor       AttrType = 4
	AttrGraph        AttrType = 5
	AttrFloats       AttrType = 6
	AttrInts         AttrType = 7
	AttrStrings      AttrType = 8
	AttrTensors      AttrType = 9
	AttrGraphs       AttrType = 10
	AttrSparseTensor AttrType = 11
	AttrTypeProto    AttrType = 13
)

// Attribute is an ONNX AttributeProto: a named constant parameter of a node.
// Type says which value field is meaningful.
type Attribute struct {
	Name        string    // field 1
	RefAttrName string    // field 21
	DocString   string    // field 13
	Type        AttrType  // field 20
	F           float32   // field 2
	I           int64     // field 3
	S           []byte    // field 4
	T           *Tensor   // field 5
	G           *Graph    // field 6
	TP          *Type     // field 14
	Floats      []float32 // field 7
	Ints        []int64   // field 8
	Strings     [][]byte  // field 9
	Tensors     []*Tensor // field 10
	Graphs      []*Graph  // field 11
	Unknown     [][]byte  // unmodelled fields (sparse tensors, type_protos), raw
	layout      []occurrence
}

// ValueInfo is an ONNX ValueInfoProto: a value's name and type.
type ValueInfo struct {
	Name      string               // field 1
	Type      *Type                // field 2
	DocString string               // field 3
	Metadata  []*StringStringEntry // field 4
	Unknown   [][]byte             // unmodelled fields, raw
	layout    []occurrence
}

// Type is an ONNX TypeProto. Only tensor types are modelled; sequence, map,
// optional and sparse types are kept in Unknown.
type Type struct {
	Tensor     *TensorType // field 1, tensor_type
	Denotation string      // field 6
	Unknown    [][]byte    // unmodelled fields, raw
	layout     []occurrence
}

// TensorType is TypeProto.Tensor: element type and (optional) shape. A nil
// Shape means the rank is unknown; an empty one means a scalar.
type TensorType struct {
	ElemType DataType     // field 1
	Shape    *TensorShape // field 2
	Unknown  [][]byte     // unmodelled fields, raw
	layout   []occurrence
}

// TensorShape is TensorShapeProto.
type TensorShape struct {
	Dims    []*Dimension // field 1
	Unknown [][]byte     // unmodelled fields, raw
	layout  []occurrence
}

// Dimension is TensorShapeProto.Dimension: a fixed size (Value), a symbolic
// name (Param), or neither (unknown). Param wins when both are set. A zero
// Value on a dimension that was not read from a file is written as unknown.
type Dimension struct {
	Value      int64  // field 1, dim_value
	Param      string // field 2, dim_param
	Denotation string // field 3
	Unknown    [][]byte
	layout     []occurrence
}

// DataLocation says where a tensor's bytes are stored.
type DataLocation int32

// Data locations, as numbered by onnx.proto.
const (
	LocationDefault  DataLocation = 0
	LocationExternal DataLocation = 1
)

// Tensor is an ONNX TensorProto: a constant tensor such as a weight. Its
// elements live in RawData (little-endian), in one of the typed fields, or,
// when DataLocation is LocationExternal, in a file named by ExternalData.
type Tensor struct {
	Dims         []int64              // field 1
	DataType     DataType             // field 2
	FloatData    []float32            // field 4
	Int32Data    []int32              // field 5
	StringData   [][]byte             // field 6
	Int64Data    []int64              // field 7
	Name         string               // field 8
	RawData      []byte               // field 9
	DoubleData   []float64            // field 10
	Uint64Data   []uint64             // field 11
	DocString    string               // field 12
	ExternalData []*StringStringEntry // field 13
	DataLocation DataLocation         // field 14
	Metadata     []*StringStringEntry // field 16
	Unknown      [][]byte             // unmodelled fields (segment), raw
	layout       []occurrence
}

// StringStringEntry is StringStringEntryProto, a key/value pair.
type StringStringEntry struct {
	Key     string // field 1
	Value   string // field 2
	Unknown [][]byte
	layout  []occurrence
}

// OperatorSetID is OperatorSetIdProto: an operator set domain ("" is the
// default ai.onnx domain) and its version.
type OperatorSetID struct {
	Domain  string // field 1
	Version int64  // field 2
	Unknown [][]byte
	layout  []occurrence
}

// ---- decoding ----

// Decode parses a serialized ModelProto. The returned model's RawData and
// byte fields share memory with data; do not modify data afterwards.
// Malformed input returns an error naming the message and byte offset.
func Decode(data []byte) (*Model, error) {
	d := &decoder{}
	m := &Model{sizeHint: len(data)}
	if err := d.model(m, data, 0); err != nil {
		return nil, fmt.Errorf("onnx: decode: %w", err)
	}
	return m, nil
}

func str(f *field) (string, bool) {
	if f.typ != protowire.BytesType {
		return "", false
	}
	return string(f.b), true
}

func isVarint(f *field) bool { return f.typ == protowire.VarintType }
func isBytes(f *field) bool  { return f.typ == protowire.BytesType }

// setStr stores a string field, or reports it unknown on a wire-type
// mismatch.
func setStr(f *field, dst *string) (int32, error) {
	s, ok := str(f)
	if !ok {
		return markUnknown, nil
	}
	*dst = s
	return markSingle, nil
}

func addStr(f *field, dst *[]string) (int32, error) {
	s, ok := str(f)
	if !ok {
		return markUnknown, nil
	}
	*dst = append(*dst, s)
	return markSingle, nil
}

func setInt64(f *field, dst *int64) (int32, error) {
	if !isVarint(f) {
		return markUnknown, nil
	}
	*dst = int64(f.v)
	return markSingle, nil
}

func setInt32(f *field, dst *int32) (int32, error) {
	if !isVarint(f) {
		return markUnknown, nil
	}
	*dst = int32(f.v)
	return markSingle, nil
}

func addEntry(d *decoder, f *field, parent, name string, dst *[]*StringStringEntry) (int32, error) {
	if !isBytes(f) {
		return markUnknown, nil
	}
	e := &StringStringEntry{}
	if err := d.sub(f, parent, name, func(b []byte, off int) error { return d.entry(e, b, off) }); err != nil {
		return 0, err
	}
	*dst = append(*dst, e)
	return markSingle, nil
}

func (d *decoder) model(m *Model, b []byte, off int) error {
	const mn = "ModelProto"
	return d.decodeFields(b, off, mn, &m.layout, &m.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return setInt64(f, &m.IRVersion)
		case 2:
			return setStr(f, &m.ProducerName)
		case 3:
			return setStr(f, &m.ProducerVersion)
		case 4:
			return setStr(f, &m.Domain)
		case 5:
			return setInt64(f, &m.ModelVersion)
		case 6:
			return setStr(f, &m.DocString)
		case 7:
			if !isBytes(f) {
				return markUnknown, nil
			}
			if m.Graph == nil {
				m.Graph = &Graph{}
			}
			return markSingle, d.sub(f, mn, "graph", func(b []byte, off int) error { return d.graph(m.Graph, b, off) })
		case 8:
			if !isBytes(f) {
				return markUnknown, nil
			}
			o := &OperatorSetID{}
			if err := d.sub(f, mn, fmt.Sprintf("opset_import[%d]", len(m.OpsetImports)), func(b []byte, off int) error { return d.opset(o, b, off) }); err != nil {
				return 0, err
			}
			m.OpsetImports = append(m.OpsetImports, o)
			return markSingle, nil
		case 14:
			return addEntry(d, f, mn, fmt.Sprintf("metadata_props[%d]", len(m.MetadataProps)), &m.MetadataProps)
		}
		return markUnknown, nil
	})
}

func (d *decoder) graph(g *Graph, b []byte, off int) error {
	const mn = "GraphProto"
	return d.decodeFields(b, off, mn, &g.layout, &g.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			if !isBytes(f) {
				return markUnknown, nil
			}
			n := &Node{}
			if err := d.sub(f, mn, fmt.Sprintf("node[%d]", len(g.Nodes)), func(b []byte, off int) error { return d.node(n, b, off) }); err != nil {
				return 0, err
			}
			g.Nodes = append(g.Nodes, n)
			return markSingle, nil
		case 2:
			return setStr(f, &g.Name)
		case 5:
			if !isBytes(f) {
				return markUnknown, nil
			}
			t := &Tensor{}
			if err := d.sub(f, mn, fmt.Sprintf("initializer[%d]", len(g.Initializers)), func(b []byte, off int) error { return d.tensor(t, b, off) }); err != nil {
				return 0, err
			}
			g.Initializers = append(g.Initializers, t)
			return markSingle, nil
		case 10:
			return setStr(f, &g.DocString)
		case 11, 12, 13:
			if !isBytes(f) {
				return markUnknown, nil
			}
			dst, name := &g.Inputs, "input"
			if f.num == 12 {
				dst, name = &g.Outputs, "output"
			} else if f.num == 13 {
				dst, name = &g.ValueInfo, "value_info"
			}
			v := &ValueInfo{}
			if err := d.sub(f, mn, fmt.Sprintf("%s[%d]", name, len(*dst)), func(b []byte, off int) error { return d.valueInfo(v, b, off) }); err != nil {
				return 0, err
			}
			*dst = append(*dst, v)
			return markSingle, nil
		case 16:
			return addEntry(d, f, mn, fmt.Sprintf("metadata_props[%d]", len(g.Metadata)), &g.Metadata)
		}
		return markUnknown, nil
	})
}

func (d *decoder) node(n *Node, b []byte, off int) error {
	const mn = "NodeProto"
	return d.decodeFields(b, off, mn, &n.layout, &n.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return addStr(f, &n.Inputs)
		case 2:
			return addStr(f, &n.Outputs)
		case 3:
			return setStr(f, &n.Name)
		case 4:
			return setStr(f, &n.OpType)
		case 5:
			if !isBytes(f) {
				return markUnknown, nil
			}
			a := &Attribute{}
			if err := d.sub(f, mn, fmt.Sprintf("attribute[%d] of node %q", len(n.Attributes), n.Name), func(b []byte, off int) error { return d.attribute(a, b, off) }); err != nil {
				return 0, err
			}
			n.Attributes = append(n.Attributes, a)
			return markSingle, nil
		case 6:
			return setStr(f, &n.DocString)
		case 7:
			return setStr(f, &n.Domain)
		case 8:
			return setStr(f, &n.Overload)
		case 9:
			return addEntry(d, f, mn, fmt.Sprintf("metadata_props[%d]", len(n.Metadata)), &n.Metadata)
		}
		return markUnknown, nil
	})
}

func (d *decoder) attribute(a *Attribute, b []byte, off int) error {
	const mn = "AttributeProto"
	return d.decodeFields(b, off, mn, &a.layout, &a.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return setStr(f, &a.Name)
		case 21:
			return setStr(f, &a.RefAttrName)
		case 13:
			return setStr(f, &a.DocString)
		case 20:
			var v int32
			mark, err := setInt32(f, &v)
			if mark == markSingle {
				a.Type = AttrType(v)
			}
			return mark, err
		case 2:
			if f.typ != protowire.Fixed32Type {
				return markUnknown, nil
			}
			a.F = math.Float32frombits(uint32(f.v))
			return markSingle, nil
		case 3:
			return setInt64(f, &a.I)
		case 4:
			if !isBytes(f) {
				return markUnknown, nil
			}
			a.S = f.b
			return markSingle, nil
		case 5, 10:
			if !isBytes(f) {
				return markUnknown, nil
			}
			t := &Tensor{}
			name := "t"
			if f.num == 10 {
				name = fmt.Sprintf("tensors[%d]", len(a.Tensors))
			}
			if err := d.sub(f, mn, name, func(b []byte, off int) error { return d.tensor(t, b, off) }); err != nil {
				return 0, err
			}
			if f.num == 5 {
				a.T = t
			} else {
				a.Tensors = append(a.Tensors, t)
			}
			return markSingle, nil
		case 6, 11:
			if !isBytes(f) {
				return markUnknown, nil
			}
			g := &Graph{}
			name := "g"
			if f.num == 11 {
				name = fmt.Sprintf("graphs[%d]", len(a.Graphs))
			}
			if err := d.sub(f, mn, name, func(b []byte, off int) error { return d.graph(g, b, off) }); err != nil {
				return 0, err
			}
			if f.num == 6 {
				a.G = g
			} else {
				a.Graphs = append(a.Graphs, g)
			}
			return markSingle, nil
		case 14:
			if !isBytes(f) {
				return markUnknown, nil
			}
			t := &Type{}
			if err := d.sub(f, mn, "tp", func(b []byte, off int) error { return d.typ(t, b, off) }); err != nil {
				return 0, err
			}
			a.TP = t
			return markSingle, nil
		case 7:
			switch f.typ {
			case protowire.Fixed32Type:
				a.Floats = append(a.Floats, math.Float32frombits(uint32(f.v)))
				return markSingle, nil
			case protowire.BytesType:
				return packedFixed(f, 4, mn, "floats", func(b []byte) {
					a.Floats = append(a.Floats, math.Float32frombits(binary.LittleEndian.Uint32(b)))
				})
			}
		case 8:
			switch f.typ {
			case protowire.VarintType:
				a.Ints = append(a.Ints, int64(f.v))
				return markSingle, nil
			case protowire.BytesType:
				return packedVarints(f, mn, "ints", func(v uint64) { a.Ints = append(a.Ints, int64(v)) })
			}
		case 9:
			if !isBytes(f) {
				return markUnknown, nil
			}
			a.Strings = append(a.Strings, f.b)
			return markSingle, nil
		}
		return markUnknown, nil
	})
}

func (d *decoder) valueInfo(v *ValueInfo, b []byte, off int) error {
	const mn = "ValueInfoProto"
	return d.decodeFields(b, off, mn, &v.layout, &v.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return setStr(f, &v.Name)
		case 2:
			if !isBytes(f) {
				return markUnknown, nil
			}
			if v.Type == nil {
				v.Type = &Type{}
			}
			return markSingle, d.sub(f, mn, "type", func(b []byte, off int) error { return d.typ(v.Type, b, off) })
		case 3:
			return setStr(f, &v.DocString)
		case 4:
			return addEntry(d, f, mn, fmt.Sprintf("metadata_props[%d]", len(v.Metadata)), &v.Metadata)
		}
		return markUnknown, nil
	})
}

func (d *decoder) typ(t *Type, b []byte, off int) error {
	const mn = "TypeProto"
	return d.decodeFields(b, off, mn, &t.layout, &t.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			if !isBytes(f) {
				return markUnknown, nil
			}
			if t.Tensor == nil {
				t.Tensor = &TensorType{}
			}
			return markSingle, d.sub(f, mn, "tensor_type", func(b []byte, off int) error { return d.tensorType(t.Tensor, b, off) })
		case 6:
			return setStr(f, &t.Denotation)
		}
		return markUnknown, nil
	})
}

func (d *decoder) tensorType(t *TensorType, b []byte, off int) error {
	const mn = "TypeProto.Tensor"
	return d.decodeFields(b, off, mn, &t.layout, &t.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			var v int32
			mark, err := setInt32(f, &v)
			if mark == markSingle {
				t.ElemType = DataType(v)
			}
			return mark, err
		case 2:
			if !isBytes(f) {
				return markUnknown, nil
			}
			if t.Shape == nil {
				t.Shape = &TensorShape{}
			}
			return markSingle, d.sub(f, mn, "shape", func(b []byte, off int) error { return d.shape(t.Shape, b, off) })
		}
		return markUnknown, nil
	})
}

func (d *decoder) shape(s *TensorShape, b []byte, off int) error {
	const mn = "TensorShapeProto"
	return d.decodeFields(b, off, mn, &s.layout, &s.Unknown, func(f *field) (int32, error) {
		if f.num != 1 || !isBytes(f) {
			return markUnknown, nil
		}
		dim := &Dimension{}
		err := d.sub(f, mn, fmt.Sprintf("dim[%d]", len(s.Dims)), func(b []byte, off int) error {
			return d.decodeFields(b, off, "Dimension", &dim.layout, &dim.Unknown, func(f *field) (int32, error) {
				switch f.num {
				case 1:
					return setInt64(f, &dim.Value)
				case 2:
					return setStr(f, &dim.Param)
				case 3:
					return setStr(f, &dim.Denotation)
				}
				return markUnknown, nil
			})
		})
		if err != nil {
			return 0, err
		}
		s.Dims = append(s.Dims, dim)
		return markSingle, nil
	})
}

func (d *decoder) tensor(t *Tensor, b []byte, off int) error {
	const mn = "TensorProto"
	return d.decodeFields(b, off, mn, &t.layout, &t.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			switch f.typ {
			case protowire.VarintType:
				t.Dims = append(t.Dims, int64(f.v))
				return markSingle, nil
			case protowire.BytesType:
				return packedVarints(f, mn, "dims", func(v uint64) { t.Dims = append(t.Dims, int64(v)) })
			}
		case 2:
			var v int32
			mark, err := setInt32(f, &v)
			if mark == markSingle {
				t.DataType = DataType(v)
			}
			return mark, err
		case 4:
			switch f.typ {
			case protowire.Fixed32Type:
				t.FloatData = append(t.FloatData, math.Float32frombits(uint32(f.v)))
				return markSingle, nil
			case protowire.BytesType:
				if t.FloatData == nil {
					t.FloatData = make([]float32, 0, len(f.b)/4)
				}
				return packedFixed(f, 4, mn, "float_data", func(b []byte) {
					t.FloatData = append(t.FloatData, math.Float32frombits(binary.LittleEndian.Uint32(b)))
				})
			}
		case 5:
			switch f.typ {
			case protowire.VarintType:
				t.Int32Data = append(t.Int32Data, int32(f.v))
				return markSingle, nil
			case protowire.BytesType:
				return packedVarints(f, mn, "int32_data", func(v uint64) { t.Int32Data = append(t.Int32Data, int32(v)) })
			}
		case 6:
			if !isBytes(f) {
				return markUnknown, nil
			}
			t.StringData = append(t.StringData, f.b)
			return markSingle, nil
		case 7:
			switch f.typ {
			case protowire.VarintType:
				t.Int64Data = append(t.Int64Data, int64(f.v))
				return markSingle, nil
			case protowire.BytesType:
				return packedVarints(f, mn, "int64_data", func(v uint64) { t.Int64Data = append(t.Int64Data, int64(v)) })
			}
		case 8:
			return setStr(f, &t.Name)
		case 9:
			if !isBytes(f) {
				return markUnknown, nil
			}
			t.RawData = f.b
			return markSingle, nil
		case 10:
			switch f.typ {
			case protowire.Fixed64Type:
				t.DoubleData = append(t.DoubleData, math.Float64frombits(f.v))
				return markSingle, nil
			case protowire.BytesType:
				return packedFixed(f, 8, mn, "double_data", func(b []byte) {
					t.DoubleData = append(t.DoubleData, math.Float64frombits(binary.LittleEndian.Uint64(b)))
				})
			}
		case 11:
			switch f.typ {
			case protowire.VarintType:
				t.Uint64Data = append(t.Uint64Data, f.v)
				return markSingle, nil
			case protowire.BytesType:
				return packedVarints(f, mn, "uint64_data", func(v uint64) { t.Uint64Data = append(t.Uint64Data, v) })
			}
		case 12:
			return setStr(f, &t.DocString)
		case 13:
			return addEntry(d, f, mn, fmt.Sprintf("external_data[%d]", len(t.ExternalData)), &t.ExternalData)
		case 14:
			var v int32
			mark, err := setInt32(f, &v)
			if mark == markSingle {
				t.DataLocation = DataLocation(v)
			}
			return mark, err
		case 16:
			return addEntry(d, f, mn, fmt.Sprintf("metadata_props[%d]", len(t.Metadata)), &t.Metadata)
		}
		return markUnknown, nil
	})
}

func (d *decoder) entry(e *StringStringEntry, b []byte, off int) error {
	return d.decodeFields(b, off, "StringStringEntryProto", &e.layout, &e.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return setStr(f, &e.Key)
		case 2:
			return setStr(f, &e.Value)
		}
		return markUnknown, nil
	})
}

func (d *decoder) opset(o *OperatorSetID, b []byte, off int) error {
	return d.decodeFields(b, off, "OperatorSetIdProto", &o.layout, &o.Unknown, func(f *field) (int32, error) {
		switch f.num {
		case 1:
			return setStr(f, &o.Domain)
		case 2:
			return setInt64(f, &o.Version)
		}
		return markUnknown, nil
	})
}

// ---- encoding ----

// Encode serializes the model. An unmodified decoded model encodes to the
// exact bytes it was decoded from (for input written by protobuf's own
// serializers). It fails when a slice holds a nil message or the result
// exceeds protobuf's 2 GiB limit (move weights to external data then).
func (m *Model) Encode() ([]byte, error) {
	e := &encoder{b: make([]byte, 0, max(m.sizeHint, 1024))}
	e.body(m, "ModelProto")
	if e.err != nil {
		return nil, fmt.Errorf("onnx: encode: %w", e.err)
	}
	if len(e.b) > maxMessageSize {
		return nil, fmt.Errorf("onnx: encode: model is %d bytes, over protobuf's 2 GiB limit; store large initializers as external data (SaveExternal)", len(e.b))
	}
	return e.b, nil
}

func nonzero[T comparable](v T) int {
	var zero T
	if v != zero {
		return 1
	}
	return 0
}

func nonnil[T any](p *T) int {
	if p != nil {
		return 1
	}
	return 0
}

// elem writes a repeated message element, failing on nil.
func elem[T message](e *encoder, num protowire.Number, s []T, i int, what string) {
	var zero T
	if any(s[i]) == any(zero) {
		e.fail(fmt.Errorf("%s[%d] is nil", what, i))
		return
	}
	e.message(num, s[i], fmt.Sprintf("%s[%d]", what, i))
}

func (m *Model) wire() (*[]occurrence, *[][]byte) { return &m.layout, &m.Unknown }
func (m *Model) nums() []protowire.Number {
	return []protowire.Number{1, 2, 3, 4, 5, 6, 7, 8, 14}
}
func (m *Model) kind(num protowire.Number) fieldKind {
	switch num {
	case 1, 2, 3, 4, 5, 6:
		return kindScalar
	case 7:
		return kindMessage
	case 8, 14:
		return kindRepeated
	}
	return kindNone
}
func (m *Model) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(m.IRVersion)
	case 2:
		return nonzero(m.ProducerName)
	case 3:
		return nonzero(m.ProducerVersion)
	case 4:
		return nonzero(m.Domain)
	case 5:
		return nonzero(m.ModelVersion)
	case 6:
		return nonzero(m.DocString)
	case 7:
		return nonnil(m.Graph)
	case 8:
		return len(m.OpsetImports)
	case 14:
		return len(m.MetadataProps)
	}
	return 0
}
func (m *Model) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.int64(num, m.IRVersion)
	case 2:
		e.str(num, m.ProducerName)
	case 3:
		e.str(num, m.ProducerVersion)
	case 4:
		e.str(num, m.Domain)
	case 5:
		e.int64(num, m.ModelVersion)
	case 6:
		e.str(num, m.DocString)
	case 7:
		e.message(num, m.Graph, "graph")
	case 8:
		elem(e, num, m.OpsetImports, i, "opset_import")
	case 14:
		elem(e, num, m.MetadataProps, i, "metadata_props")
	}
}
func (m *Model) appendPacked(*encoder, protowire.Number, int, int) {}

func (g *Graph) wire() (*[]occurrence, *[][]byte) { return &g.layout, &g.Unknown }
func (g *Graph) nums() []protowire.Number {
	return []protowire.Number{1, 2, 5, 10, 11, 12, 13, 16}
}
func (g *Graph) kind(num protowire.Number) fieldKind {
	switch num {
	case 2, 10:
		return kindScalar
	case 1, 5, 11, 12, 13, 16:
		return kindRepeated
	}
	return kindNone
}
func (g *Graph) count(num protowire.Number) int {
	switch num {
	case 1:
		return len(g.Nodes)
	case 2:
		return nonzero(g.Name)
	case 5:
		return len(g.Initializers)
	case 10:
		return nonzero(g.DocString)
	case 11:
		return len(g.Inputs)
	case 12:
		return len(g.Outputs)
	case 13:
		return len(g.ValueInfo)
	case 16:
		return len(g.Metadata)
	}
	return 0
}
func (g *Graph) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		elem(e, num, g.Nodes, i, "node")
	case 2:
		e.str(num, g.Name)
	case 5:
		elem(e, num, g.Initializers, i, "initializer")
	case 10:
		e.str(num, g.DocString)
	case 11:
		elem(e, num, g.Inputs, i, "input")
	case 12:
		elem(e, num, g.Outputs, i, "output")
	case 13:
		elem(e, num, g.ValueInfo, i, "value_info")
	case 16:
		elem(e, num, g.Metadata, i, "metadata_props")
	}
}
func (g *Graph) appendPacked(*encoder, protowire.Number, int, int) {}

func (n *Node) wire() (*[]occurrence, *[][]byte) { return &n.layout, &n.Unknown }
func (n *Node) nums() []protowire.Number {
	return []protowire.Number{1, 2, 3, 4, 5, 6, 7, 8, 9}
}
func (n *Node) kind(num protowire.Number) fieldKind {
	switch num {
	case 3, 4, 6, 7, 8:
		return kindScalar
	case 1, 2, 5, 9:
		return kindRepeated
	}
	return kindNone
}
func (n *Node) count(num protowire.Number) int {
	switch num {
	case 1:
		return len(n.Inputs)
	case 2:
		return len(n.Outputs)
	case 3:
		return nonzero(n.Name)
	case 4:
		return nonzero(n.OpType)
	case 5:
		return len(n.Attributes)
	case 6:
		return nonzero(n.DocString)
	case 7:
		return nonzero(n.Domain)
	case 8:
		return nonzero(n.Overload)
	case 9:
		return len(n.Metadata)
	}
	return 0
}
func (n *Node) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.str(num, n.Inputs[i])
	case 2:
		e.str(num, n.Outputs[i])
	case 3:
		e.str(num, n.Name)
	case 4:
		e.str(num, n.OpType)
	case 5:
		elem(e, num, n.Attributes, i, "attribute")
	case 6:
		e.str(num, n.DocString)
	case 7:
		e.str(num, n.Domain)
	case 8:
		e.str(num, n.Overload)
	case 9:
		elem(e, num, n.Metadata, i, "metadata_props")
	}
}
func (n *Node) appendPacked(*encoder, protowire.Number, int, int) {}

func (a *Attribute) wire() (*[]occurrence, *[][]byte) { return &a.layout, &a.Unknown }
func (a *Attribute) nums() []protowire.Number {
	return []protowire.Number{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 20, 21}
}
func (a *Attribute) kind(num protowire.Number) fieldKind {
	switch num {
	case 1, 2, 3, 4, 13, 20, 21:
		return kindScalar
	case 5, 6, 14:
		return kindMessage
	case 7, 8:
		return kindUnpacked
	case 9, 10, 11:
		return kindRepeated
	}
	return kindNone
}
func (a *Attribute) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(a.Name)
	case 2:
		if a.Type == AttrFloat && a.RefAttrName == "" {
			return 1
		}
		return nonzero(a.F)
	case 3:
		if a.Type == AttrInt && a.RefAttrName == "" {
			return 1
		}
		return nonzero(a.I)
	case 4:
		if (a.Type == AttrString && a.RefAttrName == "") || len(a.S) > 0 {
			return 1
		}
		return 0
	case 5:
		return nonnil(a.T)
	case 6:
		return nonnil(a.G)
	case 14:
		return nonnil(a.TP)
	case 7:
		return len(a.Floats)
	case 8:
		return len(a.Ints)
	case 9:
		return len(a.Strings)
	case 10:
		return len(a.Tensors)
	case 11:
		return len(a.Graphs)
	case 13:
		return nonzero(a.DocString)
	case 20:
		return nonzero(a.Type)
	case 21:
		return nonzero(a.RefAttrName)
	}
	return 0
}
func (a *Attribute) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.str(num, a.Name)
	case 2:
		e.float32(num, a.F)
	case 3:
		e.int64(num, a.I)
	case 4:
		e.bytes(num, a.S)
	case 5:
		e.message(num, a.T, "t")
	case 6:
		e.message(num, a.G, "g")
	case 14:
		e.message(num, a.TP, "tp")
	case 7:
		e.float32(num, a.Floats[i])
	case 8:
		e.int64(num, a.Ints[i])
	case 9:
		e.bytes(num, a.Strings[i])
	case 10:
		elem(e, num, a.Tensors, i, "tensors")
	case 11:
		elem(e, num, a.Graphs, i, "graphs")
	case 13:
		e.str(num, a.DocString)
	case 20:
		e.int32(num, int32(a.Type))
	case 21:
		e.str(num, a.RefAttrName)
	}
}
func (a *Attribute) appendPacked(e *encoder, num protowire.Number, from, to int) {
	switch num {
	case 7:
		e.packed(num, func() {
			for _, v := range a.Floats[from:to] {
				e.b = protowire.AppendFixed32(e.b, math.Float32bits(v))
			}
		})
	case 8:
		e.packed(num, func() {
			for _, v := range a.Ints[from:to] {
				e.b = protowire.AppendVarint(e.b, uint64(v))
			}
		})
	}
}

func (v *ValueInfo) wire() (*[]occurrence, *[][]byte) { return &v.layout, &v.Unknown }
func (v *ValueInfo) nums() []protowire.Number         { return []protowire.Number{1, 2, 3, 4} }
func (v *ValueInfo) kind(num protowire.Number) fieldKind {
	switch num {
	case 1, 3:
		return kindScalar
	case 2:
		return kindMessage
	case 4:
		return kindRepeated
	}
	return kindNone
}
func (v *ValueInfo) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(v.Name)
	case 2:
		return nonnil(v.Type)
	case 3:
		return nonzero(v.DocString)
	case 4:
		return len(v.Metadata)
	}
	return 0
}
func (v *ValueInfo) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.str(num, v.Name)
	case 2:
		e.message(num, v.Type, "type")
	case 3:
		e.str(num, v.DocString)
	case 4:
		elem(e, num, v.Metadata, i, "metadata_props")
	}
}
func (v *ValueInfo) appendPacked(*encoder, protowire.Number, int, int) {}

func (t *Type) wire() (*[]occurrence, *[][]byte) { return &t.layout, &t.Unknown }
func (t *Type) nums() []protowire.Number         { return []protowire.Number{1, 6} }
func (t *Type) kind(num protowire.Number) fieldKind {
	switch num {
	case 1:
		return kindMessage
	case 6:
		return kindScalar
	}
	return kindNone
}
func (t *Type) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonnil(t.Tensor)
	case 6:
		return nonzero(t.Denotation)
	}
	return 0
}
func (t *Type) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.message(num, t.Tensor, "tensor_type")
	case 6:
		e.str(num, t.Denotation)
	}
}
func (t *Type) appendPacked(*encoder, protowire.Number, int, int) {}

func (t *TensorType) wire() (*[]occurrence, *[][]byte) { return &t.layout, &t.Unknown }
func (t *TensorType) nums() []protowire.Number         { return []protowire.Number{1, 2} }
func (t *TensorType) kind(num protowire.Number) fieldKind {
	switch num {
	case 1:
		return kindScalar
	case 2:
		return kindMessage
	}
	return kindNone
}
func (t *TensorType) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(t.ElemType)
	case 2:
		return nonnil(t.Shape)
	}
	return 0
}
func (t *TensorType) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.int32(num, int32(t.ElemType))
	case 2:
		e.message(num, t.Shape, "shape")
	}
}
func (t *TensorType) appendPacked(*encoder, protowire.Number, int, int) {}

func (s *TensorShape) wire() (*[]occurrence, *[][]byte) { return &s.layout, &s.Unknown }
func (s *TensorShape) nums() []protowire.Number         { return []protowire.Number{1} }
func (s *TensorShape) kind(num protowire.Number) fieldKind {
	if num == 1 {
		return kindRepeated
	}
	return kindNone
}
func (s *TensorShape) count(num protowire.Number) int {
	if num == 1 {
		return len(s.Dims)
	}
	return 0
}
func (s *TensorShape) appendElem(e *encoder, num protowire.Number, i int) {
	if num == 1 {
		elem(e, num, s.Dims, i, "dim")
	}
}
func (s *TensorShape) appendPacked(*encoder, protowire.Number, int, int) {}

func (d *Dimension) wire() (*[]occurrence, *[][]byte) { return &d.layout, &d.Unknown }
func (d *Dimension) nums() []protowire.Number         { return []protowire.Number{1, 2, 3} }
func (d *Dimension) kind(num protowire.Number) fieldKind {
	switch num {
	case 1, 2, 3:
		return kindScalar
	}
	return kindNone
}
func (d *Dimension) count(num protowire.Number) int {
	switch num {
	case 1:
		if d.Param != "" {
			return -1
		}
		return nonzero(d.Value)
	case 2:
		if d.Param == "" && d.Value != 0 {
			return -1
		}
		return nonzero(d.Param)
	case 3:
		return nonzero(d.Denotation)
	}
	return 0
}
func (d *Dimension) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.int64(num, d.Value)
	case 2:
		e.str(num, d.Param)
	case 3:
		e.str(num, d.Denotation)
	}
}
func (d *Dimension) appendPacked(*encoder, protowire.Number, int, int) {}

func (t *Tensor) wire() (*[]occurrence, *[][]byte) { return &t.layout, &t.Unknown }
func (t *Tensor) nums() []protowire.Number {
	return []protowire.Number{1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16}
}
func (t *Tensor) kind(num protowire.Number) fieldKind {
	switch num {
	case 2, 8, 9, 12, 14:
		return kindScalar
	case 1:
		return kindUnpacked
	case 4, 5, 7, 10, 11:
		return kindPacked
	case 6, 13, 16:
		return kindRepeated
	}
	return kindNone
}
func (t *Tensor) count(num protowire.Number) int {
	switch num {
	case 1:
		return len(t.Dims)
	case 2:
		return nonzero(t.DataType)
	case 4:
		return len(t.FloatData)
	case 5:
		return len(t.Int32Data)
	case 6:
		return len(t.StringData)
	case 7:
		return len(t.Int64Data)
	case 8:
		return nonzero(t.Name)
	case 9:
		if len(t.RawData) > 0 {
			return 1
		}
		return 0
	case 10:
		return len(t.DoubleData)
	case 11:
		return len(t.Uint64Data)
	case 12:
		return nonzero(t.DocString)
	case 13:
		return len(t.ExternalData)
	case 14:
		return nonzero(t.DataLocation)
	case 16:
		return len(t.Metadata)
	}
	return 0
}
func (t *Tensor) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.int64(num, t.Dims[i])
	case 2:
		e.int32(num, int32(t.DataType))
	case 4:
		e.float32(num, t.FloatData[i])
	case 5:
		e.int32(num, t.Int32Data[i])
	case 6:
		e.bytes(num, t.StringData[i])
	case 7:
		e.int64(num, t.Int64Data[i])
	case 8:
		e.str(num, t.Name)
	case 9:
		e.bytes(num, t.RawData)
	case 10:
		e.float64(num, t.DoubleData[i])
	case 11:
		e.varint(num, t.Uint64Data[i])
	case 12:
		e.str(num, t.DocString)
	case 13:
		elem(e, num, t.ExternalData, i, "external_data")
	case 14:
		e.int32(num, int32(t.DataLocation))
	case 16:
		elem(e, num, t.Metadata, i, "metadata_props")
	}
}
func (t *Tensor) appendPacked(e *encoder, num protowire.Number, from, to int) {
	e.packed(num, func() {
		switch num {
		case 1:
			for _, v := range t.Dims[from:to] {
				e.b = protowire.AppendVarint(e.b, uint64(v))
			}
		case 4:
			for _, v := range t.FloatData[from:to] {
				e.b = protowire.AppendFixed32(e.b, math.Float32bits(v))
			}
		case 5:
			for _, v := range t.Int32Data[from:to] {
				e.b = protowire.AppendVarint(e.b, uint64(int64(v)))
			}
		case 7:
			for _, v := range t.Int64Data[from:to] {
				e.b = protowire.AppendVarint(e.b, uint64(v))
			}
		case 10:
			for _, v := range t.DoubleData[from:to] {
				e.b = protowire.AppendFixed64(e.b, math.Float64bits(v))
			}
		case 11:
			for _, v := range t.Uint64Data[from:to] {
				e.b = protowire.AppendVarint(e.b, v)
			}
		}
	})
}

func (s *StringStringEntry) wire() (*[]occurrence, *[][]byte) { return &s.layout, &s.Unknown }
func (s *StringStringEntry) nums() []protowire.Number         { return []protowire.Number{1, 2} }
func (s *StringStringEntry) kind(num protowire.Number) fieldKind {
	if num == 1 || num == 2 {
		return kindScalar
	}
	return kindNone
}
func (s *StringStringEntry) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(s.Key)
	case 2:
		return nonzero(s.Value)
	}
	return 0
}
func (s *StringStringEntry) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.str(num, s.Key)
	case 2:
		e.str(num, s.Value)
	}
}
func (s *StringStringEntry) appendPacked(*encoder, protowire.Number, int, int) {}

func (o *OperatorSetID) wire() (*[]occurrence, *[][]byte) { return &o.layout, &o.Unknown }
func (o *OperatorSetID) nums() []protowire.Number         { return []protowire.Number{1, 2} }
func (o *OperatorSetID) kind(num protowire.Number) fieldKind {
	if num == 1 || num == 2 {
		return kindScalar
	}
	return kindNone
}
func (o *OperatorSetID) count(num protowire.Number) int {
	switch num {
	case 1:
		return nonzero(o.Domain)
	case 2:
		return nonzero(o.Version)
	}
	return 0
}
func (o *OperatorSetID) appendElem(e *encoder, num protowire.Number, i int) {
	switch num {
	case 1:
		e.str(num, o.Domain)
	case 2:
		e.int64(num, o.Version)
	}
}
func (o *OperatorSetID) appendPacked(*encoder, protowire.Number, int, int) {}
