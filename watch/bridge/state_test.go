package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/watch"
	"github.com/kiln-dev/kiln/watch/preview"
)

// manifest has one entry of every kind the preview shows differently.
const manifest = `version: 1
assets:
  - id: ui/hello
    kind: image
    image:
      source: art/hello.png
  - id: dungeon/floor
    kind: texture
    prompt: mossy cobblestone
    texture:
      maps: [albedo, normal, orm]
      tile: xy
    material:
      repeat: [2, 2]
  - id: dungeon/wall
    kind: tileable
    prompt: red brick wall
  - id: fx/fire
    kind: sprite-sheet
    prompt: fire flames
    sprite:
      frames: 5
      fps: 12
atlases:
  - id: ui/atlas
    include: ["ui/*", fx/fire]
`

func loadProject(t *testing.T) *manifests.Project {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, data := range manifests.Starter() {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	fsys[manifests.StarterManifest] = &fstest.MapFile{Data: []byte(manifest)}
	p, err := manifests.LoadFS(fsys)
	if err != nil {
		t.Fatalf("load test project: %v", err)
	}
	return p
}

func out(name, p, sha string) pipeline.OutputReport {
	return pipeline.OutputReport{Name: name, Path: p, SHA256: sha}
}

func TestState(t *testing.T) {
	p := loadProject(t)
	failed := &pipeline.StageError{Message: "model exemplar: no exemplar matches \"flames\"", Where: "assets.kiln.yaml:20:13"}
	rep := &pipeline.Report{Stages: []pipeline.StageReport{
		{ID: "ui/hello:source", Asset: "ui/hello", Kind: "image.source", Status: pipeline.StatusCached, Outputs: []pipeline.OutputReport{out("image.png", "ui/hello.png", "aaaaaaaaaaaaaaaaaaaaaaaa")}},
		{ID: "dungeon/floor:generate", Asset: "dungeon/floor", Kind: "texture.generate", Status: pipeline.StatusBuilt, Duration: pipeline.Duration(1500 * time.Millisecond),
			Outputs: []pipeline.OutputReport{out("albedo.raw", "", "c0"), out("normal.png", "dungeon/floor_normal.png", "c1"), out("albedo.png", "dungeon/floor.png", "c2"), out("orm.png", "dungeon/floor_orm.png", "c3")}},
		{ID: "dungeon/floor:gltf", Asset: "dungeon/floor", Kind: "gltf.export", Status: pipeline.StatusBuilt,
			Outputs: []pipeline.OutputReport{out("gltf", "materials/dungeon/floor.gltf", "d0"), out("bin", "materials/dungeon/floor.bin", "d1"), out("glb", "materials/dungeon/floor.glb", "d2")}},
		{ID: "dungeon/wall:generate", Asset: "dungeon/wall", Kind: "tileable.generate", Status: pipeline.StatusCached, Outputs: []pipeline.OutputReport{out("image.png", "dungeon/wall.png", "e0")}},
		{ID: "fx/fire:frames", Asset: "fx/fire", Kind: "sprite.frames", Status: pipeline.StatusFailed, Error: failed},
		{ID: "fx/fire:sheet", Asset: "fx/fire", Kind: "sprite.sheet", Status: pipeline.StatusSkipped, Reasons: []string{"dependency fx/fire:frames failed"}},
		{ID: "ui/atlas:pack", Asset: "ui/atlas", Kind: "atlas.pack", Status: pipeline.StatusSkipped},
	}}
	res := Result(rep, fmt.Errorf("%w: stage fx/fire:frames failed", pipeline.ErrFailed))
	res.Duration = 1600 * time.Millisecond
	res.Changed = []string{"assets.kiln.yaml"}
	st := State(p, rep, res, preview.State{})

	if st.OK || st.Summary != "2 built, 2 cached, 1 failed, 2 skipped in 1.6s" {
		t.Errorf("summary %q ok=%v", st.Summary, st.OK)
	}
	if len(st.Errors) != 0 {
		t.Errorf("project errors %q: the stage error belongs on its asset", st.Errors)
	}
	byID := map[string]preview.Asset{}
	for _, a := range st.Assets {
		byID[a.ID] = a
	}
	if ids := len(st.Assets); ids != 4 {
		t.Fatalf("%d assets", ids)
	}
	hello := byID["ui/hello"]
	if hello.Status != "cached" || len(hello.Images) != 1 || hello.Images[0].Path != "ui/hello.png" || hello.Images[0].Version != "aaaaaaaaaaaaaaaa" || hello.Tile != "" {
		t.Errorf("image asset %+v", hello)
	}
	floor := byID["dungeon/floor"]
	var paths, labels []string
	for _, f := range floor.Images {
		paths = append(paths, f.Path)
		labels = append(labels, f.Label)
	}
	if floor.Status != "built" || floor.Tile != "xy" || floor.Prompt != "mossy cobblestone" || !strings.HasPrefix(floor.Where, "assets.kiln.yaml:") {
		t.Errorf("texture %+v", floor)
	}
	if !slices.Equal(labels, []string{"albedo", "normal", "orm"}) || paths[0] != "dungeon/floor.png" {
		t.Errorf("texture images %q %q: albedo first, then map order", labels, paths)
	}
	if len(floor.Files) != 0 {
		t.Errorf("texture files %+v: the glTF belongs to the material", floor.Files)
	}
	if floor.Stages[0].DurationMS != 1500 {
		t.Errorf("stage duration %v ms", floor.Stages[0].DurationMS)
	}
	wall := byID["dungeon/wall"]
	if wall.Tile != "xy" || wall.Status != "cached" {
		t.Errorf("tileable %+v", wall)
	}
	fire := byID["fx/fire"]
	if fire.Status != "failed" || fire.Sprite == nil || fire.Sprite.FPS != 12 || fire.Sprite.Frames != 5 || fire.Sprite.Columns != 3 || fire.Sprite.Rows != 2 {
		t.Errorf("sprite %+v %+v", fire, fire.Sprite)
	}
	if fire.Stages[0].Error != "assets.kiln.yaml:20:13: model exemplar: no exemplar matches \"flames\"" {
		t.Errorf("sprite stage error %q", fire.Stages[0].Error)
	}
	if len(st.Atlases) != 1 || st.Atlases[0].Status != "skipped" || !slices.Equal(st.Atlases[0].Assets, []string{"ui/hello", "fx/fire"}) {
		t.Errorf("atlases %+v", st.Atlases)
	}
	if len(st.Materials) != 1 {
		t.Fatalf("materials %+v", st.Materials)
	}
	m := st.Materials[0]
	if m.ID != "dungeon/floor" || m.Status != "built" || m.GLTF == nil || m.GLTF.Path != "materials/dungeon/floor.gltf" || m.GLB == nil || m.GLB.Path != "materials/dungeon/floor.glb" {
		t.Errorf("material %+v", m)
	}
	if len(m.Textures) == 0 || m.Textures[0].Path != "dungeon/floor.png" {
		t.Errorf("material textures %+v: from the texture's maps", m.Textures)
	}

	// A broken save: no project. The last state's entries stay, with the
	// errors on top.
	bad := Result(nil, manifests.ErrorList{{Pos: manifests.Pos{File: "assets.kiln.yaml", Line: 3, Col: 5}, Field: "assets[0].promt", Msg: "unknown field", Hint: `did you mean "prompt"?`}})
	bad.Duration = 3 * time.Millisecond
	st2 := State(nil, nil, bad, st)
	if st2.OK || len(st2.Assets) != 4 || st2.Project != st.Project {
		t.Errorf("state after a failed load: ok=%v, %d assets", st2.OK, len(st2.Assets))
	}
	if !slices.Equal(st2.Errors, []string{`assets.kiln.yaml:3:5: assets[0].promt: unknown field (did you mean "prompt"?)`}) || st2.Summary != "error in 3.0ms; last good outputs kept" {
		t.Errorf("errors %q summary %q", st2.Errors, st2.Summary)
	}
}

// TestMaterialCardBaseColour: with the stage outputs a real build has (a
// texture's generate stage writes image.png, its derive stage the maps),
// the material card shows the base colour first, then the maps.
func TestMaterialCardBaseColour(t *testing.T) {
	p := loadProject(t)
	rep := &pipeline.Report{Stages: []pipeline.StageReport{
		{ID: "dungeon/floor:generate", Asset: "dungeon/floor", Kind: "texture.generate", Status: pipeline.StatusBuilt,
			Outputs: []pipeline.OutputReport{out("image.png", "dungeon/floor.png", "c0")}},
		{ID: "dungeon/floor:derive", Asset: "dungeon/floor", Kind: "pbr.derive", Status: pipeline.StatusBuilt,
			Outputs: []pipeline.OutputReport{out("normal.png", "dungeon/floor_normal.png", "c1"), out("orm.png", "dungeon/floor_orm.png", "c2")}},
		{ID: "dungeon/floor:material", Asset: "dungeon/floor", Kind: "material.gltf", Status: pipeline.StatusBuilt,
			Outputs: []pipeline.OutputReport{out("floor.gltf", "dungeon/floor.gltf", "d0"), out("floor.bin", "dungeon/floor.bin", "d1")}},
	}}
	st := State(p, rep, Result(rep, nil), preview.State{})
	if len(st.Materials) != 1 {
		t.Fatalf("materials %+v", st.Materials)
	}
	var paths []string
	for _, f := range st.Materials[0].Textures {
		paths = append(paths, f.Path)
	}
	if len(paths) == 0 || paths[0] != "dungeon/floor.png" || !slices.Contains(paths, "dungeon/floor_normal.png") || !slices.Contains(paths, "dungeon/floor_orm.png") {
		t.Errorf("material textures %q: want the base colour first, then the normal and ORM maps", paths)
	}
}

func TestSpriteFrames(t *testing.T) {
	images := []preview.File{{Path: "s/frame10.png", Label: "frame10"}, {Path: "s/sheet.png", Label: "sheet"}, {Path: "s/frame2.png", Label: "frame2"}}
	sp, rest := sprite(&manifests.SpriteOptions{Frames: 2, FPS: 8, Columns: 2}, images)
	if sp.Sheet == nil || sp.Sheet.Path != "s/sheet.png" || len(sp.FrameFiles) != 2 || len(rest) != 1 || sp.Rows != 1 {
		t.Errorf("sprite %+v rest %+v", sp, rest)
	}
	if !naturalLess("frame2", "frame10") || naturalLess("frame10", "frame2") || !naturalLess("a", "b") || naturalLess("b", "a") || !naturalLess("x", "x1") {
		t.Error("naturalLess")
	}
}

func TestResult(t *testing.T) {
	rep := &pipeline.Report{
		Duration: pipeline.Duration(1200 * time.Millisecond),
		Stages: []pipeline.StageReport{
			{ID: "b:gen", Status: pipeline.StatusBuilt},
			{ID: "a:gen", Status: pipeline.StatusBuilt},
			{ID: "c:gen", Status: pipeline.StatusCached},
			{ID: "d:gen", Status: pipeline.StatusFailed, Error: &pipeline.StageError{Message: "boom", Where: "x.kiln.yaml:3:5"}},
			{ID: "e:gen", Status: pipeline.StatusSkipped},
			{ID: "f:gen", Status: pipeline.StatusInterrupted},
		},
	}
	tests := []struct {
		name string
		rep  *pipeline.Report
		err  error
		want watch.Result
	}{
		{"ok", &pipeline.Report{Stages: rep.Stages[:3], Duration: rep.Duration}, nil,
			watch.Result{Built: 2, Cached: 1, BuiltIDs: []string{"a:gen", "b:gen"}, Duration: 1200 * time.Millisecond}},
		{"failed stage", rep, fmt.Errorf("%w: stage d:gen failed: boom", pipeline.ErrFailed),
			watch.Result{Built: 2, Cached: 1, Failed: 1, Skipped: 2, BuiltIDs: []string{"a:gen", "b:gen"}, FailedIDs: []string{"d:gen"},
				Duration: 1200 * time.Millisecond, Errors: []string{"x.kiln.yaml:3:5: boom"}}},
		{"manifest errors", nil, manifests.ErrorList{
			{Pos: manifests.Pos{File: "a.kiln.yaml", Line: 1, Col: 2}, Msg: "bad"},
			{Pos: manifests.Pos{File: "b.kiln.yaml", Line: 3}, Field: "assets[0].size", Msg: "too big"}},
			watch.Result{Errors: []string{"a.kiln.yaml:1:2: bad", "b.kiln.yaml:3: assets[0].size: too big"}}},
		{"graph errors", nil, fmt.Errorf("plan: %w", &pipeline.GraphError{Problems: []pipeline.Problem{{Where: "a.kiln.yaml:4:9", Message: "cycle: a → b → a"}, {Message: "no stage x"}}}),
			watch.Result{Errors: []string{"a.kiln.yaml:4:9: cycle: a → b → a", "no stage x"}}},
		{"interrupted", &pipeline.Report{Stages: rep.Stages[:1], Interrupted: true}, fmt.Errorf("build interrupted: %w", context.Canceled),
			watch.Result{Built: 1, BuiltIDs: []string{"b:gen"}, Interrupted: true}},
		{"other", nil, errors.New("another build holds the project lock\n"),
			watch.Result{Errors: []string{"another build holds the project lock"}}},
	}
	for _, tt := range tests {
		got := Result(tt.rep, tt.err)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tt.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}
