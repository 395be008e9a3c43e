package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
	"github.com/kiln-dev/kiln/models/hf"
	"github.com/kiln-dev/kiln/models/hf/hftest"
)

// hubRepo is the repository the tests serve modelDir as.
const hubRepo = "org/tiny-turbo"

// waits records the waits the Hub client asks for, without waiting.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) got() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// newHub serves modelDir, the generated SD-Turbo folder, as hubRepo and
// returns the Hub and the commit main points to.
func newHub(t *testing.T) (*hftest.Hub, string) {
	t.Helper()
	h := hftest.New(t)
	files, err := hftest.ReadFolder(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	return h, h.AddRepo(hubRepo, files)
}

// hubProject is a project whose kiln.yaml is config ("" for none), with
// its loaded Config, and PullOptions for pulling from h with the kiln
// cache folder cache.
func hubProject(t *testing.T, h *hftest.Hub, config, cache string) (string, PullOptions) {
	t.Helper()
	root := t.TempDir()
	return root, hubOptions(t, h, root, config, cache)
}

func hubOptions(t *testing.T, h *hftest.Hub, root, config, cache string) PullOptions {
	t.Helper()
	opts := testOptions(root, nil)
	opts.CacheDir = cache
	opts.Hub = hf.Options{Endpoint: h.URL(), Token: hftest.GoodToken, UserAgent: "kiln/test", RetryDelay: -1}
	if config != "" {
		if err := os.WriteFile(filepath.Join(root, manifests.ConfigFile), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := manifests.Load(root)
		if err != nil {
			t.Fatalf("load %s: %v", config, err)
		}
		opts.Config = p.Config
	}
	return opts
}

// tinyConfig names hubRepo as model tiny.
const tinyConfig = "version: 1\nmodels:\n  tiny: {hf: " + hubRepo + ", kind: turbo}\n"

func readLockT(t *testing.T, root string) *Lock {
	t.Helper()
	l, err := ReadLock(root)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hubRequests counts h's requests whose path contains part.
func hubRequests(h *hftest.Hub, server, part string) int {
	n := 0
	for _, r := range h.Requests(server) {
		if strings.Contains(r.Path, part) {
			n++
		}
	}
	return n
}

func TestPullHFWritesLock(t *testing.T) {
	h, commit := newHub(t)
	root, opts := hubProject(t, h, tinyConfig, t.TempDir())
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", opts)
	if err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	dest := filepath.Join(root, "models", "tiny")
	if res.Dir != dest || !res.Configured || res.Commit != commit || res.Locked || !res.LockChanged {
		t.Errorf("result %+v", res)
	}
	sameTree(t, dest)
	rec, _ := ReadManifest(dest)
	if rec.Source != "hf:"+hubRepo+"@"+commit || rec.Kind != manifests.ModelTurbo {
		t.Errorf("kiln-manifest.json source %q kind %q", rec.Source, rec.Kind)
	}

	data, err := os.ReadFile(filepath.Join(root, LockName))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(data, LockName)
	if err != nil {
		t.Fatal(err)
	}
	e := l.Models["tiny"]
	if e == nil || e.Repo != hubRepo || e.Revision != "main" || e.Subfolder != "" || e.Commit != commit || !sameFiles(e.Files, modelManifest.Files) {
		t.Fatalf("lock entry %+v", e)
	}
	// The lock is in its stable form: encoding it again changes nothing.
	again, err := l.Encode()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("kiln.lock is not stable (%v):\n%s\nre-encoded:\n%s", err, data, again)
	}
	wantStart := "{\n  \"version\": 1,\n  \"models\": {\n    \"tiny\": {\n      \"hf\": \"" + hubRepo + "\",\n      \"revision\": \"main\",\n      \"commit\": \"" + commit + "\",\n      \"files\": [\n        {\"path\": \"model_index.json\", \"size\": "
	if !strings.HasPrefix(string(data), wantStart) || !strings.HasSuffix(string(data), "\n      ]\n    }\n  }\n}\n") {
		t.Errorf("kiln.lock layout:\n%s", data)
	}
	for _, want := range []string{"pulling tiny (15 files", "from hf:" + hubRepo + " (commit " + commit[:12] + ", the commit it points to)", "kiln.lock: pinned tiny to commit " + commit[:12]} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "to use it, add it") {
		t.Errorf("kiln.yaml names the model, yet the output says to add it:\n%s", out.String())
	}

	// Pulling again asks the Hub nothing: the lock pins the files and
	// the folder holds them.
	before := len(h.Requests(""))
	out.Reset()
	res, err = Pull(context.Background(), &out, "tiny", opts)
	if err != nil || !res.UpToDate || !res.Locked || res.LockChanged {
		t.Fatalf("second pull: %+v, %v\n%s", res, err, out.String())
	}
	if n := len(h.Requests("")) - before; n != 0 {
		t.Errorf("second pull made %d requests", n)
	}
}

func TestPullHFRef(t *testing.T) {
	h, commit := newHub(t)
	h.Tag(hubRepo, "v1", commit)
	tests := []struct {
		name, arg, as, config string
		wantName, wantDir     string
		wantOut               []string
		wantErr               string
	}{
		{name: "not in kiln.yaml", arg: "hf:" + hubRepo, wantName: "tiny-turbo", wantDir: "models/tiny-turbo",
			wantOut: []string{"to use it, add it to kiln.yaml under models:\n  tiny-turbo: {hf: " + hubRepo + ", revision: main}\n"}},
		{name: "with --as and a revision", arg: "hf:" + hubRepo + "@v1", as: "turbo", wantName: "turbo", wantDir: "models/turbo",
			wantOut: []string{"  turbo: {hf: " + hubRepo + ", revision: v1}\n"}},
		{name: "name lower-cased", arg: "hf:Org/Tiny-Turbo", config: "version: 1\n", wantErr: "repository Org/Tiny-Turbo was not found"},
		{name: "into a configured path", arg: "hf:" + hubRepo, as: "t", config: "version: 1\nmodels:\n  t: models/own/t\n", wantName: "t", wantDir: "models/own/t",
			wantOut: []string{"kiln.yaml names t without hf:; add hf: " + hubRepo + " to its entry"}},
		{name: "kiln.yaml names another repository", arg: "hf:" + hubRepo, as: "t", config: "version: 1\nmodels:\n  t: {hf: org/other}\n",
			wantErr: "kiln.yaml:3:11: kiln.yaml pulls model t from hf:org/other there, not hf:" + hubRepo + ": pull that with kiln models pull t"},
		{name: "kiln.yaml names another revision", arg: "hf:" + hubRepo + "@v1", config: "version: 1\nmodels:\n  tiny-turbo: {hf: " + hubRepo + "}\n",
			wantErr: "pulls model tiny-turbo from hf:" + hubRepo + " there, not hf:" + hubRepo + "@v1"},
		{name: "built-in name", arg: "hf:" + hubRepo, as: "x", config: "version: 1\nmodels:\n  x: builtin:exemplar\n",
			wantErr: "model x is the built-in builtin:exemplar"},
		{name: "bad name", arg: "hf:" + hubRepo, as: "-x", wantErr: `model name "-x" is not valid; choose one with --as`},
		{name: "bad reference", arg: "hf:nope", wantErr: "the repository must be ORG/REPO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			opts := hubOptions(t, h, root, tt.config, "")
			opts.Name = tt.as
			var out bytes.Buffer
			res, err := Pull(context.Background(), &out, tt.arg, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Pull: %v\n%s", err, out.String())
			}
			if res.Name != tt.wantName || res.Dir != filepath.Join(root, filepath.FromSlash(tt.wantDir)) {
				t.Errorf("pulled %s into %s", res.Name, res.Dir)
			}
			sameTree(t, res.Dir)
			if e := readLockT(t, root).Models[tt.wantName]; e == nil || e.Commit != commit {
				t.Errorf("lock entry %+v", e)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestPullHFFromLock: a second clone of the project pulls exactly the
// locked commit and files though the branch moved since, without asking
// the Hub what main points to; --update then moves the lock.
func TestPullHFFromLock(t *testing.T) {
	h, commit := newHub(t)
	first, opts := hubProject(t, h, tinyConfig, t.TempDir())
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	// A new upload moves main: other weights, one file more.
	files, err := hftest.ReadFolder(modelDir)
	if err != nil {
		t.Fatal(err)
	}
	files["unet/model.onnx_data"] = hftest.Blob("new weights", len(files["unet/model.onnx_data"]))
	files["tokenizer/added_tokens.json"] = []byte(`{}`)
	newCommit := h.Push(hubRepo, "main", files)

	// The second clone: kiln.yaml and kiln.lock, no models, another
	// machine's (empty) download cache.
	second := t.TempDir()
	lock, err := os.ReadFile(filepath.Join(first, LockName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(second, LockName), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	opts2 := hubOptions(t, h, second, tinyConfig, t.TempDir())
	before := hubRequests(h, "hub", "/revision/")
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", opts2)
	if err != nil {
		t.Fatalf("Pull from the lock: %v\n%s", err, out.String())
	}
	// (Identical files are downloaded once: the second comes from the
	// download cache.)
	if !res.Locked || res.Commit != commit || res.LockChanged || res.Fetched == 0 || res.Fetched > modelManifest.TotalSize() {
		t.Errorf("result %+v", res)
	}
	sameTree(t, res.Dir)
	if n := hubRequests(h, "hub", "/revision/") - before; n != 0 {
		t.Errorf("%d requests for what main points to; the lock pins the commit", n)
	}
	for _, r := range h.Requests("hub") {
		if strings.Contains(r.Path, "/resolve/") && !strings.Contains(r.Path, "/resolve/"+commit+"/") {
			t.Errorf("download %s not pinned to the locked commit", r.Path)
		}
	}
	if !strings.Contains(out.String(), "(commit "+commit[:12]+", pinned by kiln.lock)") {
		t.Errorf("output:\n%s", out.String())
	}
	if after, _ := os.ReadFile(filepath.Join(second, LockName)); !bytes.Equal(after, lock) {
		t.Errorf("a pull from the lock rewrote it:\n%s", after)
	}

	// --update moves the lock to what main points to now, downloading
	// only what changed.
	out.Reset()
	upd := opts2
	upd.Update = true
	res, err = Pull(context.Background(), &out, "tiny", upd)
	if err != nil {
		t.Fatalf("Pull --update: %v\n%s", err, out.String())
	}
	e := readLockT(t, second).Models["tiny"]
	if e.Commit != newCommit || res.Commit != newCommit || !res.LockChanged || len(e.Files) != len(modelManifest.Files)+1 {
		t.Fatalf("after --update: result %+v, entry %+v", res, e)
	}
	if want := int64(len(files["unet/model.onnx_data"])); res.Fetched > want+64<<10 {
		t.Errorf("--update downloaded %d bytes; only the new weights (%d) and small files should come", res.Fetched, want)
	}
	if got, _ := os.ReadFile(filepath.Join(res.Dir, "unet", "model.onnx_data")); !bytes.Equal(got, files["unet/model.onnx_data"]) {
		t.Errorf("the new weights are not in the folder")
	}
	if !strings.Contains(out.String(), "kiln.lock: moved tiny from commit "+commit[:12]+" to "+newCommit[:12]) {
		t.Errorf("output:\n%s", out.String())
	}
	if r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: res.Dir}, VerifyOptions{Lock: readLockT(t, second)}); !r.OK() || !r.Locked {
		t.Errorf("verify after --update: %+v", r)
	}
	// An --update with nothing new changes nothing.
	out.Reset()
	res, err = Pull(context.Background(), &out, "tiny", upd)
	if err != nil || !res.UpToDate || res.LockChanged {
		t.Errorf("second --update: %+v %v\n%s", res, err, out.String())
	}
}

// TestPullHFSharedCache: a second project pulls the same locked model from
// the download cache with the Hub gone, the files linked from the cache;
// a damaged blob is not used.
func TestPullHFSharedCache(t *testing.T) {
	h, _ := newHub(t)
	cache := t.TempDir()
	first, opts := hubProject(t, h, tinyConfig, cache)
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	lock, _ := os.ReadFile(filepath.Join(first, LockName))
	for _, f := range modelManifest.Files {
		blob := filepath.Join(cache, BlobsDir, "sha256", f.SHA256)
		fi, err := os.Stat(blob)
		if err != nil || fi.Size() != f.Size || fi.Mode().Perm() != 0o444 {
			t.Fatalf("blob of %s: %v %v", f.Path, fi, err)
		}
	}

	clone := func(t *testing.T) (string, PullOptions) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, LockName), lock, 0o644); err != nil {
			t.Fatal(err)
		}
		return root, hubOptions(t, h, root, tinyConfig, cache)
	}

	// A damaged blob is dropped and downloaded again.
	bad := fileOf(t, modelManifest, "unet/model.onnx_data")
	blob := filepath.Join(cache, BlobsDir, "sha256", bad.SHA256)
	os.Chmod(blob, 0o644)
	if err := os.WriteFile(blob, bytes.Repeat([]byte{1}, int(bad.Size)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := hubRequests(h, "cdn", bad.SHA256)
	_, opts2 := clone(t)
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", opts2)
	if err != nil {
		t.Fatalf("pull with a damaged blob: %v\n%s", err, out.String())
	}
	sameTree(t, res.Dir)
	if n := hubRequests(h, "cdn", bad.SHA256) - before; n != 1 {
		t.Errorf("the damaged blob's file was downloaded %d times, want 1", n)
	}
	if res.Fetched != bad.Size {
		t.Errorf("fetched %d bytes, want only the damaged blob's %d", res.Fetched, bad.Size)
	}

	// With the Hub stopped (and HF_HUB_OFFLINE set), a third project
	// still gets the model.
	h.Close()
	root, opts3 := clone(t)
	opts3.Hub.LookupEnv = func(k string) (string, bool) { return "1", k == "HF_HUB_OFFLINE" }
	out.Reset()
	res, err = Pull(context.Background(), &out, "tiny", opts3)
	if err != nil {
		t.Fatalf("pull from the cache without the Hub: %v\n%s", err, out.String())
	}
	sameTree(t, res.Dir)
	if res.Fetched != 0 || !strings.Contains(out.String(), "ok unet/model.onnx_data (181.0 KiB, from the download cache)") {
		t.Errorf("fetched %d bytes:\n%s", res.Fetched, out.String())
	}
	for _, f := range modelManifest.Files {
		a, _ := os.Stat(filepath.Join(cache, BlobsDir, "sha256", f.SHA256))
		b, _ := os.Stat(filepath.Join(root, "models", "tiny", filepath.FromSlash(f.Path)))
		if a == nil || b == nil || !os.SameFile(a, b) {
			t.Errorf("%s is not linked from the cache", f.Path)
		}
	}
	// The pull remembered every hash: checking the folder reads nothing.
	hc := models.OpenHashCache(cache)
	if err := CheckLocked(context.Background(), "tiny", res.Dir, readLockT(t, root).Models["tiny"], hc); err != nil || hc.Hashed() != 0 {
		t.Errorf("CheckLocked after the pull: %v, %d files hashed", err, hc.Hashed())
	}
}

// TestPullHFFailures: each failure of the Hub reaches the caller with a
// message that says what to do, and leaves no model folder.
func TestPullHFFailures(t *testing.T) {
	lfsFile := fileOf(t, modelManifest, "unet/model.onnx_data")
	tests := []struct {
		name    string
		arg     string
		setup   func(h *hftest.Hub, opts *PullOptions)
		is      error
		want    []string
		waits   []time.Duration
		success bool
	}{
		{name: "gated without a token", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) { h.SetGated(hubRepo, true); o.Hub.Token = "" },
			is:    hf.ErrGated, want: []string{hubRepo + " is a gated repository (HTTP 401 Unauthorized)", "accept the licence on", "set HF_TOKEN"}},
		{name: "gated, licence not accepted", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) { h.SetGated(hubRepo, true); o.Hub.Token = hftest.OtherToken },
			is:    hf.ErrGated, want: []string{"HTTP 403 Forbidden", "accept the licence"}},
		{name: "missing repository", arg: "hf:org/nope",
			is: hf.ErrRepoNotFound, want: []string{"repository org/nope was not found", "check its spelling"}},
		{name: "missing revision", arg: "hf:" + hubRepo + "@v9",
			is: hf.ErrRevisionNotFound, want: []string{`has no revision "v9"`}},
		{name: "missing subfolder", arg: "hf:" + hubRepo + "/onnx",
			is: hf.ErrEntryNotFound, want: []string{`has no folder "onnx"`}},
		{name: "429 with Retry-After", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) {
				h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
					if n == 1 {
						w.Header().Set("Retry-After", "3")
						hftest.Error(w, http.StatusTooManyRequests, "", "rate limited")
						return true
					}
					return false
				})
			},
			waits: []time.Duration{3 * time.Second}, success: true},
		{name: "429 until the retries run out", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) {
				o.Hub.Retries = 1
				h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
					w.Header().Set("Retry-After", "2")
					hftest.Error(w, http.StatusTooManyRequests, "", "rate limited")
					return true
				})
			},
			want: []string{"limiting the rate of requests (HTTP 429", "wait a few minutes and try again", "gave up after 2 attempts"}, waits: []time.Duration{2 * time.Second}},
		{name: "truncated body", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) {
				o.Hub.Retries = 1
				h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
					if len(data) != int(lfsFile.Size) {
						return false
					}
					hftest.DropAfter(w, r, data, 1000)
					return true
				})
			},
			is: hf.ErrTruncated, want: []string{"truncated body", "unet/model.onnx_data", "gave up after 2 attempts", "what was downloaded is kept in"}, waits: []time.Duration{0}},
		{name: "SHA-256 mismatch", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) {
				h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
					if len(data) != int(lfsFile.Size) {
						return false
					}
					bad := append([]byte(nil), data...)
					bad[10] ^= 1
					w.Write(bad)
					return true
				})
			},
			want: []string{"unet/model.onnx_data is corrupt: expected sha256 " + lfsFile.SHA256}},
		{name: "no ONNX export", arg: "hf:org/torch",
			setup: func(h *hftest.Hub, o *PullOptions) {
				h.AddRepo("org/torch", map[string][]byte{
					"model_index.json":                         []byte(`{}`),
					"unet/diffusion_pytorch_model.safetensors": hftest.Blob("w", 100),
				})
			},
			is: hf.ErrNoONNX, want: []string{"no ONNX graph, only weights kiln cannot run (unet/diffusion_pytorch_model.safetensors)", `optimum-cli export onnx --model org/torch models/torch-onnx/`}},
		{name: "HF_HUB_OFFLINE", arg: "hf:" + hubRepo,
			setup: func(h *hftest.Hub, o *PullOptions) {
				o.Hub.LookupEnv = func(k string) (string, bool) { return "1", k == "HF_HUB_OFFLINE" }
			},
			want: []string{"HF_HUB_OFFLINE is set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t)
			root := t.TempDir()
			opts := hubOptions(t, h, root, "", "")
			w := &waits{}
			opts.Hub.Sleep = w.sleep
			if tt.setup != nil {
				tt.setup(h, &opts)
			}
			var out bytes.Buffer
			res, err := Pull(context.Background(), &out, tt.arg, opts)
			if fmt.Sprint(w.got()) != fmt.Sprint(tt.waits) {
				t.Errorf("waits %v, want %v", w.got(), tt.waits)
			}
			if tt.success {
				if err != nil {
					t.Fatalf("Pull: %v", err)
				}
				sameTree(t, res.Dir)
				return
			}
			if err == nil {
				t.Fatalf("Pull succeeded:\n%s", out.String())
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v, want errors.Is %v", err, tt.is)
			}
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q\nlacks %q", err, s)
				}
			}
			if strings.Contains(err.Error(), hftest.GoodToken) || strings.Contains(err.Error(), "Signature") {
				t.Errorf("error shows a secret: %v", err)
			}
			if exists(filepath.Join(root, "models", "tiny-turbo")) || exists(filepath.Join(root, LockName)) {
				t.Errorf("a failed pull left a model folder or a lock")
			}
		})
	}
}

