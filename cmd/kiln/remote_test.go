package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/internal/testproject"
	"github.com/kiln-dev/kiln/pipeline/remote/remotetest"
)

// remoteConfig is the kiln.yaml of the remote-cache tests; extra is
// appended (a remote_cache: block).
func remoteConfig(extra string) string {
	return "version: 1\noutput: out\ncache: .kiln/cache\ndefaults:\n  model: builtin:exemplar\n" + extra
}

// remoteAssets are small, fast generated assets of every kind (each a
// diffusion stage or several), a hand-made image and an atlas.
const remoteAssets = `version: 1
defaults:
  size: 32
  steps: 4
assets:
  - {id: ui/gem, kind: image, image: {source: art/gem.png}}
  - {id: t/wall, kind: tileable, prompt: brick}
  - {id: t/floor, kind: texture, prompt: moss, texture: {maps: [albedo, normal, orm]}}
  - {id: c/cave, kind: concept-art, prompt: lava, concept: {variations: 2}}
  - {id: fx/flow, kind: sprite-sheet, prompt: lava, sprite: {frames: 3, background: keep}}
atlases:
  - {id: ui/atlas, include: ["ui/*", fx/flow]}
`

// remoteProject writes a clone of the test project.
func remoteProject(t *testing.T, extraConfig string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"kiln.yaml":        remoteConfig(extraConfig),
		"assets.kiln.yaml": remoteAssets,
		"art/gem.png":      string(testproject.PNG(7)),
	})
	return dir
}

// kilnRemote runs kiln in dir with env added to an environment cleared
// of the remote-cache variables and ~/.netrc, so the machine's own
// settings cannot leak into a test.
func kilnRemote(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(kilnBin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KILN_REMOTE_CACHE") && !strings.HasPrefix(kv, "NETRC=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NETRC="+filepath.Join(dir, "no-netrc"))
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// remoteReport is the part of kiln build --json the remote tests read.
type remoteReport struct {
	Stages []struct {
		ID, Kind, Status string
	} `json:"stages"`
	Totals map[string]int `json:"totals"`
	Remote *struct {
		URL                           string
		Upload                        bool
		Hits, Misses, Uploads, Errors int
		Warning                       string
	} `json:"remote"`
	Shard *struct {
		Index, Count, Stages int
		TotalStages          int `json:"total_stages"`
		Costs                []int64
	} `json:"shard"`
}

func remoteBuild(t *testing.T, dir string, env []string, args ...string) (remoteReport, result) {
	t.Helper()
	r := kilnRemote(t, dir, env, append([]string{"build", "--json"}, args...)...)
	var rep remoteReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("kiln build --json %v: %v\nstdout: %s\nstderr: %s", args, err, r.stdout, r.stderr)
	}
	if r.code != 0 {
		t.Fatalf("kiln build %v: exit %d\n%s", args, r.code, r.stderr)
	}
	return rep, r
}

// diffusionKinds are the stage kinds that run a diffusion model.
var diffusionKinds = map[string]bool{"tileable.generate": true, "texture.generate": true, "concept.generate": true,
	"concept.hires": true, "sprite.frame": true}

// outTree maps every file under dir/out to its content.
func outTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := snapshot(t, filepath.Join(dir, "out"))
	if len(tree) == 0 {
		t.Fatalf("%s/out is empty", dir)
	}
	return tree
}

func sameTree(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if d := diffSnapshots(want, got); d != "" {
		t.Errorf("%s: outputs differ:\n%s", what, d)
	}
}

