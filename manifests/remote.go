package manifests

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// RemoteCache is kiln.yaml's remote_cache: block: a cache that several
// machines share, spoken to over the Bazel HTTP remote-cache protocol
// (bazel-remote, nginx with WebDAV, BuildBuddy, buckets behind
// bazel-remote). It holds no credentials: kiln.yaml comes with the
// project's files, so they come from the environment or ~/.netrc (see
// pipeline/remote). --remote-cache and KILN_REMOTE_CACHE replace the
// block.
type RemoteCache struct {
	// URL is the cache's base URL (http or https; no credentials, query
	// or fragment), without a trailing slash.
	URL string
	// Upload sends the results of the stages this machine runs to the
	// cache (the default, for CI); false only reads (for designers).
	Upload bool
	// CAFile is a PEM file of CA certificates to trust besides the
	// system's, as written: absolute, or relative to the project root
	// (see CAPath); "" for the system's alone.
	CAFile string
	// Timeout is how long a request may make no progress before kiln
	// gives up on it and builds the stage itself.
	Timeout time.Duration
	// Pos is where the block (or the URL, when the block is one) is;
	// URLPos and CAFilePos where those values are.
	Pos, URLPos, CAFilePos Pos
}

// CAPath returns CAFile as a path: relative ones are taken from root.
func (r *RemoteCache) CAPath(root string) string {
	if r.CAFile == "" || filepath.IsAbs(r.CAFile) {
		return r.CAFile
	}
	return filepath.Join(root, filepath.FromSlash(r.CAFile))
}

// Bounds of remote_cache.timeout.
const (
	DefaultRemoteTimeout = 30 * time.Second
	minRemoteTimeout     = 10 * time.Millisecond
	maxRemoteTimeout     = 10 * time.Minute
)

const remoteURLHint = "write the cache's base URL, e.g. https://cache.example.com/kiln (kiln uses URL/ac/... and URL/cas/...)"

// remoteCacheSpec is the spec of remote_cache:.
func remoteCacheSpec() *spec {
	urlSpec := func(doc string) *spec {
		return str(doc).nonempty(remoteURLHint).pat(`^https?://[^/?#@]+(/[^?#]*)?$`).with(remoteURLPost)
	}
	return anyOf("A remote cache shared with other machines, over the Bazel HTTP cache protocol (bazel-remote, nginx with WebDAV PUT, "+
		"BuildBuddy, buckets behind bazel-remote): its base URL, or {url, upload, ca_file, timeout}. Stages missing from the local cache "+
		"are taken from it, and (unless upload: false) what this machine builds is sent to it. No credentials here: kiln reads "+
		"KILN_REMOTE_CACHE_TOKEN, KILN_REMOTE_CACHE_USER and KILN_REMOTE_CACHE_PASSWORD (for a cache named by --remote-cache or "+
		"KILN_REMOTE_CACHE) or ~/.netrc. --remote-cache URL|off and KILN_REMOTE_CACHE replace this block.",
		urlSpec(""),
		obj("",
			fld("url", urlSpec("Base URL of the cache (http or https).")).req(remoteURLHint),
			fld("upload", boolean("Send the results of the stages this machine builds to the cache; false reads only "+
				"(designers' machines; KILN_REMOTE_CACHE_UPLOAD overrides it).").dflt(true)),
			fld("ca_file", str("PEM file of CA certificates to trust besides the system's, for a cache with a private CA "+
				"(absolute, or relative to the project).").nonempty("name a PEM file, or leave ca_file: out for the system's roots").with(caFilePost)),
			fld("timeout", str("How long a request may make no progress before kiln gives up on it and builds the stage itself, "+
				"e.g. \"30s\".").pat(durationPattern).dflt("30s").with(remoteTimeoutPost)),
		),
	).describe("a URL or {url, upload, ca_file, timeout}").with(remoteCachePost)
}

// remoteURLPost checks a remote cache URL.
func remoteURLPost(d *decoder, p string, v *value) (any, bool) {
	s := v.v.(string)
	bad := func(msg, hint string) (any, bool) {
		d.add(v.pos, p, msg, hint)
		return nil, false
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || strings.TrimSpace(s) != s:
		return bad(fmt.Sprintf("%s is not a URL", quote(s)), remoteURLHint)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad(fmt.Sprintf("expected an http:// or https:// URL, got %s", quote(s)), remoteURLHint)
	case u.User != nil:
		return bad(fmt.Sprintf("URL %s holds credentials", quote(u.Redacted())),
			"kiln.yaml comes with the project's files: remove them, and set KILN_REMOTE_CACHE_TOKEN (or KILN_REMOTE_CACHE_USER and "+
				"KILN_REMOTE_CACHE_PASSWORD) with KILN_REMOTE_CACHE, or put them in ~/.netrc")
	case u.Hostname() == "":
		return bad(fmt.Sprintf("URL %s names no host", quote(s)), remoteURLHint)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return bad(fmt.Sprintf("URL %s has a query or a fragment", quote(s)), "give the cache's base URL alone")
	}
	return strings.TrimRight(s, "/"), true
}

// caFilePost checks remote_cache.ca_file.
func caFilePost(d *decoder, p string, v *value) (any, bool) {
	s := v.v.(string)
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			d.add(v.pos, p, fmt.Sprintf("path %s contains a control character", quote(s)), "")
			return nil, false
		}
	}
	return s, true
}

// remoteTimeoutPost checks remote_cache.timeout.
func remoteTimeoutPost(d *decoder, p string, v *value) (any, bool) {
	s := v.v.(string)
	t, err := time.ParseDuration(s)
	if !durationText.MatchString(s) || err != nil {
		d.add(v.pos, p, fmt.Sprintf("expected a duration like \"30s\" or \"2m\", got %s", quote(s)), "")
		return nil, false
	}
	if t < minRemoteTimeout || t > maxRemoteTimeout {
		d.add(v.pos, p, fmt.Sprintf("must be between %s and %s, got %s", minRemoteTimeout, maxRemoteTimeout, s), "")
		return nil, false
	}
	return t, true
}

// remoteCachePost turns remote_cache: into a *RemoteCache.
func remoteCachePost(d *decoder, p string, v *value) (any, bool) {
	rc := &RemoteCache{Upload: true, Timeout: DefaultRemoteTimeout, Pos: v.pos, URLPos: v.pos}
	switch x := v.v.(type) {
	case string:
		rc.URL = x
	case *object:
		dropped := func(name string) bool {
			_, ok := x.get(name)
			return x.has(name) && !ok
		}
		u, ok := x.get("url")
		if !ok || dropped("ca_file") || dropped("timeout") || dropped("upload") {
			return nil, false // reported
		}
		rc.URL, rc.URLPos = u.v.(string), u.pos
		if up, ok := x.get("upload"); ok {
			rc.Upload = up.v.(bool)
		}
		if ca, ok := x.get("ca_file"); ok {
			rc.CAFile, rc.CAFilePos = ca.v.(string), ca.pos
		}
		if to, ok := x.get("timeout"); ok {
			rc.Timeout = to.v.(time.Duration)
		}
	default:
		return nil, false
	}
	return rc, true
}
