//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSafetyCorpus runs kiln on projects set up as a hostile or careless
// user would: kiln's folders pointed at version control or sources, links
// planted where kiln writes, bad flags, a library inside the checkout.
// Every case asserts the exit code, the message (with file:line:col where
// the cause is a line of kiln.yaml or a manifest), and that nothing outside
// kiln's own folders changed: the whole world around the project (the
// project itself, a file and a folder beside it) is hashed before and
// after, less the paths the case lets kiln own.
//
// The project is $P (world/p); beside it are $W/outside.txt, the folder
// $W/elsewhere/ holding keep.txt, and $W/other.kiln.yaml, a manifest.
func TestSafetyCorpus(t *testing.T) {
	t.Parallel()
	const manifest = "version: 1\nassets:\n  - {id: a, kind: image, image: {source: art/a.png}}\n"
	config := func(lines ...string) string {
		return imageConfig + strings.Join(lines, "\n") + "\n"
	}
	// A config whose extra keys come before models: (line 2 and on).
	head := func(lines ...string) string {
		return "version: 1\n" + strings.Join(lines, "\n") + "\nmodels:\n  ex: builtin:exemplar\n"
	}
	build := []string{"build", "-q"}
	type tc struct {
		name  string
		files map[string]string // project files beyond kiln.yaml, m.kiln.yaml, art/a.png
		cfg   string            // kiln.yaml; imageConfig when empty
		man   string            // m.kiln.yaml; manifest when empty
		links map[string]string // link in the project -> target ($W, $P expanded)
		setup func(t *testing.T, p, w string)
		args  []string // kiln's arguments ($W, $P expanded); build -q when nil
		code  int
		want  string   // stderr, trimmed, exactly ($W, $P expanded)
		has   []string // or: substrings stderr must hold
		out   []string // substrings stdout must hold
		hasnt []string // substrings stderr must not hold
		owned []string // paths in the project kiln may change; out and .kiln when nil
		check func(t *testing.T, p, w string)
	}
	prebuild := func(t *testing.T, p, w string) {
		if r := kiln(t, p, "build", "-q"); r.code != 0 {
			t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
		}
	}
	tests := []tc{
		// 1. kiln's folders on version control or sources.
		{name: "cache .git, clean --cache", cfg: head("cache: .git"), files: map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".git/config": "[core]\n"},
			args: []string{"clean", "--cache"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:8: cache:", ".git"}},
		{name: "cache .git, build", cfg: head("cache: .git"), files: map[string]string{".git/HEAD": "ref: refs/heads/main\n"},
			code: 2, owned: []string{}, has: []string{"kiln.yaml:2:8: cache:", ".git"}},
		{name: "cache inside .git", cfg: head("cache: .git/kiln"), files: map[string]string{".git/HEAD": "x"},
			code: 2, owned: []string{}, has: []string{"kiln.yaml:2:8: cache:", ".git"}},
		{name: "output .hg", cfg: head("output: .hg"), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:", ".hg"}},
		{name: "output .svn/out", cfg: head("output: .svn/out"), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:", ".svn"}},
		{name: "cache holding sources, clean --cache", cfg: head("cache: art"), args: []string{"clean", "--cache"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:8: cache:", "art/a.png", "m.kiln.yaml:3:"}},
		{name: "output holding sources", cfg: head("output: art"), code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:9: output:", "art/a.png", "m.kiln.yaml:3:"}},
		{name: "output holding sources, clean", cfg: head("output: art"), args: []string{"clean"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:9: output:", "art/a.png"}},
		{name: "output is the project", cfg: head("output: ."), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:"}},
		{name: "output is the project, spelt out/..", cfg: head("output: out/.."), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:"}},
		{name: "cache is the project", cfg: head("cache: ./"), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:8: cache:"}},
		{name: "output inside the cache", cfg: head("output: .kiln/cache/out"), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:", ".kiln/cache"}},
		{name: "cache inside the output", cfg: head("cache: out/cache"), code: 2, owned: []string{}, has: []string{"kiln.yaml:2:8: cache:", "out"}},
		{name: "output holding manifests", cfg: head("output: levels"), files: map[string]string{"levels/l.kiln.yaml": manifest}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:9: output:", "levels/l.kiln.yaml"}},
		{name: "output holding kiln.yaml's folder's model", cfg: head("output: models") + "  sd: models/sd\n", code: 2, owned: []string{},
			has: []string{"kiln.yaml:2:9: output:", "models/sd"}},
		{name: "output holding an exemplar", cfg: head("output: refs"), man: "version: 1\nassets:\n  - {id: g, kind: tileable, model: ex, prompt: stone, size: 64, exemplars: [refs/r.png]}\n",
			files: map[string]string{"refs/r.png": pngBytes(3)}, code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:", "refs/r.png"}},
		{name: "output holding a palette", cfg: head("output: pal"),
			man:   "version: 1\nassets:\n  - {id: s, kind: sprite-sheet, model: ex, prompt: lava, size: 64, sprite: {frames: 2, pixel_art: {factor: 2, palette: pal/p.hex}}}\n",
			files: map[string]string{"pal/p.hex": "#000000\n#ffffff\n"}, code: 2, owned: []string{}, has: []string{"kiln.yaml:2:9: output:", "pal/p.hex"}},

		// 2. Files in the output folder that kiln did not write.
		{name: "hand-made file where an output goes", files: map[string]string{"out/a.png": "hand-made"}, code: 1, owned: []string{".kiln"},
			has: []string{"m.kiln.yaml:3:5", "out/a.png is in the way: kiln did not write it", "move it out of the output folder"}},
		{name: "clean keeps an output edited by hand", setup: func(t *testing.T, p, w string) {
			prebuild(t, p, w)
			writeFiles(t, p, map[string]string{"out/a.png": "edited"})
		}, args: []string{"clean"}, code: 0, owned: []string{".kiln"},
			out: []string{"kept a.png: modified since kiln wrote it"}},
		{name: "clean --cache keeps what kiln did not make", files: map[string]string{".kiln/cache/notes.txt": "mine", ".kiln/cache/cas/readme": "mine"},
			setup: prebuild, args: []string{"clean", "--cache"}, code: 0,
			owned: []string{"out", ".kiln/cache/cas/", ".kiln/cache/ac", ".kiln/cache/tmp", ".kiln/cache/state", ".kiln/cache/lock"},
			out:   []string{"kept cas/readme in the cache folder", "kept notes.txt in the cache folder"}},

		// 3, 4. Links planted where kiln writes.
		{name: "lock symlink", links: map[string]string{".kiln/cache/lock": "../../../outside.txt"}, code: 1,
			want: "kiln: $P/.kiln/cache/lock is a symlink (to ../../../outside.txt); kiln does not follow symlinks when it writes or deletes, so it will not take the project lock; remove the link and run kiln again"},
		{name: "lock symlink, clean", links: map[string]string{".kiln/cache/lock": "../../../outside.txt"}, args: []string{"clean"}, code: 1,
			has: []string{"$P/.kiln/cache/lock is a symlink"}},
		{name: "lock is a named pipe", setup: func(t *testing.T, p, w string) {
			os.MkdirAll(filepath.Join(p, ".kiln", "cache"), 0o755)
			if err := syscall.Mkfifo(filepath.Join(p, ".kiln", "cache", "lock"), 0o644); err != nil {
				t.Skip(err)
			}
		}, code: 1, has: []string{"$P/.kiln/cache/lock is not a regular file"}},
		{name: "cas symlink", links: map[string]string{".kiln/cache/cas": "../../../elsewhere"}, code: 1,
			want: "kiln: $P/.kiln/cache/cas is a symlink (to ../../../elsewhere); kiln does not follow symlinks when it writes or deletes, so it will not write to the cache; remove the link and run kiln again"},
		{name: "ac symlink", links: map[string]string{".kiln/cache/ac": "../../../elsewhere"}, code: 1,
			has: []string{"$P/.kiln/cache/ac is a symlink (to ../../../elsewhere)"}},
		{name: "tmp symlink", links: map[string]string{".kiln/cache/tmp": "$W/elsewhere"}, code: 1,
			has: []string{"$P/.kiln/cache/tmp is a symlink"}},
		{name: "cache shard symlink", setup: func(t *testing.T, p, w string) {
			prebuild(t, p, w)
			// Every shard of cas/ becomes a link out; a changed source needs a new blob.
			entries, _ := os.ReadDir(filepath.Join(p, ".kiln", "cache", "cas"))
			for _, e := range entries {
				os.RemoveAll(filepath.Join(p, ".kiln", "cache", "cas", e.Name()))
			}
			for i := range 256 {
				name := filepath.Join(p, ".kiln", "cache", "cas", hex2(i))
				os.Symlink(filepath.Join(w, "elsewhere"), name)
			}
			writeFiles(t, p, map[string]string{"art/a.png": pngBytes(2)})
		}, code: 1, owned: []string{"out", ".kiln"}, has: []string{"is a symlink", "kiln does not follow symlinks", "store an output in the cache"}},
		{name: "kiln folder symlink", links: map[string]string{".kiln": "$W/elsewhere"}, code: 1,
			has: []string{"$P/.kiln", "$W/elsewhere"}},
		{name: "output folder symlink out", links: map[string]string{"out": "$W/elsewhere"}, code: 1,
			has: []string{"$P/out", "$W/elsewhere"}},
		{name: "output folder symlink inside", links: map[string]string{"out": "art"}, code: 1,
			want: "kiln: $P/out is a symlink (to art); kiln does not follow symlinks when it writes or deletes, so it will not write outputs there; remove the link and run kiln again"},
		{name: "output subfolder symlink", man: "version: 1\nassets:\n  - {id: ui/a, kind: image, image: {source: art/a.png}}\n",
			links: map[string]string{"out/ui": "$W/elsewhere"}, code: 1,
			has: []string{"m.kiln.yaml:3:5", "$P/out/ui is a symlink (to $W/elsewhere)"}},
		{name: "output file symlink", links: map[string]string{"out/a.png": "$W/outside.txt"}, code: 1,
			has: []string{"m.kiln.yaml:3:5", "$P/out/a.png is a symlink (to $W/outside.txt)"}},
		{name: "dangling output file symlink", links: map[string]string{"out/a.png": "$W/new.txt"}, code: 1,
			has: []string{"$P/out/a.png is a symlink (to $W/new.txt)"}},
		{name: "output file is a named pipe", setup: func(t *testing.T, p, w string) {
			os.MkdirAll(filepath.Join(p, "out"), 0o755)
			if err := syscall.Mkfifo(filepath.Join(p, "out", "a.png"), 0o644); err != nil {
				t.Skip(err)
			}
		}, code: 1, has: []string{"m.kiln.yaml:3:5", "out/a.png is in the way: it is not a regular file"}},
		{name: "journal symlink", links: map[string]string{".kiln/cache/outputs.journal": "$W/outside.txt"}, code: 1,
			has: []string{"$P/.kiln/cache/outputs.journal is a symlink"}},
		{name: "state symlink", links: map[string]string{".kiln/cache/state": "$W/outside.txt"}, code: 0},
		{name: "clean through a linked output folder", setup: func(t *testing.T, p, w string) {
			writeFiles(t, p, map[string]string{"m.kiln.yaml": "version: 1\nassets:\n  - {id: ui/a, kind: image, image: {source: art/a.png}}\n"})
			prebuild(t, p, w)
			// Put an identical file in art/ui and link out/ui there.
			data, _ := os.ReadFile(filepath.Join(p, "out", "ui", "a.png"))
			writeFiles(t, p, map[string]string{"art/ui/a.png": string(data)})
			os.RemoveAll(filepath.Join(p, "out", "ui"))
			symlink(t, p, "out/ui", "../art/ui")
		}, args: []string{"clean"}, code: 1, owned: []string{".kiln"},
			has: []string{"$P/out/ui is a symlink"}},
		{name: "init through a linked .kiln", links: map[string]string{".kiln": "$W/elsewhere"}, setup: func(t *testing.T, p, w string) {
			os.Remove(filepath.Join(p, "kiln.yaml"))
		}, args: []string{"init", "."}, code: 1, owned: []string{"kiln.yaml", "assets.kiln.yaml", ".gitignore"},
			has: []string{".kiln is a symlink (to $W/elsewhere)", "will not write .kiln/"}},

		// 5. Reads that would leave the project.
		{name: "kiln.yaml symlink to the password database", links: map[string]string{"kiln.yaml": "/etc/passwd"}, args: []string{"validate"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml", "/etc/passwd", "outside the project"}, hasnt: []string{"root:", "unknown field"}},
		{name: "kiln.yaml symlink beside the project", links: map[string]string{"kiln.yaml": "../outside.txt"}, args: []string{"validate"}, code: 2, owned: []string{}, has: []string{"outside the project"}, hasnt: []string{"the outside file"}},
		{name: "kiln.yaml named pipe", setup: func(t *testing.T, p, w string) {
			os.Remove(filepath.Join(p, "kiln.yaml"))
			if err := syscall.Mkfifo(filepath.Join(p, "kiln.yaml"), 0o644); err != nil {
				t.Skip(err)
			}
		}, args: []string{"validate"}, code: 2, owned: []string{}, has: []string{"kiln.yaml"}},
		{name: "manifest symlink out is skipped with a warning", links: map[string]string{"x.kiln.yaml": "$W/other.kiln.yaml"}, code: 0,
			has: []string{"kiln: warning:", "x.kiln.yaml"}},
		{name: "manifest symlink out fails --check", links: map[string]string{"x.kiln.yaml": "$W/other.kiln.yaml"}, setup: prebuild,
			args: []string{"build", "-q", "--check"}, code: 2, has: []string{"kiln: warning:", "x.kiln.yaml", "--check treats them as errors"}},
		{name: "manifest inside the output folder", files: map[string]string{"out/x.kiln.yaml": manifest}, code: 2, owned: []string{},
			has: []string{"out/x.kiln.yaml"}},
		{name: "source symlink out", man: "version: 1\nassets:\n  - {id: a, kind: image, image: {source: art/l.png}}\n",
			links: map[string]string{"art/l.png": "$W/outside.txt"}, code: 1, has: []string{"m.kiln.yaml:3:5", "outside $P"}},

		// Flags are checked like kiln.yaml, before anything runs.
		{name: "--device quantum, all cached", setup: prebuild, args: []string{"build", "-q", "--device", "quantum"}, code: 2,
			want: `kiln: --device "quantum" is not an execution provider kiln knows; use one of cpu, cuda, tensorrt, coreml, directml, openvino`},
		{name: "--device typo", args: []string{"build", "--device", "cudaa"}, code: 2,
			want: `kiln: --device "cudaa" is not an execution provider kiln knows (did you mean "cuda"?); use one of cpu, cuda, tensorrt, coreml, directml, openvino`},
		{name: "--device-id -7, all cached", setup: prebuild, args: []string{"build", "-q", "--device-id", "-7"}, code: 2,
			want: "kiln: --device-id -7: give a device index of 0 or more (0 is the first GPU)"},
		{name: "--jobs -1, all cached", setup: prebuild, args: []string{"build", "-q", "--jobs", "-1"}, code: 2,
			want: "kiln: --jobs -1: give a positive number of jobs, or 0 for one per core"},
		{name: "--jobs not a number", args: []string{"build", "--jobs", "many"}, code: 2, has: []string{"--jobs"}},

		// runtime.library loads native code.
		{name: "runtime.library inside the project", cfg: config("runtime: {library: lib/libonnxruntime.so.1}"),
			files: map[string]string{"lib/libonnxruntime.so.1": "\x7fELF"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:", "runtime.library", "--ort-lib", "KILN_ORT_LIB"}},
		{name: "runtime.library absolute into the project", cfg: config("runtime: {library: $P/lib/libonnxruntime.so.1}"),
			files: map[string]string{"lib/libonnxruntime.so.1": "\x7fELF"}, code: 2, owned: []string{},
			has: []string{"kiln.yaml:", "runtime.library", "--ort-lib"}},

		// Pulls stay in the project.
		{name: "models pull --dest outside", args: []string{"models", "pull", "http://127.0.0.1:9/m/", "--dest", "$W/elsewhere/m"}, code: 2, owned: []string{},
			has: []string{"$W/elsewhere/m", "is not inside the project $P"}},
		{name: "models pull --dest the project", args: []string{"models", "pull", "http://127.0.0.1:9/m/", "--dest", "$P"}, code: 2, owned: []string{},
			has: []string{"is the project folder itself"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := t.TempDir()
			p := filepath.Join(w, "p")
			exp := strings.NewReplacer("$P", p, "$W", w).Replace
			writeFiles(t, w, map[string]string{"outside.txt": "the outside file\n", "elsewhere/keep.txt": "keep\n", "other.kiln.yaml": manifest})
			cfg, man := tt.cfg, tt.man
			if cfg == "" {
				cfg = imageConfig
			}
			if man == "" {
				man = manifest
			}
			files := map[string]string{"kiln.yaml": exp(cfg), "m.kiln.yaml": man, "art/a.png": pngBytes(1)}
			for k, v := range tt.files {
				files[k] = v
			}
			writeFiles(t, p, files)
			if tt.setup != nil {
				tt.setup(t, p, w)
			}
			for link, target := range tt.links {
				os.RemoveAll(filepath.Join(p, filepath.FromSlash(link)))
				symlink(t, p, link, exp(target))
			}
			owned := tt.owned
			if owned == nil {
				owned = []string{"out", ".kiln"}
			}
			skip := make([]string, len(owned))
			for i, o := range owned {
				skip[i] = "p/" + strings.TrimSuffix(o, "/")
			}
			before := worldSnapshot(t, w, skip)
			args := tt.args
			if args == nil {
				args = build
			}
			for i := range args {
				args[i] = exp(args[i])
			}
			r := kiln(t, p, args...)
			stderr := strings.TrimSpace(r.stderr)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", r.code, tt.code, stderr)
			}
			if tt.want != "" && stderr != exp(tt.want) {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, exp(tt.want))
			}
			for _, s := range tt.has {
				if !strings.Contains(stderr, exp(s)) {
					t.Errorf("stderr lacks %q:\n%s", exp(s), stderr)
				}
			}
			for _, s := range tt.out {
				if !strings.Contains(r.stdout, exp(s)) {
					t.Errorf("stdout lacks %q:\n%s", exp(s), r.stdout)
				}
			}
			for _, s := range tt.hasnt {
				if strings.Contains(stderr, s) {
					t.Errorf("stderr holds %q:\n%s", s, stderr)
				}
			}
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "fatal error:") || strings.Contains(r.stderr, "goroutine ") {
				t.Errorf("kiln crashed:\n%s", r.stderr)
			}
			if d := diffSnapshots(before, worldSnapshot(t, w, skip)); d != "" {
				t.Errorf("kiln changed files it does not own:\n%s", d)
			}
			if tt.check != nil {
				tt.check(t, p, w)
			}
		})
	}
}

// hex2 spells i as two lower-case hex digits.
func hex2(i int) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[i>>4], digits[i&15]})
}

// TestMemoryLimitRefusal runs a tileable 8192² (which the default limits
// allow) under a 4 GB address-space limit: the stage is refused from its
// memory estimate with exit 1 and its manifest position, never a Go
// runtime "out of memory" crash. The limit is an rlimit, so the outcome
// does not depend on the machine's free memory.
func TestMemoryLimitRefusal(t *testing.T) {
	t.Parallel()
	p := t.TempDir()
	writeFiles(t, p, map[string]string{"kiln.yaml": imageConfig,
		"m.kiln.yaml": "version: 1\nassets:\n  - {id: big, kind: tileable, model: ex, prompt: stone, size: 8192}\n"})
	cmd := exec.Command("sh", "-c", `ulimit -v 4000000 && exec "$0" build -q`, kilnBin)
	cmd.Dir = p
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	if code != 1 || !strings.Contains(text, "m.kiln.yaml:3:5: not enough memory to generate 8192x8192") || !strings.Contains(text, "lower size") {
		t.Errorf("exit %d:\n%s", code, text)
	}
	for _, crash := range []string{"fatal error", "goroutine ", "panic:"} {
		if strings.Contains(text, crash) {
			t.Errorf("kiln crashed (%q):\n%s", crash, text)
		}
	}
}