// TestRemoteTwoClones: clone A (CI: KILN_REMOTE_CACHE, read-write)
// builds; clone B (a designer: kiln.yaml's remote_cache with upload:
// false) then builds the same project with its own local cache: no stage
// runs, every output is byte-identical to A's, and B uploads nothing.
func TestRemoteTwoClones(t *testing.T) {
	ortLibrary(t)
	ng := remotetest.StartNginx(t)
	a := remoteProject(t, "")
	repA, _ := remoteBuild(t, a, []string{"KILN_REMOTE_CACHE=" + ng.URL})
	if repA.Remote == nil || repA.Remote.Uploads != len(repA.Stages) || repA.Remote.Hits != 0 || repA.Remote.Errors != 0 {
		t.Fatalf("clone A: remote %+v for %d stages", repA.Remote, len(repA.Stages))
	}
	files := len(ng.Files(t))

	b := remoteProject(t, fmt.Sprintf("remote_cache: {url: %q, upload: false}\n", ng.URL))
	repB, r := remoteBuild(t, b, nil)
	for _, s := range repB.Stages {
		if s.Status != "remote" {
			t.Errorf("clone B: stage %s is %s, want remote", s.ID, s.Status)
		}
	}
	if repB.Remote.Hits != len(repB.Stages) || repB.Remote.Uploads != 0 || repB.Remote.Upload || repB.Totals["built"] != 0 {
		t.Errorf("clone B: remote %+v, totals %v", repB.Remote, repB.Totals)
	}
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("clone B warned: %s", r.stderr)
	}
	sameTree(t, "clone B", outTree(t, b), outTree(t, a))
	if n := len(ng.Files(t)); n != files {
		t.Errorf("the read-only clone changed the cache: %d files, was %d", n, files)
	}
	// B's next build is a local no-op, and --remote-cache off turns the
	// kiln.yaml block off.
	repB2, _ := remoteBuild(t, b, nil, "--remote-cache", "off")
	if repB2.Remote != nil || repB2.Totals["cached"] != len(repB2.Stages) {
		t.Errorf("clone B again: remote %+v, totals %v", repB2.Remote, repB2.Totals)
	}
}

// TestRemoteShardAssemble: shards 1/2 and 2/2 build in two clones and
// push; an assemble build in a fifth clone runs no diffusion stage, and
// every output equals a single-machine build's.
func TestRemoteShardAssemble(t *testing.T) {
	ortLibrary(t)
	single := remoteProject(t, "")
	remoteBuild(t, single, nil)
	want := outTree(t, single)

	ng := remotetest.StartNginx(t)
	env := []string{"KILN_REMOTE_CACHE=" + ng.URL}
	ranIn := map[string]int{}
	var costs []int64
	for k := 1; k <= 2; k++ {
		dir := remoteProject(t, fmt.Sprintf("remote_cache: {url: %q, upload: false}\n", ng.URL))
		// kiln.yaml says read-only; a shard uploads anyway.
		rep, _ := remoteBuild(t, dir, nil, "--shard", fmt.Sprintf("%d/2", k))
		if rep.Shard == nil || rep.Shard.Index != k || rep.Shard.TotalStages != 7 {
			t.Fatalf("shard %d: report %+v", k, rep.Shard)
		}
		costs = rep.Shard.Costs
		for _, s := range rep.Stages {
			if s.Status == "built" && diffusionKinds[s.Kind] {
				ranIn[s.ID]++
			}
		}
		if rep.Remote.Uploads != rep.Totals["built"] || rep.Remote.Errors != 0 {
			t.Errorf("shard %d: remote %+v, totals %v", k, rep.Remote, rep.Totals)
		}
	}
	if len(ranIn) != 7 {
		t.Errorf("the shards ran %d diffusion stages, want all 7: %v", len(ranIn), ranIn)
	}
	for id, n := range ranIn {
		if n != 1 {
			t.Errorf("%s ran in %d shards", id, n)
		}
	}
	if len(costs) != 2 || costs[0] == 0 || costs[1] == 0 {
		t.Errorf("shard costs %v: both shards should have work", costs)
	}

	asm := remoteProject(t, "")
	rep, _ := remoteBuild(t, asm, env)
	for _, s := range rep.Stages {
		if diffusionKinds[s.Kind] && s.Status != "remote" {
			t.Errorf("assemble: diffusion stage %s is %s, want remote", s.ID, s.Status)
		}
	}
	sameTree(t, "assembled", outTree(t, asm), want)
}

