package atomicfile

import (
	"fmt"
	"syscall"
	"unsafe"
)

// renameExchange is renameat2's RENAME_EXCHANGE flag.
const renameExchange = 1 << 1

// Exchange atomically swaps the files or folders at a and b, which must
// both exist (Linux renameat2 with RENAME_EXCHANGE): at every moment each
// path names one complete thing, so a process killed while replacing a
// folder never leaves the target missing. It returns an error wrapping
// ErrExchangeUnsupported when the kernel or the file system cannot do it.
func Exchange(a, b string) error {
	if sysRenameat2 == 0 {
		return ErrExchangeUnsupported
	}
	pa, err := syscall.BytePtrFromString(a)
	if err != nil {
		return fmt.Errorf("exchange %s and %s: %w", a, b, err)
	}
	pb, err := syscall.BytePtrFromString(b)
	if err != nil {
		return fmt.Errorf("exchange %s and %s: %w", a, b, err)
	}
	cwd := -100 // AT_FDCWD
	for {
		_, _, errno := syscall.Syscall6(sysRenameat2, uintptr(cwd), uintptr(unsafe.Pointer(pa)), uintptr(cwd), uintptr(unsafe.Pointer(pb)), renameExchange, 0)
		switch {
		case errno == 0:
			return nil
		case errno == syscall.EINTR:
			continue
		case errno == syscall.ENOSYS || errno == syscall.EINVAL || errno == syscall.EOPNOTSUPP:
			return fmt.Errorf("exchange %s and %s: %w (%v)", a, b, ErrExchangeUnsupported, errno)
		}
		return fmt.Errorf("exchange %s and %s: %w", a, b, errno)
	}
}
