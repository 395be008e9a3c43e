package preview

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func mustDo(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewAddress(t *testing.T) {
	out := t.TempDir()
	tests := []struct {
		addr   string
		remote bool
		want   string // "" for success, else a substring of the error
	}{
		{"127.0.0.1:8080", false, ""},
		{"127.0.0.1:0", false, ""},
		{"127.0.0.2:0", false, ""},
		{"localhost:0", false, ""},
		{"[::1]:0", false, ""},
		{"", false, ""}, // DefaultAddr
		{"0.0.0.0:8080", false, "refusing to serve on 0.0.0.0:8080: the preview exposes your project's files; use 127.0.0.1 or pass --allow-remote"},
		{":8080", false, "refusing to serve on :8080 (every network interface): the preview exposes your project's files; use 127.0.0.1 or pass --allow-remote"},
		{"[::]:8080", false, "refusing to serve on [::]:8080"},
		{"192.168.1.20:8080", false, "refusing to serve on 192.168.1.20:8080"},
		{"example.com:80", false, "refusing to serve on example.com:80"},
		{"0.0.0.0:8080", true, ""},
		{"192.168.1.20:8080", true, ""},
		{"8080", false, "give host:port, such as 127.0.0.1:8080"},
		{"127.0.0.1:99999", false, "port \"99999\" is not a number from 0 to 65535"},
		{"127.0.0.1:http", false, "is not a number"},
	}
	for _, tt := range tests {
		_, err := New(Options{OutDir: out, Addr: tt.addr, AllowRemote: tt.remote})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("New(%q, remote=%v): %v", tt.addr, tt.remote, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("New(%q, remote=%v) error = %v, want one containing %q", tt.addr, tt.remote, err, tt.want)
		}
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without OutDir: no error")
	}
}

// evilSetup makes an output folder with ordinary files and every kind of
// trap, next to a secret file that must never be served.
func evilSetup(t *testing.T) (out string, secret string) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out")
	secret = "TOP SECRET project key"
	mustDo(t, os.MkdirAll(filepath.Join(out, "sub"), 0o755))
	mustDo(t, os.WriteFile(filepath.Join(dir, "secret.txt"), []byte(secret), 0o644))
	mustDo(t, os.MkdirAll(filepath.Join(dir, "private"), 0o755))
	mustDo(t, os.WriteFile(filepath.Join(dir, "private", "key.txt"), []byte(secret), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(out, "a.png"), []byte("PNG bytes"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(out, "sub", "b.json"), []byte(`{"b":1}`), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(out, "page.html"), []byte(`<script>alert(1)</script>`), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(out, ".a.png.kiln-tmp-1"), []byte("partial"), 0o644))
	mustDo(t, os.WriteFile(filepath.Join(out, "100%.png"), []byte("percent"), 0o644))
	mustDo(t, os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(out, "link-file.png")))
	mustDo(t, os.Symlink("../secret.txt", filepath.Join(out, "rel-link.png")))
	mustDo(t, os.Symlink(filepath.Join(dir, "private"), filepath.Join(out, "link-dir")))
	mustDo(t, os.Symlink("a.png", filepath.Join(out, "inside-link.png")))
	return out, secret
}

