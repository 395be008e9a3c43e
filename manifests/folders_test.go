package manifests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

// img is a manifest with one image asset per source, ids a0, a1, ...
func img(sources ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\nassets:\n")
	for i, s := range sources {
		fmt.Fprintf(&b, "  - {id: a%d, kind: image, image: {source: %s}}\n", i, s)
	}
	return b.String()
}

// TestFolderRules checks that output: and cache: stay apart from the
// project root, version-control folders, manifests, the files assets read,
// model folders and each other, with the message and position of each.
func TestFolderRules(t *testing.T) {
	const (
		outHint   = "kiln writes its outputs there and kiln clean deletes them"
		cacheHint = "kiln writes into the cache folder and kiln clean --cache deletes what it keeps there"
		bothHint  = "kiln clean deletes kiln's outputs and kiln writes into the cache folder and kiln clean --cache deletes what it keeps there, so neither may hold the other; give each its own folder, e.g. output: out and cache: .kiln/cache"
	)
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"output is ./", map[string]string{ConfigFile: "version: 1\noutput: ./\n"}, []string{
			`kiln.yaml:2:9: output: output "./" is the project folder itself (kiln writes and deletes files in its output folder; use a sub-folder, e.g. output: out)`,
		}},
		{"output is out/..", map[string]string{ConfigFile: "version: 1\noutput: out/..\n"}, []string{
			`kiln.yaml:2:9: output: output "out/.." is the project folder itself (kiln writes and deletes files in its output folder; use a sub-folder, e.g. output: out)`,
		}},
		{"cache is ./.", map[string]string{ConfigFile: "version: 1\ncache: ./.\n"}, []string{
			`kiln.yaml:2:8: cache: cache "./." is the project folder itself (kiln writes into the cache folder and kiln clean --cache deletes what it keeps there; use a sub-folder, e.g. cache: .kiln/cache)`,
		}},
		{"cache is .git", map[string]string{ConfigFile: "version: 1\ncache: .git\n"}, []string{
			`kiln.yaml:2:8: cache: cache ".git" is the version-control folder .git (` + cacheHint + `, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. cache: .kiln/cache)`,
		}},
		{"output inside .git", map[string]string{ConfigFile: "version: 1\noutput: ./.git/kiln\n"}, []string{
			`kiln.yaml:2:9: output: output ".git/kiln" is inside the version-control folder .git (` + outHint + `, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. output: out)`,
		}},
		{"output inside a nested .HG, any case", map[string]string{ConfigFile: "version: 1\noutput: lib/.HG/out\n"}, []string{
			`kiln.yaml:2:9: output: output "lib/.HG/out" is inside the version-control folder lib/.HG (` + outHint + `, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. output: out)`,
		}},
		{"cache holds a submodule's .git", map[string]string{
			ConfigFile:            "version: 1\ncache: vendor\n",
			"vendor/lib/.git":     "gitdir: ../../.git/modules/lib\n",
			"vendor/tool/.svn/wc": "x",
		}, []string{
			`kiln.yaml:2:8: cache: cache "vendor" holds the version-control folder vendor/lib/.git, and 1 more version-control folder (` + cacheHint + `, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. cache: .kiln/cache)`,
		}},
		{"output holds the manifests", map[string]string{
			ConfigFile:           "version: 1\noutput: assets\n",
			"assets/x.kiln.yaml": m("assets: []\n"),
		}, []string{
			`kiln.yaml:2:9: output: output "assets" holds the manifest assets/x.kiln.yaml (kiln does not read manifests inside its output folder; move them out of it, or choose a folder for kiln's outputs that holds no manifests, e.g. output: out)`,
		}},
		{"output holds a manifest, by default", map[string]string{
			"out/stale.kiln.yaml": "junk: [",
		}, []string{
			`kiln.yaml:1:1: output: output "out" (the default) holds the manifest out/stale.kiln.yaml (kiln does not read manifests inside its output folder; move them out of it, or choose a folder for kiln's outputs that holds no manifests, e.g. output: build/out)`,
		}},
		{"cache holds manifests", map[string]string{
			ConfigFile:                "version: 1\ncache: levels\n",
			"levels/a.kiln.yaml":      m("assets: []\n"),
			"levels/b/c.kiln.yaml":    m("assets: []\n"),
			"levels/notes.txt":        "not a manifest",
			"levels/.d.kiln.yaml":     "dot-files are not manifests",
			"other/kept.kiln.yaml":    m("assets: []\n"),
			"levels.kiln.yaml":        m("assets: []\n"),
			"levelsx/e.kiln.yaml":     m("assets: []\n"),
			"levels/.old/f.kiln.yaml": "dot-folders are not walked",
		}, []string{
			`kiln.yaml:2:8: cache: cache "levels" holds the manifest levels/a.kiln.yaml, and 1 more manifest (kiln does not read manifests inside its cache folder, and kiln clean --cache would delete them; move them out of it, or choose a folder for kiln's cache that holds no manifests, e.g. cache: .kiln/cache)`,
		}},
		{"output holds an image source", map[string]string{
			ConfigFile:     "version: 1\noutput: art\n",
			"ui.kiln.yaml": "version: 1\nassets:\n  - id: ui/hero\n    kind: image\n    image:\n      source: art/hero.png\n",
		}, []string{
			`kiln.yaml:2:9: output: output "art" holds art/hero.png, which ui.kiln.yaml:6:15 reads (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: out)`,
		}},
		{"output holds several sources", map[string]string{
			ConfigFile:    "version: 1\noutput: art\n",
			"a.kiln.yaml": img("art/b.png", "art/a.png", "art/a.png", "other/c.png", "art/sub/d.jpg"),
		}, []string{
			`kiln.yaml:2:9: output: output "art" holds art/a.png, which a.kiln.yaml:4:43 reads, and 2 more project files (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: out)`,
		}},
		{"output is a source file", map[string]string{
			ConfigFile:    "version: 1\noutput: art/a.png\n",
			"a.kiln.yaml": img("art/a.png"),
		}, []string{
			`kiln.yaml:2:9: output: output "art/a.png" is art/a.png, which a.kiln.yaml:3:43 reads (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: out)`,
		}},
		{"default output holds a source", map[string]string{
			"a.kiln.yaml": img("out/a.png"),
		}, []string{
			`kiln.yaml:1:1: output: output "out" (the default) holds out/a.png, which a.kiln.yaml:3:43 reads (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: build/out)`,
		}},
		{"cache holds an exemplar and a palette", map[string]string{
			ConfigFile: "version: 1\ncache: refs\n",
			"a.kiln.yaml": m("assets:\n" +
				"  - {id: t, kind: tileable, prompt: s, exemplars: [stone.png, refs/moss.png]}\n" +
				"  - {id: s, kind: sprite-sheet, prompt: s, sprite: {frames: 1, pixel_art: {palette: refs/p.hex}}}\n"),
			"stone.png": "x", "refs/moss.png": "x",
		}, []string{
			`kiln.yaml:2:8: cache: cache "refs" holds refs/moss.png, which a.kiln.yaml:3:63 reads, and 1 more project file (` + cacheHint + `, so kiln could delete sources; choose a folder for kiln's cache that holds no sources, e.g. cache: .kiln/cache)`,
		}},
		{"cache holds an exemplar kiln.yaml's defaults give", map[string]string{
			ConfigFile:       "version: 1\ncache: refs\ndefaults:\n  exemplars: [refs/stone.png]\n",
			"a.kiln.yaml":    m("assets:\n  - {id: t, kind: tileable, prompt: s}\n"),
			"refs/stone.png": "x",
		}, []string{
			`kiln.yaml:2:8: cache: cache "refs" holds refs/stone.png, which kiln.yaml:4:15 reads (` + cacheHint + `, so kiln could delete sources; choose a folder for kiln's cache that holds no sources, e.g. cache: .kiln/cache)`,
		}},
		{"output inside a model folder", map[string]string{
			ConfigFile: "version: 1\noutput: models/sd/out\nmodels:\n  sd: {path: models/sd, kind: sd15}\n",
		}, []string{
			`kiln.yaml:2:9: output: output "models/sd/out" lies inside model folder models/sd, which kiln.yaml:4:7 names (models.sd) (` + outHint + `, so kiln could overwrite or delete model files; choose a folder for kiln's outputs outside every model folder, e.g. output: out)`,
		}},
		{"cache holds model folders", map[string]string{
			ConfigFile: "version: 1\ncache: models\nmodels:\n  a: models/a\n  b: models/b\n  x: builtin:exemplar\n",
		}, []string{
			`kiln.yaml:2:8: cache: cache "models" holds model folder models/a, which kiln.yaml:4:6 names (models.a), and 1 more project file (` + cacheHint + `, so kiln could delete model files; choose a folder for kiln's cache outside every model folder, e.g. cache: .kiln/cache)`,
		}},
		{"output inside the cache", map[string]string{ConfigFile: "version: 1\noutput: .kiln/cache/out\n"}, []string{
			`kiln.yaml:2:9: output: output ".kiln/cache/out" lies inside cache ".kiln/cache" (` + bothHint + `)`,
		}},
		{"cache is the output", map[string]string{ConfigFile: "version: 1\noutput: build\ncache: ./build\n"}, []string{
			`kiln.yaml:3:8: cache: cache "build" is also the output folder (` + bothHint + `)`,
		}},
		{"several problems, each reported", map[string]string{
			ConfigFile:         "version: 1\noutput: game\ncache: game/.git\n",
			"a.kiln.yaml":      img("game/art/a.png"),
			"game/b.kiln.yaml": m("assets: []\n"),
		}, []string{
			`kiln.yaml:2:9: output: output "game" holds game/art/a.png, which a.kiln.yaml:3:43 reads (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: out)`,
			`kiln.yaml:2:9: output: output "game" holds the manifest game/b.kiln.yaml (kiln does not read manifests inside its output folder; move them out of it, or choose a folder for kiln's outputs that holds no manifests, e.g. output: out)`,
			`kiln.yaml:3:8: cache: cache "game/.git" is the version-control folder game/.git (` + cacheHint + `, which must never happen to version-control data; choose a folder outside .git, .hg and .svn, e.g. cache: .kiln/cache)`,
			`kiln.yaml:3:8: cache: cache "game/.git" lies inside output "game" (` + bothHint + `)`,
		}},
		{"the suggestion avoids sources", map[string]string{
			ConfigFile:    "version: 1\noutput: out\n",
			"a.kiln.yaml": img("out/a.png", "build/out/b.png"),
		}, []string{
			`kiln.yaml:2:9: output: output "out" holds out/a.png, which a.kiln.yaml:3:43 reads (` + outHint + `, so kiln could overwrite or delete sources; choose a folder for kiln's outputs that holds no sources, e.g. output: kiln-out)`,
		}},
		{"a refused folder is not checked further", map[string]string{
			ConfigFile:    "version: 1\noutput: ../art\ncache: out/cache\n",
			"a.kiln.yaml": img("out/cache/a.png"),
		}, []string{
			`kiln.yaml:2:9: output: path "../art" leaves the project with ".." (paths are relative to the project root and stay inside it)`,
			`kiln.yaml:3:8: cache: cache "out/cache" holds out/cache/a.png, which a.kiln.yaml:3:43 reads (` + cacheHint + `, so kiln could delete sources; choose a folder for kiln's cache that holds no sources, e.g. cache: .kiln/cache)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errLines(t, tt.files)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// TestFolderRulesAllow checks layouts that are fine: folders that share
// a prefix but no path segment, siblings, and folders beside sources.
func TestFolderRulesAllow(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"siblings", map[string]string{
			ConfigFile:    "version: 1\noutput: build/out\ncache: build/cache\nmodels: {sd: models/sd, x: builtin:exemplar}\ndefaults: {model: x}\n",
			"a.kiln.yaml": img("build/art/a.png", "models/a.png"),
		}},
		{"names that share a prefix", map[string]string{
			ConfigFile:         "version: 1\noutput: art\ncache: art-cache\n",
			"a.kiln.yaml":      img("artwork/a.png", "art-cache2/b.png"),
			"arts/x.kiln.yaml": m("assets: []\n"),
		}},
		{"not version-control folders", map[string]string{
			ConfigFile:           "version: 1\noutput: git/out\ncache: .gitcache\n",
			".gitignore":         "/out/\n",
			"git/.gitattributes": "x",
		}},
		{"a file kiln does not read", map[string]string{
			ConfigFile:       "version: 1\noutput: art\n",
			"art/notes.txt":  "no asset reads this",
			"art/x.kiln.txt": "not matched by the globs",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errLines(t, tt.files); got != nil {
				t.Errorf("errors:\n\t%s", strings.Join(got, "\n\t"))
			}
		})
	}
}

// TestRuntimeLibrary checks that runtime.library cannot name a library
// inside the project, by its spelling (LoadFS) and, with the project's
// place on disk, by where it resolves (Load).
func TestRuntimeLibrary(t *testing.T) {
	hint := "a library inside the project can only be chosen outside the project's files: pass --ort-lib PATH or set KILN_ORT_LIB=PATH; " +
		"here, name a library outside the project, e.g. /opt/onnxruntime/lib/libonnxruntime.so.1"
	inside := func(lib string) []string {
		return []string{fmt.Sprintf("kiln.yaml:2:20: runtime.library: %q lies inside the project; kiln loads and runs this library, so kiln.yaml, which comes with the project's files, may not choose one of them (%s)", lib, hint)}
	}
	dir := t.TempDir()
	proj := filepath.Join(dir, "game")
	writeFiles(t, proj, map[string][]byte{"lib/libonnxruntime.so.1": []byte("not ELF")})
	link := filepath.Join(dir, "link")
	if err := os.Symlink(proj, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		lib  string
		root string // load this folder from disk; "" for LoadFS
		want []string
	}{
		{"relative", "lib/libonnxruntime.so.1", "", inside("lib/libonnxruntime.so.1")},
		{"dot", "./libonnxruntime.so.1", "", inside("./libonnxruntime.so.1")},
		{"up and down", "lib/../libonnxruntime.so.1", "", inside("lib/../libonnxruntime.so.1")},
		{"absolute, outside", "/opt/onnxruntime/lib/libonnxruntime.so.1", "", nil},
		{"relative, outside", "../ort/libonnxruntime.so.1", "", nil},
		{"absolute, outside, on disk", "/opt/onnxruntime/lib/libonnxruntime.so.1", proj, nil},
		{"relative, outside, on disk", "../ort/libonnxruntime.so.1", proj, nil},
		{"absolute, inside", filepath.Join(proj, "lib", "libonnxruntime.so.1"), proj, inside(filepath.Join(proj, "lib", "libonnxruntime.so.1"))},
		{"out and back in", "../game/lib/libonnxruntime.so.1", proj, inside("../game/lib/libonnxruntime.so.1")},
		{"the real path of a project opened through a link", filepath.Join(proj, "lib", "libonnxruntime.so.1"), link, inside(filepath.Join(proj, "lib", "libonnxruntime.so.1"))},
		{"through a link to the project", filepath.Join(link, "lib", "libonnxruntime.so.1"), proj, inside(filepath.Join(link, "lib", "libonnxruntime.so.1"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fmt.Sprintf("version: 1\nruntime: {library: %q}\n", tt.lib)
			var err error
			if tt.root == "" {
				_, err = LoadFS(project(map[string]string{ConfigFile: cfg}))
			} else {
				writeFiles(t, proj, map[string][]byte{ConfigFile: []byte(cfg)})
				_, err = Load(tt.root)
			}
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(tt.want, "\n\t"))
			}
		})
	}
}

// TestConfigSymlinks checks that kiln.yaml and manifests are read from
// inside the project only: a link that leads out is an error naming the
// link and its target, and nothing of the target reaches the message.
func TestConfigSymlinks(t *testing.T) {
	const secret = "version: 1\nsecret_field_of_an_outside_file: 1\n"
	hint := "put the file itself in the project instead of a link, or make the link point to a file inside the project by a relative path"
	tests := []struct {
		name  string
		links map[string]string // link -> target
		files map[string]string // besides kiln.yaml, if no link makes it
		want  []string          // $O is the folder outside the project
	}{
		{"absolute, outside", map[string]string{ConfigFile: "$O/secret.yaml"}, nil, []string{
			`kiln.yaml: is a symlink to "$O/secret.yaml", outside the project; kiln reads project files only from inside the project (` + hint + `)`,
		}},
		{"relative, outside", map[string]string{ConfigFile: "../outside/secret.yaml"}, nil, []string{
			`kiln.yaml: is a symlink to "../outside/secret.yaml", outside the project; kiln reads project files only from inside the project (` + hint + `)`,
		}},
		{"a chain that ends outside", map[string]string{ConfigFile: "cfg/kiln.yaml", "cfg/kiln.yaml": "../../outside/secret.yaml"}, nil, []string{
			`kiln.yaml: is a symlink to "cfg/kiln.yaml", which kiln cannot follow: path escapes from parent (` + hint + `)`,
		}},
		{"dangling", map[string]string{ConfigFile: "cfg/gone.yaml"}, nil, []string{
			`kiln.yaml: is a symlink to "cfg/gone.yaml", which does not exist (` + hint + `)`,
		}},
		{"inside is fine", map[string]string{ConfigFile: "cfg/real.yaml"}, map[string]string{"cfg/real.yaml": "version: 1\n"}, nil},
		{"a manifest's content is not read through a link either", map[string]string{"a.kiln.yaml": "../outside/secret.yaml"},
			map[string]string{ConfigFile: "version: 1\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			proj, out := filepath.Join(dir, "p"), filepath.Join(dir, "outside")
			writeFiles(t, out, map[string][]byte{"secret.yaml": []byte(secret)})
			files := map[string][]byte{}
			for n, d := range tt.files {
				files[n] = []byte(d)
			}
			writeFiles(t, proj, files)
			for l, target := range tt.links {
				p := filepath.Join(proj, filepath.FromSlash(l))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(strings.ReplaceAll(target, "$O", out), p); err != nil {
					t.Fatal(err)
				}
			}
			p, err := Load(proj)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, strings.ReplaceAll(w, "$O", out))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("errors:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			}
			if err != nil && strings.Contains(err.Error(), "secret_field") {
				t.Errorf("the error shows the link target's contents: %v", err)
			}
			if err == nil && len(p.Files) != 0 {
				t.Errorf("Files = %q, want none: a link is not read", p.Files)
			}
		})
	}
}

// TestProjectFileModes checks, on an fstest.MapFS, that LoadFS refuses a
// kiln.yaml that is a link out of the project or not a regular file,
// without reading it.
func TestProjectFileModes(t *testing.T) {
	hint := "put the file itself in the project instead of a link, or make the link point to a file inside the project by a relative path"
	tests := []struct {
		name string
		file *fstest.MapFile
		want string
	}{
		{"absolute link", &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("/etc/passwd")},
			`kiln.yaml: is a symlink to "/etc/passwd", outside the project; kiln reads project files only from inside the project (` + hint + `)`},
		{"link up", &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("a/../../kiln.yaml")},
			`kiln.yaml: is a symlink to "a/../../kiln.yaml", outside the project; kiln reads project files only from inside the project (` + hint + `)`},
		{"named pipe", &fstest.MapFile{Mode: fs.ModeNamedPipe},
			`kiln.yaml: is a named pipe, not a regular file (replace it with a regular file)`},
		{"folder", &fstest.MapFile{Mode: fs.ModeDir},
			`kiln.yaml: is a folder, not a file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFS(fstest.MapFS{ConfigFile: tt.file})
			var list ErrorList
			if !errors.As(err, &list) || errors.Is(err, ErrNoConfig) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			if got := list.Error(); got != tt.want {
				t.Errorf("error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestSkippedManifestWarnings checks that manifests kiln skips for what
// they are come back as warnings, with what to do, and that the rest load.
func TestSkippedManifestWarnings(t *testing.T) {
	fsys := project(map[string]string{
		"a.kiln.yaml":        img("art/a.png"),
		"levels/b.kiln.yaml": m("assets: []\n"),
	})
	fsys["levels/current.kiln.yaml"] = &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("b.kiln.yaml")}
	fsys["shared.kiln.yaml"] = &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("/srv/shared/x.kiln.yaml")}
	fsys["pipe.kiln.yaml"] = &fstest.MapFile{Mode: fs.ModeNamedPipe}
	fsys["art/link.png"] = &fstest.MapFile{Mode: fs.ModeSymlink, Data: []byte("a.png")} // not a manifest: no warning
	p, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.kiln.yaml", "levels/b.kiln.yaml"}; !reflect.DeepEqual(p.Files, want) {
		t.Errorf("Files = %q, want %q", p.Files, want)
	}
	want := []string{
		`levels/current.kiln.yaml: is a symlink (to "b.kiln.yaml"), so kiln skips it: it reads no manifest through a symlink (put the file itself here instead of a link, or remove the link)`,
		`pipe.kiln.yaml: is a named pipe, not a regular file, so kiln skips it (make it a regular file, or remove it)`,
		`shared.kiln.yaml: is a symlink (to "/srv/shared/x.kiln.yaml"), so kiln skips it: it reads no manifest through a symlink (put the file itself here instead of a link, or remove the link)`,
	}
	var got []string
	for _, w := range p.Warnings {
		got = append(got, w.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	if p := mustLoad(t, map[string]string{"a.kiln.yaml": img("art/a.png")}); p.Warnings != nil {
		t.Errorf("warnings without a skipped file: %v", p.Warnings)
	}
}

// TestLoadFromDiskSkipsLinks checks the same through os.Root: a manifest
// that is a symlink is skipped with a warning, even when it points inside.
func TestLoadFromDiskSkipsLinks(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string][]byte{
		ConfigFile:           []byte("version: 1\n"),
		"levels/b.kiln.yaml": []byte(m("assets: []\n")),
	})
	if err := os.Symlink("b.kiln.yaml", filepath.Join(dir, "levels", "current.kiln.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil { // a folder link: not walked
		t.Fatal(err)
	}
	p, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"levels/b.kiln.yaml"}; !reflect.DeepEqual(p.Files, want) {
		t.Errorf("Files = %q, want %q", p.Files, want)
	}
	want := `levels/current.kiln.yaml: is a symlink (to "b.kiln.yaml"), so kiln skips it: it reads no manifest through a symlink (put the file itself here instead of a link, or remove the link)`
	if p.Warnings.Error() != want {
		t.Errorf("warnings:\n got %s\nwant %s", p.Warnings, want)
	}

	// LoadFS on the os.Root's own FS, which lists folders itself, agrees.
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	q, err := LoadFS(r.FS())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Files, p.Files) || q.Warnings.Error() != want || q.Root != "" {
		t.Errorf("LoadFS(os.Root.FS()): Files %q, warnings %s, Root %q", q.Files, q.Warnings, q.Root)
	}
}

