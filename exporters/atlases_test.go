package exporters

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
)

// atlasProject writes a project with two image assets and one atlas whose
// extra fields are atlasYAML, and loads it.
func atlasProject(t *testing.T, atlasYAML string) (*manifests.Project, string) {
	t.Helper()
	root := t.TempDir()
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kiln.yaml", []byte("version: 1\n"))
	for name, size := range map[string]int{"button.png": 20, "gem.png": 12} {
		img := image.NewNRGBA(image.Rect(0, 0, size, size))
		for y := range size {
			for x := range size {
				img.SetNRGBA(x, y, color.NRGBA{uint8(x * 10), uint8(y * 10), 90, 255})
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			t.Fatal(err)
		}
		write(name, b.Bytes())
	}
	write("ui.kiln.yaml", []byte("version: 1\nassets:\n"+
		"  - {id: ui/button, kind: image, image: {source: button.png}}\n"+
		"  - {id: ui/gem, kind: image, image: {source: gem.png}}\n"+
		"atlases:\n"+
		"  - id: ui/atlas\n"+
		"    include: [ui/button, ui/gem]\n"+
		"    formats: [json-hash, libgdx]\n"+atlasYAML))
	p, err := manifests.Load(root)
	if err != nil {
		t.Fatal(err)
	}
	return p, root
}

// runAtlas plans p's atlas stage and runs it, feeding each image asset's
// source file as its input, and returns the files and notes it wrote.
func runAtlas(t *testing.T, p *manifests.Project, root string) (map[string][]byte, map[string]string, error) {
	t.Helper()
	stages, err := Plan(p)
	if err != nil {
		t.Fatal(err)
	}
	var st *pipeline.Stage
	for i := range stages {
		if stages[i].ID == AtlasStage("ui/atlas") {
			st = &stages[i]
		}
	}
	if st == nil {
		t.Fatal("no atlas stage")
	}
	files := map[string][]byte{}
	notes := map[string]string{}
	input := func(dep, name string) (string, error) {
		for _, src := range []string{"button", "gem"} {
			if strings.Contains(dep, src) {
				return filepath.Join(root, src+".png"), nil
			}
		}
		t.Fatalf("unexpected input %s %s", dep, name)
		return "", nil
	}
	create := func(name string) (io.WriteCloser, error) { return &memFile{name: name, files: files}, nil }
	r := pipeline.NewRun(root, nil, input, create, nil, func(k, v string) { notes[k] = v })
	return files, notes, st.Run(context.Background(), r)
}

type memFile struct {
	bytes.Buffer
	name  string
	files map[string][]byte
}

func (f *memFile) Close() error { f.files[f.name] = f.Bytes(); return nil }

func TestAtlasStageScalesAndSprites(t *testing.T) {
	p, root := atlasProject(t, "    scales: [1, 0.5]\n"+
		"    sprites:\n"+
		"      ui/button: {pivot: [0.5, 1], slice: [4, 4, 6, 6]}\n")
	files, notes, err := runAtlas(t, p, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"atlas.png", "atlas.json", "atlas.atlas", "atlas@0.5x.png", "atlas@0.5x.json", "atlas@0.5x.atlas"} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s was not written (wrote %d files)", name, len(files))
		}
	}
	for name, scale := range map[string]string{"atlas.json": "1", "atlas@0.5x.json": "0.5"} {
		var doc struct {
			Frames map[string]struct {
				Pivot   struct{ X, Y float64 }
				Borders *struct{ Left, Top, Right, Bottom int }
			}
			Meta struct{ Scale string }
		}
		if err := json.Unmarshal(files[name], &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b := doc.Frames["ui/button"]
		if doc.Meta.Scale != scale || b.Pivot.X != 0.5 || b.Pivot.Y != 1 || b.Borders == nil {
			t.Errorf("%s: scale %q, button pivot %+v borders %+v; want scale %s, pivot 0.5,1 and borders", name, doc.Meta.Scale, b.Pivot, b.Borders, scale)
		}
	}
	if !bytes.Contains(files["atlas.atlas"], []byte("  split: 4, 6, 4, 6\n")) || !bytes.Contains(files["atlas@0.5x.atlas"], []byte("  split: 2, 3, 2, 3\n")) {
		t.Errorf("libgdx split lines missing:\n%s\n%s", files["atlas.atlas"], files["atlas@0.5x.atlas"])
	}
	if notes["pages"] != "1" || notes["pages@0.5x"] != "1" {
		t.Errorf("notes %v, want pages and pages@0.5x", notes)
	}
	if !strings.Contains(notes["warning"], "libgdx: the libGDX atlas format has no origin") || !strings.Contains(notes["warning"], "ui.kiln.yaml:") {
		t.Errorf("warning %q, want the libgdx pivot warning with the atlas position", notes["warning"])
	}
}

func TestAtlasStageSpriteErrors(t *testing.T) {
	p, _ := atlasProject(t, "    sprites:\n      ui/gen: {pivot: [0, 0]}\n")
	_, err := Plan(p)
	if err == nil || !strings.Contains(err.Error(), `ui.kiln.yaml:10:15: sprites.ui/gen: asset "ui/gen" is not included in this atlas`) {
		t.Errorf("error %v, want the not-included sprites entry at its position", err)
	}
	p, root := atlasProject(t, "    sprites:\n      ui/gem: {slice: [6, 0, 6, 0]}\n")
	_, _, err = runAtlas(t, p, root)
	if err == nil || !strings.Contains(err.Error(), "ui.kiln.yaml:10:23: atlas ui/atlas: sprites.ui/gem.slice: slice [6, 0, 6, 0] leaves no middle to stretch in the 12×12 image") {
		t.Errorf("error %v, want the slice problem at its position", err)
	}
}
