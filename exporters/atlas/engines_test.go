package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// The engine test loads written atlases with the engines' own parsers
// (PixiJS 8 Spritesheet for JSON hash, the Spine runtime's TextureAtlas for
// the libGDX format), pinned in testdata/engines, and checks what they
// read, including which page texel each engine shows at a sprite's corners,
// which proves the rotation direction.

const enginesDir = "testdata/engines"

// engineRect is a rectangle as check.mjs prints it.
type engineRect struct{ X, Y, W, H float64 }

type pixiTexture struct {
	Frame, Orig       engineRect
	Trim              *engineRect
	Rotate            int
	Anchor            *struct{ X, Y float64 }
	TopLeft, TopRight [2]float64
}

type spineRegion struct {
	Page, Name                    string
	Index, X, Y, W, H, Degrees    int
	OffsetX, OffsetY              float64
	OriginalWidth, OriginalHeight int
	TopLeft, TopRight             [2]float64
}

// spineRead is a region with the fields the runtime does not know (split)
// as names and values.
type spineRead struct {
	spineRegion
	Names  []string
	Values [][]int
}

type engineResult struct {
	Pixi *struct {
		Resolution float64
		Textures   map[string]pixiTexture
		Animations map[string][]string
	}
	Spine *struct {
		Pages []struct {
			Name                 string
			W, H                 int
			PMA                  bool
			MinFilter, MagFilter int
		}
		Regions []spineRead
	}
}

// runEngines runs check.mjs on files and returns its results by file.
func runEngines(t *testing.T, files []string) map[string]engineResult {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the engine loader check needs Node.js")
	}
	if _, err := os.Stat(filepath.Join(enginesDir, "node_modules", "pixi.js")); err != nil {
		t.Skipf("the engine parsers are not installed; run: npm ci --ignore-scripts --prefix exporters/atlas/%s", enginesDir)
	}
	abs, err := filepath.Abs(enginesDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, append([]string{filepath.Join(abs, "check.mjs")}, files...)...)
	cmd.Dir = abs
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.mjs: %v\n%s", err, stderr.Bytes())
	}
	var res map[string]engineResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("read check.mjs output: %v\n%s", err, out)
	}
	return res
}

// cornerTexel converts a texture coordinate at a corner of frame f's
// footprint to the footprint texel touching that corner.
func cornerTexel(f *Frame, pageW, pageH int, uv [2]float64) (int, int) {
	pw, ph := f.W, f.H
	if f.Rotated {
		pw, ph = ph, pw
	}
	cx := int(math.Round(uv[0] * float64(pageW)))
	cy := int(math.Round(uv[1] * float64(pageH)))
	if cx >= f.X+pw {
		cx--
	}
	if cy >= f.Y+ph {
		cy--
	}
	return cx, cy
}

func TestEnginesLoadAtlases(t *testing.T) {
	cases := []struct {
		name string
		s    Settings
	}{
		{"plain", Settings{Padding: 1, Border: 1, Formats: []string{FormatJSONHash, FormatLibGDX}}},
		{"sliced", Settings{Padding: 1, Formats: []string{FormatLibGDX}}},
		{"multi-page", Settings{MaxSize: 24, Padding: 1, Extrude: 1, Dedupe: true, Formats: []string{FormatJSONHash, FormatLibGDX}}},
		{"json-rotated", Settings{MaxSize: 32, Rotation: true, Formats: []string{FormatJSONHash}}},
		{"libgdx-rotated", Settings{MaxSize: 32, Rotation: true, PremultiplyAlpha: true, Filter: FilterNearest, Formats: []string{FormatLibGDX}}},
	}
	// Write every case, then run the parsers once: starting PixiJS takes
	// seconds.
	type written struct {
		a     *Atlas
		dir   string
		files []string
	}
	var all []written
	var files []string
	for _, tc := range cases {
		sprites := fixedSprites()
		if tc.name == "sliced" {
			sprites = slicedSprites()
		}
		a, err := Pack(context.Background(), sprites, tc.s)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		rotated := false
		for _, f := range a.Frames {
			rotated = rotated || f.Rotated
		}
		if tc.s.Rotation && !rotated {
			t.Fatalf("%s: nothing was rotated; the case does not test rotation", tc.name)
		}
		dir := t.TempDir()
		if _, err := a.Write(dir, "sheet"); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := written{a: a, dir: dir}
		if a.wants(FormatJSONHash) {
			for _, f := range a.JSONHash("sheet") {
				w.files = append(w.files, filepath.Join(dir, f.Name))
			}
		}
		if a.wants(FormatLibGDX) {
			w.files = append(w.files, filepath.Join(dir, "sheet.atlas"))
		}
		all = append(all, w)
		files = append(files, w.files...)
	}
	res := runEngines(t, files)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, dir := all[i].a, all[i].dir
			if a.wants(FormatJSONHash) {
				for p, f := range a.JSONHash("sheet") {
					checkPixi(t, a, p, res[filepath.Join(dir, f.Name)])
				}
			}
			if a.wants(FormatLibGDX) {
				checkSpine(t, a, res[filepath.Join(dir, "sheet.atlas")])
			}
		})
	}
}

