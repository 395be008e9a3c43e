package hf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxRedirects bounds a redirect chain (repository renames, then the CDN).
const maxRedirects = 10

// maxJSON bounds an API answer (one page of a tree listing, model info),
// so a hostile server cannot exhaust memory.
const maxJSON = 32 << 20

// maxPages bounds a paginated tree listing.
const maxPages = 10000

// commitRE is a full git commit id, what the Hub's "sha" gives.
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// target says what a request was about, so an error answer can say which
// of repository, revision, folder or file is missing.
type target struct {
	ref    Ref
	rev    string // the revision in the URL: ref.Revision or a pinned commit
	path   string // repository path of the file or folder, "" for the repository
	folder bool   // path names a folder
}

// base is the endpoint as a URL prefix: scheme, host and any path.
func (c *Client) base() string {
	return c.endpoint.Scheme + "://" + c.endpoint.Host + c.endpoint.EscapedPath()
}

// apiURL is {endpoint}/api/models/{repo}/{rest}; rest must be escaped.
func (c *Client) apiURL(repo, rest string) *url.URL {
	return c.mustParse(c.base() + "/api/models/" + repo + "/" + rest)
}

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{path}, the revision
// escaped whole (as huggingface_hub's quote(revision, safe="")) and the
// path element by element.
func (c *Client) resolveURL(repo, rev, p string) *url.URL {
	return c.mustParse(c.base() + "/" + repo + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(p))
}

func (c *Client) mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		// Every part was validated or escaped; a failure is a bug.
		panic(fmt.Sprintf("hf: bad URL %q: %v", s, err))
	}
	return u
}

// escapePath escapes each element of a slash-separated path.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// repoPage is the repository's web page, where its licence is accepted.
func (c *Client) repoPage(repo string) string { return c.base() + "/" + repo }

// show spells u for messages and logs: without user information, and
// without the query when u is not on the endpoint, since a CDN's query
// holds the signature that grants access to the file.
func (c *Client) show(u *url.URL) string {
	v := *u
	v.User = nil
	v.Fragment = ""
	if v.RawQuery != "" && !c.toEndpoint(u) {
		v.RawQuery = "…"
	}
	return v.String()
}

// toEndpoint reports whether u has the endpoint's scheme and host, the
// only place the token is sent to.
func (c *Client) toEndpoint(u *url.URL) bool {
	return sameOrigin(u, c.endpoint)
}

// sameOrigin compares scheme, host name and port (a default port written
// out is the same as none).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// send makes one request without following redirects. The token goes only
// to the endpoint's origin: after a redirect to another host (the CDN of
// large files) the request carries none, as in huggingface_hub. Errors
// are the http.Client's, for requestError to classify.
func (c *Client) send(ctx context.Context, method string, u *url.URL, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("make request for %s: %w", c.show(u), err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" && c.toEndpoint(u) {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	c.log.Debug("hf request", "method", method, "url", c.show(u), "status", resp.StatusCode, "length", resp.ContentLength)
	return resp, nil
}

// follow sends method to u and follows redirects. With stopAtOtherHost,
// it follows only redirects staying on the current host (a renamed
// repository) and returns the first one leaving it, whose Location is the
// CDN URL of a large file: huggingface_hub's HEAD does the same. It returns
// the last response and the URL it answered.
func (c *Client) follow(ctx context.Context, method string, u *url.URL, hdr http.Header, stopAtOtherHost bool) (*http.Response, *url.URL, error) {
	for hops := 0; ; hops++ {
		resp, err := c.send(ctx, method, u, hdr)
		if err != nil {
			return nil, u, err
		}
		if !isRedirect(resp.StatusCode) {
			return resp, u, nil
		}
		loc := resp.Header.Get("Location")
		if loc == "" {
			return resp, u, nil
		}
		next, err := u.Parse(loc)
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") {
			drain(resp)
			return nil, u, &redirectError{fmt.Sprintf("%s redirected to %q, which is not an http(s) URL: the server or a proxy in between is misconfigured", c.show(u), loc)}
		}
		if stopAtOtherHost && !sameOrigin(next, u) {
			return resp, u, nil
		}
		drain(resp)
		if hops >= maxRedirects {
			return nil, u, &redirectError{fmt.Sprintf("%s: more than %d redirects: the server or a proxy in between is misconfigured", c.show(u), maxRedirects)}
		}
		c.log.Debug("hf redirect", "from", c.show(u), "to", c.show(next))
		u = next
	}
}

