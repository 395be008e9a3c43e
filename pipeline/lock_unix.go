//go:build unix

package pipeline

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// projectLock is an exclusive flock(2) on the cache's lock file, held for
// a whole build. The kernel releases it when the process dies, so a killed
// build never leaves a stale lock.
type projectLock struct {
	f *os.File
}

// lockAttempts bounds how often a refused build looks for the holder and
// tries again when the holder let go in between (see acquireLock).
const lockAttempts = 5

// acquireLock takes the project lock without waiting.
//
// The lock file is opened without following a symlink (one planted there
// is refused, so the lock can never truncate or write a file elsewhere)
// and is never truncated: the holder's PID is written as one fixed-width
// record in a single write, so a reader sees either the whole record or
// the previous holder's. The message for a refused build names the holder
// as the kernel reports it (/proc/locks on Linux), which has no window in
// which the PID is unknown; elsewhere it falls back to the record.
func acquireLock(cacheDir string) (*projectLock, error) {
	p := lockPath(cacheDir)
	f, err := safepath.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644, "take the project lock")
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		pid := lockHolder(f)
		if pid > 0 || attempt == lockAttempts {
			f.Close()
			if pid <= 0 {
				pid = readLockPID(p)
			}
			return nil, &LockedError{Path: p, PID: pid}
		}
		// The kernel lists no holder: it let go after our try. Try again.
	}
	// Record who holds it, for systems without /proc/locks and for people
	// looking at the file.
	f.WriteAt(pidRecord(os.Getpid()), 0)
	return &projectLock{f: f}, nil
}

// flock calls flock(2), retrying when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// release drops the lock.
func (l *projectLock) release() {
	flock(l.f, syscall.LOCK_UN)
	l.f.Close()
}

// lockHolder returns the PID of the process holding a flock on f's file,
// as /proc/locks lists it, or 0 when it cannot tell.
func lockHolder(f *os.File) int {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	return parseProcLocks(data, uint64(st.Dev), uint64(st.Ino))
}
