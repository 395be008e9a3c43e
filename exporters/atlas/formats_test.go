package atlas

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixedSprites is the small fixed set the golden files are made from:
// stills (one trimmed, one with a pivot), a three-frame animation in a
// sheet, a pingpong animation without a sheet, and a duplicate frame.
func fixedSprites() []Sprite {
	fill := func(w, h int, margin image.Rectangle, c color.NRGBA) *image.NRGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := margin.Min.Y; y < margin.Max.Y; y++ {
			for x := margin.Min.X; x < margin.Max.X; x++ {
				img.SetNRGBA(x, y, color.NRGBA{c.R, c.G + uint8(x*7), c.B + uint8(y*5), c.A})
			}
		}
		return img
	}
	walk := func(i int) *image.NRGBA {
		return fill(12, 16, image.Rect(1+i, 2, 10, 15), color.NRGBA{40 * uint8(i), 80, 120, 255})
	}
	return []Sprite{
		{Name: "ui/button", Image: fill(20, 8, image.Rect(0, 0, 20, 8), color.NRGBA{200, 10, 10, 255})},
		{Name: "ui/icon", Image: fill(10, 10, image.Rect(2, 3, 8, 9), color.NRGBA{10, 200, 10, 200}), Pivot: &[2]float64{0.25, 1}},
		{Name: "hero/walk/0", Image: walk(0), Sheet: "hero", Animation: "walk", Frame: 0, FPS: 10, Loop: true},
		{Name: "hero/walk/1", Image: walk(1), Sheet: "hero", Animation: "walk", Frame: 1, FPS: 10, Loop: true},
		{Name: "hero/walk/2", Image: walk(2), Sheet: "hero", Animation: "walk", Frame: 2, FPS: 10, Loop: true},
		{Name: "hero/idle/0", Image: walk(0), Sheet: "hero", Animation: "idle", Frame: 0, FPS: 2.5, Loop: true},
		{Name: "fire/0", Image: fill(6, 9, image.Rect(0, 1, 6, 9), color.NRGBA{250, 120, 0, 255}), Animation: "fire", Frame: 0, Direction: "pingpong"},
		{Name: "fire/1", Image: fill(6, 9, image.Rect(1, 0, 5, 9), color.NRGBA{250, 160, 0, 255}), Animation: "fire", Frame: 1, Direction: "pingpong"},
		{Name: "fire/2", Image: fill(6, 9, image.Rect(0, 0, 6, 8), color.NRGBA{250, 200, 0, 255}), Animation: "fire", Frame: 2, Direction: "pingpong"},
	}
}

// formatCases are the golden cases: one page with every format, several
// pages, and premultiplied nearest-filtered libGDX with rotation.
var formatCases = []struct {
	name   string
	s      Settings
	sliced bool // the button has 9-slice borders (slicedSprites)
}{
	{"one-page", Settings{Padding: 1, Border: 1, Dedupe: true, Formats: AllFormats}, true},
	{"multi-page", Settings{MaxSize: 24, Padding: 1, Extrude: 1, Dedupe: true, Formats: []string{FormatJSONHash, FormatJSONArray, FormatPhaser, FormatGodot, FormatLibGDX}}, false},
	{"libgdx-rotated", Settings{MaxSize: 32, Rotation: true, PremultiplyAlpha: true, Filter: FilterNearest, Formats: []string{FormatLibGDX}}, false},
	{"json-rotated", Settings{MaxSize: 32, Rotation: true, Formats: []string{FormatJSONArray}}, false},
	{"half-scale", Settings{Padding: 1, Scale: 0.5, Formats: AllFormats}, true},
}

// caseSprites returns the sprites of a golden case.
func caseSprites(sliced bool) []Sprite {
	if sliced {
		return slicedSprites()
	}
	return fixedSprites()
}

func TestFormatsGolden(t *testing.T) {
	for _, tc := range formatCases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Pack(context.Background(), caseSprites(tc.sliced), tc.s)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			files, err := a.Files(dir, "sheet")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", tc.name)
			if *update {
				os.RemoveAll(golden)
			}
			var names []string
			for _, f := range files {
				names = append(names, f.Name)
				p := filepath.Join(golden, filepath.FromSlash(f.Name))
				if *update {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, f.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("%v (run go test -update to write the golden files)", err)
				}
				if !bytes.Equal(f.Data, want) {
					t.Errorf("%s differs from %s", f.Name, p)
				}
			}
			// No golden file may be left without an output.
			filepath.WalkDir(golden, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(golden, p)
					if !slices.Contains(names, filepath.ToSlash(rel)) {
						t.Errorf("golden file %s was not produced", rel)
					}
				}
				return nil
			})
			checkFormats(t, a, files)
		})
	}
}

