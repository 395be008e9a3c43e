package pipeline

import (
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	type inner struct {
		Z int    `json:"z"`
		A string `json:"a"`
	}
	type params struct {
		Steps  int               `json:"steps"`
		Prompt string            `json:"prompt"`
		Size   [2]int            `json:"size"`
		Inner  inner             `json:"inner"`
		Tags   []string          `json:"tags"`
		Extra  map[string]any    `json:"extra,omitempty"`
		Empty  map[string]string `json:"empty"`
	}
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, "null"},
		{"scalar", 1.5, "1.5"},
		{"string with escapes", "a\"b\\c<", `"a\"b\\c\u003c"`},
		{"struct fields sorted at every level",
			params{Steps: 20, Prompt: "moss, stone", Size: [2]int{512, 512}, Inner: inner{Z: 1, A: "}{"}, Tags: []string{"b", "a"},
				Extra: map[string]any{"y": []any{map[string]any{"q": 1, "p": 2}}}, Empty: map[string]string{}},
			`{"empty":{},"extra":{"y":[{"p":2,"q":1}]},"inner":{"a":"}{","z":1},"prompt":"moss, stone","size":[512,512],"steps":20,"tags":["b","a"]}`},
		{"empty array and nested empties", map[string]any{"a": []any{}, "b": []any{[]any{}, map[string]any{}}}, `{"a":[],"b":[[],{}]}`},
		{"keys with escapes", map[string]int{"b\"": 1, "a": 2}, `{"a":2,"b\"":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicalJSON(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON %s", got)
			}
		})
	}
	// A struct and a map with the same content give the same bytes.
	a, _ := canonicalJSON(inner{Z: 3, A: "x"})
	b, _ := canonicalJSON(map[string]any{"a": "x", "z": 3})
	if string(a) != string(b) {
		t.Errorf("struct %s != map %s", a, b)
	}
	if _, err := canonicalJSON(map[string]any{"f": func() {}}); err == nil {
		t.Error("unencodable params accepted")
	}
}

// dg is the digest of s, for tests.
func dg(s string) digest { return sha256.Sum256([]byte(s)) }

func TestDiffParts(t *testing.T) {
	prev := &keyParts{Kind: "k", Version: "1", Params: json.RawMessage(`{"a":1,"b":{"c":[1,2,3]},"seed":12345678901234567890,"gone":true}`),
		Models: []string{"m1"}, Files: []fileInput{{"x.png", dg("h1")}, {"y.png", dg("h2")}},
		Deps: []depInput{{ID: "d1", Outputs: []namedBlob{{"image", dg("o1")}, {"mask", dg("o2")}}}, {ID: "d2"}}}
	cur := &keyParts{Kind: "k", Version: "2", Params: json.RawMessage(`{"a":1,"b":{"c":[1,5,3]},"seed":12345678901234567891,"new":"v"}`),
		Models: []string{"m1", "m2"}, Files: []fileInput{{"x.png", dg("h9")}, {"z.png", dg("h3")}},
		Deps: []depInput{{ID: "d1", Outputs: []namedBlob{{"image", dg("o1")}, {"mask", dg("o7")}}}, {ID: "d3"}}}
	want := []string{
		"implementation version changed 1 -> 2",
		"params.b.c[1] changed 2 -> 5",
		"params.gone removed (was true)",
		`params.new added ("v")`,
		"params.seed changed 12345678901234567890 -> 12345678901234567891",
		"model added (fingerprint m2)",
		"source file x.png changed",
		"source file z.png added",
		"source file y.png removed",
		"dependency d1 output changed (mask)",
		"dependency d3 added",
		"dependency d2 removed",
	}
	if got := diffParts(prev, cur); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

func TestStateCodec(t *testing.T) {
	h := func(c byte) digest {
		var d digest
		for i := range d {
			d[i] = c
		}
		return d
	}
	s := newState()
	s.Stages["a:gen"] = &stageState{Key: h('a'), Outputs: outputSet{{Name: "image", blobRef: blobRef{h('b'), 12}}}, Notes: map[string]string{"provider": "cpu"}}
	s.Stages["b"] = &stageState{Key: h('c')}
	s.Files["src/x.png"] = statRecord{Size: -1, Mtime: 1700000000123456789, Ctime: -5, Ino: 42, SHA256: h('d')}
	s.Outputs["a/gen.png"] = outputRecord{Stage: "a:gen", Name: "image", statRecord: statRecord{Size: 12, Mtime: 1, SHA256: h('b')}}
	s.Blobs[h('b')] = statRecord{Size: 12, Mtime: 2, Ctime: 3, Ino: 4}
	data, err := encodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeState(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, s)
	}
	again, _ := encodeState(back)
	if string(again) != string(data) {
		t.Error("encoding is not deterministic")
	}
	// Every truncation and every flipped byte is detected, never a panic.
	for i := range len(data) {
		if _, err := decodeState(data[:i]); err == nil {
			t.Fatalf("truncated at %d: accepted", i)
		}
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if _, err := decodeState(bad); err == nil {
			t.Fatalf("flipped byte %d: accepted", i)
		}
	}
	if _, err := encodeState(&buildState{Stages: map[string]*stageState{"x": {}}}); err == nil {
		t.Error("missing hash encoded")
	}
}

func FuzzDecodeState(f *testing.F) {
	s := newState()
	s.Stages["a"] = &stageState{Key: dg("a")}
	data, _ := encodeState(s)
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeState(data) // must not panic
	})
}

func TestDigestText(t *testing.T) {
	d := dg("x")
	text, _ := d.MarshalText()
	var back digest
	if err := back.UnmarshalText(text); err != nil || back != d || d.String() != string(text) {
		t.Errorf("round trip %s -> %s (%v)", text, back, err)
	}
	for _, bad := range []string{"", "abc", string(text[:63]) + "g"} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
