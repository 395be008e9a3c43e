package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadMissingConfig(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(dir)
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("err = %v, want ErrNoConfig", err)
	}
	want := `no kiln.yaml in ` + dir + ` (run "kiln init" to create a project there, or pass the folder that holds kiln.yaml)`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}

	_, err = LoadFS(project(map[string]string{ConfigFile: ""}))
	if !errors.Is(err, ErrNoConfig) {
		t.Errorf("LoadFS err = %v, want ErrNoConfig", err)
	}

	file := filepath.Join(dir, "x.txt")
	writeFiles(t, dir, map[string][]byte{"x.txt": []byte("x")})
	_, err = Load(file)
	want = "load project: " + file + " is not a folder (pass the folder that holds kiln.yaml)"
	if err == nil || err.Error() != want {
		t.Errorf("not a folder:\n got %v\nwant %s", err, want)
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, Starter())
	writeFiles(t, dir, map[string][]byte{
		"levels/cave.kiln.yaml":       []byte(m("assets:\n  - {id: cave/floor, kind: tileable, prompt: stone}\n")),
		".kiln/cache/x.kiln.yaml":     []byte("junk: ["), // cache and dot-folder: skipped
		".git/hooks/x.kiln.yaml":      []byte("junk: ["),
		"levels/.draft.kiln.yaml":     []byte("junk: ["), // dot-file: skipped
		"levels/notes.yaml":           []byte("junk: ["), // not matched by the glob
		"levels/deep/more.kiln.yaml":  []byte(m("assets: []\n")),
		"levels/deep/kiln.yaml":       []byte("junk: ["), // only the root kiln.yaml is the config
		"levels/deep/x.kiln.yaml.bak": []byte("junk: ["),
	})
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p.Root != dir {
		t.Errorf("Root = %q, want %q", p.Root, dir)
	}
	wantFiles := []string{StarterManifest, "levels/cave.kiln.yaml", "levels/deep/more.kiln.yaml"}
	if !reflect.DeepEqual(p.Files, wantFiles) {
		t.Errorf("Files = %q, want %q", p.Files, wantFiles)
	}
	if a := p.Asset("cave/floor"); a == nil || a.File != "levels/cave.kiln.yaml" || a.Pos.String() != "levels/cave.kiln.yaml:3:5" {
		t.Errorf("cave/floor = %+v", a)
	}
	if p.Asset("nope") != nil || p.Atlas("nope") != nil || p.Material("nope") != nil {
		t.Error("lookups of unknown ids must return nil")
	}
}

