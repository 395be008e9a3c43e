package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/pipeline/remote/remotetest"
)

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func newClient(t *testing.T, url string, timeout time.Duration) *Client {
	t.Helper()
	c, warnings, err := New(Settings{URL: url, Upload: true, Timeout: timeout, Where: "test"}, Credentials{Netrc: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	t.Cleanup(c.Close)
	return c
}

func opener(data []byte) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
}

// TestClientNginx: the protocol against a real nginx with WebDAV PUT.
func TestClientNginx(t *testing.T) {
	ng := remotetest.StartNginx(t)
	c := newClient(t, ng.URL+"/", DefaultTimeout)
	ctx := context.Background()
	blob := bytes.Repeat([]byte("kiln "), 10000)
	h := sha(blob)
	if has, err := c.Has(ctx, pipeline.RemoteCAS, h); err != nil || has {
		t.Fatalf("Has before Put = %v, %v; want false, nil", has, err)
	}
	var buf bytes.Buffer
	if _, err := c.Get(ctx, pipeline.RemoteCAS, h, 1<<20, &buf); !errors.Is(err, pipeline.ErrRemoteNotFound) {
		t.Fatalf("Get before Put: %v; want ErrRemoteNotFound", err)
	}
	if err := c.Put(ctx, pipeline.RemoteCAS, h, int64(len(blob)), opener(blob)); err != nil {
		t.Fatal(err)
	}
	// Again: nginx answers 204 for an overwrite.
	if err := c.Put(ctx, pipeline.RemoteCAS, h, int64(len(blob)), opener(blob)); err != nil {
		t.Fatal(err)
	}
	if has, err := c.Has(ctx, pipeline.RemoteCAS, h); err != nil || !has {
		t.Fatalf("Has after Put = %v, %v; want true, nil", has, err)
	}
	n, err := c.Get(ctx, pipeline.RemoteCAS, h, int64(len(blob)), &buf)
	if err != nil || n != int64(len(blob)) || !bytes.Equal(buf.Bytes(), blob) {
		t.Fatalf("Get = %d bytes, %v; want the blob back", n, err)
	}
	if _, err := c.Get(ctx, pipeline.RemoteCAS, h, int64(len(blob))-1, io.Discard); !errors.Is(err, pipeline.ErrRemoteTooLarge) {
		t.Fatalf("Get with a smaller limit: %v; want ErrRemoteTooLarge", err)
	}
	if err := c.Put(ctx, pipeline.RemoteAC, strings.Repeat("ab", 32), 0, opener(nil)); err != nil {
		t.Fatalf("Put of an empty entry: %v", err)
	}
	want := []string{"ac/" + strings.Repeat("ab", 32), "cas/" + h}
	if got := ng.Files(t); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("nginx holds %v, want %v", got, want)
	}
}

// TestClientFaults: every fault is an error (never a hang or a success
// with wrong data), and the ones worth it are retried once.
func TestClientFaults(t *testing.T) {
	ng := remotetest.StartNginx(t)
	ctx := context.Background()
	blob := bytes.Repeat([]byte("0123456789"), 1000)
	h := sha(blob)
	if err := newClient(t, ng.URL, DefaultTimeout).Put(ctx, pipeline.RemoteCAS, h, int64(len(blob)), opener(blob)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		rule    remotetest.Rule
		timeout time.Duration
		want    string // in the error of Get; "" for success
		corrupt bool   // Get succeeds with other bytes (the pipeline's hash check catches it)
	}{
		{name: "503 once is retried", rule: remotetest.Rule{Fault: remotetest.Unavailable, Times: 1}},
		{name: "503", rule: remotetest.Rule{Fault: remotetest.Unavailable}, want: "503 Service Unavailable"},
		{name: "500", rule: remotetest.Rule{Fault: remotetest.ServerError}, want: "500 Internal Server Error"},
		{name: "reset once is retried", rule: remotetest.Rule{Fault: remotetest.Reset, Times: 1}},
		{name: "reset", rule: remotetest.Rule{Fault: remotetest.Reset}, want: "GET cas/"},
		{name: "truncated", rule: remotetest.Rule{Fault: remotetest.Truncate}, want: "unexpected EOF"},
		{name: "timeout", rule: remotetest.Rule{Fault: remotetest.Hang}, timeout: 50 * time.Millisecond, want: "no answer for 50ms"},
		{name: "forbidden", rule: remotetest.Rule{Fault: remotetest.Forbidden}, want: "check the credentials"},
		{name: "wrong bytes", rule: remotetest.Rule{Fault: remotetest.Corrupt}, corrupt: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			px := remotetest.NewProxy(t, ng.URL)
			px.Set(tc.rule)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = DefaultTimeout
			}
			c := newClient(t, px.URL, timeout)
			var buf bytes.Buffer
			_, err := c.Get(ctx, pipeline.RemoteCAS, h, int64(len(blob)), &buf)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Get: %v; want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Get: %v; want an error with %q", err, tc.want)
			case tc.want == "" && !tc.corrupt && !bytes.Equal(buf.Bytes(), blob):
				t.Fatalf("Get returned other bytes")
			case tc.corrupt && bytes.Equal(buf.Bytes(), blob):
				t.Fatalf("the proxy did not corrupt the body")
			}
		})
	}
}

