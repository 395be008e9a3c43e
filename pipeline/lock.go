package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is returned (wrapped in a *LockedError) when another build
// holds the project lock.
var ErrLocked = errors.New("project is locked by another build")

// LockedError says which process holds the project lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the holder's process id, 0 if unknown.
	PID int
}

// Error says who holds the lock and what to do.
func (e *LockedError) Error() string {
	who := "another kiln build"
	if e.PID > 0 {
		who = fmt.Sprintf("another kiln build (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s holds the lock on %s; wait for it to finish or stop it", who, e.Path)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// lockName is the lock file's name inside the cache folder.
const lockName = "lock"

// pidWidth is the width of the PID record in the lock file: wide enough
// for any PID, so a record always covers the whole previous one and the
// file never needs truncating.
const pidWidth = 20

// pidRecord is the lock file's content for pid: the PID padded with spaces
// to a fixed width, then a newline.
func pidRecord(pid int) []byte {
	return fmt.Appendf(nil, "%-*d\n", pidWidth, pid)
}

// readLockPID returns the pid written in the lock file, 0 if none.
func readLockPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0
	}
	return pid
}

// lockPath is the project lock of a cache folder.
func lockPath(cacheDir string) string { return filepath.Join(cacheDir, lockName) }

// parseProcLocks finds, in the text of Linux's /proc/locks, the PID of the
// process holding a FLOCK on the file with the given device and inode, or
// 0. Lines look like
//
//	1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF
//	2: FLOCK  ADVISORY  WRITE 4243 00:2e:99 0 EOF
//
// (with "->" before the number for waiters, which are skipped); the device
// is major:minor in hex, the inode in decimal.
func parseProcLocks(data []byte, dev, ino uint64) int {
	major, minor := devMajor(dev), devMinor(dev)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		id := strings.Split(f[5], ":")
		if len(id) != 3 {
			continue
		}
		ma, err1 := strconv.ParseUint(id[0], 16, 32)
		mi, err2 := strconv.ParseUint(id[1], 16, 32)
		in, err3 := strconv.ParseUint(id[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil || ma != major || mi != minor || in != ino {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}

// devMajor and devMinor split a Linux dev_t as glibc's gnu_dev_major and
// gnu_dev_minor do.
func devMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func devMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }
