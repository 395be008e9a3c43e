package atlas

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math/rand/v2"
	"strings"
	"testing"
)

// noiseSprite returns a w×h image with random opaque-ish pixels inside a
// transparent margin of random width on each side (so trimming has work),
// and faint pixels of alpha ≤ faint in the margin.
func noiseSprite(r *rand.Rand, w, h int, faint uint8) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	l, t := r.IntN(w/3+1), r.IntN(h/3+1)
	rr, b := w-r.IntN(w/3+1), h-r.IntN(h/3+1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var c color.NRGBA
			if x >= l && x < rr && y >= t && y < b {
				c = color.NRGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(1 + r.IntN(255))}
				if c.A <= faint {
					c.A = faint + 1
				}
			} else if faint > 0 && r.IntN(4) == 0 {
				c = color.NRGBA{uint8(r.IntN(256)), 0, 0, uint8(r.IntN(int(faint) + 1))}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	// Make sure the kept area's edge rows and columns hold a visible
	// pixel, so the trim rectangle is exactly [l,rr)×[t,b).
	for _, p := range []image.Point{{l, t}, {rr - 1, b - 1}} {
		if p.X >= 0 && p.Y >= 0 && p.X < w && p.Y < h {
			c := img.NRGBAAt(p.X, p.Y)
			c.A = 255
			img.SetNRGBA(p.X, p.Y, c)
		}
	}
	return img
}

// storedAt returns the page position of trimmed pixel (u, v) of frame f.
func storedAt(f *Frame, u, v int, clockwise bool) (int, int) {
	if !f.Rotated {
		return f.X + u, f.Y + v
	}
	if clockwise {
		return f.X + f.H - 1 - v, f.Y + u
	}
	return f.X + v, f.Y + f.W - 1 - u
}

func pma(c color.NRGBA) color.NRGBA {
	a := uint32(c.A)
	if a == 255 {
		return c
	}
	return color.NRGBA{uint8((uint32(c.R)*a + 127) / 255), uint8((uint32(c.G)*a + 127) / 255), uint8((uint32(c.B)*a + 127) / 255), c.A}
}

// checkPixels verifies that every frame's pixels on its page reproduce its
// source (after trimming and premultiplication), that trimmed-away pixels
// were at or below the threshold, that extruded pixels repeat the edge, and
// that everything else on the page is transparent.
func checkPixels(t *testing.T, sprites []Sprite, a *Atlas) {
	t.Helper()
	s := a.Settings
	cw := a.RotatedClockwise()
	byName := map[string]*image.NRGBA{}
	for i := range sprites {
		byName[sprites[i].Name] = toNRGBA(sprites[i].Image)
	}
	covered := make([][]bool, len(a.Pages))
	for p, pg := range a.Pages {
		covered[p] = make([]bool, pg.Rect.Dx()*pg.Rect.Dy())
	}
	for k := range a.Frames {
		f := &a.Frames[k]
		src := byName[f.Name]
		pg := a.Pages[f.Page]
		if f.SourceW != src.Rect.Dx() || f.SourceH != src.Rect.Dy() {
			t.Fatalf("%s: source size %d×%d, image is %v", f.Name, f.SourceW, f.SourceH, src.Rect.Size())
		}
		// Trimmed-away pixels must be at or below the threshold.
		kept := image.Rect(f.OffsetX, f.OffsetY, f.OffsetX+f.W, f.OffsetY+f.H)
		for y := 0; y < f.SourceH; y++ {
			for x := 0; x < f.SourceW; x++ {
				if !image.Pt(x, y).In(kept) && int(src.NRGBAAt(x, y).A) > max(s.Trim, 0) {
					t.Fatalf("%s: pixel (%d,%d) alpha %d was trimmed away (threshold %d)", f.Name, x, y, src.NRGBAAt(x, y).A, s.Trim)
				}
			}
		}
		for v := 0; v < f.H; v++ {
			for u := 0; u < f.W; u++ {
				want := src.NRGBAAt(f.OffsetX+u, f.OffsetY+v)
				if s.PremultiplyAlpha {
					want = pma(want)
				}
				x, y := storedAt(f, u, v, cw)
				if got := pg.NRGBAAt(x, y); got != want {
					t.Fatalf("%s: pixel (%d,%d) stored at (%d,%d) is %v, want %v (rotated %v)", f.Name, u, v, x, y, got, want, f.Rotated)
				}
			}
		}
		// Extruded ring: each pixel equals the nearest stored pixel.
		pw, ph := f.W, f.H
		if f.Rotated {
			pw, ph = ph, pw
		}
		e := s.Extrude
		for y := f.Y - e; y < f.Y+ph+e; y++ {
			for x := f.X - e; x < f.X+pw+e; x++ {
				covered[f.Page][y*pg.Rect.Dx()+x] = true
				cx := min(max(x, f.X), f.X+pw-1)
				cy := min(max(y, f.Y), f.Y+ph-1)
				if got, want := pg.NRGBAAt(x, y), pg.NRGBAAt(cx, cy); got != want {
					t.Fatalf("%s: extruded pixel (%d,%d) is %v, want edge pixel (%d,%d) %v", f.Name, x, y, got, cx, cy, want)
				}
			}
		}
	}
	for p, pg := range a.Pages {
		for i, c := range covered[p] {
			x, y := i%pg.Rect.Dx(), i/pg.Rect.Dx()
			if !c && pg.NRGBAAt(x, y) != (color.NRGBA{}) {
				t.Fatalf("page %d pixel (%d,%d) outside every sprite is %v, want transparent", p, x, y, pg.NRGBAAt(x, y))
			}
		}
	}
}

