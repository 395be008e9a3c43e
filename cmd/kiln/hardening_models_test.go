package main

import (
	"bytes"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// kilnEnv is kiln() with extra environment variables.
func kilnEnv(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kilnBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// modelProject is a hand-made image a and a concept-art asset g made by
// the model folder models/sd, a copy of model.
func modelProject(t *testing.T, model string) string {
	t.Helper()
	p := t.TempDir()
	writeFiles(t, p, map[string]string{
		"kiln.yaml": "version: 1\nmodels:\n  sd: models/sd\n",
		"m.kiln.yaml": "version: 1\nassets:\n  - {id: a, kind: image, image: {source: art/a.png}}\n" +
			"  - {id: g, kind: concept-art, model: sd, prompt: stone, size: 64, steps: 1}\n",
		"art/a.png": pngBytes(1),
	})
	copyTree(t, model, filepath.Join(p, "models", "sd"))
	return p
}

// TestBadModels breaks a model folder, its graphs, its weights and the ONNX
// Runtime library in turn. Each is a clear error naming the file, and
// with --keep-going the image asset still builds.
//
// In the expected messages $M is the model folder and $P the project.
func TestBadModels(t *testing.T) {
	t.Parallel()
	model := writeTurbo(t, t.TempDir(), "turbo")
	read := func(rel string) []byte {
		data, err := os.ReadFile(filepath.Join(model, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	write := func(rel string, data []byte) func(t *testing.T, m string) {
		return func(t *testing.T, m string) {
			if err := os.WriteFile(filepath.Join(m, filepath.FromSlash(rel)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(rel string) func(t *testing.T, m string) {
		return func(t *testing.T, m string) {
			if err := os.RemoveAll(filepath.Join(m, filepath.FromSlash(rel))); err != nil {
				t.Fatal(err)
			}
		}
	}
	noise := make([]byte, 5000)
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	unet := read("unet/model.onnx")
	lib := t.TempDir()
	writeFiles(t, lib, map[string]string{"notelf.so": "not a shared library\n", "arm64.so": arm64ELF()})

	const gen = "build failed: stage g:variation_000 failed: m.kiln.yaml:4:5: "
	tests := []struct {
		name  string
		spoil func(t *testing.T, m string)
		args  []string
		env   []string
		ort   bool // needs ONNX Runtime to reach the error
		code  int
		want  string // stderr after "kiln: ", exactly
		has   string // or: stderr starts with "kiln: "+want and contains has
	}{
		// Found when planning: the project is wrong (exit 2); with
		// --keep-going the asset's stage fails with the same error (exit
		// 1) and the image asset builds.
		{name: "model folder missing", spoil: remove(""), code: 2,
			want: `kiln.yaml:3:7: models.sd: model "sd": model folder $M does not exist (fix the model folder or its path in kiln.yaml)`},
		{name: "not a model folder", spoil: remove("model_index.json"), code: 2,
			want: "kiln.yaml:3:7: models.sd: model \"sd\": model folder $M has no model_index.json: it is not a diffusers/optimum ONNX export (make one with, for example, `optimum-cli export onnx --model stabilityai/sd-turbo $M`) (fix the model folder or its path in kiln.yaml)"},
		{name: "graph missing", spoil: remove("unet/model.onnx"), code: 2,
			want: `kiln.yaml:3:7: models.sd: model "sd": model folder $M is incomplete: missing unet/model.onnx (fix the model folder or its path in kiln.yaml)`},
		{name: "corrupt model_index.json", spoil: write("model_index.json", []byte("{")), code: 2,
			want: `kiln.yaml:3:7: models.sd: model "sd": $M/model_index.json: invalid JSON: line 1:1: unexpected end of JSON input (fix the model folder or its path in kiln.yaml)`},

		// Found when the model loads: the stage fails (exit 1).
		{name: "truncated graph", spoil: write("unet/model.onnx", unet[:3000]), ort: true, code: 1,
			want: gen + `model "sd": load $M/unet/model.onnx: not a valid ONNX model (truncated or corrupt file?): re-export or re-download it (Load model from $M/unet/model.onnx failed:Protobuf parsing failed)`},
		{name: "corrupt graph", spoil: write("unet/model.onnx", noise), ort: true, code: 1,
			want: gen + `model "sd": load $M/unet/model.onnx: not a valid ONNX model (truncated or corrupt file?): re-export or re-download it (Load model from $M/unet/model.onnx failed:Protobuf parsing failed)`},
		{name: "graph with the wrong inputs", spoil: write("unet/model.onnx", read("text_encoder/model.onnx")), ort: true, code: 1,
			want: gen + `model "sd": unet/model.onnx has inputs kiln does not know how to fill: input_ids int32[-1 -1] (it fills sample, timestep, encoder_hidden_states, text_embeds, time_ids and timestep_cond)`},
		{name: "graph with the wrong shapes", spoil: write("vae_decoder/model.onnx", read("vae_encoder/model.onnx")), ort: true, code: 1,
			want: gen + `generate with model "sd": decode image 1: run $M/vae_decoder/model.onnx: Error running network:`, has: "Input channels C is not equal to kernel channels"},
		{name: "external weights missing", spoil: remove("unet/model.onnx_data"), ort: true, code: 1,
			want: gen + `model "sd": load $M/unet/model.onnx: the external weights file $M/unet/model.onnx_data is missing: it must stay next to the .onnx file, under the name the export gave it (filesystem error: cannot get file size: No such file or directory [$M/unet/model.onnx_data])`},
		{name: "external weights truncated", spoil: write("unet/model.onnx_data", read("unet/model.onnx_data")[:1000]), ort: true, code: 1,
			want: gen + `model "sd": load $M/unet/model.onnx: its external weights are truncated or do not belong to this graph: re-export or re-download the model (`, has: "are out of bounds or can not be read in full"},
		{name: "corrupt tokenizer", spoil: write("tokenizer/vocab.json", []byte(`{"a":`)), ort: true, code: 1,
			want: gen + `model "sd": model $M: tokenizer $M/tokenizer: decode vocab.json: unexpected EOF (want a JSON object mapping tokens to ids)`},

		// The ONNX Runtime library.
		{name: "library is not a shared library", args: []string{"--ort-lib", filepath.Join(lib, "notelf.so")}, code: 1,
			want: gen + "ONNX Runtime library: $L/notelf.so is not a shared library (no ELF header): the file is corrupt or not ONNX Runtime; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"},
		{name: "library for another architecture", env: []string{"KILN_ORT_LIB=" + filepath.Join(lib, "arm64.so")}, code: 1,
			want: gen + "KILN_ORT_LIB: $L/arm64.so is built for AArch64 (arm64), but kiln runs on linux/amd64: use the ONNX Runtime 1.24 build for amd64; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"},
		{name: "library missing", args: []string{"--ort-lib", filepath.Join(lib, "none.so")}, code: 1,
			want: gen + "ONNX Runtime library: $L/none.so: file does not exist; run `kiln setup` (needs npm) or set KILN_ORT_LIB / --ort-lib to libonnxruntime.so.1 from ONNX Runtime 1.24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.ort {
				ortLibrary(t)
			}
			p := modelProject(t, model)
			m := filepath.Join(p, "models", "sd")
			if tt.spoil != nil {
				tt.spoil(t, m)
			}
			check := func(args []string, code int, want string) {
				t.Helper()
				r := kilnEnv(t, p, tt.env, append(args, tt.args...)...)
				want = "kiln: " + strings.NewReplacer("$M", m, "$P", p, "$L", lib).Replace(want)
				got := strings.TrimSpace(r.stderr)
				ok := got == want
				if tt.has != "" {
					ok = strings.HasPrefix(got, want) && strings.Contains(got, tt.has)
				}
				if r.code != code || !ok {
					t.Fatalf("kiln %s: exit %d, stderr:\n%s\nwant exit %d and:\n%s", strings.Join(args, " "), r.code, got, code, want)
				}
			}
			if tt.code == 2 {
				check([]string{"build", "-q"}, 2, tt.want)
				check([]string{"build", "-q", "--keep-going"}, 1, gen+tt.want)
			} else {
				check([]string{"build", "-q", "--keep-going"}, tt.code, tt.want)
			}
			if _, err := os.Stat(filepath.Join(p, "out", "a.png")); err != nil {
				t.Errorf("--keep-going did not build the image asset: %v", err)
			}
		})
	}
}

// TestBrokenModelKeepsBuiltOutputs builds a project, then breaks its model
// and changes the generated asset's prompt: the rebuild fails, and the
// outputs of the earlier build are all still there, unchanged.
func TestBrokenModelKeepsBuiltOutputs(t *testing.T) {
	t.Parallel()
	ortLibrary(t)
	model := writeTurbo(t, t.TempDir(), "turbo")
	p := modelProject(t, model)
	if r := kiln(t, p, "build", "-q"); r.code != 0 {
		t.Fatalf("first build: exit %d: %s", r.code, r.stderr)
	}
	before := snapshot(t, filepath.Join(p, "out"))
	if len(before) < 2 {
		t.Fatalf("first build wrote %v", before)
	}
	if err := os.WriteFile(filepath.Join(p, "models", "sd", "unet", "model.onnx"), []byte("broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, p, map[string]string{"m.kiln.yaml": "version: 1\nassets:\n  - {id: a, kind: image, image: {source: art/a.png}}\n" +
		"  - {id: g, kind: concept-art, model: sd, prompt: brick, size: 64, steps: 1}\n"})
	if r := kiln(t, p, "build", "-q", "-k"); r.code != 1 || !strings.Contains(r.stderr, "unet/model.onnx") {
		t.Fatalf("build with a broken model: exit %d: %s", r.code, r.stderr)
	}
	if d := diffSnapshots(before, snapshot(t, filepath.Join(p, "out"))); d != "" {
		t.Fatalf("outputs of the earlier build changed:\n%s", d)
	}
}
