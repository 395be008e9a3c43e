package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/kiln-dev/kiln/manifests"
)

// Source is a model ready to pull: where its files are and what they must
// be. Resolve makes one from a name or URL; callers may also build one.
type Source struct {
	// Name is the model's name, which names its folder.
	Name string
	// Description is one line for humans, possibly "".
	Description string
	// Kind is the architecture family, "" when unknown.
	Kind manifests.ModelKind
	// BaseURL is the http(s) folder the files are fetched from, ending
	// with "/"; file URLs are BaseURL + path.
	BaseURL string
	// Files are the files to fetch, with their sizes and hashes.
	Files []File
	// From says where the file list came from (a catalogue position or a
	// manifest URL), for messages.
	From string

	// hub, when set, downloads the files from the Hugging Face Hub (see
	// PullHF) instead of BaseURL.
	hub *hubSource
}

// describe says where the files come from, for the first progress line.
func (s *Source) describe(origin string) string {
	if s.hub != nil {
		return s.hub.describe()
	}
	return origin
}

// BearerFor returns a PullOptions.Authorize function that sends token as
// an "Authorization: Bearer" header to the given hosts only (for example a
// model hub's host for gated repositories), so a catalogue cannot send the
// token elsewhere. Go's HTTP client drops the header when a redirect leaves
// the host's domain.
func BearerFor(token string, hosts ...string) func(*http.Request) {
	return func(r *http.Request) {
		if token == "" {
			return
		}
		for _, h := range hosts {
			if strings.EqualFold(r.URL.Hostname(), h) {
				r.Header.Set("Authorization", "Bearer "+token)
				return
			}
		}
	}
}

// Resolve turns the argument of `kiln models pull` into a Source:
//
//   - NAME: the entry of opts.Catalog with that name;
//   - a URL ending in .yaml, .yml or .json (other than kiln-manifest.json):
//     a remote catalogue, and the model is its entry named by the URL's
//     fragment (…/models.catalog.yaml#sd-turbo) or by opts.Name, or its
//     only entry;
//   - any other http(s) URL: a model's base URL with kiln-manifest.json at
//     its root (a URL naming kiln-manifest.json itself is accepted too).
//
// Entries and base URLs without a file list have it read from
// kiln-manifest.json. Every path is checked (see the package
// documentation), so a hostile list cannot name files outside the model
// folder.
func Resolve(ctx context.Context, arg string, opts PullOptions) (*Source, error) {
	if arg == "" {
		return nil, errors.New("no model given; name a model of the catalogue or give a URL")
	}
	if !strings.Contains(arg, "://") {
		if !validName(arg) {
			return nil, fmt.Errorf("%q is neither a model name (letters, digits, \"_\", \".\", \"-\") nor an http(s) URL", arg)
		}
		if opts.Catalog == nil {
			return nil, fmt.Errorf("cannot pull %q: no model catalogue; create %s in the project (see `kiln models pull --help`) or pull a URL", arg, CatalogName)
		}
		e, err := opts.Catalog.Lookup(arg)
		if err != nil {
			return nil, err
		}
		return sourceFromEntry(ctx, e, opts)
	}

	u, err := url.Parse(arg)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid URL: %v", arg, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("cannot pull %s: only http and https URLs are supported", arg)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("cannot pull %s: the URL has no host", arg)
	}
	base := path.Base(u.Path)
	switch ext := strings.ToLower(path.Ext(base)); {
	case base == ManifestName:
		dir := *u
		dir.Fragment, dir.RawFragment = "", ""
		dir.Path = strings.TrimSuffix(u.Path, ManifestName)
		dir.RawPath = ""
		return sourceFromBase(ctx, &dir, opts.Name, opts)
	case ext == ".yaml" || ext == ".yml" || ext == ".json":
		return sourceFromRemoteCatalog(ctx, u, opts)
	default:
		b, err := baseURL(arg, nil)
		if err != nil {
			return nil, err
		}
		return sourceFromBase(ctx, b, opts.Name, opts)
	}
}

func sourceFromRemoteCatalog(ctx context.Context, u *url.URL, opts PullOptions) (*Source, error) {
	name := u.Fragment
	if name == "" {
		name = opts.Name
	}
	cu := *u
	cu.Fragment, cu.RawFragment = "", ""
	data, err := fetchSmall(ctx, &cu, opts, "model catalogue")
	if err != nil {
		return nil, err
	}
	cat, err := ParseCatalog(data, cu.String(), &cu)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if len(cat.Models) != 1 {
			return nil, fmt.Errorf("the catalogue %s lists %d models (%s): add #NAME to the URL to choose one", cu.String(), len(cat.Models), strings.Join(cat.Names(), ", "))
		}
		name = cat.Models[0].Name
	}
	e, err := cat.Lookup(name)
	if err != nil {
		return nil, err
	}
	return sourceFromEntry(ctx, e, opts)
}

