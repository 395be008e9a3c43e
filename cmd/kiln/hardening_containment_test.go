package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContainment runs kiln build on projects whose ids, paths and links
// try to leave the project or the output folder: each is refused with its
// exact message and exit code (2 when the manifests say it, 1 when it is
// found while building), and nothing is written outside the project.
//
// In the expected messages $P is the project folder and $O a folder
// outside it holding a PNG (x.png), a palette (p.hex) and a model folder
// (model/).
func TestContainment(t *testing.T) {
	t.Parallel()
	const asset = "version: 1\nassets:\n"
	img := func(id, src string) string {
		return asset + "  - {id: " + id + ", kind: image, image: {source: " + src + "}}\n"
	}
	gen := func(extra string) string {
		return asset + "  - {id: a, kind: image, image: {source: art/a.png}}\n" +
			"  - {id: g, kind: tileable, model: ex, prompt: stone, size: 64" + extra + "}\n"
	}
	sprite := func(palette string) string {
		return asset + "  - id: s\n    kind: sprite-sheet\n    model: ex\n    prompt: lava\n    size: 64\n" +
			"    sprite: {frames: 2, background: keep, pixel_art: {factor: 2, palette: " + palette + "}}\n"
	}
	// config writes kiln.yaml with head before the models block and more
	// models after the built-in one.
	config := func(head, more string) string {
		return "version: 1\n" + head + "models:\n  ex: builtin:exemplar\n" + more
	}
	tests := []struct {
		name   string
		config string // kiln.yaml; imageConfig when empty
		man    string // m.kiln.yaml
		setup  func(t *testing.T, p, o string)
		ort    bool // needs ONNX Runtime (the check runs after generation starts)
		code   int
		want   string // stderr, exactly (after "kiln: "), with $P and $O
	}{
		// Asset, atlas and material ids become output paths.
		{name: "id with ..", man: img("../x", "art/a.png"), code: 2,
			want: `m.kiln.yaml:3:10: assets[0].id: id "../x" has a ".." segment (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "id inner ..", man: img("a/../../x", "art/a.png"), code: 2,
			want: `m.kiln.yaml:3:10: assets[0].id: id "a/../../x" has a ".." segment (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "absolute id", man: img("/etc/x", "art/a.png"), code: 2,
			want: `m.kiln.yaml:3:10: assets[0].id: id "/etc/x" starts with "/" (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "id with drive letter", man: img(`"C:/x"`, "art/a.png"), code: 2,
			want: `m.kiln.yaml:3:10: assets[0].id: id "C:/x" starts with a drive letter (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "id with backslash", man: img(`'a\..\..\x'`, "art/a.png"), code: 2,
			want: `m.kiln.yaml:3:10: assets[0].id: id "a\\..\\..\\x" contains "\" (use "/" to separate id segments)`},
		{name: "atlas id with ..", man: img("a", "art/a.png") + "atlases:\n  - {id: ../../atlas, include: [a]}\n", code: 2,
			want: `m.kiln.yaml:5:10: atlases[0].id: id "../../atlas" has a ".." segment (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "atlas include with ..", man: img("a", "art/a.png") + "atlases:\n  - {id: ui, include: [../a]}\n", code: 2,
			want: `m.kiln.yaml:5:24: atlases[0].include[0]: id "../a" has a ".." segment (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "absolute atlas id", man: img("a", "art/a.png") + "atlases:\n  - {id: /tmp/atlas, include: [a]}\n", code: 2,
			want: `m.kiln.yaml:5:10: atlases[0].id: id "/tmp/atlas" starts with "/" (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "material id with backslash", man: img("a", "art/a.png") + "materials:\n  - {id: 'm\\x', base_color: a}\n", code: 2,
			want: `m.kiln.yaml:5:10: materials[0].id: id "m\\x" contains "\" (use "/" to separate id segments)`},
		{name: "from with ..", man: gen(", from: ../a"), code: 2,
			want: `m.kiln.yaml:4:71: assets[1].from: id "../a" has a ".." segment (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},
		{name: "absolute from", man: gen(", from: /a"), code: 2,
			want: `m.kiln.yaml:4:71: assets[1].from: id "/a" starts with "/" (ids are lower-case names joined by "/", e.g. "dungeon/floor")`},

		// Source, exemplar and palette paths.
		{name: "source with ..", man: img("a", "../x.png"), code: 2,
			want: `m.kiln.yaml:3:42: assets[0].image.source: path "../x.png" leaves the project with ".." (paths are relative to the project root and stay inside it)`},
		{name: "absolute source", man: img("a", "/etc/x.png"), code: 2,
			want: `m.kiln.yaml:3:42: assets[0].image.source: path "/etc/x.png" is absolute (use a path relative to the project root, e.g. art/hero.png)`},
		{name: "source with drive letter", man: img("a", `"C:/x.png"`), code: 2,
			want: `m.kiln.yaml:3:42: assets[0].image.source: path "C:/x.png" starts with a drive letter (use a path relative to the project root, e.g. art/hero.png)`},
		{name: "source with backslashes", man: img("a", `'..\..\x.png'`), code: 2,
			want: `m.kiln.yaml:3:42: assets[0].image.source: path "..\\..\\x.png" contains "\" (use "/" to separate folders)`},
		{name: "exemplar with ..", man: gen(", exemplars: [../x.png]"), code: 2,
			want: `m.kiln.yaml:4:77: assets[1].exemplars[0]: path "../x.png" leaves the project with ".." (paths are relative to the project root and stay inside it)`},
		{name: "absolute exemplar", man: gen(", exemplars: [/etc/x.png]"), code: 2,
			want: `m.kiln.yaml:4:77: assets[1].exemplars[0]: path "/etc/x.png" is absolute (use a path relative to the project root, e.g. art/hero.png)`},
		{name: "palette with ..", man: sprite("../p.hex"), code: 2,
			want: `m.kiln.yaml:8:75: assets[0].sprite.pixel_art.palette: path "../p.hex" leaves the project with ".." (paths are relative to the project root and stay inside it)`},
		{name: "palette with drive letter", man: sprite(`"c:p.hex"`), code: 2,
			want: `m.kiln.yaml:8:75: assets[0].sprite.pixel_art.palette: path "c:p.hex" starts with a drive letter (use a path relative to the project root, e.g. palettes/pico8.hex)`},

		// Folders and models in kiln.yaml.
		{name: "output with ..", config: config("output: ../out\n", ""), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:2:9: output: path "../out" leaves the project with ".." (paths are relative to the project root and stay inside it)`},
		{name: "absolute output", config: config("output: /tmp/out\n", ""), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:2:9: output: path "/tmp/out" is absolute (use a path relative to the project root, e.g. out)`},
		{name: "cache with backslash", config: config("cache: '..\\cache'\n", ""), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:2:8: cache: path "..\\cache" contains "\" (use "/" to separate folders)`},
		{name: "model with ..", config: config("", "  sd: ../models/sd\n"), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:4:7: models.sd: path "../models/sd" leaves the project with ".." (paths are relative to the project root and stay inside it; kiln reads models from inside the project)`},
		{name: "absolute model", config: config("", "  sd: {path: /opt/models/sd}\n"), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:4:14: models.sd.path: path "/opt/models/sd" is absolute (use a path relative to the project root, e.g. models/sd15; kiln reads models from inside the project)`},
		{name: "model with drive letter", config: config("", "  sd: 'D:\\models\\sd'\n"), man: img("a", "art/a.png"), code: 2,
			want: `kiln.yaml:4:7: models.sd: path "D:\\models\\sd" starts with a drive letter (use a path relative to the project root, e.g. models/sd15; kiln reads models from inside the project)`},

		// Symlinks that lead out: found when the file or folder is used.
		{name: "source file symlink out", man: img("a", "art/link.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "art/link.png", filepath.Join(o, "x.png")) }, code: 1,
			want: `build failed: stage a:source failed: m.kiln.yaml:3:5: source file: path "art/link.png" goes through the symlink $P/art/link.png, which points to $O/x.png, outside $P; remove the symlink or make it point inside $P`},
		{name: "art folder symlink to /etc", man: img("a", "etc/x.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "etc", "/etc") }, code: 1,
			want: `build failed: stage a:source failed: m.kiln.yaml:3:5: source file: path "etc/x.png" goes through the symlink $P/etc, which points to /etc, outside $P; remove the symlink or make it point inside $P`},
		{name: "dangling source symlink out", man: img("a", "art/gone.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "art/gone.png", filepath.Join(o, "missing.png")) }, code: 1,
			want: `build failed: stage a:source failed: m.kiln.yaml:3:5: source file: path "art/gone.png" goes through the symlink $P/art/gone.png, which points to $O/missing.png (missing), outside $P; remove the symlink or make it point inside $P`},
		{name: "output folder symlink out", man: img("a", "art/a.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "out", o) }, code: 1,
			want: `output folder: path "out" goes through the symlink $P/out, which points to $O, outside $P; remove the symlink or make it point inside $P`},
		{name: "output subfolder symlink out", man: img("b/c", "art/a.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "out/b", o) }, code: 1,
			want: `build failed: stage b/c:source failed: m.kiln.yaml:3:5: publish output image.png: $P/out/b is a symlink (to $O); kiln does not follow symlinks when it writes or deletes, so it will not publish b/c.png; remove the link and run kiln again`},
		{name: "cache folder symlink out", man: img("a", "art/a.png"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, ".kiln", o) }, code: 1,
			want: `cache folder: path ".kiln/cache" goes through the symlink $P/.kiln, which points to $O, outside $P; remove the symlink or make it point inside $P`},
		{name: "exemplar symlink out", man: gen(", exemplars: [art/ex.png]"),
			setup: func(t *testing.T, p, o string) { symlink(t, p, "art/ex.png", filepath.Join(o, "x.png")) }, code: 1,
			want: `build failed: stage g:generate failed: m.kiln.yaml:4:5: source file: path "art/ex.png" goes through the symlink $P/art/ex.png, which points to $O/x.png, outside $P; remove the symlink or make it point inside $P`},
		{name: "palette symlink out", man: sprite("pal/p.hex"), ort: true,
			setup: func(t *testing.T, p, o string) { symlink(t, p, "pal", o) }, code: 1,
			want: `build failed: stage s:sheet failed: m.kiln.yaml:3:5: source file: path "pal/p.hex" goes through the symlink $P/pal, which points to $O, outside $P; remove the symlink or make it point inside $P`},
		{name: "model folder symlink out", config: config("", "  sd: models/sd\n"), man: img("a", "art/a.png") + "  - {id: g, kind: tileable, model: sd, prompt: stone, size: 64, steps: 1}\n",
			setup: func(t *testing.T, p, o string) {
				writeTurbo(t, o, "model")
				symlink(t, p, "models/sd", filepath.Join(o, "model"))
			}, code: 1,
			want: `build failed: stage g:generate failed: m.kiln.yaml:4:5: kiln.yaml:4:7: models.sd: model "sd": path "models/sd" goes through the symlink $P/models/sd, which points to $O/model, outside $P; remove the symlink or make it point inside $P (fix the model folder or its path in kiln.yaml)`},
	}
	outsideFiles := func(t *testing.T) string {
		o := t.TempDir()
		writeFiles(t, o, map[string]string{"x.png": pngBytes(9), "p.hex": "#000000\n#ffffff\n"})
		return o
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.ort {
				ortLibrary(t)
			}
			p, o := t.TempDir(), outsideFiles(t)
			cfg := tt.config
			if cfg == "" {
				cfg = imageConfig
			}
			writeFiles(t, p, map[string]string{"kiln.yaml": cfg, "m.kiln.yaml": tt.man, "art/a.png": pngBytes(1)})
			if tt.setup != nil {
				tt.setup(t, p, o)
			}
			before := snapshot(t, o)
			r := kiln(t, p, "build", "-q", "--keep-going")
			want := "kiln: " + strings.NewReplacer("$P", p, "$O", o).Replace(tt.want)
			if r.code != tt.code || strings.TrimSpace(r.stderr) != want {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit %d and:\n%s", r.code, r.stderr, tt.code, want)
			}
			if d := diffSnapshots(before, snapshot(t, o)); d != "" {
				t.Fatalf("kiln wrote outside the project:\n%s", d)
			}
		})
	}
}

// TestSymlinkInsideProject checks that a symlink inside the project is
// followed for reading (a source folder linked to another one is a
// legitimate layout) but never for writing: an output folder that is a
// link, even to a folder inside the project, is refused, as a link could
// point outputs at sources.
func TestSymlinkInsideProject(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	writeFiles(t, p, map[string]string{"kiln.yaml": imageConfig, "m.kiln.yaml": "version: 1\nassets:\n  - {id: a, kind: image, image: {source: link/a.png}}\n",
		"art/a.png": pngBytes(1)})
	symlink(t, p, "link", "art")
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(p, "out", "a.png")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(p, "out"))
	if err := os.MkdirAll(filepath.Join(p, "real-out"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, p, "out", "real-out")
	r := kiln(t, p, "build", "-q")
	want := "kiln: " + filepath.Join(p, "out") + " is a symlink (to real-out); kiln does not follow symlinks when it writes or deletes, so it will not write outputs there; remove the link and run kiln again"
	if r.code != 1 || strings.TrimSpace(r.stderr) != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", r.code, r.stderr, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(p, "real-out")); len(entries) != 0 {
		t.Errorf("wrote through the output link: %v", entries)
	}
}