// TestServeOutPaths sends path tricks straight to the handler (no client
// cleans them first) and checks each is refused without the secret.
func TestServeOutPaths(t *testing.T) {
	out, secret := evilSetup(t)
	s, err := New(Options{OutDir: out})
	mustDo(t, err)
	h := s.Handler()
	tests := []struct {
		method, target string
		code           int
		body           string // expected substring of the body for 200
		ctype          string
	}{
		{"GET", "/out/a.png", 200, "PNG bytes", "image/png"},
		{"HEAD", "/out/a.png", 200, "", "image/png"},
		{"GET", "/out/a.png?v=123-45", 200, "PNG bytes", "image/png"},
		{"GET", "/out/sub/b.json", 200, `{"b":1}`, "application/json"},
		{"GET", "/out/inside-link.png", 200, "PNG bytes", "image/png"},
		{"GET", "/out/page.html", 200, "alert", "text/html"}, // served, but sandboxed by CSP (checked below)
		{"GET", "/out/missing.png", 404, "", ""},
		{"GET", "/out/sub", 404, "", ""},
		{"GET", "/out/sub/", 400, "", ""},
		{"GET", "/out/", 400, "", ""},
		{"GET", "/out", 404, "", ""},
		{"GET", "/out/../secret.txt", 400, "", ""},
		{"GET", "/out/sub/../../secret.txt", 400, "", ""},
		{"GET", "/out/%2e%2e/secret.txt", 400, "", ""},
		{"GET", "/out/%2E%2E/secret.txt", 400, "", ""},
		{"GET", "/out/.%2e/secret.txt", 400, "", ""},
		{"GET", "/out/..%2fsecret.txt", 400, "", ""},
		{"GET", "/out/..%2Fsecret.txt", 400, "", ""},
		{"GET", "/out/sub%2f..%2f..%2fsecret.txt", 400, "", ""},
		{"GET", "/out/%252e%252e/secret.txt", 400, "", ""},
		{"GET", `/out/..\secret.txt`, 400, "", ""},
		{"GET", "/out/..%5csecret.txt", 400, "", ""},
		{"GET", "/out/%5c..%5csecret.txt", 400, "", ""},
		{"GET", "//out/a.png", 400, "", ""},
		{"GET", "/out//a.png", 400, "", ""},
		{"GET", "/out/./a.png", 400, "", ""},
		{"GET", "/out/%2fetc%2fpasswd", 400, "", ""},
		{"GET", "/out//etc/passwd", 400, "", ""},
		{"GET", "/out/C:/Windows/win.ini", 400, "", ""},
		{"GET", "/out/a.png%00.txt", 400, "", ""},
		{"GET", "/out/.a.png.kiln-tmp-1", 400, "", ""},
		{"GET", "/out/link-file.png", 400, "", ""},
		{"GET", "/out/rel-link.png", 400, "", ""},
		{"GET", "/out/link-dir/key.txt", 400, "", ""},
		{"GET", "/out/100%25.png", 400, "", ""}, // "%" in names is refused with the other encodings
		{"GET", "/../secret.txt", 400, "", ""},
		{"GET", "/%2e%2e/secret.txt", 400, "", ""},
		{"GET", "/_kiln/../../secret.txt", 400, "", ""},
		{"GET", "/_kiln/index.html", 404, "", ""},
		{"GET", "/_kiln/.hidden", 404, "", ""},
		{"GET", "/_kiln/app.js", 200, "EventSource", "text/javascript"},
		{"GET", "/_kiln/viewer.js", 200, "webgl2", "text/javascript"},
		{"GET", "/_kiln/style.css", 200, "checkerboard", "text/css"},
		{"GET", "/", 200, "<title>kiln preview</title>", "text/html"},
		{"GET", "/state", 200, `"assets":[]`, "application/json"},
		{"GET", "/secret.txt", 404, "", ""},
		{"GET", "/index.html", 404, "", ""},
		{"POST", "/out/a.png", 405, "", ""},
		{"PUT", "/out/a.png", 405, "", ""},
		{"DELETE", "/out/a.png", 405, "", ""},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.target, nil)
		req.RequestURI = tt.target
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != tt.code {
			t.Errorf("%s %s: status %d, want %d (body %q)", tt.method, tt.target, rec.Code, tt.code, body)
		}
		if strings.Contains(body, secret) {
			t.Errorf("%s %s: the secret leaked", tt.method, tt.target)
		}
		if tt.code == 200 {
			if !strings.Contains(body, tt.body) {
				t.Errorf("%s %s: body %q lacks %q", tt.method, tt.target, body, tt.body)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.target, ct, tt.ctype)
			}
			if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s %s: no nosniff header", tt.method, tt.target)
			}
		}
	}
	// Output files run no script in this origin, whatever they are.
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/out/page.html", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("output file CSP = %q, want a sandbox", csp)
	}
}

