package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// CleanResult says what Clean did, with paths relative to the output
// folder.
type CleanResult struct {
	// Removed are the outputs deleted.
	Removed []string `json:"removed"`
	// Kept are outputs kiln wrote that were modified since; Clean leaves
	// them, as they may hold someone's work. Delete them by hand.
	Kept []string `json:"kept,omitempty"`
	// CacheRemoved is set when the cache was emptied.
	CacheRemoved bool `json:"cache_removed,omitempty"`
}

// Clean removes the outputs kiln published (as recorded in the build
// state, including ones no stage produces any more) and folders left empty
// by that, and with cache also empties the cache folder. Files in the
// output folder that kiln did not write are never touched. It takes the
// project lock, so it fails with ErrLocked while a build runs.
func Clean(o Options, cache bool) (*CleanResult, error) {
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	res := &CleanResult{}
	if _, err := os.Stat(o.CacheDir); err != nil {
		if isNotExist(err) {
			return res, nil // never built
		}
		return nil, fmt.Errorf("cache folder %s: %w", o.CacheDir, err)
	}
	lk, err := acquireLock(o.CacheDir)
	if err != nil {
		return nil, err
	}
	defer lk.release()

	st := loadState(o.CacheDir, o.Log)
	dirs := map[string]bool{}
	var errs []error
	for _, rel := range sortedKeys(st.Outputs) {
		rec := st.Outputs[rel]
		p, err := safepath.Join(o.OutDir, rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("not removing %s: %w", rel, err))
			continue
		}
		fi, cur, err := statFile(p, false)
		if err != nil {
			if !isNotExist(err) {
				errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			}
			delete(st.Outputs, rel)
			continue
		}
		if !fi.Mode().IsRegular() {
			res.Kept = append(res.Kept, rel)
			delete(st.Outputs, rel)
			continue
		}
		if !rec.unchanged(cur) {
			if sha, _, err := hashFile(p); err != nil || sha != rec.SHA256 {
				res.Kept = append(res.Kept, rel)
				delete(st.Outputs, rel)
				continue
			}
		}
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
			continue
		}
		res.Removed = append(res.Removed, rel)
		delete(st.Outputs, rel)
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// Remove folders left empty, deepest first, and stray temporary files.
	var list []string
	for d := range dirs {
		list = append(list, d)
	}
	sort.Slice(list, func(i, j int) bool { return strings.Count(list[i], "/") > strings.Count(list[j], "/") })
	for _, d := range list {
		abs := filepath.Join(o.OutDir, filepath.FromSlash(d))
		atomicfile.CleanTemps(abs)
		os.Remove(abs) // fails, as it should, when not empty
	}
	atomicfile.CleanTemps(o.OutDir)

	if cache {
		entries, err := os.ReadDir(o.CacheDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("empty cache: %w", err))
		}
		for _, e := range entries {
			if e.Name() == lockName {
				continue
			}
			if err := os.RemoveAll(filepath.Join(o.CacheDir, e.Name())); err != nil {
				errs = append(errs, fmt.Errorf("empty cache: %w", err))
			}
		}
		res.CacheRemoved = len(errs) == 0
	} else if err := st.save(o.CacheDir); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}