func TestManifestGlobs(t *testing.T) {
	p := mustLoad(t, map[string]string{
		ConfigFile:                "version: 1\noutput: build/out\ncache: build/cache\nmanifests: [art/*.yaml, 'levels/**/*.kiln.yaml']\n",
		"art/a.yaml":              m("assets: []\n"),
		"art/sub/b.yaml":          m("junk"), // * does not cross folders
		"levels/c.kiln.yaml":      m("assets: []\n"),
		"levels/x/y/d.kiln.yaml":  m("assets: []\n"),
		"e.kiln.yaml":             m("junk"), // not matched
		"build/out/f.kiln.yaml":   m("junk"),
		"build/cache/g.kiln.yaml": m("junk"),
	})
	want := []string{"art/a.yaml", "levels/c.kiln.yaml", "levels/x/y/d.kiln.yaml"}
	if !reflect.DeepEqual(p.Files, want) {
		t.Errorf("Files = %q, want %q", p.Files, want)
	}
	for name, want := range map[string]bool{
		"levels/c.kiln.yaml": true, "art/a.yaml": true, "e.kiln.yaml": false, "kiln.yaml": false,
		"build/out/levels/x.kiln.yaml": false, ".hidden/levels/a.kiln.yaml": false, "levels/.a/b.kiln.yaml": false,
	} {
		if got := p.Config.ManifestFile(name); got != want {
			t.Errorf("ManifestFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		glob, name string
		want       bool
	}{
		{"**/*.kiln.yaml", "a.kiln.yaml", true},
		{"**/*.kiln.yaml", "x/y/a.kiln.yaml", true},
		{"**/*.kiln.yaml", "x/y/a.yaml", false},
		{"ui/*", "ui/button", true},
		{"ui/*", "ui/menu/button", false},
		{"ui/**", "ui/menu/button", true},
		{"ui/**", "ui", true},
		{"**", "a/b/c", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"hero/walk_?", "hero/walk_1", true},
		{"hero/[ab]", "hero/c", false},
	} {
		if got := matchGlob(c.glob, c.name); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", c.glob, c.name, got, c.want)
		}
	}
}

// TestPrecedence checks built-in < kiln.yaml defaults < file defaults <
// asset, field by field, and that Where points at the line that won.
func TestPrecedence(t *testing.T) {
	cfg := baseConfig + `  steps: 20
  guidance: 5
  negative_prompt: blurry
  size: 256
  tags: [project]
  sprite: {fps: 10, loop: false}
  texture: {normal_strength: 3}
  atlas: {padding: 4, formats: [godot]}
  material: {double_sided: true, preview: cube}
`
	manifest := m(`defaults:
  steps: 30
  sprite: {fps: 24}
  atlas: {padding: 8}
assets:
  - {id: a, kind: tileable, prompt: s}
  - {id: b, kind: tileable, prompt: s, steps: 40, guidance: 0}
  - {id: c, kind: sprite-sheet, prompt: s, sprite: {frames: 2}}
  - {id: d, kind: sprite-sheet, prompt: s, sprite: {frames: 2, loop: true}}
  - {id: e, kind: image, image: {source: e.png}}
  - {id: f, kind: texture, prompt: s, material: {preview: sphere}}
atlases:
  - {id: g, include: [a]}
  - {id: h, include: [a], padding: 1}
materials:
  - {id: i, base_color: e}
`)
	other := m("assets:\n  - {id: x, kind: tileable, prompt: s}\natlases:\n  - {id: y, include: [x]}\n")
	p := mustLoad(t, map[string]string{ConfigFile: cfg, "a.kiln.yaml": manifest, "b.kiln.yaml": other})

	get := func(id string) *Asset {
		a := p.Asset(id)
		if a == nil {
			t.Fatalf("no asset %q", id)
		}
		return a
	}
	// File defaults win over kiln.yaml, the asset over both.
	if a := get("a"); a.Steps != 30 || a.At("steps").String() != "a.kiln.yaml:3:10" {
		t.Errorf("a.steps = %d at %s, want 30 from the file defaults", a.Steps, a.At("steps"))
	}
	if b := get("b"); b.Steps != 40 || b.At("steps").String() != "a.kiln.yaml:8:47" {
		t.Errorf("b.steps = %d at %s, want 40 from the asset", b.Steps, b.At("steps"))
	}
	if x := get("x"); x.Steps != 20 || x.At("steps").String() != "kiln.yaml:7:10" {
		t.Errorf("x.steps = %d at %s, want 20 from kiln.yaml (other file has no defaults)", x.Steps, x.At("steps"))
	}
	// guidance: 0 set on the asset is not "unset".
	if g := get("b").Guidance; g == nil || *g != 0 {
		t.Errorf("b.guidance = %v, want 0", g)
	}
	if g := get("a").Guidance; g == nil || *g != 5 {
		t.Errorf("a.guidance = %v, want 5 from kiln.yaml", g)
	}
	if a := get("a"); a.NegativePrompt != "blurry" || a.Size != (Size{256, 256}) || !reflect.DeepEqual(a.Tags, []string{"project"}) {
		t.Errorf("a = %+v", a)
	}
	// Blocks merge field by field across all three layers.
	c, d := get("c").Sprite, get("d").Sprite
	if c.FPS != 24 || c.Loop != false || c.Frames != 2 || c.Consistency != 0.5 {
		t.Errorf("c.sprite = %+v, want fps 24 (file), loop false (kiln.yaml), consistency 0.5 (built-in)", c)
	}
	if d.Loop != true {
		t.Errorf("d.sprite.loop = %v, want true from the asset", d.Loop)
	}
	if w := get("c").Where; w["sprite.fps"].String() != "a.kiln.yaml:4:17" || w["sprite.loop"].String() != "kiln.yaml:12:27" || w["sprite.frames"].String() != "a.kiln.yaml:9:61" {
		t.Errorf("c.Where = %v", w)
	}
	if get("c").Has("sprite.consistency") {
		t.Error("a built-in default must not appear in Where")
	}
	// Generation defaults do not reach image assets; kind blocks only their kind.
	if e := get("e"); e.Steps != 0 || e.Has("steps") || e.NegativePrompt != "" || e.Model != "" || !reflect.DeepEqual(e.Tags, []string{"project"}) {
		t.Errorf("image asset e = %+v (tags apply to every kind, generation fields do not)", e)
	}
	if f := get("f"); f.Texture.NormalStrength != 3 || f.Has("sprite") || f.Sprite != nil {
		t.Errorf("texture f = %+v", f.Texture)
	}
	// Atlas and material defaults.
	if g, h, y := p.Atlas("g"), p.Atlas("h"), p.Atlas("y"); g.Padding != 8 || h.Padding != 1 || y.Padding != 4 || !reflect.DeepEqual(g.Formats, []string{"godot"}) || g.Border != 0 {
		t.Errorf("atlas padding g=%d h=%d y=%d formats %v", g.Padding, h.Padding, y.Padding, g.Formats)
	}
	if i, f := p.Material("i"), p.Material("f"); !i.DoubleSided || i.Preview != "cube" || f.Preview != "sphere" || !f.DoubleSided {
		t.Errorf("materials i=%+v f=%+v", i, f)
	}
}

func TestExemplarDefaults(t *testing.T) {
	p := mustLoad(t, map[string]string{
		ConfigFile:       baseConfig + "  exemplars: [refs/stone.png]\n",
		"a.kiln.yaml":    m("assets:\n  - {id: a, kind: tileable, prompt: s}\n  - {id: b, kind: tileable, prompt: s, model: sd15}\n  - {id: c, kind: tileable, exemplars: [refs/own.png]}\n"),
		"refs/stone.png": "x", "refs/own.png": "x",
	})
	if a := p.Asset("a"); !reflect.DeepEqual(a.Exemplars, []string{"refs/stone.png"}) {
		t.Errorf("a.exemplars = %q", a.Exemplars)
	}
	if b := p.Asset("b"); b.Exemplars != nil || b.Has("exemplars") {
		t.Errorf("b uses sd15: inherited exemplars must not apply, got %q", b.Exemplars)
	}
	if c := p.Asset("c"); !reflect.DeepEqual(c.Exemplars, []string{"refs/own.png"}) || c.Prompt != "" {
		t.Errorf("c = %+v (exemplars make the prompt optional)", c)
	}
}

func TestModelChoice(t *testing.T) {
	asset := m("assets:\n  - {id: a, kind: tileable, prompt: s}\n  - {id: b, kind: tileable, prompt: s, model: 'builtin:exemplar'}\n")
	for _, c := range []struct {
		name, cfg, want string
	}{
		{"none configured", "version: 1\n", Exemplar},
		{"one configured", "version: 1\nmodels: {turbo: {path: models/sd-turbo, kind: turbo}}\n", "turbo"},
		{"default", baseConfig, "exemplar"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := mustLoad(t, map[string]string{ConfigFile: c.cfg, "a.kiln.yaml": asset})
			a := p.Asset("a")
			if a.Model != c.want {
				t.Errorf("model = %q, want %q", a.Model, c.want)
			}
			if p.Config.Model(a.Model) == nil {
				t.Errorf("Config.Model(%q) = nil", a.Model)
			}
			if mod := p.Config.Model(p.Asset("b").Model); mod == nil || mod.Builtin != "exemplar" || mod.Ref() != Exemplar {
				t.Errorf("builtin model = %+v", mod)
			}
		})
	}
	p := mustLoad(t, map[string]string{ConfigFile: baseConfig})
	if mod := p.Config.Model("sd15"); mod == nil || mod.Path != "models/sd15" || mod.Kind != ModelSD15 || mod.Name != "sd15" || mod.Ref() != "models/sd15" {
		t.Errorf("sd15 = %+v", mod)
	}
	if p.Config.Model("builtin:nope") != nil || p.Config.Model("nope") != nil {
		t.Error("unknown models must be nil")
	}
}

