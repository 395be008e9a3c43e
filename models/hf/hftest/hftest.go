// Package hftest is a loopback Hugging Face Hub for tests: the API (model
// info by revision, the recursive tree listing with its pagination), the
// resolve endpoint with its X-Repo-Commit, X-Linked-Etag and X-Linked-Size
// headers, the Hub's access rules for private and gated repositories and
// its error codes, and a second server standing for the CDN that LFS files
// are redirected to. It speaks the protocol models/hf documents, so tests
// of models/hf, models/store and the kiln command run the client code
// users run against it.
//
// It is a real package only so that tests of several packages can share
// it; nothing outside tests imports it. It does not import models/hf, so
// that package's own tests can use it.
package hftest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tokens the fake Hub knows.
const (
	// GoodToken has access to every private and gated repository.
	GoodToken = "hf_good"
	// OtherToken is valid but has accepted no licence and sees no
	// private repository.
	OtherToken = "hf_other"
	// InvalidToken is rejected outright.
	InvalidToken = "hf_invalid"
)

// File is a file of a fake repository.
type File struct {
	Data []byte
	// LFS reports a file stored with Git LFS: listed with its SHA-256
	// and redirected to the CDN.
	LFS bool
}

// SHA256 is the file's SHA-256 in hex.
func (f File) SHA256() string { s := sha256.Sum256(f.Data); return hex.EncodeToString(s[:]) }

// GitOID is the file's git blob id in hex.
func (f File) GitOID() string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(f.Data))
	h.Write(f.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// repo is a repository of the fake Hub.
type repo struct {
	refs    map[string]string           // branch or tag → commit
	commits map[string]map[string]*File // commit → path → file
	gated   bool
	private bool
}

// Request is what one of the fake servers saw.
type Request struct {
	Server string // "hub" or "cdn"
	Method string
	Path   string // escaped
	Query  string
	Auth   string // the Authorization header
	Range  string
	UA     string // the User-Agent header
}

// Hub is a loopback Hugging Face Hub with its CDN. Its methods are safe
// for concurrent use.
type Hub struct {
	t        testing.TB
	hub, cdn *httptest.Server

	mu       sync.Mutex
	repos    map[string]*repo
	renamed  map[string]string // old repository id → new one
	blobs    map[string][]byte // sha256 → data, what the CDN serves
	pageSize int
	reqs     []Request
	cdnCount map[string]int // sha256 → GETs so far
	hubN     int
	hubHook  func(w http.ResponseWriter, r *http.Request, n int) bool
	cdnHook  func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool
}

// New starts a Hub and its CDN on loopback; both stop when the test ends.
func New(t testing.TB) *Hub {
	h := &Hub{t: t, repos: map[string]*repo{}, renamed: map[string]string{}, blobs: map[string][]byte{}, cdnCount: map[string]int{}, pageSize: 1000}
	h.hub = httptest.NewServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewServer(http.HandlerFunc(h.serveCDN))
	t.Cleanup(h.Close)
	return h
}

// URL is the Hub's endpoint, what HF_ENDPOINT names.
func (h *Hub) URL() string { return h.hub.URL }

// CDNURL is the base URL of the CDN LFS files are redirected to.
func (h *Hub) CDNURL() string { return h.cdn.URL }

// Close stops both servers, so a test can show that nothing contacts the
// network any more. It may be called more than once.
func (h *Hub) Close() {
	h.hub.Close()
	h.cdn.Close()
}

// CommitOf makes a deterministic commit id of s.
func CommitOf(s string) string { c := sha1.Sum([]byte(s)); return hex.EncodeToString(c[:]) }

// IsLFS reports whether the fake Hub stores a file with Git LFS: graphs,
// their external data, other frameworks' weights, and anything over
// 64 KiB, as the Hub's .gitattributes usually arrange.
func IsLFS(path string, data []byte) bool {
	l := strings.ToLower(path)
	for _, x := range []string{".onnx", ".onnx_data", ".onnx.data", "/weights.pb", ".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5"} {
		if strings.HasSuffix(l, x) || l == strings.TrimPrefix(x, "/") {
			return true
		}
	}
	return len(data) > 64<<10
}

// AddRepo adds the repository id with files at one commit that "main"
// points to, and returns the commit.
func (h *Hub) AddRepo(id string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	commit := CommitOf(id + fmt.Sprint(len(h.repos)))
	h.repos[id] = &repo{refs: map[string]string{}, commits: map[string]map[string]*File{}}
	h.addCommitLocked(id, "main", commit, files)
	return commit
}

// Push adds a commit with files to the existing repository id and moves
// branch to it, as a new upload does; it returns the commit. The earlier
// commits stay available.
func (h *Hub) Push(id, branch string, files map[string][]byte) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[id]
	if r == nil {
		h.t.Fatalf("hftest: Push to unknown repository %s", id)
	}
	commit := CommitOf(fmt.Sprintf("%s %s %d", id, branch, len(r.commits)))
	h.addCommitLocked(id, branch, commit, files)
	return commit
}

