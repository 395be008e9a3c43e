package hf

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens the fake Hub knows.
const (
	goodToken    = "hf_good"    // has access to every private and gated repository
	otherToken   = "hf_other"   // valid, but has accepted no licence
	invalidToken = "hf_invalid" // rejected outright
)

// fakeFile is a file of a fake repository.
type fakeFile struct {
	data []byte
	lfs  bool
}

func (f fakeFile) sha256() string { s := sha256.Sum256(f.data); return hex.EncodeToString(s[:]) }

func (f fakeFile) gitOID() string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(f.data))
	h.Write(f.data)
	return hex.EncodeToString(h.Sum(nil))
}

// fakeRepo is a repository of the fake Hub.
type fakeRepo struct {
	refs    map[string]string              // branch or tag → commit
	commits map[string]map[string]fakeFile // commit → path → file
	gated   bool
	private bool
}

// request is what a fake server saw.
type request struct {
	server string // "hub" or "cdn"
	method string
	path   string // escaped
	query  string
	auth   string
	rng    string
	ua     string
}

// fakeHub is a loopback Hugging Face Hub: the API, the resolve endpoint
// and, on a second server, the CDN LFS files are redirected to.
type fakeHub struct {
	t        *testing.T
	hub, cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	renamed  map[string]string // old repository id → new one
	blobs    map[string][]byte // sha256 → data, what the CDN serves
	pageSize int
	reqs     []request
	cdnCount map[string]int // sha256 → GETs so far

	// hubHook and cdnHook, when set, may answer a request themselves
	// (returning true); n counts that kind of request from 1.
	hubHook func(w http.ResponseWriter, r *http.Request, n int) bool
	cdnHook func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool
	hubN    int
}

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{t: t, repos: map[string]*fakeRepo{}, renamed: map[string]string{}, blobs: map[string][]byte{}, cdnCount: map[string]int{}, pageSize: 1000}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(h.hub.Close)
	t.Cleanup(h.cdn.Close)
	return h
}

// commitOf makes a deterministic commit id.
func commitOf(s string) string { c := sha1.Sum([]byte(s)); return hex.EncodeToString(c[:]) }

// addRepo adds repo with its files at one commit that "main" points to,
// and returns the commit. Files whose path ends in a weight or graph
// extension are LFS files.
func (h *fakeHub) addRepo(id string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	commit := commitOf(id + fmt.Sprint(len(h.repos)))
	fs := map[string]fakeFile{}
	for p, d := range files {
		f := fakeFile{data: d, lfs: isGraph(p) || isExternalData(p) || isTorchWeight(p) || len(d) > 64<<10}
		fs[p] = f
		if f.lfs {
			h.blobs[f.sha256()] = d
		}
	}
	h.repos[id] = &fakeRepo{refs: map[string]string{"main": commit}, commits: map[string]map[string]fakeFile{commit: fs}}
	return commit
}

func (h *fakeHub) repo(id string) *fakeRepo {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.repos[id]
}

func (h *fakeHub) requests(server string) []request {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []request
	for _, r := range h.reqs {
		if server == "" || r.server == server {
			out = append(out, r)
		}
	}
	return out
}

func (h *fakeHub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, request{server: server, method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, auth: r.Header.Get("Authorization"), rng: r.Header.Get("Range"), ua: r.Header.Get("User-Agent")})
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	if code != "" {
		w.Header().Set("X-Error-Code", code)
	}
	w.Header().Set("X-Error-Message", msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// segments splits an escaped path into unescaped elements.
func segments(p string) []string {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		if u, err := url.PathUnescape(s); err == nil {
			parts[i] = u
		}
	}
	return parts
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	h.mu.Lock()
	h.hubN++
	n, hook := h.hubN, h.hubHook
	h.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}
	if r.Header.Get("Authorization") == "Bearer "+invalidToken {
		hubError(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
		return
	}
	seg := segments(r.URL.EscapedPath())
	switch {
	case len(seg) == 6 && seg[0] == "api" && seg[1] == "models" && seg[4] == "revision" && r.Method == http.MethodGet:
		h.serveInfo(w, r, seg[2]+"/"+seg[3], seg[5])
	case len(seg) >= 6 && seg[0] == "api" && seg[1] == "models" && seg[4] == "tree" && r.Method == http.MethodGet:
		h.serveTree(w, r, seg[2]+"/"+seg[3], seg[5], strings.Join(seg[6:], "/"))
	case len(seg) >= 5 && seg[2] == "resolve":
		h.serveResolve(w, r, seg[0]+"/"+seg[1], seg[3], strings.Join(seg[4:], "/"))
	default:
		http.NotFound(w, r)
	}
}