func TestResolvedValues(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`assets:
  - {id: s1, kind: tileable, prompt: s, size: [512, 768], seed: 42, scheduler: euler_a}
  - {id: s2, kind: tileable, prompt: s, size: "640x384", tileable: {tile: x}}
  - id: walk
    kind: sprite-sheet
    prompt: knight
    from: s1
    sprite:
      frames: [idle, step left, step right]
      frame_size: 32
      key_color: "#00FF80"
      background: keep
      pixel_art: {palette: ./palettes/pico8.hex}
  - id: tex
    kind: texture
    prompt: stone
    texture: {maps: [orm, albedo, normal], metallic: map, normal_y: directx, roughness: [0.1, 0.5], tile: xy}
    material: {repeat: 3, emissive: s2}
  - id: plain
    kind: texture
    prompt: stone
    texture: {maps: [albedo, ao]}
    material:
  - id: cave
    kind: concept-art
    prompt: cave
    concept: {variations: 3, hires: {}}
  - {id: ui/a, kind: image, image: {source: art/a.png}}
  - {id: ui/b, kind: image, image: {source: art/b.JPG}}
  - {id: ui/deep/c, kind: image, image: {source: art/c.jpeg}}
atlases:
  - {id: atl, include: ["ui/*", walk, ui/a, "ui/**"], trim: 8}
  - {id: atl2, include: [walk], trim: true, rotation: true, size: any}
materials:
  - {id: mat, orm: tex, base_color: s1, normal: {asset: tex}, alpha_mode: MASK, alpha_cutoff: 0.25, formats: [glb, gltf]}
`)})
	s1, s2 := p.Asset("s1"), p.Asset("s2")
	if s1.Size != (Size{512, 768}) || s1.Seed != 42 || s1.Scheduler != "euler_a" || s1.Tileable.Tile != TileXY || s1.Steps != 0 || s1.Guidance != nil {
		t.Errorf("s1 = %+v", s1)
	}
	if s2.Size != (Size{640, 384}) || s2.Seed != DefaultSeed("s2") || s2.Has("seed") || s2.Tileable.Tile != TileX || !s2.Tileable.Tile.X() || s2.Tileable.Tile.Y() {
		t.Errorf("s2 = %+v", s2)
	}
	if DefaultSeed("s2") == DefaultSeed("s1") || DefaultSeed("s2") != DefaultSeed("s2") || DefaultSeed("s2") > 0xffffffff {
		t.Error("DefaultSeed must be deterministic, 32-bit and differ per id")
	}
	w := p.Asset("walk")
	wantSprite := &SpriteOptions{Frames: 3, FramePrompts: []string{"idle", "step left", "step right"}, FrameSize: Size{32, 32},
		FPS: 12, Loop: true, Consistency: 0.5, Background: "keep", KeyThreshold: 0.15, KeySoftness: 0.1,
		PixelArt: &PixelArt{Factor: 4, Palette: "palettes/pico8.hex"}}
	wantSprite.KeyColor.R, wantSprite.KeyColor.G, wantSprite.KeyColor.B, wantSprite.KeyColor.A = 0, 255, 128, 255
	if !reflect.DeepEqual(w.Sprite, wantSprite) || w.From != "s1" || w.Strength != 0.75 {
		t.Errorf("walk.sprite = %+v\nwant %+v", w.Sprite, wantSprite)
	}
	tex := p.Asset("tex").Texture
	wantTex := &TextureOptions{Maps: []string{MapAlbedo, MapNormal, MapORM}, NormalStrength: 1, NormalY: "directx", Roughness: [2]float64{0.1, 0.5}, MetallicMap: true, Tile: TileXY}
	if !reflect.DeepEqual(tex, wantTex) {
		t.Errorf("tex = %+v\nwant %+v", tex, wantTex)
	}
	if pl := p.Asset("plain"); !reflect.DeepEqual(pl.Texture.Roughness, [2]float64{0.3, 0.9}) || pl.Texture.Tile != TileNone || pl.Material == nil {
		t.Errorf("plain = %+v material %v", pl.Texture, pl.Material)
	}
	if c := p.Asset("cave").Concept; c.Variations != 3 || c.Hires == nil || *c.Hires != (Hires{Scale: 2, Strength: 0.35}) {
		t.Errorf("cave = %+v", c)
	}

	// Inline materials take the texture's own maps; refs are "asset#map".
	refs := func(m *Material) []string {
		var out []string
		for _, r := range []*TexRef{m.BaseColor, m.MetallicRoughness, m.Normal, m.Occlusion, m.Emissive} {
			if r == nil {
				out = append(out, "-")
			} else {
				out = append(out, r.String())
			}
		}
		return out
	}
	tm := p.Material("tex")
	if tm.Owner != "tex" || !reflect.DeepEqual(refs(tm), []string{"tex#albedo", "tex#orm", "tex#normal", "tex#orm", "s2"}) ||
		tm.Repeat != [2]float64{3, 3} || tm.MetallicFactor != 1 || tm.EmissiveFactor != [3]float64{1, 1, 1} || tm.AlphaMode != "OPAQUE" {
		t.Errorf("tex material = %v %+v", refs(tm), tm)
	}
	if pm := p.Material("plain"); !reflect.DeepEqual(refs(pm), []string{"plain#albedo", "-", "-", "plain#ao", "-"}) || pm.MetallicFactor != 0 || pm.EmissiveFactor != [3]float64{} {
		t.Errorf("plain material = %v %+v", refs(pm), pm)
	}
	mat := p.Material("mat")
	if mat.Owner != "" || !reflect.DeepEqual(refs(mat), []string{"s1", "tex#orm", "tex#normal", "tex#orm", "-"}) || mat.AlphaCutoff != 0.25 ||
		!reflect.DeepEqual(mat.Formats, []string{"glb", "gltf"}) || mat.BaseColorFactor != [4]float64{1, 1, 1, 1} || mat.Repeat != [2]float64{1, 1} || len(mat.Refs()) != 4 {
		t.Errorf("mat = %v %+v", refs(mat), mat)
	}

	atl := p.Atlas("atl")
	if !reflect.DeepEqual(atl.Assets, []string{"ui/a", "ui/b", "walk", "ui/deep/c"}) || !atl.Trim || atl.TrimAlpha != 8 ||
		atl.MaxSize != 2048 || atl.Size != "pot" || !atl.Dedupe || atl.Heuristic != "best" || !reflect.DeepEqual(atl.Formats, []string{FormatJSONHash}) {
		t.Errorf("atl = %+v", atl)
	}
	if a2 := p.Atlas("atl2"); !a2.Trim || a2.TrimAlpha != 0 || !a2.Rotation || a2.Size != "any" {
		t.Errorf("atl2 = %+v", a2)
	}
	// Entries keep declaration order; materials list inline ones first (with their asset).
	var ids []string
	for _, m := range p.Materials {
		ids = append(ids, m.ID)
	}
	if !reflect.DeepEqual(ids, []string{"tex", "plain", "mat"}) {
		t.Errorf("materials = %q", ids)
	}
}