func (h *Hub) addCommitLocked(id, branch, commit string, files map[string][]byte) {
	fs := map[string]*File{}
	for p, d := range files {
		f := &File{Data: append([]byte(nil), d...), LFS: IsLFS(p, d)}
		fs[p] = f
		if f.LFS {
			h.blobs[f.SHA256()] = f.Data
		}
	}
	r := h.repos[id]
	r.commits[commit] = fs
	r.refs[branch] = commit
}

// Tag makes ref (a branch or tag) of repository id point to commit.
func (h *Hub) Tag(id, ref, commit string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[id].refs[ref] = commit
}

// Files returns the files of repository id at commit ("" for main's).
func (h *Hub) Files(id, commit string) map[string]File {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.repos[id]
	if r == nil {
		return nil
	}
	if commit == "" {
		commit = r.refs["main"]
	}
	out := map[string]File{}
	for p, f := range r.commits[commit] {
		out[p] = *f
	}
	return out
}

// Replace changes the bytes repository id serves as path at commit, in
// place: what a misbehaving mirror does, since a real commit never
// changes. The listing and headers follow the new bytes.
func (h *Hub) Replace(id, commit, path string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.repos[id].commits[commit][path]
	f.Data = append([]byte(nil), data...)
	if f.LFS {
		h.blobs[f.SHA256()] = f.Data
	}
}

// SetGated makes repository id gated: its files need GoodToken.
func (h *Hub) SetGated(id string, gated bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[id].gated = gated
}

// SetPrivate makes repository id private: only GoodToken sees it.
func (h *Hub) SetPrivate(id string, private bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repos[id].private = private
}

// Rename makes the resolve URLs of repository from redirect to to, as the
// Hub does for a renamed repository.
func (h *Hub) Rename(from, to string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renamed[from] = to
}

// SetPageSize sets how many entries one page of a tree listing holds.
func (h *Hub) SetPageSize(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pageSize = n
}

// SetHubHook installs hook, which may answer a request to the Hub itself
// (returning true); n counts the Hub's requests from 1. nil removes it.
func (h *Hub) SetHubHook(hook func(w http.ResponseWriter, r *http.Request, n int) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hubHook = hook
}

// SetCDNHook installs hook, which may answer a request to the CDN itself
// (returning true); data is the blob asked for and n counts the requests
// for that blob from 1. nil removes it.
func (h *Hub) SetCDNHook(hook func(w http.ResponseWriter, r *http.Request, data []byte, n int) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cdnHook = hook
}

// Requests returns what server ("hub", "cdn" or "" for both) was asked,
// in order.
func (h *Hub) Requests(server string) []Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Request
	for _, r := range h.reqs {
		if server == "" || r.Server == server {
			out = append(out, r)
		}
	}
	return out
}

func (h *Hub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, Request{Server: server, Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Range: r.Header.Get("Range"), UA: r.Header.Get("User-Agent")})
}

