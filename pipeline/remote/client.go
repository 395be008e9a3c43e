// Package remote is kiln's client of the Bazel HTTP remote-cache
// protocol: GET, PUT and HEAD of {base}/ac/{sha256} (action results) and
// {base}/cas/{sha256} (content blobs). bazel-remote, nginx with WebDAV,
// BuildBuddy's HTTP cache and buckets behind bazel-remote all serve it.
//
// The client moves bytes and reports faults; it trusts nothing it
// receives and checks nothing of it: package pipeline verifies every
// entry and blob (see pipeline.RemoteCache). It follows no redirect,
// sends credentials only as Settings and Credentials allow (never ones
// from kiln.yaml), and gives up on a request that makes no progress for
// Settings.Timeout.
package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/kiln-dev/kiln/pipeline"
)

// DefaultTimeout is how long a request may go without progress.
const DefaultTimeout = 30 * time.Second

// maxCAFile bounds a CA bundle (the system's is about 200 KiB).
const maxCAFile = 4 << 20

// Client is a remote cache over HTTP. It implements pipeline.RemoteCache
// and is safe for concurrent use.
type Client struct {
	base    *url.URL
	name    string
	hc      *http.Client
	auth    func(*http.Request)
	timeout time.Duration
}

var _ pipeline.RemoteCache = (*Client)(nil)

// New returns a client for the remote cache s, with credentials from
// creds. The warnings say what the caller should tell the user (such as
// credentials that were not used, and why).
func New(s Settings, creds Credentials) (*Client, []string, error) {
	base, err := ParseURL(s.URL)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", s.Where, err)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pool, err := loadCAFile(s.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: CA file: %w", s.caWhere(), err)
		}
		tlsConf.RootCAs = pool
	}
	auth, warnings, err := creds.resolve(s, base)
	if err != nil {
		return nil, nil, err
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		// Connecting, the TLS handshake and waiting for an answer are
		// all covered by the request's watchdog (see once).
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConf,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		// Blobs are PNGs, already compressed; and a compressed body
		// would be a size the client cannot bound before reading it.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	hc := &http.Client{
		Transport: tr,
		// A cache answers itself; a redirect could carry credentials
		// elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{base: base, name: base.String(), hc: hc, auth: auth, timeout: timeout}, warnings, nil
}

// loadCAFile reads a PEM bundle and adds it to the system roots.
func loadCAFile(p string) (*x509.CertPool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxCAFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; give a PEM file of CA certificates", p, maxCAFile)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----)", p)
	}
	return pool, nil
}

// String returns the cache's base URL, without credentials.
func (c *Client) String() string { return c.name }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// StatusError is an HTTP answer other than success or "not found".
type StatusError struct {
	Method, Path string
	Code         int
	Status       string
	// Hint says what to do, when kiln knows.
	Hint string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s %s: %s", e.Method, e.Path, e.Status)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// retryable reports whether a request that failed with err may be tried
// once more: a server error or a connection that broke before any of the
// answer's body arrived.
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusBadGateway || se.Code == http.StatusServiceUnavailable || se.Code == http.StatusGatewayTimeout || se.Code == http.StatusInternalServerError
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE)
}

// errStalled cancels a request that made no progress for the timeout.
var errStalled = errors.New("stalled")

// request runs one request with a progress watchdog: it is cancelled
// when no byte moves in either direction for c.timeout. handle reads the
// answer; a failure that comes before handle has read any body, and that
// retryable accepts, is tried once more.
func (c *Client) request(ctx context.Context, method string, kind pipeline.RemoteKind, hash string, size int64,
	open func() (io.ReadCloser, error), handle func(resp *http.Response, body io.Reader, started func()) error) error {
	p := string(kind) + "/" + hash
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var started bool
		err = c.once(ctx, method, p, size, open, func(resp *http.Response, body io.Reader) error {
			return handle(resp, body, func() { started = true })
		})
		if err == nil || ctx.Err() != nil || started || !retryable(err) {
			break
		}
	}
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != nil {
		return context.Cause(ctx)
	}
	return err
}

// once is one attempt of a request.
func (c *Client) once(ctx context.Context, method, p string, size int64, open func() (io.ReadCloser, error), handle func(*http.Response, io.Reader) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dog := time.AfterFunc(c.timeout, func() { cancel(errStalled) })
	defer dog.Stop()
	kick := func() { dog.Reset(c.timeout) }

	var body io.Reader
	if open != nil {
		rc, err := open()
		if err != nil {
			return err
		}
		defer rc.Close()
		body = &progressReader{r: rc, kick: kick}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(p).String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, p, err)
	}
	if open != nil {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("User-Agent", "kiln")
	if c.auth != nil {
		c.auth(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if context.Cause(ctx) == errStalled {
			return fmt.Errorf("%s %s: no answer for %s (the timeout; raise remote_cache.timeout for a slow link)", method, p, c.timeout)
		}
		return fmt.Errorf("%s %s: %w", method, p, unwrapURLError(err))
	}
	defer resp.Body.Close()
	kick()
	err = handle(resp, &progressReader{r: resp.Body, kick: kick})
	if err != nil && context.Cause(ctx) == errStalled {
		return fmt.Errorf("%s %s: the transfer stalled for %s (the timeout; raise remote_cache.timeout for a slow link)", method, p, c.timeout)
	}
	return err
}

// unwrapURLError drops the *url.Error wrapper, whose message repeats the
// URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// progressReader kicks the watchdog on every read that moves bytes.
type progressReader struct {
	r    io.Reader
	kick func()
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.kick()
	}
	return n, err
}

