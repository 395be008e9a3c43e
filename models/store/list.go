package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models"
)

// LocalModel is a model a project knows: configured in kiln.yaml, built
// in, or pulled into the project's models/ folder.
type LocalModel struct {
	// Name is the kiln.yaml name (or the folder name of a pulled model
	// that kiln.yaml does not name; "builtin:NAME" for an unconfigured
	// built-in).
	Name string
	// Kind is the configured kind, else the one kiln-manifest.json
	// records, else "".
	Kind manifests.ModelKind
	// Builtin is the built-in model's name ("exemplar"), "" for folders.
	Builtin string
	// Path is how the folder is written: project-relative, slash-separated.
	Path string
	// Dir is the absolute folder ("" for built-ins).
	Dir string
	// Configured reports that kiln.yaml names the model.
	Configured bool
	// HF is kiln.yaml's Hugging Face source of the model, nil when it
	// has none.
	HF *manifests.HFSource
}

// LocalModels returns the project's models sorted by name: every entry of
// cfg.Models, builtin:exemplar when no entry names it, and every folder
// under <root>/models holding a kiln-manifest.json that no entry points
// to (pulled but not configured yet).
func LocalModels(root string, cfg *manifests.Config) ([]LocalModel, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("project folder %s: %w", root, err)
	}
	var out []LocalModel
	seenDir := map[string]bool{}
	builtins := map[string]bool{}
	if cfg != nil {
		for name, m := range cfg.Models {
			if m == nil {
				continue
			}
			lm := LocalModel{Name: name, Kind: m.Kind, Builtin: m.Builtin, Configured: true, HF: m.HF}
			if m.Builtin != "" {
				builtins[m.Builtin] = true
				out = append(out, lm)
				continue
			}
			dir, err := safepath.Join(root, m.Path)
			if err != nil {
				return nil, fmt.Errorf("kiln.yaml model %s: %w", name, err)
			}
			lm.Path, lm.Dir = m.Path, dir
			seenDir[dir] = true
			if lm.Kind == "" {
				if man, err := ReadManifest(dir); err == nil {
					lm.Kind = man.Kind
				}
			}
			out = append(out, lm)
		}
	}
	if b := strings.TrimPrefix(manifests.Exemplar, "builtin:"); !builtins[b] {
		out = append(out, LocalModel{Name: manifests.Exemplar, Builtin: b})
	}

	modelsDir := filepath.Join(root, "models")
	entries, err := os.ReadDir(modelsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list %s: %w", modelsDir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || !validName(e.Name()) || strings.HasSuffix(e.Name(), StagingSuffix) || strings.HasSuffix(e.Name(), oldSuffix) {
			continue
		}
		dir := filepath.Join(modelsDir, e.Name())
		if seenDir[dir] {
			continue
		}
		man, err := ReadManifest(dir)
		if err != nil {
			continue
		}
		out = append(out, LocalModel{Name: e.Name(), Kind: man.Kind, Path: "models/" + e.Name(), Dir: dir})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Select returns the model called name, or all of ms when name is "".
func Select(ms []LocalModel, name string) ([]LocalModel, error) {
	if name == "" {
		return ms, nil
	}
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Name == name || (m.Builtin != "" && name == "builtin:"+m.Builtin) {
			return []LocalModel{m}, nil
		}
		names = append(names, m.Name)
	}
	return nil, fmt.Errorf("no model named %q in this project; its models are: %s (kiln.yaml's models: lists them)", name, strings.Join(names, ", "))
}

// List is `kiln models list`: a table of the models with their kind, size
// on disk, fingerprint (models.Folder.Fingerprint, whose per-file hashes
// are remembered in cacheDir, so listing again is cheap; "" disables
// that) and where they live, followed by a line for each folder that is
// missing, incomplete or half-pulled.
func List(w io.Writer, ms []LocalModel, cacheDir string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSIZE\tFINGERPRINT\tWHERE")
	var notes []string
	for _, m := range ms {
		kind := string(m.Kind)
		if m.Builtin != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tbuilt in (no files)\n", m.Name, orDash(kind))
			continue
		}
		where := m.Path
		if !m.Configured {
			where += " (not in kiln.yaml)"
		}
		if _, err := os.Stat(m.Dir + StagingSuffix); err == nil {
			notes = append(notes, fmt.Sprintf("%s: an unfinished pull is in %s; kiln models pull %s resumes it", m.Name, m.Dir+StagingSuffix, m.Name))
		}
		st, err := os.Stat(m.Dir)
		if err != nil || !st.IsDir() {
			fmt.Fprintf(tw, "%s\t%s\t-\tmissing\t%s\n", m.Name, orDash(kind), where)
			notes = append(notes, fmt.Sprintf("%s: %s does not exist; kiln models pull %s downloads it", m.Name, m.Dir, m.Name))
			continue
		}
		size, err := dirSize(m.Dir)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", m.Name, err))
		}
		if f, err := models.OpenFolder(m.Dir); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", m.Name, err))
		} else if kind == "" && f.SDXL {
			kind = string(manifests.ModelSDXL)
		}
		fp := "?"
		folder := &models.Folder{Dir: m.Dir, CacheDir: cacheDir}
		if sum, err := folder.Fingerprint(); err != nil {
			notes = append(notes, fmt.Sprintf("%s: %v", m.Name, err))
		} else {
			fp = shortFingerprint(sum)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, orDash(kind), formatBytes(size), fp, where)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write model list: %w", err)
	}
	for _, n := range notes {
		if _, err := fmt.Fprintf(w, "  %s\n", n); err != nil {
			return fmt.Errorf("write model list: %w", err)
		}
	}
	return nil
}

// shortFingerprint keeps "sha256:" and 16 hex digits, enough to tell
// models apart at a glance.
func shortFingerprint(fp string) string {
	const keep = len("sha256:") + 16
	if len(fp) > keep {
		return fp[:keep]
	}
	return fp
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dirSize sums the sizes of the files under dir, counting a symlinked
// file by its target.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		// Stat follows a symlinked weights file, as Fingerprint does.
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("size of %s: %w", dir, err)
	}
	return n, nil
}
