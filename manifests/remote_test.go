package manifests

import (
	"fmt"
	"strings"
	"testing"
)

func TestRemoteCacheConfig(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       string // the decoded block, or "nil"
	}{
		{"absent", "", "nil"},
		{"URL", "remote_cache: https://cache.example.com/kiln/\n",
			"https://cache.example.com/kiln upload=true ca= timeout=30s at 2:15"},
		{"block", "remote_cache:\n  url: http://127.0.0.1:8080\n  upload: false\n  ca_file: certs/ca.pem\n  timeout: 2m\n",
			"http://127.0.0.1:8080 upload=false ca=certs/ca.pem timeout=2m0s at 3:8"},
		{"absolute CA file", "remote_cache: {url: 'https://c/', ca_file: /etc/ssl/studio.pem}\n",
			"https://c upload=true ca=/etc/ssl/studio.pem timeout=30s at 2:21"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, map[string]string{ConfigFile: "version: 1\n" + tc.yaml})
			rc := p.Config.RemoteCache
			got := "nil"
			if rc != nil {
				got = fmt.Sprintf("%s upload=%v ca=%s timeout=%s at %d:%d", rc.URL, rc.Upload, rc.CAFile, rc.Timeout, rc.URLPos.Line, rc.URLPos.Col)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	rc := &RemoteCache{CAFile: "certs/ca.pem"}
	if got := rc.CAPath("/proj"); got != "/proj/certs/ca.pem" {
		t.Errorf("CAPath = %s", got)
	}
}

func TestRemoteCacheErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"scheme", "remote_cache: ftp://cache/kiln\n", `kiln.yaml:2:15: remote_cache: expected an http:// or https:// URL, got "ftp://cache/kiln"`},
		{"no scheme", "remote_cache: cache.example.com\n", `kiln.yaml:2:15: remote_cache: expected an http:// or https:// URL`},
		{"credentials", "remote_cache: 'https://me:secret@cache/kiln'\n", `kiln.yaml:2:15: remote_cache: URL "https://me:xxxxx@cache/kiln" holds credentials (kiln.yaml comes with the project's files`},
		{"query", "remote_cache: 'https://cache/kiln?token=x'\n", `has a query or a fragment`},
		{"no host", "remote_cache: 'https:///kiln'\n", `names no host`},
		{"empty", "remote_cache: ''\n", `kiln.yaml:2:15: remote_cache: must not be empty`},
		{"number", "remote_cache: 8080\n", `expected a URL or {url, upload, ca_file, timeout}`},
		{"no url", "remote_cache: {upload: false}\n", `kiln.yaml:2:15: remote_cache: missing required field "url"`},
		{"bad url in block", "remote_cache: {url: 'gopher://x'}\n", `kiln.yaml:2:21: remote_cache.url: expected an http://`},
		{"unknown field", "remote_cache: {url: 'https://c', token: abc}\n", `remote_cache.token: unknown field`},
		{"upload not bool", "remote_cache: {url: 'https://c', upload: sometimes}\n", `remote_cache.upload: expected true or false`},
		{"bad timeout", "remote_cache: {url: 'https://c', timeout: soon}\n", `remote_cache.timeout: expected a duration like "30s" or "2m", got "soon"`},
		{"timeout too long", "remote_cache: {url: 'https://c', timeout: 1h}\n", `remote_cache.timeout: must be between 10ms and 10m0s, got 1h`},
		{"empty CA file", "remote_cache: {url: 'https://c', ca_file: ''}\n", `remote_cache.ca_file: must not be empty`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lines := errLines(t, map[string]string{ConfigFile: "version: 1\n" + tc.yaml})
			got := strings.Join(lines, "\n")
			if !strings.Contains(got, tc.want) {
				t.Errorf("errors:\n%s\nwant one with:\n%s", got, tc.want)
			}
		})
	}
}

// TestRemoteCacheSchema: editors accept and refuse what kiln does.
func TestRemoteCacheSchema(t *testing.T) {
	cv := newValidator(t, ConfigSchema())
	for _, doc := range []string{
		"version: 1\nremote_cache: https://cache.example.com/kiln\n",
		"version: 1\nremote_cache: {url: 'http://127.0.0.1:9090/c', upload: false, ca_file: ca.pem, timeout: 5s}\n",
	} {
		if errs := cv.check(t, doc); len(errs) > 0 {
			t.Errorf("schema rejects %q: %v", doc, errs)
		}
	}
	for _, doc := range []string{
		"version: 1\nremote_cache: 8080\n",
		"version: 1\nremote_cache: ftp://x\n",
		"version: 1\nremote_cache: {upload: false}\n",
		"version: 1\nremote_cache: {url: 'https://c', password: x}\n",
		"version: 1\nremote_cache: {url: 'https://c', timeout: soon}\n",
	} {
		if errs := cv.check(t, doc); len(errs) == 0 {
			t.Errorf("schema accepts %q", doc)
		}
	}
}
