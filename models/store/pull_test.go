package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-dev/kiln/manifests"
)

func TestPullFromCatalogue(t *testing.T) {
	s := newModelServer(t)
	root := t.TempDir()
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false)))
	if err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	dest := filepath.Join(root, "models", "tiny")
	if res.Dir != dest || res.UpToDate || res.Configured || len(res.Resumed) != 0 {
		t.Errorf("result = %+v", res)
	}
	if res.Fetched != modelManifest.TotalSize() {
		t.Errorf("fetched %d bytes, the model has %d", res.Fetched, modelManifest.TotalSize())
	}
	sameTree(t, dest)
	if exists(dest + StagingSuffix) {
		t.Errorf("staging folder left behind")
	}
	rec, _ := ReadManifest(dest)
	if rec.Name != "tiny" || rec.Kind != manifests.ModelTurbo || rec.Source != s.base() || rec.Description != "generated test model" {
		t.Errorf("recorded manifest = %+v", rec)
	}
	if got := len(s.fileRequests()); got != len(modelManifest.Files) {
		t.Errorf("%d file requests for %d files", got, len(modelManifest.Files))
	}
	for _, want := range []string{"pulling tiny (15 files", "ok unet/model.onnx_data (181.0 KiB)", "pulled tiny into " + dest, "to use it, add it to kiln.yaml under models:\n  tiny: {path: models/tiny, kind: turbo}"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	r := VerifyModel(context.Background(), LocalModel{Name: "tiny", Dir: dest}, VerifyOptions{})
	if !r.OK() || r.Files != len(modelManifest.Files) {
		t.Errorf("verify after pull: %+v", r)
	}

	// Pulling again downloads nothing.
	out.Reset()
	res, err = Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false)))
	if err != nil || !res.UpToDate || res.Fetched != 0 {
		t.Fatalf("second pull: %+v, %v", res, err)
	}
	if got := len(s.fileRequests()); got != len(modelManifest.Files) {
		t.Errorf("second pull made %d more file requests", got-len(modelManifest.Files))
	}
	if !strings.Contains(out.String(), "tiny is up to date in "+dest) {
		t.Errorf("output: %s", out.String())
	}
}

// TestPullArguments pulls the same model named every way Resolve accepts.
func TestPullArguments(t *testing.T) {
	s := newModelServer(t)
	catYAML := fmt.Sprintf("version: 1\nmodels:\n  - {name: first, kind: sd15, url: %s}\n  - {name: second, url: ./}\n", s.base())
	s.with(func() { s.override["cat.yaml"] = []byte(catYAML) })
	// The remote catalogue lives under /m/ too, so relative urls resolve
	// against it.
	tests := []struct {
		name, arg string
		opts      func(*PullOptions)
		wantName  string
		wantKind  manifests.ModelKind
	}{
		{"catalogue entry without files", "tiny", func(o *PullOptions) { o.Catalog = s.catalog(t, true) }, "tiny", "turbo"},
		{"base URL", s.base(), nil, "tiny", "turbo"},
		{"base URL without slash", strings.TrimSuffix(s.base(), "/"), nil, "tiny", "turbo"},
		{"manifest URL", s.base() + ManifestName, func(o *PullOptions) { o.Name = "renamed" }, "renamed", "turbo"},
		{"remote catalogue with fragment", s.base() + "cat.yaml#first", nil, "first", "sd15"},
		{"remote catalogue, relative url", s.srv.URL + "/m/cat.yaml#second", nil, "second", "turbo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			opts := testOptions(root, nil)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			var out bytes.Buffer
			res, err := Pull(context.Background(), &out, tt.arg, opts)
			if err != nil {
				t.Fatalf("Pull(%s): %v", tt.arg, err)
			}
			if res.Name != tt.wantName || res.Manifest.Kind != tt.wantKind {
				t.Errorf("pulled %s kind %q, want %s kind %q", res.Name, res.Manifest.Kind, tt.wantName, tt.wantKind)
			}
			sameTree(t, filepath.Join(root, "models", tt.wantName))
		})
	}
}

