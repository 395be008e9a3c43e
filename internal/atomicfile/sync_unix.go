//go:build unix

package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// isNotSupported reports whether err says the file system cannot sync a
// folder (some network and FUSE file systems).
func isNotSupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EBADF)
}

// SyncFS flushes every pending write of the file system that holds path to
// disk. A program that wrote many files with CommitNoSync calls it once,
// before recording anywhere that those files are complete.
func SyncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s to flush its file system: %w", path, err)
	}
	defer f.Close()
	if err := syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("flush file system of %s: %w", path, err)
	}
	return nil
}
