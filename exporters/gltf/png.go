package gltf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image/png"
)

// pngSignature starts every PNG file.
const pngSignature = "\x89PNG\r\n\x1a\n"

// dropChunk reports whether cleanPNG removes a chunk type. glTF fixes the
// colour space of each texture slot, and the Khronos validator warns about
// images that carry their own colour-space, pixel-aspect or animation
// information, because engines would either ignore it or apply it twice.
func dropChunk(typ string) bool {
	switch typ {
	case "gAMA", "cHRM", "iCCP", "sRGB", // colour space
		"cICP", "mDCV", "cLLI", // PNG third edition HDR colour space
		"pHYs",                 // pixel aspect and density
		"acTL", "fcTL", "fdAT": // APNG animation
		return true
	}
	return false
}

// checkPNG walks data's chunks and verifies it is a complete PNG: the
// signature, IHDR first, every chunk's length and CRC, IEND last, and a
// header the standard decoder accepts. With clean set it returns a copy
// without the chunks dropChunk names; otherwise it returns data unchanged.
func checkPNG(data []byte, clean bool) ([]byte, error) {
	if len(data) == 0 {
		return nil, errors.New("the PNG is empty")
	}
	if !bytes.HasPrefix(data, []byte(pngSignature)) {
		return nil, errors.New("not a PNG file (the PNG signature is missing)")
	}
	var out []byte
	if clean {
		out = make([]byte, 0, len(data))
		out = append(out, pngSignature...)
	}
	rest := data[len(pngSignature):]
	for i := 0; ; i++ {
		if len(rest) < 12 {
			return nil, errors.New("the PNG is truncated (no IEND chunk)")
		}
		n := binary.BigEndian.Uint32(rest)
		if n > 1<<31-1 || uint64(n)+12 > uint64(len(rest)) {
			return nil, fmt.Errorf("the PNG is truncated (chunk %d claims %d bytes)", i, n)
		}
		chunk := rest[:12+n]
		typ := string(chunk[4:8])
		if crc32.ChecksumIEEE(chunk[4:8+n]) != binary.BigEndian.Uint32(chunk[8+n:]) {
			return nil, fmt.Errorf("the PNG is corrupt (bad CRC in %q chunk %d)", typ, i)
		}
		if i == 0 && typ != "IHDR" {
			return nil, fmt.Errorf("the PNG is corrupt (first chunk is %q, not IHDR)", typ)
		}
		if clean && !dropChunk(typ) {
			out = append(out, chunk...)
		}
		rest = rest[12+n:]
		if typ == "IEND" {
			break
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("the PNG has %d bytes after its IEND chunk", len(rest))
	}
	if _, err := png.DecodeConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("the PNG header is invalid: %w", err)
	}
	if !clean {
		return data, nil
	}
	return out, nil
}