// TestPullHFResumes: a pull interrupted by dropped connections keeps what
// it downloaded, and the next pull resumes it with a range request.
func TestPullHFResumes(t *testing.T) {
	h, _ := newHub(t)
	lfsFile := fileOf(t, modelManifest, "unet/model.onnx_data")
	root := t.TempDir()
	opts := hubOptions(t, h, root, tinyConfig, "")
	opts.Hub.Retries = -1
	h.SetCDNHook(func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool {
		if len(data) != int(lfsFile.Size) {
			return false
		}
		hftest.DropAfter(w, r, data, 70000)
		return true
	})
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); !errors.Is(err, hf.ErrTruncated) {
		t.Fatalf("first pull: %v, want a truncated download", err)
	}
	part := filepath.Join(root, "models", "tiny"+StagingSuffix, "unet", "model.onnx_data.part")
	if fi, err := os.Stat(part); err != nil || fi.Size() != 70000 {
		t.Fatalf("partial download: %v %v", fi, err)
	}
	h.SetCDNHook(nil)
	res, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	if err != nil {
		t.Fatal(err)
	}
	sameTree(t, res.Dir)
	// (Other files the failure stopped may have resumed too.)
	if !slices.Contains(res.Resumed, "unet/model.onnx_data") {
		t.Errorf("resumed %v", res.Resumed)
	}
	var last hftest.Request
	for _, r := range h.Requests("cdn") {
		if strings.Contains(r.Path, lfsFile.SHA256) {
			last = r
		}
	}
	if last.Range != "bytes=70000-" {
		t.Errorf("the last CDN request asked for %q, want bytes=70000-", last.Range)
	}
}

