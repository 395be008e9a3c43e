package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// testDebounce is long enough that one simulated save (several syscalls)
// is not split in two when a loaded machine pauses the test between them.
const testDebounce = 120 * time.Millisecond

// project makes a small project folder: a config, a manifest, a source
// image, and kiln's output and cache folders with content.
func project(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, root, "kiln.yaml", "version: 1\n")
	writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: []\n")
	writeFile(t, root, "assets/floor.png", "png")
	writeFile(t, root, "out/dungeon/floor.png", "old output")
	writeFile(t, root, ".kiln/cache/state", "state")
	return root
}

// TestWatcherEditorSaves makes the writes real editors make and checks
// each produces exactly one batch naming exactly the file saved.
func TestWatcherEditorSaves(t *testing.T) {
	const m = "assets/dungeon.kiln.yaml"
	tests := []struct {
		name string
		save func(t *testing.T, root string)
		want []string
	}{
		{"in place", func(t *testing.T, root string) {
			writeFile(t, root, m, "assets: [1]\n")
		}, []string{m}},
		{"temp file renamed over", func(t *testing.T, root string) {
			// The common atomic save: a hidden temp name, then rename.
			writeFile(t, root, "assets/.dungeon.kiln.yaml.kiln-tmp-1234", "assets: [2]\n")
			mustDo(t, os.Rename(filepath.Join(root, "assets/.dungeon.kiln.yaml.kiln-tmp-1234"), filepath.Join(root, m)))
		}, []string{m}},
		{"vim", func(t *testing.T, root string) {
			// vim's default writebackup: probe the folder with 4913,
			// keep a swap file, move the original to name~, write the
			// new file, remove the backup.
			dir := filepath.Join(root, "assets")
			writeFile(t, root, "assets/.dungeon.kiln.yaml.swp", "swap")
			writeFile(t, root, "assets/4913", "")
			mustDo(t, os.Remove(filepath.Join(dir, "4913")))
			mustDo(t, os.Rename(filepath.Join(root, m), filepath.Join(root, m+"~")))
			writeFile(t, root, m, "assets: [3]\n")
			mustDo(t, os.Remove(filepath.Join(root, m+"~")))
			writeFile(t, root, "assets/.dungeon.kiln.yaml.swp", "swap 2")
		}, []string{m}},
		{"JetBrains safe write", func(t *testing.T, root string) {
			writeFile(t, root, m+"___jb_tmp___", "assets: [4]\n")
			mustDo(t, os.Rename(filepath.Join(root, m), filepath.Join(root, m+"___jb_old___")))
			mustDo(t, os.Rename(filepath.Join(root, m+"___jb_tmp___"), filepath.Join(root, m)))
			mustDo(t, os.Remove(filepath.Join(root, m+"___jb_old___")))
		}, []string{m}},
		{"VS Code atomic save", func(t *testing.T, root string) {
			writeFile(t, root, m+".vsctmp", "assets: [5]\n")
			mustDo(t, os.Rename(filepath.Join(root, m+".vsctmp"), filepath.Join(root, m)))
		}, []string{m}},
		{"emacs", func(t *testing.T, root string) {
			mustDo(t, os.Symlink("user@host.123:456", filepath.Join(root, "assets/.#dungeon.kiln.yaml")))
			writeFile(t, root, "assets/#dungeon.kiln.yaml#", "autosave")
			writeFile(t, root, m, "assets: [6]\n")
			mustDo(t, os.Remove(filepath.Join(root, "assets/.#dungeon.kiln.yaml")))
			mustDo(t, os.Remove(filepath.Join(root, "assets/#dungeon.kiln.yaml#")))
		}, []string{m}},
		{"delete and recreate", func(t *testing.T, root string) {
			mustDo(t, os.Remove(filepath.Join(root, m)))
			writeFile(t, root, m, "assets: [7]\n")
		}, []string{m}},
		{"delete", func(t *testing.T, root string) {
			mustDo(t, os.Remove(filepath.Join(root, "assets/floor.png")))
		}, []string{"assets/floor.png"}},
		{"new folder holding a file", func(t *testing.T, root string) {
			// Created and filled at once, before the watcher can add a
			// watch on the new folder: the walk must find the file.
			writeFile(t, root, "levels/cave/deep/cave.kiln.yaml", "assets: []\n")
		}, []string{"levels/cave/deep/cave.kiln.yaml"}},
		{"two files saved together", func(t *testing.T, root string) {
			writeFile(t, root, "assets/floor.png", "png 2")
			writeFile(t, root, "kiln.yaml", "version: 1 # edited\n")
		}, []string{"assets/floor.png", "kiln.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each has its own folder and watcher; they mostly wait
			root := project(t)
			w := newTestWatcher(t, root, testDebounce, nil, "out", ".kiln/cache")
			tt.save(t, root)
			b := nextBatch(t, w)
			samePaths(t, "changed", b.Paths, tt.want)
			if b.Rescan {
				t.Errorf("batch marked as rescan")
			}
			noBatch(t, w, quiet*testDebounce)
		})
	}
}

