package onnx

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// msg builds wire bytes for hand-made test messages.
type msg []byte

func (m msg) varint(num protowire.Number, v uint64) msg {
	m = protowire.AppendTag(m, num, protowire.VarintType)
	return protowire.AppendVarint(m, v)
}

func (m msg) bytes(num protowire.Number, v []byte) msg {
	m = protowire.AppendTag(m, num, protowire.BytesType)
	return protowire.AppendBytes(m, v)
}

func (m msg) str(num protowire.Number, s string) msg { return m.bytes(num, []byte(s)) }

func (m msg) fixed32(num protowire.Number, v uint32) msg {
	m = protowire.AppendTag(m, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(m, v)
}

func packedVar(vs ...uint64) []byte {
	var b []byte
	for _, v := range vs {
		b = protowire.AppendVarint(b, v)
	}
	return b
}

// oddModel is a ModelProto exercising what generic serializers might
// write: explicit zero scalars, fields out of number order, unknown fields
// of every wire type (including a group), packed and unpacked repeated
// numbers, an empty packed chunk, and external data entries.
func oddModel(dupName bool) []byte {
	dim := func(v uint64) []byte { return msg{}.varint(1, v) }
	shape := msg{}.bytes(1, dim(1)).bytes(1, msg{}.str(2, "batch")).bytes(1, dim(0)).bytes(1, nil)
	tensorType := msg{}.bytes(2, shape).varint(1, 1) // shape before elem_type
	vi := msg{}.str(1, "x").bytes(2, msg{}.bytes(1, tensorType).str(6, "IMAGE"))
	attrInts := msg{}.str(1, "pads").varint(20, 7).bytes(8, packedVar(1, 1)).varint(8, 2).bytes(8, nil)
	attrZero := msg{}.str(1, "axis").varint(3, 0).varint(20, 2)
	attrFloats := msg{}.str(1, "scales").fixed32(7, 0x3f800000).bytes(7, []byte{0, 0, 0, 0x40, 0, 0, 0x40, 0x40}).varint(20, 6)
	unknownGroup := protowire.AppendTag(nil, 40, protowire.StartGroupType)
	unknownGroup = append(unknownGroup, msg{}.varint(1, 5)...)
	unknownGroup = protowire.AppendTag(unknownGroup, 40, protowire.EndGroupType)
	node := msg{}.str(4, "Conv").str(1, "x").str(1, "").str(1, "w").str(2, "y").
		bytes(5, attrInts).bytes(5, attrZero).bytes(5, attrFloats).str(3, "conv0").
		varint(1000, 3) // unknown varint field inside a node
	node = append(node, unknownGroup...)
	ext := func(k, v string) []byte { return msg{}.str(1, k).str(2, v) }
	tensorExt := msg{}.varint(1, 2).varint(1, 3).varint(2, 1).str(8, "w").
		bytes(13, ext("location", "weights.pb")).bytes(13, ext("offset", "0")).bytes(13, ext("length", "24")).
		varint(14, 1)
	tensorInline := msg{}.bytes(1, packedVar(2)).varint(2, 1).fixed32(4, 0x3f800000).fixed32(4, 0).str(8, "b").
		bytes(4, nil).fixed32(99, 0xdeadbeef)
	graph := msg{}.bytes(1, node)
	if dupName {
		graph = graph.str(2, "g")
	}
	graph = graph.bytes(5, tensorExt).bytes(5, tensorInline).
		bytes(11, vi).bytes(12, msg{}.str(1, "y")).str(2, "g-renamed-later-wins")
	model := msg{}.varint(1, 0). // explicit zero ir_version
					bytes(8, msg{}.str(1, "").varint(2, 17)).
					str(2, "tester").
					bytes(7, graph).
					varint(5, 0).
					bytes(25, []byte("opaque function bytes")).
					bytes(14, ext("k", "v"))
	return model
}

func TestDecodeEncodeOddModel(t *testing.T) {
	in := oddModel(false)
	m, err := Decode(oddModel(true))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if g.Name != "g-renamed-later-wins" {
		t.Errorf("graph name = %q (last occurrence should win)", g.Name)
	}
	n := g.Nodes[0]
	if got := n.AttrInts("pads"); len(got) != 3 || got[2] != 2 {
		t.Errorf("pads = %v, want [1 1 2]", got)
	}
	if n.AttrInt("axis", -1) != 0 {
		t.Errorf("axis = %d, want explicit 0", n.AttrInt("axis", -1))
	}
	if f := n.AttrFloats("scales"); len(f) != 3 || f[1] != 2 || f[2] != 3 {
		t.Errorf("scales = %v", f)
	}
	if len(n.Unknown) != 2 {
		t.Errorf("node kept %d unknown fields, want 2", len(n.Unknown))
	}
	if len(m.Unknown) != 1 || !bytes.Contains(m.Unknown[0], []byte("opaque function bytes")) {
		t.Errorf("model unknown = %q", m.Unknown)
	}
	if x, err := g.Initializers[0].External(); err != nil || x != (External{Location: "weights.pb", Offset: 0, Length: 24}) {
		t.Errorf("external = %+v, %v", x, err)
	}
	if got := g.Inputs[0].ShapeString(); got != "float32[1,batch,0,?]" {
		t.Errorf("input shape = %s", got)
	}
	// A repeated singular field (the graph name) is the one thing that is
	// not kept: protobuf semantics say the last one wins, and it is
	// written once, at its last position. Everything else is identical.
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) {
		t.Fatalf("re-encoded bytes differ:\n got %x\nwant %x", out, in)
	}
	m2, err := Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	if out2, _ := m2.Encode(); !bytes.Equal(out2, in) {
		t.Fatal("round trip of the model without duplicates is not byte-identical")
	}
}

