package imageops

import (
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseGPL(t *testing.T) {
	good := "GIMP Palette\r\nName: Test\nColumns: 4\n# comment\n\n  0   0   0\tBlack\n255 128 7 Orange glow\n"
	pal, err := ParseGPL(strings.NewReader(good), "test.gpl")
	if err != nil {
		t.Fatal(err)
	}
	want := Palette{{0, 0, 0, 255}, {255, 128, 7, 255}}
	if !slices.Equal(pal, want) {
		t.Errorf("got %v, want %v", pal, want)
	}
	tests := []struct {
		name, in, want string
	}{
		{"header", "JASC-PAL\n0 0 0\n", `p.gpl:1: not a GIMP palette: first line is "JASC-PAL", want "GIMP Palette"`},
		{"short line", "GIMP Palette\n1 2\n", `p.gpl:2: bad colour line "1 2": want "R G B [name]" with integers 0-255`},
		{"not integer", "GIMP Palette\n\n1 x 3\n", `p.gpl:3: bad colour line "1 x 3": "x" is not an integer; want "R G B [name]" with integers 0-255`},
		{"range", "GIMP Palette\n1 2 3\n1 256 3 Too bright\n", `p.gpl:3: bad colour line "1 256 3 Too bright": 256 is out of range 0-255`},
		{"negative", "GIMP Palette\n-1 2 3\n", `p.gpl:2: bad colour line "-1 2 3": -1 is out of range 0-255`},
		{"empty", "GIMP Palette\nName: none\n", `p.gpl: palette has no colours`},
		{"empty file", "", `p.gpl: palette has no colours`},
	}
	for _, tt := range tests {
		_, err := ParseGPL(strings.NewReader(tt.in), "p.gpl")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestParseHex(t *testing.T) {
	pal, err := ParseHex(strings.NewReader("\ufeff1a2B3c\r\n\n#FFFFFF\n"), "p.hex")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Palette{{0x1a, 0x2b, 0x3c, 255}, {255, 255, 255, 255}}); !slices.Equal(pal, want) {
		t.Errorf("got %v, want %v", pal, want)
	}
	tests := []struct{ in, want string }{
		{"000000\nfff\n", `p.hex:2: bad colour "fff": want 6 hex digits RRGGBB`},
		{"00000g\n", `p.hex:1: bad colour "00000g": want 6 hex digits RRGGBB`},
		{"\n \n", `p.hex: palette has no colours`},
	}
	for _, tt := range tests {
		_, err := ParseHex(strings.NewReader(tt.in), "p.hex")
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: error %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestLoadPalette(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hex := write("a.HEX", "ff0000\n")
	gpl := write("b.gpl", "GIMP Palette\n0 255 0\n")
	act := write("c.act", "")
	if p, err := LoadPalette(hex); err != nil || len(p) != 1 || p[0] != (color.NRGBA{255, 0, 0, 255}) {
		t.Errorf("hex: %v, %v", p, err)
	}
	if p, err := LoadPalette(gpl); err != nil || len(p) != 1 || p[0] != (color.NRGBA{0, 255, 0, 255}) {
		t.Errorf("gpl: %v, %v", p, err)
	}
	if _, err := LoadPalette(act); err == nil || !strings.Contains(err.Error(), "unknown format; use a GIMP .gpl file or a .hex file") {
		t.Errorf("act: %v", err)
	}
	if _, err := LoadPalette(filepath.Join(dir, "missing.gpl")); err == nil || !strings.Contains(err.Error(), "read palette:") {
		t.Errorf("missing: %v", err)
	}
	bad := write("bad.gpl", "GIMP Palette\n1 2\n")
	if _, err := LoadPalette(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":2: ") {
		t.Errorf("bad gpl error %v does not name the file and line", err)
	}
}

// fourColours is a 16×8 image made of exactly four colours.
func fourColours() (*Float, Palette) {
	cols := Palette{{10, 20, 30, 255}, {200, 40, 40, 255}, {40, 200, 90, 255}, {250, 250, 240, 255}}
	f := fill(16, 8, 3, func(x, y, c int) float64 {
		k := cols[(x/4+y/2)%4]
		return float64([]uint8{k.R, k.G, k.B}[c]) / 255
	})
	return f, cols
}

func TestMedianCutKeepsFewColours(t *testing.T) {
	img, cols := fourColours()
	for _, n := range []int{4, 8} {
		pal, err := MedianCut(img, n)
		if err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(pal)
		want := slices.Clone(cols)
		less := func(a, b color.NRGBA) int {
			return int(packRGB([3]uint8{a.R, a.G, a.B})) - int(packRGB([3]uint8{b.R, b.G, b.B}))
		}
		slices.SortFunc(got, less)
		slices.SortFunc(want, less)
		if !slices.Equal(got, want) {
			t.Errorf("n=%d: palette %v, want %v", n, pal, cols)
		}
		q, err := Quantize(img, pal, false)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, q, img); d != 0 {
			t.Errorf("n=%d: quantising a 4-colour image changed it by %v", n, d)
		}
	}
}

func TestMedianCutClusters(t *testing.T) {
	// Two noisy clusters around dark blue and light orange, plus
	// transparent pixels of a third colour that must not count.
	f := NewFloat(40, 40, 4)
	r := noise(40, 40, 3, 5)
	for i := 0; i < 1600; i++ {
		base := [3]float64{0.1, 0.15, 0.5}
		if i%2 == 1 {
			base = [3]float64{0.9, 0.6, 0.3}
		}
		for c := 0; c < 3; c++ {
			f.Pix[i*4+c] = float32(base[c] + 0.06*(float64(r.Pix[i*3+c])-0.5))
		}
		f.Pix[i*4+3] = 1
		if i%10 == 0 {
			f.Pix[i*4], f.Pix[i*4+1], f.Pix[i*4+2], f.Pix[i*4+3] = 0, 1, 0, 0
		}
	}
	pal, err := MedianCut(f, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := Palette{{26, 38, 128, 255}, {230, 153, 77, 255}}
	if len(pal) != 2 {
		t.Fatalf("palette %v", pal)
	}
	for i := range want {
		for _, d := range []int{int(pal[i].R) - int(want[i].R), int(pal[i].G) - int(want[i].G), int(pal[i].B) - int(want[i].B)} {
			if d < -3 || d > 3 {
				t.Errorf("palette %v, want about %v (darkest first)", pal, want)
			}
		}
	}
	again, _ := MedianCut(f, 2)
	if !slices.Equal(pal, again) {
		t.Error("median cut is not deterministic")
	}
}

func TestQuantizeNearest(t *testing.T) {
	pal := Palette{{0, 0, 0, 255}, {255, 0, 0, 255}, {0, 0, 255, 255}, {255, 255, 255, 255}}
	tests := []struct {
		in   [3]uint8
		want int
	}{
		{[3]uint8{20, 10, 5}, 0},
		{[3]uint8{200, 60, 30}, 1},
		{[3]uint8{30, 40, 170}, 2},
		{[3]uint8{180, 200, 190}, 3},
		{[3]uint8{128, 0, 0}, 1}, // 127.5 is the tie point: 128 is nearer red
		{[3]uint8{127, 0, 0}, 0},
	}
	img := NewFloat(len(tests), 1, 3)
	for i, tt := range tests {
		for c := 0; c < 3; c++ {
			img.Pix[i*3+c] = float32(tt.in[c]) / 255
		}
	}
	q, err := Quantize(img, pal, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		got := color.NRGBA{to8(q.Pix[i*3]), to8(q.Pix[i*3+1]), to8(q.Pix[i*3+2]), 255}
		if got != pal[tt.want] {
			t.Errorf("%v → %v, want %v", tt.in, got, pal[tt.want])
		}
	}
}

func TestQuantizeDither(t *testing.T) {
	gray := Constant(32, 32, 0.4, 0.4, 0.4, 1)
	gray.Pix[3] = 0 // one transparent pixel keeps its alpha and colour
	pal := Palette{{0, 0, 0, 255}, {255, 255, 255, 255}}
	plain, err := Quantize(gray, pal, false)
	if err != nil {
		t.Fatal(err)
	}
	dith, err := Quantize(gray, pal, true)
	if err != nil {
		t.Fatal(err)
	}
	mean := func(f *Float) float64 {
		s, n := 0.0, 0
		for i := 0; i < f.W*f.H; i++ {
			if f.Pix[i*4+3] > 0 {
				s += float64(f.Pix[i*4])
				n++
			}
		}
		return s / float64(n)
	}
	if m := mean(plain); m != 0 {
		t.Errorf("undithered 40%% gray → mean %v, want all black", m)
	}
	if m := mean(dith); !near(m, 0.4, 0.01) {
		t.Errorf("dithered 40%% gray → mean %v, want ≈ 0.4", m)
	}
	if dith.Pix[3] != 0 || dith.Pix[0] != 0.4 {
		t.Errorf("transparent pixel changed: %v", dith.Pix[:4])
	}
}

func TestQuantizeErrorsAndGray(t *testing.T) {
	if _, err := Quantize(Constant(2, 2, 0.5), nil, false); err == nil || err.Error() != "quantize: palette has no colours" {
		t.Errorf("error %v", err)
	}
	q, err := Quantize(Constant(2, 2, 0.5, 1), Palette{{255, 255, 255, 255}}, false)
	if err != nil || q.C != 4 || q.Pix[0] != 1 || q.Pix[3] != 1 {
		t.Errorf("gray+alpha: %v %v", q, err)
	}
	if _, err := MedianCut(Constant(2, 2, 0, 0, 0, 0), 4); err == nil || err.Error() != "median cut: image has no visible pixels" {
		t.Errorf("error %v", err)
	}
	if _, err := MedianCut(Constant(2, 2, 0), 0); err == nil || err.Error() != "median cut to 0 colours: want 1 to 65536" {
		t.Errorf("error %v", err)
	}
}

func TestThresholdAlpha(t *testing.T) {
	f := fill(4, 1, 4, func(x, y, c int) float64 {
		if c == 3 {
			return []float64{0, 0.49, 0.5, 0.9}[x]
		}
		return 0.7
	})
	g := ThresholdAlpha(f, 0.5)
	wantA := []float32{0, 0, 1, 1}
	wantC := []float32{0, 0, 0.7, 0.7}
	for x := 0; x < 4; x++ {
		if g.At(x, 0, 3) != wantA[x] || g.At(x, 0, 0) != wantC[x] {
			t.Errorf("x=%d: %v", x, g.Pix[x*4:x*4+4])
		}
	}
}
