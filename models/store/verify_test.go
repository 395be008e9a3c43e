package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// pulledCopy makes a copy of the test model with its kiln-manifest.json,
// as a pull leaves it.
func pulledCopy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tiny")
	copyDir(t, modelDir, dir)
	if err := WriteManifest(dir, modelManifest); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerifyModel(t *testing.T) {
	vocab := fileOf(t, modelManifest, "tokenizer/vocab.json")
	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string) // nil: leave the folder intact
		problems func(dir string) []string
		notes    []string
	}{
		{name: "good"},
		{
			name: "modified file",
			damage: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "tokenizer", "vocab.json")
				data, _ := os.ReadFile(p)
				data[10] ^= 1
				os.WriteFile(p, data, 0o644)
			},
			problems: func(dir string) []string {
				data, _ := os.ReadFile(filepath.Join(dir, "tokenizer", "vocab.json"))
				return []string{"tokenizer/vocab.json has sha256 " + sha256Hex(data) + ", kiln-manifest.json records " + vocab.SHA256 + " (modified or corrupt); pull the model again with --replace"}
			},
		},
		{
			name:   "missing file",
			damage: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "scheduler", "scheduler_config.json")) },
			problems: func(string) []string {
				return []string{"scheduler/scheduler_config.json is missing; pull the model again with --replace (only damaged files are downloaded)"}
			},
		},
		{
			name:   "missing graph",
			damage: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "unet", "model.onnx")) },
			problems: func(dir string) []string {
				return []string{
					"unet/model.onnx is missing; pull the model again with --replace (only damaged files are downloaded)",
					"model folder " + dir + " is incomplete: missing unet/model.onnx",
				}
			},
		},
		{
			name:   "truncated file",
			damage: func(t *testing.T, dir string) { os.Truncate(filepath.Join(dir, "tokenizer", "vocab.json"), 100) },
			problems: func(string) []string {
				return []string{"tokenizer/vocab.json is 100 bytes, kiln-manifest.json records 6529 (truncated or modified); pull the model again with --replace"}
			},
		},
		{
			name: "extra file",
			damage: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, "README.md"), []byte("hi"), 0o644)
			},
			notes: []string{"files not listed in kiln-manifest.json: README.md"},
		},
		{
			name:   "no manifest",
			damage: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ManifestName)) },
			notes:  []string{"no kiln-manifest.json, so file hashes were not checked; record the folder's current files with kiln models verify --record, or pull the model"},
		},
		{
			name:   "missing folder",
			damage: func(t *testing.T, dir string) { os.RemoveAll(dir) },
			problems: func(dir string) []string {
				return []string{"the model folder " + dir + " does not exist: pull it (kiln models pull tiny) or fix its path in kiln.yaml"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := pulledCopy(t)
			if tt.damage != nil {
				tt.damage(t, dir)
			}
			r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: dir}, VerifyOptions{})
			var want []string
			if tt.problems != nil {
				want = tt.problems(dir)
			}
			if strings.Join(r.Problems, "\n") != strings.Join(want, "\n") {
				t.Errorf("problems\n got  %q\n want %q", r.Problems, want)
			}
			notes := append([]string(nil), tt.notes...)
			if _, err := os.Stat(dir); err == nil {
				notes = append(notes, "graphs were not loaded: no ONNX Runtime (run kiln setup, or give its library with --ort-lib)")
			}
			if strings.Join(r.Notes, "\n") != strings.Join(notes, "\n") {
				t.Errorf("notes\n got  %q\n want %q", r.Notes, notes)
			}
		})
	}
}

// TestVerifyCatalogueFallback: a folder without kiln-manifest.json is
// checked against its catalogue entry.
func TestVerifyCatalogueFallback(t *testing.T) {
	dir := pulledCopy(t)
	os.Remove(filepath.Join(dir, ManifestName))
	os.Truncate(filepath.Join(dir, "tokenizer", "merges.txt"), 3)
	s := newModelServer(t)
	r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: dir}, VerifyOptions{Catalog: s.catalog(t, false)})
	want := "tokenizer/merges.txt is 3 bytes, the catalogue records 681 (truncated or modified); pull the model again with --replace"
	if len(r.Problems) != 1 || r.Problems[0] != want {
		t.Errorf("problems = %q, want %q", r.Problems, want)
	}
}