// TestEditsAreWritten checks that changes to a decoded model are encoded:
// appended nodes go after existing ones, changed scalars in place, new
// fields at the end, deleted elements vanish.
func TestEditsAreWritten(t *testing.T) {
	m, err := Decode(oddModel(true))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	n := g.Nodes[0]
	n.SetAttr(IntsAttr("pads", 0, 0, 0, 0))
	n.DeleteAttr("scales")
	n.Attr("axis").I = 3
	g.Nodes = append(g.Nodes, &Node{OpType: "Relu", Inputs: []string{"y"}, Outputs: []string{"z"}})
	g.Outputs[0].Name = "z"
	g.Initializers[1].FloatData = append(g.Initializers[1].FloatData, 7)
	g.Initializers[1].Dims[0] = 3
	g.Inputs[0].Type.Tensor.Shape.Dims[1] = &Dimension{Value: 4}
	g.Inputs[0].Type.Tensor.Shape.Dims[0].Param = "n"
	m.DocString = "edited"
	out, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	g2 := m2.Graph
	if len(g2.Nodes) != 2 || g2.Nodes[1].OpType != "Relu" || g2.Outputs[0].Name != "z" {
		t.Fatalf("nodes/outputs not edited: %d nodes", len(g2.Nodes))
	}
	n2 := g2.Nodes[0]
	if p := n2.AttrInts("pads"); len(p) != 4 || p[0] != 0 {
		t.Errorf("pads = %v", p)
	}
	if n2.Attr("scales") != nil || n2.AttrInt("axis", 0) != 3 {
		t.Errorf("attribute edits lost: %+v", n2.Attributes)
	}
	if f := g2.Initializers[1].FloatData; len(f) != 3 || f[2] != 7 {
		t.Errorf("float_data = %v", f)
	}
	if s := g2.Inputs[0].ShapeString(); s != "float32[n,4,0,?]" {
		t.Errorf("shape = %s", s)
	}
	if m2.DocString != "edited" || len(m2.Unknown) != 1 || len(n2.Unknown) != 2 {
		t.Errorf("doc %q, unknown %d/%d", m2.DocString, len(m2.Unknown), len(n2.Unknown))
	}
	again, _ := m2.Encode()
	if !bytes.Equal(again, out) {
		t.Error("encoding an edited model is not stable")
	}
}

// exportedModels returns the ONNX files shipped with onnxruntime_go's test
// data (exported by PyTorch and skl2onnx), real exporter output to test the
// codec against.
func exportedModels(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com", "yalue", "onnxruntime_go@v1.27.0", "test_data")
	files, _ := filepath.Glob(filepath.Join(dir, "*.onnx"))
	if len(files) == 0 {
		t.Skipf("no exported models in %s (run go mod download github.com/yalue/onnxruntime_go)", dir)
	}
	return files
}

