package exemplar

import (
	"bytes"
	"context"
	"image"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	for _, tc := range []struct {
		prompt    string
		materials []string
		colours   []string
		overlays  []string
	}{
		{"stone", []string{"stone"}, nil, nil},
		{"Rough grey ROCK face", []string{"stone"}, []string{"grey"}, nil},
		{"red bricks", []string{"brick"}, []string{"red"}, nil},
		{"stone brick wall", []string{"brick"}, []string{"grey"}, nil},
		{"mossy cobblestones, dark", []string{"cobblestone"}, []string{"dark"}, []string{"mossy"}},
		{"wooden floorboards", []string{"planks"}, nil, nil},
		{"wooden tiles", []string{"tiles"}, []string{"brown"}, nil},
		{"oak tree bark", []string{"bark"}, nil, nil},
		{"lush green meadow grass", []string{"grass"}, []string{"green"}, nil},
		{"moss", []string{"moss"}, nil, nil},
		{"muddy soil", []string{"dirt"}, nil, []string{"dirty"}},
		{"desert sand dunes", []string{"sand"}, nil, nil},
		{"fresh snow", []string{"snow"}, nil, nil},
		{"frozen lake", []string{"ice", "water"}, nil, nil},
		{"deep blue ocean water", []string{"water"}, []string{"blue"}, nil},
		{"molten magma", []string{"lava"}, nil, nil},
		{"rusty steel plates", []string{"metal"}, nil, []string{"rusty"}},
		{"white ceramic tiles", []string{"tiles"}, []string{"white"}, nil},
		{"blue-grey woven cloth", []string{"fabric"}, []string{"blue", "grey"}, nil},
		{"campfire flames", []string{"fire"}, nil, nil},
		{"thick smoke", []string{"smoke"}, nil, nil},
		{"polished marble", []string{"marble"}, nil, nil},
		{"grass and dirt", []string{"grass", "dirt"}, nil, nil},
		{"wood metal", []string{"planks", "metal"}, nil, nil},
		{"a wall that is not brick", []string{"brick"}, nil, nil},
		{"weathered snowy cracked stones", []string{"stone"}, []string{"faded"}, []string{"snowy", "cracked"}},
	} {
		t.Run(tc.prompt, func(t *testing.T) {
			sel, err := Select(tc.prompt)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sel.Materials, tc.materials) || !slices.Equal(sel.Colours, tc.colours) || !slices.Equal(sel.Overlays, tc.overlays) {
				t.Errorf("Select(%q) = %+v, want materials %v colours %v overlays %v", tc.prompt, sel, tc.materials, tc.colours, tc.overlays)
			}
		})
	}
}

func TestSelectNoMaterial(t *testing.T) {
	for _, p := range []string{"", "a castle on a hill at dawn", "red", "mossy"} {
		_, err := Select(p)
		if err == nil {
			t.Fatalf("Select(%q): no error", p)
		}
		msg := err.Error()
		for _, want := range []string{"names no material", "keywords, not sentences", "brick", "exemplars:"} {
			if !strings.Contains(msg, want) {
				t.Errorf("Select(%q) error %q lacks %q", p, msg, want)
			}
		}
	}
}

func TestEveryMaterialHasAPainterAndWords(t *testing.T) {
	named := map[string]bool{}
	for _, m := range materialWords {
		if _, ok := painters[m]; !ok {
			t.Errorf("keyword table names material %q that has no painter", m)
		}
		named[m] = true
	}
	for _, m := range Materials() {
		if !named[m] {
			t.Errorf("material %q has no keyword", m)
		}
		if materialWords[m] != m {
			t.Errorf("material %q is not its own keyword", m)
		}
	}
	for c := range colourWords {
		cw := colourWords[c]
		if _, ok := colourTargets[cw]; !ok && !slices.Contains([]string{"dark", "light", "faded", "vivid"}, cw) {
			t.Errorf("colour word %q maps to %q, which recolour does not know", c, cw)
		}
	}
	for _, c := range substanceColour {
		if _, ok := colourTargets[c]; !ok {
			t.Errorf("substance colour %q has no target", c)
		}
	}
}