// TestWatcherIgnored checks that writes kiln and tools make in skipped
// places produce no batch at all.
func TestWatcherIgnored(t *testing.T) {
	root := project(t)
	writeFile(t, root, ".git/HEAD", "ref")
	writeFile(t, root, "node_modules/x/index.js", "")
	w := newTestWatcher(t, root, testDebounce, nil, "out", ".kiln/cache")
	writeFile(t, root, "out/dungeon/floor.png", "new output")
	writeFile(t, root, "out/new/deep/thing.png", "another")
	writeFile(t, root, "out/.floor.png.kiln-tmp-1", "in flight")
	writeFile(t, root, ".kiln/cache/blobs/aa/bb", "blob")
	writeFile(t, root, ".git/index", "idx")
	writeFile(t, root, "node_modules/x/index.js", "x")
	writeFile(t, root, "assets/.floor.png.kiln-tmp-abc", "tmp")
	writeFile(t, root, "assets/floor.png~", "backup")
	writeFile(t, root, "assets/scratch.tmp", "tmp")
	mustDo(t, os.Chmod(filepath.Join(root, "assets/floor.png"), 0o600)) // chmod only
	noBatch(t, w, quiet*testDebounce)
	for _, d := range w.Watched() {
		if d == "out" || strings.HasPrefix(d, "out/") || strings.HasPrefix(d, ".kiln") || strings.HasPrefix(d, ".git") || strings.HasPrefix(d, "node_modules") {
			t.Errorf("skipped folder %s is watched", d)
		}
	}
}

// TestWatcherFolders checks that new folders are watched, files saved in
// them later are seen, and removed or renamed folders are dropped with
// their files reported.
func TestWatcherFolders(t *testing.T) {
	root := project(t)
	w := newTestWatcher(t, root, testDebounce, nil, "out", ".kiln/cache")
	samePaths(t, "watched at start", w.Watched(), []string{".", "assets"})

	writeFile(t, root, "levels/a/a.kiln.yaml", "1")
	samePaths(t, "new folder", nextBatch(t, w).Paths, []string{"levels/a/a.kiln.yaml"})
	samePaths(t, "watched after mkdir", w.Watched(), []string{".", "assets", "levels", "levels/a"})

	writeFile(t, root, "levels/a/a.kiln.yaml", "2")
	samePaths(t, "save in new folder", nextBatch(t, w).Paths, []string{"levels/a/a.kiln.yaml"})

	mustDo(t, os.Rename(filepath.Join(root, "levels/a"), filepath.Join(root, "levels/b")))
	samePaths(t, "folder renamed", nextBatch(t, w).Paths, []string{"levels/a/a.kiln.yaml", "levels/b/a.kiln.yaml"})
	samePaths(t, "watched after rename", w.Watched(), []string{".", "assets", "levels", "levels/b"})
	writeFile(t, root, "levels/b/a.kiln.yaml", "3")
	samePaths(t, "save in renamed folder", nextBatch(t, w).Paths, []string{"levels/b/a.kiln.yaml"})

	mustDo(t, os.RemoveAll(filepath.Join(root, "levels")))
	samePaths(t, "folder removed", nextBatch(t, w).Paths, []string{"levels/b/a.kiln.yaml"})
	samePaths(t, "watched after removal", w.Watched(), []string{".", "assets"})

	// A folder created again under the same name is watched again.
	writeFile(t, root, "levels/b/a.kiln.yaml", "4")
	samePaths(t, "recreated folder", nextBatch(t, w).Paths, []string{"levels/b/a.kiln.yaml"})
	writeFile(t, root, "levels/b/a.kiln.yaml", "5")
	samePaths(t, "save in recreated folder", nextBatch(t, w).Paths, []string{"levels/b/a.kiln.yaml"})
	noBatch(t, w, quiet*testDebounce)
}

