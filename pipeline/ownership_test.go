//go:build unix

package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// TestNoWriteThroughLinks plants a symlink where the cache or the output
// folder would be written and checks that the build refuses, naming the
// link, and that nothing reaches the link's target.
func TestNoWriteThroughLinks(t *testing.T) {
	tests := []struct {
		name string
		link string // relative to the project
	}{
		{"lock file", ".kiln/cache/lock"},
		{"cas folder", ".kiln/cache/cas"},
		{"ac folder", ".kiln/cache/ac"},
		{"tmp folder", ".kiln/cache/tmp"},
		{"cache folder", ".kiln/cache"},
		{"kiln folder", ".kiln"},
		{"output folder", "out"},
		{"cas shard", ".kiln/cache/cas/" + sha256Of("x").String()[:2]},
		{"journal", ".kiln/cache/" + journalName},
		{"output file", "out/a.txt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newProject(t)
			outside := t.TempDir()
			victim := filepath.Join(outside, "victim")
			if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
			target := outside
			if strings.Contains(tc.name, "file") || tc.name == "journal" {
				target = victim
			}
			link := filepath.Join(p.root, filepath.FromSlash(tc.link))
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(target, link); err != nil {
				t.Skip(err)
			}
			rep, err := Build(context.Background(), []Stage{p.constStage("a", "x", "a.txt")}, p.opts())
			if err == nil {
				t.Fatal("build through a symlink succeeded")
			}
			msg := err.Error()
			if rep != nil && rep.Stage("a") != nil && rep.Stage("a").Error != nil {
				msg = rep.Stage("a").Error.Error()
			}
			if !errors.Is(err, safepath.ErrUnsafe) && !strings.Contains(msg, "kiln does not follow symlinks") {
				t.Errorf("error %q does not refuse the symlink", msg)
			}
			if !strings.Contains(msg, link) {
				t.Errorf("error %q does not name the link %s", msg, link)
			}
			entries, _ := os.ReadDir(outside)
			data, _ := os.ReadFile(victim)
			if len(entries) != 1 || string(data) != "precious" {
				t.Errorf("the link's target changed: %v, victim %q", entries, data)
			}
		})
	}
}

// TestOutputsKilnDidNotWrite checks that a build never replaces a file
// in the output folder that kiln did not write, unless it already holds
// what kiln would write, and that the journal lets the build after a
// killed one replace what the killed one published.
func TestOutputsKilnDidNotWrite(t *testing.T) {
	p := newProject(t)
	p.write("out/a.txt", "hand-made")
	rep, err := Build(context.Background(), []Stage{p.constStage("a", "x", "a.txt")}, p.opts())
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("err = %v, want a failed build", err)
	}
	want := fmt.Sprintf("test.kiln.yaml:1:1: publish a.txt: %s %s, and kiln replaces only files it wrote itself; move it out of the output folder (or delete it), then build again", p.out("a.txt"), notOurs)
	if got := rep.Stage("a").Error.Error(); got != want {
		t.Errorf("error\n%s\nwant\n%s", got, want)
	}
	if p.read("a.txt") != "hand-made" {
		t.Error("the hand-made file was replaced")
	}

	// The same bytes kiln would write: adopted without a write.
	p.write("out/a.txt", "x")
	p.build([]Stage{p.constStage("a", "x", "a.txt")}, p.opts())
	p.build([]Stage{p.constStage("a", "y", "a.txt")}, p.opts())
	if p.read("a.txt") != "y" {
		t.Errorf("adopted output not replaced by the next version: %q", p.read("a.txt"))
	}

	// A killed build: published, journaled, state not saved.
	q := newProject(t)
	q.build([]Stage{q.constStage("a", "1", "a.txt")}, q.opts())
	os.Remove(filepath.Join(q.cacheDir(), stateFile))
	os.WriteFile(filepath.Join(q.cacheDir(), journalName), journalLine("a.txt", sha256Of("1")), 0o644)
	q.build([]Stage{q.constStage("a", "2", "a.txt")}, q.opts())
	if q.read("a.txt") != "2" {
		t.Errorf("journaled output not replaced: %q", q.read("a.txt"))
	}
	if _, err := os.Lstat(filepath.Join(q.cacheDir(), journalName)); !os.IsNotExist(err) {
		t.Errorf("journal left after a finished build: %v", err)
	}
	// Clean removes it too, as the state now records it.
	res, err := Clean(q.opts(), false)
	if err != nil || !reflect.DeepEqual(res.Removed, []string{"a.txt"}) {
		t.Errorf("clean: %v %+v", err, res)
	}
}

func sha256Of(s string) digest {
	return digest(sha256.Sum256([]byte(s)))
}

