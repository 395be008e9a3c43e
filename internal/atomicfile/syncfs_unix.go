//go:build unix && !linux

package atomicfile

import "syscall"

// syncfs flushes all file systems: outside Linux there is no per-file-system
// call, and sync(2) is a superset of what is needed.
func syncfs(fd int) error {
	syscall.Sync()
	return nil
}
