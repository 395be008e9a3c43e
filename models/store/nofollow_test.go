package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// The tests below plant symlinks where a pull writes and check that the
// pull refuses them, naming the link, and that nothing outside the
// project changed: they list and hash the whole temporary tree before and
// after.

// fixture is a temporary folder holding a project and, beside it, a
// folder no pull may touch, with files in it.
type fixture struct {
	tmp, root, outside string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	tmp := t.TempDir()
	f := fixture{tmp: tmp, root: filepath.Join(tmp, "project"), outside: filepath.Join(tmp, "outside")}
	for _, d := range []string{f.root, filepath.Join(f.outside, "keep")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range map[string]string{"victim.json": "precious", "keep/data.bin": "keep me"} {
		if err := os.WriteFile(filepath.Join(f.outside, filepath.FromSlash(name)), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// dest is the default destination of the model "tiny".
func (f fixture) dest() string { return filepath.Join(f.root, "models", "tiny") }

// staging is dest's staging folder.
func (f fixture) staging() string { return f.dest() + StagingSuffix }

// in returns the path of rel (slash-separated) inside the project.
func (f fixture) in(rel string) string { return filepath.Join(f.root, filepath.FromSlash(rel)) }

// mkdir creates folders inside the project.
func (f fixture) mkdir(t *testing.T, rels ...string) {
	t.Helper()
	for _, rel := range rels {
		if err := os.MkdirAll(f.in(rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// symlink makes link point to target, skipping the test where the system
// cannot make symlinks.
func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("cannot make symlinks here: %v", err)
	}
}

// treeState describes every entry below dir, read without following
// symlinks: "dir", "file SIZE SHA256", "link -> TARGET", or the type of
// anything else. Keys are slash-separated paths relative to dir.
func treeState(t testing.TB, dir string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			state[rel] = "link -> " + target
		case d.IsDir():
			state[rel] = "dir"
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			state[rel] = fmt.Sprintf("file %d %s", len(data), sha256Hex(data))
		default:
			state[rel] = d.Type().String()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	return state
}

// checkUnchanged fails for every path whose state differs between before
// and after, except those skip accepts.
func checkUnchanged(t testing.TB, before, after map[string]string, skip func(rel string) bool) {
	t.Helper()
	paths := map[string]bool{}
	for p := range before {
		paths[p] = true
	}
	for p := range after {
		paths[p] = true
	}
	var changed []string
	for p := range paths {
		if before[p] != after[p] && (skip == nil || !skip(p)) {
			changed = append(changed, fmt.Sprintf("%s: %q -> %q", p, before[p], after[p]))
		}
	}
	sort.Strings(changed)
	if len(changed) > 0 {
		t.Errorf("the pull changed:\n  %s", strings.Join(changed, "\n  "))
	}
}

// insideOf returns a skip function for checkUnchanged accepting the paths
// strictly inside rel.
func insideOf(rel string) func(string) bool {
	return func(p string) bool { return strings.HasPrefix(p, rel+"/") }
}

// linkMsg is the message of the *safepath.LinkError for link.
func linkMsg(link, target, op string) string {
	return fmt.Sprintf("%s is a symlink (to %s); kiln does not follow symlinks when it writes or deletes, so it will not %s; remove the link and run kiln again", link, target, op)
}

// olderExport writes a copy of the model into dir with one file changed,
// as a model folder to replace.
func olderExport(t *testing.T, dir string) {
	t.Helper()
	copyDir(t, modelDir, dir)
	if err := os.WriteFile(filepath.Join(dir, "unet", "model.onnx"), []byte("an older export"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPullRefusesFolderSymlinks plants a symlink at each folder a pull
// creates, renames or removes (item 1 of the data-safety issue: the
// staging folder; and the destination's parents, the destination, the
// folder a replace moves the old one to, folders and stray entries inside
// the staging folder). The pull must refuse, name the link and its target,
// leave the link alone and change nothing outside the staging folder.
func TestPullRefusesFolderSymlinks(t *testing.T) {
	tests := []struct {
		name string
		// plant sets up the project and returns the link it planted and
		// its target.
		plant   func(t *testing.T, f fixture, s *modelServer) (link, target string)
		replace bool
		// want is the error ("" for success) and wantOut a line the
		// output must hold.
		want    func(f fixture, link, target string) string
		wantOut func(f fixture, link, target string) string
	}{
		{
			name: "staging folder links outside",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				f.mkdir(t, "models")
				symlink(t, f.outside, f.staging())
				return f.staging(), f.outside
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "download tiny into it")
			},
		},
		{
			name: "staging folder links inside the project",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				f.mkdir(t, "models", "elsewhere")
				symlink(t, f.in("elsewhere"), f.staging())
				return f.staging(), f.in("elsewhere")
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "download tiny into it")
			},
		},
		{
			name: "staging folder links to nothing",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				f.mkdir(t, "models")
				target := filepath.Join(f.outside, "missing")
				symlink(t, target, f.staging())
				return f.staging(), target
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "download tiny into it")
			},
		},
		{
			name: "folder in the staging folder links outside",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				link := filepath.Join(f.staging(), "unet")
				symlink(t, f.outside, link)
				return link, f.outside
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "write unet/model.onnx_data")
			},
		},
		{
			name: "stray symlink in the staging folder",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				link := filepath.Join(f.staging(), "stray")
				target := filepath.Join(f.outside, "victim.json")
				symlink(t, target, link)
				return link, target
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "tidy the staging folder")
			},
		},
		{
			name: "models folder links outside",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				symlink(t, f.outside, f.in("models"))
				return f.in("models"), f.outside
			},
			// Choosing the destination (DefaultDest) already refuses it.
			want: func(f fixture, link, target string) string {
				return fmt.Sprintf("path %q goes through the symlink %s, which points to %s, outside %s; remove the symlink or make it point inside %s", "models/tiny", link, target, f.root, f.root)
			},
		},
		{
			name: "models folder links inside the project",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				f.mkdir(t, "store")
				symlink(t, f.in("store"), f.in("models"))
				return f.in("models"), f.in("store")
			},
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "create the model folder for tiny in it")
			},
		},
		{
			name: "model folder to replace links inside the project",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				olderExport(t, f.in("store/tiny"))
				f.mkdir(t, "models")
				symlink(t, f.in("store/tiny"), f.dest())
				return f.dest(), f.in("store/tiny")
			},
			replace: true,
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "replace it with tiny")
			},
		},
		{
			name: "old folder of a replace links outside",
			plant: func(t *testing.T, f fixture, _ *modelServer) (string, string) {
				olderExport(t, f.dest())
				symlink(t, f.outside, f.dest()+oldSuffix)
				return f.dest() + oldSuffix, f.outside
			},
			replace: true,
			want: func(f fixture, link, target string) string {
				return "pull tiny: " + linkMsg(link, target, "set the previous model folder aside there")
			},
		},
		{
			name: "up to date, old folder links outside",
			plant: func(t *testing.T, f fixture, s *modelServer) (string, string) {
				if _, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", testOptions(f.root, s.catalog(t, false))); err != nil {
					t.Fatal(err)
				}
				symlink(t, f.outside, f.dest()+oldSuffix)
				return f.dest() + oldSuffix, f.outside
			},
			wantOut: func(f fixture, link, target string) string {
				return "warning: " + linkMsg(link, target, "remove the previous model folder")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelServer(t)
			f := newFixture(t)
			link, target := tt.plant(t, f, s)
			before := treeState(t, f.tmp)
			opts := testOptions(f.root, s.catalog(t, false))
			opts.Parallel = 1 // the first file to fail is always the same
			opts.Replace = tt.replace
			var out bytes.Buffer
			_, err := Pull(context.Background(), &out, "tiny", opts)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Pull: %v\n%s", err, out.String())
			case tt.want != nil && (err == nil || err.Error() != tt.want(f, link, target)):
				t.Errorf("error\n got  %v\n want %s", err, tt.want(f, link, target))
			case tt.want != nil && !errors.Is(err, safepath.ErrUnsafe):
				t.Errorf("error %v does not wrap safepath.ErrUnsafe", err)
			}
			if tt.wantOut != nil && !strings.Contains(out.String(), tt.wantOut(f, link, target)) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut(f, link, target), out.String())
			}
			if got, err := os.Readlink(link); err != nil || got != target {
				t.Errorf("the planted link is now %q, %v; want it left pointing to %s", got, err, target)
			}
			// Files may have been downloaded into the real staging folder,
			// nowhere else.
			rel, _ := filepath.Rel(f.tmp, f.staging())
			checkUnchanged(t, before, treeState(t, f.tmp), insideOf(filepath.ToSlash(rel)))
		})
	}
}

