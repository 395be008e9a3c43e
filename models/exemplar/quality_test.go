package exemplar

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators/sampler"
)

// Issue 17's measurements: how a flipbook moves, what share of the image
// each requested material takes, and where a sprite's object sits.

// frameMotion is the mean absolute difference (0..255 per RGB channel)
// of every pair of frames one apart (next[k] is frames k and k+1, the last
// entry the loop pair: the last frame and the first) and two apart
// (skip[k] is frames k and k+2, around the loop).
func frameMotion(frames []*image.NRGBA) (next, skip []float64) {
	n := len(frames)
	for k := range frames {
		next = append(next, meanAbsDiff8(frames[k], frames[(k+1)%n]))
		skip = append(skip, meanAbsDiff8(frames[k], frames[(k+2)%n]))
	}
	return next, skip
}

// isKey reports whether pixel i of img is the key colour's background.
func isKey(img *image.NRGBA, i int, key color.NRGBA) bool {
	p := img.Pix[i : i+3]
	return colourDist(p, [3]float64{float64(key.R), float64(key.G), float64(key.B)}) <= keyDistance
}

// objectStats returns the centroid of img's object pixels (those away
// from the key colour), how many of them there are, and how many
// separate blobs (4-connected, of at least 2% of the frame) they form.
func objectStats(img *image.NRGBA, key color.NRGBA) (cx, cy float64, count, blobs int) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	obj := make([]bool, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !isKey(img, y*img.Stride+4*x, key) {
				obj[y*w+x] = true
				cx += float64(x)
				cy += float64(y)
				count++
			}
		}
	}
	if count > 0 {
		cx, cy = cx/float64(count), cy/float64(count)
	}
	seen := make([]bool, w*h)
	for start := range obj {
		if !obj[start] || seen[start] {
			continue
		}
		size, stack := 0, []int{start}
		seen[start] = true
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			size++
			x, y := i%w, i/w
			for _, d := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				nx, ny := x+d[0], y+d[1]
				if nx < 0 || ny < 0 || nx >= w || ny >= h {
					continue
				}
				if j := ny*w + nx; obj[j] && !seen[j] {
					seen[j] = true
					stack = append(stack, j)
				}
			}
		}
		if size*50 >= w*h {
			blobs++
		}
	}
	return cx, cy, count, blobs
}