// TestRemoteShardUsage: --shard and --remote-cache mistakes are usage
// errors (exit 2) before anything builds.
func TestRemoteShardUsage(t *testing.T) {
	dir := remoteProject(t, "")
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--shard", "1/2"}, nil, "--shard 1/2 needs a remote cache"},
		{[]string{"--shard", "1/2", "--remote-cache", "off"}, []string{"KILN_REMOTE_CACHE=http://127.0.0.1:1/c"}, "needs a remote cache"},
		{[]string{"--shard", "3/2", "--remote-cache", "http://127.0.0.1:1/c"}, nil, "--shard 3/2: the shard number must be between 1 and 2"},
		{[]string{"--shard", "half"}, nil, "write I/N"},
		{[]string{"--remote-cache", "ftp://cache/"}, nil, "use an http:// or https:// URL"},
		{[]string{"--remote-cache", "https://u:p@cache/"}, nil, "the URL holds credentials"},
		{nil, []string{"KILN_REMOTE_CACHE=cache:8080"}, "KILN_REMOTE_CACHE: remote cache URL"},
		{nil, []string{"KILN_REMOTE_CACHE=http://127.0.0.1:1/c", "KILN_REMOTE_CACHE_UPLOAD=perhaps"}, "KILN_REMOTE_CACHE_UPLOAD"},
	}
	for _, tc := range cases {
		r := kilnRemote(t, dir, tc.env, append([]string{"build"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("kiln build %v: exit %d, %q; want exit 2 with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a usage error built something")
	}
	bad := remoteProject(t, "remote_cache: {url: 'https://cache/', ca_file: certs/missing.pem}\n")
	if r := kilnRemote(t, bad, nil, "build"); r.code != 2 || !strings.Contains(r.stderr, "kiln.yaml:6:48: CA file") {
		t.Errorf("missing CA file: exit %d, %q; want exit 2 at kiln.yaml:6:48", r.code, r.stderr)
	}
}

// TestRemoteUnreachable: a remote cache that is down degrades the build,
// never fails it: every stage builds here, and one warning line says so.
func TestRemoteUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String() + "/cache"
	l.Close() // nothing listens there now: connection refused
	dir := imageProject(t)
	r := kilnRemote(t, dir, []string{"KILN_REMOTE_CACHE=" + url}, "build")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var warnings []string
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.HasPrefix(line, "kiln: warning:") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "remote cache "+url) || !strings.Contains(warnings[0], "turned off for the rest of the build") {
		t.Errorf("warnings %q; want one line about the remote cache", warnings)
	}
	if !strings.Contains(r.stderr, "remote cache: 0 hits") {
		t.Errorf("the summary does not count the remote cache: %s", r.stderr)
	}
}

// TestRemoteCredentialsFromCheckout: a token in the environment is not
// sent to a URL that kiln.yaml chose, and kiln says why.
func TestRemoteCredentialsFromCheckout(t *testing.T) {
	got := make(chan string, 100)
	srv := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNotFound)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	defer srv.Close()
	url := "http://" + l.Addr().String() + "/c"
	dir := remoteProject(t, fmt.Sprintf("remote_cache: {url: %q, upload: false}\n", url))
	os.WriteFile(filepath.Join(dir, "assets.kiln.yaml"), []byte("version: 1\nassets:\n  - {id: ui/gem, kind: image, image: {source: art/gem.png}}\n"), 0o644)
	r := kilnRemote(t, dir, []string{"KILN_REMOTE_CACHE_TOKEN=secret"}, "build")
	if r.code != 0 || !strings.Contains(r.stderr, "only to a cache named by --remote-cache or KILN_REMOTE_CACHE") {
		t.Fatalf("exit %d, %q", r.code, r.stderr)
	}
	close(got)
	n := 0
	for auth := range got {
		n++
		if auth != "" {
			t.Errorf("sent Authorization %q to the cache kiln.yaml named", auth)
		}
	}
	if n == 0 {
		t.Error("kiln did not ask the remote cache")
	}
}

