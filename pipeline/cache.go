package pipeline

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-dev/kiln/internal/safepath"
)

// The cache folder holds:
//
//	cas/<2 hex>/<sha256>   blobs: output files named by their content hash (read-only)
//	ac/<2 hex>/<key>       action records: a stage key's outputs (JSON)
//	tmp/                   stage outputs being written; emptied at the start of each build
//	state                  build state (see buildState, statecodec.go)
//	lock                   the project lock (flock), with the holder's pid
//	build.incomplete       present while a build that wrote files has not finished
//
// Blobs and records are written to tmp/ and renamed into place, so a
// reader never sees a partial one; they are verified when read, so a
// damaged one is discarded and rebuilt rather than served.

// actionFormat versions action records.
const actionFormat = 1

// actionRecord is the result of running a stage with a given key.
type actionRecord struct {
	Format int    `json:"format"`
	Key    digest `json:"key"`
	// Stage is the stage that produced it (informational: any stage with
	// the same key may use it).
	Stage    string            `json:"stage"`
	Parts    keyParts          `json:"parts"`
	Outputs  outputSet         `json:"outputs"`
	Notes    map[string]string `json:"notes,omitempty"`
	Created  time.Time         `json:"created"`
	Duration Duration          `json:"duration_ms"`
}

// errCorrupt marks a damaged or missing cache entry: the caller discards
// it and rebuilds.
var errCorrupt = errors.New("corrupt cache entry")

// corruptError says which entry is damaged and how.
type corruptError struct {
	path string
	why  string
}

func (e *corruptError) Error() string {
	return fmt.Sprintf("cache entry %s is damaged (%s)", e.path, e.why)
}

func (e *corruptError) Is(target error) bool { return target == errCorrupt }

// cache is the content-addressed store in a folder.
type cache struct {
	dir string
}

func (c cache) blobPath(sha digest) string {
	h := sha.String()
	return filepath.Join(c.dir, "cas", h[:2], h)
}

func (c cache) actionPath(key digest) string {
	h := key.String()
	return filepath.Join(c.dir, "ac", h[:2], h)
}

func (c cache) tmpDir() string { return filepath.Join(c.dir, "tmp") }

func (c cache) markerPath() string { return filepath.Join(c.dir, "build.incomplete") }

// readAction reads and checks the action record for key. A missing record
// gives an error wrapping fs.ErrNotExist; a damaged one, errCorrupt.
func (c cache) readAction(key digest) (*actionRecord, error) {
	p := c.actionPath(key)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var rec actionRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, &corruptError{p, "not valid JSON: " + err.Error()}
	}
	if rec.Format != actionFormat || rec.Key != key {
		return nil, &corruptError{p, "wrong format or key"}
	}
	for i, o := range rec.Outputs {
		if o.SHA256.IsZero() || o.Size < 0 || (i > 0 && rec.Outputs[i-1].Name >= o.Name) {
			return nil, &corruptError{p, fmt.Sprintf("bad entry for output %q", o.Name)}
		}
	}
	return &rec, nil
}

// writeAction stores rec atomically: written in tmp/, renamed into ac/.
// The blobs it names must already be in place.
func (c cache) writeAction(rec *actionRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode cache record: %w", err)
	}
	dst := c.actionPath(rec.Key)
	if err := safepath.MkdirAll(c.dir, filepath.Dir(dst), "write a cache record"); err != nil {
		return err
	}
	f, err := os.CreateTemp(c.tmpDir(), "ac-")
	if err != nil {
		return fmt.Errorf("create cache record: %w", err)
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr != nil || cerr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write cache record %s: %w", dst, errors.Join(werr, cerr))
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store cache record %s: %w", dst, err)
	}
	return nil
}

// removeAction discards the record for key.
func (c cache) removeAction(key digest) {
	os.Remove(c.actionPath(key))
}

// hashFile returns the sha256 and size of the file at path.
func hashFile(path string) (digest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return digest{}, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return digest{}, n, fmt.Errorf("read %s: %w", path, err)
	}
	return sumOf(h), n, nil
}

// sumOf returns the digest computed by a sha256 hash.
func sumOf(h hash.Hash) digest {
	var d digest
	h.Sum(d[:0])
	return d
}

// isNotExist reports whether err means a file is missing.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
