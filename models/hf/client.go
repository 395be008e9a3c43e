package hf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub used when neither Options.Endpoint nor
// HF_ENDPOINT names another (a mirror or a self-hosted Hub).
const DefaultEndpoint = "https://huggingface.co"

// Defaults for Options' zero values. They follow huggingface_hub: five
// retries, waits doubling from one second up to eight.
const (
	DefaultRetries       = 5
	DefaultRetryDelay    = time.Second
	DefaultMaxRetryDelay = 8 * time.Second
	DefaultMaxRetryAfter = 5 * time.Minute
	DefaultStallTimeout  = time.Minute
)

// Options configure a Client. The zero value talks to DefaultEndpoint
// without a token, reads no environment and uses http.DefaultClient.
type Options struct {
	// HTTPClient sends the requests; nil means http.DefaultClient. The
	// Client follows redirects itself (so it can decide where the token
	// goes) and never changes HTTPClient.
	HTTPClient *http.Client
	// Endpoint is the Hub's base URL; "" means HF_ENDPOINT from LookupEnv,
	// else DefaultEndpoint. A trailing "/" is dropped.
	Endpoint string
	// Token is a Hub access token sent as "Authorization: Bearer"; ""
	// means the token huggingface_hub would use: HF_TOKEN, else
	// HUGGING_FACE_HUB_TOKEN, else the token file ($HF_TOKEN_PATH, else
	// $HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token, else
	// ~/.cache/huggingface/token), none of them when
	// HF_HUB_DISABLE_IMPLICIT_TOKEN is true. The token is sent only to
	// the endpoint's scheme and host, never to a CDN a download is
	// redirected to.
	Token string
	// TokenFrom names where Token came from, such as "KILN_HF_TOKEN", so
	// an access error can say which token was sent; "" means "the token
	// kiln was given".
	TokenFrom string
	// LookupEnv reads the environment (pass os.LookupEnv); nil reads
	// nothing, so the defaults above apply and no token file is read.
	LookupEnv func(string) (string, bool)
	// UserAgent is the product sent first in User-Agent, such as
	// "kiln/1.4.0"; "" means "kiln/unknown". The Go version and
	// HF_HUB_USER_AGENT_ORIGIN are appended in huggingface_hub's
	// "name/version; name/version" style.
	UserAgent string
	// Retries is how many more times a request or a download is tried
	// after a transient failure (a lost connection, a stalled or
	// truncated transfer, HTTP 408, 429 or 5xx); 0 means DefaultRetries,
	// negative means none.
	Retries int
	// RetryDelay is the wait before the first retry, doubled for each
	// further one up to MaxRetryDelay; 0 means DefaultRetryDelay,
	// negative means no wait. A Retry-After the server sends replaces it.
	RetryDelay time.Duration
	// MaxRetryDelay caps the doubling waits; 0 means DefaultMaxRetryDelay.
	MaxRetryDelay time.Duration
	// MaxRetryAfter is the longest Retry-After the Client waits for; a
	// server asking for more makes the call fail at once with an error
	// saying when to try again. 0 means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// StallTimeout abandons (and retries) a transfer that receives no
	// byte for this long; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Sleep waits between retries; nil waits on a timer. It must return
	// ctx's error when ctx ends first. Tests inject one that records the
	// waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now tells the time, for Retry-After given as an HTTP date; nil
	// means time.Now.
	Now func() time.Time
	// Log receives a debug line per request and a warning per retry; nil
	// discards them.
	Log *slog.Logger
}

// Client talks to a Hugging Face Hub: it resolves references to a commit
// and a file list (Resolve) and downloads files pinned to that commit
// (Download). It is safe for concurrent use; make one with New.
type Client struct {
	hc       *http.Client // the caller's client with redirects left to us
	endpoint *url.URL     // no trailing slash in Path
	token    string
	// tokenFrom says where the token came from, or why none is sent,
	// for error messages; it never contains the token.
	tokenFrom string
	ua        string

	retries       int
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	maxRetryAfter time.Duration
	stall         time.Duration
	sleep         func(context.Context, time.Duration) error
	now           func() time.Time
	log           *slog.Logger
}