func TestResolveErrors(t *testing.T) {
	s := newModelServer(t)
	s.with(func() {
		s.override["two.yaml"] = []byte(fmt.Sprintf("version: 1\nmodels:\n  - {name: a, url: %s}\n  - {name: b, url: %s}\n", s.base(), s.base()))
	})
	tests := []struct {
		arg  string
		opts PullOptions
		want string
	}{
		{"tiny", PullOptions{}, `cannot pull "tiny": no model catalogue; create models.catalog.yaml in the project (see ` + "`kiln models pull --help`" + `) or pull a URL`},
		{"nope", PullOptions{Catalog: s.catalog(t, false)}, `model "nope" is not in the catalogue models.catalog.yaml; it has: tiny`},
		{"bad name!", PullOptions{}, `"bad name!" is neither a model name (letters, digits, "_", ".", "-") nor an http(s) URL`},
		{"ftp://host/x/", PullOptions{}, "cannot pull ftp://host/x/: only http and https URLs are supported"},
		{s.srv.URL + "/nothing/", PullOptions{}, "fetch kiln-manifest.json " + s.srv.URL + "/nothing/kiln-manifest.json: HTTP 404 Not Found: check the catalogue's url and revision, or whether the server publishes this file"},
		{s.base() + "two.yaml", PullOptions{}, "the catalogue " + s.base() + "two.yaml lists 2 models (a, b): add #NAME to the URL to choose one"},
	}
	for _, tt := range tests {
		t.Run(tt.arg, func(t *testing.T) {
			_, err := Resolve(context.Background(), tt.arg, tt.opts)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Resolve(%q) error\n got  %v\n want %s", tt.arg, err, tt.want)
			}
		})
	}
}

// TestPullResumesInterruptedDownload cuts the connection in the middle of
// the largest file; the retry asks for the rest with a Range header.
func TestPullResumesInterruptedDownload(t *testing.T) {
	s := newModelServer(t)
	const big, cut = "unet/model.onnx_data", 50_000
	s.with(func() { s.cutOnce[big] = cut })
	root := t.TempDir()
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false)))
	if err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	reqs := s.requestsFor(big)
	if len(reqs) != 2 || reqs[0].Range != "" || reqs[1].Range != fmt.Sprintf("bytes=%d-", cut) {
		t.Fatalf("requests for %s: %+v, want a plain one then Range bytes=%d-", big, reqs, cut)
	}
	if len(res.Resumed) != 1 || res.Resumed[0] != big {
		t.Errorf("resumed = %v", res.Resumed)
	}
	if res.Fetched != modelManifest.TotalSize() {
		t.Errorf("fetched %d bytes, want %d (nothing twice)", res.Fetched, modelManifest.TotalSize())
	}
	for _, want := range []string{"download " + big + " from " + s.base() + big + ": the connection closed early (at 48.8 KiB of 181.0 KiB); retrying in 0s (attempt 2 of 4)", big + ": resuming at 48.8 KiB of 181.0 KiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	sameTree(t, filepath.Join(root, "models", "tiny"))
}