// TestPullHFChangedSinceLock: a Hub serving other bytes at the locked
// commit than kiln.lock records fails the pull, saying so.
func TestPullHFChangedSinceLock(t *testing.T) {
	h, commit := newHub(t)
	first, opts := hubProject(t, h, tinyConfig, "")
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	f := fileOf(t, modelManifest, "unet/model.onnx_data")
	h.Replace(hubRepo, commit, f.Path, hftest.Blob("other", int(f.Size)))
	second := t.TempDir()
	lock, _ := os.ReadFile(filepath.Join(first, LockName))
	os.WriteFile(filepath.Join(second, LockName), lock, 0o644)
	_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", hubOptions(t, h, second, tinyConfig, ""))
	if !errors.Is(err, hf.ErrChanged) || !strings.Contains(err.Error(), "the file list or lock says "+f.SHA256) {
		t.Fatalf("error %v, want ErrChanged naming the locked sha256", err)
	}
	if exists(filepath.Join(second, "models", "tiny")) {
		t.Error("the model folder appeared")
	}
}

// TestLockedFolderChecks: verify and CheckLocked name the file that
// differs from kiln.lock and what to do; kiln models pull restores it.
func TestLockedFolderChecks(t *testing.T) {
	h, _ := newHub(t)
	cache := t.TempDir()
	root, opts := hubProject(t, h, tinyConfig, cache)
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(root, "models", "tiny")
	pristine := t.TempDir()
	copyDir(t, dest, pristine)
	f := fileOf(t, modelManifest, "unet/model.onnx_data")
	restore := "run kiln models pull tiny to restore the files kiln.lock pins (commit "
	tests := []struct {
		name  string
		spoil func(dir string)
		file  string
		want  string // in VerifyModel's problem and CheckLocked's error
	}{
		{"missing", func(d string) { os.Remove(filepath.Join(d, "unet", "model.onnx_data")) }, f.Path, "unet/model.onnx_data is missing; " + restore},
		{"wrong size", func(d string) { os.Truncate(filepath.Join(d, "unet", "model.onnx_data"), 10) }, f.Path,
			fmt.Sprintf("unet/model.onnx_data is 10 bytes, kiln.lock records %d", f.Size)},
		{"wrong content", func(d string) {
			p := filepath.Join(d, "tokenizer", "vocab.json")
			data, _ := os.ReadFile(p)
			data[0] ^= 1
			os.Remove(p) // a linked file is shared with the cache: write a new one
			os.WriteFile(p, data, 0o644)
		}, "tokenizer/vocab.json", "tokenizer/vocab.json has sha256 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(dest)
			copyDir(t, pristine, dest)
			tt.spoil(dest)
			lock := readLockT(t, root)
			r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: dest, HF: opts.Config.Models["tiny"].HF}, VerifyOptions{Lock: lock})
			if r.OK() || !r.Locked || !strings.Contains(strings.Join(r.Problems, "\n"), tt.want) || !strings.Contains(strings.Join(r.Problems, "\n"), restore) {
				t.Errorf("verify problems %q, want one containing %q and %q", r.Problems, tt.want, restore)
			}
			err := CheckLocked(context.Background(), "tiny", dest, lock.Models["tiny"], models.OpenHashCache(cache))
			var lm *LockMismatchError
			if !errors.As(err, &lm) || lm.File != tt.file || !strings.Contains(err.Error(), "model tiny: "+filepath.Join(dest, filepath.FromSlash(tt.file))) ||
				!strings.Contains(err.Error(), "kiln models pull tiny to restore") || !strings.Contains(err.Error(), "kiln models pull --update tiny") {
				t.Errorf("CheckLocked: %v", err)
			}
			err = CheckLocks(context.Background(), root, opts.Config, []string{"tiny"}, cache)
			if !errors.As(err, &lm) || lm.File != tt.file {
				t.Errorf("CheckLocks: %v", err)
			}
			// kiln models pull tiny restores the locked files.
			var out bytes.Buffer
			if _, err := Pull(context.Background(), &out, "tiny", opts); err != nil {
				t.Fatalf("restore: %v\n%s", err, out.String())
			}
			sameTree(t, dest)
			if !strings.Contains(out.String(), "restoring the files kiln.lock pins") && tt.name == "wrong content" {
				t.Errorf("restore output:\n%s", out.String())
			}
			if err := CheckLocks(context.Background(), root, opts.Config, []string{"tiny"}, cache); err != nil {
				t.Errorf("after the restore: %v", err)
			}
		})
	}
}

