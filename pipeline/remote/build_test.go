package remote

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/pipeline/remote/remotetest"
)

// clone is a project folder whose stages count their runs.
type clone struct {
	root string
	mu   sync.Mutex
	runs []string
}

func newClone(t *testing.T) *clone { return &clone{root: t.TempDir()} }

func (c *clone) ran(id string) {
	c.mu.Lock()
	c.runs = append(c.runs, id)
	c.mu.Unlock()
}

// stages are two sources, a diffusion-like stage and one reading all.
func (c *clone) stages() []pipeline.Stage {
	write := func(id, text, pub string, deps ...string) pipeline.Stage {
		return pipeline.Stage{ID: id, Asset: strings.Split(id, ":")[0], Kind: "test", Version: "1",
			Params: map[string]any{"text": text}, Deps: deps, Publish: map[string]string{"out": pub},
			Run: func(ctx context.Context, r *pipeline.Run) error {
				c.ran(id)
				data := []byte(strings.Repeat(text, 2000))
				for _, d := range deps {
					p, err := r.Input(d, "out")
					if err != nil {
						return err
					}
					in, err := os.ReadFile(p)
					if err != nil {
						return err
					}
					data = append(data, in...)
				}
				return r.WriteFile("out", data)
			}}
	}
	gen := write("g:gen", "gen", "g/g.png", "a:src")
	gen.Resource = pipeline.Accelerator
	return []pipeline.Stage{write("a:src", "alpha", "a.txt"), write("b:src", "beta", "b.txt"), gen, write("all:cat", "!", "all.txt", "a:src", "b:src", "g:gen")}
}