func sourceFromEntry(ctx context.Context, e *CatalogEntry, opts PullOptions) (*Source, error) {
	if len(e.Files) > 0 {
		files := append([]File(nil), e.Files...)
		return &Source{Name: e.Name, Description: e.Description, Kind: e.Kind, BaseURL: e.URL, Files: files, From: e.Pos}, nil
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: model %q: %w", e.Pos, e.Name, err)
	}
	src, err := sourceFromBase(ctx, u, e.Name, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: model %q lists no files, so kiln read them from its url: %w", e.Pos, e.Name, err)
	}
	// The catalogue speaks for the entry; the manifest only for files.
	src.Name = e.Name
	if e.Description != "" {
		src.Description = e.Description
	}
	if e.Kind != "" {
		src.Kind = e.Kind
	}
	return src, nil
}

// sourceFromBase reads base + kiln-manifest.json.
func sourceFromBase(ctx context.Context, base *url.URL, name string, opts PullOptions) (*Source, error) {
	mu := base.JoinPath(ManifestName)
	data, err := fetchSmall(ctx, mu, opts, ManifestName)
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(data, mu.String())
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = m.Name
	}
	if name == "" {
		name = nameFromURL(base)
		if !validName(name) {
			return nil, fmt.Errorf("cannot tell the model's name from %s (its manifest has no \"name\"); give one with --name", base)
		}
	}
	if !validName(name) {
		return nil, fmt.Errorf("model name %q from %s is not valid; give one with --name (letters, digits, \"_\", \".\", \"-\")", name, mu)
	}
	return &Source{Name: name, Description: m.Description, Kind: m.Kind, BaseURL: base.String(), Files: m.Files, From: mu.String()}, nil
}

// nameFromURL guesses a model name from a base URL: the repository name of
// a ".../ORG/REPO/resolve/REV/" URL, else the last path element.
func nameFromURL(u *url.URL) string {
	var parts []string
	for _, p := range strings.Split(u.Path, "/") {
		if p != "" {
			parts = append(parts, p)
		}
	}
	for i := len(parts) - 2; i >= 1; i-- {
		if parts[i] == "resolve" {
			return parts[i-1]
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return parts[len(parts)-1]
}

// fetchSmall GETs a catalogue or manifest, refusing more than
// maxManifestBytes.
func fetchSmall(ctx context.Context, u *url.URL, opts PullOptions, what string) ([]byte, error) {
	limit := opts.StallTimeout
	if limit <= 0 {
		limit = DefaultStallTimeout
	}
	rctx, cancel := context.WithTimeoutCause(ctx, limit, errStalled)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch %s %s: %w", what, u, err)
	}
	if opts.Authorize != nil {
		opts.Authorize(req)
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(context.Cause(rctx), errStalled) {
			return fmt.Errorf("fetch %s %s: no complete answer within %s; check the URL and your network connection", what, u, limit)
		}
		return fmt.Errorf("fetch %s %s: %w; check the URL and your network connection", what, u, err)
	}
	opts.log().Debug("fetch", "what", what, "url", u.String())
	resp, err := opts.client().Do(req)
	if err != nil {
		return nil, fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(what, u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, fail(err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("fetch %s %s: larger than %d MiB; that is not a %s", what, u, maxManifestBytes>>20, what)
	}
	return data, nil
}

// statusError explains an unexpected HTTP status.
func statusError(what string, u *url.URL, code int) error {
	status := fmt.Sprintf("HTTP %d %s", code, http.StatusText(code))
	switch {
	case code == http.StatusNotFound:
		return fmt.Errorf("fetch %s %s: %s: check the catalogue's url and revision, or whether the server publishes this file", what, u, status)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("fetch %s %s: %s: the repository may be gated or private; accept its terms on the site and give kiln an access token", what, u, status)
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return &retryableError{fmt.Errorf("fetch %s %s: %s: the server is busy or failing; try again later", what, u, status)}
	}
	return fmt.Errorf("fetch %s %s: %s", what, u, status)
}

// retryableError marks a transfer failure worth another attempt.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r *retryableError
	return errors.As(err, &r)
}