// TestVerifyGraphs loads every graph through ONNX Runtime, and reports a
// truncated one with ONNX Runtime's reason.
func TestVerifyGraphs(t *testing.T) {
	rt := testRuntime(t)
	dir := pulledCopy(t)
	r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: dir}, VerifyOptions{Runtime: rt})
	if !r.OK() || r.Graphs != 4 || len(r.Notes) != 0 {
		t.Fatalf("good folder: %+v", r)
	}

	const graph = "vae_decoder/model.onnx"
	p := filepath.Join(dir, filepath.FromSlash(graph))
	st, _ := os.Stat(p)
	if err := os.Truncate(p, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := Verify(context.Background(), &out, []LocalModel{
		{Name: "exemplar", Builtin: "exemplar", Configured: true},
		{Name: "tiny", Dir: dir, Configured: true},
	}, VerifyOptions{Runtime: rt})
	if err == nil || err.Error() != "1 of 2 models failed verification (see above)" {
		t.Fatalf("Verify error = %v", err)
	}
	r = results[1]
	if len(r.Problems) != 2 || r.Graphs != 3 {
		t.Fatalf("problems = %q, graphs %d", r.Problems, r.Graphs)
	}
	if want := graph + " is " + itoa(st.Size()/2) + " bytes, kiln-manifest.json records " + itoa(st.Size()) + " (truncated or modified)"; !strings.HasPrefix(r.Problems[0], want) {
		t.Errorf("size problem = %q", r.Problems[0])
	}
	if want := graph + " does not load: load " + p + ": not a valid ONNX model (truncated or corrupt file?): re-export or re-download it"; !strings.HasPrefix(r.Problems[1], want) {
		t.Errorf("graph problem\n got  %q\n want %q…", r.Problems[1], want)
	}
	text := out.String()
	for _, want := range []string{
		"ok      exemplar  built in, no files\n",
		"FAILED  tiny      " + dir + " (14 of 15 files match, 3 of 4 graphs load)\n",
		"        " + r.Problems[1] + "\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLocalModelsAndList(t *testing.T) {
	root := t.TempDir()
	tiny := filepath.Join(root, "models", "tiny")
	copyDir(t, modelDir, tiny)
	WriteManifest(tiny, modelManifest)
	// Pulled but not configured.
	extra := filepath.Join(root, "models", "extra")
	copyDir(t, modelDir, extra)
	m := *modelManifest
	m.Kind = manifests.ModelSD15
	WriteManifest(extra, &m)
	// An interrupted pull of a configured model.
	os.MkdirAll(filepath.Join(root, "models", "gone"+StagingSuffix), 0o755)

	cfg := &manifests.Config{Models: map[string]*manifests.Model{
		"tiny":   {Name: "tiny", Path: "models/tiny"},
		"gone":   {Name: "gone", Path: "models/gone", Kind: manifests.ModelSDXL},
		"sketch": {Name: "sketch", Builtin: "exemplar"},
	}}
	ms, err := LocalModels(root, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}
	if got := strings.Join(names, " "); got != "extra gone sketch tiny" {
		t.Fatalf("models = %s", got)
	}
	if ms[0].Configured || ms[0].Kind != "sd15" || ms[3].Kind != "turbo" || ms[3].Dir != tiny {
		t.Errorf("models = %+v", ms)
	}
	if _, err := Select(ms, "nope"); err == nil || err.Error() != `no model named "nope" in this project; its models are: extra, gone, sketch, tiny (kiln.yaml's models: lists them)` {
		t.Errorf("Select(nope) = %v", err)
	}
	if sel, err := Select(ms, "builtin:exemplar"); err != nil || sel[0].Name != "sketch" {
		t.Errorf("Select(builtin:exemplar) = %v, %v", sel, err)
	}

	cache := t.TempDir()
	var out bytes.Buffer
	if err := List(&out, ms, cache); err != nil {
		t.Fatal(err)
	}
	fp, err := (&models.Folder{Dir: tiny}).Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	size, _ := dirSize(tiny)
	sz := strings.Fields(formatBytes(size))
	lines := strings.Split(out.String(), "\n")
	want := [][]string{
		{"NAME", "KIND", "SIZE", "FINGERPRINT", "WHERE"},
		{"extra", "sd15", sz[0], sz[1], "*", "models/extra", "(not", "in", "kiln.yaml)"},
		{"gone", "sdxl", "-", "missing", "models/gone"},
		{"sketch", "-", "-", "-", "built", "in", "(no", "files)"},
		{"tiny", "turbo", sz[0], sz[1], fp[:len("sha256:")+16], "models/tiny"},
	}
	for i, w := range want {
		got := strings.Fields(lines[i])
		if len(got) != len(w) {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
			continue
		}
		for j := range w {
			if w[j] != "*" && got[j] != w[j] {
				t.Errorf("line %d field %d = %q, want %q (%s)", i, j, got[j], w[j], lines[i])
			}
		}
	}
	for _, note := range []string{
		"  gone: an unfinished pull is in " + filepath.Join(root, "models", "gone") + StagingSuffix + "; kiln models pull gone resumes it\n",
		"  gone: " + filepath.Join(root, "models", "gone") + " does not exist; kiln models pull gone downloads it\n",
	} {
		if !strings.Contains(out.String(), note) {
			t.Errorf("output lacks %q:\n%s", note, out.String())
		}
	}

	// The fingerprint's file hashes are remembered: listing again hashes
	// nothing (the cache file is not rewritten).
	hashes := filepath.Join(cache, "hashes.json")
	before, err := os.Stat(hashes)
	if err != nil {
		t.Fatalf("no fingerprint cache: %v", err)
	}
	if err := List(&bytes.Buffer{}, ms, cache); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(hashes)
	if !after.ModTime().Equal(before.ModTime()) {
		t.Error("listing again rewrote the hash cache")
	}
}