// lookup applies the Hub's access rules for the API (gated repositories'
// listings are public) and resolves the revision.
func (h *fakeHub) lookup(w http.ResponseWriter, r *http.Request, id, rev string, download bool) (*fakeRepo, string, bool) {
	repo := h.repo(id)
	auth := r.Header.Get("Authorization")
	if repo == nil || repo.private && auth != "Bearer "+goodToken {
		status := http.StatusNotFound
		if auth == "" {
			status = http.StatusUnauthorized
		}
		hubError(w, status, "RepoNotFound", "Repository not found")
		return nil, "", false
	}
	if download && repo.gated && auth != "Bearer "+goodToken {
		if auth == "" {
			hubError(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+id+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		} else {
			hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+id+" is restricted and you are not in the authorized list. Visit "+h.hub.URL+"/"+id+" to ask for access.")
		}
		return nil, "", false
	}
	commit, ok := repo.refs[rev]
	if !ok {
		if _, isCommit := repo.commits[rev]; isCommit {
			commit, ok = rev, true
		}
	}
	if !ok {
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil, "", false
	}
	return repo, commit, true
}

func (h *fakeHub) serveInfo(w http.ResponseWriter, r *http.Request, id, rev string) {
	repo, commit, ok := h.lookup(w, r, id, rev, false)
	if !ok {
		return
	}
	var sib []map[string]string
	for p := range repo.commits[commit] {
		sib = append(sib, map[string]string{"rfilename": p})
	}
	json.NewEncoder(w).Encode(map[string]any{"id": id, "sha": commit, "siblings": sib, "gated": repo.gated, "private": repo.private})
}

func (h *fakeHub) serveTree(w http.ResponseWriter, r *http.Request, id, rev, dir string) {
	repo, commit, ok := h.lookup(w, r, id, rev, false)
	if !ok {
		return
	}
	if r.URL.Query().Get("recursive") != "true" {
		h.t.Errorf("tree listing without recursive=true: %s", r.URL)
	}
	files := repo.commits[commit]
	var paths []string
	dirs := map[string]bool{}
	for p := range files {
		if dir != "" && !strings.HasPrefix(p, dir+"/") {
			continue
		}
		paths = append(paths, p)
		for d := p; strings.Contains(d, "/"); {
			d = d[:strings.LastIndexByte(d, '/')]
			if dir == "" || strings.HasPrefix(d, dir+"/") {
				dirs[d] = true
			}
		}
	}
	if len(paths) == 0 {
		hubError(w, http.StatusNotFound, "EntryNotFound", dir+" does not exist on \""+rev+"\"")
		return
	}
	var entries []map[string]any
	for d := range dirs {
		entries = append(entries, map[string]any{"type": "directory", "path": d, "oid": commitOf(d), "size": 0})
	}
	for _, p := range paths {
		f := files[p]
		e := map[string]any{"type": "file", "path": p, "size": len(f.data), "oid": f.gitOID()}
		if f.lfs {
			e["lfs"] = map[string]any{"oid": f.sha256(), "size": len(f.data), "pointerSize": 134}
			e["oid"] = commitOf("pointer " + p)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i]["path"].(string) < entries[j]["path"].(string) })
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	end := min(start+h.pageSize, len(entries))
	if end < len(entries) {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", strconv.Itoa(end))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, h.hub.URL, next.RequestURI()))
	}
	json.NewEncoder(w).Encode(entries[start:end])
}

