//go:build !unix

package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// projectLock is, outside Unix, a lock file created exclusively. Unlike
// flock it survives a killed process; delete the file by hand then.
type projectLock struct {
	path string
}

// acquireLock takes the project lock without waiting.
func acquireLock(cacheDir string) (*projectLock, error) {
	p := lockPath(cacheDir) + ".pid"
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, &LockedError{Path: p, PID: readLockPID(p)}
		}
		return nil, fmt.Errorf("create lock file %s: %w", p, err)
	}
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	f.Close()
	return &projectLock{path: p}, nil
}

// release drops the lock.
func (l *projectLock) release() { os.Remove(l.path) }