// Get copies entry kind/hash into w (see pipeline.RemoteCache).
func (c *Client) Get(ctx context.Context, kind pipeline.RemoteKind, hash string, limit int64, w io.Writer) (int64, error) {
	var n int64
	err := c.request(ctx, http.MethodGet, kind, hash, 0, nil, func(resp *http.Response, body io.Reader, started func()) error {
		p := string(kind) + "/" + hash
		if err := c.status(http.MethodGet, p, resp, false); err != nil {
			return err
		}
		if resp.ContentLength > limit {
			return fmt.Errorf("GET %s: %d bytes, more than the %d expected: %w", p, resp.ContentLength, limit, pipeline.ErrRemoteTooLarge)
		}
		started()
		var err error
		n, err = io.Copy(w, io.LimitReader(body, limit+1))
		switch {
		case err != nil:
			return fmt.Errorf("GET %s: after %d bytes: %w", p, n, err)
		case n > limit:
			return fmt.Errorf("GET %s: more than the %d bytes expected: %w", p, limit, pipeline.ErrRemoteTooLarge)
		case resp.ContentLength >= 0 && n != resp.ContentLength:
			return fmt.Errorf("GET %s: the body ended after %d of %d bytes: %w", p, n, resp.ContentLength, io.ErrUnexpectedEOF)
		}
		return nil
	})
	return n, err
}

// Has reports whether the cache holds kind/hash (a HEAD request).
func (c *Client) Has(ctx context.Context, kind pipeline.RemoteKind, hash string) (bool, error) {
	has := false
	err := c.request(ctx, http.MethodHead, kind, hash, 0, nil, func(resp *http.Response, _ io.Reader, _ func()) error {
		err := c.status(http.MethodHead, string(kind)+"/"+hash, resp, false)
		has = err == nil
		if errors.Is(err, pipeline.ErrRemoteNotFound) {
			return nil
		}
		return err
	})
	return has, err
}

// Put stores the size bytes open returns as kind/hash.
func (c *Client) Put(ctx context.Context, kind pipeline.RemoteKind, hash string, size int64, open func() (io.ReadCloser, error)) error {
	return c.request(ctx, http.MethodPut, kind, hash, size, open, func(resp *http.Response, body io.Reader, _ func()) error {
		io.Copy(io.Discard, io.LimitReader(body, 64<<10))
		return c.status(http.MethodPut, string(kind)+"/"+hash, resp, true)
	})
}

// status turns an answer that is not a success into an error: one
// wrapping pipeline.ErrRemoteNotFound for 404 (of a read), one wrapping
// pipeline.ErrRemoteRefused for an upload the server will not take.
func (c *Client) status(method, p string, resp *http.Response, put bool) error {
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	if code == http.StatusNotFound && !put {
		return fmt.Errorf("%s %s: %w", method, p, pipeline.ErrRemoteNotFound)
	}
	se := &StatusError{Method: method, Path: p, Code: code, Status: resp.Status}
	if se.Status == "" {
		se.Status = strconv.Itoa(code)
	}
	refused := false
	switch {
	case code >= 300 && code < 400:
		se.Hint = "kiln follows no redirects; point the URL at the cache itself"
		if loc := resp.Header.Get("Location"); loc != "" {
			se.Hint += fmt.Sprintf(" (it redirects to %.200q)", loc)
		}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		se.Hint = "check the credentials: KILN_REMOTE_CACHE_TOKEN, KILN_REMOTE_CACHE_USER and KILN_REMOTE_CACHE_PASSWORD, or ~/.netrc"
		if put {
			se.Hint += ", or make this a read-only cache (remote_cache: {url: ..., upload: false}, or KILN_REMOTE_CACHE_UPLOAD=false)"
		}
		refused = put
	case put && code == http.StatusBadRequest && p[:2] == "ac":
		se.Hint = "kiln's action-cache entries are JSON, not Bazel ActionResult protobufs: run bazel-remote with --disable_http_ac_validation"
		refused = true
	case put && (code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented):
		se.Hint = "the server does not accept PUT: with nginx, add dav_methods PUT; and create_full_put_path on;"
		refused = true
	case put && code == http.StatusRequestEntityTooLarge:
		se.Hint = "the server refuses a blob this large: with nginx, set client_max_body_size 0;"
	}
	if refused {
		return fmt.Errorf("%w: %w", pipeline.ErrRemoteRefused, se)
	}
	return se
}