// checkFormats parses every data file back and compares it with the atlas.
func checkFormats(t *testing.T, a *Atlas, files []File) {
	t.Helper()
	byName := map[string][]byte{}
	for _, f := range files {
		byName[f.Name] = f.Data
	}
	images := a.PageNames("sheet")
	for p, name := range images {
		img, err := png.Decode(bytes.NewReader(byName[name]))
		if err != nil {
			t.Fatalf("page %s: %v", name, err)
		}
		if got := toNRGBA(img); !bytes.Equal(got.Pix, a.Pages[p].Pix) {
			t.Errorf("page %s does not decode to the page pixels", name)
		}
	}
	if a.wants(FormatJSONHash) {
		for p, f := range a.JSONHash("sheet") {
			checkJSONPage(t, a, p, byName[f.Name], false, images)
		}
	}
	if a.wants(FormatJSONArray) {
		for p, f := range a.JSONArray("sheet") {
			checkJSONPage(t, a, p, byName[f.Name], true, images)
		}
	}
	if a.wants(FormatPhaser) {
		checkMultiatlas(t, a, byName["sheet.multiatlas.json"], images)
	}
	if a.wants(FormatGodot) {
		checkGodot(t, a, byName, images)
	}
	if a.wants(FormatLibGDX) {
		checkLibGDX(t, a, byName["sheet.atlas"], images)
	}
}

type jRect struct{ X, Y, W, H int }
type jFrame struct {
	Filename         string
	Frame            jRect
	Rotated          bool
	Trimmed          bool
	SpriteSourceSize jRect
	SourceSize       struct{ W, H int }
	Pivot            *struct{ X, Y float64 }
	Anchor           *struct{ X, Y float64 }
	Duration         *int
	Borders          *struct{ Left, Top, Right, Bottom int }
	Scale9Borders    *jRect
}

// checkFrame compares one parsed JSON frame with the atlas frame.
func checkFrame(t *testing.T, f *Frame, j *jFrame) {
	t.Helper()
	want := jFrame{
		Filename:         j.Filename,
		Frame:            jRect{f.X, f.Y, f.W, f.H},
		Rotated:          f.Rotated,
		Trimmed:          f.Trimmed(),
		SpriteSourceSize: jRect{f.OffsetX, f.OffsetY, f.W, f.H},
	}
	want.SourceSize.W, want.SourceSize.H = f.SourceW, f.SourceH
	got := *j
	got.Pivot, got.Anchor, got.Duration, got.Borders, got.Scale9Borders = nil, nil, nil, nil, nil
	if (j.Borders != nil) != f.HasSlice || (j.Scale9Borders != nil) != f.HasSlice {
		t.Errorf("frame %s: borders %+v scale9Borders %+v, want slice %v (set %v)", f.Name, j.Borders, j.Scale9Borders, f.Slice, f.HasSlice)
	} else if f.HasSlice {
		l, tp, r, b := f.Slice[0], f.Slice[1], f.Slice[2], f.Slice[3]
		if *j.Borders != (struct{ Left, Top, Right, Bottom int }{l, tp, r, b}) || *j.Scale9Borders != (jRect{l, tp, f.W - l - r, f.H - tp - b}) {
			t.Errorf("frame %s: borders %+v scale9Borders %+v, want slice %v", f.Name, *j.Borders, *j.Scale9Borders, f.Slice)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("frame %s: got %+v, want %+v", f.Name, got, want)
	}
	if j.Pivot == nil || j.Pivot.X != f.Pivot[0] || j.Pivot.Y != f.Pivot[1] {
		t.Errorf("frame %s: pivot %+v, want %v", f.Name, j.Pivot, f.Pivot)
	}
	if (j.Anchor != nil) != f.HasPivot || f.HasPivot && (j.Anchor.X != f.Pivot[0] || j.Anchor.Y != f.Pivot[1]) {
		t.Errorf("frame %s: anchor %+v, want %v (set %v)", f.Name, j.Anchor, f.Pivot, f.HasPivot)
	}
	if f.Animation != "" {
		if j.Duration == nil || *j.Duration != int(1000/f.FPS+0.5) {
			t.Errorf("frame %s: duration %v, want %v ms", f.Name, j.Duration, 1000/f.FPS)
		}
	} else if j.Duration != nil {
		t.Errorf("still frame %s has a duration", f.Name)
	}
}

// frameKeys returns the keys of the "frames" object in file order.
func frameKeys(t *testing.T, data []byte) []string {
	t.Helper()
	var doc struct{ Frames json.RawMessage }
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(doc.Frames))
	dec.Token() // {
	var keys []string
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var skip json.RawMessage
		dec.Decode(&skip)
	}
	return keys
}