// TestHostHeader checks the DNS-rebinding guard: a page on another site
// that resolves its name to 127.0.0.1 sends its own Host and is refused.
func TestHostHeader(t *testing.T) {
	out, _ := evilSetup(t)
	tests := []struct {
		host   string
		remote bool
		code   int
	}{
		{"127.0.0.1:8080", false, 200},
		{"localhost:8080", false, 200},
		{"[::1]:8080", false, 200},
		{"localhost", false, 200},
		{"evil.example:8080", false, 421},
		{"attacker.test", false, 421},
		{"10.0.0.5:8080", false, 421},
		{"evil.example:8080", true, 200},
	}
	for _, tt := range tests {
		s, err := New(Options{OutDir: out, AllowRemote: tt.remote})
		mustDo(t, err)
		req := httptest.NewRequest("GET", "/out/a.png", nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.code {
			t.Errorf("Host %q (remote=%v): status %d, want %d", tt.host, tt.remote, rec.Code, tt.code)
		}
	}
}

// TestPageIsSelfContained checks that nothing on the page loads from
// the internet: no absolute URLs in the embedded files (the SVG
// namespace is a name, not a load), no @import, and a content policy that
// allows only this server.
func TestPageIsSelfContained(t *testing.T) {
	names, err := staticNames()
	mustDo(t, err)
	if len(names) < 4 {
		t.Fatalf("embedded files: %q", names)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	for _, n := range names {
		data, err := static.ReadFile("static/" + n)
		mustDo(t, err)
		text := strings.ReplaceAll(string(data), "http://www.w3.org/2000/svg", "")
		for _, m := range url.FindAllString(text, -1) {
			if strings.HasPrefix(m, "//") {
				continue // a comment in JS or CSS, not a URL
			}
			t.Errorf("%s refers to %q", n, m)
		}
		if strings.Contains(text, "@import") || strings.Contains(text, "@font-face") {
			t.Errorf("%s imports styles or fonts", n)
		}
	}
	s, err := New(Options{OutDir: t.TempDir()})
	mustDo(t, err)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080/", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "img-src 'self' blob: data:"} {
		if !strings.Contains(csp, want) {
			t.Errorf("page CSP %q lacks %q", csp, want)
		}
	}
}

// TestPublishVersions checks that Publish gives files without a version
// one that changes with the file, keeps given versions, and does not
// modify the caller's state.
func TestPublishVersions(t *testing.T) {
	out := t.TempDir()
	mustDo(t, os.WriteFile(filepath.Join(out, "a.png"), []byte("one"), 0o644))
	s, err := New(Options{OutDir: out})
	mustDo(t, err)
	st := State{Assets: []Asset{{ID: "a", Images: []File{{Path: "a.png"}, {Path: "b.png", Version: "sha-given"}}}}}
	get := func() State {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1:8080/state", nil))
		var got State
		mustDo(t, json.Unmarshal(rec.Body.Bytes(), &got))
		return got
	}
	s.Publish(st)
	first := get()
	v1 := first.Assets[0].Images[0].Version
	if v1 == "" || first.Assets[0].Images[1].Version != "sha-given" || first.Seq != 1 || first.Time.IsZero() {
		t.Fatalf("first state %+v", first)
	}
	if st.Assets[0].Images[0].Version != "" {
		t.Error("Publish modified the caller's state")
	}
	mustDo(t, os.WriteFile(filepath.Join(out, "a.png"), []byte("two, longer"), 0o644))
	s.Publish(st)
	second := get()
	if v2 := second.Assets[0].Images[0].Version; v2 == v1 || v2 == "" || second.Seq != 2 {
		t.Errorf("version after rewrite %q (was %q), seq %d", v2, v1, second.Seq)
	}
}

// sseEvent is one event read from a stream.
type sseEvent struct{ name, id, data string }

// readEvents parses a Server-Sent Events stream onto a channel.
func readEvents(r io.Reader) <-chan sseEvent {
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.data != "" {
					ch <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				ev.data += strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent, name string) sseEvent {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended while waiting for %q", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %q event within 10s", name)
		}
	}
}