func TestPackPixels(t *testing.T) {
	tests := []struct {
		name string
		s    Settings
	}{
		{"plain", Settings{Trim: -1}},
		{"trim", Settings{}},
		{"trim threshold", Settings{Trim: 40}},
		{"padding border extrude", Settings{Padding: 3, Border: 2, Extrude: 2}},
		{"rotation clockwise", Settings{Rotation: true, Extrude: 1, MaxSize: 96}},
		{"rotation counter-clockwise", Settings{Rotation: true, Extrude: 1, MaxSize: 96, Formats: []string{FormatLibGDX}}},
		{"premultiplied", Settings{PremultiplyAlpha: true, Extrude: 1}},
		{"dedupe", Settings{Dedupe: true, Padding: 1}},
		{"pot square", Settings{Size: SizePOT, Square: true, Extrude: 1, MaxSize: 128}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			var sprites []Sprite
			for k := range 40 {
				var faint uint8
				if tt.s.Trim > 0 {
					faint = uint8(tt.s.Trim)
				}
				img := noiseSprite(r, 1+r.IntN(30), 1+r.IntN(30), faint)
				sprites = append(sprites, Sprite{Name: fmt.Sprintf("s%02d", k), Image: img})
				if tt.s.Dedupe && k%4 == 0 {
					// A copy with a different transparent margin: the
					// same trimmed pixels.
					b := img.Rect
					cp := image.NewNRGBA(image.Rect(0, 0, b.Dx()+3, b.Dy()+1))
					for y := 0; y < b.Dy(); y++ {
						copy(cp.Pix[(y+1)*cp.Stride+12:], img.Pix[y*img.Stride:(y+1)*img.Stride])
					}
					sprites = append(sprites, Sprite{Name: fmt.Sprintf("s%02d-copy", k), Image: cp})
				}
			}
			a, err := Pack(context.Background(), sprites, tt.s)
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Frames) != len(sprites) {
				t.Fatalf("%d frames for %d sprites", len(a.Frames), len(sprites))
			}
			checkPixels(t, sprites, a)
			if tt.s.Rotation {
				rotated := 0
				for _, f := range a.Frames {
					if f.Rotated {
						rotated++
					}
				}
				if rotated == 0 {
					t.Error("no frame was rotated; the test does not exercise rotation")
				}
			}
			if tt.s.Dedupe {
				shared := 0
				for k, f := range a.Frames {
					if f.Shared >= 0 {
						shared++
						o := a.Frames[f.Shared]
						if o.Page != f.Page || o.X != f.X || o.Y != f.Y || o.Shared != -1 || f.Shared >= k {
							t.Errorf("frame %s shares with %s but is elsewhere", f.Name, o.Name)
						}
					}
				}
				if shared < 10 {
					t.Errorf("%d frames shared, want the 10 copies", shared)
				}
			}
		})
	}
}

func TestBlitRotatesRight(t *testing.T) {
	// A B C      clockwise (right):  D A
	// D E F                          E B
	//                                F C
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	letters := "ABCDEF"
	for i := range 6 {
		src.SetNRGBA(i%3, i/3, color.NRGBA{letters[i], 0, 0, 255})
	}
	read := func(page *image.NRGBA) string {
		var b strings.Builder
		for y := 0; y < page.Rect.Dy(); y++ {
			for x := 0; x < page.Rect.Dx(); x++ {
				b.WriteByte(page.NRGBAAt(x, y).R)
			}
			b.WriteByte('/')
		}
		return b.String()
	}
	page := image.NewNRGBA(image.Rect(0, 0, 2, 3))
	blit(page, src, 0, 0, true, true, 0)
	if got := read(page); got != "DA/EB/FC/" {
		t.Errorf("clockwise: %s, want DA/EB/FC/", got)
	}
	page = image.NewNRGBA(image.Rect(0, 0, 2, 3))
	blit(page, src, 0, 0, true, false, 0)
	if got := read(page); got != "CF/BE/AD/" {
		t.Errorf("counter-clockwise: %s, want CF/BE/AD/", got)
	}
	page = image.NewNRGBA(image.Rect(0, 0, 5, 4))
	blit(page, src, 1, 1, false, true, 1)
	if got := read(page); got != "AABCC/AABCC/DDEFF/DDEFF/" {
		t.Errorf("extruded: %s, want AABCC/AABCC/DDEFF/DDEFF/", got)
	}
}

