//go:build unix

package tiling

import (
	"io/fs"
	"syscall"
)

// fileID returns the device and inode of a file, which change when a file
// is replaced by another even if its size and time are kept.
func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}