func TestSourceFiles(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`assets:
  - {id: a, kind: image, image: {source: art/a.png}}
  - {id: b, kind: tileable, prompt: s, exemplars: [refs/z.png, art/a.png]}
  - {id: c, kind: sprite-sheet, prompt: s, sprite: {frames: 1, pixel_art: {palette: pal/p.gpl}}}
`), "refs/z.png": "x", "art/a.png": "x"})
	if got := p.Asset("b").Files(); !reflect.DeepEqual(got, []string{"art/a.png", "refs/z.png"}) {
		t.Errorf("b.Files() = %q", got)
	}
	if got := p.SourceFiles(); !reflect.DeepEqual(got, []string{"art/a.png", "pal/p.gpl", "refs/z.png"}) {
		t.Errorf("SourceFiles() = %q", got)
	}
}

func TestConfigValues(t *testing.T) {
	p := mustLoad(t, map[string]string{ConfigFile: `version: 1
output: game/assets/gen
cache: ./tmp/kiln-cache
manifests: "content/**/*.kiln.yaml"
x-note: free-form keys starting with x- are ignored
models:
  exemplar: builtin:exemplar
  xl: {path: models/sdxl, kind: sdxl}
runtime: {library: /usr/lib/libonnxruntime.so.1, device: cuda, device_id: 1, fallback: cpu, threads: 4, memory_budget: 4GiB}
limits: {max_image_size: 4096, max_steps: 50, max_frames: 32, max_variations: 8, max_manifest_bytes: 64KiB, max_prompt_chars: 500}
godot: {project_root: ../game}
watch: {debounce: 250ms}
`})
	c := p.Config
	want := &Config{
		Version: 1, Output: "game/assets/gen", Cache: "tmp/kiln-cache", Manifests: []string{"content/**/*.kiln.yaml"},
		Models: map[string]*Model{
			"exemplar": {Name: "exemplar", Builtin: "exemplar", Pos: Pos{ConfigFile, 7, 13}},
			"xl":       {Name: "xl", Path: "models/sdxl", Kind: ModelSDXL, Pos: Pos{ConfigFile, 8, 7}},
		},
		Runtime: Runtime{Library: "/usr/lib/libonnxruntime.so.1", Device: "cuda", DeviceID: 1, Fallback: "cpu", Threads: 4, MemoryBudget: 4 << 30},
		Limits:  Limits{MaxImageSize: 4096, MaxSteps: 50, MaxFrames: 32, MaxVariations: 8, MaxManifestBytes: 64 << 10, MaxPromptChars: 500},
		Godot:   Godot{ProjectRoot: "../game"},
		Watch:   Watch{Debounce: 250 * time.Millisecond},
	}
	c.Where, c.refNames = nil, nil
	if !reflect.DeepEqual(c, want) {
		t.Errorf("config:\n got %+v\nwant %+v", c, want)
	}

	d := mustLoad(t, map[string]string{ConfigFile: "version: 1\n"}).Config
	if d.Output != "out" || d.Cache != ".kiln/cache" || !reflect.DeepEqual(d.Manifests, []string{"**/*.kiln.yaml"}) || d.Limits != DefaultLimits() ||
		d.Runtime.Device != "cpu" || d.Runtime.Fallback != "" || d.Godot.ProjectRoot != "." || d.Watch.Debounce != 100*time.Millisecond || d.Defaults != nil {
		t.Errorf("defaults = %+v", d)
	}
}