func (c *clone) build(t *testing.T, url string, upload bool, timeout time.Duration) *pipeline.Report {
	t.Helper()
	cl, _, err := New(Settings{URL: url, Upload: upload, Timeout: timeout, Where: "test"}, Credentials{Netrc: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rep, err := pipeline.Build(context.Background(), c.stages(), pipeline.Options{Root: c.root, Jobs: 2, Remote: cl, RemoteUpload: upload})
	if err != nil {
		t.Fatalf("Build: %v (a remote cache fault must never fail a build)", err)
	}
	return rep
}

func (c *clone) outputs(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"a.txt", "b.txt", "g/g.png", "all.txt"} {
		data, err := os.ReadFile(filepath.Join(c.root, "out", filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		out[f] = string(data)
	}
	return out
}

func statuses(rep *pipeline.Report) string {
	var s []string
	for _, st := range rep.Stages {
		s = append(s, st.ID+"="+string(st.Status))
	}
	return strings.Join(s, " ")
}

// TestBuildFaults: a build whose remote cache (a real nginx, through a
// proxy that injects one kind of fault) misbehaves still succeeds, with
// every output as a clean build makes it, the stages the fault hit built
// here, the fault counted and said in one warning line.
func TestBuildFaults(t *testing.T) {
	ng := remotetest.StartNginx(t)
	warm := newClone(t)
	if rep := warm.build(t, ng.URL, true, DefaultTimeout); rep.Remote.Uploads != 4 {
		t.Fatalf("warming: %+v", rep.Remote)
	}
	want := warm.outputs(t)
	hostile := []byte(fmt.Sprintf(`{"format":"kiln-ac/1","key":"%s","stage":"x","kind":"test","version":"1","outputs":[{"name":"../../../escape","sha256":"%s","size":1}],"created":"2026-01-01T00:00:00Z","duration_ms":1}`,
		strings.Repeat("0", 64), strings.Repeat("0", 64)))

	cases := []struct {
		name    string
		rules   []remotetest.Rule
		upload  bool
		timeout time.Duration
		// remote is how many stages the remote cache still serves.
		remote int
		warn   string // "" for no warning
	}{
		{name: "healthy", remote: 4},
		{name: "one 503, retried", rules: []remotetest.Rule{{Method: "GET", Kind: "ac", Fault: remotetest.Unavailable, Times: 1}}, remote: 4},
		{name: "503", rules: []remotetest.Rule{{Method: "GET", Kind: "ac", Fault: remotetest.Unavailable}}, warn: "503 Service Unavailable"},
		{name: "500 on blobs", rules: []remotetest.Rule{{Method: "GET", Kind: "cas", Fault: remotetest.ServerError}}, warn: "500 Internal Server Error"},
		{name: "timeout", rules: []remotetest.Rule{{Method: "GET", Fault: remotetest.Hang}}, timeout: 100 * time.Millisecond, warn: "no answer for 100ms"},
		{name: "connection reset", rules: []remotetest.Rule{{Method: "GET", Kind: "cas", Fault: remotetest.Reset}}, warn: "GET cas/"},
		{name: "truncated body", rules: []remotetest.Rule{{Method: "GET", Kind: "cas", Fault: remotetest.Truncate}}, warn: "unexpected EOF"},
		{name: "wrong bytes", rules: []remotetest.Rule{{Method: "GET", Kind: "cas", Fault: remotetest.Corrupt}}, warn: "not the one they are stored under"},
		{name: "truncated entry", rules: []remotetest.Rule{{Method: "GET", Kind: "ac", Fault: remotetest.Truncate}}, warn: "unexpected EOF"},
		{name: "corrupt entry", rules: []remotetest.Rule{{Method: "GET", Kind: "ac", Fault: remotetest.Corrupt}}, warn: "bad action-cache entry"},
		{name: "hostile entry", rules: []remotetest.Rule{{Method: "GET", Kind: "ac", Fault: remotetest.Replace, Body: hostile}}, warn: "bad action-cache entry"},
		{name: "uploads fail", rules: []remotetest.Rule{{Method: "GET", Fault: remotetest.NotFound}, {Method: "PUT", Fault: remotetest.ServerError}},
			upload: true, warn: "PUT ac/"},
		{name: "uploads hang", rules: []remotetest.Rule{{Method: "GET", Fault: remotetest.NotFound}, {Method: "HEAD", Fault: remotetest.NotFound},
			{Method: "PUT", Fault: remotetest.Hang}}, upload: true, timeout: 100 * time.Millisecond, warn: "for 100ms"},
		{name: "uploads forbidden", rules: []remotetest.Rule{{Method: "GET", Fault: remotetest.NotFound}, {Method: "PUT", Fault: remotetest.Forbidden}},
			upload: true, warn: "uploads stopped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			px := remotetest.NewProxy(t, ng.URL)
			px.Set(tc.rules...)
			c := newClone(t)
			timeout := tc.timeout
			if timeout == 0 {
				timeout = DefaultTimeout
			}
			rep := c.build(t, px.URL, tc.upload, timeout)
			if got := c.outputs(t); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("outputs differ from a clean build's")
			}
			r := rep.Remote
			if r.Hits != tc.remote || rep.Totals[pipeline.StatusRemote] != r.Hits || r.Hits+rep.Totals[pipeline.StatusBuilt] != 4 {
				t.Errorf("%d stages from the remote cache, want %d (%s)", r.Hits, tc.remote, statuses(rep))
			}
			if len(c.runs) != rep.Totals[pipeline.StatusBuilt] {
				t.Errorf("ran %v, but %d stages are built", c.runs, rep.Totals[pipeline.StatusBuilt])
			}
			switch {
			case tc.warn == "" && (r.Warning != "" || r.Errors != 0):
				t.Errorf("warning %q, %d errors; want none", r.Warning, r.Errors)
			case tc.warn != "" && (!strings.Contains(r.Warning, tc.warn) || r.Errors == 0):
				t.Errorf("warning %q with %d errors; want one with %q", r.Warning, r.Errors, tc.warn)
			}
			if strings.Contains(r.Warning, "\n") {
				t.Errorf("the warning is more than one line: %q", r.Warning)
			}
			if _, err := os.Lstat(filepath.Join(c.root, "..", "escape")); err == nil {
				t.Errorf("a file was written outside the project")
			}
		})
	}
}

// TestTwoClonesThroughNginx: clone B builds nothing that clone A built,
// byte for byte, and its next build is a local no-op.
func TestTwoClonesThroughNginx(t *testing.T) {
	ng := remotetest.StartNginx(t)
	a, b := newClone(t), newClone(t)
	a.build(t, ng.URL, true, DefaultTimeout)
	rep := b.build(t, ng.URL, true, DefaultTimeout)
	if got := statuses(rep); got != "a:src=remote b:src=remote g:gen=remote all:cat=remote" || len(b.runs) != 0 {
		t.Fatalf("clone B: %s, ran %v", got, b.runs)
	}
	if fmt.Sprint(a.outputs(t)) != fmt.Sprint(b.outputs(t)) {
		t.Fatal("clone B's outputs differ from clone A's")
	}
	if rep.Remote.Uploads != 0 {
		t.Errorf("clone B uploaded %d results it downloaded", rep.Remote.Uploads)
	}
	if got := statuses(b.build(t, ng.URL, true, DefaultTimeout)); got != "a:src=cached b:src=cached g:gen=cached all:cat=cached" {
		t.Errorf("clone B again: %s", got)
	}
	// Entries and blobs are where the protocol says.
	var ac, cas int
	for _, f := range ng.Files(t) {
		switch {
		case strings.HasPrefix(f, "ac/"):
			ac++
		case strings.HasPrefix(f, "cas/"):
			cas++
		default:
			t.Errorf("unexpected file %s on the server", f)
		}
	}
	if ac != 4 || cas != 4 {
		t.Errorf("server holds %d ac and %d cas entries, want 4 and 4", ac, cas)
	}
}