func checkPixi(t *testing.T, a *Atlas, p int, r engineResult) {
	t.Helper()
	if r.Pixi == nil {
		t.Fatalf("page %d: PixiJS read nothing", p)
	}
	px := r.Pixi
	if px.Resolution != 1 {
		t.Errorf("page %d: PixiJS resolution %v, want 1", p, px.Resolution)
	}
	onPage := a.pageFrames(p)
	if len(px.Textures) != len(onPage) {
		t.Errorf("page %d: PixiJS made %d textures, want %d", p, len(px.Textures), len(onPage))
	}
	pg := a.Pages[p].Rect
	for _, k := range onPage {
		f := &a.Frames[k]
		tex, ok := px.Textures[f.Name]
		if !ok {
			t.Errorf("PixiJS has no texture %q", f.Name)
			continue
		}
		frame := engineRect{float64(f.X), float64(f.Y), float64(f.W), float64(f.H)}
		rotate := 0
		if f.Rotated {
			frame.W, frame.H = frame.H, frame.W
			rotate = 2 // groupD8: turned 90° clockwise, TexturePacker's rotation
		}
		if tex.Frame != frame || tex.Rotate != rotate || tex.Orig != (engineRect{0, 0, float64(f.SourceW), float64(f.SourceH)}) {
			t.Errorf("PixiJS %s: frame %+v rotate %d orig %+v; want %+v %d %dx%d", f.Name, tex.Frame, tex.Rotate, tex.Orig, frame, rotate, f.SourceW, f.SourceH)
		}
		if f.Trimmed() != (tex.Trim != nil) || tex.Trim != nil && *tex.Trim != (engineRect{float64(f.OffsetX), float64(f.OffsetY), float64(f.W), float64(f.H)}) {
			t.Errorf("PixiJS %s: trim %+v, want offset %d,%d size %dx%d (trimmed %v)", f.Name, tex.Trim, f.OffsetX, f.OffsetY, f.W, f.H, f.Trimmed())
		}
		if f.HasPivot != (tex.Anchor != nil) || f.HasPivot && (tex.Anchor.X != f.Pivot[0] || tex.Anchor.Y != f.Pivot[1]) {
			t.Errorf("PixiJS %s: anchor %+v, want %v (set %v)", f.Name, tex.Anchor, f.Pivot, f.HasPivot)
		}
		// The texel PixiJS shows at the sprite's top corners must be the
		// sprite's own top-left and top-right pixels.
		for _, c := range []struct {
			uv   [2]float64
			u, v int
		}{{tex.TopLeft, 0, 0}, {tex.TopRight, f.W - 1, 0}} {
			gx, gy := cornerTexel(f, pg.Dx(), pg.Dy(), c.uv)
			wx, wy := storedAt(f, c.u, c.v, true)
			if gx != wx || gy != wy {
				t.Errorf("PixiJS %s: pixel (%d,%d) is drawn from page (%d,%d), want (%d,%d)", f.Name, c.u, c.v, gx, gy, wx, wy)
			}
		}
	}
	want := map[string][]string{}
	for _, an := range a.pageAnimations(p) {
		for _, k := range an.Frames {
			want[an.FullName] = append(want[an.FullName], a.Frames[k].Name)
		}
	}
	if len(px.Animations) != len(want) {
		t.Errorf("page %d: PixiJS animations %v, want %v", p, px.Animations, want)
	}
	for name, frames := range want {
		if !slices.Equal(px.Animations[name], frames) {
			t.Errorf("PixiJS animation %s: %v, want %v", name, px.Animations[name], frames)
		}
	}
}

