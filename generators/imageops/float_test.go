package imageops

import (
	"image"
	"image/color"
	"testing"
)

func TestFromImageRoundTrip(t *testing.T) {
	nrgba := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(i * 10)
	}
	gray := image.NewGray(image.Rect(0, 0, 3, 2))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 40)
	}
	tests := []struct {
		name  string
		img   image.Image
		wantC int
	}{
		{"nrgba", nrgba, 4},
		{"nrgba sub-image", nrgba.SubImage(image.Rect(1, 1, 3, 2)), 4},
		{"gray", gray, 1},
		{"gray sub-image", gray.SubImage(image.Rect(1, 0, 3, 2)), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := FromImage(tt.img)
			if f.C != tt.wantC {
				t.Fatalf("C = %d, want %d", f.C, tt.wantC)
			}
			b := tt.img.Bounds()
			back := f.NRGBA()
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					want := color.NRGBAModel.Convert(tt.img.At(b.Min.X+x, b.Min.Y+y))
					if got := back.NRGBAAt(x, y); got != want {
						t.Errorf("(%d,%d) = %v, want %v", x, y, got, want)
					}
				}
			}
		})
	}
}

func TestFromImagePremultipliedAndGeneric(t *testing.T) {
	rgba := image.NewRGBA(image.Rect(0, 0, 1, 1))
	rgba.Set(0, 0, color.NRGBA{200, 100, 50, 128})
	pal := image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.NRGBA{10, 20, 30, 255}})
	tests := []struct {
		img  image.Image
		want color.NRGBA
	}{
		{rgba, color.NRGBAModel.Convert(rgba.At(0, 0)).(color.NRGBA)},
		{pal, color.NRGBA{10, 20, 30, 255}},
	}
	// Un-premultiplying rounds where color.NRGBAModel truncates, so allow
	// one level.
	for _, tt := range tests {
		got := FromImage(tt.img).NRGBA().NRGBAAt(0, 0)
		g := []uint8{got.R, got.G, got.B, got.A}
		w := []uint8{tt.want.R, tt.want.G, tt.want.B, tt.want.A}
		for i := range g {
			if d := int(g[i]) - int(w[i]); d < -1 || d > 1 {
				t.Errorf("%T: got %v, want %v", tt.img, got, tt.want)
				break
			}
		}
	}
}

func TestGray16Precision(t *testing.T) {
	g := image.NewGray16(image.Rect(0, 0, 2, 1))
	g.SetGray16(0, 0, color.Gray16{Y: 12345})
	g.SetGray16(1, 0, color.Gray16{Y: 65535})
	back := FromImage(g).Gray16()
	for x := 0; x < 2; x++ {
		if back.Gray16At(x, 0) != g.Gray16At(x, 0) {
			t.Errorf("x=%d: %v, want %v", x, back.Gray16At(x, 0), g.Gray16At(x, 0))
		}
	}
}

func TestPlanarRoundTrip(t *testing.T) {
	f := noise(5, 3, 3, 1)
	g, err := FromPlanar(5, 3, 3, f.Planar())
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, f, g); d != 0 {
		t.Errorf("round trip differs by %v", d)
	}
	if f.Planar()[5*3] != f.At(0, 0, 1) {
		t.Errorf("plane 1 does not start with channel 1 of pixel 0")
	}
	if _, err := FromPlanar(5, 3, 3, make([]float32, 7)); err == nil {
		t.Error("FromPlanar accepted a short slice")
	}
}

func TestChannels(t *testing.T) {
	rgb := Constant(1, 1, 1, 0, 0)
	tests := []struct {
		c    int
		want []float32
	}{
		{1, []float32{lumaR}},
		{2, []float32{lumaR, 1}},
		{3, []float32{1, 0, 0}},
		{4, []float32{1, 0, 0, 1}},
	}
	for _, tt := range tests {
		got := Channels(rgb, tt.c).Pix
		for i := range tt.want {
			if !near(float64(got[i]), float64(tt.want[i]), 1e-6) {
				t.Errorf("C=%d: %v, want %v", tt.c, got, tt.want)
				break
			}
		}
	}
}

func TestParseTile(t *testing.T) {
	tests := []struct {
		in      string
		want    Edges
		wantErr string
	}{
		{"", Edges{}, ""},
		{"none", Edges{}, ""},
		{"xy", Edges{Wrap, Wrap}, ""},
		{"x", Edges{X: Wrap}, ""},
		{"y", Edges{Y: Wrap}, ""},
		{"z", Edges{}, `tile "z": want xy, x, y or none`},
	}
	for _, tt := range tests {
		got, err := ParseTile(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseTile(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTile(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestEdgeIndex(t *testing.T) {
	tests := []struct {
		e       Edge
		i, n, w int
	}{
		{Clamp, -3, 5, 0}, {Clamp, 7, 5, 4}, {Clamp, 2, 5, 2},
		{Wrap, -1, 5, 4}, {Wrap, 5, 5, 0}, {Wrap, -11, 5, 4}, {Wrap, 12, 5, 2},
	}
	for _, tt := range tests {
		if got := tt.e.index(tt.i, tt.n); got != tt.w {
			t.Errorf("%v.index(%d, %d) = %d, want %d", tt.e, tt.i, tt.n, got, tt.w)
		}
	}
}

// TestFromImageFastPaths compares every fast path with the generic
// color-model conversion, at 16-bit precision.
func TestFromImageFastPaths(t *testing.T) {
	r := noise(5, 4, 4, 12)
	n64 := image.NewNRGBA64(image.Rect(0, 0, 5, 4))
	r64 := image.NewRGBA64(image.Rect(0, 0, 5, 4))
	pal := image.NewPaletted(image.Rect(0, 0, 5, 4), color.Palette{
		color.NRGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 128}, color.Gray{77},
	})
	for y := 0; y < 4; y++ {
		for x := 0; x < 5; x++ {
			p := r.Pix[(y*5+x)*4:]
			c := color.NRGBA64{uint16(p[0] * 65535), uint16(p[1] * 65535), uint16(p[2] * 65535), uint16(p[3] * 65535)}
			n64.SetNRGBA64(x, y, c)
			r64.Set(x, y, c)
			pal.SetColorIndex(x, y, uint8((x+y)%3))
		}
	}
	for _, img := range []image.Image{
		n64, r64, pal,
		n64.SubImage(image.Rect(1, 1, 4, 3)), r64.SubImage(image.Rect(2, 0, 5, 2)), pal.SubImage(image.Rect(1, 2, 5, 4)),
	} {
		f := FromImage(img)
		b := img.Bounds()
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				want := color.NRGBA64Model.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA64)
				w := []uint16{want.R, want.G, want.B, want.A}
				for c := 0; c < 4; c++ {
					// RGBA64 is premultiplied: un-premultiplying may differ
					// from the model's truncation by one 16-bit step.
					if d := int(to16(f.At(x, y, c))) - int(w[c]); d < -1 || d > 1 {
						t.Fatalf("%T %v (%d,%d) channel %d = %d, want %d", img, b, x, y, c, to16(f.At(x, y, c)), w[c])
					}
				}
			}
		}
	}
}
