package generators

import (
	"image"
	"image/color"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators/imageops"
)

// maskImage is a w×h image that is fill inside r and bg outside.
func maskImage(w, h int, r image.Rectangle, fill, bg color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := bg
			if image.Pt(x, y).In(r) {
				c = fill
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

func TestPrepareMask(t *testing.T) {
	white, black := color.NRGBA{255, 255, 255, 255}, color.NRGBA{0, 0, 0, 255}
	clear, opaque := color.NRGBA{10, 200, 30, 0}, color.NRGBA{10, 200, 30, 255}
	rect := image.Rect(16, 8, 32, 24)
	tests := []struct {
		name      string
		img       *image.NRGBA
		w, h      int
		feather   int
		wantNote  string
		wantErr   string
		wantLevel func(x, y int) (lo, hi uint8)
	}{
		{name: "gray", img: maskImage(48, 32, rect, white, black), w: 48, h: 32, wantNote: "gray, redraws 16.7%",
			wantLevel: func(x, y int) (uint8, uint8) {
				if image.Pt(x, y).In(rect) {
					return 255, 255
				}
				return 0, 0
			}},
		{name: "jpeg-like gray", img: maskImage(48, 32, rect, color.NRGBA{250, 255, 252, 255}, color.NRGBA{3, 0, 1, 255}), w: 48, h: 32, wantNote: "gray,"},
		{name: "alpha", img: maskImage(48, 32, rect, clear, opaque), w: 48, h: 32, wantNote: "alpha, redraws 16.7%",
			wantLevel: func(x, y int) (uint8, uint8) {
				if image.Pt(x, y).In(rect) {
					return 255, 255
				}
				return 0, 0
			}},
		{name: "colour", img: maskImage(48, 32, rect, color.NRGBA{255, 0, 0, 255}, black), w: 48, h: 32, wantErr: "colour image"},
		{name: "scaled", img: maskImage(24, 16, image.Rect(8, 4, 16, 12), white, black), w: 48, h: 32, wantNote: "gray, scaled from 24x16 to 48x32, redraws"},
		{name: "aspect", img: maskImage(24, 24, image.Rect(8, 4, 16, 12), white, black), w: 48, h: 32, wantNote: "(its aspect ratio differs from the image's)"},
		{name: "feathered", img: maskImage(48, 32, rect, white, black), w: 48, h: 32, feather: 4, wantNote: "gray, feathered 4 px",
			wantLevel: func(x, y int) (uint8, uint8) {
				switch {
				case x < 16-8 || x >= 32+8 || y < 8-8 || y >= 24+8:
					return 0, 0 // far outside: kept exactly
				case x >= 16+6 && x < 32-6 && y >= 8+6 && y < 24-6:
					return 250, 255 // deep inside
				}
				return 0, 255
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, note, err := prepareMask(tc.img, tc.w, tc.h, tc.feather, imageops.Edges{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(note, tc.wantNote) {
				t.Errorf("note %q, want it to say %q", note, tc.wantNote)
			}
			if m.Rect.Dx() != tc.w || m.Rect.Dy() != tc.h {
				t.Fatalf("mask is %v, want %dx%d", m.Rect, tc.w, tc.h)
			}
			if tc.wantLevel == nil {
				return
			}
			for y := 0; y < tc.h; y++ {
				for x := 0; x < tc.w; x++ {
					lo, hi := tc.wantLevel(x, y)
					if v := m.GrayAt(x, y).Y; v < lo || v > hi {
						t.Fatalf("mask at (%d, %d) is %d, want %d..%d", x, y, v, lo, hi)
					}
				}
			}
		})
	}
}