// TestPullResumesAcrossRuns: a pull that gives up keeps its data in the
// staging folder, and the next pull continues from it.
func TestPullResumesAcrossRuns(t *testing.T) {
	s := newModelServer(t)
	const big, cut = "unet/model.onnx_data", 70_000
	s.with(func() { s.cutOnce[big] = cut })
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	opts := testOptions(root, s.catalog(t, false))
	opts.Retries = -1
	var out bytes.Buffer
	_, err := Pull(context.Background(), &out, "tiny", opts)
	want := fmt.Sprintf("pull tiny: download %s from %s%s: the connection closed early (at 68.4 KiB of 181.0 KiB); what was downloaded is kept in %s: run the pull again to resume", big, s.base(), big, dest+StagingSuffix)
	if err == nil || err.Error() != want {
		t.Fatalf("first pull error\n got  %v\n want %s", err, want)
	}
	if exists(dest) {
		t.Fatal("a failed pull created the model folder")
	}
	st, err := os.Stat(filepath.Join(dest+StagingSuffix, "unet", "model.onnx_data.part"))
	if err != nil || st.Size() != cut {
		t.Fatalf("partial file: %v, %v (want %d bytes)", st, err, cut)
	}

	res, err := Pull(context.Background(), &out, "tiny", opts)
	if err != nil {
		t.Fatalf("second pull: %v\n%s", err, out.String())
	}
	reqs := s.requestsFor(big)
	if last := reqs[len(reqs)-1]; last.Range != fmt.Sprintf("bytes=%d-", cut) {
		t.Errorf("second pull asked for %s with Range %q", big, last.Range)
	}
	// Other files cut short when the first pull gave up resume too.
	if !slices.Contains(res.Resumed, big) {
		t.Errorf("resumed = %v, want %s among them", res.Resumed, big)
	}
	// Files finished by the first pull are not downloaded again.
	if got, want := res.Fetched, modelManifest.TotalSize()-cut; got > want {
		t.Errorf("second pull fetched %d bytes, at most %d expected", got, want)
	}
	sameTree(t, dest)
	if exists(dest + StagingSuffix) {
		t.Error("staging folder left behind")
	}
}

// TestPullServerIgnoresRange: a server answering a range request with the
// whole file (200) makes kiln start that file again, cleanly.
func TestPullServerIgnoresRange(t *testing.T) {
	s := newModelServer(t)
	s.with(func() { s.noRange = true })
	const big = "unet/model.onnx_data"
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	// An earlier pull left the first 40000 bytes.
	data, err := os.ReadFile(filepath.Join(modelDir, "unet", "model.onnx_data"))
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dest+StagingSuffix, "unet", "model.onnx_data.part")
	os.MkdirAll(filepath.Dir(part), 0o755)
	if err := os.WriteFile(part, data[:40_000], 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false)))
	if err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	reqs := s.requestsFor(big)
	if len(reqs) != 1 || reqs[0].Range != "bytes=40000-" {
		t.Fatalf("requests: %+v", reqs)
	}
	if !strings.Contains(out.String(), big+": the server does not resume downloads (it ignored the range request); downloading it again from the start") {
		t.Errorf("output:\n%s", out.String())
	}
	if len(res.Resumed) != 0 {
		t.Errorf("resumed = %v, want none", res.Resumed)
	}
	sameTree(t, dest)
}

// TestPullStalePartial: partial data that does not belong to the file (an
// earlier revision) fails the hash after resuming; kiln downloads the file
// again from the start instead of failing.
func TestPullStalePartial(t *testing.T) {
	s := newModelServer(t)
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	part := filepath.Join(dest+StagingSuffix, "unet", "model.onnx_data.part")
	os.MkdirAll(filepath.Dir(part), 0o755)
	if err := os.WriteFile(part, bytes.Repeat([]byte{7}, 30_000), 0o644); err != nil {
		t.Fatal(err)
	}
	// And a stray file that is no part of the model.
	os.WriteFile(filepath.Join(dest+StagingSuffix, "stray.bin"), []byte("x"), 0o644)
	var out bytes.Buffer
	if _, err := Pull(context.Background(), &out, "tiny", testOptions(root, s.catalog(t, false))); err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	reqs := s.requestsFor("unet/model.onnx_data")
	if len(reqs) != 2 || reqs[0].Range != "bytes=30000-" || reqs[1].Range != "" {
		t.Errorf("requests: %+v", reqs)
	}
	if !strings.Contains(out.String(), "unet/model.onnx_data: the resumed download did not verify; downloading it again from the start") {
		t.Errorf("output:\n%s", out.String())
	}
	sameTree(t, dest) // also: stray.bin is gone
}