func TestPackRotatedFrameIsRotatedRight(t *testing.T) {
	// Only fits on a 4×4 page if the tall sprite turns.
	wide := image.NewNRGBA(image.Rect(0, 0, 4, 2))
	tall := image.NewNRGBA(image.Rect(0, 0, 2, 4))
	for i := range wide.Pix {
		wide.Pix[i] = 255
	}
	for y := range 4 {
		for x := range 2 {
			tall.SetNRGBA(x, y, color.NRGBA{uint8(10*y + x + 1), 0, 0, 255})
		}
	}
	sprites := []Sprite{{Name: "tall", Image: tall}, {Name: "wide", Image: wide}}
	a, err := Pack(context.Background(), sprites, Settings{MaxSize: 4, Rotation: true, Trim: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Pages) != 1 {
		t.Fatalf("%d pages, want 1", len(a.Pages))
	}
	f := a.Frames[0]
	if f.Name != "tall" || !f.Rotated || f.W != 2 || f.H != 4 {
		t.Fatalf("frame %+v, want tall rotated 2×4", f)
	}
	// Rotated right, the tall sprite's top row (1, 2) becomes the right
	// column read top to bottom, and its left column (1, 11, 21, 31) the
	// top row read right to left.
	pg := a.Pages[0]
	for _, c := range []struct{ x, y, want int }{
		{f.X + 3, f.Y, 1}, {f.X + 3, f.Y + 1, 2}, {f.X + 2, f.Y, 11}, {f.X, f.Y, 31}, {f.X, f.Y + 1, 32},
	} {
		if got := int(pg.NRGBAAt(c.x, c.y).R); got != c.want {
			t.Errorf("page (%d,%d) = %d, want %d", c.x, c.y, got, c.want)
		}
	}
	checkPixels(t, sprites, a)
}

func TestPackPremultiplies(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	img.SetNRGBA(0, 0, color.NRGBA{200, 100, 50, 128})
	a, err := Pack(context.Background(), []Sprite{{Name: "p", Image: img}}, Settings{PremultiplyAlpha: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.Pages[0].NRGBAAt(0, 0), (color.NRGBA{100, 50, 25, 128}); got != want {
		t.Errorf("premultiplied pixel %v, want %v", got, want)
	}
}

func TestPackTrimsFullyTransparentToOnePixel(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 6))
	a, err := Pack(context.Background(), []Sprite{{Name: "empty", Image: img}}, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	f := a.Frames[0]
	if f.W != 1 || f.H != 1 || f.SourceW != 8 || f.SourceH != 6 || !f.Trimmed() {
		t.Errorf("frame %+v, want a 1×1 region of an 8×6 source", f)
	}
}

func TestPackAcceptsAnyImageType(t *testing.T) {
	gray := image.NewGray(image.Rect(5, 5, 9, 8)) // bounds not at the origin
	gray.SetGray(6, 6, color.Gray{200})
	rgba := image.NewRGBA(image.Rect(0, 0, 2, 2))
	rgba.SetRGBA(1, 1, color.RGBA{64, 32, 16, 128}) // premultiplied input
	sprites := []Sprite{{Name: "gray", Image: gray}, {Name: "rgba", Image: rgba}}
	a, err := Pack(context.Background(), sprites, Settings{Trim: -1})
	if err != nil {
		t.Fatal(err)
	}
	checkPixels(t, sprites, a)
}

func TestPackFrameOrderAndAnimations(t *testing.T) {
	px := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range px.Pix {
		px.Pix[i] = 200
	}
	sprites := []Sprite{
		{Name: "z-still", Image: px},
		{Name: "walk-10", Image: px, Sheet: "hero", Animation: "walk", Frame: 10, FPS: 10, Loop: true},
		{Name: "walk-2", Image: px, Sheet: "hero", Animation: "walk", Frame: 2, FPS: 10, Loop: true},
		{Name: "a-still", Image: px},
		{Name: "fire-0", Image: px, Animation: "fire", Direction: "pingpong"},
	}
	a, err := Pack(context.Background(), sprites, Settings{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range a.Frames {
		names = append(names, f.Name)
	}
	// Grouped by animation full name or still name, then frame number.
	if got, want := strings.Join(names, " "), "a-still fire-0 walk-2 walk-10 z-still"; got != want {
		t.Errorf("frame order %q, want %q", got, want)
	}
	if len(a.Animations) != 2 || a.Animations[0].FullName != "fire" || a.Animations[1].FullName != "hero/walk" {
		t.Fatalf("animations %+v", a.Animations)
	}
	if an := a.Animations[0]; an.FPS != DefaultFPS || an.Loop || an.Direction != "pingpong" {
		t.Errorf("fire: %+v", an)
	}
	if an := a.Animations[1]; an.FPS != 10 || !an.Loop || an.Direction != "forward" || fmt.Sprint(an.Frames) != "[2 3]" {
		t.Errorf("walk: %+v", an)
	}
}

func TestPackErrors(t *testing.T) {
	px := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	tests := []struct {
		name    string
		sprites []Sprite
		s       Settings
		want    []string
	}{
		{"nothing", nil, Settings{}, []string{"atlas has no sprites; include at least one image"}},
		{"bad sprites", []Sprite{
			{Name: "", Image: px},
			{Name: "a", Image: px},
			{Name: "a", Image: px},
			{Name: "b"},
			{Name: "c", Image: image.NewNRGBA(image.Rect(0, 0, 0, 3))},
			{Name: "d\ne", Image: px},
			{Name: "f", Image: px, Sheet: "s"},
			{Name: "g", Image: px, Animation: "run", Direction: "backwards"},
		}, Settings{}, []string{
			"sprite 0: empty name; give every sprite a name",
			`sprites 1 and 2 are both named "a"; names must be unique in an atlas`,
			`sprite "b" has no image`,
			`sprite "c" has an empty image (0×3)`,
			`sprite "d\ne": name "d\ne" contains a control character`,
			`sprite "f" has a sheet or frame number but no animation name; name its animation`,
			`sprite "g": direction "backwards" is not one of forward, reverse, pingpong`,
		}},
		{"animation disagreements", []Sprite{
			{Name: "w0", Image: px, Animation: "walk", FPS: 8},
			{Name: "w1", Image: px, Animation: "walk", Frame: 1, FPS: 12},
			{Name: "w2", Image: px, Animation: "walk", Frame: 1, FPS: 8},
			{Name: "x0", Image: px, Sheet: "hero", Animation: "walk"},
			{Name: "y0", Image: px, Animation: "hero/walk"},
		}, Settings{}, []string{
			`sprites "w0" and "w1" are frames of animation "walk" but disagree on fps, loop or direction; give every frame the same values`,
			`sprites "w1" and "w2" are both frame 1 of animation "walk"; frame numbers must be unique in an animation`,
			`animation "walk" of sheet "hero" and animation "hero/walk" of sheet "" both get the name "hero/walk"; rename one`,
		}},
		{"too large", []Sprite{{Name: "big", Image: image.NewNRGBA(image.Rect(0, 0, 70, 10))}}, Settings{MaxSize: 64, Trim: -1}, []string{
			`sprite "big" (70×10) needs a page of at least 70 pixels with this padding, border and extrude, but max_size is 64`,
		}},
		{"settings", []Sprite{{Name: "a", Image: px}}, Settings{Extrude: 2000, Filter: "bilinear", Scale: 2}, []string{
			"atlas settings: extrude 2000 is out of range; use 0 to 1024 pixels",
			`filter "bilinear" is not a texture filter; use "linear" or "nearest"`,
			"scale 2 is out of range; use a factor above 0 and at most 1",
		}},
		{"slices", []Sprite{
			{Name: "neg", Image: px, Slice: &[4]int{-1, 0, 0, 0}},
			{Name: "wide", Image: px, Slice: &[4]int{1, 0, 1, 0}},
			{Name: "tall", Image: px, Slice: &[4]int{0, 2, 0, 0}},
		}, Settings{}, []string{
			`sprite "neg": slice [-1, 0, 0, 0] has a negative border`,
			`sprite "wide": slice [1, 0, 1, 0] leaves no middle to stretch in the 2×2 image`,
			`sprite "tall": slice [0, 2, 0, 0] leaves no middle`,
		}},
		{"slice rotated", []Sprite{{Name: "box", Image: px, Slice: &[4]int{0, 0, 1, 1}}}, Settings{Rotation: true}, []string{
			`sprite "box" has 9-slice borders, which engines cannot apply to a rotated region; turn rotation off or drop the slice`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Pack(context.Background(), tt.sprites, tt.s)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}