// TestPullRefusesFileSymlinks plants a symlink where a pull writes a file
// in the staging folder (item 2 of the data-safety issue): the partial
// download model_index.json.part, whether the server resumes downloads or
// not, and the finished file. The pull must fail, name the link, and leave
// the file it points to as it was.
func TestPullRefusesFileSymlinks(t *testing.T) {
	tests := []struct {
		name    string
		file    string // link, relative to the staging folder
		inside  bool   // the link points to a file inside the project
		noRange bool
	}{
		{name: "partial file links outside, server resumes", file: "model_index.json.part"},
		{name: "partial file links outside, server ignores ranges", file: "model_index.json.part", noRange: true},
		{name: "partial file links inside the project", file: "model_index.json.part", inside: true},
		{name: "finished file links outside", file: "model_index.json"},
		{name: "partial file in a subfolder links outside", file: "unet/config.json.part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelServer(t)
			s.with(func() { s.noRange = tt.noRange })
			f := newFixture(t)
			target := filepath.Join(f.outside, "victim.json")
			if tt.inside {
				target = f.in("notes.txt")
				if err := os.WriteFile(target, []byte("my notes"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			link := filepath.Join(f.staging(), filepath.FromSlash(tt.file))
			symlink(t, target, link)
			before := treeState(t, f.tmp)

			opts := testOptions(f.root, s.catalog(t, false))
			opts.Parallel = 1
			_, err := Pull(context.Background(), &bytes.Buffer{}, "tiny", opts)
			name := strings.TrimSuffix(tt.file, partSuffix)
			want := "pull tiny: " + linkMsg(link, target, "write "+name)
			if err == nil || err.Error() != want {
				t.Errorf("error\n got  %v\n want %s", err, want)
			}
			if exists(f.dest()) {
				t.Error("the refused pull created the model folder")
			}
			if got, err := os.Readlink(link); err != nil || got != target {
				t.Errorf("the planted link is now %q, %v; want it left pointing to %s", got, err, target)
			}
			rel, _ := filepath.Rel(f.tmp, f.staging())
			checkUnchanged(t, before, treeState(t, f.tmp), insideOf(filepath.ToSlash(rel)))
		})
	}
}

// TestPullFailureCleansUp checks what a failed pull leaves in the project
// (item 3 of the data-safety issue): data a next pull resumes from, never
// empty partial files or empty folders, and no staging folder (or models/
// folder it created) when nothing was downloaded. The next pull then
// resumes from what is left.
func TestPullFailureCleansUp(t *testing.T) {
	const big, missing = "unet/model.onnx_data", "extra/missing.bin"
	only := fileOf(t, modelManifest, "model_index.json")
	withMissing := func(m *Manifest) *Manifest {
		m.Files = append(append([]File(nil), m.Files...), File{Path: missing, Size: 3, SHA256: only.SHA256})
		sortFiles(m.Files)
		return m
	}
	allFiles := func(fixture) []string {
		var out []string
		for _, file := range modelManifest.Files {
			out = append(out, "models/tiny"+StagingSuffix+"/"+file.Path)
		}
		return out
	}
	tests := []struct {
		name string
		// serve sets up the server (its manifest and faults); plant the
		// project.
		serve     func(s *modelServer)
		plant     func(t *testing.T, f fixture)
		cancelled bool
		retries   int
		want      func(s *modelServer, f fixture) string
		// left lists the files the failed pull leaves in the project
		// (slash-separated, relative to it; folders are implied).
		left func(f fixture) []string
		// resumes is what the next pull, with the server fixed,
		// downloads (bytes); -1 skips it.
		resumes int64
	}{
		{
			name: "the only file is missing",
			serve: func(s *modelServer) {
				s.setManifest(&Manifest{Version: ManifestVersion, Name: "tiny", Files: []File{{Path: missing, Size: 3, SHA256: only.SHA256}}})
			},
			want: func(s *modelServer, f fixture) string {
				return fmt.Sprintf("pull tiny: fetch model file %s from %s%s: HTTP 404 Not Found: check the catalogue's url and revision, or whether the server publishes this file", missing, s.base(), missing)
			},
			resumes: -1,
		},
		{
			name: "the only file is corrupt",
			serve: func(s *modelServer) {
				s.setManifest(&Manifest{Version: ManifestVersion, Name: "tiny", Files: []File{only}})
				s.with(func() { s.override[only.Path] = bytes.Repeat([]byte{'x'}, int(only.Size)) })
			},
			want: func(s *modelServer, f fixture) string {
				got := sha256Hex(bytes.Repeat([]byte{'x'}, int(only.Size)))
				return "pull tiny: model_index.json is corrupt: expected sha256 " + only.SHA256 + ", got " + got + "; the downloaded data was deleted: pull again, and if the same hash comes back the server's copy or the catalogue entry is wrong"
			},
			resumes: -1,
		},
		{
			name:  "empty leftovers of an earlier pull go too",
			serve: func(s *modelServer) { s.setManifest(withMissing(&Manifest{Version: ManifestVersion, Name: "tiny"})) },
			plant: func(t *testing.T, f fixture) {
				f.mkdir(t, "models/tiny"+StagingSuffix+"/old/empty")
				if err := os.WriteFile(f.in("models/README"), []byte("models go here"), 0o644); err != nil {
					t.Fatal(err)
				}
				for _, rel := range []string{"unet/model.onnx.part", "old.bin.part"} {
					p := filepath.Join(f.staging(), filepath.FromSlash(rel))
					os.MkdirAll(filepath.Dir(p), 0o755)
					if err := os.WriteFile(p, nil, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: func(s *modelServer, f fixture) string {
				return fmt.Sprintf("pull tiny: fetch model file %s from %s%s: HTTP 404 Not Found: check the catalogue's url and revision, or whether the server publishes this file", missing, s.base(), missing)
			},
			left:    func(fixture) []string { return []string{"models/README"} },
			resumes: -1,
		},
		{
			name: "a file is missing, the others are kept",
			// Largest first, one at a time: the 3-byte file comes last.
			serve: func(s *modelServer) {
				s.setManifest(withMissing(&Manifest{Version: ManifestVersion, Name: "tiny", Files: modelManifest.Files}))
			},
			want: func(s *modelServer, f fixture) string {
				return fmt.Sprintf("pull tiny: fetch model file %s from %s%s: HTTP 404 Not Found: check the catalogue's url and revision, or whether the server publishes this file", missing, s.base(), missing)
			},
			left:    allFiles,
			resumes: 0,
		},
		{
			name:    "the connection drops, the data is kept",
			serve:   func(s *modelServer) { s.with(func() { s.cutOnce[big] = 50_000 }) },
			retries: -1,
			want: func(s *modelServer, f fixture) string {
				return fmt.Sprintf("pull tiny: download %s from %s%s: the connection closed early (at 48.8 KiB of 181.0 KiB); what was downloaded is kept in %s: run the pull again to resume", big, s.base(), big, f.staging())
			},
			left:    func(fixture) []string { return []string{"models/tiny" + StagingSuffix + "/" + big + partSuffix} },
			resumes: modelManifest.TotalSize() - 50_000,
		},
		{
			name:      "cancelled before anything arrived",
			cancelled: true, // with a catalogue listing the files: no request at all
			want:      func(*modelServer, fixture) string { return "pull tiny stopped: context canceled" },
			resumes:   modelManifest.TotalSize(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelServer(t)
			if tt.serve != nil {
				tt.serve(s)
			}
			f := newFixture(t)
			if tt.plant != nil {
				tt.plant(t, f)
			}
			before := treeState(t, f.tmp)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			opts, arg := testOptions(f.root, nil), s.base()
			if tt.cancelled {
				opts.Catalog, arg = s.catalog(t, false), "tiny"
			}
			opts.Parallel, opts.Retries = 1, tt.retries
			_, err := Pull(ctx, &bytes.Buffer{}, arg, opts)
			if want := tt.want(s, f); err == nil || err.Error() != want {
				t.Fatalf("error\n got  %v\n want %s", err, want)
			}

			var wantLeft []string
			if tt.left != nil {
				wantLeft = tt.left(f)
			}
			var gotLeft []string
			for rel, what := range treeState(t, f.root) {
				if what != "dir" {
					gotLeft = append(gotLeft, rel)
				}
			}
			sort.Strings(gotLeft)
			sort.Strings(wantLeft)
			if strings.Join(gotLeft, "\n") != strings.Join(wantLeft, "\n") {
				t.Errorf("the failed pull left\n  %s\nwant\n  %s", strings.Join(gotLeft, "\n  "), strings.Join(wantLeft, "\n  "))
			}
			if len(wantLeft) == 0 {
				if entries, _ := os.ReadDir(f.root); len(entries) != 0 {
					t.Errorf("the failed pull left folders in the project: %v", entries)
				}
			}
			for rel, what := range treeState(t, f.root) {
				if what == "dir" && rel != "." {
					if entries, _ := os.ReadDir(f.in(rel)); len(entries) == 0 {
						t.Errorf("the failed pull left the empty folder %s", rel)
					}
				}
			}
			checkUnchanged(t, before, treeState(t, f.tmp), insideOf("project"))

			if tt.resumes < 0 {
				return
			}
			// With the server fixed, the next pull downloads only what is
			// not left and cleans up after itself.
			s.setManifest(modelManifest)
			s.with(func() { s.cutOnce, s.override = map[string]int{}, map[string][]byte{} })
			res, err := Pull(context.Background(), &bytes.Buffer{}, s.base(), testOptions(f.root, nil))
			if err != nil {
				t.Fatalf("the next pull: %v", err)
			}
			if res.Fetched != tt.resumes {
				t.Errorf("the next pull downloaded %d bytes, want %d", res.Fetched, tt.resumes)
			}
			sameTree(t, f.dest())
			if exists(f.staging()) {
				t.Error("the next pull left its staging folder")
			}
		})
	}
}

// TestPullDestinationInsideProject: a destination outside the project (or
// the project folder itself) is refused before anything is asked of the
// server or written, with an *OutsideError naming both folders (item 4 of
// the data-safety issue); one inside is pulled into.
func TestPullDestinationInsideProject(t *testing.T) {
	outsideMsg := func(dest, root string) string {
		return fmt.Sprintf("the destination folder %s is not inside the project %s; a pulled model must go in a folder inside the project, such as %s: choose one there, or run kiln in the project that should hold the model", dest, root, filepath.Join(root, "models", "NAME"))
	}
	tests := []struct {
		name string
		// setup prepares the fixture and returns the project root and
		// destination to give.
		setup func(t *testing.T, f fixture) (root, dest string)
		want  func(f fixture, root, dest string) string // "" succeeds
		// outside: the error is an *OutsideError, made before the server
		// is asked anything.
		outside bool
	}{
		{
			name: "beside the project",
			setup: func(t *testing.T, f fixture) (string, string) {
				return f.root, filepath.Join(f.tmp, "elsewhere", "tiny")
			},
			want:    func(f fixture, root, dest string) string { return outsideMsg(dest, root) },
			outside: true,
		},
		{
			name:  "leaving the project with ..",
			setup: func(t *testing.T, f fixture) (string, string) { return f.root, f.root + "/../outside/tiny" },
			want: func(f fixture, root, dest string) string {
				return outsideMsg(filepath.Join(f.outside, "tiny"), root)
			},
			outside: true,
		},
		{
			name:    "above the project",
			setup:   func(t *testing.T, f fixture) (string, string) { return f.root, f.tmp },
			want:    func(f fixture, root, dest string) string { return outsideMsg(dest, root) },
			outside: true,
		},
		{
			name:  "the project folder itself",
			setup: func(t *testing.T, f fixture) (string, string) { return f.root, f.root },
			want: func(f fixture, root, dest string) string {
				return fmt.Sprintf("the destination folder %s is the project folder itself; a pulled model must go in a folder inside the project, such as %s: choose one there, or run kiln in the project that should hold the model", root, filepath.Join(root, "models", "NAME"))
			},
			outside: true,
		},
		{
			name: "inside the project through a symlink to outside",
			setup: func(t *testing.T, f fixture) (string, string) {
				symlink(t, f.outside, f.in("ext"))
				return f.root, f.in("ext/tiny")
			},
			want: func(f fixture, root, dest string) string {
				return fmt.Sprintf("check destination %s: path %q goes through the symlink %s, which points to %s, outside %s; remove the symlink or make it point inside %s", dest, "ext/tiny", f.in("ext"), f.outside, root, root)
			},
		},
		{
			name:  "inside the project",
			setup: func(t *testing.T, f fixture) (string, string) { return f.root, f.in("weights/tiny") },
		},
		{
			name: "inside the project named through a symlink",
			setup: func(t *testing.T, f fixture) (string, string) {
				alias := filepath.Join(f.tmp, "alias")
				symlink(t, f.root, alias)
				return alias, f.in("weights/tiny")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newModelServer(t)
			f := newFixture(t)
			root, dest := tt.setup(t, f)
			before := treeState(t, f.tmp)
			opts := testOptions(root, s.catalog(t, true)) // the file list is fetched
			opts.Dest = dest
			var out bytes.Buffer
			res, err := Pull(context.Background(), &out, "tiny", opts)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Pull: %v\n%s", err, out.String())
				}
				if res.Dir != filepath.Clean(dest) {
					t.Errorf("pulled into %s, want %s", res.Dir, dest)
				}
				sameTree(t, dest)
				weights := insideOf("project/weights")
				checkUnchanged(t, before, treeState(t, f.tmp), func(p string) bool { return p == "project/weights" || weights(p) })
				return
			}
			if want := tt.want(f, root, dest); err == nil || err.Error() != want {
				t.Errorf("error\n got  %v\n want %s", err, want)
			}
			var oe *OutsideError
			if errors.As(err, &oe) != tt.outside {
				t.Errorf("errors.As(%v, *OutsideError) = %v, want %v", err, !tt.outside, tt.outside)
			}
			if tt.outside {
				s.with(func() {
					if len(s.requests) != 0 {
						t.Errorf("the server was asked %v before the destination was checked", s.requests)
					}
				})
			}
			checkUnchanged(t, before, treeState(t, f.tmp), nil)
		})
	}

	// Download checks the destination as well.
	f := newFixture(t)
	src := &Source{Name: "tiny", BaseURL: "http://127.0.0.1:1/", Files: modelManifest.Files, From: "test"}
	dest := filepath.Join(f.outside, "tiny")
	_, err := Download(context.Background(), &bytes.Buffer{}, src, dest, PullOptions{ProjectRoot: f.root, Retries: -1})
	var oe *OutsideError
	if !errors.As(err, &oe) || oe.Dest != dest || oe.Root != f.root || err.Error() != "pull tiny: "+outsideMsg(dest, f.root) {
		t.Errorf("Download outside the project: %v", err)
	}
}