// TestEvents reads the event stream over real HTTP: the current state on
// connecting, every published state, build status, and the end of the
// stream when the server closes.
func TestEvents(t *testing.T) {
	out := t.TempDir()
	s, err := New(Options{OutDir: out})
	mustDo(t, err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	s.Publish(State{Project: "p", OK: true, Summary: "first"})
	res, err := http.Get(srv.URL + "/events")
	mustDo(t, err)
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := readEvents(res.Body)
	ev := nextEvent(t, events, "state")
	var st State
	mustDo(t, json.Unmarshal([]byte(ev.data), &st))
	if st.Seq != 1 || st.Summary != "first" || ev.id != "1" {
		t.Fatalf("first event: id %q, state %+v", ev.id, st)
	}
	nextEvent(t, events, "status")

	s.Building([]string{"assets/a.kiln.yaml"})
	ev = nextEvent(t, events, "status")
	if ev.data != `{"building":true,"changed":["assets/a.kiln.yaml"]}` {
		t.Errorf("building status %s", ev.data)
	}

	s.Publish(State{Project: "p", OK: false, Summary: "second", Errors: []string{"a.kiln.yaml:1:1: bad"},
		Assets: []Asset{{ID: "late/arrival", Kind: "image", Status: StatusBuilt}}})
	ev = nextEvent(t, events, "state")
	mustDo(t, json.Unmarshal([]byte(ev.data), &st))
	if st.Seq != 2 || st.OK || len(st.Assets) != 1 || st.Assets[0].ID != "late/arrival" || ev.id != "2" {
		t.Errorf("second event: id %q, state %+v", ev.id, st)
	}
	if ev = nextEvent(t, events, "status"); ev.data != `{"building":false}` {
		t.Errorf("status after publish %s", ev.data)
	}

	// Many quick publishes reach a slow reader as (at least) the latest.
	for i := range 50 {
		s.Publish(State{Summary: "burst " + string(rune('a'+i%26))})
	}
	for {
		ev = nextEvent(t, events, "state")
		mustDo(t, json.Unmarshal([]byte(ev.data), &st))
		if st.Seq == 52 {
			break
		}
	}

	s.Close()
	select {
	case _, ok := <-events:
		for ok {
			_, ok = <-events
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end after Close")
	}
}

// TestStartClose serves on a real loopback port.
func TestStartClose(t *testing.T) {
	out, _ := evilSetup(t)
	s, err := New(Options{OutDir: out, Addr: "127.0.0.1:0"})
	mustDo(t, err)
	if s.URL() != "" {
		t.Error("URL before Start")
	}
	mustDo(t, s.Start())
	u := s.URL()
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("URL %q", u)
	}
	res, err := http.Get(u + "out/a.png")
	mustDo(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "PNG bytes" {
		t.Errorf("GET a.png: %q", body)
	}
	stream, err := http.Get(u + "events")
	mustDo(t, err)
	defer stream.Body.Close()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung with an open event stream")
	}
	if _, err := http.Get(u); err == nil {
		t.Error("server still answers after Close")
	}
	// A second server cannot take the port of a running one.
	s2, err := New(Options{OutDir: out, Addr: "127.0.0.1:0"})
	mustDo(t, err)
	mustDo(t, s2.Start())
	defer s2.Close()
	s3, err := New(Options{OutDir: out, Addr: strings.TrimPrefix(strings.TrimSuffix(s2.URL(), "/"), "http://")})
	mustDo(t, err)
	if err := s3.Start(); err == nil || !strings.Contains(err.Error(), "pick another with --serve") {
		t.Errorf("port in use: %v", err)
	}
}
