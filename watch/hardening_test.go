package watch

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRunRetriesWhenLocked checks that a build asking to be retried (the
// project lock was held by a manual kiln build) runs again with the same
// changes until one goes through, that changes saved during the wait are
// built together with the waiting ones, and that the wait is announced
// once, not once per attempt.
func TestRunRetriesWhenLocked(t *testing.T) {
	t.Parallel()
	root := project(t)
	b := newBuilds()
	var locked atomic.Bool
	b.do = func(ctx context.Context, req Request) Result {
		if !req.Initial && locked.Load() {
			return Result{Errors: []string{"another kiln build (pid 1) holds the lock"}, RetryAfter: 10 * time.Millisecond}
		}
		return Result{Built: 1, Cached: 15}
	}
	out := &syncBuffer{}
	runLoop(t, Options{Root: root, Ignore: []string{"out", ".kiln/cache"}, Debounce: testDebounce, Build: b.build, Out: out})
	if r := b.next(t); !r.Initial {
		t.Fatalf("first build %+v", r)
	}
	locked.Store(true)
	writeFile(t, root, "assets/floor.png", "png 2")
	for i := 0; i < 3; i++ { // the first attempt and two retries
		samePaths(t, "locked build", b.next(t).Changed, []string{"assets/floor.png"})
	}
	writeFile(t, root, "assets/dungeon.kiln.yaml", "assets: [z]\n")
	both := []string{"assets/dungeon.kiln.yaml", "assets/floor.png"}
	for r := b.next(t); !slices.Equal(r.Changed, both); r = b.next(t) {
		samePaths(t, "retry before the save is seen", r.Changed, []string{"assets/floor.png"})
	}
	locked.Store(false)
	// Retries carry both changes until one runs; then nothing more.
	samePaths(t, "retry after the save", b.next(t).Changed, both)
	time.Sleep(quiet * testDebounce)
	for len(b.started) > 0 {
		if r := <-b.started; !slices.Equal(r.Changed, both) {
			t.Errorf("unexpected build %+v", r)
		}
	}
	text := out.String()
	if n := strings.Count(text, "building again when it is free"); n != 1 {
		t.Errorf("%d wait notices, want 1 for the whole wait:\n%s", n, text)
	}
	if n := strings.Count(text, "assets/dungeon.kiln.yaml, assets/floor.png changed → 1 built, 15 cached, 0 failed in "); n != 1 {
		t.Errorf("%d status lines for the build that ran, want 1:\n%s", n, text)
	}
}
