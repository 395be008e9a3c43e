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
	// CacheKept are entries of the cache folder (relative to it) that are
	// not kiln's cache layout, which clean --cache leaves alone.
	CacheKept []string `json:"cache_kept,omitempty"`
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
	if safepath.Within(o.Root, o.CacheDir) {
		if err := safepath.CheckNoLinks(o.Root, o.CacheDir, "clean the cache folder"); err != nil {
			return nil, err
		}
	}
	if _, err := os.Lstat(o.CacheDir); err != nil {
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
	mergeJournal(o.CacheDir, st)
	dirs := map[string]bool{}
	var errs []error
	for _, rel := range sortedKeys(st.Outputs) {
		rec := st.Outputs[rel]
		p, err := safepath.JoinNoLinks(o.OutDir, rel, "remove "+rel)
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
		if err := safepath.RemoveFile(p, "remove "+rel); err != nil && !isNotExist(err) {
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
		if safepath.CheckNoLinks(o.OutDir, abs, "clean") != nil {
			continue
		}
		atomicfile.CleanTemps(abs)
		os.Remove(abs) // fails, as it should, when not empty
	}
	if safepath.CheckNoLinks(o.Root, o.OutDir, "clean") == nil {
		atomicfile.CleanTemps(o.OutDir)
	}

	if cache {
		kept, err := emptyCache(o.CacheDir)
		if err != nil {
			errs = append(errs, fmt.Errorf("empty cache: %w", err))
		}
		res.CacheKept = kept
		res.CacheRemoved = len(errs) == 0
	} else if err := st.save(o.CacheDir); err != nil {
		errs = append(errs, err)
	} else if err := removeJournal(o.CacheDir); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// emptyCache removes kiln's own cache layout from dir and nothing else:
// blobs and action records under cas/ and ac/ (files named by a SHA-256 in
// folders named by its first two digits), the temporary folder's run-*
// and ac-* entries, the build state (only if it decodes as one), the
// output journal, the build marker and kiln's own temporary files; then
// the folders left empty. Anything else is kept and returned (relative to
// dir), so a cache folder that was pointed at someone's files loses none
// of them. A symlink anywhere is kept and never followed. The lock file is
// kept, as the caller holds it.
func emptyCache(dir string) (kept []string, err error) {
	var errs []error
	keep := func(rel string) { kept = append(kept, filepath.ToSlash(rel)) }
	remove := func(p string) {
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	for _, area := range []string{"cas", "ac"} {
		top := filepath.Join(dir, area)
		fi, err := os.Lstat(top)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			keep(area)
			continue
		}
		shards, err := os.ReadDir(top)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, sh := range shards {
			shard := filepath.Join(top, sh.Name())
			if !sh.IsDir() || !isHex(sh.Name(), 2) {
				keep(filepath.Join(area, sh.Name()))
				continue
			}
			files, err := os.ReadDir(shard)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range files {
				name := f.Name()
				if f.Type().IsRegular() && isHex(name, 64) && name[:2] == sh.Name() {
					remove(filepath.Join(shard, name))
				} else {
					keep(filepath.Join(area, sh.Name(), name))
				}
			}
			os.Remove(shard) // only when empty
		}
		os.Remove(top)
	}
	if tmp := filepath.Join(dir, "tmp"); isRealDir(tmp) {
		entries, err := os.ReadDir(tmp)
		if err != nil {
			errs = append(errs, err)
		}
		for _, e := range entries {
			name := e.Name()
			switch {
			case e.IsDir() && strings.HasPrefix(name, "run-"):
				// A stage's scratch folder, made by kiln under the lock.
				if err := os.RemoveAll(filepath.Join(tmp, name)); err != nil {
					errs = append(errs, err)
				}
			case e.Type().IsRegular() && strings.HasPrefix(name, "ac-"):
				remove(filepath.Join(tmp, name))
			default:
				keep(filepath.Join("tmp", name))
			}
		}
		os.Remove(tmp)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == lockName, name == "cas", name == "ac", name == "tmp":
			// The lock is held; the areas were handled above.
		case !e.Type().IsRegular():
			keep(name) // a folder or link kiln did not make
		case name == journalName, name == filepath.Base(cache{dir}.markerPath()), atomicfile.IsTemp(name):
			remove(p)
		case name == stateFile:
			if data, err := os.ReadFile(p); err == nil {
				if _, derr := decodeState(data); derr == nil {
					remove(p)
					continue
				}
			}
			keep(name)
		default:
			keep(name)
		}
	}
	sort.Strings(kept)
	return kept, errors.Join(errs...)
}

// isHex reports whether s is n lower-case hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isRealDir reports whether p is a folder and not a symlink to one.
func isRealDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