// Error answers as the Hub does: X-Error-Code (when code is not ""),
// X-Error-Message and a JSON body {"error": msg}.
func Error(w http.ResponseWriter, status int, code, msg string) {
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

func (h *Hub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	h.mu.Lock()
	h.hubN++
	n, hook := h.hubN, h.hubHook
	h.mu.Unlock()
	if hook != nil && hook(w, r, n) {
		return
	}
	if r.Header.Get("Authorization") == "Bearer "+InvalidToken {
		Error(w, http.StatusUnauthorized, "", "Invalid credentials in Authorization header")
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

// lookup applies the Hub's access rules (gated repositories' listings
// are public, their files are not) and resolves the revision. It returns
// a snapshot of the files at the commit.
func (h *Hub) lookup(w http.ResponseWriter, r *http.Request, id, rev string, download bool) (map[string]File, string, bool) {
	h.mu.Lock()
	rp := h.repos[id]
	var (
		gated, private, ok bool
		commit             string
		files              map[string]File
	)
	if rp != nil {
		gated, private = rp.gated, rp.private
		commit, ok = rp.refs[rev]
		if !ok {
			if _, isCommit := rp.commits[rev]; isCommit {
				commit, ok = rev, true
			}
		}
		if ok {
			files = map[string]File{}
			for p, f := range rp.commits[commit] {
				files[p] = *f
			}
		}
	}
	h.mu.Unlock()
	auth := r.Header.Get("Authorization")
	if rp == nil || private && auth != "Bearer "+GoodToken {
		status := http.StatusNotFound
		if auth == "" {
			status = http.StatusUnauthorized
		}
		Error(w, status, "RepoNotFound", "Repository not found")
		return nil, "", false
	}
	if download && gated && auth != "Bearer "+GoodToken {
		if auth == "" {
			Error(w, http.StatusUnauthorized, "GatedRepo", "Access to model "+id+" is restricted. You must have access to it and be authenticated to access it. Please log in.")
		} else {
			Error(w, http.StatusForbidden, "GatedRepo", "Access to model "+id+" is restricted and you are not in the authorized list. Visit "+h.hub.URL+"/"+id+" to ask for access.")
		}
		return nil, "", false
	}
	if !ok {
		Error(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return nil, "", false
	}
	return files, commit, true
}

func (h *Hub) serveInfo(w http.ResponseWriter, r *http.Request, id, rev string) {
	files, commit, ok := h.lookup(w, r, id, rev, false)
	if !ok {
		return
	}
	var sib []map[string]string
	for p := range files {
		sib = append(sib, map[string]string{"rfilename": p})
	}
	json.NewEncoder(w).Encode(map[string]any{"id": id, "sha": commit, "siblings": sib})
}

func (h *Hub) serveTree(w http.ResponseWriter, r *http.Request, id, rev, dir string) {
	files, _, ok := h.lookup(w, r, id, rev, false)
	if !ok {
		return
	}
	if r.URL.Query().Get("recursive") != "true" {
		h.t.Errorf("hftest: tree listing without recursive=true: %s", r.URL)
	}
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
		Error(w, http.StatusNotFound, "EntryNotFound", dir+" does not exist on \""+rev+"\"")
		return
	}
	var entries []map[string]any
	for d := range dirs {
		entries = append(entries, map[string]any{"type": "directory", "path": d, "oid": CommitOf(d), "size": 0})
	}
	for _, p := range paths {
		f := files[p]
		e := map[string]any{"type": "file", "path": p, "size": len(f.Data), "oid": f.GitOID()}
		if f.LFS {
			e["lfs"] = map[string]any{"oid": f.SHA256(), "size": len(f.Data), "pointerSize": 134}
			e["oid"] = CommitOf("pointer " + p)
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i]["path"].(string) < entries[j]["path"].(string) })
	h.mu.Lock()
	size := h.pageSize
	h.mu.Unlock()
	start, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	start = min(max(start, 0), len(entries))
	end := min(start+size, len(entries))
	if end < len(entries) {
		next := *r.URL
		q := next.Query()
		q.Set("cursor", strconv.Itoa(end))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, h.hub.URL, next.RequestURI()))
	}
	json.NewEncoder(w).Encode(entries[start:end])
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, id, rev, p string) {
	h.mu.Lock()
	to, renamed := h.renamed[id]
	h.mu.Unlock()
	if renamed {
		// A renamed repository: a relative redirect on the same host.
		w.Header().Set("Location", "/"+to+"/resolve/"+url.PathEscape(rev)+"/"+escapePath(p))
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	files, commit, ok := h.lookup(w, r, id, rev, true)
	if !ok {
		return
	}
	f, ok := files[p]
	w.Header().Set("X-Repo-Commit", commit)
	if !ok {
		Error(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	if f.LFS {
		w.Header().Set("X-Linked-Etag", `"`+f.SHA256()+`"`)
		w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.Data)))
		w.Header().Set("ETag", `"`+CommitOf("pointer "+p)+`"`)
		w.Header().Set("Location", h.cdn.URL+"/repos/ab/cd/"+f.SHA256()+"?X-Amz-Signature=abc&response-content-disposition=attachment")
		w.WriteHeader(http.StatusFound)
		return
	}
	w.Header().Set("ETag", `"`+f.GitOID()+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.Data))
}