// TestLibraryDeterministicAndTileable renders every material twice: the
// bytes are equal for one seed and differ for another, and every
// exemplar tiles (it is painted on a torus).
func TestLibraryDeterministicAndTileable(t *testing.T) {
	for _, m := range Materials() {
		a, err := RenderMaterial(m, 48, 5)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := RenderMaterial(m, 48, 5)
		c, _ := RenderMaterial(m, 48, 6)
		if !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%s: the same seed gave different pixels", m)
		}
		if bytes.Equal(a.Pix, c.Pix) {
			t.Errorf("%s: different seeds gave the same pixels", m)
		}
		if sx, sy := wrapOutlier(a); sx > 1.0001 || sy > 1.0001 {
			t.Errorf("%s: the wrap-around pair differs %.2f×, %.2f× more than the most different pair inside: it does not tile", m, sx, sy)
		}
	}
}

func TestRenderSelection(t *testing.T) {
	sel, err := Select("dark red mossy brick")
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := sel.Render(context.Background(), 32, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != variantsPerMaterial {
		t.Fatalf("%d exemplars, want %d", len(imgs), variantsPerMaterial)
	}
	plain, _ := RenderMaterial("brick", 32, 1)
	if bytes.Equal(imgs[0].Pix, plain.Pix) {
		t.Error("colour and overlay words changed nothing")
	}
	// "dark blue" is darker than "blue", whatever the word order.
	lum := func(prompt string) float64 {
		sel, err := Select(prompt)
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := sel.Render(context.Background(), 32, 1)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i := 0; i < len(imgs[0].Pix); i += 4 {
			s += float64(imgs[0].Pix[i]) + float64(imgs[0].Pix[i+1]) + float64(imgs[0].Pix[i+2])
		}
		return s
	}
	if blue, dark := lum("blue tiles"), lum("dark blue tiles"); !(dark < 0.8*blue) {
		t.Errorf("dark blue tiles are not darker than blue tiles: %g vs %g", dark, blue)
	}
	if a, b := lum("dark blue tiles"), lum("blue dark tiles"); a != b {
		t.Errorf("word order changed the colour: %g vs %g", a, b)
	}
	if _, err := (Selection{Materials: []string{"unobtainium"}}).Render(context.Background(), 32, 1); err == nil {
		t.Error("unknown material: no error")
	}
}

// wrapOutlier compares, per axis, the mean colour difference across the
// wrap-around (last column to first, last row to first) with the largest
// mean difference between neighbouring columns (rows) inside the image.
// A tiling image's wrap pair is one pair among the others (ratio ≤ 1); a
// seam makes it stand out. Unlike the seam ratio against the mean, this
// does not flag a structure (a mortar line) that happens to lie on the
// wrap.
func wrapOutlier(img *image.NRGBA) (x, y float64) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	at := func(px, py int) [3]float64 {
		i := py*img.Stride + 4*px
		return [3]float64{float64(img.Pix[i]), float64(img.Pix[i+1]), float64(img.Pix[i+2])}
	}
	diff := func(a, b [3]float64) float64 {
		return math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2]))
	}
	col := func(c int) float64 {
		s := 0.0
		for py := 0; py < h; py++ {
			s += diff(at(c, py), at((c+1)%w, py))
		}
		return s / float64(h)
	}
	row := func(r int) float64 {
		s := 0.0
		for px := 0; px < w; px++ {
			s += diff(at(px, r), at(px, (r+1)%h))
		}
		return s / float64(w)
	}
	mx, my := 1e-9, 1e-9
	for c := 0; c+1 < w; c++ {
		mx = math.Max(mx, col(c))
	}
	for r := 0; r+1 < h; r++ {
		my = math.Max(my, row(r))
	}
	return col(w-1) / mx, row(h-1) / my
}

func TestWrapOutlierFlagsASeam(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := 0; y < 16; y++ {
		for x := 0; x < 16; x++ {
			i := y*img.Stride + 4*x
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = uint8(x*16), uint8(y*16), 0, 255
		}
	}
	if x, y := wrapOutlier(img); x < 2 || y < 2 {
		t.Errorf("ramps: wrap outlier %.2f, %.2f, want both well above 1", x, y)
	}
}
