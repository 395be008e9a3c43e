package pipeline

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// stateFile is the build state's name inside the cache folder (see
// statecodec.go for its encoding).
const stateFile = "state"

// buildState is what kiln remembers between builds to avoid work: the last
// key and outputs of each stage (for --explain and for dependents' keys),
// a stat cache of source files, published outputs and verified blobs (so
// an unchanged file is never re-hashed), and which outputs kiln wrote (for
// clean). It is only an accelerator: deleting it costs re-hashing, never
// correctness, because a record is trusted only when the file's size,
// modification time, change time and inode all still match.
type buildState struct {
	Stages  map[string]*stageState  `json:"stages"`
	Files   map[string]statRecord   `json:"files"`
	Outputs map[string]outputRecord `json:"outputs"`
	Blobs   map[digest]statRecord   `json:"blobs"`
}

// stageState is the last successful result of a stage.
type stageState struct {
	Key     digest            `json:"key"`
	Outputs outputSet         `json:"outputs"`
	Notes   map[string]string `json:"notes,omitempty"`
}

// outputRef is a named output of a stage.
type outputRef struct {
	Name string `json:"name"`
	blobRef
}

// outputSet is a stage's outputs, sorted by name. (A slice, not a map:
// stages have one to a few outputs, and a no-op build holds thousands.)
type outputSet []outputRef

// get returns the output called name.
func (s outputSet) get(name string) (blobRef, bool) {
	for _, o := range s {
		if o.Name == name {
			return o.blobRef, true
		}
	}
	return blobRef{}, false
}

// names lists the output names.
func (s outputSet) names() []string {
	names := make([]string, len(s))
	for i, o := range s {
		names[i] = o.Name
	}
	return names
}

// blobRef names a blob in the content-addressed store.
type blobRef struct {
	SHA256 digest `json:"sha256"`
	Size   int64  `json:"size"`
}

// statRecord is a file's identity at the time its content hash was
// computed. Size -1 marks a record that must not be trusted (the file
// changed too recently for its timestamps to prove anything).
type statRecord struct {
	Size   int64  `json:"size"`
	Mtime  int64  `json:"mtime"`
	Ctime  int64  `json:"ctime,omitempty"`
	Ino    uint64 `json:"ino,omitempty"`
	SHA256 digest `json:"sha256"`
}

// outputRecord is a published output file.
type outputRecord struct {
	Stage string `json:"stage"`
	Name  string `json:"name"`
	statRecord
}

// unchanged reports whether cur (a fresh stat, without hash) shows the
// same file as the trusted record r.
func (r statRecord) unchanged(cur statRecord) bool {
	return r.Size >= 0 && r.Size == cur.Size && r.Mtime == cur.Mtime && r.Ctime == cur.Ctime && r.Ino == cur.Ino
}

// racyWindow returns how long after a file's modification its timestamps
// cannot yet prove it unchanged: file systems stamp times from a coarse
// clock (a scheduler tick on Linux, a second or two on some), so a second
// write within the same tick leaves the time unchanged. Times without a
// sub-second part suggest a coarse file system.
func racyWindow(mtime int64) time.Duration {
	if mtime%int64(time.Second) == 0 {
		return 2 * time.Second
	}
	return 50 * time.Millisecond
}

// trustAt returns cur with hash sha, marked untrusted if the file was
// modified within the racy window before now (the time of the stat).
func trustAt(cur statRecord, sha digest, now time.Time) statRecord {
	cur.SHA256 = sha
	if now.UnixNano()-cur.Mtime < int64(racyWindow(cur.Mtime)) {
		cur.Size = -1
	}
	return cur
}

// statFile stats path (following symlinks when follow is set).
func statFile(path string, follow bool) (fs.FileInfo, statRecord, error) {
	var fi fs.FileInfo
	var err error
	if follow {
		fi, err = os.Stat(path)
	} else {
		fi, err = os.Lstat(path)
	}
	if err != nil {
		return nil, statRecord{}, err
	}
	return fi, statOf(fi), nil
}

func newState() *buildState {
	return &buildState{
		Stages:  map[string]*stageState{},
		Files:   map[string]statRecord{},
		Outputs: map[string]outputRecord{},
		Blobs:   map[digest]statRecord{},
	}
}

// loadState reads the state file; a missing, unreadable, damaged or
// foreign one gives an empty state (with a warning when it existed).
func loadState(cacheDir string, log *slog.Logger) *buildState {
	p := filepath.Join(cacheDir, stateFile)
	data, err := readNoFollow(p)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot read build state; files will be re-hashed", "path", p, "err", err)
		}
		return newState()
	}
	st, err := decodeState(data)
	if err != nil {
		log.Warn("ignoring unreadable build state; files will be re-hashed", "path", p, "err", err)
		return newState()
	}
	return st
}

// readNoFollow reads a file of kiln's own in the cache folder, refusing a
// symlink (kiln never makes one there) so a planted link cannot make kiln
// read, and report on, a file elsewhere.
func readNoFollow(p string) ([]byte, error) {
	f, err := safepath.OpenFile(p, os.O_RDONLY, 0, "read it")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// save writes the state file atomically (and durably).
func (s *buildState) save(cacheDir string) error {
	data, err := encodeState(s)
	if err != nil {
		return err
	}
	p := filepath.Join(cacheDir, stateFile)
	if err := atomicfile.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("save build state: %w", err)
	}
	return nil
}