func TestCheckLocksConfig(t *testing.T) {
	h, commit := newHub(t)
	root, opts := hubProject(t, h, tinyConfig, "")
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, config string
		want         string // "" for no error
	}{
		{"matches", tinyConfig, ""},
		{"user folder without hf", "version: 1\nmodels:\n  own: models/own\n", ""},
		{"built-in", "version: 1\nmodels:\n  x: builtin:exemplar\n", ""},
		{"no entry", "version: 1\nmodels:\n  other: {hf: org/other}\n",
			"model other: kiln.yaml pulls it from hf:org/other, but kiln.lock has no entry for it; run kiln models pull other (or kiln build --pull) to download it and pin it in kiln.lock"},
		{"another revision", "version: 1\nmodels:\n  tiny: {hf: " + hubRepo + ", revision: v2}\n",
			"kiln.yaml:3:14: model tiny: kiln.yaml pulls it from hf:" + hubRepo + "@v2, but kiln.lock pins hf:" + hubRepo + " (commit " + commit[:12] + "); run kiln models pull tiny to pull what kiln.yaml names and pin it in kiln.lock"},
		{"folder moved", "version: 1\nmodels:\n  tiny: {hf: " + hubRepo + ", path: models/elsewhere}\n",
			"model tiny: " + filepath.Join(root, "models", "elsewhere") + " does not exist; run kiln models pull tiny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := hubOptions(t, h, root, tt.config, "").Config
			var names []string
			for n := range cfg.Models {
				names = append(names, n)
			}
			err := CheckLocks(context.Background(), root, cfg, names, "")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckLocks: %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("CheckLocks: %v\nwant: %s", err, tt.want)
			}
		})
	}
}

