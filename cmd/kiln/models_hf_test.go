package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/draw"
	"image/png"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/hf/hftest"
	"github.com/kiln-dev/kiln/models/testmodels"
)

// hubRepo is the repository the fake Hub serves a generated model as.
const hubRepo = "org/tiny-turbo"

// servedHub serves a generated SD-Turbo folder (weights seeded by seed)
// as hubRepo on a loopback Hub, so what kiln pulls is a real, buildable
// model; it returns the Hub and the commit main points to.
func servedHub(t *testing.T, seed uint64) (*hftest.Hub, string) {
	t.Helper()
	h := hftest.New(t)
	return h, h.AddRepo(hubRepo, turboFiles(t, seed))
}

// turboFiles generates an SD-Turbo folder and reads it as repository
// files.
func turboFiles(t *testing.T, seed uint64) map[string][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "turbo")
	if err := testmodels.Write(dir, testmodels.Turbo, testmodels.Options{Seed: seed}); err != nil {
		t.Fatal(err)
	}
	files, err := hftest.ReadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// hubEnv points kiln at the fake Hub with a token that opens everything,
// a private kiln cache folder (the download cache) and no token file.
func hubEnv(t *testing.T, h *hftest.Hub, cache string, extra ...string) []string {
	t.Helper()
	env := []string{
		"HF_ENDPOINT=" + h.URL(),
		"HF_TOKEN=" + hftest.GoodToken,
		"HF_HOME=" + t.TempDir(),
		"KILN_HF_TOKEN=",
		"HF_HUB_OFFLINE=",
		"KILN_CACHE_HOME=" + cache,
	}
	return append(env, extra...)
}

// hfProject writes a project using hubRepo as model tiny for one
// concept-art asset.
func hfProject(t *testing.T) string {
	t.Helper()
	p := t.TempDir()
	writeFiles(t, p, map[string]string{
		"kiln.yaml":   "version: 1\nmodels:\n  tiny: {hf: " + hubRepo + ", kind: turbo}\n",
		"m.kiln.yaml": hfManifest,
	})
	return p
}

// hfManifest is hfProject's one manifest: a concept-art asset on tiny.
const hfManifest = "version: 1\nassets:\n  - {id: g, kind: concept-art, model: tiny, prompt: stone, size: 64, steps: 1}\n"

// decodePixels reads the PNG at path as NRGBA.
func decodePixels(t *testing.T, path string) *image.NRGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n
}

// lockCommit reads the commit kiln.lock pins for tiny.
func lockCommit(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(p, "kiln.lock"))
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Models map[string]struct{ Commit string }
	}
	if err := json.Unmarshal(data, &l); err != nil {
		t.Fatalf("kiln.lock: %v\n%s", err, data)
	}
	return l.Models["tiny"].Commit
}

