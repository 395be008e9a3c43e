package imageops

import (
	"image"
	"image/color"
	"reflect"
	"testing"
)

func TestSheetGrid(t *testing.T) {
	tests := []struct{ n, columns, cols, rows int }{
		{8, 4, 4, 2}, {9, 4, 4, 3}, {3, 8, 3, 1}, {1, 1, 1, 1}, {0, 4, 0, 0}, {5, 0, 0, 0},
	}
	for _, tt := range tests {
		if c, r := SheetGrid(tt.n, tt.columns); c != tt.cols || r != tt.rows {
			t.Errorf("SheetGrid(%d, %d) = %d, %d; want %d, %d", tt.n, tt.columns, c, r, tt.cols, tt.rows)
		}
	}
}

func TestSpriteSheet(t *testing.T) {
	var frames []*Float
	for i := 0; i < 5; i++ {
		frames = append(frames, Constant(4, 3, float32(i+1)/10, 0, 0, 1))
	}
	frames[2] = Constant(4, 3, 0.3, 0.3, 0.3) // RGB frame among RGBA ones
	sheet, err := SpriteSheet(frames, 3)
	if err != nil {
		t.Fatal(err)
	}
	if sheet.W != 12 || sheet.H != 6 || sheet.C != 4 {
		t.Fatalf("sheet %dx%dx%d, want 12x6x4", sheet.W, sheet.H, sheet.C)
	}
	for i := 0; i < 6; i++ {
		x, y := (i%3)*4, (i/3)*3
		for dy := 0; dy < 3; dy++ {
			for dx := 0; dx < 4; dx++ {
				got := sheet.Pix[((y+dy)*12+x+dx)*4:][:4]
				var want []float32
				switch {
				case i == 5:
					want = []float32{0, 0, 0, 0} // unused cell: transparent
				case i == 2:
					want = []float32{0.3, 0.3, 0.3, 1}
				default:
					want = []float32{float32(i+1) / 10, 0, 0, 1}
				}
				if !reflect.DeepEqual([]float32(got), want) {
					t.Fatalf("cell %d pixel (%d,%d) = %v, want %v", i, dx, dy, got, want)
				}
			}
		}
	}
	errs := []struct {
		frames  []*Float
		columns int
		want    string
	}{
		{nil, 2, "sprite sheet: no frames"},
		{frames, 0, "sprite sheet: columns 0: want at least 1"},
		{[]*Float{Constant(4, 3, 0), Constant(4, 4, 0)}, 2, "sprite sheet: frame 1 is 4x4, frame 0 is 4x3; all frames must have one size"},
	}
	for _, tt := range errs {
		if _, err := SpriteSheet(tt.frames, tt.columns); err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}

func TestDrawTextGlyphs(t *testing.T) {
	c := color.NRGBA{255, 255, 255, 255}
	for _, scale := range []int{1, 3} {
		img := image.NewNRGBA(image.Rect(0, 0, 40, 40))
		drawText(img, 2, 1, "1-", scale, c)
		// "1" has 10 lit font pixels (1+2+1+1+1+1+3), "-" has 5: each a
		// scale² block.
		lit := 0
		for i := 3; i < len(img.Pix); i += 4 {
			if img.Pix[i] != 0 {
				lit++
			}
		}
		if want := 15 * scale * scale; lit != want {
			t.Errorf("scale %d: %d pixels lit, want %d", scale, lit, want)
		}
		// Top of the "1" stem: font row 0 is 0x04 (middle column).
		if img.NRGBAAt(2+2*scale, 1) != c || img.NRGBAAt(2+1*scale, 1) == c {
			t.Errorf("scale %d: glyph misplaced", scale)
		}
	}
	if w := textWidth("seed 1", 2); w != (6*glyphAdvance-1)*2 {
		t.Errorf("textWidth = %d", w)
	}
	// Drawing off the canvas must not panic.
	drawText(image.NewNRGBA(image.Rect(0, 0, 3, 3)), -4, -4, "\u00e9xyz", 2, c)
}

func TestFitLabel(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"seed 1234", 9, "seed 1234"},
		{"seed 12345", 9, "seed 1..."},
		{"abcdef", 3, "abc"},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := fitLabel(tt.s, tt.n); got != tt.want {
			t.Errorf("fitLabel(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
}

func TestContactSheet(t *testing.T) {
	imgs := []*Float{
		Constant(40, 20, 1, 0, 0),
		Constant(40, 20, 0, 1, 0),
		Constant(80, 40, 0, 0, 1), // shrunk to the 40 px thumb
	}
	labels := []string{"seed 1", "seed 2", "seed 3"}
	sheet, err := ContactSheet(imgs, labels, ContactOptions{Columns: 2, Thumb: 40})
	if err != nil {
		t.Fatal(err)
	}
	labelH := glyphH + 4
	wantW := contactPad + 2*(40+contactPad)
	wantH := contactPad + 2*(20+labelH+contactPad)
	if b := sheet.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Fatalf("sheet %v, want %dx%d", b, wantW, wantH)
	}
	centres := []struct {
		x, y int
		want color.NRGBA
	}{
		{contactPad + 20, contactPad + 10, color.NRGBA{255, 0, 0, 255}},
		{2*contactPad + 60, contactPad + 10, color.NRGBA{0, 255, 0, 255}},
		{contactPad + 20, 2*contactPad + 20 + labelH + 10, color.NRGBA{0, 0, 255, 255}},
		{2*contactPad + 60, 2*contactPad + 20 + labelH + 10, contactBackground}, // empty cell
		{1, 1, contactBackground},
	}
	for _, c := range centres {
		if got := sheet.NRGBAAt(c.x, c.y); got != c.want {
			t.Errorf("(%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	// Each label is drawn under its cell, and is the only text there.
	for i := range labels {
		x0 := contactPad + (i%2)*(40+contactPad)
		y0 := contactPad + (i/2)*(20+labelH+contactPad) + 20
		want := image.NewNRGBA(image.Rect(0, 0, 40, labelH))
		drawText(want, (40-textWidth(labels[i], 1))/2, 4, labels[i], 1, contactLabel)
		for y := 0; y < labelH; y++ {
			for x := 0; x < 40; x++ {
				lit := want.NRGBAAt(x, y) == contactLabel
				if got := sheet.NRGBAAt(x0+x, y0+y) == contactLabel; got != lit {
					t.Fatalf("label %d pixel (%d,%d): lit %v, want %v", i, x, y, got, lit)
				}
			}
		}
	}
	again, _ := ContactSheet(imgs, labels, ContactOptions{Columns: 2, Thumb: 40})
	if !reflect.DeepEqual(again.Pix, sheet.Pix) {
		t.Error("contact sheet is not deterministic")
	}
	errs := []struct {
		imgs   []*Float
		labels []string
		want   string
	}{
		{nil, nil, "contact sheet: no images"},
		{imgs, labels[:2], "contact sheet: 2 labels for 3 images"},
		{[]*Float{NewFloat(0, 0, 3)}, []string{"x"}, "contact sheet: image 0 is empty"},
	}
	for _, tt := range errs {
		if _, err := ContactSheet(tt.imgs, tt.labels, ContactOptions{}); err == nil || err.Error() != tt.want {
			t.Errorf("error %v, want %q", err, tt.want)
		}
	}
}
