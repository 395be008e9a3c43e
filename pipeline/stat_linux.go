package pipeline

import (
	"io/fs"
	"syscall"
)

// statOf extracts a file's identity: size, modification and change times
// (nanoseconds) and inode. The change time catches tools that restore an
// old modification time; the inode catches replacement by rename.
func statOf(fi fs.FileInfo) statRecord {
	r := statRecord{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		r.Ino = st.Ino
		r.Ctime = st.Ctim.Nano()
	}
	return r
}
