package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/models/hf"
)

// PullAll is `kiln models pull` without a model, and `kiln build --pull`:
// it fetches every model of opts.Config that is missing or does not match
// kiln.lock. A model with hf: (or one kiln.lock pins) goes through
// PullHF: a folder holding its locked files is left alone (sizes, and
// hashes remembered in opts.CacheDir, say so without reading it), a
// damaged one is restored, a missing one pulled, from the lock when the
// entry still matches kiln.yaml. With opts.Update every such model is
// resolved again and its entry moved to the revision's current commit. A
// folder model that is missing is pulled from the project's catalogue
// (opts.Catalog) when it lists one of that name; one that exists is not
// looked at (kiln models verify checks it), and built-in models have no
// files. Every model is tried; the error lists those that failed.
func PullAll(ctx context.Context, w io.Writer, opts PullOptions) ([]*PullResult, error) {
	if opts.ProjectRoot == "" || opts.Config == nil {
		return nil, errors.New("no project to pull the models of; run kiln in the folder of kiln.yaml")
	}
	root, err := filepath.Abs(opts.ProjectRoot)
	if err != nil {
		return nil, fmt.Errorf("resolve the project folder %s: %w", opts.ProjectRoot, err)
	}
	opts.ProjectRoot = root
	lock, err := ReadLock(root)
	if err != nil {
		return nil, err
	}

	names := make([]string, 0, len(opts.Config.Models))
	for n := range opts.Config.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		results []*PullResult
		failed  []string
		errs    []error
		tried   int
	)
	fail := func(name string, err error) {
		failed = append(failed, name)
		errs = append(errs, err)
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return results, err
		}
		m := opts.Config.Models[name]
		if m == nil || m.Builtin != "" {
			continue
		}
		dir, err := safepath.Join(root, m.Path)
		if err != nil {
			fail(name, fmt.Errorf("model %s: %w", name, err))
			continue
		}
		entry := lock.Models[name]
		if m.HF == nil && entry == nil {
			tried++
			res, err := pullFolderModel(ctx, w, name, dir, opts)
			if err != nil {
				fail(name, err)
			} else if res != nil {
				results = append(results, res)
			}
			continue
		}
		tried++
		ref := entry.refOrNil()
		if m.HF != nil {
			if ref, err = hf.ParseRef(m.HF.Ref()); err != nil {
				fail(name, fmt.Errorf("%s: model %s: %w", m.HF.Pos, name, err))
				continue
			}
		}
		o := opts
		o.Dest, o.Name = "", ""
		res, err := PullHF(ctx, w, ref, name, o)
		if err != nil {
			if ctx.Err() != nil {
				return results, err
			}
			fail(name, err)
			continue
		}
		results = append(results, res)
	}
	if len(errs) == 0 {
		if tried == 0 {
			fmt.Fprintln(w, "no models to pull: kiln.yaml names none with files (add one with hf: ORG/REPO under models:)")
		}
		return results, nil
	}
	if len(errs) == 1 {
		return results, errs[0]
	}
	return results, fmt.Errorf("%d of %d models could not be pulled (%s):\n%w", len(errs), tried, strings.Join(failed, ", "), errors.Join(errs...))
}

// refOrNil returns the entry's reference, the zero Ref for no entry.
func (e *LockEntry) refOrNil() hf.Ref {
	if e == nil {
		return hf.Ref{}
	}
	return e.Ref()
}

// pullFolderModel pulls a kiln.yaml folder model without hf: when its
// folder is missing and the catalogue lists it; it returns nil, nil when
// there is nothing to do.
func pullFolderModel(ctx context.Context, w io.Writer, name, dir string, opts PullOptions) (*PullResult, error) {
	if _, err := os.Stat(dir); err == nil {
		return nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("model %s: %w", name, err)
	}
	m := opts.Config.Models[name]
	if opts.Catalog != nil {
		if _, err := opts.Catalog.Lookup(name); err == nil {
			o := opts
			o.Dest, o.Name = "", ""
			return Pull(ctx, w, name, o)
		}
	}
	return nil, fmt.Errorf("%s: model %s: its folder %s does not exist and kiln.yaml gives no source for it: add hf: ORG/REPO to its entry to pull it from Hugging Face, list it in %s, or put the model folder there", m.Pos, name, m.Path, CatalogName)
}