// torch paints a test sprite: a wooden handle under a flame, on magenta
// (or on transparency).
func torch(s int, transparent bool) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, s, s))
	fs := float64(s)
	for y := 0; y < s; y++ {
		for x := 0; x < s; x++ {
			u, v := (float64(x)+0.5)/fs, (float64(y)+0.5)/fs
			c := color.NRGBA{255, 0, 255, 255}
			if transparent {
				c = color.NRGBA{}
			}
			switch {
			case math.Abs(u-0.5) < 0.06 && v > 0.5 && v < 0.9:
				k := 0.8 + 0.2*math.Sin(v*40)
				c = color.NRGBA{uint8(110 * k), uint8(70 * k), uint8(35 * k), 255}
			case math.Abs(u-0.5) < 0.1 && v > 0.45 && v <= 0.5:
				c = color.NRGBA{80, 80, 86, 255}
			default:
				// A teardrop flame: hot in the middle.
				dx, dy := (u-0.5)/0.16, (v-0.33)/0.2
				if dy < 0 {
					dx /= 1 + dy*0.8
				}
				if d := dx*dx + dy*dy; d < 1 {
					t := 1 - d
					c = color.NRGBA{255, uint8(90 + 150*t), uint8(20 + 120*t*t), 255}
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// flipbook makes the frames of a looping animation as the generators
// do: one image from the asset's noise, then Animate per frame.
func flipbook(t *testing.T, m *Model, seed uint64, s, frames int, motion float64) []*image.NRGBA {
	t.Helper()
	noise, err := FlipbookFrame(seed, 3, s, s, FlipbookOptions{Frames: frames}, 0)
	if err != nil {
		t.Fatal(err)
	}
	base := generateFrom(t, m, noise, s, s, DefaultSteps)
	out := make([]*image.NRGBA, frames)
	for k := range out {
		if out[k], err = m.Animate(base, FlipbookOptions{Frames: frames, Motion: motion}, k, seed); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// noiseFlipbook makes the frames the way kiln did before issue 17: one
// generation per frame from a circle of noises (FlipbookNoise).
func noiseFlipbook(t *testing.T, m *Model, seed uint64, s, frames int, motion float64) []*image.NRGBA {
	t.Helper()
	noise, err := FlipbookNoise(seed, 3, s, s, FlipbookOptions{Frames: frames, Motion: motion})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*image.NRGBA, frames)
	for k := range out {
		out[k] = generateFrom(t, m, noise[k], s, s, DefaultSteps)
	}
	return out
}

func fmtList(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%.1f", v)
	}
	return strings.Join(parts, " ")
}

// TestFlipbookMotion: fire, water and smoke flipbooks at the default
// consistency (motion 0.5) move by at most 12/255 between consecutive
// frames and by more than 2/255, and the loop pair (last frame to first)
// is no harder a step than the others.
func TestFlipbookMotion(t *testing.T) {
	rt := testRuntime(t)
	const frames, motion = 8, 0.5
	for _, tc := range []struct {
		prompt string
		s      int
	}{{"fire", 96}, {"water", 96}, {"smoke", 96}, {"fire", 64}, {"lava", 64}} {
		prompt, s := tc.prompt, tc.s
		t.Run(fmt.Sprintf("%s-%d", prompt, s), func(t *testing.T) {
			m, err := New(context.Background(), rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			next, skip := frameMotion(flipbook(t, m, 7, s, frames, motion))
			t.Logf("%s %dx%d: consecutive %s (loop pair last); k to k+2 %s", prompt, s, s, fmtList(next), fmtList(skip))
			inner := 0.0
			for k, d := range next {
				if d > 12 || d <= 2 {
					t.Errorf("frames %d and %d differ by %.1f/255, want more than 2 and at most 12", k, (k+1)%frames, d)
				}
				if k < frames-1 {
					inner = math.Max(inner, d)
				}
			}
			if loop := next[frames-1]; loop > inner {
				t.Errorf("the loop pair differs by %.2f/255, more than any other consecutive pair (at most %.2f)", loop, inner)
			}
		})
	}
}

// TestComposition: a prompt with several materials gives an image in
// which each of them takes a real share, as the exemplar-match
// statistics measure it, and shape words shape them.
func TestComposition(t *testing.T) {
	rt := testRuntime(t)
	ctx := context.Background()
	const s = 128
	for _, tc := range []struct {
		prompt   string
		minShare float64
		unknown  []string
	}{
		{"forest clearing with grass, dirt path and moss covered stones", 0.05, []string{"forest", "clearing"}},
		{"grass and dirt", 0.2, nil},
		{"sand with water patches", 0.1, nil},
		{"brick border around marble tiles", 0.1, []string{"around"}},
	} {
		t.Run(tc.prompt, func(t *testing.T) {
			m, err := New(ctx, rt, Options{Prompt: tc.prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(m.Selection().Unknown, ","); got != strings.Join(tc.unknown, ",") {
				t.Errorf("unknown words %q, want %q", got, strings.Join(tc.unknown, ","))
			}
			_, warns, err := m.EncodeText(ctx, []string{tc.prompt, ""})
			if err != nil {
				t.Fatal(err)
			}
			if (len(warns) > 0) != (len(tc.unknown) > 0) {
				t.Errorf("warnings %q for unknown words %q", warns, tc.unknown)
			}
			imgs, _, err := sampler.Generate(ctx, m, sampler.Request{Prompt: tc.prompt, Width: s, Height: s, Steps: DefaultSteps, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			shares, err := m.MaterialShares(ctx, sampler.ImageToTensor(imgs[0]).Data, s, s)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%q: %s", tc.prompt, FormatShares(shares))
			if len(shares) != len(m.Selection().Materials) {
				t.Fatalf("%d shares for materials %v", len(shares), m.Selection().Materials)
			}
			for _, sh := range shares {
				if sh.Share < tc.minShare {
					t.Errorf("%s takes %.0f%% of the image, want at least %.0f%%", sh.Material, 100*sh.Share, 100*tc.minShare)
				}
			}
		})
	}
}

// TestObjectExemplars: sprites on a key colour or on transparency give
// one centred object per frame on a flat background, and the object's
// centroid moves by at most 2% of the frame between frames.
func TestObjectExemplars(t *testing.T) {
	rt := testRuntime(t)
	const s, frames = 64, 8
	key := color.NRGBA{255, 0, 255, 255}
	for _, tc := range []struct {
		name        string
		transparent bool
	}{{"magenta", false}, {"transparent", true}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(context.Background(), rt, Options{Exemplars: []image.Image{torch(s, tc.transparent)}, CacheDir: t.TempDir(), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			if m.objects == nil {
				t.Fatal("the torch sprite is not seen as an object")
			}
			var xs, ys []float64
			for k, f := range flipbook(t, m, 5, s, frames, 0.5) {
				cx, cy, count, blobs := objectStats(f, key)
				xs, ys = append(xs, cx), append(ys, cy)
				if blobs != 1 {
					t.Errorf("frame %d: %d objects, want 1", k, blobs)
				}
				if bx, by := objectBoxCentre(f, key); math.Abs(bx-float64(s-1)/2) > 0.05*s || math.Abs(by-float64(s-1)/2) > 0.05*s {
					t.Errorf("frame %d: the object's box is centred at (%.1f, %.1f), not near the frame's centre", k, bx, by)
				}
				// The background is flat: every pixel two or more away
				// from the object is the key colour exactly.
				flat, bg := 0, 0
				for y := 0; y < s; y++ {
					for x := 0; x < s; x++ {
						if nearObject(f, x, y, 2, key) {
							continue
						}
						bg++
						if p := f.Pix[y*f.Stride+4*x:]; p[0] == key.R && p[1] == key.G && p[2] == key.B {
							flat++
						}
					}
				}
				if flat < bg*99/100 {
					t.Errorf("frame %d: %d of %d background pixels are not the key colour", k, bg-flat, bg)
				}
				if k == 0 {
					t.Logf("%s: %d object pixels of %d, %d background pixels", tc.name, count, s*s, bg)
				}
			}
			drift := 0.0
			for k := range xs {
				j := (k + 1) % len(xs)
				drift = math.Max(drift, math.Hypot(xs[j]-xs[k], ys[j]-ys[k]))
			}
			t.Logf("%s: centroid moves at most %.2f px (%.2f%% of the frame) between frames", tc.name, drift, 100*drift/s)
			if drift > 0.02*s {
				t.Errorf("the centroid moves by %.2f px between frames, more than 2%% of %d", drift, s)
			}
		})
	}
}

// objectBoxCentre returns the centre of the bounding box of img's pixels
// that are not the key colour.
func objectBoxCentre(img *image.NRGBA, key color.NRGBA) (float64, float64) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, y0, x1, y1 := w, h, -1, -1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if !isKey(img, y*img.Stride+4*x, key) {
				x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
			}
		}
	}
	return float64(x0+x1) / 2, float64(y0+y1) / 2
}

// nearObject reports whether a pixel within r of (x, y) is not the key
// colour.
func nearObject(img *image.NRGBA, x, y, r int, key color.NRGBA) bool {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	for j := max(y-r, 0); j <= min(y+r, h-1); j++ {
		for i := max(x-r, 0); i <= min(x+r, w-1); i++ {
			if !isKey(img, j*img.Stride+4*i, key) {
				return true
			}
		}
	}
	return false
}

// TestDebugBefore measures the three cases as kiln made them before
// issue 17 (KILN_EXEMPLAR_BEFORE=1): flipbooks from a circle of noises,
// several materials in one bank without a layout, sprites as textures.
func TestDebugBefore(t *testing.T) {
	if os.Getenv("KILN_EXEMPLAR_BEFORE") == "" {
		t.Skip("set KILN_EXEMPLAR_BEFORE=1 to measure the old behaviour")
	}
	rt := testRuntime(t)
	ctx := context.Background()
	for _, prompt := range []string{"fire", "water", "smoke"} {
		m, err := New(ctx, rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		next, skip := frameMotion(noiseFlipbook(t, m, 7, 96, 8, 0.5))
		t.Logf("before, %s: consecutive %s (loop pair last); k to k+2 %s", prompt, fmtList(next), fmtList(skip))
	}
	for _, prompt := range []string{"forest clearing with grass, dirt path and moss covered stones", "grass and dirt", "sand with water patches", "brick border around marble tiles"} {
		m, err := New(ctx, rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		groups, names := m.groups, m.groupNames
		m.groups = nil // no layout: graphs as before
		imgs, _, err := sampler.Generate(ctx, m, sampler.Request{Prompt: prompt, Width: 128, Height: 128, Steps: DefaultSteps, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		m.groups, m.groupNames = groups, names
		shares, err := m.MaterialShares(ctx, sampler.ImageToTensor(imgs[0]).Data, 128, 128)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("before, %q: %s", prompt, FormatShares(shares))
	}
	key := color.NRGBA{255, 0, 255, 255}
	m, err := New(ctx, rt, Options{Exemplars: []image.Image{torch(64, false)}, CacheDir: t.TempDir(), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.objects = nil // a texture, as before
	var xs, ys []float64
	for k, f := range noiseFlipbook(t, m, 5, 64, 8, 0.5) {
		cx, cy, count, blobs := objectStats(f, key)
		xs, ys = append(xs, cx), append(ys, cy)
		t.Logf("before, torch frame %d: %d blobs, %d object pixels, centroid (%.1f, %.1f)", k, blobs, count, cx, cy)
	}
	drift := 0.0
	for k := range xs {
		j := (k + 1) % len(xs)
		drift = math.Max(drift, math.Hypot(xs[j]-xs[k], ys[j]-ys[k]))
	}
	t.Logf("before, torch: centroid moves up to %.2f px (%.1f%% of 64)", drift, 100*drift/64)
}

// TestPreviewIssue17 writes pictures of the three cases (KILN_EXEMPLAR_OUT).
func TestPreviewIssue17(t *testing.T) {
	dir := previewDir(t)
	rt := testRuntime(t)
	ctx := context.Background()
	var comp []image.Image
	for _, prompt := range []string{"forest clearing with grass, dirt path and moss covered stones", "grass and dirt", "sand with water patches", "brick border around marble tiles"} {
		m, err := New(ctx, rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		imgs, _, err := sampler.Generate(ctx, m, sampler.Request{Prompt: prompt, Width: 128, Height: 128, Steps: DefaultSteps, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		comp = append(comp, imgs[0])
	}
	writePNG(t, dir+"/composition.png", sheet(comp, len(comp)))
	for _, tr := range []bool{false, true} {
		m, err := New(ctx, rt, Options{Exemplars: []image.Image{torch(64, tr)}, CacheDir: t.TempDir(), Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		var fr []image.Image
		fr = append(fr, m.Exemplars()[0])
		for _, f := range flipbook(t, m, 5, 64, 8, 0.5) {
			fr = append(fr, f)
		}
		writePNG(t, fmt.Sprintf("%s/torch-%v.png", dir, tr), sheet(fr, len(fr)))
	}
}

// TestSelectShapesAndUnknownWords: shape words attach to the nearest
// material (the preceding one on a tie), and the words the model does not
// read are listed, small words aside.
func TestSelectShapesAndUnknownWords(t *testing.T) {
	for _, tc := range []struct {
		prompt  string
		shapes  string
		unknown string
	}{
		{"grass with a dirt path", "path dirt", ""},
		{"path of dirt through grass", "path dirt", ""},
		{"stone stripes and sand", "stripes stone", ""},
		{"sand with water patches", "patch water", ""},
		{"brick border around marble tiles", "border brick", "around"},
		{"forest clearing with grass, dirt path and moss covered stones", "path dirt", "forest,clearing"},
		{"flickering torch flame", "", "flickering,torch"},
		{"a wall that is not brick", "", ""},
		{"blue-grey woven cloth", "", ""},
	} {
		sel, err := Select(tc.prompt)
		if err != nil {
			t.Fatal(err)
		}
		var shapes []string
		for _, s := range sel.Shapes {
			shapes = append(shapes, s.Form+" "+s.Material)
		}
		if got := strings.Join(shapes, ","); got != tc.shapes {
			t.Errorf("Select(%q) shapes %q, want %q", tc.prompt, got, tc.shapes)
		}
		if got := strings.Join(sel.Unknown, ","); got != tc.unknown {
			t.Errorf("Select(%q) unknown words %q, want %q", tc.prompt, got, tc.unknown)
		}
	}
	if w := unknownWarning("flickering torch flame", []string{"flickering", "torch"}); !strings.Contains(w, `"flickering", "torch"`) || !strings.Contains(w, "exemplars:") {
		t.Errorf("warning %q does not name the words and the way out", w)
	}
}
