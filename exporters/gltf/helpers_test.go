package gltf

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"
)

// testImage returns a size×size image whose pixels follow a pattern seeded
// by seed, so images for different slots differ.
func testImage(size, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(x*37 + seed*11),
				G: uint8(y*53 + seed*7),
				B: uint8((x ^ y) * 19 * (seed + 1)),
				A: 255,
			})
		}
	}
	return img
}

// ormImage packs ambient occlusion (R), roughness (G) and metallic (B).
func ormImage(size int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			img.SetNRGBA(x, y, color.NRGBA{R: uint8(200 + x), G: uint8(100 + y*4), B: uint8((x / 4 % 2) * 255), A: 255})
		}
	}
	return img
}

// encodePNG encodes img with the standard encoder.
func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pngChunk encodes one PNG chunk with its CRC.
func pngChunk(typ string, payload []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	c = append(c, typ...)
	c = append(c, payload...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// withChunks inserts chunks right after data's IHDR chunk.
func withChunks(data []byte, chunks ...[]byte) []byte {
	const ihdrEnd = 8 + 12 + 13
	out := append([]byte{}, data[:ihdrEnd]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, data[ihdrEnd:]...)
}
