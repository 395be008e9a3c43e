package exemplar

import (
	"context"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/generators/imageops"
	"github.com/kiln-dev/kiln/models/sampler"
)

// previewDir is where TestPreview* write pictures for people to look at;
// they run only when KILN_EXEMPLAR_OUT names a folder.
func previewDir(t *testing.T) string {
	d := os.Getenv("KILN_EXEMPLAR_OUT")
	if d == "" {
		t.Skip("set KILN_EXEMPLAR_OUT to a folder to write preview pictures")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// sheet lays images out in a grid with 4-pixel gaps.
func sheet(imgs []image.Image, cols int) *image.NRGBA {
	w, h := imgs[0].Bounds().Dx(), imgs[0].Bounds().Dy()
	rows := (len(imgs) + cols - 1) / cols
	out := image.NewNRGBA(image.Rect(0, 0, cols*(w+4), rows*(h+4)))
	for i, img := range imgs {
		x, y := (i%cols)*(w+4), (i/cols)*(h+4)
		draw.Draw(out, image.Rect(x, y, x+w, y+h), img, img.Bounds().Min, draw.Src)
	}
	return out
}

func TestPreviewLibrary(t *testing.T) {
	dir := previewDir(t)
	var imgs []image.Image
	for _, m := range Materials() {
		img, err := RenderMaterial(m, 128, 0)
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	writePNG(t, filepath.Join(dir, "library.png"), sheet(imgs, 5))
	t.Logf("materials: %v", Materials())
}

func TestPreviewGenerate(t *testing.T) {
	dir := previewDir(t)
	rt := testRuntime(t)
	ctx := context.Background()
	prompts := strings.Split(os.Getenv("KILN_EXEMPLAR_PROMPTS"), ",")
	if prompts[0] == "" {
		prompts = []string{"stone", "brick", "grass", "lava"}
	}
	size := 256
	if v := os.Getenv("KILN_EXEMPLAR_SIZE"); v != "" {
		size, _ = strconv.Atoi(v)
	}
	sched := os.Getenv("KILN_EXEMPLAR_SCHED")
	tag := os.Getenv("KILN_EXEMPLAR_TAG")
	steps := DefaultSteps
	if s := os.Getenv("KILN_EXEMPLAR_STEPS"); s != "" {
		steps, _ = strconv.Atoi(s)
	}
	for _, prompt := range prompts {
		m, err := New(ctx, rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir(), Schedule: envSchedule(t), BankSize: envInt("KILN_EXEMPLAR_BANK"), Dims: envInt("KILN_EXEMPLAR_DIMS")})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		imgs, rep, err := sampler.Generate(ctx, m, sampler.Request{Prompt: prompt, Width: size, Height: size, Steps: steps, Seed: 1, Scheduler: sched})
		if err != nil {
			t.Fatal(err)
		}
		sx, sy := imageops.Seams(imageops.FromImage(imgs[0]))
		dx, dy := SeamShift(imgs[0], Tiling{X: true, Y: true})
		out := Roll(imgs[0], dx, dy)
		qx, qy := imageops.Seams(imageops.FromImage(out))
		t.Logf("%s: %v total (unet %v), seams %.3f %.3f, after SeamShift %.3f %.3f", prompt, time.Since(start), rep.UNetTime, sx, sy, qx, qy)
		name := strings.ReplaceAll(prompt, " ", "_") + tag
		writePNG(t, filepath.Join(dir, name+".png"), out)
		ex := make([]image.Image, len(m.Exemplars()))
		for i, e := range m.Exemplars() {
			ex[i] = e
		}
		writePNG(t, filepath.Join(dir, name+"-exemplars.png"), sheet(ex, len(ex)))
	}
}

// TestPreviewCompose joins PNGs named in KILN_EXEMPLAR_COMPOSE (comma
// separated, inside KILN_EXEMPLAR_OUT) side by side into compose.png.
func TestPreviewCompose(t *testing.T) {
	dir := previewDir(t)
	names := os.Getenv("KILN_EXEMPLAR_COMPOSE")
	if names == "" {
		t.Skip("set KILN_EXEMPLAR_COMPOSE")
	}
	var imgs []image.Image
	for _, n := range strings.Split(names, ",") {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		imgs = append(imgs, img)
	}
	cols := len(imgs)
	if c := envInt("KILN_EXEMPLAR_COLS"); c > 0 {
		cols = c
	}
	writePNG(t, filepath.Join(dir, "compose.png"), sheet(imgs, cols))
}

// TestPreviewFlipbook writes frame sheets of looping animations.
func TestPreviewFlipbook(t *testing.T) {
	dir := previewDir(t)
	rt := testRuntime(t)
	for _, prompt := range []string{"fire", "water", "lava", "smoke"} {
		m, err := New(context.Background(), rt, Options{Prompt: prompt, Tile: Tiling{X: true, Y: true}, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		const s, frames = 128, 8
		noise, err := FlipbookNoise(3, 3, s, s, FlipbookOptions{Frames: frames, Motion: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		var imgs []image.Image
		for _, n := range noise {
			imgs = append(imgs, generateFrom(t, m, n, s, s, DefaultSteps))
		}
		writePNG(t, filepath.Join(dir, "flipbook-"+prompt+".png"), sheet(imgs, frames))
	}
}
