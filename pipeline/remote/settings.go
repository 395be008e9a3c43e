package remote

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The environment variables kiln reads for the remote cache. They belong
// to the machine or the CI job, not to the project: only they may carry
// credentials, and a URL given by them gets those credentials.
const (
	// EnvURL chooses the remote cache (a URL, or "off"); it replaces
	// kiln.yaml's remote_cache block.
	EnvURL = "KILN_REMOTE_CACHE"
	// EnvUpload is "true" or "false": whether results are uploaded.
	EnvUpload = "KILN_REMOTE_CACHE_UPLOAD"
	// EnvCAFile is a PEM file of CA certificates to trust besides the
	// system's, for a URL from EnvURL or --remote-cache.
	EnvCAFile = "KILN_REMOTE_CACHE_CA_FILE"
	// EnvToken is a bearer token (Authorization: Bearer).
	EnvToken = "KILN_REMOTE_CACHE_TOKEN"
	// EnvUser and EnvPassword are HTTP basic-auth credentials.
	EnvUser     = "KILN_REMOTE_CACHE_USER"
	EnvPassword = "KILN_REMOTE_CACHE_PASSWORD"
)

// Settings are the remote cache kiln build uses.
type Settings struct {
	// URL is the cache's base URL: entries are {URL}/ac/{sha256} and
	// {URL}/cas/{sha256}.
	URL string
	// Upload sends results to the cache (read-write); false only reads.
	Upload bool
	// CAFile is a PEM file of CA certificates to trust besides the
	// system's; "" for the system's alone.
	CAFile string
	// Timeout is how long a request may make no progress.
	// Default: DefaultTimeout.
	Timeout time.Duration
	// FromCheckout is set when the settings come from kiln.yaml, which
	// travels with the project's files: credentials from the
	// environment are then not sent, so a checkout cannot send them to
	// a server of its choosing (see Credentials).
	FromCheckout bool
	// Where says where the settings come from, for messages:
	// "--remote-cache", "KILN_REMOTE_CACHE" or "kiln.yaml:7:15".
	Where string
	// CAWhere is where CAFile is set, when not Where.
	CAWhere string
}

func (s Settings) caWhere() string {
	if s.CAWhere != "" {
		return s.CAWhere
	}
	return s.Where
}

// Mode names the settings' mode: "read-write" or "read-only".
func (s Settings) Mode() string {
	if s.Upload {
		return "read-write"
	}
	return "read-only"
}

// CheckFlag checks the value of --remote-cache ("off" or a URL), so a
// bad one is a usage error before anything loads.
func CheckFlag(v string) error {
	if v == "" || v == "off" {
		return nil
	}
	if _, err := ParseURL(v); err != nil {
		return fmt.Errorf("--remote-cache %q: %w", v, err)
	}
	return nil
}

// Choose picks the remote cache, first of: the --remote-cache flag (flag,
// "" when not given), the KILN_REMOTE_CACHE variable, kiln.yaml's
// remote_cache block (checkout, nil when absent). "off" in the flag or
// the variable turns the cache off whatever comes after. A URL from the
// flag or the variable replaces the kiln.yaml block whole: it is
// read-write unless KILN_REMOTE_CACHE_UPLOAD=false, and trusts the CA
// file of KILN_REMOTE_CACHE_CA_FILE (relative paths from dir, the
// working folder), so nothing the checkout says applies to it.
// KILN_REMOTE_CACHE_UPLOAD also overrides kiln.yaml's upload. Choose
// returns nil when no remote cache is to be used.
func Choose(flag string, getenv func(string) string, checkout *Settings, dir string) (*Settings, error) {
	var s Settings
	env := strings.TrimSpace(getenv(EnvURL))
	switch {
	case flag == "off":
		return nil, nil
	case flag != "":
		s = Settings{URL: flag, Upload: true, Where: "--remote-cache"}
	case env == "off":
		return nil, nil
	case env != "":
		s = Settings{URL: env, Upload: true, Where: EnvURL}
	case checkout != nil:
		s = *checkout
		s.FromCheckout = true
	default:
		return nil, nil
	}
	if !s.FromCheckout {
		if ca := getenv(EnvCAFile); ca != "" {
			if !filepath.IsAbs(ca) {
				ca = filepath.Join(dir, ca)
			}
			s.CAFile, s.CAWhere = ca, EnvCAFile
		}
	}
	if v := strings.TrimSpace(getenv(EnvUpload)); v != "" {
		up, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%q: write true or false", EnvUpload, v)
		}
		s.Upload = up
	}
	if _, err := ParseURL(s.URL); err != nil {
		return nil, fmt.Errorf("%s: remote cache URL %q: %w", s.Where, s.URL, err)
	}
	return &s, nil
}

// ParseURL checks a remote cache's base URL: http or https, a host, and
// neither credentials (they belong in the environment or ~/.netrc), a
// query nor a fragment. A trailing slash is dropped.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, errors.New("not a URL; write one like https://cache.example.com/kiln")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("use an http:// or https:// URL, e.g. https://cache.example.com/kiln")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("the URL names no host; write one like https://cache.example.com/kiln")
	case u.User != nil:
		return nil, fmt.Errorf("the URL holds credentials; remove them and set %s (or %s and %s), or put them in ~/.netrc", EnvToken, EnvUser, EnvPassword)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("the URL has a query or a fragment; give the cache's base URL alone")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}