// BenchmarkRemoteWarm measures clone B's build of the example project
// from a warm remote cache (a real nginx on loopback), against a no-op
// build with a warm local cache and the transfer of every entry and blob
// alone, one request after another, at loopback speed; restore-ms is a
// build that restores every output from a warm local cache (what clone B
// does besides downloading). The target:
// clone-b-ms at most target-ms = 2 × (noop-ms + transfer-ms). The three
// are measured in turn in each iteration, so a busy machine slows them
// alike. In process, like BenchmarkNoopBuild.
func BenchmarkRemoteWarm(b *testing.B) {
	ng := remotetest.StartNginx(b)
	a := demoClone(b)
	kilnRun(b, "build", "-q", "--remote-cache", ng.URL, a) // clone A fills the remote cache
	files := ng.Files(b)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	var clone, restore, noop, transfer time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := demoClone(b)
		b.StartTimer()
		start := time.Now()
		kilnRun(b, "build", "-q", "--remote-cache", ng.URL, dir)
		clone += time.Since(start)

		b.StopTimer()
		if err := os.RemoveAll(filepath.Join(a, "out")); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start = time.Now()
		kilnRun(b, "build", "-q", "--remote-cache", "off", a)
		restore += time.Since(start)

		start = time.Now()
		kilnRun(b, "build", "-q", "--remote-cache", "off", a)
		noop += time.Since(start)

		start = time.Now()
		bytes = 0
		for _, f := range files {
			resp, err := client.Get(ng.URL + "/" + f)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			bytes += n
		}
		transfer += time.Since(start)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e6 }
	b.ReportMetric(ms(clone), "clone-b-ms")
	b.ReportMetric(ms(noop), "noop-ms")
	b.ReportMetric(ms(restore), "restore-ms")
	b.ReportMetric(ms(transfer), "transfer-ms")
	b.ReportMetric(2*(ms(noop)+ms(transfer)), "target-ms")
	b.ReportMetric(float64(bytes), "bytes")
	b.ReportMetric(float64(len(files)), "files")
}

// BenchmarkRemoteMiss measures a cold build of the example project with
// no remote cache and with a read-only remote cache that misses every
// stage (an empty nginx on loopback), in turn in each iteration (which
// goes first alternates); the target is overhead-% at most 5.
// overhead-cpu-% compares the process's CPU time, which a busy shared
// machine disturbs less.
func BenchmarkRemoteMiss(b *testing.B) {
	ng := remotetest.StartNginx(b)
	b.Setenv("KILN_REMOTE_CACHE_UPLOAD", "false")
	var plain, miss, plainCPU, missCPU time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k := range 2 {
			remote := (i+k)%2 == 1
			b.StopTimer()
			dir := demoClone(b)
			b.StartTimer()
			start, cpu0 := time.Now(), cpuTime()
			if remote {
				kilnRun(b, "build", "-q", "--remote-cache", ng.URL, dir)
				miss += time.Since(start)
				missCPU += cpuTime() - cpu0
			} else {
				kilnRun(b, "build", "-q", "--remote-cache", "off", dir)
				plain += time.Since(start)
				plainCPU += cpuTime() - cpu0
			}
		}
	}
	b.StopTimer()
	if n := len(ng.Files(b)); n != 0 {
		b.Fatalf("the read-only build uploaded %d files", n)
	}
	s := func(d time.Duration) float64 { return d.Seconds() / float64(b.N) }
	b.ReportMetric(s(plain), "no-remote-s")
	b.ReportMetric(s(miss), "miss-s")
	b.ReportMetric(100*(s(miss)-s(plain))/s(plain), "overhead-%")
	b.ReportMetric(s(plainCPU), "no-remote-cpu-s")
	b.ReportMetric(s(missCPU), "miss-cpu-s")
	b.ReportMetric(100*(s(missCPU)-s(plainCPU))/s(plainCPU), "overhead-cpu-%")
}

// cpuTime is the CPU time this process has used (user and system), which
// other load on a shared machine disturbs less than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// demoClone copies examples/demo (its sources, not its outputs or cache)
// into a new folder.
func demoClone(b *testing.B) string {
	b.Helper()
	src := filepath.Join("..", "..", "examples", "demo")
	dst := b.TempDir()
	var names []string
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() && (rel == "out" || rel == ".kiln") {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(names)
	for _, rel := range names {
		data, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(dst, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	// A clone made long enough ago that its files are on disk: the build
	// flushes the file system when it ends (syncfs), and should not pay
	// for writing out the copy just made.
	syscall.Sync()
	return dst
}

// kilnRun runs kiln in process and fails the benchmark on an error.
func kilnRun(b *testing.B, args ...string) {
	b.Helper()
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if code := run(ctx, args, &stderr, &stderr); code != 0 || strings.Contains(stderr.String(), "warning") {
		b.Fatalf("kiln %v: exit %d: %s", args, code, stderr.String())
	}
}