func (h *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request, id, rev, p string) {
	h.mu.Lock()
	to, renamed := h.renamed[id]
	h.mu.Unlock()
	if renamed {
		// A renamed repository: a relative redirect on the same host.
		w.Header().Set("Location", "/"+to+"/resolve/"+url.PathEscape(rev)+"/"+escapePath(p))
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	repo, commit, ok := h.lookup(w, r, id, rev, true)
	if !ok {
		return
	}
	f, ok := repo.commits[commit][p]
	if !ok {
		w.Header().Set("X-Repo-Commit", commit)
		hubError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	w.Header().Set("X-Repo-Commit", commit)
	if f.lfs {
		w.Header().Set("X-Linked-Etag", `"`+f.sha256()+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
		w.Header().Set("ETag", `"`+commitOf("pointer "+p)+`"`)
		w.Header().Set("Location", h.cdn.URL+"/repos/ab/cd/"+f.sha256()+"?X-Amz-Signature=abc&response-content-disposition=attachment")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.gitOID()+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	sum := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	h.mu.Lock()
	data, ok := h.blobs[sum]
	h.cdnCount[sum]++
	n, hook := h.cdnCount[sum], h.cdnHook
	h.mu.Unlock()
	if !ok {
		http.Error(w, "no such blob", http.StatusForbidden)
		return
	}
	if hook != nil && hook(w, r, data, n) {
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// dropAfter sends the headers of the whole answer (honouring a range),
// then k bytes, then closes the connection.
func dropAfter(w http.ResponseWriter, r *http.Request, data []byte, k int) {
	start := 0
	if v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
		start, _ = strconv.Atoi(strings.TrimSuffix(v, "-"))
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
	}
	w.Write(data[start:min(start+k, len(data))])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// sleeper records the waits a Client asks for, without waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// memFile is an in-memory Target.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.b...)
}

// blob makes n deterministic pseudo-random bytes.
func blob(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256([]byte(seed + strconv.Itoa(i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// onnxRepo is an SD-Turbo-like optimum export with the files kiln skips.
func onnxRepo() map[string][]byte {
	return map[string][]byte{
		".gitattributes":                             []byte("*.onnx filter=lfs\n"),
		"README.md":                                  []byte("# model\n"),
		"model_index.json":                           []byte(`{"_class_name": "ORTStableDiffusionPipeline"}`),
		"scheduler/scheduler_config.json":            []byte(`{"_class_name": "EulerDiscreteScheduler"}`),
		"text_encoder/config.json":                   []byte(`{"hidden_size": 1024}`),
		"text_encoder/model.onnx":                    blob("te", 3000),
		"tokenizer/merges.txt":                       []byte("#version: 0.2\na b\n"),
		"tokenizer/special_tokens_map.json":          []byte(`{}`),
		"tokenizer/tokenizer_config.json":            []byte(`{}`),
		"tokenizer/vocab.json":                       []byte(`{"a": 0}`),
		"unet/config.json":                           []byte(`{"sample_size": 64}`),
		"unet/model.onnx":                            blob("unet", 1000),
		"unet/model.onnx_data":                       blob("unet-data", 600<<10),
		"unet/onnx__MatMul_1234":                     blob("split", 100),
		"unet/diffusion_pytorch_model.bin":           blob("torch", 50),
		"vae_decoder/config.json":                    []byte(`{"scaling_factor": 0.18215}`),
		"vae_decoder/model.onnx":                     blob("vaed", 2000),
		"vae_encoder/model.onnx":                     blob("vaee", 2000),
		"vae_encoder/weights.pb":                     blob("vaee-w", 500),
		"safety_checker/model.onnx":                  blob("safety", 4000),
		"feature_extractor/preprocessor_config.json": []byte(`{}`),
		"v1-inference.yaml":                          []byte("model: {}\n"),
		"other-export/unet/model.onnx":               blob("nested", 100),
	}
}

// wantONNXFiles are the files Resolve keeps of onnxRepo.
var wantONNXFiles = []string{
	"model_index.json",
	"scheduler/scheduler_config.json",
	"text_encoder/config.json",
	"text_encoder/model.onnx",
	"tokenizer/merges.txt",
	"tokenizer/special_tokens_map.json",
	"tokenizer/tokenizer_config.json",
	"tokenizer/vocab.json",
	"unet/config.json",
	"unet/model.onnx",
	"unet/model.onnx_data",
	"unet/onnx__MatMul_1234",
	"vae_decoder/config.json",
	"vae_decoder/model.onnx",
	"vae_encoder/model.onnx",
	"vae_encoder/weights.pb",
}

// newTestClient makes a Client of the fake Hub, configured through the
// environment as the CLI would be; env adds to or overrides HF_ENDPOINT.
func newTestClient(t *testing.T, h *fakeHub, env map[string]string, opts Options) (*Client, *sleeper) {
	t.Helper()
	e := map[string]string{"HF_ENDPOINT": h.hub.URL}
	for k, v := range env {
		e[k] = v
	}
	sl := &sleeper{}
	opts.LookupEnv = func(k string) (string, bool) { v, ok := e[k]; return v, ok }
	opts.Sleep = sl.sleep
	if opts.UserAgent == "" {
		opts.UserAgent = "kiln/test"
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}
