package manifests

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzParse feeds arbitrary bytes to the parser and validator as one
// manifest (and, split at a NUL, as kiln.yaml too). It must never panic,
// and every failure must be an ErrorList whose errors name a file.
func FuzzParse(f *testing.F) {
	for _, c := range errCases() {
		for name, data := range c.files {
			if name != ConfigFile && len(data) < 1<<16 {
				f.Add([]byte(data))
			}
		}
	}
	f.Add([]byte(starterManifest))
	f.Add([]byte(uncomment(starterManifest)))
	f.Add([]byte(baseConfig + "\x00" + m("assets: []\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, manifest := []byte(baseConfig), data
		if i := strings.IndexByte(string(data), 0); i >= 0 {
			cfg, manifest = data[:i], data[i+1:]
		}
		fsys := fstest.MapFS{
			ConfigFile:    &fstest.MapFile{Data: cfg},
			"a.kiln.yaml": &fstest.MapFile{Data: manifest},
		}
		p, err := LoadFS(fsys)
		if err == nil {
			if p == nil || p.Config == nil {
				t.Fatal("nil project without an error")
			}
			for _, a := range p.Assets {
				if msg, _ := CheckID(a.ID); msg != "" {
					t.Fatalf("accepted bad id %q: %s", a.ID, msg)
				}
			}
			return
		}
		if errors.Is(err, ErrNoConfig) {
			t.Fatal("ErrNoConfig with a kiln.yaml present")
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error is not a non-empty ErrorList: %v", err)
		}
		for _, e := range list {
			if e.Pos.File != ConfigFile && e.Pos.File != "a.kiln.yaml" {
				t.Fatalf("error without a file: %q", e.Error())
			}
			if e.Msg == "" {
				t.Fatalf("error without a message: %q", e.Error())
			}
		}
		if len(list) > 2*(maxErrorsPerFile+1) {
			t.Fatalf("%d errors for two files", len(list))
		}
	})
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("assets:\n")
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "  - {id: a%d, kind: image, image: {source: a.png}, bogus: 1}\n", i)
	}
	got := errLines(t, map[string]string{"a.kiln.yaml": m(b.String())})
	if len(got) != maxErrorsPerFile+1 {
		t.Fatalf("%d errors, want %d", len(got), maxErrorsPerFile+1)
	}
	if want := "a.kiln.yaml: more than 200 problems; stopped checking this file (fix the ones above and run again)"; got[0] != want {
		// Sorting puts the position-less line first.
		t.Errorf("summary line = %q, want %q", got[0], want)
	}
}

// BenchmarkLoad measures loading a project of 1,000 image assets in 20
// manifests, the shape of the no-op build benchmark of issue 2 (whose
// budget for the whole build is 50 ms).
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("assets=%d", n), func(b *testing.B) {
			fsys := benchProject(n, 20)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := LoadFS(fsys); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchProject(assets, files int) fstest.MapFS {
	fsys := fstest.MapFS{ConfigFile: &fstest.MapFile{Data: []byte(baseConfig)}}
	per := assets / files
	for f := 0; f < files; f++ {
		var b strings.Builder
		b.WriteString("version: 1\nassets:\n")
		for i := 0; i < per; i++ {
			fmt.Fprintf(&b, "  - id: set%02d/sprite-%04d\n    kind: image\n    image:\n      source: art/set%02d/sprite-%04d.png\n    tags: [bench]\n", f, i, f, i)
		}
		b.WriteString("atlases:\n")
		fmt.Fprintf(&b, "  - id: atlas%02d\n    include: [\"set%02d/*\"]\n", f, f)
		fsys[fmt.Sprintf("set%02d.kiln.yaml", f)] = &fstest.MapFile{Data: []byte(b.String())}
	}
	return fsys
}
