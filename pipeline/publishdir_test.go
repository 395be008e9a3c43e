package pipeline

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
)

// pagesStage writes n pages and a sub-folder file, known only when it runs,
// published with PublishDir.
func (p *project) pagesStage(id string, n int, dir string) Stage {
	return Stage{
		ID: id, Asset: strings.Split(id, ":")[0], Kind: "test.pages", Version: "1",
		Params: map[string]any{"n": n}, Where: "test.kiln.yaml:4:1", PublishDir: dir,
		Run: func(ctx context.Context, r *Run) error {
			p.ran(id)
			for i := 0; i < n; i++ {
				if err := r.WriteFile("page-"+strconv.Itoa(i)+".png", []byte{byte(i)}); err != nil {
					return err
				}
			}
			return r.WriteFile("godot/hero.tres", []byte("res"))
		},
	}
}

func TestPublishDir(t *testing.T) {
	p := newProject(t)
	rep, err := Build(context.Background(), []Stage{p.pagesStage("atlas:pack", 3, "ui/atlas")}, p.opts())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ui/atlas/page-0.png", "ui/atlas/page-2.png", "ui/atlas/godot/hero.tres"} {
		if p.read(f) == "" {
			t.Errorf("%s not published", f)
		}
	}
	if got := rep.Stages[0].Outputs[0].Path; !strings.HasPrefix(got, "ui/atlas/") {
		t.Errorf("report path %q, want it under ui/atlas/", got)
	}
	// A second build serves every dynamic output from the cache and
	// restores one that was deleted.
	if err := removeFile(p.out("ui/atlas/page-1.png")); err != nil {
		t.Fatal(err)
	}
	rep, err = Build(context.Background(), []Stage{p.pagesStage("atlas:pack", 3, "ui/atlas")}, p.opts())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Stages[0].Status != StatusCached || p.read("ui/atlas/page-1.png") == "" {
		t.Fatalf("status %s, page-1 %q: want cached and restored", rep.Stages[0].Status, p.read("ui/atlas/page-1.png"))
	}
	// Fewer pages: the old page is an orphan, not a stale output.
	rep, err = Build(context.Background(), []Stage{p.pagesStage("atlas:pack", 2, "ui/atlas")}, p.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0] != "ui/atlas/page-2.png" {
		t.Fatalf("orphans %v, want [ui/atlas/page-2.png]", rep.Orphans)
	}
}

func TestPublishDirCollisions(t *testing.T) {
	p := newProject(t)
	tests := []struct {
		name   string
		stages []Stage
		want   string
	}{
		{"file inside folder", []Stage{p.pagesStage("a:pack", 1, "ui/atlas"), p.constStage("b:x", "x", "ui/atlas/b.png")},
			`stage "b:x" publishes "ui/atlas/b.png" inside folder "ui/atlas", which stage "a:pack" publishes into; give them different output paths`},
		{"same folder", []Stage{p.pagesStage("a:pack", 1, "ui/atlas"), p.pagesStage("b:pack", 1, "ui/atlas")},
			`stages "a:pack" and "b:pack" both publish into folder "ui/atlas"; give them different output paths`},
		{"escape", []Stage{p.pagesStage("a:pack", 1, "../x")}, `stage "a:pack" output folder:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Graph(tt.stages)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Graph error %v, want %q", err, tt.want)
			}
		})
	}
}

func removeFile(path string) error { return os.Remove(path) }
