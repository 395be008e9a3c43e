package hf

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/models/hf/hftest"
)

func TestResolve(t *testing.T) {
	h := newFakeHub(t)
	const pageSize = 4
	h.SetPageSize(pageSize) // the listing comes in several pages
	commit := h.AddRepo("org/turbo", onnxRepo())
	h.SetPrivate("org/turbo", true) // only goodToken sees it: HF_TOKEN must be sent
	h.Tag("org/turbo", "v1", commit)
	files := h.Files("org/turbo", commit)
	c, _ := newTestClient(t, h, map[string]string{"HF_TOKEN": goodToken}, Options{})

	ref, err := ParseRef("hf:org/turbo@v1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if s.Commit != commit || s.Ref != ref {
		t.Fatalf("snapshot %+v, want commit %s of %+v", s, commit, ref)
	}
	var got []string
	for _, f := range s.Files {
		got = append(got, f.Path)
		ff := files[f.Path]
		if f.Size != int64(len(ff.Data)) {
			t.Errorf("%s: size %d, want %d", f.Path, f.Size, len(ff.Data))
		}
		switch {
		case ff.LFS && (f.SHA256 != ff.SHA256() || f.GitOID != ""):
			t.Errorf("%s (LFS): sha256 %q git %q, want the LFS sha256 %s", f.Path, f.SHA256, f.GitOID, ff.SHA256())
		case !ff.LFS && (f.SHA256 != "" || f.GitOID != ff.GitOID()):
			t.Errorf("%s (git): sha256 %q git %q, want no sha256 and git %s", f.Path, f.SHA256, f.GitOID, ff.GitOID())
		}
	}
	if strings.Join(got, "\n") != strings.Join(hftest.ONNXFiles(), "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(hftest.ONNXFiles(), "\n"))
	}

	var pages, heads int
	for _, r := range h.Requests("hub") {
		if r.Auth != "Bearer "+goodToken {
			t.Errorf("%s %s without the token from HF_TOKEN (Authorization %q)", r.Method, r.Path, r.Auth)
		}
		if !strings.HasPrefix(r.UA, "kiln/test; go/") {
			t.Errorf("User-Agent %q", r.UA)
		}
		switch {
		case strings.Contains(r.Path, "/tree/"):
			pages++
			// The listing is pinned to the commit, not the branch.
			if !strings.Contains(r.Path, "/tree/"+commit) {
				t.Errorf("tree listing at %s, want commit %s", r.Path, commit)
			}
		case r.Method == http.MethodHead:
			heads++
			if r.Path != "/org/turbo/resolve/"+commit+"/model_index.json" {
				t.Errorf("access check HEAD %s", r.Path)
			}
		}
	}
	if entries := len(onnxRepo()) + 12; pages < entries/pageSize {
		t.Errorf("%d tree pages for about %d entries of %d per page", pages, entries, pageSize)
	}
	if heads != 1 {
		t.Errorf("%d HEAD requests, want 1 (the access check)", heads)
	}
}

func TestResolveSubfolder(t *testing.T) {
	h := newFakeHub(t)
	files := map[string][]byte{
		"model_index.json":                         []byte(`{"_class_name": "StableDiffusionPipeline"}`),
		"unet/diffusion_pytorch_model.safetensors": blob("torch", 100),
	}
	for p, d := range onnxRepo() {
		files["onnx/"+p] = d
	}
	commit := h.AddRepo("org/both", files)
	c, _ := newTestClient(t, h, nil, Options{})

	s, err := c.Resolve(context.Background(), Ref{Repo: "org/both", Subfolder: "onnx"})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Files) != len(hftest.ONNXFiles()) || s.Files[0].Path != "model_index.json" || s.Ref.Revision != "main" {
		t.Fatalf("snapshot %+v", s)
	}
	// The subfolder is escaped whole in the listing's URL, as
	// huggingface_hub does, and prefixed in the resolve URL.
	var sawTree, sawHead bool
	for _, r := range h.Requests("hub") {
		sawTree = sawTree || r.Path == "/api/models/org/both/tree/"+commit+"/onnx"
		sawHead = sawHead || r.Method == http.MethodHead && r.Path == "/org/both/resolve/"+commit+"/onnx/model_index.json"
	}
	if !sawTree || !sawHead {
		t.Errorf("requests %+v", h.Requests("hub"))
	}

	// Without the subfolder, the repository's top is a PyTorch pipeline:
	// the error points to the export below.
	_, err = c.Resolve(context.Background(), Ref{Repo: "org/both"})
	if !errors.Is(err, ErrNoONNX) || !strings.Contains(err.Error(), "pull hf:org/both/onnx") {
		t.Errorf("Resolve of the top: %v, want ErrNoONNX pointing to hf:org/both/onnx", err)
	}
}