func (h *Hub) serveCDN(w http.ResponseWriter, r *http.Request) {
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

// escapePath escapes each element of a slash-separated path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// DropAfter sends the headers of the whole answer (honouring a range),
// then k bytes, then closes the connection: a dropped transfer.
func DropAfter(w http.ResponseWriter, r *http.Request, data []byte, k int) {
	start := 0
	if v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
		start, _ = strconv.Atoi(strings.TrimSuffix(v, "-"))
		start = min(max(start, 0), len(data))
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

// Blob makes n deterministic pseudo-random bytes.
func Blob(seed string, n int) []byte {
	out := make([]byte, 0, n+32)
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256([]byte(seed + strconv.Itoa(i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// ONNXRepo is an SD-Turbo-like optimum export with the files kiln skips
// (PyTorch weights, the safety checker, documentation, a nested export).
func ONNXRepo() map[string][]byte {
	return map[string][]byte{
		".gitattributes":                             []byte("*.onnx filter=lfs\n"),
		"README.md":                                  []byte("# model\n"),
		"model_index.json":                           []byte(`{"_class_name": "ORTStableDiffusionPipeline"}`),
		"scheduler/scheduler_config.json":            []byte(`{"_class_name": "EulerDiscreteScheduler"}`),
		"text_encoder/config.json":                   []byte(`{"hidden_size": 1024}`),
		"text_encoder/model.onnx":                    Blob("te", 3000),
		"tokenizer/merges.txt":                       []byte("#version: 0.2\na b\n"),
		"tokenizer/special_tokens_map.json":          []byte(`{}`),
		"tokenizer/tokenizer_config.json":            []byte(`{}`),
		"tokenizer/vocab.json":                       []byte(`{"a": 0}`),
		"unet/config.json":                           []byte(`{"sample_size": 64}`),
		"unet/model.onnx":                            Blob("unet", 1000),
		"unet/model.onnx_data":                       Blob("unet-data", 600<<10),
		"unet/onnx__MatMul_1234":                     Blob("split", 100),
		"unet/diffusion_pytorch_model.bin":           Blob("torch", 50),
		"vae_decoder/config.json":                    []byte(`{"scaling_factor": 0.18215}`),
		"vae_decoder/model.onnx":                     Blob("vaed", 2000),
		"vae_encoder/model.onnx":                     Blob("vaee", 2000),
		"vae_encoder/weights.pb":                     Blob("vaee-w", 500),
		"safety_checker/model.onnx":                  Blob("safety", 4000),
		"feature_extractor/preprocessor_config.json": []byte(`{}`),
		"v1-inference.yaml":                          []byte("model: {}\n"),
		"other-export/unet/model.onnx":               Blob("nested", 100),
	}
}

// ONNXFiles are the files of ONNXRepo that an ONNX model folder needs,
// sorted: what models/hf keeps.
func ONNXFiles() []string {
	return []string{
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
}

// ReadFolder reads every regular file under dir into a map keyed by
// slash-separated relative path, ready for AddRepo: a model folder made
// by models/testmodels served as a repository, so what is pulled is a
// real, buildable model.
func ReadFolder(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hftest: read model folder %s: %w", dir, err)
	}
	return out, nil
}