func isRedirect(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// drain discards a little of a body so the connection can be reused, and
// closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

// redirectError is a redirect chain that cannot be followed; it is not
// worth retrying.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// errStalled cancels a request that received nothing for the stall
// timeout.
var errStalled = errors.New("stalled")

// requestError classifies an error of a request made under rctx, a
// context derived from the caller's ctx: the caller's cancellation as is,
// a redirect problem as final, anything else (a refused or dropped
// connection, a stall) as transient. what names the transfer when err does
// not (a read error); "" otherwise.
func (c *Client) requestError(ctx, rctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re *redirectError
	if errors.As(err, &re) {
		return err
	}
	if errors.Is(context.Cause(rctx), errStalled) {
		msg := fmt.Sprintf("no data received for %s", c.stall)
		if what != "" {
			msg = what + ": " + msg
		}
		return transient(fmt.Errorf("%s; check the network connection (or HF_ENDPOINT) and try again", msg))
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		// Its URL may carry a CDN's signature: spell it as show does.
		where := "(unparsable URL)"
		if pu, perr := url.Parse(ue.URL); perr == nil {
			where = c.show(pu)
		}
		msg = fmt.Sprintf("%s %s: %v", ue.Op, where, ue.Err)
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "the connection closed early"
	case errors.As(err, &ne) && ne.Timeout():
		msg = "timed out: " + msg
	}
	if what != "" {
		msg = what + ": " + msg
	}
	return transient(fmt.Errorf("%s; check the network connection (or HF_ENDPOINT) and try again", msg))
}

// retry runs op until it succeeds, fails for good, or the retries run out.
// A transient failure is retried after the wait its server asked for
// (Retry-After), else after a doubling delay.
func (c *Client) retry(ctx context.Context, what string, op func() error) error {
	delay := c.retryDelay
	for attempt := 0; ; attempt++ {
		err := op()
		var t *transientError
		if err == nil || !errors.As(err, &t) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= c.retries {
			if attempt == 0 {
				return t.err
			}
			return fmt.Errorf("%w (gave up after %d attempts)", t.err, attempt+1)
		}
		wait := delay
		if t.after >= 0 {
			if t.after > c.maxRetryAfter {
				return fmt.Errorf("%w: the Hub asks to wait %s before trying again, longer than kiln waits (%s): try again after %s", t.err, t.after, c.maxRetryAfter, c.now().Add(t.after).Format(time.Kitchen))
			}
			wait = t.after
		}
		c.log.Warn("hf retrying", "what", what, "error", t.err.Error(), "wait", wait, "attempt", attempt+2, "of", c.retries+1)
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
		delay = min(delay*2, c.maxRetryDelay)
	}
}

// retryable reports the statuses huggingface_hub retries: 408, 429 and
// 5xx server errors.
func retryable(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// waitFor reads how long a 429 or 503 answer asks to wait: the RateLimit
// header's reset when its quota is spent (as huggingface_hub checks
// first), else Retry-After in seconds or as an HTTP date. It returns -1
// when the answer asks for nothing.
func (c *Client) waitFor(h http.Header, code int) time.Duration {
	if code == http.StatusTooManyRequests {
		if t, ok := rateLimitReset(h.Get("RateLimit")); ok {
			return t
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseUint(v, 10, 31); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(c.now()).Round(time.Second), 0)
	}
	return -1
}

// rateLimitReset reads `"api";r=0;t=55` (IETF RateLimit header draft): t
// seconds when r, the remaining quota, is 0.
func rateLimitReset(v string) (time.Duration, bool) {
	var r, t int64 = -1, -1
	for _, p := range strings.Split(v, ";") {
		k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(val), 10, 32)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(k) {
		case "r":
			r = n
		case "t":
			t = n
		}
	}
	if r == 0 && t >= 0 {
		return time.Duration(t) * time.Second, true
	}
	return 0, false
}

// statusError turns an error answer into a *HubError whose message says
// what is missing and what to do; retryable statuses come back as
// transient errors carrying the wait the server asked for. It reads (a
// little of) the body and closes it.
func (c *Client) statusError(resp *http.Response, u *url.URL, t target) error {
	defer resp.Body.Close()
	e := &HubError{
		Status:        resp.StatusCode,
		Code:          strings.TrimSpace(resp.Header.Get("X-Error-Code")),
		ServerMessage: sanitize(resp.Header.Get("X-Error-Message")),
		URL:           c.show(u),
	}
	if e.ServerMessage == "" {
		var body struct {
			Error any `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &body) == nil {
			switch v := body.Error.(type) {
			case string:
				e.ServerMessage = sanitize(v)
			case []any:
				var s []string
				for _, x := range v {
					s = append(s, fmt.Sprint(x))
				}
				e.ServerMessage = sanitize(strings.Join(s, "; "))
			}
		}
	}
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if txt := http.StatusText(resp.StatusCode); txt != "" {
		status += " " + txt
	}
	repo, page := t.ref.Repo, c.repoPage(t.ref.Repo)
	onHub := c.toEndpoint(u)
	switch {
	case e.Code == "GatedRepo":
		e.kind = ErrGated
		e.msg = fmt.Sprintf("%s is a gated repository (%s): accept the licence on %s and set HF_TOKEN to a token with access (%s)", repo, status, page, c.tokenNote())
	case e.Code == "RepoNotFound" || (onHub && resp.StatusCode == http.StatusUnauthorized && e.ServerMessage != "Invalid credentials in Authorization header"):
		// The Hub answers 401 for private and for missing repositories
		// alike (huggingface_hub treats both as RepoNotFound).
		e.kind = ErrRepoNotFound
		e.msg = fmt.Sprintf("repository %s was not found on %s (%s): check its spelling (its page would be %s); if it is private, set HF_TOKEN to a token with read access (%s)", repo, c.base(), status, page, c.tokenNote())
	case resp.StatusCode == http.StatusUnauthorized && onHub:
		e.kind = ErrUnauthorized
		e.msg = fmt.Sprintf("the Hub rejected %s as invalid or expired (%s): make a new token on %s/settings/tokens and set HF_TOKEN to it", c.tokenName(), status, c.base())
	case e.Code == "RevisionNotFound":
		e.kind = ErrRevisionNotFound
		if t.rev != t.ref.Revision && commitRE.MatchString(t.rev) {
			e.msg = fmt.Sprintf("commit %s of %s no longer exists on the Hub (%s; its history was rewritten): pull %s again to pin the current commit of %q", t.rev, repo, status, t.ref, t.ref.Revision)
		} else {
			e.msg = fmt.Sprintf("%s has no revision %q (%s): name a branch, tag or commit that exists (see %s), as hf:%s@REVISION", repo, t.rev, status, page, repo)
		}
	case e.Code == "EntryNotFound":
		e.kind = ErrEntryNotFound
		if t.folder {
			e.msg = fmt.Sprintf("%s has no folder %q at %s (%s): check the subfolder of %s against the files on %s/tree/%s", repo, t.path, t.ref.Revision, status, t.ref, page, url.PathEscape(t.ref.Revision))
		} else {
			e.msg = fmt.Sprintf("%s has no file %q at commit %s (%s): the file list is out of date; resolve %s again", repo, t.path, t.rev, status, t.ref)
		}
	case resp.StatusCode == http.StatusNotFound:
		what := fmt.Sprintf("the repository %s or its revision %q", repo, t.rev)
		if t.path != "" {
			what = fmt.Sprintf("the repository %s, its revision %q or %q", repo, t.rev, t.path)
		}
		e.msg = fmt.Sprintf("%s for %s: %s does not exist on %s (the server did not say which); check the reference %s", status, c.show(u), what, c.base(), t.ref)
	case resp.StatusCode == http.StatusForbidden && onHub:
		e.msg = fmt.Sprintf("access to %s is forbidden (%s): set HF_TOKEN to a token with read access to %s (%s)", c.show(u), status, repo, c.tokenNote())
	case resp.StatusCode == http.StatusTooManyRequests:
		e.msg = fmt.Sprintf("the Hub is limiting the rate of requests (%s for %s): wait a few minutes and try again", status, c.show(u))
		if c.token == "" {
			e.msg += "; requests with HF_TOKEN set get a higher limit"
		}
	case resp.StatusCode >= 500:
		e.msg = fmt.Sprintf("%s answered %s for %s: it is failing or overloaded; try again later", u.Host, status, c.show(u))
	default:
		e.msg = fmt.Sprintf("unexpected %s for %s", status, c.show(u))
	}
	if retryable(resp.StatusCode) {
		return &transientError{err: e, after: c.waitFor(resp.Header, resp.StatusCode)}
	}
	return e
}

// tokenNote says, for an access error, which token was sent or why none
// was.
func (c *Client) tokenNote() string {
	if c.token == "" {
		return c.tokenFrom
	}
	return c.tokenFrom + " was sent, but has no access"
}

// tokenName names the token sent, for messages.
func (c *Client) tokenName() string {
	if c.token == "" {
		return "the request"
	}
	return c.tokenFrom
}

// getJSON GETs u (following redirects), decodes the answer into v and
// returns the URL of the next page its Link header names, nil when none.
// Transient failures are retried.
func (c *Client) getJSON(ctx context.Context, u *url.URL, t target, v any) (*url.URL, error) {
	var next *url.URL
	err := c.retry(ctx, c.show(u), func() error {
		// API answers are small: the stall timeout bounds the whole
		// request.
		rctx, cancel := context.WithTimeoutCause(ctx, c.stall, errStalled)
		defer cancel()
		hdr := http.Header{"Accept": {"application/json"}}
		resp, at, err := c.follow(rctx, http.MethodGet, u, hdr, false)
		if err != nil {
			return c.requestError(ctx, rctx, "", err)
		}
		if resp.StatusCode != http.StatusOK {
			return c.statusError(resp, at, t)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSON+1))
		if err != nil {
			return c.requestError(ctx, rctx, "read "+c.show(at), err)
		}
		if len(b) > maxJSON {
			return fmt.Errorf("%s answered more than %d MiB: that is not the Hub's API (check HF_ENDPOINT)", c.show(at), maxJSON>>20)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("%s did not answer the Hub's JSON (%v): check HF_ENDPOINT, or that no proxy rewrites the answer", c.show(at), err)
		}
		next = nil
		if l := nextLink(resp.Header); l != "" {
			n, err := at.Parse(l)
			if err != nil || (n.Scheme != "http" && n.Scheme != "https") {
				return fmt.Errorf("%s names a next page %q that is not an http(s) URL", c.show(at), l)
			}
			next = n
		}
		return nil
	})
	return next, err
}

// nextLink returns the target of the Link header's rel="next" entry (the
// pagination huggingface_hub's paginate follows, GitHub style), "" when
// there is none.
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			start := strings.IndexByte(v, '<')
			if start < 0 {
				break
			}
			end := strings.IndexByte(v[start:], '>')
			if end < 0 {
				break
			}
			link := v[start+1 : start+end]
			v = v[start+end+1:]
			params := v
			if i := strings.IndexByte(v, '<'); i >= 0 {
				params, v = v[:i], v[i:]
			} else {
				v = ""
			}
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(strings.Trim(strings.TrimSpace(p), ",")), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
					continue
				}
				for _, r := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(r, "next") {
						return link
					}
				}
			}
		}
	}
	return ""
}
