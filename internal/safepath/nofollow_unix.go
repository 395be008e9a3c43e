//go:build unix

package safepath

import (
	"os"
	"syscall"
)

// noFollow and nonBlock are added to every OpenFile: no symlink at the
// last component, no wait on a named pipe.
const (
	noFollow = syscall.O_NOFOLLOW
	nonBlock = syscall.O_NONBLOCK
)

// clearNonBlock puts a regular file opened with O_NONBLOCK back into
// blocking mode (it makes no difference to regular files on Linux, but
// keeps the descriptor ordinary for the runtime).
func clearNonBlock(f *os.File) {
	syscall.SetNonblock(int(f.Fd()), false)
}