// TestCleanCacheOnlyKilnLayout points the cache at a folder holding
// someone's files and checks that clean --cache removes kiln's entries
// and nothing else.
func TestCleanCacheOnlyKilnLayout(t *testing.T) {
	p := newProject(t)
	o := p.opts()
	o.CacheDir = "stuff"
	p.build([]Stage{p.constStage("a", "x", "a.txt")}, o)
	for _, f := range []string{"stuff/notes.txt", "stuff/cas/readme", "stuff/cas/zz/keep.bin", "stuff/tmp/mine.txt", "stuff/art/hero.png", "stuff/ac/aa/not-a-digest"} {
		p.write(f, "mine")
	}
	p.write("stuff/state", "not kiln's state")
	res, err := Clean(o, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ac/aa/not-a-digest", "art", "cas/readme", "cas/zz", "notes.txt", "state", "tmp/mine.txt"}
	if !reflect.DeepEqual(res.CacheKept, want) {
		t.Errorf("kept %v\nwant %v", res.CacheKept, want)
	}
	var left []string
	filepath.WalkDir(filepath.Join(p.root, "stuff"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(p.root, "stuff"), path)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	wantLeft := []string{"ac/aa/not-a-digest", "art/hero.png", "cas/readme", "cas/zz/keep.bin", "lock", "notes.txt", "state", "tmp/mine.txt"}
	if !reflect.DeepEqual(left, wantLeft) {
		t.Errorf("left %v\nwant %v", left, wantLeft)
	}
}

// TestCleanDoesNotFollowLinks checks that clean removes no file through a
// symlinked folder in the output folder.
func TestCleanDoesNotFollowLinks(t *testing.T) {
	p := newProject(t)
	p.build([]Stage{p.constStage("a", "x", "sub/a.txt")}, p.opts())
	// Move the output aside and plant a link to a folder holding a file
	// with the same content.
	p.write("art/a.txt", "x")
	os.RemoveAll(p.out("sub"))
	if err := os.Symlink(filepath.Join(p.root, "art"), p.out("sub")); err != nil {
		t.Skip(err)
	}
	_, err := Clean(p.opts(), false)
	if err == nil || !strings.Contains(err.Error(), "kiln does not follow symlinks") {
		t.Errorf("clean through a link: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(p.root, "art", "a.txt")); string(data) != "x" {
		t.Error("clean deleted a file through a symlink")
	}
}

func TestParseProcLocks(t *testing.T) {
	const text = `1: POSIX  ADVISORY  WRITE 700 08:01:1234567 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF
2: -> FLOCK  ADVISORY  WRITE 4243 08:01:1234567 0 EOF
3: FLOCK  ADVISORY  WRITE 99 00:2e:1234567 0 EOF
4: FLOCK  ADVISORY  WRITE 17 103:0a:42 0 EOF
bad line
`
	mk := func(major, minor uint64) uint64 { return minor&0xff | major<<8 | (minor&^0xff)<<12 }
	tests := []struct {
		dev, ino uint64
		want     int
	}{
		{mk(8, 1), 1234567, 4242},
		{mk(0, 0x2e), 1234567, 99},
		{mk(0x103, 0x0a), 42, 17},
		{mk(8, 1), 7, 0},
		{mk(8, 2), 1234567, 0},
	}
	for _, tc := range tests {
		if got := parseProcLocks([]byte(text), tc.dev, tc.ino); got != tc.want {
			t.Errorf("dev %x ino %d: got %d, want %d", tc.dev, tc.ino, got, tc.want)
		}
	}
}

// TestLockNamesHolderInRaces races many lock attempts and checks that
// every refusal names a PID (this process's), never "another kiln build"
// without one.
func TestLockNamesHolderInRaces(t *testing.T) {
	if _, err := os.Stat("/proc/locks"); err != nil {
		t.Skip("no /proc/locks here")
	}
	dir := t.TempDir()
	for round := range 30 {
		os.Remove(lockPath(dir))
		var wg sync.WaitGroup
		errs := make([]error, 3)
		locks := make([]*projectLock, 3)
		start := make(chan struct{})
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				locks[i], errs[i] = acquireLock(dir)
			}()
		}
		close(start)
		wg.Wait()
		held := 0
		for i, err := range errs {
			var le *LockedError
			switch {
			case err == nil:
				held++
			case errors.As(err, &le):
				if le.PID != os.Getpid() {
					t.Errorf("round %d: refusal names pid %d, want %d: %v", round, le.PID, os.Getpid(), err)
				}
			default:
				t.Errorf("round %d, attempt %d: %v", round, i, err)
			}
		}
		for _, l := range locks {
			if l != nil {
				l.release()
			}
		}
		if held == 0 {
			t.Errorf("round %d: nobody got the lock", round)
		}
	}
	// The record is one fixed-width line.
	lk, err := acquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.release()
	data, _ := os.ReadFile(lockPath(dir))
	if len(data) != pidWidth+1 || readLockPID(lockPath(dir)) != os.Getpid() {
		t.Errorf("lock file holds %q", data)
	}
}

// TestLockRefusesSpecialFiles checks that a named pipe at the lock's
// place is refused at once instead of blocking the build.
func TestLockRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(lockPath(dir), 0o644); err != nil {
		t.Skip(err)
	}
	_, err := acquireLock(dir)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("lock on a named pipe: %v", err)
	}
}