// TestWatcherBurst saves one file 50 times and several others in a burst:
// one batch.
func TestWatcherBurst(t *testing.T) {
	root := project(t)
	debounce := 250 * time.Millisecond // generous: a stalled writer on a loaded machine must not split the burst
	w := newTestWatcher(t, root, debounce, nil, "out", ".kiln/cache")
	for i := range 50 {
		writeFile(t, root, "assets/dungeon.kiln.yaml", fmt.Sprintf("assets: [%d]\n", i))
		if i%10 == 0 {
			writeFile(t, root, fmt.Sprintf("assets/img%d.png", i/10), "png")
		}
	}
	b := nextBatch(t, w)
	samePaths(t, "burst", b.Paths, []string{"assets/dungeon.kiln.yaml", "assets/img0.png", "assets/img1.png", "assets/img2.png", "assets/img3.png", "assets/img4.png"})
	noBatch(t, w, quiet*debounce)
}

// TestWatcherMaxDelay checks that a writer that never pauses cannot hold
// a batch back forever.
func TestWatcherMaxDelay(t *testing.T) {
	root := project(t)
	ign, err := NewIgnore(root, "out")
	mustDo(t, err)
	w, err := NewWatcher(WatcherOptions{Ignore: ign, Debounce: 200 * time.Millisecond, MaxDelay: 300 * time.Millisecond})
	mustDo(t, err)
	defer w.Close()
	stop := make(chan struct{})
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				os.WriteFile(filepath.Join(root, "log.txt"), []byte(fmt.Sprint(i)), 0o644)
			}
		}
	}()
	b := nextBatch(t, w)
	close(stop)
	samePaths(t, "continuous writes", b.Paths, []string{"log.txt"})
}

// TestWatcherRescan calls the rescan path directly, as an event overflow
// does, after changes the watcher never processed: it must find every
// changed, new and removed file, watch new folders, drop removed ones and
// mark the batch as a rescan.
func TestWatcherRescan(t *testing.T) {
	root := project(t)
	writeFile(t, root, "old/x.png", "x")
	ign, err := NewIgnore(root, "out", ".kiln/cache")
	mustDo(t, err)
	w, err := newWatcher(WatcherOptions{Ignore: ign, Debounce: testDebounce}, nil)
	mustDo(t, err)
	defer w.Close() // the loop is not running: the events pile up unread

	writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: [changed, longer]\n")
	writeFile(t, root, "new/deep/y.kiln.yaml", "y")
	mustDo(t, os.Remove(filepath.Join(root, "assets/floor.png")))
	mustDo(t, os.RemoveAll(filepath.Join(root, "old")))
	writeFile(t, root, "out/dungeon/floor.png", "ignored output")

	w.rescan(true)
	b := w.take()
	samePaths(t, "rescan", b.Paths, []string{"assets/dungeon.kiln.yaml", "assets/floor.png", "new/deep/y.kiln.yaml", "old/x.png"})
	if !b.Rescan {
		t.Error("batch not marked as rescan")
	}
	samePaths(t, "watched", w.Watched(), []string{".", "assets", "new", "new/deep"})

	// Nothing changed since: a forced rescan still asks for a build (an
	// edit can keep size and time), an unforced one does not.
	w.rescan(true)
	if b := w.take(); len(b.Paths) != 0 || !b.Rescan {
		t.Errorf("forced rescan with no differences: %+v, want an empty rescan batch", b)
	}
	w.rescan(false)
	if b := w.take(); !b.empty() {
		t.Errorf("unforced rescan with no differences: %+v, want nothing", b)
	}
}

