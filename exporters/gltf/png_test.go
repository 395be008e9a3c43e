package gltf

import (
	"bytes"
	"testing"
)

// TestCheckPNG checks which chunks cleaning drops and keeps, and that a
// clean PNG comes back unchanged.
func TestCheckPNG(t *testing.T) {
	base := encodePNG(t, testImage(8, 1))
	text := pngChunk("tEXt", []byte("seed\x0042"))
	itxt := pngChunk("iTXt", []byte("recipe\x00\x00\x00\x00\x00{}"))
	tests := []struct {
		name string
		in   []byte
		want []byte
	}{
		{"clean stays", base, base},
		{"text kept", withChunks(base, text, itxt), withChunks(base, text, itxt)},
		{"colour space dropped", withChunks(base, pngChunk("gAMA", []byte{0, 0, 0xb1, 0x8f}), pngChunk("sRGB", []byte{0}), pngChunk("cHRM", make([]byte, 32)), pngChunk("iCCP", []byte("x\x00\x00")), text), withChunks(base, text)},
		{"HDR chunks dropped", withChunks(base, pngChunk("cICP", []byte{9, 16, 0, 1}), pngChunk("mDCV", make([]byte, 24)), pngChunk("cLLI", make([]byte, 8))), base},
		{"aspect dropped", withChunks(base, pngChunk("pHYs", []byte{0, 0, 0, 1, 0, 0, 0, 2, 0})), base},
		{"animation dropped", withChunks(base, pngChunk("acTL", []byte{0, 0, 0, 1, 0, 0, 0, 0}), pngChunk("fcTL", make([]byte, 26))), base},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := checkPNG(tt.in, true)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("cleaned PNG has %d bytes, want %d", len(got), len(tt.want))
			}
			same, err := checkPNG(tt.in, false)
			if err != nil || !bytes.Equal(same, tt.in) {
				t.Errorf("checkPNG without cleaning changed the bytes (%v)", err)
			}
		})
	}
	// IHDR must come first.
	moved := append([]byte(pngSignature), text...)
	moved = append(moved, base[len(pngSignature):]...)
	if _, err := checkPNG(moved, true); err == nil || err.Error() != `the PNG is corrupt (first chunk is "tEXt", not IHDR)` {
		t.Errorf("PNG starting with tEXt: %v", err)
	}
	// A well-formed chunk list with an impossible header.
	bad := append([]byte{}, base...)
	copy(bad[8:], pngChunk("IHDR", make([]byte, 13)))
	if _, err := checkPNG(bad, true); err == nil || err.Error() != "the PNG header is invalid: png: invalid format: non-positive dimension" {
		t.Errorf("zero-size IHDR: %v", err)
	}
}

// FuzzEncode feeds arbitrary bytes as a texture: the exporter returns a
// file or an error, never panics, and what it accepts stays a PNG.
func FuzzEncode(f *testing.F) {
	base := encodePNG(f, testImage(4, 1))
	f.Add(base)
	f.Add(withChunks(base, pngChunk("gAMA", []byte{0, 0, 0xb1, 0x8f})))
	f.Add(base[:40])
	f.Add([]byte(pngSignature))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := Material{BaseColor: &Texture{PNG: data}, Preview: PreviewPlane}
		if _, err := EncodeGLB(m, nil); err != nil {
			return
		}
		files, err := EncodeGLTF("m", m, nil)
		if err != nil {
			t.Fatalf("EncodeGLB accepted what EncodeGLTF refuses: %v", err)
		}
		if _, err := checkPNG(files[2].Data, false); err != nil {
			t.Fatalf("the written image is not a complete PNG: %v", err)
		}
	})
}
