package generators_test

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/pipeline"
)

// maskPNG encodes a w×h grayscale mask, white inside r.
func maskPNG(t testing.TB, w, h int, r image.Rectangle, fill color.Color) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Rect, image.NewUniform(color.Black), image.Point{}, draw.Src)
	draw.Draw(img, r, image.NewUniform(fill), image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestInpaintBuild builds a tileable inpainted from another: far from the
// mask the output is the source byte for byte, inside it the image
// changes, the recipe and the report say what was done, and a new mask
// rebuilds the asset.
func TestInpaintBuild(t *testing.T) {
	rect := image.Rect(32, 8, 56, 40)
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"art/mask.png":       maskPNG(t, 64, 48, rect, color.White),
		"a.kiln.yaml": `version: 1
assets:
  - {id: wall, kind: tileable, model: sd, prompt: stone wall, seed: 3, steps: 2, size: [64, 48]}
  - id: wall/moss
    kind: tileable
    model: sd
    prompt: moss
    seed: 4
    steps: 4
    size: [64, 48]
    inpaint: {from: wall, mask: art/mask.png, strength: 0.9, feather: 2}
`,
	})
	s := newSession(t, root)
	rep := s.build()
	src := toNRGBA(s.decode("wall.png"))
	out := toNRGBA(s.decode("wall/moss.png"))
	far := rect.Inset(-4) // beyond the feathered edge
	changed := 0
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			i := src.PixOffset(x, y)
			same := bytes.Equal(src.Pix[i:i+4], out.Pix[i:i+4])
			if !image.Pt(x, y).In(far) && !same {
				t.Fatalf("pixel (%d, %d) outside the mask is %v, the source's %v", x, y, out.Pix[i:i+4], src.Pix[i:i+4])
			}
			if image.Pt(x, y).In(rect) && !same {
				changed++
			}
		}
	}
	if changed < rect.Dx()*rect.Dy()/2 {
		t.Errorf("only %d of the %d pixels inside the mask changed", changed, rect.Dx()*rect.Dy())
	}
	rec := s.recipe("wall/moss.png")
	if rec.Extra["inpaint.mask"] != "art/mask.png" || rec.Extra["inpaint.feather"] != "2" || rec.Extra["init"] != "wall" || rec.Extra["strength"] != "0.9" {
		t.Errorf("recipe %+v", rec.Extra)
	}
	if n := rep.Stage("wall/moss:generate").Notes["inpaint.mask"]; !strings.HasPrefix(n, "gray, feathered 2 px, redraws") {
		t.Errorf("mask note %q", n)
	}

	// A smaller mask of the same shape is scaled, with a note, and
	// rebuilds the asset only.
	writeFiles(t, root, map[string]string{"art/mask.png": maskPNG(t, 32, 24, image.Rect(16, 4, 28, 20), color.White)})
	rep = s.build()
	if got := status(t, rep, "wall/moss:generate"); got != pipeline.StatusBuilt {
		t.Errorf("a new mask: wall/moss %s, want built", got)
	}
	if got := status(t, rep, "wall:generate"); got == pipeline.StatusBuilt {
		t.Errorf("a new mask rebuilt the source")
	}
	if n := rep.Stage("wall/moss:generate").Notes["inpaint.mask"]; !strings.Contains(n, "scaled from 32x24 to 64x48") {
		t.Errorf("mask note %q", n)
	}

	// A colour mask is refused, saying what to give instead.
	writeFiles(t, root, map[string]string{"art/mask.png": maskPNG(t, 64, 48, rect, color.RGBA{255, 0, 0, 255})})
	rep, err := pipeline.Build(t.Context(), s.plan(), pipeline.Options{Root: root, Jobs: 1})
	if err == nil {
		t.Fatal("a colour mask built")
	}
	if st := rep.Stage("wall/moss:generate"); st == nil || st.Error == nil || !strings.Contains(st.Error.Error(), "inpaint mask art/mask.png: it is a colour image") {
		t.Errorf("a colour mask: %v", st)
	}
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Rect, img, img.Bounds().Min, draw.Src)
	return n
}

// TestRepairSeams builds a tileable with and without tileable.repair_seams:
// the repaired image is the plain one, up to the origin kiln picks, except
// in a band across the seams, and the report and recipe say so.
func TestRepairSeams(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml": `version: 1
defaults: {model: sd, seed: 3, steps: 4, size: [64, 48]}
assets:
  - {id: plain, kind: tileable, prompt: stone wall}
  - {id: fixed, kind: tileable, prompt: stone wall, tileable: {repair_seams: true}}
`,
	})
	s := newSession(t, root)
	rep := s.build()
	plain := toNRGBA(s.decode("plain.png"))
	fixed := toNRGBA(s.decode("fixed.png"))
	const w, h = 64, 48
	best := 0
	for dy := 0; dy < h; dy++ {
		for dx := 0; dx < w; dx++ {
			n := 0
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					i, j := plain.PixOffset(x, y), fixed.PixOffset((x+dx)%w, (y+dy)%h)
					if bytes.Equal(plain.Pix[i:i+4], fixed.Pix[j:j+4]) {
						n++
					}
				}
			}
			best = max(best, n)
		}
	}
	// A 16 px band feathered by 4 px on each axis leaves at least a
	// (64-32)×(48-32) block untouched.
	if best < 32*16 || best == w*h {
		t.Errorf("%d of %d pixels are the plain image's, want at least %d and not all", best, w*h, 32*16)
	}
	if n := rep.Stage("fixed:generate").Notes["seams.repair"]; !strings.HasPrefix(n, "band 16 px, x ") || !strings.Contains(n, ", y ") {
		t.Errorf("seams.repair note %q", n)
	}
	if rec := s.recipe("fixed.png"); rec.Extra["repair_seams"] != "band 16 px, strength 0.6" {
		t.Errorf("recipe %+v", rec.Extra)
	}
	t.Logf("%d of %d pixels kept; %s", best, w*h, rep.Stage("fixed:generate").Notes["seams.repair"])
}