// TestFolderSchema checks that kiln schema --config states the spelling
// rules of output:, cache: and runtime.library that the parser enforces
// (what needs the project's files, the schema cannot know).
func TestFolderSchema(t *testing.T) {
	cv := newValidator(t, ConfigSchema())
	tests := []struct {
		field, value string
		ok           bool
	}{
		{"output", "out", true},
		{"output", "build/out", true},
		{"output", ".gitcache", true},
		{"output", "git/out", true},
		{"output", ".", false},
		{"output", "./.", false},
		{"output", "out/..", false},
		{"cache", ".git", false},
		{"cache", ".git/kiln", false},
		{"cache", "lib/.Hg", false},
		{"cache", "a/.svn/b", false},
		{"library", "/opt/onnxruntime/lib/libonnxruntime.so.1", true},
		{"library", "../ort/libonnxruntime.so.1", true},
		{"library", "lib/libonnxruntime.so.1", false},
		{"library", "./libonnxruntime.so.1", false},
		{"library", "libonnxruntime.so.1", false},
	}
	for _, tt := range tests {
		doc := fmt.Sprintf("version: 1\n%s: %q\n", tt.field, tt.value)
		if tt.field == "library" {
			doc = fmt.Sprintf("version: 1\nruntime: {library: %q}\n", tt.value)
		}
		schemaOK := len(cv.check(t, doc)) == 0
		_, err := LoadFS(project(map[string]string{ConfigFile: doc}))
		if schemaOK != tt.ok || (err == nil) != tt.ok {
			t.Errorf("%s: %q: schema accepts it: %v, kiln: %v; want accepted = %v", tt.field, tt.value, schemaOK, err, tt.ok)
		}
	}
}
