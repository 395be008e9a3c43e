package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkSaveToRebuildStart measures the time from an editor's save
// (the write returning) to Run calling Build for it, with the default
// debounce. The target is at most DefaultDebounce + 50ms; the
// "ms-over-debounce" metrics show how much of it is not the deliberate
// debounce wait (mean and worst case).
func BenchmarkSaveToRebuildStart(b *testing.B) {
	for _, save := range []struct {
		name string
		do   func(root string, i int) error
	}{
		{"in-place", func(root string, i int) error {
			return os.WriteFile(filepath.Join(root, "assets", "dungeon.kiln.yaml"), []byte(fmt.Sprintf("assets: [%d]\n", i)), 0o644)
		}},
		{"rename-over", func(root string, i int) error {
			tmp := filepath.Join(root, "assets", "dungeon.kiln.yaml___jb_tmp___")
			if err := os.WriteFile(tmp, []byte(fmt.Sprintf("assets: [%d]\n", i)), 0o644); err != nil {
				return err
			}
			return os.Rename(tmp, filepath.Join(root, "assets", "dungeon.kiln.yaml"))
		}},
	} {
		b.Run(save.name, func(b *testing.B) {
			root := b.TempDir()
			writeFile(b, root, "kiln.yaml", "version: 1\n")
			writeFile(b, root, "assets/dungeon.kiln.yaml", "assets: []\n")
			started := make(chan time.Time, 1)
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				errc <- Run(ctx, Options{Root: root, Ignore: []string{"out"}, Build: func(ctx context.Context, req Request) Result {
					started <- time.Now()
					return Result{}
				}})
			}()
			defer func() {
				cancel()
				if err := <-errc; err != nil {
					b.Error(err)
				}
			}()
			<-started // the initial build
			var total, worst time.Duration
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if err := save.do(root, i); err != nil {
					b.Fatal(err)
				}
				var t1 time.Time
				select {
				case t1 = <-started:
				case <-time.After(10 * time.Second):
					b.Fatal("no rebuild within 10s of a save")
				}
				d := t1.Sub(t0)
				total += d
				worst = max(worst, d)
			}
			b.StopTimer()
			mean := total / time.Duration(b.N)
			b.ReportMetric(float64(mean)/1e6, "ms/save")
			b.ReportMetric(float64(mean-DefaultDebounce)/1e6, "ms-over-debounce")
			b.ReportMetric(float64(worst-DefaultDebounce)/1e6, "worst-ms-over-debounce")
		})
	}
}
