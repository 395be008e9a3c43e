package generators_test

import (
	"bytes"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/generators/imageops"
)

func TestOutputNames(t *testing.T) {
	cases := []struct{ got, want string }{
		{generators.MainPath("dungeon/floor"), "dungeon/floor.png"},
		{generators.MapPath("dungeon/floor", "normal"), "dungeon/floor_normal.png"},
		{generators.FramePath("hero/walk", 7, 8), "hero/walk/frame_007.png"},
		{generators.FramePath("hero/walk", 5, 1200), "hero/walk/frame_0005.png"},
		{generators.FramePath("hero/walk", 1000, 1001), "hero/walk/frame_1000.png"},
		{generators.AnimationPath("hero/walk"), "hero/walk.json"},
		{generators.VariationPath("c", 2, 3), "c/variation_002.png"},
		{generators.FrameStage("hero/walk", 0, 1), "hero/walk:frame_000"},
		{generators.VariationStage("c", 12, 64), "c:variation_012"},
		{generators.HiresStage("c", 1, 2), "c:hires_001"},
		{generators.FrameOutput(3, 4), "frame_003.png"},
		{generators.MapOutput("orm"), "orm.png"},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestDecodeAnimation(t *testing.T) {
	good := `{"version":1,"name":"hero/walk","fps":8,"loop":true,"frame_width":16,"frame_height":16,"transparent":true,
"frames":[{"name":"hero/walk/frame_000","file":"walk/frame_000.png","output":"frame_000.png","x":0,"y":0},
{"name":"hero/walk/frame_001","file":"walk/frame_001.png","output":"frame_001.png","x":16,"y":0}],
"sheet":{"file":"walk.png","output":"sheet.png","columns":2,"rows":1,"width":32,"height":16}}`
	a, err := generators.DecodeAnimation(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Frames) != 2 || a.Frames[1].X != 16 || a.Sheet.Columns != 2 {
		t.Errorf("decoded %+v", a)
	}
	cases := []struct{ name, from, to, err string }{
		{"version", `"version":1`, `"version":2`, "version 2: this kiln reads version 1"},
		{"fps", `"fps":8`, `"fps":0`, "fps 0: want a positive number"},
		{"outside", `"x":16`, `"x":17`, "frame 1 at (17, 0) lies outside the 32x16 sheet"},
		{"duplicate", `frame_001","file"`, `frame_000","file"`, `frame 1: name "hero/walk/frame_000" is empty or repeated`},
		{"unknown field", `"loop":true`, `"loop":true,"speed":3`, `unknown field "speed"`},
		{"absolute", `"walk/frame_000.png"`, `"/walk/frame_000.png"`, "want a relative path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := generators.DecodeAnimation(bytes.NewReader([]byte(strings.Replace(good, c.from, c.to, 1))))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want it to contain %q", err, c.err)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	// Ramps across and down: the jump where an edge meets the opposite
	// one is about (side - 1) interior steps.
	ramp := filepath.Join(dir, "ramp.png")
	if err := os.WriteFile(ramp, pngBytes(t, 32, 16), 0o644); err != nil {
		t.Fatal(err)
	}
	x, y, err := generators.InspectSeams(ramp)
	if err != nil {
		t.Fatal(err)
	}
	if x < 10*imageops.SeamlessScore || y < 10*imageops.SeamlessScore {
		t.Errorf("ramp seams x=%.2f y=%.2f, want both far above %.2f", x, y, imageops.SeamlessScore)
	}
	out := filepath.Join(dir, "sub", "tile.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := generators.InspectTile(ramp, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := image.DecodeConfig(f)
	f.Close()
	if err != nil || cfg.Width != 64 || cfg.Height != 32 {
		t.Errorf("tile preview %dx%d (%v), want 64x32", cfg.Width, cfg.Height, err)
	}
	if _, err := generators.InspectRecipe(ramp); !errors.Is(err, imageops.ErrNoRecipe) {
		t.Errorf("recipe of a plain PNG: %v, want ErrNoRecipe", err)
	}
	if _, _, err := generators.InspectSeams(filepath.Join(dir, "missing.png")); err == nil {
		t.Error("seams of a missing file: no error")
	}
}
