package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// project is a temporary project folder with a run counter.
type project struct {
	t     *testing.T
	root  string
	mu    sync.Mutex
	runs  map[string]int
	order []string
}

func newProject(t *testing.T) *project {
	t.Helper()
	return &project{t: t, root: t.TempDir(), runs: map[string]int{}}
}

func (p *project) opts() Options {
	return Options{Root: p.root, Jobs: 2}
}

func (p *project) out(rel string) string {
	return filepath.Join(p.root, "out", filepath.FromSlash(rel))
}

func (p *project) cacheDir() string { return filepath.Join(p.root, ".kiln", "cache") }

// write creates a source file in the project.
func (p *project) write(rel, content string) {
	p.t.Helper()
	path := filepath.Join(p.root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// read returns a published output's content ("" if missing).
func (p *project) read(rel string) string {
	data, err := os.ReadFile(p.out(rel))
	if err != nil {
		return ""
	}
	return string(data)
}

func (p *project) ran(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs[id]++
	p.order = append(p.order, id)
}

// takeRuns returns and resets the sorted ids of stages that ran.
func (p *project) takeRuns() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, n := range p.runs {
		for range n {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	p.runs = map[string]int{}
	p.order = nil
	return ids
}

// build runs Build and fails the test on a non-nil error unless wantErr.
func (p *project) build(stages []Stage, o Options) *Report {
	p.t.Helper()
	rep, err := Build(context.Background(), stages, o)
	if err != nil {
		p.t.Fatalf("Build: %v", err)
	}
	return rep
}

// constStage writes its params' Text as output "out", published at pub.
func (p *project) constStage(id, text, pub string, deps ...string) Stage {
	return Stage{
		ID: id, Asset: strings.Split(id, ":")[0], Kind: "test.const", Version: "1",
		Params: map[string]any{"text": text}, Deps: deps, Where: "test.kiln.yaml:1:1",
		Publish: publishMap(pub),
		Run: func(ctx context.Context, r *Run) error {
			p.ran(id)
			return r.WriteFile("out", []byte(text))
		},
	}
}

// catStage writes the concatenation of its deps' "out" outputs and a
// suffix.
func (p *project) catStage(id, suffix, pub string, deps ...string) Stage {
	return Stage{
		ID: id, Asset: strings.Split(id, ":")[0], Kind: "test.cat", Version: "1",
		Params: map[string]any{"suffix": suffix}, Deps: deps, Where: "test.kiln.yaml:2:1",
		Publish: publishMap(pub),
		Run: func(ctx context.Context, r *Run) error {
			p.ran(id)
			var all []byte
			for _, d := range deps {
				path, err := r.Input(d, "out")
				if err != nil {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				all = append(all, data...)
			}
			return r.WriteFile("out", append(all, suffix...))
		},
	}
}

// fileStage copies source file src (upper-cased when upper) to "out".
func (p *project) fileStage(id, src, pub string) Stage {
	return Stage{
		ID: id, Asset: strings.Split(id, ":")[0], Kind: "test.file", Version: "1",
		Params: map[string]any{"src": src}, Files: []string{src}, Where: "test.kiln.yaml:3:1",
		Publish: publishMap(pub),
		Run: func(ctx context.Context, r *Run) error {
			p.ran(id)
			data, err := os.ReadFile(filepath.Join(r.Root, src))
			if err != nil {
				return err
			}
			w, err := r.Create("out")
			if err != nil {
				return err
			}
			if _, err := io.WriteString(w, strings.ToUpper(string(data))); err != nil {
				w.Close()
				return err
			}
			return w.Close()
		},
	}
}

func publishMap(pub string) map[string]string {
	if pub == "" {
		return nil
	}
	return map[string]string{"out": pub}
}

// statuses returns "id=status" for every stage in the report, in order.
func statuses(rep *Report) string {
	var parts []string
	for _, s := range rep.Stages {
		parts = append(parts, fmt.Sprintf("%s=%s", s.ID, s.Status))
	}
	return strings.Join(parts, " ")
}

// findBlob returns the cache path of the blob holding content.
func findBlob(t *testing.T, cacheDir, content string) string {
	t.Helper()
	var found string
	filepath.Walk(filepath.Join(cacheDir, "cas"), func(path string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			if data, _ := os.ReadFile(path); string(data) == content {
				found = path
			}
		}
		return nil
	})
	if found == "" {
		t.Fatalf("no blob with content %q in %s", content, cacheDir)
	}
	return found
}
