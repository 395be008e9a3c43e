//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"errors"
	"os"
)

// errLocked reports a lock held by another process.
var errLocked = errors.New("locked by another process")

// lockFile does nothing where flock is not available: two concurrent
// pulls of one model are then not prevented.
func lockFile(*os.File) error { return nil }

// lockFileWait does nothing where flock is not available: two concurrent
// updates of kiln.lock may then lose one of them.
func lockFileWait(*os.File) error { return nil }