// TestPullCorruptFile: a server sending wrong bytes is rejected with the
// file, expected and actual hash, its data is deleted, and no model folder
// appears.
func TestPullCorruptFile(t *testing.T) {
	s := newModelServer(t)
	const bad = "vae_decoder/model.onnx"
	s.with(func() { s.corrupt[bad] = true })
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	data, _ := os.ReadFile(filepath.Join(modelDir, filepath.FromSlash(bad)))
	data[len(data)/2] ^= 0xff
	gotSum := sha256Hex(data)
	want := fileOf(t, modelManifest, bad).SHA256

	_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", testOptions(root, s.catalog(t, false)))
	wantMsg := "pull tiny: vae_decoder/model.onnx is corrupt: expected sha256 " + want + ", got " + gotSum + "; the downloaded data was deleted: pull again, and if the same hash comes back the server's copy or the catalogue entry is wrong"
	if err == nil || err.Error() != wantMsg {
		t.Fatalf("error\n got  %v\n want %s", err, wantMsg)
	}
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Path != bad || ce.Want != want || ce.Got != gotSum {
		t.Errorf("ChecksumError = %+v", ce)
	}
	if exists(dest) {
		t.Error("a corrupt pull created the model folder")
	}
	staged := filepath.Join(dest+StagingSuffix, "vae_decoder", "model.onnx")
	if exists(staged) || exists(staged+partSuffix) {
		t.Error("the corrupt file's data was kept")
	}
	if n := len(s.requestsFor(bad)); n != 1 {
		t.Errorf("%d requests for the corrupt file, want 1 (a fresh download is not retried)", n)
	}
}

// TestPullWrongSize: a server whose file is longer than the list says is
// stopped before it writes past the size.
func TestPullWrongSize(t *testing.T) {
	s := newModelServer(t)
	s.with(func() { s.override["model_index.json"] = bytes.Repeat([]byte("{}"), 1000) })
	root := t.TempDir()
	_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", testOptions(root, s.catalog(t, false)))
	f := fileOf(t, modelManifest, "model_index.json")
	want := fmt.Sprintf("pull tiny: download model_index.json from %smodel_index.json: the server's file is 2000 bytes, the model's file list says %d: the catalogue entry or manifest is out of date", s.base(), f.Size)
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got  %v\n want %s", err, want)
	}
}

// TestPullHostileManifest: paths that would leave the model folder are
// refused before anything is downloaded.
func TestPullHostileManifest(t *testing.T) {
	good := modelManifest.Files[0]
	tests := []struct {
		path, want string
	}{
		{"../evil", `file path "../evil" contains ".." and could leave the model folder; use a path inside the model folder without ".." elements`},
		{"unet/../../evil", `file path "unet/../../evil" contains ".." and could leave the model folder`},
		{"/etc/evil", `file path "/etc/evil" is absolute; use a path relative to the model folder`},
		{`unet\evil`, `file path "unet\\evil" contains a backslash`},
		{"C:/evil", `file path "C:/evil" starts with a Windows drive letter`},
		{"./unet/x", `file path "./unet/x" is not in its simplest form; write it as "unet/x"`},
		{ManifestName, `file path "kiln-manifest.json" is reserved`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			s := newModelServer(t)
			m := *modelManifest
			m.Files = append([]File{{Path: tt.path, Size: good.Size, SHA256: good.SHA256}}, m.Files...)
			s.setManifest(&m)
			root := t.TempDir()
			project := filepath.Join(root, "project")
			_, err := Pull(context.Background(), &bytes.Buffer{}, s.base(), testOptions(project, nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), s.base()+ManifestName+": ") {
				t.Fatalf("error\n got  %v\n want %s: %s…", err, s.base()+ManifestName, tt.want)
			}
			if len(s.fileRequests()) != 0 {
				t.Errorf("files were requested: %v", s.fileRequests())
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 0 {
				t.Errorf("files written: %v", entries)
			}
		})
	}
	// Download checks a Source built by hand as well.
	src := &Source{Name: "x", BaseURL: "http://127.0.0.1:1/", Files: []File{{Path: "../x", Size: 1, SHA256: good.SHA256}}, From: "test"}
	if _, err := Download(context.Background(), &bytes.Buffer{}, src, t.TempDir(), PullOptions{}); err == nil || !strings.Contains(err.Error(), `contains ".."`) {
		t.Errorf("Download of a hostile source: %v", err)
	}
}