func checkJSONPage(t *testing.T, a *Atlas, p int, data []byte, array bool, images []string) {
	t.Helper()
	var doc struct {
		Frames     json.RawMessage
		Animations map[string][]string
		Meta       struct {
			App, Version, Image, Format, Scale string
			Size                               struct{ W, H int }
			FrameTags                          []struct {
				Name      string
				From, To  int
				Direction string
			}
			RelatedMultiPacks []string            `json:"related_multi_packs"`
			Animations        map[string][]string `json:"animations"`
		}
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("page %d: %v", p, err)
	}
	var frames []jFrame
	if array {
		if err := json.Unmarshal(doc.Frames, &frames); err != nil {
			t.Fatal(err)
		}
	} else {
		var m map[string]jFrame
		if err := json.Unmarshal(doc.Frames, &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range frameKeys(t, data) {
			f := m[k]
			f.Filename = k
			frames = append(frames, f)
		}
	}
	onPage := a.pageFrames(p)
	if len(frames) != len(onPage) {
		t.Fatalf("page %d: %d frames, want %d", p, len(frames), len(onPage))
	}
	for i, k := range onPage {
		if frames[i].Filename != a.Frames[k].Name {
			t.Errorf("page %d frame %d is %q, want %q", p, i, frames[i].Filename, a.Frames[k].Name)
		}
		checkFrame(t, &a.Frames[k], &frames[i])
	}
	m := doc.Meta
	r := a.Pages[p].Rect
	if m.App != App || m.Version != Version || m.Image != images[p] || m.Format != "RGBA8888" || m.Scale != a.scaleString() || m.Size.W != r.Dx() || m.Size.H != r.Dy() {
		t.Errorf("page %d meta %+v", p, m)
	}
	anims := a.pageAnimations(p)
	if len(m.FrameTags) != len(anims) || len(doc.Animations) != len(anims) {
		t.Fatalf("page %d: %d frame tags, %d animations, want %d", p, len(m.FrameTags), len(doc.Animations), len(anims))
	}
	for i, an := range anims {
		tag := m.FrameTags[i]
		if tag.Name != an.FullName || tag.Direction != an.Direction ||
			frames[tag.From].Filename != a.Frames[an.Frames[0]].Name ||
			frames[tag.To].Filename != a.Frames[an.Frames[len(an.Frames)-1]].Name ||
			tag.To-tag.From+1 != len(an.Frames) {
			t.Errorf("page %d frame tag %+v does not match animation %s", p, tag, an.FullName)
		}
		var want []string
		for _, k := range an.Frames {
			want = append(want, a.Frames[k].Name)
		}
		if !slices.Equal(doc.Animations[an.FullName], want) {
			t.Errorf("animation %s lists %v, want %v", an.FullName, doc.Animations[an.FullName], want)
		}
	}
	ext := map[bool]string{false: ".json", true: ".array.json"}[array && a.wants(FormatJSONHash)]
	var related []string
	for q, name := range a.JSONNames("sheet", ext) {
		if q != p && len(images) > 1 {
			related = append(related, name)
		}
	}
	if p == 0 {
		// Page 0's meta.animations names every animation's frames.
		checkAllAnimations(t, a, "page 0 meta.animations", m.Animations)
	} else if m.Animations != nil {
		t.Errorf("page %d has meta.animations; only page 0 should", p)
	}
	if !slices.Equal(m.RelatedMultiPacks, related) {
		t.Errorf("page %d related_multi_packs %v, want %v", p, m.RelatedMultiPacks, related)
	}
}

// checkAllAnimations compares a map of every animation's frame names with
// the atlas.
func checkAllAnimations(t *testing.T, a *Atlas, what string, got map[string][]string) {
	t.Helper()
	if len(got) != len(a.Animations) {
		t.Errorf("%s has %d animations, want %d", what, len(got), len(a.Animations))
	}
	for _, an := range a.Animations {
		var want []string
		for _, k := range an.Frames {
			want = append(want, a.Frames[k].Name)
		}
		if !slices.Equal(got[an.FullName], want) {
			t.Errorf("%s: %s lists %v, want %v", what, an.FullName, got[an.FullName], want)
		}
	}
}

func checkMultiatlas(t *testing.T, a *Atlas, data []byte, images []string) {
	t.Helper()
	var doc struct {
		Textures []struct {
			Image, Format string
			Size          struct{ W, H int }
			Scale         float64
			Frames        []jFrame
			Animations    map[string][]string
		}
		Meta struct{ App, Version string }
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Textures) != len(a.Pages) || doc.Meta.App != App || doc.Meta.Version != Version {
		t.Fatalf("multiatlas: %d textures for %d pages, meta %+v", len(doc.Textures), len(a.Pages), doc.Meta)
	}
	for p, tex := range doc.Textures {
		r := a.Pages[p].Rect
		if tex.Image != images[p] || tex.Format != "RGBA8888" || tex.Scale != a.Settings.Scale || tex.Size.W != r.Dx() || tex.Size.H != r.Dy() {
			t.Errorf("multiatlas texture %d: %+v", p, tex)
		}
		// The first texture entry names every animation's frames.
		if p == 0 {
			checkAllAnimations(t, a, "multiatlas texture 0 animations", tex.Animations)
		} else if tex.Animations != nil {
			t.Errorf("multiatlas texture %d has animations; only texture 0 should", p)
		}
		onPage := a.pageFrames(p)
		if len(tex.Frames) != len(onPage) {
			t.Fatalf("multiatlas texture %d: %d frames, want %d", p, len(tex.Frames), len(onPage))
		}
		for i, k := range onPage {
			if tex.Frames[i].Filename != a.Frames[k].Name {
				t.Errorf("multiatlas texture %d frame %d is %q, want %q", p, i, tex.Frames[i].Filename, a.Frames[k].Name)
			}
			checkFrame(t, &a.Frames[k], &tex.Frames[i])
		}
	}
}

// tres is a parsed Godot text resource.
type tres struct {
	header   map[string]string
	exts     map[string]string // id → path
	subs     map[string]map[string]string
	resource map[string]string
	raw      string
}

var (
	sectionRe = regexp.MustCompile(`^\[(\w+)((?: \w+=(?:"[^"]*"|\S+?))*)\]$`)
	attrRe    = regexp.MustCompile(`(\w+)=("[^"]*"|[^ \]]+)`)
)

func parseTres(t *testing.T, name string, data []byte) *tres {
	t.Helper()
	r := &tres{exts: map[string]string{}, subs: map[string]map[string]string{}, raw: string(data)}
	var cur map[string]string
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if m := sectionRe.FindStringSubmatch(line); m != nil {
			attrs := map[string]string{}
			for _, a := range attrRe.FindAllStringSubmatch(m[2], -1) {
				attrs[a[1]] = strings.Trim(a[2], `"`)
			}
			switch m[1] {
			case "gd_resource":
				r.header = attrs
				cur = nil
			case "ext_resource":
				r.exts[attrs["id"]] = attrs["path"]
				cur = nil
			case "sub_resource":
				cur = map[string]string{"type": attrs["type"]}
				r.subs[attrs["id"]] = cur
			case "resource":
				r.resource = map[string]string{}
				cur = r.resource
			default:
				t.Fatalf("%s: unknown section %s", name, line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok || cur == nil {
			t.Fatalf("%s: line %d %q is not a property", name, i+1, line)
		}
		if strings.HasPrefix(v, "[") && !strings.HasSuffix(v, "]") {
			// A multi-line value runs to the closing bracket.
			for i++; i < len(lines) && lines[i] != "}]" && !strings.HasSuffix(lines[i], "}]"); i++ {
				v += "\n" + lines[i]
			}
			v += "\n" + lines[i]
		}
		cur[k] = v
	}
	return r
}

// decodeUID reverses godotUID's encoding, checking Godot's alphabet.
func decodeUID(s string) (uint64, bool) {
	const digits = "abcdefghijklmnopqrstuvwxy012345678"
	txt, ok := strings.CutPrefix(s, "uid://")
	if !ok || txt == "" {
		return 0, false
	}
	var id uint64
	for _, c := range txt {
		d := strings.IndexRune(digits, c)
		if d < 0 {
			return 0, false
		}
		id = id*34 + uint64(d)
	}
	return id, id > 0 && id <= 0x7fffffffffffffff
}

func checkGodotRegion(t *testing.T, what string, props map[string]string, f *Frame, page string, exts map[string]string, extrude int) {
	t.Helper()
	if got, want := props["region"], fmt.Sprintf("Rect2(%d, %d, %d, %d)", f.X, f.Y, f.W, f.H); got != want {
		t.Errorf("%s: region %s, want %s", what, got, want)
	}
	wantMargin := ""
	if f.Trimmed() {
		wantMargin = fmt.Sprintf("Rect2(%d, %d, %d, %d)", f.OffsetX, f.OffsetY, f.SourceW-f.W, f.SourceH-f.H)
	}
	if props["margin"] != wantMargin {
		t.Errorf("%s: margin %q, want %q", what, props["margin"], wantMargin)
	}
	if (props["filter_clip"] == "true") != (extrude == 0) {
		t.Errorf("%s: filter_clip %q with extrude %d", what, props["filter_clip"], extrude)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(props["atlas"], `ExtResource("`), `")`)
	if exts[id] != page {
		t.Errorf("%s: atlas %s is %q, want %q", what, props["atlas"], exts[id], page)
	}
}

func checkGodot(t *testing.T, a *Atlas, files map[string][]byte, images []string) {
	t.Helper()
	uids := map[string]string{}
	seen := 0
	checkHeader := func(name string, r *tres, typ string) {
		if r.header["type"] != typ || r.header["format"] != "3" {
			t.Errorf("%s: header %v", name, r.header)
		}
		if steps, _ := strconv.Atoi(r.header["load_steps"]); steps != len(r.exts)+len(r.subs)+1 {
			t.Errorf("%s: load_steps %d with %d external and %d sub-resources", name, steps, len(r.exts), len(r.subs))
		}
		if _, ok := decodeUID(r.header["uid"]); !ok {
			t.Errorf("%s: uid %q is not a valid Godot UID", name, r.header["uid"])
		}
		if other, dup := uids[r.header["uid"]]; dup {
			t.Errorf("%s and %s share uid %s", name, other, r.header["uid"])
		}
		uids[r.header["uid"]] = name
		for id, p := range r.exts {
			if !strings.HasPrefix(p, "res://") || !slices.Contains(images, strings.TrimPrefix(p, "res://")) {
				t.Errorf("%s: ext_resource %s path %q is not a page image", name, id, p)
			}
		}
	}
	for k := range a.Frames {
		f := &a.Frames[k]
		if f.Animation != "" {
			continue
		}
		name := "sheet/" + f.Name + ".tres"
		r := parseTres(t, name, files[name])
		seen++
		checkHeader(name, r, "AtlasTexture")
		checkGodotRegion(t, name, r.resource, f, "res://"+images[f.Page], r.exts, a.Settings.Extrude)
		box := "sheet/" + f.Name + ".stylebox.tres"
		if _, ok := files[box]; ok != f.HasSlice {
			t.Errorf("%s written %v, want it for 9-slice sprites only", box, ok)
		}
		if !f.HasSlice {
			continue
		}
		r = parseTres(t, box, files[box])
		seen++
		checkHeader(box, r, "StyleBoxTexture")
		want := map[string]string{
			"texture":               fmt.Sprintf(`ExtResource("1_page%d")`, f.Page),
			"texture_margin_left":   godotFloat(float64(f.Slice[0])),
			"texture_margin_top":    godotFloat(float64(f.Slice[1])),
			"texture_margin_right":  godotFloat(float64(f.Slice[2])),
			"texture_margin_bottom": godotFloat(float64(f.Slice[3])),
			"region_rect":           fmt.Sprintf("Rect2(%d, %d, %d, %d)", f.X, f.Y, f.W, f.H),
		}
		if fmt.Sprint(r.resource) != fmt.Sprint(want) || r.exts[fmt.Sprintf("1_page%d", f.Page)] != "res://"+images[f.Page] {
			t.Errorf("%s: %v with %v, want %v", box, r.resource, r.exts, want)
		}
	}
	sets := map[string][]*Animation{}
	for i := range a.Animations {
		an := &a.Animations[i]
		key := an.Sheet
		if key == "" {
			key = an.Name
		}
		sets[key] = append(sets[key], an)
	}
	animRe := regexp.MustCompile(`(?s)\{\n"frames": \[(.*?)\],\n"loop": (true|false),\n"name": &"([^"]*)",\n"speed": ([0-9.e+-]+)\n\}`)
	subRe := regexp.MustCompile(`\{\n"duration": 1\.0,\n"texture": SubResource\("([^"]+)"\)\n\}`)
	for set, anims := range sets {
		name := "sheet/" + set + ".tres"
		r := parseTres(t, name, files[name])
		seen++
		checkHeader(name, r, "SpriteFrames")
		found := animRe.FindAllStringSubmatch(r.resource["animations"], -1)
		if len(found) != len(anims) {
			t.Fatalf("%s: %d animations, want %d:\n%s", name, len(found), len(anims), r.resource["animations"])
		}
		for i, an := range anims {
			m := found[i]
			if m[3] != an.Name || m[2] != strconv.FormatBool(an.Loop) || m[4] != godotFloat(an.FPS) {
				t.Errorf("%s: animation %q loop %s speed %s, want %q %v %v", name, m[3], m[2], m[4], an.Name, an.Loop, an.FPS)
			}
			subs := subRe.FindAllStringSubmatch(m[1], -1)
			order := playOrder(an)
			if len(subs) != len(order) {
				t.Fatalf("%s: animation %s has %d frames, want %d", name, an.Name, len(subs), len(order))
			}
			for j, k := range order {
				props := r.subs[subs[j][1]]
				if props == nil || props["type"] != "AtlasTexture" {
					t.Fatalf("%s: frame %d refers to %q, not an AtlasTexture sub-resource", name, j, subs[j][1])
				}
				checkGodotRegion(t, fmt.Sprintf("%s %s frame %d", name, an.Name, j), props, &a.Frames[k], "res://"+images[a.Frames[k].Page], r.exts, a.Settings.Extrude)
			}
		}
	}
	godotFiles := 0
	for n := range files {
		if strings.HasSuffix(n, ".tres") {
			godotFiles++
		}
	}
	if godotFiles != seen {
		t.Errorf("%d .tres files, checked %d", godotFiles, seen)
	}
}

// libgdxPage and libgdxRegion are what libGDX's TextureAtlasData reads.
type libgdxPage struct {
	name    string
	fields  map[string][]string
	regions []libgdxRegion
}
type libgdxRegion struct {
	name   string
	fields map[string][]string
}

// parseLibGDX follows the rules of libGDX's reader: a page name line,
// "key: a, b" entries until a line without a colon, regions likewise, a
// blank line ends a page.
func parseLibGDX(data []byte) []libgdxPage {
	entry := func(line string) (string, []string, bool) {
		line = strings.TrimSpace(line)
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return "", nil, false
		}
		var vals []string
		for _, s := range strings.Split(v, ",") {
			vals = append(vals, strings.TrimSpace(s))
		}
		return strings.TrimSpace(k), vals, true
	}
	var pages []libgdxPage
	var page *libgdxPage
	var region *libgdxRegion
	for _, line := range strings.Split(string(data), "\n") {
		switch k, v, ok := entry(line); {
		case strings.TrimSpace(line) == "":
			page, region = nil, nil
		case page == nil:
			pages = append(pages, libgdxPage{name: strings.TrimSpace(line), fields: map[string][]string{}})
			page = &pages[len(pages)-1]
		case ok && region == nil:
			page.fields[k] = v
		case ok:
			region.fields[k] = v
		default:
			page.regions = append(page.regions, libgdxRegion{name: strings.TrimSpace(line), fields: map[string][]string{}})
			region = &page.regions[len(page.regions)-1]
		}
	}
	return pages
}

func checkLibGDX(t *testing.T, a *Atlas, data []byte, images []string) {
	t.Helper()
	pages := parseLibGDX(data)
	if len(pages) != len(a.Pages) {
		t.Fatalf("libgdx: %d pages, want %d", len(pages), len(a.Pages))
	}
	filter := "Linear"
	if a.Settings.Filter == FilterNearest {
		filter = "Nearest"
	}
	for p, pg := range pages {
		r := a.Pages[p].Rect
		want := map[string][]string{
			"size":   {strconv.Itoa(r.Dx()), strconv.Itoa(r.Dy())},
			"format": {"RGBA8888"},
			"filter": {filter, filter},
			"repeat": {"none"},
		}
		if a.Settings.PremultiplyAlpha {
			want["pma"] = []string{"true"}
		}
		if pg.name != images[p] || fmt.Sprint(pg.fields) != fmt.Sprint(want) {
			t.Errorf("libgdx page %d: %s %v, want %s %v", p, pg.name, pg.fields, images[p], want)
		}
		onPage := a.pageFrames(p)
		if len(pg.regions) != len(onPage) {
			t.Fatalf("libgdx page %d: %d regions, want %d", p, len(pg.regions), len(onPage))
		}
		for i, k := range onPage {
			f := &a.Frames[k]
			reg := pg.regions[i]
			ints := func(key string) []int {
				var out []int
				for _, s := range reg.fields[key] {
					n, err := strconv.Atoi(s)
					if err != nil {
						t.Fatalf("libgdx region %s %s: %v", reg.name, key, err)
					}
					out = append(out, n)
				}
				return out
			}
			wantName := f.Name
			if f.Animation != "" {
				wantName = fullAnimName(f.Sheet, f.Animation)
			}
			if reg.name != wantName {
				t.Errorf("libgdx region %d on page %d is %q, want %q", i, p, reg.name, wantName)
			}
			if got := ints("bounds"); fmt.Sprint(got) != fmt.Sprint([]int{f.X, f.Y, f.W, f.H}) {
				t.Errorf("libgdx %s bounds %v, want %v", f.Name, got, []int{f.X, f.Y, f.W, f.H})
			}
			// offsets: left, bottom, original width, original height;
			// absent means untrimmed.
			off := ints("offsets")
			if off == nil {
				off = []int{0, 0, f.W, f.H}
			}
			if top := off[3] - off[1] - f.H; off[0] != f.OffsetX || top != f.OffsetY || off[2] != f.SourceW || off[3] != f.SourceH {
				t.Errorf("libgdx %s offsets %v reproduce x %d top %d of %d×%d, want %d %d of %d×%d", f.Name, off, off[0], top, off[2], off[3], f.OffsetX, f.OffsetY, f.SourceW, f.SourceH)
			}
			if rot := strings.Join(reg.fields["rotate"], ""); (rot == "90") != f.Rotated || (rot != "" && rot != "90") {
				t.Errorf("libgdx %s rotate %q, rotated %v", f.Name, rot, f.Rotated)
			}
			// libGDX's NinePatch splits are left, right, top, bottom.
			if split, want := ints("split"), []int{f.Slice[0], f.Slice[2], f.Slice[1], f.Slice[3]}; f.HasSlice != (split != nil) || f.HasSlice && !slices.Equal(split, want) {
				t.Errorf("libgdx %s split %v, want %v (set %v)", f.Name, split, want, f.HasSlice)
			}
			index := ints("index")
			if len(index) != 1 {
				t.Fatalf("libgdx %s index %v, want one number", f.Name, index)
			}
			if want := map[bool]int{true: f.Index, false: -1}[f.Animation != ""]; index[0] != want {
				t.Errorf("libgdx %s index %d, want %d", f.Name, index, want)
			}
		}
	}
}

func TestDeterministicBytes(t *testing.T) {
	for _, tc := range formatCases {
		sprites := caseSprites(tc.sliced)
		a1, err := Pack(context.Background(), sprites, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		// Reversed input order must not change anything.
		slices.Reverse(sprites)
		a2, err := Pack(context.Background(), sprites, tc.s)
		if err != nil {
			t.Fatal(err)
		}
		f1, err := a1.Files("out", "sheet")
		if err != nil {
			t.Fatal(err)
		}
		f2, err := a2.Files("out", "sheet")
		if err != nil {
			t.Fatal(err)
		}
		if len(f1) != len(f2) {
			t.Fatalf("%s: %d files, then %d", tc.name, len(f1), len(f2))
		}
		for i := range f1 {
			if f1[i].Name != f2[i].Name || !bytes.Equal(f1[i].Data, f2[i].Data) {
				t.Errorf("%s: %s differs between runs", tc.name, f1[i].Name)
			}
		}
	}
}

func TestGodotResDir(t *testing.T) {
	root := t.TempDir()
	tests := []struct {
		root, dir, want, err string
	}{
		{"", "anything", "res://", ""},
		{root, root, "res://", ""},
		{root, filepath.Join(root, "art", "atlases"), "res://art/atlases/", ""},
		{filepath.Join(root, "game"), filepath.Join(root, "out"), "", "is outside the Godot project root"},
	}
	for _, tt := range tests {
		got, err := GodotResDir(tt.root, tt.dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("GodotResDir(%q, %q) error %v, want %q", tt.root, tt.dir, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("GodotResDir(%q, %q) = %q, %v, want %q", tt.root, tt.dir, got, err, tt.want)
		}
	}
}

func TestGodotUID(t *testing.T) {
	seen := map[string]bool{}
	for i := range 1000 {
		u := godotUID(fmt.Sprintf("res://atlas/%d.tres", i))
		if _, ok := decodeUID(u); !ok || strings.ContainsAny(u[6:], "z9") {
			t.Fatalf("uid %q is not in Godot's form", u)
		}
		if seen[u] {
			t.Fatalf("uid %q repeats", u)
		}
		seen[u] = true
	}
	if godotUID("res://a.tres") != godotUID("res://a.tres") {
		t.Error("uid is not stable")
	}
	// Godot's own example of the largest id.
	const maxID = 0x7fffffffffffffff
	if id, ok := decodeUID("uid://d4n4ub6itg400"); !ok || id != maxID {
		t.Errorf("decodeUID(uid://d4n4ub6itg400) = %d, %v, want %d", id, ok, uint64(maxID))
	}
}

func TestFilesErrors(t *testing.T) {
	px := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	px.Pix[3] = 255
	tests := []struct {
		name    string
		sprites []Sprite
		formats []string
		base    string
		want    string
	}{
		{"bad base", []Sprite{{Name: "a", Image: px}}, nil, "x/y", `atlas file name "x/y" must be a plain name`},
		{"colon in libgdx", []Sprite{{Name: "a:b", Image: px}}, []string{FormatLibGDX}, "s",
			`libgdx format: region name "a:b" contains a colon, which the atlas reader takes for a field; rename the sprite or animation`},
		{"escaping godot name", []Sprite{{Name: "../x", Image: px}}, []string{FormatGodot}, "s", `godot format: sprite "../x": path "../x" `},
		{"godot clash", []Sprite{{Name: "hero", Image: px}, {Name: "h0", Image: px, Animation: "hero"}}, []string{FormatGodot}, "s",
			`godot format: sprite "hero" and animated set "hero" would both be written to s/hero.tres; rename one`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Pack(context.Background(), tt.sprites, Settings{Formats: tt.formats})
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Files(t.TempDir(), tt.base)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	a, err := Pack(context.Background(), fixedSprites(), Settings{Formats: AllFormats})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "assets")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a.Settings.GodotRoot = root
	paths, err := a.Write(dir, "sheet")
	if err != nil {
		t.Fatal(err)
	}
	files, err := a.Files(dir, "sheet")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(files) {
		t.Fatalf("%d paths for %d files", len(paths), len(files))
	}
	for i, f := range files {
		got, err := os.ReadFile(paths[i])
		if err != nil || !bytes.Equal(got, f.Data) {
			t.Errorf("%s: %v", paths[i], err)
		}
	}
	tres, err := os.ReadFile(filepath.Join(dir, "sheet", "hero.tres"))
	if err != nil || !strings.Contains(string(tres), `path="res://assets/sheet.png"`) {
		t.Errorf("hero.tres does not point at res://assets/sheet.png: %v\n%s", err, tres)
	}
}
