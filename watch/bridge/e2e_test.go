package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/generators"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/pipeline"
	"github.com/kiln-dev/kiln/watch"
	"github.com/kiln-dev/kiln/watch/preview"
)

// done is one finished build as OnDone saw it.
type done struct {
	req watch.Request
	res watch.Result
}

// project writes kiln's starter project into a temporary folder.
func starterProject(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range manifests.Starter() {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func pngOf(t *testing.T, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestWatchEndToEnd runs the whole watch loop on a real project: the
// manifests package loads it, hand-made image assets become real
// pipeline stages, the pipeline builds them into the output folder, and
// the preview server publishes the result. Editor-like writes then check
// which assets rebuilt and how often, that a broken save keeps the last
// good outputs, and that the fix resumes.
func TestWatchEndToEnd(t *testing.T) {
	root := starterProject(t)
	srv, err := preview.New(preview.Options{OutDir: filepath.Join(root, "out")})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewServer(srv.Handler())
	defer web.Close()

	var (
		mu      sync.Mutex
		project *manifests.Project
		report  *pipeline.Report
		state   preview.State
	)
	build := func(ctx context.Context, req watch.Request) watch.Result {
		p, err := manifests.Load(root)
		if err != nil {
			mu.Lock()
			project, report = nil, nil
			mu.Unlock()
			return Result(nil, err)
		}
		var stages []pipeline.Stage
		for _, a := range p.Assets {
			if a.Kind == manifests.KindImage {
				stages = append(stages, generators.SourceStage(a.ID, a.Image.Source, a.Pos.String(), p.Config.Limits.MaxImageSize))
			}
		}
		rep, err := pipeline.Build(ctx, stages, pipeline.Options{Root: root, OutDir: p.Config.Output, CacheDir: p.Config.Cache, Jobs: 1})
		mu.Lock()
		project, report = p, rep
		mu.Unlock()
		return Result(rep, err)
	}
	dones := make(chan done, 100)
	var out strings.Builder
	var outMu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- watch.Run(ctx, watch.Options{
			Root:     root,
			Ignore:   []string{"out", ".kiln/cache"},
			Debounce: watch.DefaultDebounce,
			Build:    build,
			OnStart:  func(req watch.Request) { srv.Building(req.Changed) },
			OnDone: func(req watch.Request, res watch.Result) {
				mu.Lock()
				state = State(project, report, res, state)
				st := state
				mu.Unlock()
				srv.Publish(st)
				dones <- done{req, res}
			},
			Out: writerFunc(func(p []byte) (int, error) { outMu.Lock(); defer outMu.Unlock(); return out.Write(p) }),
		})
	}()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	next := func(what string) done {
		t.Helper()
		select {
		case d := <-dones:
			return d
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no build within 30s", what)
		}
		return done{}
	}
	quiet := func(what string) {
		t.Helper()
		select {
		case d := <-dones:
			t.Fatalf("%s: unexpected build %+v", what, d)
		case <-time.After(400 * time.Millisecond):
		}
	}
	pageState := func() preview.State {
		t.Helper()
		res, err := http.Get(web.URL + "/state")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var st preview.State
		if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	write := func(rel string, data []byte) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// save replaces a file whole, as most editors do (temp file, rename),
	// so a build never reads half of it however slow the machine is.
	save := func(rel string, data []byte) {
		t.Helper()
		write(rel+"___jb_tmp___", data)
		if err := os.Rename(filepath.Join(root, filepath.FromSlash(rel+"___jb_tmp___")), filepath.Join(root, filepath.FromSlash(rel))); err != nil {
			t.Fatal(err)
		}
	}
	hello := filepath.Join(root, "out", "ui", "hello.png")

	// The initial build publishes the starter's image asset.
	d := next("initial build")
	if !d.req.Initial || !d.res.OK() || d.res.Built != 1 || !slices.Equal(d.res.BuiltIDs, []string{"ui/hello:source"}) {
		t.Fatalf("initial build %+v", d)
	}
	first, err := os.ReadFile(hello)
	if err != nil {
		t.Fatalf("initial output: %v", err)
	}
	if st := pageState(); len(st.Assets) != 1 || st.Assets[0].ID != "ui/hello" || st.Assets[0].Images[0].Path != "ui/hello.png" || !st.OK {
		t.Fatalf("preview after the initial build: %+v", st)
	}
	quiet("after the initial build") // its outputs and cache trigger nothing

	// A source image replaced the way editors save: temp file, rename.
	write("art/.hello.png.tmp", pngOf(t, color.NRGBA{200, 30, 30, 255}))
	if err := os.Rename(filepath.Join(root, "art/.hello.png.tmp"), filepath.Join(root, "art/hello.png")); err != nil {
		t.Fatal(err)
	}
	d = next("source image replaced")
	if !slices.Equal(d.req.Changed, []string{"art/hello.png"}) || d.res.Built != 1 || !d.res.OK() {
		t.Errorf("after replacing the image: %+v", d)
	}
	if now, _ := os.ReadFile(hello); bytes.Equal(now, first) {
		t.Error("the output did not change with its source")
	}
	quiet("after the image")

	// A new folder holding a manifest.
	save("levels/cave.kiln.yaml", []byte("version: 1\nassets:\n  - id: cave/icon\n    kind: image\n    image:\n      source: art/hello.png\n"))
	d = next("new folder with a manifest")
	// Same source, same parameters: the cache already holds its output,
	// which is published without running anything.
	if !slices.Equal(d.req.Changed, []string{"levels/cave.kiln.yaml"}) || d.res.Built != 0 || d.res.Cached != 2 {
		t.Errorf("after adding a manifest: %+v", d)
	}
	if _, err := os.Stat(filepath.Join(root, "out", "cave", "icon.png")); err != nil {
		t.Errorf("new asset not built: %v", err)
	}
	quiet("after the new manifest")

	// A broken save: the error is printed with its position, nothing is
	// deleted, and the preview keeps the last good assets.
	good, err := os.ReadFile(filepath.Join(root, manifests.StarterManifest))
	if err != nil {
		t.Fatal(err)
	}
	broken := []struct {
		name, old, new string
		where          *regexp.Regexp
	}{
		// A typo in a field name: the position of the field.
		{"unknown field", "      source: art/hello.png", "      sorce: art/hello.png", regexp.MustCompile(`^assets\.kiln\.yaml:\d+:\d+: .*sorce`)},
		// Half-typed YAML: the YAML parser gives the line.
		{"invalid YAML", "      source: art/hello.png", "      source: [art/hello.png", regexp.MustCompile(`^assets\.kiln\.yaml:\d+(:\d+)?: invalid YAML`)},
	}
	for _, b := range broken {
		save(manifests.StarterManifest, bytes.Replace(good, []byte(b.old), []byte(b.new), 1))
		d = next(b.name)
		if d.res.OK() || len(d.res.Errors) == 0 {
			t.Fatalf("%s: the broken manifest built: %+v", b.name, d)
		}
		if !slices.ContainsFunc(d.res.Errors, b.where.MatchString) {
			t.Errorf("%s: error %q, want it to match %s", b.name, d.res.Errors, b.where)
		}
	}
	for _, p := range []string{hello, filepath.Join(root, "out", "cave", "icon.png")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("an output was lost after a broken save: %v", err)
		}
	}
	if st := pageState(); st.OK || len(st.Errors) == 0 || len(st.Assets) != 2 {
		t.Errorf("preview after a broken save: ok=%v errors=%q assets=%d", st.OK, st.Errors, len(st.Assets))
	}
	quiet("after the broken save")

	// The fix resumes building.
	save(manifests.StarterManifest, good)
	d = next("fix")
	if !d.res.OK() || d.res.Cached != 2 || d.res.Built != 0 {
		t.Errorf("after the fix: %+v", d)
	}
	if st := pageState(); !st.OK || len(st.Errors) != 0 || len(st.Assets) != 2 {
		t.Errorf("preview after the fix: %+v", st)
	}
	quiet("after the fix")

	// A burst of 50 saves is one build.
	for i := range 50 {
		save(manifests.StarterManifest, append(append([]byte(nil), good...), fmt.Sprintf("# save %d\n", i)...))
	}
	d = next("burst")
	if !slices.Equal(d.req.Changed, []string{manifests.StarterManifest}) || !d.res.OK() {
		t.Errorf("after the burst: %+v", d)
	}
	quiet("after the burst")

	outMu.Lock()
	text := out.String()
	outMu.Unlock()
	for _, want := range []string{
		" initial build → 1 built, 0 cached, 0 failed in ",
		" art/hello.png changed → 1 built, 0 cached, 0 failed in ",
		" levels/cave.kiln.yaml changed → 0 built, 2 cached, 0 failed in ",
		" assets.kiln.yaml changed → error in ",
		"\n  assets.kiln.yaml:",
		" assets.kiln.yaml changed → 0 built, 2 cached, 0 failed in ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	t.Logf("watch output:\n%s", text)
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
