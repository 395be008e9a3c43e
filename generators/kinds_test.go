package generators_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/sampler"
	"github.com/kiln-dev/kiln/models/testmodels"
	"github.com/kiln-dev/kiln/pipeline"
)

func TestTextureBuildsMapsAndRebuildsOnlyDerive(t *testing.T) {
	manifest := `version: 1
assets:
  - id: tex/ground
    kind: texture
    model: sd
    prompt: cracked dry mud
    negative_prompt: blurry
    seed: 7
    steps: 2
    size: [64, 48]
    texture:
      maps: [albedo, normal, height, roughness, ao, orm, metallic]
      normal_strength: 1
      metallic: map
`
	root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": manifest})
	s := newSession(t, root)
	rep := s.build()
	if got := status(t, rep, "tex/ground:generate"); got != pipeline.StatusBuilt {
		t.Fatalf("generate: %s", got)
	}
	s.size("tex/ground.png", 64, 48)
	for _, m := range []string{"normal", "height", "roughness", "ao", "orm", "metallic"} {
		img := s.size("tex/ground_"+m+".png", 64, 48)
		rec := s.recipe("tex/ground_" + m + ".png")
		if rec.Extra["map"] != m || rec.Prompt != "cracked dry mud" || rec.Seed != 7 {
			t.Errorf("%s recipe: %+v", m, rec)
		}
		switch m {
		case "height":
			if _, ok := img.(*image.Gray16); !ok {
				t.Errorf("height map is %T, want 16-bit gray", img)
			}
		case "roughness", "ao", "metallic":
			if _, ok := img.(*image.Gray); !ok {
				t.Errorf("%s map is %T, want 8-bit gray", m, img)
			}
		}
	}
	rec := s.recipe("tex/ground.png")
	fp, err := s.models.Fingerprint("sd")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"prompt": "cracked dry mud", "negative_prompt": "blurry", "seed": "7", "model": fp,
		"scheduler": "euler", "steps": "2", "guidance": "7.5", "version": "test", "kind": "texture"}
	for _, f := range rec.Fields() {
		if w, ok := want[f[0]]; ok && f[1] != w {
			t.Errorf("recipe %s = %q, want %q", f[0], f[1], w)
		}
	}
	if n := rep.Stage("tex/ground:generate").Notes["provider"]; n != "cpu" {
		t.Errorf("provider note %q", n)
	}

	// A new normal strength re-runs the derivation only.
	normal1, _ := os.ReadFile(s.out("tex/ground_normal.png"))
	writeFiles(t, root, map[string]string{"a.kiln.yaml": strings.Replace(manifest, "normal_strength: 1", "normal_strength: 2.5", 1)})
	rep = s.build()
	if got := status(t, rep, "tex/ground:generate"); got != pipeline.StatusCached {
		t.Errorf("generate after a normal_strength change: %s, want cached", got)
	}
	if got := status(t, rep, "tex/ground:derive"); got != pipeline.StatusBuilt {
		t.Errorf("derive after a normal_strength change: %s, want built", got)
	}
	normal2, _ := os.ReadFile(s.out("tex/ground_normal.png"))
	if string(normal1) == string(normal2) {
		t.Error("the normal map did not change with normal_strength")
	}
	if got := s.recipe("tex/ground_normal.png").Extra["normal_strength"]; got != "2.5" {
		t.Errorf("normal_strength in the recipe: %q", got)
	}

	// Nothing changed: nothing runs.
	rep = s.build()
	if rep.Totals[pipeline.StatusBuilt] != 0 {
		t.Errorf("a no-op build ran %d stages", rep.Totals[pipeline.StatusBuilt])
	}
}

