package lora

import (
	"encoding/binary"
	"strings"
	"testing"
)

// testTensor is a float32 tensor for encodeSafetensors.
type testTensor struct {
	shape []int64
	data  []float32
}

// encodeSafetensors writes float32 tensors with EncodeSafetensors.
func encodeSafetensors(tensors map[string]testTensor, meta map[string]string) []byte {
	var ts []*Tensor
	for n, t := range tensors {
		ts = append(ts, NewF32Tensor(n, t.shape, t.data))
	}
	data, err := EncodeSafetensors(ts, meta)
	if err != nil {
		panic(err)
	}
	return data
}

// rawFile assembles a file from a literal header and body.
func rawFile(header string, body []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), body...)
}

func TestParseSafetensors(t *testing.T) {
	data := encodeSafetensors(map[string]testTensor{
		"a": {[]int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
		"b": {[]int64{}, []float32{0.5}},
	}, map[string]string{"ss_network_dim": "4"})
	s, err := ParseSafetensors(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Names(), ","); got != "a,b" {
		t.Fatalf("names %q", got)
	}
	if s.Metadata["ss_network_dim"] != "4" {
		t.Errorf("metadata %v", s.Metadata)
	}
	v, err := s.Tensors["a"].Float32s()
	if err != nil || len(v) != 6 || v[5] != 6 {
		t.Fatalf("a = %v, %v", v, err)
	}
	f16 := rawFile(`{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, []byte{0x00, 0x3c, 0x00, 0xc0})
	s, err = ParseSafetensors(f16)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Tensors["h"].Float32s(); err != nil || v[0] != 1 || v[1] != -2 {
		t.Fatalf("f16 = %v, %v", v, err)
	}
}

func TestParseSafetensorsErrors(t *testing.T) {
	huge := binary.LittleEndian.AppendUint64(nil, MaxHeaderSize+1)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "too short"},
		{"header limit", append(huge, make([]byte, 16)...), "exceeds"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 100), "past the end"},
		{"not json", rawFile(`{"a":`, nil), "not a JSON object"},
		{"not an object", rawFile(`[1]`, nil), "not a JSON object"},
		{"bad dtype", rawFile(`{"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "unknown dtype"},
		{"offsets count", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, make([]byte, 4)), "data_offsets must be"},
		{"offsets past end", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "outside"},
		{"offsets reversed", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, make([]byte, 4)), "outside"},
		{"negative offset", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), "outside"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 8)), "needs 8 bytes"},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "negative"},
		{"overflow", rawFile(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}`, make([]byte, 4)), "too large"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, make([]byte, 8)), "overlap"},
		{"bad metadata", rawFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSafetensors(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestTensorFloat32sRefusesIntegers(t *testing.T) {
	s, err := ParseSafetensors(rawFile(`{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Tensors["a"].Float32s(); err == nil {
		t.Fatal("I32 converted to floats")
	}
}

// FuzzParseSafetensors checks that no input panics and that every tensor
// of an accepted file lies inside the file with the size its shape needs.
func FuzzParseSafetensors(f *testing.F) {
	f.Add(encodeSafetensors(map[string]testTensor{
		"lora_unet_x.lora_down.weight": {[]int64{1, 2}, []float32{1, 2}},
		"lora_unet_x.lora_up.weight":   {[]int64{2, 1}, []float32{3, 4}},
		"lora_unet_x.alpha":            {[]int64{}, []float32{1}},
	}, map[string]string{"k": "v"}))
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}`, make([]byte, 2)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSafetensors(data)
		if err != nil {
			return
		}
		for _, tt := range s.Tensors {
			if int64(len(tt.Data)) != numel(tt.Shape)*int64(dtypeSize[tt.DType]) {
				t.Fatalf("tensor %q: %d bytes for shape %v of %s", tt.Name, len(tt.Data), tt.Shape, tt.DType)
			}
		}
		// Grouping into modules must not panic either.
		_, _ = FromSafetensors(s)
	})
}
