package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// imageStages makes a project like the benchmark: n hand-made
// images in 20 folders, each an asset with one stage that reads its source
// file and publishes a copy.
func imageStages(tb testing.TB, root string, n int) []Stage {
	tb.Helper()
	stages := make([]Stage, n)
	for i := range n {
		dir := fmt.Sprintf("set%02d", i%20)
		src := fmt.Sprintf("art/%s/img%05d.png", dir, i)
		full := filepath.Join(root, filepath.FromSlash(src))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(full, fmt.Appendf(nil, "pixels of image %d", i), 0o644); err != nil {
			tb.Fatal(err)
		}
		id := fmt.Sprintf("%s/img%05d", dir, i)
		stages[i] = Stage{
			ID: id + ":source", Asset: id, Kind: "image.source", Version: "1",
			Params: struct {
				Path string `json:"path"`
				Size [2]int `json:"size"`
			}{src, [2]int{64, 64}},
			Files:   []string{src},
			Where:   fmt.Sprintf("%s/assets.kiln.yaml:%d:3", dir, i+1),
			Publish: map[string]string{"image": id + ".png"},
			Run: func(ctx context.Context, r *Run) error {
				data, err := os.ReadFile(filepath.Join(r.Root, src))
				if err != nil {
					return err
				}
				return r.WriteFile("image", data)
			},
		}
	}
	return stages
}

// backdate sets the times of every file under dir an hour back, as if the
// project had been built long ago (files changed within the last moment
// are re-hashed once, see racyWindow).
func backdate(tb testing.TB, dir string) {
	old := time.Now().Add(-time.Hour)
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
}

func TestNoopBuildHashesNothing(t *testing.T) {
	root := t.TempDir()
	stages := imageStages(t, root, 50)
	o := Options{Root: root, Jobs: 2}
	if rep, err := Build(context.Background(), stages, o); err != nil || rep.Totals[StatusBuilt] != 50 {
		t.Fatalf("full build: %v", err)
	}
	backdate(t, root)
	// Times changed, content did not: everything is re-hashed once and
	// found unchanged.
	rep, err := Build(context.Background(), stages, o)
	if err != nil || rep.Totals[StatusCached] != 50 || rep.FilesHashed != 100 {
		t.Fatalf("after touching: %v, cached %d, hashed %d (want 50 and 100)", err, rep.Totals[StatusCached], rep.FilesHashed)
	}
	rep, err = Build(context.Background(), stages, o)
	if err != nil || rep.Totals[StatusCached] != 50 || rep.FilesHashed != 0 {
		t.Fatalf("no-op build: %v, cached %d, hashed %d (want 50 and 0)", err, rep.Totals[StatusCached], rep.FilesHashed)
	}
	// Editing one source image rebuilds exactly that asset.
	os.WriteFile(filepath.Join(root, "art/set03/img00003.png"), []byte("new pixels"), 0o644)
	rep, err = Build(context.Background(), stages, o)
	if err != nil || rep.Totals[StatusBuilt] != 1 || rep.Stage("set03/img00003:source").Status != StatusBuilt || rep.FilesHashed != 1 {
		t.Fatalf("one changed source: %v, built %d, hashed %d", err, rep.Totals[StatusBuilt], rep.FilesHashed)
	}
}

func benchNoop(b *testing.B, n int) {
	root := b.TempDir()
	stages := imageStages(b, root, n)
	o := Options{Root: root}
	ctx := context.Background()
	if _, err := Build(ctx, stages, o); err != nil {
		b.Fatal(err)
	}
	backdate(b, root)
	if _, err := Build(ctx, stages, o); err != nil { // settles the stat records
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Build(ctx, stages, o)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Totals[StatusCached] != n || rep.FilesHashed != 0 {
			b.Fatalf("not a no-op: %s, hashed %d", rep.Summary(), rep.FilesHashed)
		}
	}
	b.StopTimer()
	// CPU time (user + system, all threads) tells the cost apart from
	// waiting when the machine is shared.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkNoopBuild1k measures a build of 1,000 unchanged image assets
// (target: well under 50 ms).
func BenchmarkNoopBuild1k(b *testing.B) { benchNoop(b, 1000) }

// BenchmarkNoopBuild10k measures the same with 10,000 assets (target:
// linear growth, under 500 ms).
func BenchmarkNoopBuild10k(b *testing.B) { benchNoop(b, 10000) }