func TestAnchorsAndMergeKeys(t *testing.T) {
	p := mustLoad(t, map[string]string{"a.kiln.yaml": m(`x-tile: &tile
  kind: tileable
  steps: 12
  tags: [dungeon]
assets:
  - <<: *tile
    id: a
    prompt: moss
  - <<: *tile
    id: b
    prompt: brick
    steps: 14
`)})
	a, b := p.Asset("a"), p.Asset("b")
	if a.Kind != KindTileable || a.Steps != 12 || b.Steps != 14 || !reflect.DeepEqual(b.Tags, []string{"dungeon"}) {
		t.Errorf("a = %+v, b = %+v", a, b)
	}
	if a.At("steps").String() != "a.kiln.yaml:4:10" {
		t.Errorf("merged field position = %s, want the anchor's line", a.At("steps"))
	}
}

func TestPosAndErrorFormat(t *testing.T) {
	for _, c := range []struct {
		p    Pos
		want string
	}{
		{Pos{"a.kiln.yaml", 3, 5}, "a.kiln.yaml:3:5"},
		{Pos{"a.kiln.yaml", 3, 0}, "a.kiln.yaml:3"},
		{Pos{"a.kiln.yaml", 0, 0}, "a.kiln.yaml"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%#v.String() = %q, want %q", c.p, got, c.want)
		}
	}
	list := ErrorList{
		{Pos: Pos{"b.kiln.yaml", 1, 1}, Msg: "m3"},
		{Pos: Pos{"a.kiln.yaml", 10, 2}, Field: "assets[1].size", Msg: "m2", Hint: "h"},
		{Pos: Pos{"a.kiln.yaml", 9, 7}, Field: "version", Msg: "m1"},
	}
	list.Sort()
	want := "a.kiln.yaml:9:7: version: m1\na.kiln.yaml:10:2: assets[1].size: m2 (h)\nb.kiln.yaml:1:1: m3"
	if list.Error() != want {
		t.Errorf("ErrorList:\n%s\nwant\n%s", list, want)
	}
	if ErrorList(nil).Err() != nil || list.Err() == nil {
		t.Error("Err() must be nil exactly when the list is empty")
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"prompt", "negative_prompt", "steps", "size", "seed", "fps", "frames", "key_color"}
	for in, want := range map[string]string{
		"promt": "prompt", "prmopt": "prompt", "negativePrompt": "negative_prompt", "Steps": "steps",
		"fsp": "fps", "frame": "frames", "keycolour": "key_color", "zzz": "", "s": "", "x": "",
		"completely_unrelated": "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckIDAndPath(t *testing.T) {
	for _, id := range []string{"a", "dungeon/floor", "a_b-c/d1/e"} {
		if msg, _ := CheckID(id); msg != "" {
			t.Errorf("CheckID(%q) = %s", id, msg)
		}
	}
	for _, id := range []string{"", "/a", "a/", "a//b", "..", "a/../b", ".", "C:/a", `a\b`, "A", "a b", "nul", "a/lpt1", "é"} {
		if msg, _ := CheckID(id); msg == "" {
			t.Errorf("CheckID(%q) accepted", id)
		}
	}
	for in, want := range map[string]string{"art/a.png": "art/a.png", "./art/./a.png": "art/a.png", "...png": "...png"} {
		if got, msg, _ := checkPath(in, pathInside, ""); msg != "" || got != want {
			t.Errorf("checkPath(%q) = %q, %q", in, got, msg)
		}
	}
	for _, in := range []string{"", "/a", "../a", "a/../../b", "a/..", `a\b`, "C:a", "a:b", "a//b", "a/", "a\x00b"} {
		if _, msg, _ := checkPath(in, pathInside, ""); msg == "" {
			t.Errorf("checkPath(%q) accepted", in)
		}
	}
	if got, msg, _ := checkPath("../game/", pathUp, ""); msg != "" || got != "../game" {
		t.Errorf("pathUp ../game/ = %q, %q", got, msg)
	}
}

func TestSchemaModeline(t *testing.T) {
	for file, want := range map[string]string{
		"assets.kiln.yaml":        "# yaml-language-server: $schema=./.kiln/manifest.schema.json",
		"levels/cave.kiln.yaml":   "# yaml-language-server: $schema=../.kiln/manifest.schema.json",
		"levels/x/deep.kiln.yaml": "# yaml-language-server: $schema=../../.kiln/manifest.schema.json",
	} {
		if got := SchemaModeline(file); got != want {
			t.Errorf("SchemaModeline(%q) = %q, want %q", file, got, want)
		}
	}
}