func TestSpriteSheet(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"pal.hex":            "000000\nffffff\nff0000\n00ff00\n",
		"a.kiln.yaml": `version: 1
assets:
  - id: hero/walk
    kind: sprite-sheet
    model: sd
    prompt: knight walking
    seed: 3
    steps: 2
    size: 64
    sprite:
      frames: 5
      fps: 8
      loop: false
      consistency: 0.5
      pixel_art: {factor: 4, colors: 6}
      columns: 3
  - id: hero/idle
    kind: sprite-sheet
    model: sd
    prompt: knight
    steps: 2
    sprite:
      frames: [standing, blinking]
      frame_size: 16
      pixel_art: {factor: 2, palette: pal.hex}
  - id: fx/smoke
    kind: sprite-sheet
    model: sd
    prompt: smoke puff
    steps: 2
    size: 32
    sprite: {frames: 2, background: keep}
`,
	})
	s := newSession(t, root)
	rep := s.build()

	// hero/walk: 5 frames of 64/4 = 16 px, a 3x2 sheet, metadata.
	for i := 0; i < 5; i++ {
		rel := generators.FramePath("hero/walk", i, 5)
		s.size(rel, 16, 16)
		rec := s.recipe(rel)
		if rec.Extra["frame"] != string(rune('0'+i)) || rec.Extra["pixel_art"] != "4" || rec.Extra["colors"] != "6" {
			t.Errorf("%s recipe extras: %v", rel, rec.Extra)
		}
		if !strings.Contains(rec.Prompt, "magenta background") {
			t.Errorf("%s prompt %q does not ask for the key colour", rel, rec.Prompt)
		}
		if wantSeed := int64(3 + i); rec.Seed != wantSeed {
			t.Errorf("%s seed %d, want %d", rel, rec.Seed, wantSeed)
		}
	}
	s.size("hero/walk.png", 48, 32)
	anim, err := generators.ReadAnimation(s.out("hero/walk.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(anim.Frames) != 5 || anim.FPS != 8 || anim.Loop || anim.FrameWidth != 16 || anim.FrameHeight != 16 ||
		anim.Sheet.Columns != 3 || anim.Sheet.Rows != 2 || !anim.Transparent || anim.Name != "hero/walk" {
		t.Errorf("animation: %+v", anim)
	}
	if f := anim.Frames[4]; f.Name != "hero/walk/frame_004" || f.File != "walk/frame_004.png" || f.X != 16 || f.Y != 16 || f.Output != "frame_004.png" {
		t.Errorf("frame 4: %+v", f)
	}
	// The palette is shared by every frame: at most 6 colours overall.
	colours := map[[3]uint8]bool{}
	for i := 0; i < 5; i++ {
		img := nrgba(s.decode(generators.FramePath("hero/walk", i, 5)))
		for p := 0; p < len(img.Pix); p += 4 {
			if img.Pix[p+3] == 0 {
				continue
			}
			if a := img.Pix[p+3]; a != 255 {
				t.Fatalf("pixel-art frame has soft alpha %d", a)
			}
			colours[[3]uint8{img.Pix[p], img.Pix[p+1], img.Pix[p+2]}] = true
		}
	}
	if len(colours) > 6 {
		t.Errorf("%d colours across frames, want at most 6", len(colours))
	}
	// Frames after the first are img2img from frame 0.
	if deps := stageDeps(s.stages, generators.FrameStage("hero/walk", 2, 5)); len(deps) != 1 || deps[0] != generators.FrameStage("hero/walk", 0, 5) {
		t.Errorf("frame 2 depends on %v", deps)
	}

	// hero/idle: per-frame prompts, frame_size 16 with factor 2 generates
	// at 32, palette from a file, shared seed.
	for i, p := range []string{"standing", "blinking"} {
		rel := generators.FramePath("hero/idle", i, 2)
		s.size(rel, 16, 16)
		rec := s.recipe(rel)
		if !strings.HasPrefix(rec.Prompt, "knight, "+p) || rec.Extra["palette"] != "pal.hex" {
			t.Errorf("%s recipe: %+v", rel, rec)
		}
		if rec.Seed != manifests.DefaultSeed("hero/idle") {
			t.Errorf("%s seed %d, want the shared %d", rel, rec.Seed, manifests.DefaultSeed("hero/idle"))
		}
		img := nrgba(s.decode(rel))
		for p := 0; p < len(img.Pix); p += 4 {
			if img.Pix[p+3] == 0 {
				continue
			}
			c := [3]uint8{img.Pix[p], img.Pix[p+1], img.Pix[p+2]}
			if c != [3]uint8{0, 0, 0} && c != [3]uint8{255, 255, 255} && c != [3]uint8{255, 0, 0} && c != [3]uint8{0, 255, 0} {
				t.Fatalf("%s has colour %v outside the palette", rel, c)
			}
		}
	}
	if rec := s.recipe(generators.FramePath("hero/idle", 0, 2)); rec.Extra["frame_size"] != "16x16" {
		t.Errorf("frame_size extra %q", rec.Extra["frame_size"])
	}
	idle, err := generators.ReadAnimation(s.out("hero/idle.json"))
	if err != nil {
		t.Fatal(err)
	}
	if idle.Frames[1].Prompt != "blinking" || idle.FPS != 12 || !idle.Loop {
		t.Errorf("idle animation: %+v", idle)
	}

	// fx/smoke keeps its background: opaque RGB frames.
	img := s.size(generators.FramePath("fx/smoke", 1, 2), 32, 32)
	if _, ok := img.(*image.RGBA); !ok {
		if n, ok := img.(*image.NRGBA); !ok || !n.Opaque() {
			t.Errorf("kept-background frame is %T, want opaque", img)
		}
	}
	if rec := s.recipe(generators.FramePath("fx/smoke", 0, 2)); strings.Contains(rec.Prompt, "background") || rec.Extra["background"] != "keep" {
		t.Errorf("smoke recipe: %+v", rec)
	}

	// A palette edit re-runs the sheet stage only.
	writeFiles(t, root, map[string]string{"pal.hex": "000000\nffffff\n"})
	rep = s.build()
	if got := status(t, rep, "hero/idle:sheet"); got != pipeline.StatusBuilt {
		t.Errorf("sheet after a palette edit: %s", got)
	}
	if got := status(t, rep, generators.FrameStage("hero/idle", 0, 2)); got != pipeline.StatusCached {
		t.Errorf("frame after a palette edit: %s", got)
	}
	_ = rep
}

// TestSpriteKeyThatKeysNothing: a key colour the frames do not have
// leaves them opaque, and the animation says so (issue 16: it said
// "transparent": true), with a warning and the share actually keyed.
func TestSpriteKeyThatKeysNothing(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml": `version: 1
assets:
  - id: fx/spark
    kind: sprite-sheet
    model: sd
    prompt: spark
    steps: 2
    size: 32
    sprite: {frames: 2, key_color: "#00fe01", key_threshold: 0, key_softness: 0}
`,
	})
	s := newSession(t, root)
	rep := s.build()
	anim, err := generators.ReadAnimation(s.out("fx/spark.json"))
	if err != nil {
		t.Fatal(err)
	}
	if anim.Transparent {
		t.Error(`animation says "transparent": true, but the key removed no pixel`)
	}
	var notes map[string]string
	for _, st := range rep.Stages {
		if st.Asset == "fx/spark" && st.Notes["keyed"] != "" {
			notes = st.Notes
		}
	}
	if notes["keyed"] != "0.0%" || !strings.Contains(notes["warning"], "removed no pixel") {
		t.Errorf("notes %v: want keyed 0.0%% and a warning", notes)
	}
}

func TestConceptArtVariationsContactAndPick(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml": `version: 1
assets:
  - id: concept/castle
    kind: concept-art
    model: sd
    prompt: castle on a hill
    seed: 100
    steps: 2
    size: [48, 32]
    concept:
      variations: 3
      hires: {scale: 1.5, strength: 0.5, steps: 2}
  - id: props/tower
    kind: tileable
    model: ex
    prompt: stone
    steps: 3
    size: 32
    from: concept/castle
    pick: 2
    strength: 0.6
`,
	})
	s := newSession(t, root)
	rep := s.build()
	for k := 0; k < 3; k++ {
		rel := generators.VariationPath("concept/castle", k, 3)
		s.size(rel, 72, 48)
		rec := s.recipe(rel)
		if rec.Seed != int64(100+k) || rec.Extra["hires"] != "1.5" || rec.Extra["strength"] != "0.5" {
			t.Errorf("%s recipe: %+v", rel, rec)
		}
	}
	s.decode("concept/castle.png") // the contact sheet
	if rec := s.recipe("concept/castle.png"); !strings.Contains(rec.Extra["contact_sheet"], "seeds 100 to 102") {
		t.Errorf("contact sheet recipe: %+v", rec)
	}
	st := findStage(s.stages, "props/tower:generate")
	if st == nil || len(st.Deps) != 1 || st.Deps[0] != generators.HiresStage("concept/castle", 2, 3) {
		t.Fatalf("props/tower deps: %+v", st)
	}
	if w := st.DepWhere[st.Deps[0]]; w != "a.kiln.yaml:19:11" {
		t.Errorf("DepWhere %q, want the from: field's position", w)
	}
	rec := s.recipe("props/tower.png")
	if rec.Extra["init"] != "concept/castle#2" || rec.Extra["tile"] != "xy" {
		t.Errorf("props/tower recipe: %+v", rec)
	}
	s.size("props/tower.png", 32, 32)
	if rep.Stage("props/tower:generate").Notes["seams"] == "" {
		t.Error("no seam note for a tileable asset")
	}
}

func stageDeps(stages []pipeline.Stage, id string) []string {
	if s := findStage(stages, id); s != nil {
		return s.Deps
	}
	return nil
}

func findStage(stages []pipeline.Stage, id string) *pipeline.Stage {
	for i := range stages {
		if stages[i].ID == id {
			return &stages[i]
		}
	}
	return nil
}

// nrgba converts img to non-premultiplied RGBA.
func nrgba(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

func TestTileable(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml": `version: 1
assets:
  - {id: tiles/floor, kind: tileable, model: sd, prompt: stone floor, seed: 5, steps: 3, size: [64, 48]}
  - {id: tiles/frieze, kind: tileable, model: sd, prompt: frieze, steps: 3, size: [64, 32], tileable: {tile: x}}
  - {id: tiles/moss, kind: tileable, model: ex, prompt: mossy stone, steps: 6, size: 64}
  - {id: tiles/wall, kind: texture, model: sd, prompt: brick wall, steps: 2, size: 64, texture: {tile: xy, maps: [albedo, normal]}}
`,
	})
	s := newSession(t, root)
	rep := s.build()
	for _, c := range []struct {
		id, file string
		w, h     int
		tile     string
	}{
		{"tiles/floor:generate", "tiles/floor.png", 64, 48, "xy"},
		{"tiles/frieze:generate", "tiles/frieze.png", 64, 32, "x"},
		{"tiles/moss:generate", "tiles/moss.png", 64, 64, "xy"},
		{"tiles/wall:generate", "tiles/wall.png", 64, 64, "xy"},
	} {
		s.size(c.file, c.w, c.h)
		note := rep.Stage(c.id).Notes["seams"]
		x, y, err := generators.InspectSeams(s.out(c.file))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: seams note %q, inspect x=%.3f y=%.3f", c.file, note, x, y)
		want := "x=" + strconv.FormatFloat(x, 'f', 2, 64)
		if c.tile == "xy" {
			want += " y=" + strconv.FormatFloat(y, 'f', 2, 64)
		}
		if note != want {
			t.Errorf("%s: seams note %q, want %q", c.id, note, want)
		}
		if x > imageops.SeamlessScore || (c.tile == "xy" && y > imageops.SeamlessScore) {
			t.Errorf("%s: seams x=%.3f y=%.3f, want at most %.2f on the tiled axes", c.file, x, y, imageops.SeamlessScore)
		}
		if rec := s.recipe(c.file); rec.Extra["tile"] != c.tile {
			t.Errorf("%s: recipe tile %q", c.file, rec.Extra["tile"])
		}
	}
	// The normal map of a tiled texture tiles too.
	if x, y, err := generators.InspectSeams(s.out("tiles/wall_normal.png")); err != nil || x > imageops.SeamlessScore || y > imageops.SeamlessScore {
		t.Errorf("tiled normal map seams x=%.3f y=%.3f (%v)", x, y, err)
	}
	// An untiled image scores well above on the same model.
	preview := filepath.Join(t.TempDir(), "tile.png")
	if err := generators.InspectTile(s.out("tiles/floor.png"), preview); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(preview)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil || cfg.Width != 128 || cfg.Height != 96 {
		t.Errorf("2x2 preview: %dx%d (%v), want 128x96", cfg.Width, cfg.Height, err)
	}
}

// cancelOnStep cancels a build at its first diffusion step.
type cancelOnStep struct {
	cancel func()
	steps  int
}

func (c *cancelOnStep) Start(int)                      {}
func (c *cancelOnStep) StageStart(string)              {}
func (c *cancelOnStep) StageDone(pipeline.StageReport) {}
func (c *cancelOnStep) Done(*pipeline.Report)          {}
func (c *cancelOnStep) StageStep(id string, done, total int) {
	c.steps++
	c.cancel()
}

func TestCancelAndExemplarsAndFromSprite(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{
		manifests.ConfigFile: kilnYAML,
		"art/ref.png":        string(pngBytes(t, 64, 48)),
		"a.kiln.yaml": `version: 1
assets:
  - {id: ref, kind: image, image: {source: art/ref.png}}
  - id: guard
    kind: sprite-sheet
    model: sd
    prompt: guard
    steps: 4
    size: 32
    from: ref
    sprite: {frames: 2, consistency: 0.25}
  - {id: pebbles, kind: tileable, model: ex, steps: 3, size: 32, exemplars: [art/ref.png]}
`,
	})
	s := newSession(t, root)
	stages := s.plan()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	prog := &cancelOnStep{cancel: cancel}
	rep, err := pipeline.Build(ctx, stages, pipeline.Options{Root: root, Jobs: 1, Progress: prog})
	if !errors.Is(err, context.Canceled) || !rep.Interrupted {
		t.Fatalf("cancelled build: %v (interrupted %v)", err, rep != nil && rep.Interrupted)
	}
	if prog.steps != 1 {
		t.Errorf("%d steps ran after cancelling at the first", prog.steps)
	}

	// The next build finishes what was cut short.
	s.build()
	for i := 0; i < 2; i++ {
		rel := generators.FramePath("guard", i, 2)
		s.size(rel, 32, 32)
		rec := s.recipe(rel)
		if rec.Extra["init"] != "ref" || rec.Extra["strength"] != "0.75" {
			t.Errorf("%s recipe: %+v", rel, rec)
		}
	}
	for _, id := range []string{"guard:frame_000", "guard:frame_001"} {
		if deps := stageDeps(s.stages, id); len(deps) != 1 || deps[0] != "ref:source" {
			t.Errorf("%s depends on %v, want the from: art", id, deps)
		}
	}
	s.size("pebbles.png", 32, 32)
	if st := findStage(s.stages, "pebbles:generate"); len(st.Files) != 1 || st.Files[0] != "art/ref.png" {
		t.Errorf("pebbles files %v", st.Files)
	}
}

// TestModelSetConcurrentOpen opens models from several goroutines (stages
// on different devices, or the CPU stages of another build in watch mode):
// each variant is made once and shared. Run with -race.
func TestModelSetConcurrentOpen(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML})
	s := newSession(t, root)
	type res struct {
		key string
		m   any
		err error
	}
	opens := []struct {
		name string
		o    generators.OpenOptions
	}{
		{"sd", generators.OpenOptions{}},
		{"sd", generators.OpenOptions{Tile: manifests.TileXY}},
		{"sd", generators.OpenOptions{Tile: manifests.TileX}},
		{"ex", generators.OpenOptions{Prompt: "stone", Seed: 1}},
		{"ex", generators.OpenOptions{Prompt: "stone", Seed: 2}},
	}
	out := make(chan res, 3*len(opens))
	for range 3 {
		for _, op := range opens {
			go func() {
				m, release, err := s.models.Open(context.Background(), op.name, op.o)
				if err == nil {
					defer release()
				}
				out <- res{fmt.Sprintf("%s %s %d", op.name, op.o.Tile, op.o.Seed), m, err}
			}()
		}
	}
	seen := map[string]any{}
	distinct := map[any]bool{}
	for range 3 * len(opens) {
		r := <-out
		if r.err != nil {
			t.Fatalf("%s: %v", r.key, r.err)
		}
		if prev, ok := seen[r.key]; ok && prev != r.m {
			t.Errorf("%s: two instances for one variant", r.key)
		}
		seen[r.key] = r.m
		distinct[r.m] = true
	}
	if len(distinct) != len(opens) {
		t.Errorf("%d distinct models for %d variants", len(distinct), len(opens))
	}
}

// BenchmarkNoopBuild1000 measures what `kiln build` does on an unchanged
// project of 1,000 generated assets (every diffusion kind): load the
// manifests, plan, and find every stage cached. The assets share one
// builtin:exemplar recipe so the first build is quick (equal keys run
// once); the no-op build still checks all 2,800 stages and outputs.
func BenchmarkNoopBuild1000(b *testing.B) {
	var m strings.Builder
	m.WriteString("version: 1\ndefaults: {model: ex, seed: 1, steps: 2, size: 16}\nassets:\n")
	for i := 0; i < 1000; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&m, "  - {id: a%d, kind: tileable, prompt: stone}\n", i)
		case 1:
			fmt.Fprintf(&m, "  - {id: a%d, kind: texture, prompt: stone, texture: {maps: [albedo, normal, orm]}}\n", i)
		case 2:
			fmt.Fprintf(&m, "  - {id: a%d, kind: sprite-sheet, prompt: stone, sprite: {frames: 2}}\n", i)
		case 3:
			fmt.Fprintf(&m, "  - {id: a%d, kind: concept-art, prompt: stone, concept: {variations: 2}}\n", i)
		}
	}
	root := project(b, "", map[string]string{manifests.ConfigFile: kilnYAML, "a.kiln.yaml": m.String()})
	s := newSession(b, root)
	s.build()
	build := func() *pipeline.Report {
		p, err := manifests.Load(root)
		if err != nil {
			b.Fatal(err)
		}
		stages, err := generators.Plan(p, &generators.Env{Models: s.models})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := pipeline.Build(context.Background(), stages, pipeline.Options{Root: root})
		if err != nil {
			b.Fatal(err)
		}
		return rep
	}
	var rep *pipeline.Report
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		rep = build()
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N)/1e6, "cpu-ms/op")
	if rep.Totals[pipeline.StatusCached] != len(rep.Stages) {
		b.Fatalf("no-op build: %v", rep.Totals)
	}
	b.ReportMetric(float64(len(rep.Stages)), "stages")
}

func TestExemplarFlipbook(t *testing.T) {
	root := project(t, "", map[string]string{
		manifests.ConfigFile: kilnYAML,
		"a.kiln.yaml": `version: 1
assets:
  - {id: fx/fire, kind: sprite-sheet, model: ex, prompt: lava, seed: 9, steps: 4, size: 32, sprite: {frames: 4}}
  - {id: fx/still, kind: sprite-sheet, model: ex, prompt: lava, seed: 9, steps: 4, size: 32, sprite: {frames: 3, consistency: 1}}
`,
	})
	s := newSession(t, root)
	s.build()
	var frames [][]byte
	for i := 0; i < 4; i++ {
		id := generators.FrameStage("fx/fire", i, 4)
		if deps := stageDeps(s.stages, id); len(deps) != 0 {
			t.Errorf("%s depends on %v; flipbook frames are independent", id, deps)
		}
		rel := generators.FramePath("fx/fire", i, 4)
		s.size(rel, 32, 32)
		rec := s.recipe(rel)
		if rec.Seed != 9 || rec.Extra["flipbook"] != fmt.Sprintf("frame %d of 4, motion 0.5", i) || rec.Extra["background"] != "keep" {
			t.Errorf("%s recipe: %+v", rel, rec)
		}
		frames = append(frames, nrgba(s.decode(rel)).Pix)
	}
	// Neighbouring frames are closer than frames half a loop apart, and
	// the loop closes (frame 3 is as close to frame 0 as to frame 2).
	d01, d02, d30 := meanAbsDiff(frames[0], frames[1]), meanAbsDiff(frames[0], frames[2]), meanAbsDiff(frames[3], frames[0])
	t.Logf("mean |frame difference|: 0-1 %.2f, 0-2 %.2f, 3-0 %.2f", d01, d02, d30)
	if d01 == 0 || d01 >= d02 || d30 >= d02 {
		t.Errorf("frame differences 0-1 %.2f, 0-2 %.2f, 3-0 %.2f: want neighbours (and the wrap) closer than opposite frames", d01, d02, d30)
	}
	// Consistency 1 is no motion: every frame is the same picture.
	first := nrgba(s.decode(generators.FramePath("fx/still", 0, 3))).Pix
	for i := 1; i < 3; i++ {
		if d := meanAbsDiff(nrgba(s.decode(generators.FramePath("fx/still", i, 3))).Pix, first); d != 0 {
			t.Errorf("fx/still frame %d differs from frame 0 by %.2f", i, d)
		}
	}
}

func meanAbsDiff(a, b []byte) float64 {
	s := 0
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return float64(s) / float64(len(a))
}

// TestInitNoise checks the sampler's InitNoise against the noise it draws
// itself: the same values give the same image, in txt2img and img2img.
func TestInitNoise(t *testing.T) {
	root := project(t, testmodels.Optimum, map[string]string{manifests.ConfigFile: kilnYAML})
	s := newSession(t, root)
	ctx := context.Background()
	m, release, err := s.models.Open(ctx, "sd", generators.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	noise := make([]float32, 4*4*4)
	sampler.NewGenerator(11).FillNormal(noise)
	init := nrgba(s.decodeBytes(pngBytes(t, 32, 32)))
	for _, img2img := range []bool{false, true} {
		req := sampler.Request{Prompt: "p", Width: 32, Height: 32, Steps: 3, Seed: 11, UseMean: true}
		if img2img {
			req.InitImage, req.Strength = init, 0.7
		}
		want, _, err := sampler.Generate(ctx, m, req)
		if err != nil {
			t.Fatal(err)
		}
		req.InitNoise = noise
		got, _, err := sampler.Generate(ctx, m, req)
		if err != nil {
			t.Fatal(err)
		}
		if string(got[0].Pix) != string(want[0].Pix) {
			t.Errorf("img2img %v: InitNoise equal to the drawn noise gives another image", img2img)
		}
		req.InitNoise = noise[1:]
		if _, _, err := sampler.Generate(ctx, m, req); err == nil || !strings.Contains(err.Error(), "init noise has 63 values, want 64") {
			t.Errorf("short init noise: %v", err)
		}
	}
}
