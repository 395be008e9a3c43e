package generators

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

// fuzzMaxSize bounds the images the fuzz targets decode, so one input
// costs at most a megabyte of pixels.
const fuzzMaxSize = 512

// pngHeader returns a PNG signature and IHDR chunk claiming w x h RGBA
// pixels, followed by an empty IDAT and IEND: a header that lies about a
// huge image.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		b.Write(n[:])
		b.WriteString(typ)
		b.Write(data)
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		binary.BigEndian.PutUint32(n[:], crc.Sum32())
		b.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.Bytes()
}

// imageSeeds are valid and hostile PNG and JPEG files of several
// colour models.
func imageSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	enc := func(img image.Image) {
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
		b.Reset()
		if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 50}); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	r := image.Rect(0, 0, 5, 3)
	rgba := image.NewNRGBA(r)
	gray := image.NewGray16(r)
	pal := image.NewPaletted(r, color.Palette{color.Black, color.White, color.NRGBA{255, 0, 0, 128}})
	for y := 0; y < 3; y++ {
		for x := 0; x < 5; x++ {
			rgba.SetNRGBA(x, y, color.NRGBA{uint8(x * 50), uint8(y * 80), 7, uint8(255 - x*40)})
			gray.SetGray16(x, y, color.Gray16{uint16(x * y * 4000)})
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	enc(rgba)
	enc(gray)
	enc(pal)
	enc(image.NewRGBA64(image.Rect(0, 0, 1, 1)))
	seeds = append(seeds, pngHeader(100000, 100000), pngHeader(0, 7), pngHeader(fuzzMaxSize, 1))
	return seeds
}

// FuzzDecodeImage feeds arbitrary bytes to the PNG/JPEG reader behind
// kind: image sources, exemplars and img2img inputs. It must never panic,
// never return an image larger than the limit, and every error must name
// the file.
func FuzzDecodeImage(f *testing.F) {
	for _, s := range imageSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeImage(bytes.NewReader(data), "art/fuzz.png", fuzzMaxSize, nil)
		if err != nil {
			if img != nil {
				t.Fatal("image and error both returned")
			}
			if !strings.Contains(err.Error(), "art/fuzz.png") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		b := img.Bounds()
		if b.Min != (image.Point{}) || b.Dx() <= 0 || b.Dy() <= 0 || b.Dx() > fuzzMaxSize || b.Dy() > fuzzMaxSize {
			t.Fatalf("decoded bounds %v outside 1..%d", b, fuzzMaxSize)
		}
		if len(img.Pix) < 4*b.Dx()*b.Dy() {
			t.Fatalf("%d pixel bytes for %v", len(img.Pix), b)
		}
	})
}

// FuzzDecodeAnimation feeds arbitrary bytes to the sprite-sheet metadata
// reader. It must never panic; what it accepts must pass its own checks
// and encode again.
func FuzzDecodeAnimation(f *testing.F) {
	f.Add([]byte(`{"version":1,"name":"fx/a","fps":12,"loop":true,"frame_width":8,"frame_height":8,` +
		`"sheet":{"file":"a.png","output":"sheet.png","columns":2,"rows":1,"width":16,"height":8},` +
		`"frames":[{"name":"f0","file":"a/f0.png","x":0,"y":0},{"name":"f1","file":"a/f1.png","x":8,"y":0}]}`))
	f.Add([]byte(`{"version":1,"frames":[{"name":"a","x":-1}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAnimation(bytes.NewReader(data))
		if err != nil {
			if a != nil || err.Error() == "" {
				t.Fatalf("animation %v with error %q", a, err)
			}
			return
		}
		if err := a.check(); err != nil {
			t.Fatalf("accepted metadata fails its check: %v", err)
		}
		out, err := a.encode()
		if err != nil {
			t.Fatalf("accepted metadata does not encode: %v", err)
		}
		if _, err := DecodeAnimation(bytes.NewReader(out)); err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v\n%s", err, out)
		}
	})
}
