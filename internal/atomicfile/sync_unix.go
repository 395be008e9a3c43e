//go:build unix

package atomicfile

import (
	"errors"
	"syscall"
)

// isNotSupported reports whether err says the file system cannot sync a
// folder (some network and FUSE file systems).
func isNotSupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EBADF)
}
