package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is returned (wrapped in a *LockedError) when another build
// holds the project lock.
var ErrLocked = errors.New("project is locked by another build")

// LockedError says which process holds the project lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id, 0 if unknown.
	PID int
}

// Error says who holds the lock and what to do.
func (e *LockedError) Error() string {
	who := "another kiln build"
	if e.PID > 0 {
		who = fmt.Sprintf("another kiln build (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s holds the lock on %s; wait for it to finish or stop it", who, e.Path)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockName is the lock file's name inside the cache folder.
const lockName = "lock"

// readLockPID returns the pid written in the lock file, 0 if none.
func readLockPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}

// lockPath is the project lock of a cache folder.
func lockPath(cacheDir string) string { return filepath.Join(cacheDir, lockName) }
