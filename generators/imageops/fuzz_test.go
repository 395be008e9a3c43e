package imageops

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

// FuzzParsePalette feeds arbitrary bytes to both palette readers (GIMP
// .gpl and .hex), as pixel_art.palette files are. They must never panic;
// every error must name the file, and every palette they return must have
// colours, all opaque.
func FuzzParsePalette(f *testing.F) {
	for _, s := range []string{
		"GIMP Palette\nName: pico\nColumns: 4\n# comment\n  0   0   0 black\n255 241 232\tcream\n",
		"\ufeffGIMP Palette\r\n1 2 3\r\n",
		"GIMP Palette\n256 0 0\n",
		"000000\n#1D2B53\n\n7e2553\n",
		"#zzzzzz\n",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func(*bytes.Reader, string) (Palette, error){
			func(r *bytes.Reader, n string) (Palette, error) { return ParseGPL(r, n) },
			func(r *bytes.Reader, n string) (Palette, error) { return ParseHex(r, n) },
		} {
			pal, err := parse(bytes.NewReader(data), "palettes/fuzz.pal")
			if err != nil {
				if pal != nil || !strings.HasPrefix(err.Error(), "palettes/fuzz.pal") {
					t.Fatalf("palette %v with error %q (errors start with the file name)", pal, err)
				}
				continue
			}
			if len(pal) == 0 {
				t.Fatal("empty palette without an error")
			}
			for i, c := range pal {
				if c.A != 255 {
					t.Fatalf("colour %d is %v, not opaque", i, c)
				}
			}
		}
	})
}

// FuzzReadRecipe feeds arbitrary bytes to the PNG text-chunk reader behind
// `kiln inspect recipe` (which reads images made by any tool). It must
// never panic, and a recipe it accepts must be one EncodePNG writes back
// and ReadRecipe reads the same.
func FuzzReadRecipe(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	var b bytes.Buffer
	rec := Recipe{Prompt: "mossy stone", Seed: 7, Steps: 4}
	if err := EncodePNG(&b, img, &rec); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	b.Reset()
	if err := png.Encode(&b, img); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := ReadRecipe(bytes.NewReader(data))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var out bytes.Buffer
		if err := EncodePNG(&out, img, &rec); err != nil {
			// Recipes from other tools may hold what kiln does not
			// write (EncodePNG validates); that is an error, not a
			// panic.
			return
		}
		if _, err := ReadRecipe(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("recipe written by EncodePNG does not read back: %v", err)
		}
	})
}
