package imageops

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"image"
	"image/png"
	"reflect"
	"testing"
)

func sampleRecipe() Recipe {
	return Recipe{
		Prompt:         "mossy cobblestone, wet — 苔むした石畳",
		NegativePrompt: "blurry, text",
		Seed:           -1234567890123,
		Model:          "sha256:0f1e2d",
		Scheduler:      "euler_a",
		Steps:          30,
		Guidance:       7.5,
		Version:        "0.3.0",
		Extra:          map[string]string{"kind": "texture", "tile": "xy", "strength": "0.55"},
	}
}

// chunkTypes lists the chunk types of a PNG stream with their keywords
// for text chunks.
func chunkTypes(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for off := 8; off < len(b); {
		n := int(binary.BigEndian.Uint32(b[off:]))
		typ := string(b[off+4 : off+8])
		if typ == "tEXt" || typ == "iTXt" {
			k, _, _ := bytes.Cut(b[off+8:off+8+n], []byte{0})
			typ += " " + string(k)
		}
		out = append(out, typ)
		off += 12 + n
	}
	return out
}

func TestEncodePNGRoundTrip(t *testing.T) {
	img := noise(7, 5, 4, 1).NRGBA()
	rec := sampleRecipe()
	var a, b bytes.Buffer
	if err := EncodePNG(&a, img, &rec); err != nil {
		t.Fatal(err)
	}
	if err := EncodePNG(&b, img, &rec); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("two encodings of the same image and recipe differ")
	}
	got, err := ReadRecipe(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("read back %+v, want %+v", got, rec)
	}
	// image/png verifies every chunk's CRC, ours included.
	dec, err := png.Decode(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatalf("image/png rejects the file: %v", err)
	}
	if !reflect.DeepEqual(dec, img) {
		t.Error("pixels changed")
	}
	want := []string{"IHDR",
		"iTXt kiln:prompt", "iTXt kiln:negative_prompt", "iTXt kiln:seed", "iTXt kiln:model",
		"iTXt kiln:scheduler", "iTXt kiln:steps", "iTXt kiln:guidance", "iTXt kiln:version",
		"iTXt kiln:kind", "iTXt kiln:strength", "iTXt kiln:tile",
		"iTXt parameters", "IDAT", "IEND"}
	if got := chunkTypes(t, a.Bytes()); !reflect.DeepEqual(got, want) {
		t.Errorf("chunks %v\nwant   %v", got, want)
	}
}

