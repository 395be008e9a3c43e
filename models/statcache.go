package models

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// statCache is a small JSON file in kiln's cache that remembers facts about
// files (content hashes, graph signatures) keyed by path, size and
// modification time, so work on multi-gigabyte model files is done once.
// A missing or unreadable cache file is simply empty. Saves are atomic
// (temp file + rename) and merge with what other processes saved in the
// meantime; a lost update only costs a recomputation.
type statCache struct {
	file    string
	entries map[string]statEntry // nil until the first get or put reads the file
	dirty   map[string]statEntry
}

type statEntry struct {
	Size  int64           `json:"size"`
	MTime int64           `json:"mtime_ns"`
	Value json.RawMessage `json:"value"`
}

type statCacheFile struct {
	Version int                  `json:"version"`
	Entries map[string]statEntry `json:"entries"`
}

const statCacheVersion = 1

// maxStatEntries bounds the file; beyond it, entries of files that no
// longer exist are dropped on save.
const maxStatEntries = 4096

// openStatCache returns the cache kept in file. The file is read on first
// use, not here: most builds open the cache (to check kiln.lock) and never
// need it, and decoding it costs milliseconds of every no-op build.
func openStatCache(file string) *statCache {
	return &statCache{file: file, dirty: map[string]statEntry{}}
}

// load reads the file the first time an entry is needed.
func (c *statCache) load() {
	if c.entries == nil {
		c.entries = readStatCache(c.file)
	}
}

func readStatCache(file string) map[string]statEntry {
	data, err := os.ReadFile(file)
	if err != nil {
		return map[string]statEntry{}
	}
	var f statCacheFile
	if json.Unmarshal(data, &f) != nil || f.Version != statCacheVersion || f.Entries == nil {
		return map[string]statEntry{}
	}
	return f.Entries
}

// get decodes the value remembered for path into out when the file still
// has the size and modification time it had then.
func (c *statCache) get(path string, fi os.FileInfo, out any) bool {
	c.load()
	e, ok := c.entries[path]
	if !ok || e.Size != fi.Size() || e.MTime != fi.ModTime().UnixNano() {
		return false
	}
	return json.Unmarshal(e.Value, out) == nil
}

// put remembers v for path as it is now.
func (c *statCache) put(path string, fi os.FileInfo, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		return
	}
	e := statEntry{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Value: raw}
	c.load()
	c.entries[path] = e
	c.dirty[path] = e
}

// save writes the entries put since open, merged into the file's current
// contents.
func (c *statCache) save() error {
	if len(c.dirty) == 0 {
		return nil
	}
	merged := readStatCache(c.file)
	for k, e := range c.dirty {
		merged[k] = e
	}
	if len(merged) > maxStatEntries {
		for k := range merged {
			if _, err := os.Stat(k); errors.Is(err, os.ErrNotExist) {
				delete(merged, k)
			}
		}
	}
	data, err := json.Marshal(statCacheFile{Version: statCacheVersion, Entries: merged})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.file, data); err != nil {
		return err
	}
	c.dirty = map[string]statEntry{}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder and a rename, so readers see the old or the new file, never a
// partial one.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// statModel returns the absolute path of a model file and its FileInfo,
// with an error that names the file when it is missing or a folder.
func statModel(path string) (string, os.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, fmt.Errorf("model %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("model file %s does not exist", path)
		}
		return "", nil, fmt.Errorf("model %s: %w", path, err)
	}
	if fi.IsDir() {
		return "", nil, fmt.Errorf("model %s is a folder; give the .onnx file", path)
	}
	return abs, fi, nil
}