// New makes a Client from opts (see Options for the defaults). It fails
// when the endpoint is not an http(s) URL, when HF_HUB_OFFLINE (or
// TRANSFORMERS_OFFLINE) asks for no Hub access, or when a token file
// exists but cannot be read.
func New(opts Options) (*Client, error) {
	env := opts.LookupEnv
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	getenv := func(k string) string { v, _ := env(k); return v }

	for _, k := range []string{"HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} {
		if isTrue(getenv(k)) {
			return nil, fmt.Errorf("%s is set, so the Hugging Face Hub may not be contacted: unset it to pull models, or use a model folder already in the project", k)
		}
	}

	raw, from := opts.Endpoint, "Options.Endpoint"
	if raw == "" {
		raw, from = getenv("HF_ENDPOINT"), "HF_ENDPOINT"
	}
	if raw == "" {
		raw, from = DefaultEndpoint, ""
	}
	ep, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (ep.Scheme != "http" && ep.Scheme != "https") || ep.Host == "" || ep.RawQuery != "" || ep.Fragment != "" || ep.User != nil {
		return nil, fmt.Errorf("%s=%q is not a Hub URL: give an http(s) URL without query, fragment or user such as %s", from, raw, DefaultEndpoint)
	}

	c := &Client{
		endpoint:      ep,
		retries:       opts.Retries,
		retryDelay:    opts.RetryDelay,
		maxRetryDelay: opts.MaxRetryDelay,
		maxRetryAfter: opts.MaxRetryAfter,
		stall:         opts.StallTimeout,
		sleep:         opts.Sleep,
		now:           opts.Now,
		log:           opts.Log,
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	switch {
	case c.retryDelay == 0:
		c.retryDelay = DefaultRetryDelay
	case c.retryDelay < 0:
		c.retryDelay = 0
	}
	if c.maxRetryDelay <= 0 {
		c.maxRetryDelay = DefaultMaxRetryDelay
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	if c.stall <= 0 {
		c.stall = DefaultStallTimeout
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}

	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	cp := *hc
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &cp

	product := opts.UserAgent
	if product == "" {
		product = "kiln/unknown"
	}
	c.ua = product + "; go/" + runtime.Version()
	if o := getenv("HF_HUB_USER_AGENT_ORIGIN"); o != "" {
		c.ua += "; origin/" + o
	}

	c.token, c.tokenFrom, err = findToken(opts.Token, opts.TokenFrom, getenv)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Endpoint returns the Hub's base URL the Client talks to, for messages
// and for recording where a model came from.
func (c *Client) Endpoint() string { return c.endpoint.String() }

// findToken picks the token to send the way huggingface_hub's
// get_token_to_send does for an implicit token, and says where it came
// from.
func findToken(explicit, explicitFrom string, getenv func(string) string) (token, from string, err error) {
	if t := cleanToken(explicit); t != "" {
		if explicitFrom != "" {
			return t, "the token from " + explicitFrom, nil
		}
		return t, "the token kiln was given", nil
	}
	if isTrue(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		return "", "no token was sent because HF_HUB_DISABLE_IMPLICIT_TOKEN is set", nil
	}
	for _, k := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if t := cleanToken(getenv(k)); t != "" {
			return t, "the token from " + k, nil
		}
	}
	p := tokenPath(getenv)
	if p == "" {
		return "", "no token was sent: HF_TOKEN is not set", nil
	}
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "", "no token was sent: HF_TOKEN is not set and there is no token file " + p, nil
	case err != nil:
		return "", "", fmt.Errorf("read the Hugging Face token file: %w; fix its permissions, or set HF_TOKEN (or HF_HUB_DISABLE_IMPLICIT_TOKEN=1 to send no token)", err)
	}
	if t := cleanToken(string(b)); t != "" {
		return t, "the token from " + p, nil
	}
	return "", "no token was sent: HF_TOKEN is not set and the token file " + p + " is empty", nil
}

// tokenPath is huggingface_hub's HF_TOKEN_PATH: $HF_TOKEN_PATH, else
// $HF_HOME/token, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface, then
// ~/.cache/huggingface. It returns "" when no home folder is known.
func tokenPath(getenv func(string) string) string {
	if p := getenv("HF_TOKEN_PATH"); p != "" {
		return expandHome(p, getenv)
	}
	home := getenv("HF_HOME")
	if home == "" {
		cache := getenv("XDG_CACHE_HOME")
		if cache == "" {
			h := userHome(getenv)
			if h == "" {
				return ""
			}
			cache = filepath.Join(h, ".cache")
		}
		home = filepath.Join(cache, "huggingface")
	}
	home = expandHome(home, getenv)
	if home == "" || strings.HasPrefix(home, "~") {
		return ""
	}
	return filepath.Join(home, "token")
}

// expandHome replaces a leading "~/" with the user's home folder, as
// Python's os.path.expanduser does.
func expandHome(p string, getenv func(string) string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h := userHome(getenv); h != "" {
			return filepath.Join(h, p[1:])
		}
	}
	return p
}

func userHome(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return h
	}
	return getenv("USERPROFILE")
}

// cleanToken drops line breaks and surrounding spaces, as huggingface_hub's
// _clean_token does.
func cleanToken(t string) string {
	t = strings.ReplaceAll(t, "\r", "")
	t = strings.ReplaceAll(t, "\n", "")
	return strings.TrimSpace(t)
}

// isTrue is huggingface_hub's _is_true: 1, ON, YES or TRUE in any case.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
