//go:build !unix

package atomicfile

import (
	"fmt"
	"os"
)

// isNotSupported reports whether err says the file system cannot sync a
// folder. Outside Unix, folders generally cannot be synced at all.
func isNotSupported(err error) bool { return err != nil }

// SyncFS flushes every pending write of the file system that holds path to
// disk. Outside Unix it flushes path itself only, which is the best the
// platform offers without a file-system-wide call.
func SyncFS(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s to flush it: %w", path, err)
	}
	defer f.Close()
	f.Sync()
	return nil
}