// TestClientUploadRefusals: answers that mean uploads will never work
// wrap ErrRemoteRefused and say what to do.
func TestClientUploadRefusals(t *testing.T) {
	cases := []struct {
		code int
		kind pipeline.RemoteKind
		want string
	}{
		{http.StatusBadRequest, pipeline.RemoteAC, "--disable_http_ac_validation"},
		{http.StatusForbidden, pipeline.RemoteCAS, "upload: false"},
		{http.StatusUnauthorized, pipeline.RemoteAC, "KILN_REMOTE_CACHE_TOKEN"},
		{http.StatusMethodNotAllowed, pipeline.RemoteCAS, "dav_methods PUT"},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(tc.code)
		}))
		c := newClient(t, srv.URL, DefaultTimeout)
		err := c.Put(context.Background(), tc.kind, strings.Repeat("0", 64), 3, opener([]byte("abc")))
		if !errors.Is(err, pipeline.ErrRemoteRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("PUT answered %d: %v; want ErrRemoteRefused with %q", tc.code, err, tc.want)
		}
		srv.Close()
	}
}

// TestClientPutStall: an upload the server stops reading is given up
// after the timeout, not waited for.
func TestClientPutStall(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // never reads the body
	}))
	defer srv.Close()
	defer close(release)
	c := newClient(t, srv.URL, 50*time.Millisecond)
	big := bytes.Repeat([]byte{1}, 64<<20)
	err := c.Put(context.Background(), pipeline.RemoteCAS, sha(big), int64(len(big)), opener(big))
	if err == nil || !strings.Contains(err.Error(), "50ms") {
		t.Fatalf("Put to a server that does not read: %v; want a timeout", err)
	}
}

// TestCredentials: what is sent where.
func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	netrc := filepath.Join(dir, "netrc")
	os.WriteFile(netrc, []byte("machine other.example login x password y\n"+
		"macdef init\ncd /pub\nmachine 127.0.0.1 login evil password evil\n\n"+
		"machine 127.0.0.1\n  login \"alice\" password \"s3 cr\\\"et\"\ndefault login any password any\n"), 0o600)
	var mu sync.Mutex
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Get("Authorization")
		mu.Unlock()
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	basic := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	cases := []struct {
		name         string
		env          map[string]string
		netrc        string
		fromCheckout bool
		want         string
		warn         string
	}{
		{name: "nothing", netrc: filepath.Join(dir, "none")},
		{name: "bearer", env: map[string]string{EnvToken: "tok"}, want: "Bearer tok"},
		{name: "basic", env: map[string]string{EnvUser: "u", EnvPassword: "p"}, want: basic("u", "p")},
		{name: "netrc", netrc: netrc, want: basic("alice", `s3 cr"et`)},
		{name: "env wins over netrc", env: map[string]string{EnvToken: "tok"}, netrc: netrc, want: "Bearer tok"},
		{name: "kiln.yaml URL gets no env credentials", env: map[string]string{EnvToken: "tok"}, netrc: filepath.Join(dir, "none"),
			fromCheckout: true, warn: "only to a cache named by --remote-cache"},
		{name: "kiln.yaml URL gets netrc credentials", env: map[string]string{EnvToken: "tok"}, netrc: netrc,
			fromCheckout: true, want: basic("alice", `s3 cr"et`), warn: "only to a cache named by --remote-cache"},
		{name: "NETRC variable", env: map[string]string{"NETRC": netrc}, want: basic("alice", `s3 cr"et`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			c, warnings, err := New(Settings{URL: srv.URL, FromCheckout: tc.fromCheckout, Where: "kiln.yaml:3:15"}, Credentials{Getenv: getenv, Netrc: tc.netrc})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Has(context.Background(), pipeline.RemoteAC, strings.Repeat("0", 64))
			mu.Lock()
			defer mu.Unlock()
			if got != tc.want {
				t.Errorf("Authorization %q, want %q", got, tc.want)
			}
			if w := strings.Join(warnings, "\n"); (tc.warn == "") != (w == "") || !strings.Contains(w, tc.warn) {
				t.Errorf("warnings %q, want %q", w, tc.warn)
			}
		})
	}
	if _, _, err := New(Settings{URL: srv.URL}, Credentials{Getenv: func(k string) string { return map[string]string{EnvToken: "a", EnvUser: "b"}[k] }}); err == nil {
		t.Error("a token and a user at once: no error")
	}
}

// TestNoRedirects: a redirect is not followed (it could carry the
// credentials elsewhere); it is a fault that names it.
func TestNoRedirects(t *testing.T) {
	var hits int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, DefaultTimeout)
	_, err := c.Get(context.Background(), pipeline.RemoteAC, strings.Repeat("0", 64), 100, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "follows no redirects") || hits != 0 {
		t.Fatalf("Get through a redirect: %v, %d requests to the target; want an error and none", err, hits)
	}
}

func TestCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer srv.Close()
	ctx := context.Background()
	// Without the CA: the system roots do not know the test server.
	c := newClient(t, srv.URL, DefaultTimeout)
	if _, err := c.Has(ctx, pipeline.RemoteAC, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Has without the CA file: %v; want a certificate error", err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	writePEM(t, ca, srv.Certificate().Raw)
	c2, _, err := New(Settings{URL: srv.URL, CAFile: ca, Where: "test"}, Credentials{Netrc: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	if has, err := c2.Has(ctx, pipeline.RemoteAC, strings.Repeat("0", 64)); err != nil || has {
		t.Fatalf("Has with the CA file = %v, %v; want false, nil", has, err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	for _, p := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		if _, _, err := New(Settings{URL: srv.URL, CAFile: p, Where: "kiln.yaml:4:3"}, Credentials{}); err == nil || !strings.Contains(err.Error(), "kiln.yaml:4:3") {
			t.Errorf("CA file %s: %v; want an error at kiln.yaml:4:3", filepath.Base(p), err)
		}
	}
}

func writePEM(t *testing.T, p string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
