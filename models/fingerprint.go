package models

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Fingerprint identifies the model's content for cache keys: a sha256 over
// every file of the folder (relative path, size and sha256 of each; hidden
// files such as .DS_Store are left out). Hashing a multi-gigabyte model
// takes seconds, so each file's hash is remembered in kiln's cache
// (hashes.json) keyed by path, size and modification time, and computing
// the fingerprint again reads no file that has not changed.
func (f *Folder) Fingerprint() (string, error) {
	type file struct {
		rel  string
		abs  string
		info os.FileInfo
	}
	var files []file
	err := filepath.WalkDir(f.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("fingerprint %s: %w", f.Dir, err)
		}
		if p != f.Dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		// Stat follows symlinks, so a linked weights file counts by its
		// content.
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("fingerprint %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(f.Dir, p)
		files = append(files, file{filepath.ToSlash(rel), p, fi})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].rel < files[j].rel })

	cache := OpenHashCache(f.CacheDir)
	h := sha256.New()
	for _, fl := range files {
		before := cache.Hashed()
		sum, err := cache.sum(context.Background(), fl.abs, fl.info)
		if err != nil {
			return "", fmt.Errorf("fingerprint: %w", err)
		}
		f.hashed.Add(int64(cache.Hashed() - before))
		fmt.Fprintf(h, "%s\t%d\t%s\n", fl.rel, fl.info.Size(), sum)
	}
	// Failing to remember only costs time next run.
	cache.Save()
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
