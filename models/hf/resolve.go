package hf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Snapshot is a reference resolved to a commit, with the files of the
// model folder: what a lock records. Resolve makes one; a caller may also
// build one from a lock to download the same files again.
type Snapshot struct {
	// Ref is the reference as asked, its Revision defaulted to
	// DefaultRevision.
	Ref Ref
	// Commit is the full commit id Ref.Revision pointed to; downloads
	// are pinned to it, so they do not change when the branch moves.
	Commit string
	// Files are the files of the model folder, sorted by Path.
	Files []File
}

// File is one file of a model folder on the Hub.
type File struct {
	// Path is the slash-separated path inside the model folder, relative
	// to Ref.Subfolder (so "unet/model.onnx" whatever the subfolder).
	Path string
	// Size is the file's size in bytes.
	Size int64
	// SHA256 is the file's SHA-256 in lower-case hex. Resolve sets it for
	// files stored with Git LFS (the weights) from the Hub's listing; it
	// is "" for small files kept in git, whose SHA-256 Download computes
	// and returns.
	SHA256 string
	// GitOID is the git blob id (SHA-1) of a small file kept in git, from
	// the Hub's listing; Download checks the data against it when SHA256
	// is not known yet. It is "" for LFS files and need not be kept in a
	// lock once SHA256 is recorded.
	GitOID string
}