// TestPullAll: kiln models pull without a model fetches what is missing or
// does not match kiln.lock, skips the rest, and says which failed.
func TestPullAll(t *testing.T) {
	h, _ := newHub(t)
	s := newModelServer(t)
	root := t.TempDir()
	config := "version: 1\nmodels:\n  tiny: {hf: " + hubRepo + "}\n  x: builtin:exemplar\n  own: models/own\n  cat: models/cat\n  lost: models/lost\n"
	if err := os.MkdirAll(filepath.Join(root, "models", "own"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := hubOptions(t, h, root, config, t.TempDir())
	cat := s.catalog(t, false)
	cat.Models[0].Name = "cat"
	opts.Catalog = cat
	var out bytes.Buffer
	res, err := PullAll(context.Background(), &out, opts)
	if err == nil || !strings.Contains(err.Error(), "kiln.yaml:7:9: model lost: its folder models/lost does not exist and kiln.yaml gives no source for it") {
		t.Fatalf("PullAll: %v\n%s", err, out.String())
	}
	var pulled []string
	for _, r := range res {
		pulled = append(pulled, r.Name)
	}
	if fmt.Sprint(pulled) != "[cat tiny]" {
		t.Errorf("pulled %v", pulled)
	}
	sameTree(t, filepath.Join(root, "models", "tiny"))
	sameTree(t, filepath.Join(root, "models", "cat"))
	if readLockT(t, root).Models["tiny"] == nil || readLockT(t, root).Models["cat"] != nil {
		t.Errorf("lock %+v", readLockT(t, root).Models)
	}

	// Again, with lost gone from kiln.yaml: everything is up to date,
	// and the Hub is not asked anything.
	opts = hubOptions(t, h, root, strings.Replace(config, "  lost: models/lost\n", "", 1), opts.CacheDir)
	opts.Catalog = cat
	before := len(h.Requests(""))
	out.Reset()
	if _, err := PullAll(context.Background(), &out, opts); err != nil {
		t.Fatalf("second PullAll: %v\n%s", err, out.String())
	}
	if n := len(h.Requests("")) - before; n != 0 {
		t.Errorf("%d requests to the Hub", n)
	}
	if !strings.Contains(out.String(), "tiny is up to date") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestPullHFRefusesSymlinks: an hf: pull keeps the no-symlink rule of
// every pull: a linked models folder or a planted FILE.part is refused
// and what it points to is untouched.
func TestPullHFRefusesSymlinks(t *testing.T) {
	h, _ := newHub(t)
	tests := []struct {
		name  string
		plant func(t *testing.T, root, outside string)
		link  string // relative to root
	}{
		{"models folder", func(t *testing.T, root, outside string) {
			symlink(t, outside, filepath.Join(root, "models"))
		}, "models"},
		{"partial file", func(t *testing.T, root, outside string) {
			dir := filepath.Join(root, "models", "tiny"+StagingSuffix, "unet")
			os.MkdirAll(dir, 0o755)
			symlink(t, filepath.Join(outside, "victim"), filepath.Join(dir, "model.onnx_data.part"))
		}, "models/tiny" + StagingSuffix + "/unet/model.onnx_data.part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, outside := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			tt.plant(t, root, outside)
			before := treeState(t, outside)
			opts := hubOptions(t, h, root, tinyConfig, t.TempDir())
			_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
			if err == nil || !strings.Contains(err.Error(), filepath.Join(root, filepath.FromSlash(tt.link))) || !strings.Contains(err.Error(), "symlink") {
				t.Fatalf("error %v, want a refusal of the symlink %s", err, tt.link)
			}
			checkUnchanged(t, before, treeState(t, outside), nil)
			if exists(filepath.Join(root, LockName)) {
				t.Error("a refused pull wrote kiln.lock")
			}
		})
	}
}

func TestLockParse(t *testing.T) {
	commit := strings.Repeat("a", 40)
	sum := strings.Repeat("b", 64)
	entry := func(fields string) string {
		return `{"version": 1, "models": {"m": {` + fields + `}}}`
	}
	good := `"hf": "a/b", "revision": "main", "commit": "` + commit + `", "files": [{"path": "model_index.json", "size": 1, "sha256": "` + sum + `"}]`
	tests := []struct {
		name, data, want string
	}{
		{"good", entry(good), ""},
		{"empty", `{"version": 1, "models": {}}`, ""},
		{"not JSON", "{\n  \"version\": 1,\n  oops\n}", "kiln.lock: invalid kiln.lock: line 3:3: invalid character 'o'"},
		{"unknown field", entry(good + `, "sha": "x"`), `json: unknown field "sha"`},
		{"wrong type", "{\"version\": 1, \"models\": {\"m\": {\"hf\": 3}}}", `line 1:39: "models.hf" must be text, not a number`},
		{"no version", `{"models": {}}`, `kiln.lock has no "version"; add "version": 1`},
		{"newer version", `{"version": 2, "models": {}}`, "kiln.lock is version 2, this kiln reads version 1; update kiln"},
		{"bad commit", entry(strings.Replace(good, commit, "main", 1)), `model m: commit "main" is not a full commit id`},
		{"bad repository", entry(strings.Replace(good, `"a/b"`, `"a"`, 1)), "model m: \"hf:a\": the repository must be ORG/REPO"},
		{"no revision", entry(strings.Replace(good, `"revision": "main", `, "", 1)), `model m has no "revision"`},
		{"escaping path", entry(strings.Replace(good, "model_index.json", "../x", 1)), `file path "../x"`},
		{"bad sha256", entry(strings.Replace(good, sum, "abc", 1)), `sha256 "abc" is not 64 hex digits`},
		{"bad name", `{"version": 1, "models": {"-m": {` + good + `}}}`, `model name "-m" is not valid`},
		{"two values", `{"version": 1, "models": {}} {}`, "more than one JSON value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLock([]byte(tt.data), LockName)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				data, err := l.Encode()
				if err != nil {
					t.Fatal(err)
				}
				back, err := ParseLock(data, LockName)
				if err != nil || len(back.Models) != len(l.Models) {
					t.Errorf("round trip: %v\n%s", err, data)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), "kiln models pull") && !strings.Contains(err.Error(), "add \"version\"") && !strings.Contains(err.Error(), "update kiln") {
				t.Errorf("error %v says nothing of what to do", err)
			}
		})
	}
}