// TestPullCancel: cancelling a pull leaves only the staging folder, which
// the next pull resumes.
func TestPullCancel(t *testing.T) {
	s := newModelServer(t)
	const big = "unet/model.onnx_data"
	release := make(chan struct{})
	s.with(func() { s.block[big] = release })
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-s.started
		// Cancel once kiln has written some of the data it was sent (a
		// pull cancelled before any data arrived keeps nothing).
		part := filepath.Join(dest+StagingSuffix, "unet", "model.onnx_data"+partSuffix)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if st, err := os.Stat(part); err == nil && st.Size() > 0 {
				break
			}
		}
		cancel()
	}()
	_, err := Pull(ctx, &bytes.Buffer{}, "tiny", testOptions(root, s.catalog(t, false)))
	close(release)
	want := "pull tiny stopped: context canceled; what was downloaded is kept in " + dest + StagingSuffix + " and the next pull resumes from it"
	if err == nil || err.Error() != want || !errors.Is(err, context.Canceled) {
		t.Fatalf("error\n got  %v\n want %s", err, want)
	}
	if exists(dest) {
		t.Fatal("a cancelled pull created the model folder")
	}
	entries, _ := os.ReadDir(filepath.Join(root, "models"))
	if len(entries) != 1 || entries[0].Name() != "tiny"+StagingSuffix {
		t.Errorf("models/ holds %v, want only the staging folder", entries)
	}

	s.mu.Lock()
	delete(s.block, big)
	s.mu.Unlock()
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", testOptions(root, s.catalog(t, false))); err != nil {
		t.Fatalf("pull after cancel: %v", err)
	}
	sameTree(t, dest)
}

// TestPullConcurrent: a second pull of the same model while one runs is
// refused instead of writing the same files.
func TestPullConcurrent(t *testing.T) {
	s := newModelServer(t)
	const big = "unet/model.onnx_data"
	release := make(chan struct{})
	s.with(func() { s.block[big] = release })
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	opts := testOptions(root, s.catalog(t, false))
	var (
		wg       sync.WaitGroup
		firstErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, firstErr = Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	}()
	<-s.started
	_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	want := "pull tiny: another kiln is pulling into " + dest + StagingSuffix + "; wait for it to finish"
	if err == nil || err.Error() != want {
		t.Errorf("second pull error\n got  %v\n want %s", err, want)
	}
	s.mu.Lock()
	delete(s.block, big)
	s.mu.Unlock()
	close(release) // the blocked transfer fails and is retried without blocking
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("first pull: %v", firstErr)
	}
	sameTree(t, dest)
}

// TestPullExistingDestination: a folder holding something else is left
// alone unless Replace is set; Replace with a damaged copy of the same
// model downloads only the damaged file.
func TestPullExistingDestination(t *testing.T) {
	s := newModelServer(t)
	root := t.TempDir()
	dest := filepath.Join(root, "models", "tiny")
	os.MkdirAll(dest, 0o755)
	os.WriteFile(filepath.Join(dest, "mine.txt"), []byte("mine"), 0o644)
	opts := testOptions(root, s.catalog(t, false))

	_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	want := "destination " + dest + " already exists and holds files kiln did not pull (it has no kiln-manifest.json); remove it, pull into another folder, or ask to replace it (kiln models pull --replace)"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got  %v\n want %s", err, want)
	}
	if !exists(filepath.Join(dest, "mine.txt")) {
		t.Fatal("the existing folder was touched")
	}

	opts.Replace = true
	if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts); err != nil {
		t.Fatalf("pull with Replace: %v", err)
	}
	sameTree(t, dest)
	if exists(dest+oldSuffix) || exists(dest+StagingSuffix) {
		t.Error("left the old or staging folder")
	}

	// Damage one file: a plain pull says so, a replacing pull repairs it
	// fetching only that file.
	const broken = "text_encoder/model.onnx"
	if err := os.Truncate(filepath.Join(dest, filepath.FromSlash(broken)), 10); err != nil {
		t.Fatal(err)
	}
	opts.Replace = false
	_, err = Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	want = "destination " + dest + " holds this model but its file " + broken + " is missing or has the wrong size; pull again with --replace to repair it (intact files are not downloaded again)"
	if err == nil || err.Error() != want {
		t.Fatalf("error\n got  %v\n want %s", err, want)
	}
	before := len(s.fileRequests())
	opts.Replace = true
	res, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	if reqs := s.fileRequests()[before:]; len(reqs) != 1 || reqs[0].Path != broken {
		t.Errorf("repair requested %v, want only %s", reqs, broken)
	}
	if res.Fetched != fileOf(t, modelManifest, broken).Size {
		t.Errorf("repair fetched %d bytes", res.Fetched)
	}
	sameTree(t, dest)
}