var (
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	gitOIDRE = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// treeEntry is one entry of the Hub's tree listing
// (GET /api/models/{repo}/tree/{revision}/{path}?recursive=true).
type treeEntry struct {
	Type string `json:"type"` // "file" or "directory"
	Path string `json:"path"` // relative to the repository's root
	Size int64  `json:"size"`
	OID  string `json:"oid"` // git blob id; for LFS files the pointer's
	LFS  *struct {
		OID  string `json:"oid"` // SHA-256 of the content
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// Resolve asks the Hub which commit ref's revision points to, lists the
// files of ref's folder at that commit and keeps those an ONNX diffusers
// model folder needs (see the package documentation). It then checks
// that the files can be downloaded, so a gated repository whose licence
// was not accepted fails here, before anything is staged.
//
// A folder without ONNX graphs (a PyTorch or safetensors repository)
// gives an error wrapping ErrNoONNX that says how to export one; a missing
// repository, revision or subfolder gives a *HubError wrapping
// ErrRepoNotFound, ErrRevisionNotFound or ErrEntryNotFound.
func (c *Client) Resolve(ctx context.Context, ref Ref) (*Snapshot, error) {
	if ref.Revision == "" {
		ref.Revision = DefaultRevision
	}
	// A Ref may be built by hand: check it as if it had been parsed.
	checked, err := ParseRef(ref.String())
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	ref = checked

	var info struct {
		ID  string `json:"id"`
		SHA string `json:"sha"`
	}
	u := c.apiURL(ref.Repo, "revision/"+url.PathEscape(ref.Revision))
	if _, err := c.getJSON(ctx, u, target{ref: ref, rev: ref.Revision}, &info); err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if !commitRE.MatchString(info.SHA) {
		return nil, fmt.Errorf("resolve %s: %s gave no commit id (sha %q): check that HF_ENDPOINT names a Hugging Face Hub", ref, c.show(u), sanitize(info.SHA))
	}
	if info.ID != "" && info.ID != ref.Repo {
		c.log.Info("hf repository has another name", "asked", ref.Repo, "hub", sanitize(info.ID))
	}

	entries, err := c.listTree(ctx, ref, info.SHA)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	files, err := c.selectFiles(ref, info.SHA, entries)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	s := &Snapshot{Ref: ref, Commit: info.SHA, Files: files}

	// model_index.json is always there (selectFiles demands it) and
	// small; its HEAD answers whether the files may be downloaded.
	idx := 0
	for i, f := range files {
		if f.Path == "model_index.json" {
			idx = i
		}
	}
	err = c.retry(ctx, files[idx].Path, func() error {
		rctx, cancel := context.WithTimeoutCause(ctx, c.stall, errStalled)
		defer cancel()
		_, err := c.head(ctx, rctx, s, files[idx])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	c.log.Debug("hf resolved", "ref", ref.String(), "commit", info.SHA, "files", len(files))
	return s, nil
}

// listTree returns every entry under ref's subfolder at commit, following
// the listing's pagination.
func (c *Client) listTree(ctx context.Context, ref Ref, commit string) ([]treeEntry, error) {
	rest := "tree/" + url.PathEscape(commit)
	if ref.Subfolder != "" {
		// huggingface_hub escapes the whole path, slashes included.
		rest += "/" + url.PathEscape(ref.Subfolder)
	}
	u := c.apiURL(ref.Repo, rest+"?recursive=true")
	t := target{ref: ref, rev: commit, path: ref.Subfolder, folder: true}
	var all []treeEntry
	seen := map[string]bool{}
	for page := 0; u != nil; page++ {
		if page >= maxPages || seen[u.String()] {
			return nil, fmt.Errorf("the file listing of %s does not end (page %d, %s): check HF_ENDPOINT", ref, page+1, c.show(u))
		}
		seen[u.String()] = true
		var entries []treeEntry
		next, err := c.getJSON(ctx, u, t, &entries)
		if err != nil {
			return nil, err
		}
		all = append(all, entries...)
		u = next
	}
	return all, nil
}

// Files of the diffusers / optimum ONNX layout kiln does not run and so
// does not download: the safety checker (an ONNX graph of about 1 GB) and
// its image preprocessor.
var unusedComponents = map[string]bool{"safety_checker": true, "feature_extractor": true}

// torchWeights are extensions of weights in formats other than ONNX.
var torchWeights = []string{".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".h5", ".pkl", ".pickle", ".ot", ".gguf", ".keras", ".tflite", ".mlmodel", ".npz"}

// docFiles are extensions of documentation, code and pictures.
var docFiles = []string{".md", ".rst", ".ipynb", ".py", ".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg", ".yaml", ".yml", ".gitattributes", ".gitignore", ".html", ".pdf"}

// tokenizerFiles are the files Hugging Face tokenizers are made of.
var tokenizerFiles = map[string]bool{
	"vocab.json": true, "merges.txt": true, "tokenizer.json": true, "tokenizer_config.json": true,
	"special_tokens_map.json": true, "added_tokens.json": true, "spiece.model": true,
	"tokenizer.model": true, "sentencepiece.bpe.model": true, "vocab.txt": true,
}

// isTorchWeight reports weights kiln cannot run.
func isTorchWeight(name string) bool {
	return hasAnySuffix(strings.ToLower(name), torchWeights)
}

// isDoc reports documentation, code and pictures.
func isDoc(name string) bool {
	l := strings.ToLower(name)
	for _, p := range []string{"readme", "license", "licence", "notice"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return hasAnySuffix(l, docFiles)
}

// isGraph reports an ONNX graph.
func isGraph(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".onnx") }

// isExternalData reports ONNX external data by its usual names.
func isExternalData(name string) bool {
	l := strings.ToLower(name)
	return strings.HasSuffix(l, ".onnx_data") || strings.HasSuffix(l, ".onnx.data") || l == "weights.pb"
}

func hasAnySuffix(s string, suffixes []string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

// keep decides whether the file at rel (relative to the model folder) is
// part of an ONNX diffusers folder. graphDirs are the component folders
// holding an ONNX graph. The layout is flat: model_index.json at the top,
// everything else one folder down.
func keep(rel string, graphDirs map[string]bool) bool {
	dir, name := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return name == "model_index.json"
	}
	if strings.Contains(dir, "/") || unusedComponents[dir] || isTorchWeight(name) || isDoc(name) {
		return false
	}
	ext := strings.ToLower(path.Ext(name))
	switch {
	case isGraph(name), isExternalData(name):
		return true
	case graphDirs[dir]:
		// Beside a graph: its config and external data under any name
		// (older exports split weights into many extension-less files).
		return true
	case tokenizerFiles[name]:
		return true
	case strings.HasPrefix(dir, "tokenizer") && (ext == ".json" || ext == ".txt" || ext == ".model"):
		return true
	case strings.HasPrefix(dir, "scheduler") && ext == ".json":
		return true
	case name == "config.json":
		return true
	}
	return false
}

// selectFiles turns the tree listing of ref's folder into the model
// folder's files, or explains why the folder is not an ONNX diffusers
// export.
func (c *Client) selectFiles(ref Ref, commit string, entries []treeEntry) ([]File, error) {
	prefix := ""
	if ref.Subfolder != "" {
		prefix = ref.Subfolder + "/"
	}
	all := map[string]treeEntry{}
	for _, e := range entries {
		if e.Type != "file" {
			continue
		}
		rel, ok := strings.CutPrefix(e.Path, prefix)
		if !ok {
			return nil, fmt.Errorf("the Hub's file list of %q holds %q, outside that folder: check HF_ENDPOINT", ref.Subfolder, sanitize(e.Path))
		}
		if err := checkRelPath(rel); err != nil {
			return nil, fmt.Errorf("the Hub's file list of %s holds an unusable path: %w", ref, err)
		}
		if _, dup := all[rel]; dup {
			return nil, fmt.Errorf("the Hub's file list of %s holds %q twice: check HF_ENDPOINT", ref, rel)
		}
		all[rel] = e
	}

	graphDirs := map[string]bool{}
	for rel := range all {
		if dir, name := path.Split(rel); isGraph(name) && dir != "" {
			graphDirs[strings.TrimSuffix(dir, "/")] = true
		}
	}
	var files []File
	var hasIndex, hasGraph bool
	for rel, e := range all {
		if !keep(rel, graphDirs) {
			continue
		}
		f, err := toFile(rel, e)
		if err != nil {
			return nil, fmt.Errorf("the Hub's file list of %s: %w", ref, err)
		}
		files = append(files, f)
		hasIndex = hasIndex || rel == "model_index.json"
		hasGraph = hasGraph || isGraph(rel)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	if hasIndex && hasGraph {
		return files, nil
	}
	return nil, c.notONNX(ref, commit, all, hasGraph)
}

// notONNX explains why ref's folder is not an ONNX diffusers export: the
// export sits in a subfolder, or there is none and one must be made.
func (c *Client) notONNX(ref Ref, commit string, all map[string]treeEntry, hasGraph bool) error {
	at := fmt.Sprintf("commit %s (%s)", commit[:12], ref.Revision)
	if ref.Subfolder != "" {
		at += " in " + ref.Subfolder + "/"
	}
	// An export deeper down: a folder with model_index.json and a graph
	// one level below it.
	var deeper []string
	for rel := range all {
		if dir, name := path.Split(rel); name == "model_index.json" && dir != "" {
			dir = strings.TrimSuffix(dir, "/")
			for other := range all {
				if d, n := path.Split(other); isGraph(n) && path.Dir(strings.TrimSuffix(d, "/")) == dir {
					deeper = append(deeper, dir)
					break
				}
			}
		}
	}
	if len(deeper) > 0 {
		sort.Strings(deeper)
		sub := ref
		sub.Subfolder = path.Join(ref.Subfolder, deeper[0])
		return withKind(ErrNoONNX, "%s has no ONNX diffusers export at the top, but %q holds one: pull %s", at, deeper[0], sub)
	}
	name := ref.Repo[strings.IndexByte(ref.Repo, '/')+1:]
	export := fmt.Sprintf("export one with Hugging Face Optimum, in the project: pip install \"optimum[exporters]\", then optimum-cli export onnx --model %s models/%s-onnx/, and name that folder in kiln.yaml's models: ({path: models/%s-onnx})", ref.Repo, name, name)
	if hasGraph {
		return withKind(ErrNoONNX, "%s has ONNX graphs but no model_index.json beside them, so it is not a diffusers / optimum pipeline export; %s", at, export)
	}
	var torch []string
	for rel := range all {
		if isTorchWeight(rel) {
			torch = append(torch, rel)
		}
	}
	sort.Strings(torch)
	found := "no ONNX graph"
	if len(torch) > 0 {
		more := ""
		if len(torch) > 3 {
			torch, more = torch[:3], fmt.Sprintf(" and %d more", len(torch)-3)
		}
		found = fmt.Sprintf("no ONNX graph, only weights kiln cannot run (%s%s)", strings.Join(torch, ", "), more)
	}
	return withKind(ErrNoONNX, "%s has %s; kiln runs ONNX exports: %s", at, found, export)
}

// toFile checks a listing entry and makes the File of it.
func toFile(rel string, e treeEntry) (File, error) {
	if e.Size < 0 {
		return File{}, fmt.Errorf("%q has the negative size %d", rel, e.Size)
	}
	f := File{Path: rel, Size: e.Size}
	if e.LFS != nil {
		sum := strings.ToLower(e.LFS.OID)
		if !sha256RE.MatchString(sum) || e.LFS.Size < 0 {
			return File{}, fmt.Errorf("%q is stored with LFS but its sha256 %q or size %d is malformed", rel, sanitize(e.LFS.OID), e.LFS.Size)
		}
		f.SHA256, f.Size = sum, e.LFS.Size
		return f, nil
	}
	if oid := strings.ToLower(e.OID); gitOIDRE.MatchString(oid) {
		f.GitOID = oid
	}
	return f, nil
}

// checkRelPath accepts a clean, relative, slash-separated path without
// ".." elements, backslashes or NUL bytes, so a hostile listing cannot
// name a file outside the model folder. (models/store checks again with
// internal/safepath when it creates the files.)
func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("an empty path")
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("%q contains a backslash or a NUL byte", sanitize(p))
	case strings.HasPrefix(p, "/"), len(p) >= 2 && p[1] == ':':
		return fmt.Errorf("%q is absolute", sanitize(p))
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path", sanitize(p))
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." || e == "." {
			return fmt.Errorf("%q contains %q", sanitize(p), e)
		}
	}
	return nil
}

// head asks the Hub (HEAD /{repo}/resolve/{commit}/{path}, following only
// redirects on the same host) for what it serves as f at s.Commit.
func (c *Client) head(ctx, rctx context.Context, s *Snapshot, f File) (fileMeta, error) {
	repoPath := path.Join(s.Ref.Subfolder, f.Path)
	u := c.resolveURL(s.Ref.Repo, s.Commit, repoPath)
	// Compression would hide the real size.
	hdr := http.Header{"Accept-Encoding": {"identity"}}
	resp, at, err := c.follow(rctx, http.MethodHead, u, hdr, true)
	if err != nil {
		return fileMeta{}, c.requestError(ctx, rctx, "", err)
	}
	t := target{ref: s.Ref, rev: s.Commit, path: repoPath}
	m := fileMeta{
		commit: strings.TrimSpace(resp.Header.Get("X-Repo-Commit")),
		sha256: normalizeETag(resp.Header.Get("X-Linked-Etag")),
		size:   -1,
		get:    at,
	}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		if resp.ContentLength >= 0 {
			m.size = resp.ContentLength
		}
	case isRedirect(resp.StatusCode) && resp.Header.Get("Location") != "":
		m.get, _ = at.Parse(resp.Header.Get("Location")) // follow checked it
	default:
		return fileMeta{}, c.statusError(resp, at, t)
	}
	drain(resp)
	if v := resp.Header.Get("X-Linked-Size"); v != "" {
		var n int64
		if _, err := fmt.Sscan(v, &n); err == nil && n >= 0 {
			m.size = n
		}
	}
	if m.sha256 != "" && !sha256RE.MatchString(m.sha256) {
		m.sha256 = "" // not an LFS sha256; Download checks the data itself
	}
	return m, nil
}

// fileMeta is what a HEAD on a file's resolve URL tells.
type fileMeta struct {
	commit string   // X-Repo-Commit, "" when absent
	sha256 string   // X-Linked-Etag of an LFS file, "" otherwise
	size   int64    // X-Linked-Size, else Content-Length; -1 when unknown
	get    *url.URL // where to GET the data: the CDN for LFS files
}

// normalizeETag drops the weak marker and the quotes of an ETag, as
// huggingface_hub's _normalize_etag does.
func normalizeETag(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	return strings.ToLower(strings.Trim(v, `"`))
}