func TestResolveErrors(t *testing.T) {
	h := newFakeHub(t)
	h.AddRepo("org/turbo", onnxRepo())
	h.AddRepo("org/gated", onnxRepo())
	h.SetGated("org/gated", true)
	h.AddRepo("org/private", onnxRepo())
	h.SetPrivate("org/private", true)
	h.AddRepo("org/torch", map[string][]byte{
		"model_index.json":                         []byte(`{}`),
		"unet/config.json":                         []byte(`{}`),
		"unet/diffusion_pytorch_model.safetensors": blob("w", 100),
		"text_encoder/model.safetensors":           blob("t", 100),
		"vae/diffusion_pytorch_model.safetensors":  blob("v", 100),
		"v1-5-pruned-emaonly.ckpt":                 blob("c", 100),
		"README.md":                                []byte("hi"),
	})
	h.AddRepo("org/graphs", map[string][]byte{"encoder/model.onnx": blob("e", 10), "encoder/config.json": []byte(`{}`)})

	gatedPage := h.URL() + "/org/gated"
	tests := []struct {
		name  string
		ref   string
		token string
		is    error
		want  []string // substrings of the message
	}{
		{name: "missing repository", ref: "hf:org/nope", token: goodToken, is: ErrRepoNotFound,
			want: []string{"repository org/nope was not found", "check its spelling", "HF_TOKEN"}},
		{name: "private without token", ref: "hf:org/private", is: ErrRepoNotFound,
			want: []string{"HTTP 401", "if it is private, set HF_TOKEN", "HF_TOKEN is not set"}},
		{name: "private with a token without access", ref: "hf:org/private", token: otherToken, is: ErrRepoNotFound,
			want: []string{"the token from HF_TOKEN was sent, but has no access"}},
		{name: "missing revision", ref: "hf:org/turbo@v9", is: ErrRevisionNotFound,
			want: []string{`org/turbo has no revision "v9"`, "name a branch, tag or commit"}},
		{name: "missing subfolder", ref: "hf:org/turbo/fp16", is: ErrEntryNotFound,
			want: []string{`has no folder "fp16"`, "check the subfolder"}},
		{name: "gated without token", ref: "hf:org/gated", is: ErrGated,
			want: []string{"HTTP 401", "accept the licence on " + gatedPage + " and set HF_TOKEN to a token with access", "HF_TOKEN is not set", "the Hub says: Access to model org/gated is restricted"}},
		{name: "gated, licence not accepted", ref: "hf:org/gated", token: otherToken, is: ErrGated,
			want: []string{"HTTP 403", "accept the licence on " + gatedPage + " and set HF_TOKEN to a token with access", "was sent, but has no access"}},
		{name: "invalid token", ref: "hf:org/turbo", token: invalidToken, is: ErrUnauthorized,
			want: []string{"rejected the token from HF_TOKEN as invalid or expired", "/settings/tokens"}},
		{name: "PyTorch only", ref: "hf:org/torch", is: ErrNoONNX,
			want: []string{"has no ONNX graph, only weights kiln cannot run", "text_encoder/model.safetensors", "and 1 more",
				"optimum-cli export onnx --model org/torch models/torch-onnx/", "kiln.yaml's models:"}},
		{name: "graphs without model_index.json", ref: "hf:org/graphs", is: ErrNoONNX,
			want: []string{"no model_index.json", "optimum-cli export onnx --model org/graphs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.token != "" {
				env["HF_TOKEN"] = tt.token
			}
			c, sl := newTestClient(t, h, env, Options{})
			ref, err := ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			s, err := c.Resolve(context.Background(), ref)
			if err == nil {
				t.Fatalf("Resolve(%s) = %+v, want an error", tt.ref, s)
			}
			if !errors.Is(err, tt.is) {
				t.Errorf("error %v, want errors.Is %v", err, tt.is)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), goodToken) || strings.Contains(err.Error(), otherToken) {
				t.Errorf("error shows the token: %v", err)
			}
			if w := sl.got(); len(w) != 0 {
				t.Errorf("retried a final error (waits %v)", w)
			}
		})
	}
}

func TestResolveRetriesRateLimit(t *testing.T) {
	h := newFakeHub(t)
	h.AddRepo("org/turbo", onnxRepo())
	h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n <= 2 {
			w.Header().Set("Retry-After", "7")
			hubError(w, http.StatusTooManyRequests, "", "rate limited")
			return true
		}
		return false
	})
	c, sl := newTestClient(t, h, nil, Options{})
	if _, err := c.Resolve(context.Background(), Ref{Repo: "org/turbo"}); err != nil {
		t.Fatal(err)
	}
	if w := sl.got(); len(w) != 2 || w[0].Seconds() != 7 || w[1].Seconds() != 7 {
		t.Errorf("waits %v, want the Retry-After of 7s twice", w)
	}
}

func TestResolveGivesUpOnRateLimit(t *testing.T) {
	h := newFakeHub(t)
	h.AddRepo("org/turbo", onnxRepo())
	h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		hubError(w, http.StatusTooManyRequests, "", "rate limited")
		return true
	})
	c, sl := newTestClient(t, h, nil, Options{Retries: 3})
	_, err := c.Resolve(context.Background(), Ref{Repo: "org/turbo"})
	if err == nil || !strings.Contains(err.Error(), "HTTP 429") || !strings.Contains(err.Error(), "gave up after 4 attempts") || !strings.Contains(err.Error(), "HF_TOKEN") {
		t.Fatalf("error %v", err)
	}
	// No Retry-After: huggingface_hub's doubling waits.
	if w := sl.got(); len(w) != 3 || w[0].Seconds() != 1 || w[1].Seconds() != 2 || w[2].Seconds() != 4 {
		t.Errorf("waits %v, want 1s 2s 4s", w)
	}

	// A wait longer than MaxRetryAfter fails at once, saying so.
	h.SetHubHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		w.Header().Set("Retry-After", "3600")
		hubError(w, http.StatusTooManyRequests, "", "rate limited")
		return true
	})
	c, sl = newTestClient(t, h, nil, Options{})
	_, err = c.Resolve(context.Background(), Ref{Repo: "org/turbo"})
	if err == nil || !strings.Contains(err.Error(), "asks to wait 1h0m0s") || len(sl.got()) != 0 {
		t.Fatalf("error %v, waits %v", err, sl.got())
	}
}
