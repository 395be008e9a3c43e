package hf

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeep(t *testing.T) {
	graphDirs := map[string]bool{"unet": true, "text_encoder": true}
	tests := []struct {
		path string
		want bool
	}{
		{"model_index.json", true},
		{"unet/model.onnx", true},
		{"unet/model.onnx_data", true},
		{"unet/model.onnx.data", true},
		{"vae_encoder/weights.pb", true},
		{"unet/onnx__MatMul_1234", true}, // split external data beside a graph
		{"unet/config.json", true},
		{"vae_decoder/config.json", true},
		{"tokenizer/vocab.json", true},
		{"tokenizer/merges.txt", true},
		{"tokenizer_2/tokenizer.json", true},
		{"tokenizer_2/tokenizer_config.json", true},
		{"tokenizer_2/special_tokens_map.json", true},
		{"tokenizer_3/spiece.model", true},
		{"tokenizer/added_tokens.json", true},
		{"scheduler/scheduler_config.json", true},

		{"README.md", false},
		{".gitattributes", false},
		{"config.json", false},
		{"v1-5-pruned.ckpt", false},
		{"unet/diffusion_pytorch_model.safetensors", false},
		{"unet/diffusion_pytorch_model.bin", false},
		{"unet/diffusion_pytorch_model.fp16.safetensors", false},
		{"text_encoder/pytorch_model.bin", false},
		{"text_encoder/flax_model.msgpack", false},
		{"text_encoder/tf_model.h5", false},
		{"unet/README.md", false},
		{"vae/diffusion_pytorch_model.safetensors", false},
		{"safety_checker/model.onnx", false},
		{"feature_extractor/preprocessor_config.json", false},
		{"images/sample.png", false},
		{"onnx/unet/model.onnx", false},  // another export, one level deeper
		{"unet/notes.txt", true},         // beside a graph, not a weight or doc
		{"vae_decoder/notes.txt", false}, // no graph in the listing's graphDirs
	}
	for _, tt := range tests {
		if got := keep(tt.path, graphDirs); got != tt.want {
			t.Errorf("keep(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestNewEnvironment(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	homeTok := write("home/.cache/huggingface/token", "hf_from_home\n")
	write("hfhome/token", "  hf_from_hf_home\r\n")
	write("xdg/huggingface/token", "hf_from_xdg")
	custom := write("custom/tok", "hf_from_path")
	write("empty/token", "\n")

	tests := []struct {
		name         string
		env          map[string]string
		opts         Options
		wantEndpoint string
		wantToken    string
		wantFrom     string // substring of tokenFrom
		wantErr      string
	}{
		{name: "nothing", wantEndpoint: DefaultEndpoint, wantFrom: "HF_TOKEN is not set"},
		{name: "HF_ENDPOINT", env: map[string]string{"HF_ENDPOINT": "http://127.0.0.1:9/"}, wantEndpoint: "http://127.0.0.1:9", wantFrom: "not set"},
		{name: "HF_ENDPOINT with a path", env: map[string]string{"HF_ENDPOINT": "https://mirror.example/hf"}, wantEndpoint: "https://mirror.example/hf"},
		{name: "Options.Endpoint wins", env: map[string]string{"HF_ENDPOINT": "https://a.example"}, opts: Options{Endpoint: "https://b.example"}, wantEndpoint: "https://b.example"},
		{name: "bad HF_ENDPOINT", env: map[string]string{"HF_ENDPOINT": "huggingface.co"}, wantErr: `HF_ENDPOINT="huggingface.co" is not a Hub URL`},
		{name: "HF_TOKEN", env: map[string]string{"HF_TOKEN": " hf_env\n", "HOME": filepath.Join(dir, "home")}, wantEndpoint: DefaultEndpoint, wantToken: "hf_env", wantFrom: "HF_TOKEN"},
		{name: "legacy HUGGING_FACE_HUB_TOKEN", env: map[string]string{"HUGGING_FACE_HUB_TOKEN": "hf_old"}, wantToken: "hf_old", wantFrom: "HUGGING_FACE_HUB_TOKEN"},
		{name: "HF_TOKEN before the legacy name", env: map[string]string{"HF_TOKEN": "hf_new", "HUGGING_FACE_HUB_TOKEN": "hf_old"}, wantToken: "hf_new"},
		{name: "token file under HOME", env: map[string]string{"HOME": filepath.Join(dir, "home")}, wantToken: "hf_from_home", wantFrom: homeTok},
		{name: "token file under HF_HOME", env: map[string]string{"HF_HOME": filepath.Join(dir, "hfhome"), "HOME": filepath.Join(dir, "home")}, wantToken: "hf_from_hf_home"},
		{name: "token file under XDG_CACHE_HOME", env: map[string]string{"XDG_CACHE_HOME": filepath.Join(dir, "xdg"), "HOME": filepath.Join(dir, "home")}, wantToken: "hf_from_xdg"},
		{name: "HF_TOKEN_PATH", env: map[string]string{"HF_TOKEN_PATH": custom, "HOME": filepath.Join(dir, "home")}, wantToken: "hf_from_path", wantFrom: custom},
		{name: "HF_HOME with ~", env: map[string]string{"HF_HOME": "~/.cache/huggingface", "HOME": filepath.Join(dir, "home")}, wantToken: "hf_from_home"},
		{name: "empty token file", env: map[string]string{"HF_HOME": filepath.Join(dir, "empty")}, wantFrom: "is empty"},
		{name: "missing token file", env: map[string]string{"HF_HOME": filepath.Join(dir, "none")}, wantFrom: "there is no token file"},
		{name: "HF_HUB_DISABLE_IMPLICIT_TOKEN", env: map[string]string{"HF_TOKEN": "hf_env", "HF_HUB_DISABLE_IMPLICIT_TOKEN": "yes", "HOME": filepath.Join(dir, "home")}, wantFrom: "HF_HUB_DISABLE_IMPLICIT_TOKEN"},
		{name: "explicit token despite HF_HUB_DISABLE_IMPLICIT_TOKEN", env: map[string]string{"HF_HUB_DISABLE_IMPLICIT_TOKEN": "1"}, opts: Options{Token: "hf_given"}, wantToken: "hf_given"},
		{name: "HF_HUB_OFFLINE", env: map[string]string{"HF_HUB_OFFLINE": "1"}, wantErr: "HF_HUB_OFFLINE is set"},
		{name: "HF_HUB_OFFLINE false", env: map[string]string{"HF_HUB_OFFLINE": "0"}, wantEndpoint: DefaultEndpoint},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.LookupEnv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			c, err := New(opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantEndpoint != "" && c.Endpoint() != tt.wantEndpoint {
				t.Errorf("endpoint %q, want %q", c.Endpoint(), tt.wantEndpoint)
			}
			if c.token != tt.wantToken {
				t.Errorf("token %q, want %q", c.token, tt.wantToken)
			}
			if !strings.Contains(c.tokenFrom, tt.wantFrom) {
				t.Errorf("token source %q, want it to mention %q", c.tokenFrom, tt.wantFrom)
			}
			if c.token != "" && strings.Contains(c.tokenFrom, c.token) {
				t.Errorf("token source %q shows the token", c.tokenFrom)
			}
		})
	}
}

func TestNewLeavesHTTPClientAlone(t *testing.T) {
	hc := &http.Client{Timeout: time.Minute}
	if _, err := New(Options{HTTPClient: hc}); err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Error("New changed the caller's http.Client")
	}
}

func TestWaitFor(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := New(Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		code   int
		header http.Header
		want   time.Duration
	}{
		{"seconds", 429, http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"HTTP date", 503, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{"date in the past", 503, http.Header{"Retry-After": {now.Add(-time.Hour).Format(http.TimeFormat)}}, 0},
		{"garbage", 429, http.Header{"Retry-After": {"soon"}}, -1},
		{"none", 503, http.Header{}, -1},
		{"RateLimit spent", 429, http.Header{"Ratelimit": {`"api";r=0;t=55`}, "Retry-After": {"3"}}, 55 * time.Second},
		{"RateLimit left", 429, http.Header{"Ratelimit": {`"api";r=4;t=55`}, "Retry-After": {"3"}}, 3 * time.Second},
	}
	for _, tt := range tests {
		if got := c.waitFor(tt.header, tt.code); got != tt.want {
			t.Errorf("%s: waitFor = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNextLink(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   string
	}{
		{"none", nil, ""},
		{"next", []string{`<https://hub.example/api/models/a/b/tree/c?cursor=x>; rel="next"`}, "https://hub.example/api/models/a/b/tree/c?cursor=x"},
		{"prev and next", []string{`<https://h/p1>; rel="prev", <https://h/p3>; rel="next"`}, "https://h/p3"},
		{"two headers", []string{`<https://h/first>; rel="first"`, `<https://h/n>; rel=next`}, "https://h/n"},
		{"only prev", []string{`<https://h/p1>; rel="prev"`}, ""},
		{"relative", []string{`</api/next>; rel="next"`}, "/api/next"},
	}
	for _, tt := range tests {
		h := http.Header{}
		for _, v := range tt.header {
			h.Add("Link", v)
		}
		if got := nextLink(h); got != tt.want {
			t.Errorf("%s: nextLink = %q, want %q", tt.name, got, tt.want)
		}
	}
}
