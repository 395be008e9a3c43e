package atomicfile

import "syscall"

// syncfs flushes the file system holding the open file fd with Linux's
// syncfs(2) where the syscall package knows its number, else all file
// systems with sync(2).
func syncfs(fd int) error {
	if sysSyncfs == 0 {
		syscall.Sync()
		return nil
	}
	if _, _, errno := syscall.Syscall(sysSyncfs, uintptr(fd), 0, 0); errno != 0 {
		return errno
	}
	return nil
}