func checkSpine(t *testing.T, a *Atlas, r engineResult) {
	t.Helper()
	if r.Spine == nil {
		t.Fatal("the Spine runtime read nothing")
	}
	sp := r.Spine
	images := a.PageNames("sheet")
	filter := 9729 // GL_LINEAR
	if a.Settings.Filter == FilterNearest {
		filter = 9728 // GL_NEAREST
	}
	if len(sp.Pages) != len(a.Pages) {
		t.Fatalf("Spine read %d pages, want %d", len(sp.Pages), len(a.Pages))
	}
	for p, pg := range sp.Pages {
		r := a.Pages[p].Rect
		if pg.Name != images[p] || pg.W != r.Dx() || pg.H != r.Dy() || pg.PMA != a.Settings.PremultiplyAlpha || pg.MinFilter != filter || pg.MagFilter != filter {
			t.Errorf("Spine page %d: %+v", p, pg)
		}
	}
	var want []int
	for p := range a.Pages {
		want = append(want, a.pageFrames(p)...)
	}
	if len(sp.Regions) != len(want) {
		t.Fatalf("Spine read %d regions, want %d", len(sp.Regions), len(want))
	}
	for i, k := range want {
		f := &a.Frames[k]
		reg := sp.Regions[i]
		name, index, degrees := f.Name, -1, 0
		if f.Animation != "" {
			name, index = fullAnimName(f.Sheet, f.Animation), f.Index
		}
		if f.Rotated {
			degrees = 90
		}
		got := spineRegion{Page: reg.Page, Name: reg.Name, Index: reg.Index, X: reg.X, Y: reg.Y, W: reg.W, H: reg.H, Degrees: reg.Degrees,
			OffsetX: reg.OffsetX, OffsetY: reg.OffsetY, OriginalWidth: reg.OriginalWidth, OriginalHeight: reg.OriginalHeight}
		exp := spineRegion{Page: images[f.Page], Name: name, Index: index, X: f.X, Y: f.Y, W: f.W, H: f.H, Degrees: degrees,
			OffsetX: float64(f.OffsetX), OffsetY: float64(f.SourceH - f.OffsetY - f.H), OriginalWidth: f.SourceW, OriginalHeight: f.SourceH}
		if got != exp {
			t.Errorf("Spine region %d:\n got %+v\nwant %+v", i, got, exp)
		}
		// The runtime keeps split, as libGDX does, as a named value:
		// left, right, top, bottom.
		var split []int
		for j, n := range reg.Names {
			if n == "split" && j < len(reg.Values) {
				split = reg.Values[j]
			}
		}
		if want := []int{f.Slice[0], f.Slice[2], f.Slice[1], f.Slice[3]}; f.HasSlice != (split != nil) || f.HasSlice && !slices.Equal(split, want) {
			t.Errorf("Spine %s: split %v, want %v (set %v)", f.Name, split, want, f.HasSlice)
		}
		pg := a.Pages[f.Page].Rect
		for _, c := range []struct {
			uv   [2]float64
			u, v int
		}{{reg.TopLeft, 0, 0}, {reg.TopRight, f.W - 1, 0}} {
			gx, gy := cornerTexel(f, pg.Dx(), pg.Dy(), c.uv)
			wx, wy := storedAt(f, c.u, c.v, false)
			if gx != wx || gy != wy {
				t.Errorf("Spine %s: pixel (%d,%d) is drawn from page (%d,%d), want (%d,%d)", f.Name, c.u, c.v, gx, gy, wx, wy)
			}
		}
	}
}