// TestPullConfiguredDestination: a model kiln.yaml names is pulled to its
// configured path; a built-in cannot be pulled.
func TestPullConfiguredDestination(t *testing.T) {
	s := newModelServer(t)
	root := t.TempDir()
	cfg := &manifests.Config{Models: map[string]*manifests.Model{
		"tiny":     {Name: "tiny", Path: "weights/tiny-turbo", Kind: manifests.ModelTurbo},
		"exemplar": {Name: "exemplar", Builtin: "exemplar"},
	}}
	opts := testOptions(root, s.catalog(t, false))
	opts.Config = cfg
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "weights", "tiny-turbo"); res.Dir != want || !res.Configured {
		t.Errorf("pulled into %s (configured %v), want %s", res.Dir, res.Configured, want)
	}
	if strings.Contains(out.String(), "add it to kiln.yaml") {
		t.Error("suggested configuring a configured model")
	}
	_, _, err = DefaultDest(root, cfg, "exemplar")
	if want := "model exemplar is the built-in builtin:exemplar: it is part of kiln and has no files to pull"; err == nil || err.Error() != want {
		t.Errorf("DefaultDest(exemplar) = %v", err)
	}
}

// TestPullTerminal draws bars into a buffer: it must finish, on success
// and on failure.
func TestPullTerminal(t *testing.T) {
	s := newModelServer(t)
	s.with(func() { s.corrupt["unet/model.onnx"] = true })
	opts := testOptions(t.TempDir(), s.catalog(t, false))
	opts.Terminal = true
	var out bytes.Buffer
	if _, err := Pull(context.Background(), &out, "tiny", opts); err == nil {
		t.Fatal("corrupt pull succeeded")
	}
	s.mu.Lock()
	s.corrupt = map[string]bool{}
	s.mu.Unlock()
	out.Reset()
	if _, err := Pull(context.Background(), &out, "tiny", opts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "total") || !strings.Contains(out.String(), "pulled tiny") {
		t.Errorf("terminal output:\n%s", out.String())
	}
}

// TestPullStall: a server that stops sending is abandoned after the stall
// timeout and the file resumed.
func TestPullStall(t *testing.T) {
	s := newModelServer(t)
	const big = "unet/model.onnx_data"
	release := make(chan struct{})
	defer close(release)
	s.with(func() { s.block[big] = release })
	go func() {
		<-s.started
		s.mu.Lock()
		delete(s.block, big)
		s.mu.Unlock()
	}()
	opts := testOptions(t.TempDir(), s.catalog(t, false))
	opts.StallTimeout = 200 * time.Millisecond
	var out bytes.Buffer
	res, err := Pull(context.Background(), &out, "tiny", opts)
	if err != nil {
		t.Fatalf("Pull: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "download "+big+": no data received for 200ms (at 90.5 KiB of 181.0 KiB)") {
		t.Errorf("output:\n%s", out.String())
	}
	if len(res.Resumed) != 1 {
		t.Errorf("resumed = %v", res.Resumed)
	}
}