// TestWatcherOverflow sends the overflow error as fsnotify does and
// checks for the warning and a rescan batch.
func TestWatcherOverflow(t *testing.T) {
	root := project(t)
	warn := &syncBuffer{}
	w := newTestWatcher(t, root, testDebounce, warn, "out", ".kiln/cache")
	w.fw.Errors <- fsnotify.ErrEventOverflow
	b := nextBatch(t, w)
	if !b.Rescan {
		t.Errorf("batch after overflow not marked as rescan: %+v", b)
	}
	msg := warn.String()
	for _, want := range []string{"events were lost", "rescanned", "max_queued_events", "sudo sysctl fs.inotify.max_queued_events="} {
		if !strings.Contains(msg, want) {
			t.Errorf("overflow warning lacks %q:\n%s", want, msg)
		}
	}
}

// TestWatcherWatchLimit simulates the per-user watch limit (ENOSPC from
// inotify_add_watch) for some folders: a warning explaining the limit,
// polling of those folders, and full watching once the limit allows it.
func TestWatcherWatchLimit(t *testing.T) {
	root := project(t)
	writeFile(t, root, "big/a/a.png", "a")
	var limited atomic.Bool
	limited.Store(true)
	add := func(fw *fsnotify.Watcher, dir string) error {
		if limited.Load() && strings.Contains(dir, "big") {
			return fmt.Errorf("add watch: %w", syscall.ENOSPC)
		}
		return fw.Add(dir)
	}
	ign, err := NewIgnore(root, "out", ".kiln/cache")
	mustDo(t, err)
	warn := &syncBuffer{}
	w, err := newWatcher(WatcherOptions{Ignore: ign, Debounce: testDebounce, PollInterval: 50 * time.Millisecond, Warn: warn}, add)
	mustDo(t, err)
	w.start()
	defer w.Close()

	msg := warn.String()
	for _, want := range []string{"cannot watch", "big", "max_user_watches", "sudo sysctl fs.inotify.max_user_watches=", "2 folder(s)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("watch-limit warning lacks %q:\n%s", want, msg)
		}
	}
	samePaths(t, "unwatched", w.Unwatched(), []string{"big", "big/a"})

	// A change in an unwatched folder is found by polling.
	writeFile(t, root, "big/a/a.png", "a changed")
	b := nextBatch(t, w)
	samePaths(t, "polled change", b.Paths, []string{"big/a/a.png"})
	if !b.Rescan {
		t.Error("polled batch not marked as rescan")
	}

	// The user raised the limit: the next poll watches everything and
	// polling stops.
	limited.Store(false)
	deadline := time.Now().Add(waitFor)
	for len(w.Unwatched()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	samePaths(t, "unwatched after the limit was raised", w.Unwatched(), []string{})
	if !slices.Contains(w.Watched(), "big/a") {
		t.Fatalf("big/a not watched after the limit was raised: %q", w.Watched())
	}
	writeFile(t, root, "big/a/a.png", "a changed again")
	b = nextBatch(t, w)
	samePaths(t, "event after the limit was raised", b.Paths, []string{"big/a/a.png"})
	if b.Rescan {
		t.Error("batch from an event marked as rescan")
	}
	if n := strings.Count(warn.String(), "cannot watch"); n != 1 {
		t.Errorf("watch-limit warning printed %d times, want once", n)
	}
}

func TestNewWatcherErrors(t *testing.T) {
	if _, err := NewWatcher(WatcherOptions{}); err == nil {
		t.Error("no Ignore: no error")
	}
	ign, err := NewIgnore(filepath.Join(t.TempDir(), "missing"))
	mustDo(t, err)
	if _, err := NewWatcher(WatcherOptions{Ignore: ign}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing root: err = %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	mustDo(t, os.WriteFile(file, nil, 0o644))
	ign, err = NewIgnore(file)
	mustDo(t, err)
	if _, err := NewWatcher(WatcherOptions{Ignore: ign}); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("root is a file: err = %v", err)
	}
}
