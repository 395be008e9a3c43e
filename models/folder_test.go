package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeFiles creates files (relative path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// layoutSD is the file list of an SD 1.x folder; OpenFolder only checks
// that the graphs exist, so their content does not matter here.
func layoutSD() map[string]string {
	return map[string]string{
		"model_index.json":                `{"_class_name": "OnnxStableDiffusionPipeline", "text_encoder": ["diffusers", "OnnxRuntimeModel"]}`,
		"text_encoder/model.onnx":         "te",
		"unet/model.onnx":                 "unet",
		"unet/weights.pb":                 "weights",
		"vae_decoder/model.onnx":          "dec",
		"tokenizer/vocab.json":            "{}",
		"tokenizer/merges.txt":            "#version: 0.2\n",
		"scheduler/scheduler_config.json": `{"beta_start": 0.00085, "prediction_type": "epsilon"}`,
	}
}

func TestOpenFolder(t *testing.T) {
	tests := []struct {
		name        string
		files       map[string]string
		sdxl        bool
		scaling     float64
		vaeFactor   int
		sampleSize  int
		hasEncoder  bool
		schedulerOK bool
	}{
		{name: "sd1 defaults", files: layoutSD(), scaling: 0.18215, vaeFactor: 8, schedulerOK: true},
		{name: "vae config wins", files: merge(layoutSD(), map[string]string{
			"vae_decoder/config.json": `{"scaling_factor": 0.3611, "block_out_channels": [32, 64]}`,
			"vae_encoder/model.onnx":  "enc",
			"unet/config.json":        `{"sample_size": 96}`,
		}), scaling: 0.3611, vaeFactor: 2, sampleSize: 96, hasEncoder: true, schedulerOK: true},
		{name: "sdxl default scaling", files: merge(layoutSD(), map[string]string{
			"model_index.json":          `{"_class_name": "ORTStableDiffusionXLPipeline", "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}`,
			"text_encoder_2/model.onnx": "te2",
			"tokenizer_2/vocab.json":    "{}",
			"tokenizer_2/merges.txt":    "",
			"unet/config.json":          `{"sample_size": [128, 128]}`,
		}), sdxl: true, scaling: 0.13025, vaeFactor: 8, sampleSize: 128, schedulerOK: true},
		{name: "no scheduler config", files: without(layoutSD(), "scheduler/scheduler_config.json"), scaling: 0.18215, vaeFactor: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			f, err := OpenFolder(dir)
			if err != nil {
				t.Fatal(err)
			}
			if f.SDXL != tt.sdxl || f.ScalingFactor != tt.scaling || f.VAEFactor != tt.vaeFactor || f.SampleSize != tt.sampleSize {
				t.Errorf("got sdxl %v scaling %v vae factor %d sample %d", f.SDXL, f.ScalingFactor, f.VAEFactor, f.SampleSize)
			}
			if f.Has(VAEEncoder) != tt.hasEncoder {
				t.Errorf("Has(vae_encoder) = %v", f.Has(VAEEncoder))
			}
			if (f.Scheduler != nil) != tt.schedulerOK {
				t.Errorf("scheduler config %v", f.Scheduler)
			}
			if f.Path(UNet) != filepath.Join(dir, "unet", "model.onnx") {
				t.Errorf("Path(unet) = %s", f.Path(UNet))
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func without(a map[string]string, keys ...string) map[string]string {
	out := merge(a, nil)
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

func TestOpenFolderErrors(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "file.onnx")
	os.WriteFile(file, nil, 0o644)
	tests := []struct {
		name  string
		files map[string]string
		want  string // %s is the folder
	}{
		{"no index", without(layoutSD(), "model_index.json"),
			"model folder %s has no model_index.json: it is not a diffusers/optimum ONNX export (make one with, for example, `optimum-cli export onnx --model stabilityai/sd-turbo %s`)"},
		{"bad index", merge(layoutSD(), map[string]string{"model_index.json": "{\n  \"_class_name\": \"x\",\n  oops\n}"}),
			"%s/model_index.json: invalid JSON: line 3:3: invalid character 'o' looking for beginning of object key string"},
		{"missing unet and merges", without(layoutSD(), "unet/model.onnx", "tokenizer/merges.txt"),
			"model folder %s is incomplete: missing unet/model.onnx, tokenizer/merges.txt"},
		{"sdxl without its second encoder", merge(layoutSD(), map[string]string{"model_index.json": `{"_class_name": "ORTStableDiffusionXLPipeline"}`}),
			"model folder %s is incomplete: missing text_encoder_2/model.onnx, tokenizer_2/vocab.json, tokenizer_2/merges.txt"},
		{"bad scheduler config", merge(layoutSD(), map[string]string{"scheduler/scheduler_config.json": `[1, 2`}),
			"%s/scheduler/scheduler_config.json: invalid JSON: line 1:5: unexpected end of JSON input"},
		{"bad vae config", merge(layoutSD(), map[string]string{"vae_decoder/config.json": `"just a string"`}),
			"%s/vae_decoder/config.json: invalid JSON: json: cannot unmarshal string into Go value of type map[string]interface {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(root, strings.ReplaceAll(tt.name, " ", "_"))
			writeFiles(t, dir, tt.files)
			_, err := OpenFolder(dir)
			want := strings.ReplaceAll(tt.want, "%s", dir)
			if err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
		})
	}
	for path, want := range map[string]string{
		filepath.Join(root, "nope"): "model folder " + filepath.Join(root, "nope") + " does not exist",
		file:                        "model " + file + " is a file; give the model folder (the one holding model_index.json)",
	} {
		if _, err := OpenFolder(path); err == nil || err.Error() != want {
			t.Errorf("OpenFolder(%s): %v, want %s", path, err, want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, layoutSD())
	open := func() *Folder {
		f, err := OpenFolder(dir)
		if err != nil {
			t.Fatal(err)
		}
		f.CacheDir = filepath.Join(dir, ".cache") // hidden: not part of the fingerprint
		return f
	}
	f := open()
	fp1, err := f.Fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(fp1, "sha256:") || len(fp1) != len("sha256:")+64 {
		t.Errorf("fingerprint %q", fp1)
	}
	if n := f.hashed.Load(); n != int64(len(layoutSD())) {
		t.Errorf("first fingerprint hashed %d files, want %d", n, len(layoutSD()))
	}

	// Again, from a fresh Folder: every hash comes from the cache.
	f = open()
	fp2, _ := f.Fingerprint()
	if fp2 != fp1 || f.hashed.Load() != 0 {
		t.Errorf("second fingerprint %s (hashed %d files), want %s from the cache", fp2, f.hashed.Load(), fp1)
	}

	// Hidden files do not count.
	writeFiles(t, dir, map[string]string{".DS_Store": "x", "unet/.nfs123": "y"})
	if fp, _ := open().Fingerprint(); fp != fp1 {
		t.Error("hidden files changed the fingerprint")
	}

	// Changing one weight file (same size, new time) re-hashes only it.
	p := filepath.Join(dir, "unet", "weights.pb")
	os.WriteFile(p, []byte("WEIGHTS"), 0o644)
	later := time.Now().Add(time.Minute)
	os.Chtimes(p, later, later)
	f = open()
	fp3, _ := f.Fingerprint()
	if fp3 == fp1 || f.hashed.Load() != 1 {
		t.Errorf("after changing weights.pb: fingerprint changed %v, hashed %d files (want 1)", fp3 != fp1, f.hashed.Load())
	}

	// Touching without changing content keeps the fingerprint.
	evenLater := later.Add(time.Minute)
	os.Chtimes(p, evenLater, evenLater)
	if fp, _ := open().Fingerprint(); fp != fp3 {
		t.Error("touching a file changed the fingerprint")
	}

	// Without a cache folder it still works, hashing everything.
	f = open()
	f.CacheDir = ""
	if fp, err := f.Fingerprint(); err != nil || fp != fp3 || f.hashed.Load() != int64(len(layoutSD())) {
		t.Errorf("uncached fingerprint %s %v (hashed %d)", fp, err, f.hashed.Load())
	}
}

func TestStatCacheSurvivesCorruption(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hashes.json")
	os.WriteFile(file, []byte("{not json"), 0o644)
	c := openStatCache(file)
	target := filepath.Join(dir, "x")
	os.WriteFile(target, []byte("x"), 0o644)
	fi, _ := os.Stat(target)
	var v string
	if c.get(target, fi, &v) {
		t.Fatal("corrupt cache served a value")
	}
	c.put(target, fi, "hello")
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	if !openStatCache(file).get(target, fi, &v) || v != "hello" {
		t.Errorf("value not remembered: %q", v)
	}
}
