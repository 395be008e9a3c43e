package pipeline

import (
	"io/fs"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// maxStatDirs bounds the folder handles a build keeps open; files in
// further folders are stat'ed by path.
const maxStatDirs = 256

// statDirs stats files through handles of their folders (O_PATH, which
// needs no permission to read the folder), so each stat resolves one
// path component instead of the whole absolute path: a no-op build
// stats every source file and published output, and the walk down a
// project's path cost as much as the rest of the stat. Opening a folder
// follows links as the stat of its files by path would; a folder that
// cannot be opened (it does not exist yet) is stat'ed by path. A build
// makes one and closes it at its end.
type statDirs struct {
	mu  sync.Mutex
	fds map[string]int // folder (with its trailing separator) → handle, -1 for none
}

func newStatDirs() *statDirs { return &statDirs{fds: map[string]int{}} }

// stat is statFile (without the FileInfo): the file's type and
// permission bits and its identity, following a final symlink when
// follow is set.
func (c *statDirs) stat(path string, follow bool) (fs.FileMode, statRecord, error) {
	dir, name := filepath.Split(path)
	fd := c.dir(dir)
	if fd < 0 || name == "" {
		fi, rec, err := statFile(path, follow)
		if err != nil {
			return 0, rec, err
		}
		return fi.Mode(), rec, nil
	}
	flags := 0
	if !follow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	var st unix.Stat_t
	for {
		err := unix.Fstatat(fd, name, &st, flags)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			op := "stat"
			if !follow {
				op = "lstat"
			}
			return 0, statRecord{}, &fs.PathError{Op: op, Path: path, Err: err}
		}
		break
	}
	rec := statRecord{Size: st.Size, Mtime: st.Mtim.Nano(), Ino: st.Ino, Ctime: st.Ctim.Nano()}
	return fileMode(st.Mode), rec, nil
}

// dir returns the handle of folder dir, opening it on first use; -1
// means stat by path.
func (c *statDirs) dir(dir string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fd, ok := c.fds[dir]; ok {
		return fd
	}
	fd := -1
	if len(c.fds) < maxStatDirs {
		var err error
		for {
			fd, err = unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			// Not there yet (an output folder this build creates): by
			// path, now and for the rest of the build.
			fd = -1
		}
	}
	c.fds[dir] = fd
	return fd
}

// close closes the folder handles.
func (c *statDirs) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, fd := range c.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
		delete(c.fds, d)
	}
}

// fileMode converts a stat mode to an fs.FileMode as package os does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