// TestModelsPullLockBuild goes the whole way: kiln models pull writes
// kiln.lock, kiln build uses the model, a changed weights file stops the
// build (exit 1) and kiln models verify names it, kiln models pull
// restores it, --update moves the lock, and a second clone builds with
// kiln build --pull from the download cache with the Hub gone.
func TestModelsPullLockBuild(t *testing.T) {
	t.Parallel()
	lib := ortLibrary(t)
	h, commit := servedHub(t, 1)
	cache := t.TempDir()
	env := hubEnv(t, h, cache, "KILN_ORT_LIB="+lib)
	p := hfProject(t)
	run := func(dir string, code int, args ...string) result {
		t.Helper()
		r := kilnEnv(t, dir, env, args...)
		if r.code != code {
			t.Fatalf("kiln %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
		}
		return r
	}

	r := run(p, 0, "models", "pull")
	if !strings.Contains(r.stderr, "kiln.lock: pinned tiny to commit "+commit[:12]) || lockCommit(t, p) != commit {
		t.Fatalf("kiln models pull:\n%s", r.stderr)
	}
	run(p, 0, "build", "-q")
	pulled := snapshot(t, filepath.Join(p, "out"))
	if len(pulled) == 0 {
		t.Fatal("the build wrote no outputs")
	}
	// The pixels: the same project on the same model, written straight
	// into the project instead of pulled, makes the same bytes.
	local := t.TempDir()
	writeFiles(t, local, map[string]string{
		"kiln.yaml":   "version: 1\nmodels:\n  tiny: {path: models/tiny, kind: turbo}\n",
		"m.kiln.yaml": hfManifest,
	})
	if err := testmodels.Write(filepath.Join(local, "models", "tiny"), testmodels.Turbo, testmodels.Options{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	run(local, 0, "build", "-q")
	// The files differ in their recipes (which name the model's source),
	// not in their pixels.
	direct := snapshot(t, filepath.Join(local, "out"))
	if !slices.Equal(slices.Sorted(maps.Keys(pulled)), slices.Sorted(maps.Keys(direct))) {
		t.Fatalf("outputs: pulled model %v, local folder %v", pulled, direct)
	}
	for name := range pulled {
		a, b := decodePixels(t, filepath.Join(p, "out", name)), decodePixels(t, filepath.Join(local, "out", name))
		if !a.Bounds().Eq(b.Bounds()) || !bytes.Equal(a.Pix, b.Pix) {
			t.Errorf("%s: the pixels made with the pulled model differ from those made with the same model in a local folder", name)
		}
	}
	run(p, 0, "models", "verify", "tiny")

	// Other weights of the same size: the build stops before running.
	weights := filepath.Join(p, "models", "tiny", "unet", "model.onnx_data")
	data, err := os.ReadFile(weights)
	if err != nil {
		t.Fatal(err)
	}
	data[100] ^= 1
	os.Remove(weights) // linked from the download cache: write a new file
	if err := os.WriteFile(weights, data, 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(p, 1, "build", "-q")
	for _, want := range []string{"kiln: model tiny: " + weights + " has sha256 ", ", kiln.lock records ",
		"run kiln models pull tiny to restore the files kiln.lock pins (commit " + commit[:12] + " of hf:" + hubRepo + "), or kiln models pull --update tiny"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("build with changed weights: stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	r = run(p, 1, "models", "verify", "tiny")
	if !strings.Contains(r.stdout, "unet/model.onnx_data has sha256 ") || !strings.Contains(r.stdout, "kiln.lock records") {
		t.Errorf("verify does not name the file:\n%s", r.stdout)
	}
	r = run(p, 0, "models", "pull", "tiny")
	if !strings.Contains(r.stderr, "tiny: unet/model.onnx_data has sha256") || !strings.Contains(r.stderr, "restoring the files kiln.lock pins") {
		t.Errorf("restore:\n%s", r.stderr)
	}
	run(p, 0, "build", "-q")

	// A new upload moves main; --update follows it.
	newCommit := h.Push(hubRepo, "main", turboFiles(t, 2))
	run(p, 0, "models", "pull") // the lock still pins the old commit: nothing to do
	if lockCommit(t, p) != commit {
		t.Fatalf("kiln models pull moved the lock")
	}
	r = run(p, 0, "models", "pull", "--update", "tiny")
	if lockCommit(t, p) != newCommit || !strings.Contains(r.stderr, "moved tiny from commit "+commit[:12]+" to "+newCommit[:12]) {
		t.Fatalf("--update: lock at %s\n%s", lockCommit(t, p), r.stderr)
	}
	run(p, 0, "build", "-q")

	// A second clone, with the Hub gone: everything comes from the
	// download cache.
	h.Close()
	clone := t.TempDir()
	for _, f := range []string{"kiln.yaml", "m.kiln.yaml", "kiln.lock"} {
		data, err := os.ReadFile(filepath.Join(p, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, clone, map[string]string{f: string(data)})
	}
	r = run(clone, 1, "build", "-q") // not pulled yet
	if want := "kiln: model tiny: " + filepath.Join(clone, "models", "tiny") + " does not exist; run kiln models pull tiny (or kiln build --pull) to download the files kiln.lock pins (commit " + newCommit[:12]; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("build before the pull:\n%s\nwant:\n%s", r.stderr, want)
	}
	r = run(clone, 0, "build", "-q", "--pull")
	if !strings.Contains(r.stderr, "from the download cache") {
		t.Errorf("build --pull:\n%s", r.stderr)
	}
	run(clone, 0, "models", "verify", "tiny")
}

// TestModelsPullFailures: the Hub's refusals and broken transfers reach
// the command line with what to do, and exit 1.
func TestModelsPullFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		arg   string
		args  []string
		env   []string
		setup func(h *hftest.Hub, p string)
		code  int
		want  []string
	}{
		{name: "gated 401", arg: "hf:" + hubRepo, env: []string{"HF_TOKEN="},
			setup: func(h *hftest.Hub, p string) { h.SetGated(hubRepo, true) }, code: 1,
			want: []string{"kiln: pull tiny-turbo: resolve hf:" + hubRepo + ": " + hubRepo + " is a gated repository (HTTP 401 Unauthorized): accept the licence on ", "and set HF_TOKEN to a token with access (no token was sent"}},
		{name: "gated with the old variable", arg: "hf:" + hubRepo, env: []string{"HF_TOKEN=", "KILN_HF_TOKEN=" + hftest.OtherToken},
			setup: func(h *hftest.Hub, p string) { h.SetGated(hubRepo, true) }, code: 1,
			want: []string{"HTTP 403 Forbidden", "the token from KILN_HF_TOKEN was sent, but has no access"}},
		{name: "404", arg: "hf:org/missing", code: 1,
			want: []string{"repository org/missing was not found on ", "check its spelling"}},
		{name: "429 Retry-After", arg: "hf:" + hubRepo, args: []string{"--retries", "1"},
			setup: func(h *hftest.Hub, p string) {
				h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
					w.Header().Set("Retry-After", "1")
					hftest.Error(w, http.StatusTooManyRequests, "", "rate limited")
					return true
				})
			}, code: 1,
			want: []string{"the Hub is limiting the rate of requests (HTTP 429 Too Many Requests", "wait a few minutes and try again", "gave up after 2 attempts"}},
		{name: "truncated body", arg: "hf:" + hubRepo, args: []string{"--retries", "0"},
			setup: func(h *hftest.Hub, p string) {
				h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
					if len(data) < 100000 {
						return false
					}
					hftest.DropAfter(w, r, data, 5000)
					return true
				})
			}, code: 1,
			want: []string{"truncated body: ", "connection closed after 5000", "what was downloaded is kept in", "run the pull again to resume"}},
		{name: "SHA-256 mismatch", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, p string) {
				h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
					if len(data) < 100000 {
						return false
					}
					bad := append([]byte(nil), data...)
					bad[7] ^= 1
					w.Write(bad)
					return true
				})
			}, code: 1,
			want: []string{" is corrupt: expected sha256 ", "pull again"}},
		{name: "no ONNX export", arg: "hf:org/torch",
			setup: func(h *hftest.Hub, p string) {
				h.AddRepo("org/torch", map[string][]byte{"model_index.json": []byte(`{}`), "unet/diffusion_pytorch_model.safetensors": hftest.Blob("w", 100)})
			}, code: 1,
			want: []string{"no ONNX graph", `pip install "optimum[exporters]", then optimum-cli export onnx --model org/torch models/torch-onnx/`}},
		{name: "symlinked models folder", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, p string) { symlink(t, p, "models", t.TempDir()) }, code: 1,
			want: []string{"/models", "symlink"}},
		{name: "bad reference", arg: "hf:nope", code: 2, want: []string{`"hf:nope": the repository must be ORG/REPO`}},
		{name: "--as without hf:", arg: "tiny", args: []string{"--as", "x"}, code: 2, want: []string{"--as names a model pulled from Hugging Face"}},
		{name: "--update of a URL", arg: "hf:" + hubRepo, args: []string{"--update"}, code: 2, want: []string{"--update moves a kiln.lock entry: give the model's name"}},
		{name: "--update of a folder model", arg: "own", args: []string{"--update"}, code: 2, want: []string{"--update: model own is not pulled from Hugging Face"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := servedHub(t, 1)
			p := t.TempDir()
			writeFiles(t, p, map[string]string{"kiln.yaml": "version: 1\nmodels:\n  own: models/own\n"})
			if tt.setup != nil {
				tt.setup(h, p)
			}
			r := kilnEnv(t, p, hubEnv(t, h, t.TempDir(), tt.env...), append([]string{"models", "pull", tt.arg}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stderr, hftest.GoodToken) || strings.Contains(r.stderr, hftest.OtherToken) {
				t.Errorf("stderr shows the token:\n%s", r.stderr)
			}
			if _, err := os.Stat(filepath.Join(p, "kiln.lock")); err == nil {
				t.Errorf("a failed pull wrote kiln.lock")
			}
		})
	}
}

// TestModelsPullHFNotConfigured: a pull of a model kiln.yaml does not name
// says what to add, and kiln build then checks it against kiln.lock.
func TestModelsPullHFNotConfigured(t *testing.T) {
	t.Parallel()
	h, commit := servedHub(t, 1)
	p := t.TempDir()
	writeFiles(t, p, map[string]string{"kiln.yaml": "version: 1\n"})
	env := hubEnv(t, h, t.TempDir())
	r := kilnEnv(t, p, env, "models", "pull", "hf:"+hubRepo, "--as", "turbo")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	want := "to use it, add it to kiln.yaml under models:\n  turbo: {hf: " + hubRepo + ", revision: main}\n"
	if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "pinned turbo to commit "+commit[:12]) {
		t.Errorf("stderr:\n%s\nwant:\n%s", r.stderr, want)
	}
	if _, err := os.Stat(filepath.Join(p, "models", "turbo", "model_index.json")); err != nil {
		t.Error(err)
	}
	r = kilnEnv(t, p, env, "models", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "turbo") {
		t.Errorf("models list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
