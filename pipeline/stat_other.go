//go:build !linux

package pipeline

import "io/fs"

// statOf extracts a file's identity. Outside Linux only size and
// modification time are used.
func statOf(fi fs.FileInfo) statRecord {
	return statRecord{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
}
