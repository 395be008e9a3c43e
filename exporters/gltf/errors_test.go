package gltf

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	qgltf "github.com/qmuntal/gltf"
)

// TestBadInput checks that every kind of bad input is an error that says
// what is wrong and what to do, never a panic or a broken file.
func TestBadInput(t *testing.T) {
	good := encodePNG(t, testImage(4, 1))
	trunc := good[:len(good)-5]
	const idat = 8 + 25 // the IDAT chunk follows the signature and IHDR
	cut := good[:idat+8+4]
	badCRC := append([]byte{}, good...)
	badCRC[len(badCRC)-20] ^= 0xff
	src := fstest.MapFS{
		"ok.png":     {Data: good},
		"text.txt":   {Data: []byte("hello")},
		"sub/ok.png": {Data: good},
	}
	nan := func() float64 { var z float64; return z / z }()
	tests := []struct {
		name string
		file string // .gltf name; "" means "m"
		m    Material
		src  bool // pass src
		gltf string
		glb  string
	}{
		{
			name: "factor out of range",
			m:    Material{BaseColorFactor: [4]float64{1.5, 0, 0, 1}, Metallic: qgltf.Float(-0.1), Roughness: qgltf.Float(2)},
			gltf: `export glTF "m": base color factor[0] is 1.5: use a value in [0, 1]
metallic is -0.1: use a value in [0, 1]
roughness is 2: use a value in [0, 1]`,
			glb: `export GLB "material": base color factor[0] is 1.5: use a value in [0, 1]
metallic is -0.1: use a value in [0, 1]
roughness is 2: use a value in [0, 1]`,
		},
		{
			name: "not finite",
			m:    Material{Name: "lava", NormalScale: nan, EmissiveFactor: [3]float64{0, nan, 0}},
			gltf: `export glTF "m": normal scale is NaN: use a finite number
emissive factor[1] is NaN: use a finite number`,
			glb: `export GLB "lava": normal scale is NaN: use a finite number
emissive factor[1] is NaN: use a finite number`,
		},
		{
			name: "occlusion strength",
			m:    Material{OcclusionStrength: 3},
			gltf: `export glTF "m": occlusion strength is 3: use a value in [0, 1]`,
		},
		{
			name: "negative emissive strength",
			m:    Material{EmissiveFactor: [3]float64{1, 1, 1}, EmissiveStrength: -2},
			gltf: `export glTF "m": emissive strength is -2: use a value of 0 or more`,
		},
		{
			name: "emissive strength without emission",
			m:    Material{EmissiveStrength: 5},
			gltf: `export glTF "m": emissive strength is 5 but nothing emits: set an emissive texture or a non-zero emissive factor`,
		},
		{
			name: "unknown alpha mode",
			m:    Material{AlphaMode: "CUTOUT"},
			gltf: `export glTF "m": alpha mode "CUTOUT" is unknown: use "OPAQUE", "MASK" or "BLEND"`,
		},
		{
			name: "lower-case alpha mode",
			m:    Material{AlphaMode: "mask"},
			gltf: `export glTF "m": alpha mode "mask" is not upper case: use "MASK"`,
		},
		{
			name: "cutoff without mask",
			m:    Material{AlphaMode: AlphaBlend, AlphaCutoff: 0.4},
			gltf: `export glTF "m": alpha cutoff 0.4 only applies to alpha mode "MASK", not "BLEND": set the mode to "MASK" or drop the cutoff`,
		},
		{
			name: "negative cutoff",
			m:    Material{AlphaMode: AlphaMask, AlphaCutoff: -1},
			gltf: `export glTF "m": alpha cutoff is -1: use a value of 0 or more`,
		},
		{
			name: "bad repeat",
			m:    Material{Repeat: [2]float64{0, -2}},
			gltf: `export glTF "m": repeat[0] is 0: use a count greater than 0 (or leave both at 0 for once)
repeat[1] is -2: use a count greater than 0 (or leave both at 0 for once)`,
		},
		{
			name: "unknown preview",
			m:    Material{Preview: "teapot"},
			gltf: `export glTF "m": preview "teapot" is unknown: use "plane", "cube" or "sphere"`,
		},
		{
			name: "texture without source",
			m:    Material{BaseColor: &Texture{}},
			gltf: `export glTF "m": basecolor texture: has 0 sources: set exactly one of PNG, Image and File`,
		},
		{
			name: "texture with two sources",
			m:    Material{Normal: &Texture{PNG: good, File: "ok.png"}},
			gltf: `export glTF "m": normal texture: has 2 sources: set exactly one of PNG, Image and File`,
		},
		{
			name: "empty PNG",
			m:    Material{BaseColor: &Texture{PNG: []byte{}}},
			gltf: `export glTF "m": basecolor texture: the PNG is empty`,
		},
		{
			name: "not a PNG",
			m:    Material{BaseColor: &Texture{PNG: []byte("GIF89a....")}},
			gltf: `export glTF "m": basecolor texture: not a PNG file (the PNG signature is missing)`,
		},
		{
			name: "truncated PNG",
			m:    Material{Emissive: &Texture{PNG: trunc}},
			gltf: `export glTF "m": emissive texture: the PNG is truncated (no IEND chunk)`,
		},
		{
			name: "PNG cut inside a chunk",
			m:    Material{Emissive: &Texture{PNG: cut}},
			gltf: fmt.Sprintf(`export glTF "m": emissive texture: the PNG is truncated (chunk 1 claims %d bytes)`, binary.BigEndian.Uint32(good[idat:])),
		},
		{
			name: "corrupt PNG",
			m:    Material{Occlusion: &Texture{PNG: badCRC}},
			gltf: `export glTF "m": occlusion texture: the PNG is corrupt (bad CRC in "IDAT" chunk 1)`,
		},
		{
			name: "trailing bytes",
			m:    Material{BaseColor: &Texture{PNG: append(append([]byte{}, good...), "junk"...)}},
			gltf: `export glTF "m": basecolor texture: the PNG has 4 bytes after its IEND chunk`,
		},
		{
			name: "escaping file",
			m:    Material{BaseColor: &Texture{File: "../secret.png"}},
			src:  true,
			gltf: `export glTF "m": basecolor texture: file "../secret.png" is not a clean relative path inside the output folder: use forward slashes, no "..", no leading "/" and no drive letter`,
		},
		{
			name: "absolute file",
			m:    Material{BaseColor: &Texture{File: "/etc/passwd"}},
			src:  true,
			gltf: `export glTF "m": basecolor texture: file "/etc/passwd" is not a clean relative path inside the output folder: use forward slashes, no "..", no leading "/" and no drive letter`,
		},
		{
			name: "windows paths",
			m:    Material{BaseColor: &Texture{File: `C:/art/a.png`}, Normal: &Texture{File: `art\n.png`}},
			src:  true,
			gltf: `export glTF "m": basecolor texture: file "C:/art/a.png" is not a clean relative path inside the output folder: use forward slashes, no "..", no leading "/" and no drive letter
normal texture: file "art\\n.png" is not a clean relative path inside the output folder: use forward slashes, no "..", no leading "/" and no drive letter`,
		},
		{
			name: "missing file",
			m:    Material{BaseColor: &Texture{File: "sub/missing.png"}},
			src:  true,
			gltf: `export glTF "m": basecolor texture: read sub/missing.png: open sub/missing.png: file does not exist`,
		},
		{
			name: "file is not a PNG",
			m:    Material{BaseColor: &Texture{File: "text.txt"}},
			src:  true,
			gltf: `export glTF "m": basecolor texture: text.txt: not a PNG file (the PNG signature is missing)`,
		},
		{
			name: "file without a folder",
			m:    Material{BaseColor: &Texture{File: "ok.png"}},
			gltf: `export glTF "m": basecolor texture: file "ok.png" cannot be read: the exporter was given no folder to read it from`,
		},
		{
			name: "texture name with a path",
			m:    Material{BaseColor: &Texture{PNG: good, Name: "../x.png"}},
			gltf: `export glTF "m": basecolor texture: name: "../x.png" contains a path separator or colon: give a plain file name`,
		},
		{
			name: "texture name not png",
			m:    Material{BaseColor: &Texture{PNG: good, Name: "albedo.jpg"}},
			gltf: `export glTF "m": basecolor texture: name "albedo.jpg" does not end in .png: PNG files need the .png extension`,
		},
		{
			name: "texture names collide",
			m:    Material{BaseColor: &Texture{PNG: good, Name: "a.png"}, Normal: &Texture{Image: testImage(4, 2), Name: "A.png"}},
			gltf: `export glTF "m": normal texture: file name "A.png" is already used by basecolor texture: give the texture another name`,
		},
		{
			name: "texture name overwrites referenced file",
			m:    Material{BaseColor: &Texture{File: "ok.png"}, Normal: &Texture{Image: testImage(4, 2), Name: "ok.png"}},
			src:  true,
			gltf: `export glTF "m": normal texture: file name "ok.png" is already used by referenced file ok.png: give the texture another name`,
		},
		{
			name: "texture names beside the document are fine",
			m:    Material{BaseColor: &Texture{PNG: good, Name: "m.bin.png"}, Normal: &Texture{Image: testImage(4, 2), Name: "M.gltf.png"}},
			gltf: ``,
		},
		{
			name: "bad file name",
			file: "a/b",
			m:    Material{},
			gltf: `export glTF "a/b": file name: "a/b" contains a path separator or colon: give a plain file name`,
		},
		{
			name: "blank file name is a name",
			file: " ",
			m:    Material{},
			gltf: ``,
		},
	}
	if _, err := EncodeGLTF("", Material{}, nil); err == nil || err.Error() != `export glTF "": file name: the name is empty` {
		t.Errorf("EncodeGLTF with an empty name: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fsys = fstest.MapFS(nil)
			if tt.src {
				fsys = src
			}
			name := tt.file
			if name == "" {
				name = "m"
			}
			_, err := EncodeGLTF(name, tt.m, fsysOrNil(fsys))
			if tt.gltf == "" {
				if err != nil {
					t.Errorf("EncodeGLTF: %v, want success", err)
				}
			} else if err == nil || err.Error() != tt.gltf {
				t.Errorf("EncodeGLTF error:\n%v\nwant:\n%s", err, tt.gltf)
			}
			if tt.glb != "" {
				_, err := EncodeGLB(tt.m, fsysOrNil(fsys))
				if err == nil || err.Error() != tt.glb {
					t.Errorf("EncodeGLB error:\n%v\nwant:\n%s", err, tt.glb)
				}
			}
		})
	}
}

// fsysOrNil turns a nil MapFS into a nil interface, as a caller without a
// folder would pass.
func fsysOrNil(m fstest.MapFS) fs.FS {
	if m == nil {
		return nil
	}
	return m
}

// TestWriteUnwritable checks that a folder that cannot be created is an
// error naming it.
func TestWriteUnwritable(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := WriteGLTF(filepath.Join(blocker, "out"), "m", Material{})
	if err == nil {
		t.Fatal("WriteGLTF into a path under a file succeeded")
	}
	t.Log(err)
	err = WriteGLB(filepath.Join(blocker, "out", "m.glb"), Material{})
	if err == nil {
		t.Fatal("WriteGLB into a path under a file succeeded")
	}
	t.Log(err)
}
