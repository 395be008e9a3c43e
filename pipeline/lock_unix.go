//go:build unix

package pipeline

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// projectLock is an exclusive flock(2) on the cache's lock file, held for
// a whole build. The kernel releases it when the process dies, so a killed
// build never leaves a stale lock.
type projectLock struct {
	f *os.File
}

// acquireLock takes the project lock without waiting.
func acquireLock(cacheDir string) (*projectLock, error) {
	p := lockPath(cacheDir)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w", p, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: p, PID: readLockPID(p)}
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	// Record who holds it, for the message the next build prints.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &projectLock{f: f}, nil
}

// release drops the lock.
func (l *projectLock) release() {
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
}