func TestParametersText(t *testing.T) {
	rec := sampleRecipe()
	rec.Prompt = "stone, wall"
	want := "stone, wall\nNegative prompt: blurry, text\n" +
		`Steps: 30, Sampler: euler_a, CFG scale: 7.5, Seed: -1234567890123, Size: 64x32, Model hash: "sha256:0f1e2d", Version: kiln 0.3.0`
	if got := rec.Parameters(64, 32); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// A Latin-1 recipe goes into a tEXt chunk, read back the same.
	rec.Prompt = "pierre taillée"
	var buf bytes.Buffer
	if err := EncodePNG(&buf, image.NewGray16(image.Rect(0, 0, 64, 32)), &rec); err != nil {
		t.Fatal(err)
	}
	types := chunkTypes(t, buf.Bytes())
	if types[len(types)-3] != "tEXt parameters" {
		t.Errorf("parameters chunk: %v", types)
	}
	text, err := ReadText(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if text["parameters"] != rec.Parameters(64, 32) {
		t.Errorf("parameters read back %q", text["parameters"])
	}
	if dec, err := png.Decode(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	} else if _, ok := dec.(*image.Gray16); !ok {
		t.Errorf("16-bit gray decoded as %T", dec)
	}
}

func TestParseParameters(t *testing.T) {
	in := "a castle on a hill,\nsunset\nNegative prompt: ugly\nlowres\n" +
		`Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 42, Size: 512x768, Model hash: 6ce0161689, Model: "v1-5, pruned", Lora hashes: "a: 1, b: 2", Version: v1.9.0`
	got, err := ParseParameters(in)
	if err != nil {
		t.Fatal(err)
	}
	want := Recipe{
		Prompt: "a castle on a hill,\nsunset", NegativePrompt: "ugly\nlowres",
		Steps: 25, Scheduler: "DPM++ 2M Karras", Guidance: 6, Seed: 42, Model: "6ce0161689", Version: "v1.9.0",
		Extra: map[string]string{"Size": "512x768", "Model": "v1-5, pruned", "Lora hashes": "a: 1, b: 2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// A recipe parsed from its own parameters text comes back whole
	// (Extra aside: only Size is in that text).
	rec := sampleRecipe()
	back, err := ParseParameters(rec.Parameters(8, 8))
	if err != nil {
		t.Fatal(err)
	}
	rec.Extra = map[string]string{"Size": "8x8"}
	if !reflect.DeepEqual(back, rec) {
		t.Errorf("round trip %+v\nwant       %+v", back, rec)
	}
	bad := []struct{ in, want string }{
		{"p\nSteps: x", `parameters: Steps "x": not an integer`},
		{"p\nSteps: 1, Seed", `parameters: settings "Seed": want "Key: value"`},
		{"p\nSteps: 1, Model: \"open", `parameters: setting Model: unterminated quoted value`},
	}
	for _, tt := range bad {
		if _, err := ParseParameters(tt.in); err == nil || err.Error() != tt.want {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

// pngWith returns a 1×1 PNG with extra chunks inserted after IHDR.
func pngWith(t *testing.T, chunks func(*bytes.Buffer)) []byte {
	t.Helper()
	var plain bytes.Buffer
	if err := EncodePNG(&plain, image.NewGray(image.Rect(0, 0, 1, 1)), nil); err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	chunks(&extra)
	b := plain.Bytes()
	return append(append(append([]byte{}, b[:33]...), extra.Bytes()...), b[33:]...)
}

func zlibBytes(s string) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestReadTextCompressedAndForeign(t *testing.T) {
	file := pngWith(t, func(b *bytes.Buffer) {
		writeChunk(b, "zTXt", append([]byte("Comment\x00\x00"), zlibBytes("gepackt")...))
		writeChunk(b, "iTXt", append([]byte("kiln:prompt\x00\x01\x00en\x00\x00"), zlibBytes("ünïcode prompt")...))
		writeChunk(b, "tEXt", []byte("kiln:prompt\x00second copy is ignored"))
		writeChunk(b, "tEXt", []byte("kiln:seed\x0099"))
	})
	text, err := ReadText(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if text["Comment"] != "gepackt" || text["kiln:prompt"] != "ünïcode prompt" || text["kiln:seed"] != "99" {
		t.Errorf("text %q", text)
	}
	rec, err := ReadRecipe(bytes.NewReader(file))
	if err != nil || rec.Prompt != "ünïcode prompt" || rec.Seed != 99 {
		t.Errorf("recipe %+v, %v", rec, err)
	}
}

func TestReadRecipeErrors(t *testing.T) {
	var plain bytes.Buffer
	if err := EncodePNG(&plain, image.NewGray(image.Rect(0, 0, 2, 2)), nil); err != nil {
		t.Fatal(err)
	}
	var good bytes.Buffer
	rec := sampleRecipe()
	if err := EncodePNG(&good, image.NewGray(image.Rect(0, 0, 2, 2)), &rec); err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good.Bytes())
	corrupt[33+8+len("kiln:prompt")+5+2] ^= 0xff // a byte of the prompt text
	badSeed := pngWith(t, func(b *bytes.Buffer) { writeChunk(b, "tEXt", []byte("kiln:seed\x00twelve")) })
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"not png", []byte("GIF89a..."), "read recipe: not a PNG file (bad signature)"},
		{"corrupt", corrupt, "read recipe: png iTXt chunk at byte 33: CRC mismatch (file is corrupt)"},
		{"truncated", good.Bytes()[:60], "read recipe: png iTXt chunk at byte 33: truncated: unexpected EOF"},
		{"bad seed", badSeed, `read recipe: kiln:seed "twelve": not an integer`},
		{"none", plain.Bytes(), "read recipe: " + ErrNoRecipe.Error()},
	}
	for _, tt := range tests {
		_, err := ReadRecipe(bytes.NewReader(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := ReadRecipe(bytes.NewReader(plain.Bytes())); !errors.Is(err, ErrNoRecipe) {
		t.Error("missing recipe error does not wrap ErrNoRecipe")
	}
}

func TestEncodePNGRejectsBadRecipe(t *testing.T) {
	img := image.NewGray(image.Rect(0, 0, 1, 1))
	tests := []struct {
		edit func(*Recipe)
		want string
	}{
		{func(r *Recipe) { r.Extra = map[string]string{"bad key": "x"} }, `encode png: recipe key "bad key": want 1-74 letters, digits, '_', '-' or '.'`},
		{func(r *Recipe) { r.Extra = map[string]string{"seed": "1"} }, `encode png: recipe key "seed": set the Recipe field instead of Extra`},
		{func(r *Recipe) { r.Prompt = "bad \xff utf8" }, "encode png: recipe prompt: not valid UTF-8"},
	}
	for _, tt := range tests {
		rec := sampleRecipe()
		tt.edit(&rec)
		var b bytes.Buffer
		if err := EncodePNG(&b, img, &rec); err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}