// TestRealExportsRoundTrip loads real exported graphs and checks that
// saving them gives the same bytes.
func TestRealExportsRoundTrip(t *testing.T) {
	for _, path := range exportedModels(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if m.Graph == nil || len(m.Graph.Nodes) == 0 {
				t.Fatal("no graph")
			}
			dst := filepath.Join(t.TempDir(), "out.onnx")
			if err := m.Save(dst); err != nil {
				t.Fatal(err)
			}
			out, _ := os.ReadFile(dst)
			if !bytes.Equal(in, out) {
				t.Fatal("Load->Save is not byte-identical")
			}
			// Without the recorded layout the encoder writes fields in
			// number order, as protobuf's serializers do; the only bytes
			// that may then differ are explicitly written zero values
			// (proto2 presence), so the result is never longer and decodes.
			clearLayout(m)
			fresh, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if len(fresh) > len(in) {
				t.Errorf("canonical encoding is %d bytes, exporter wrote %d", len(fresh), len(in))
			}
			if _, err := Decode(fresh); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// clearLayout forgets recorded field order on every message of m.
func clearLayout(m *Model) {
	var graph func(g *Graph)
	var tensor func(t *Tensor)
	entries := func(es []*StringStringEntry) {
		for _, e := range es {
			e.layout = nil
		}
	}
	tensor = func(t *Tensor) {
		if t != nil {
			t.layout = nil
			entries(t.ExternalData)
			entries(t.Metadata)
		}
	}
	vi := func(vs []*ValueInfo) {
		for _, v := range vs {
			v.layout = nil
			if v.Type != nil {
				v.Type.layout = nil
				if tt := v.Type.Tensor; tt != nil {
					tt.layout = nil
					if tt.Shape != nil {
						tt.Shape.layout = nil
						for _, d := range tt.Shape.Dims {
							d.layout = nil
						}
					}
				}
			}
		}
	}
	graph = func(g *Graph) {
		if g == nil {
			return
		}
		g.layout = nil
		for _, n := range g.Nodes {
			n.layout = nil
			for _, a := range n.Attributes {
				a.layout = nil
				tensor(a.T)
				for _, t := range a.Tensors {
					tensor(t)
				}
				graph(a.G)
				for _, sg := range a.Graphs {
					graph(sg)
				}
			}
		}
		for _, t := range g.Initializers {
			tensor(t)
		}
		vi(g.Inputs)
		vi(g.Outputs)
		vi(g.ValueInfo)
	}
	m.layout = nil
	for _, o := range m.OpsetImports {
		o.layout = nil
	}
	entries(m.MetadataProps)
	graph(m.Graph)
}

// TestDecodeTruncated cuts a valid model at every length: each prefix
// either decodes or fails with an error, and a cut inside the last field
// reports truncation.
func TestDecodeTruncated(t *testing.T) {
	data, err := buildConvModel(t, Float).Encode()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		_, err := Decode(data[:n])
		if n == len(data)-1 {
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("cut at %d: err = %v, want ErrTruncated", n, err)
			}
		}
		if err != nil && !strings.HasPrefix(err.Error(), "onnx: decode: ") {
			t.Errorf("cut at %d: error %q lacks context", n, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"garbage", []byte("this is not a model"), "ModelProto"},
		{"bad packed floats", msg{}.bytes(7, msg{}.bytes(5, msg{}.bytes(4, []byte{1, 2, 3}))), "float_data"},
		{"truncated graph", msg{}.bytes(7, msg{}.bytes(1, msg{}.str(4, "Conv")))[:6], "unexpected end of data"},
		{"bad node", msg{}.bytes(7, msg{}.bytes(1, []byte{0xff})), "GraphProto.node[0]"},
		{"deep nesting", deepGraph(200), "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
}

// deepGraph nests graphs in If attributes depth times.
func deepGraph(depth int) []byte {
	g := msg{}.str(2, "leaf")
	for i := 0; i < depth; i++ {
		attr := msg{}.str(1, "then_branch").bytes(6, g).varint(20, 5)
		node := msg{}.str(4, "If").bytes(5, attr)
		g = msg{}.bytes(1, node)
	}
	return msg{}.bytes(7, g)
}

func TestEncodeNilElement(t *testing.T) {
	m := &Model{Graph: &Graph{Nodes: []*Node{nil}}}
	if _, err := m.Encode(); err == nil || !strings.Contains(err.Error(), "node[0] is nil") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(oddModel(true))
	f.Add(deepGraph(3))
	m := NewBuilder("fuzz")
	x := m.Input("x", Float, "n", 3)
	m.Output(m.Tanh(m.Add(x, m.Scalar(1))), "y", Float, "n", 3)
	if mm, err := m.Model(); err == nil {
		if b, err := mm.Encode(); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		e1, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded model does not encode: %v", err)
		}
		m2, err := Decode(e1)
		if err != nil {
			t.Fatalf("encoded model does not decode: %v", err)
		}
		e2, err := m2.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e1, e2) {
			t.Fatalf("encoding not stable:\n%x\n%x", e1, e2)
		}
	})
}

func TestLoadErrors(t *testing.T) {
	data, err := buildConvModel(t, Float).Encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, path, want string
	}{
		{"truncated", write("half.onnx", data[:len(data)/2]), "half.onnx: ModelProto.graph at offset 9: unexpected end of data: the file is truncated (an interrupted download or copy?); download or export it again"},
		{"not onnx", write("zip.onnx", []byte("PK\x03\x04 zip")), "zip.onnx: ModelProto: bad field tag at offset 2: invalid field number: the file is not an ONNX model or is corrupt"},
		{"missing", filepath.Join(dir, "none.onnx"), "none.onnx: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}
