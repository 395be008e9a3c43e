package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// HashCacheFile is the file in kiln's cache folder where file hashes are
// remembered (see HashCache).
const HashCacheFile = "hashes.json"

// HashCache gives the SHA-256 of files, remembering each in kiln's cache
// folder (HashCacheFile) keyed by absolute path, size and modification
// time, so a multi-gigabyte model file is read once and not again until
// it changes. Folder.Fingerprint, the checks of model folders against
// kiln.lock and the shared download cache all use the same memory, so a
// file hashed by one is not hashed again by the others. A HashCache is
// safe for concurrent use; call Save to write what it learnt.
type HashCache struct {
	mu     sync.Mutex
	c      *statCache // nil: remember nothing
	hashed int
}

// OpenHashCache opens the hash memory of kiln's cache folder cacheDir;
// "" gives a HashCache that remembers nothing (every call hashes). A
// missing or unreadable memory file is simply empty.
func OpenHashCache(cacheDir string) *HashCache {
	h := &HashCache{}
	if cacheDir != "" {
		h.c = openStatCache(filepath.Join(cacheDir, HashCacheFile))
	}
	return h
}

// SHA256 returns the lower-case hex SHA-256 and the size of the regular
// file at path (symlinks followed, as Fingerprint counts a linked weights
// file by its content), from memory when the file still has the size and
// modification time it had when it was hashed. A file that changes while
// it is hashed is not remembered.
func (h *HashCache) SHA256(ctx context.Context, path string) (sum string, size int64, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("hash %s: not a regular file", path)
	}
	sum, err = h.sum(ctx, abs, fi)
	return sum, fi.Size(), err
}

// sum returns the hash of the file at abs whose FileInfo is fi, reading
// the file only when the memory has no hash for it.
func (h *HashCache) sum(ctx context.Context, abs string, fi os.FileInfo) (string, error) {
	if s, ok := h.lookup(abs, fi); ok {
		return s, nil
	}
	s, err := hashFileContext(ctx, abs)
	if err != nil {
		return "", err
	}
	h.mu.Lock()
	h.hashed++
	h.mu.Unlock()
	// If the file changed while it was hashed, do not remember a hash
	// under the new size and time.
	if st, err := os.Stat(abs); err == nil && st.Size() == fi.Size() && st.ModTime().Equal(fi.ModTime()) {
		h.Remember(abs, fi, s)
	}
	return s, nil
}

func (h *HashCache) lookup(abs string, fi os.FileInfo) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c == nil {
		return "", false
	}
	var s string
	return s, h.c.get(abs, fi, &s)
}

// Remember records sum as the SHA-256 of the file at path as fi
// describes it, for a caller that hashed the data itself (a download
// checked as it arrived). path must be absolute.
func (h *HashCache) Remember(path string, fi os.FileInfo, sum string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c != nil {
		h.c.put(path, fi, sum)
	}
}

// Hashed is how many files this HashCache read, not finding them in its
// memory; tests and progress messages use it.
func (h *HashCache) Hashed() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hashed
}

// Save writes what was learnt since OpenHashCache, merged with what other
// processes saved meanwhile. Failing only costs hashing again next time.
func (h *HashCache) Save() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.c == nil {
		return nil
	}
	return h.c.save()
}

// hashFileContext hashes the file at path, stopping when ctx is done.
func hashFileContext(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	hs := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := f.Read(buf)
		hs.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", path, err)
		}
	}
	return hex.EncodeToString(hs.Sum(nil)), nil
}