// TestBlobCacheCopies exercises the download cache's copies, used where
// the cache and the project are on different file systems: a copy out is
// checked against the hash and leaves no partial file, a copy in makes a
// read-only blob.
func TestBlobCacheCopies(t *testing.T) {
	cacheDir := t.TempDir()
	c := &blobCache{dir: filepath.Join(cacheDir, BlobsDir), hashes: models.OpenHashCache(cacheDir), log: slog.New(slog.DiscardHandler)}
	f := fileOf(t, modelManifest, "unet/model.onnx_data")
	src := filepath.Join(modelDir, "unet", "model.onnx_data")
	blob := c.path(f.SHA256)
	os.MkdirAll(filepath.Dir(blob), 0o755)
	if err := copyFile(src, blob); err != nil {
		t.Fatal(err)
	}
	staging := t.TempDir()
	os.MkdirAll(filepath.Join(staging, "unet"), 0o755)
	final := filepath.Join(staging, "unet", "model.onnx_data")
	if err := c.copyOut(context.Background(), blob, f, final, staging); err != nil {
		t.Fatal(err)
	}
	if sum, _, _ := hashFile(context.Background(), final); sum != f.SHA256 {
		t.Errorf("copy has sha256 %s", sum)
	}
	os.Remove(final)
	wrong := f
	wrong.SHA256 = strings.Repeat("0", 64)
	if err := c.copyOut(context.Background(), blob, wrong, final, staging); err == nil || exists(final) || exists(final+partSuffix) {
		t.Errorf("copy of a blob with another hash: %v; final %v, part %v", err, exists(final), exists(final+partSuffix))
	}

	other := t.TempDir()
	if err := copyFile(blob, final); err != nil {
		t.Fatal(err)
	}
	if err := c.store(final, filepath.Join(other, "blob")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(other, "blob")); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("stored blob: %v %v", fi, err)
	}
}
