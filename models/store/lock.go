package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
	"github.com/kiln-dev/kiln/models/hf"
)

// LockName is the lock file beside kiln.yaml that pins every model pulled
// from Hugging Face (see the package documentation).
const LockName = "kiln.lock"

// LockVersion is the kiln.lock format this package writes and the newest
// it reads.
const LockVersion = 1

// commitRE is a full git commit id.
var commitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

// Lock is a kiln.lock: per model name, where its folder was pulled from
// and exactly what it holds. The zero value is an empty lock.
type Lock struct {
	// Models maps kiln.yaml model names to their entries.
	Models map[string]*LockEntry
}

// LockEntry pins one model: the Hugging Face repository folder and
// revision it was pulled from, the commit that revision pointed to, and
// every file of the folder.
type LockEntry struct {
	// Repo, Subfolder and Revision are the reference pulled, as
	// kiln.yaml's hf:, subfolder: and revision: (Revision is never "").
	Repo      string `json:"hf"`
	Subfolder string `json:"subfolder,omitempty"`
	Revision  string `json:"revision"`
	// Commit is the full commit id Revision pointed to; every pull of
	// the entry downloads from it, whatever the branch does since.
	Commit string `json:"commit"`
	// Files are the folder's files, sorted by path, each with its size
	// and SHA-256 (small files kept in git have theirs computed after
	// download, as the Hub lists none for them).
	Files []File `json:"files"`
}

// Ref is the entry's reference, as `kiln models pull` reads it.
func (e *LockEntry) Ref() hf.Ref {
	return hf.Ref{Repo: e.Repo, Subfolder: e.Subfolder, Revision: e.Revision}
}

// Pins reports whether the entry was pulled from src (kiln.yaml's hf:,
// subfolder: and revision:), so that it applies to it.
func (e *LockEntry) Pins(src *manifests.HFSource) bool {
	if src == nil {
		return false
	}
	rev := src.Revision
	if rev == "" {
		rev = manifests.DefaultHFRevision
	}
	return e.Repo == src.Repo && e.Subfolder == src.Subfolder && e.Revision == rev
}

// Snapshot is the entry as a models/hf snapshot: the locked commit and
// files, ready to download again without asking the Hub what the
// revision points to now.
func (e *LockEntry) Snapshot() *hf.Snapshot {
	s := &hf.Snapshot{Ref: e.Ref(), Commit: e.Commit}
	for _, f := range e.Files {
		s.Files = append(s.Files, hf.File{Path: f.Path, Size: f.Size, SHA256: f.SHA256})
	}
	return s
}

// TotalSize is the sum of the entry's file sizes.
func (e *LockEntry) TotalSize() int64 {
	var n int64
	for _, f := range e.Files {
		n += f.Size
	}
	return n
}

// lockJSON is kiln.lock as JSON.
type lockJSON struct {
	Version int                   `json:"version"`
	Models  map[string]*LockEntry `json:"models"`
}

// ParseLock decodes and checks a kiln.lock; from names it in errors
// (the file's path). Positions are line:col of the file.
func ParseLock(data []byte, from string) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var lf lockJSON
	fix := "fix it, or delete the broken entry (or the file) and run kiln models pull to pin the models again"
	if err := dec.Decode(&lf); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			line, col := lineCol(data, te.Offset)
			err = fmt.Errorf("line %d:%d: %q must be %s, not a %s", line, col, te.Field, yamlTypeWords(te.Type.String()), te.Value)
		} else {
			err = jsonPos(data, err)
		}
		return nil, fmt.Errorf("%s: invalid %s: %v; %s", from, LockName, err, fix)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: invalid %s: more than one JSON value; %s", from, LockName, fix)
	}
	if lf.Version == 0 {
		return nil, fmt.Errorf("%s: %s has no \"version\"; add \"version\": %d", from, LockName, LockVersion)
	}
	if lf.Version > LockVersion {
		return nil, fmt.Errorf("%s: %s is version %d, this kiln reads version %d; update kiln", from, LockName, lf.Version, LockVersion)
	}
	l := &Lock{Models: map[string]*LockEntry{}}
	for name, e := range lf.Models {
		if e == nil {
			return nil, fmt.Errorf("%s: model %q has no entry (null); %s", from, name, fix)
		}
		if err := checkLockEntry(name, e); err != nil {
			return nil, fmt.Errorf("%s: %w; %s", from, err, fix)
		}
		l.Models[name] = e
	}
	return l, nil
}

// checkLockEntry validates an entry read from a file or about to be
// written: a valid model name, reference and commit, and a file list
// like a manifest's (see checkFiles). Hashes are lowercased and the files
// sorted in place.
func checkLockEntry(name string, e *LockEntry) error {
	if !validName(name) {
		return fmt.Errorf("model name %q is not valid (letters, digits, \"_\", \".\" and \"-\")", name)
	}
	if e.Revision == "" {
		return fmt.Errorf("model %s has no \"revision\"", name)
	}
	if _, err := hf.ParseRef(e.Ref().String()); err != nil {
		return fmt.Errorf("model %s: %w", name, err)
	}
	if !commitRE.MatchString(e.Commit) {
		return fmt.Errorf("model %s: commit %q is not a full commit id (40 hex digits)", name, e.Commit)
	}
	if err := checkFiles(e.Files); err != nil {
		return fmt.Errorf("model %s: %w", name, err)
	}
	sortFiles(e.Files)
	return nil
}

// ReadLock reads root's kiln.lock. A project without one has an empty
// lock (and no error).
func ReadLock(root string) (*Lock, error) {
	// A symlink leading out of the project is refused, as for kiln.yaml.
	p, err := safepath.Join(root, LockName)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", LockName, err)
	}
	data, err := readLimited(p)
	if errors.Is(err, fs.ErrNotExist) {
		return &Lock{Models: map[string]*LockEntry{}}, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLock(data, p)
}

// Encode returns the lock in its stable form: JSON with the models sorted
// by name, each entry's fields in a fixed order, one file per line sorted
// by path, and a final newline, so that a pull changes only the lines of
// what it changed and the file diffs and merges well.
func (l *Lock) Encode() ([]byte, error) {
	names := make([]string, 0, len(l.Models))
	for n, e := range l.Models {
		if e == nil {
			continue
		}
		if err := checkLockEntry(n, e); err != nil {
			return nil, fmt.Errorf("encode %s: %w", LockName, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"version\": %d,\n  \"models\": {", LockVersion)
	for i, n := range names {
		e := l.Models[n]
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "\n    %s: {\n      \"hf\": %s,\n", jsonString(n), jsonString(e.Repo))
		if e.Subfolder != "" {
			fmt.Fprintf(&b, "      \"subfolder\": %s,\n", jsonString(e.Subfolder))
		}
		fmt.Fprintf(&b, "      \"revision\": %s,\n      \"commit\": %s,\n      \"files\": [", jsonString(e.Revision), jsonString(e.Commit))
		for j, f := range e.Files {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "\n        {\"path\": %s, \"size\": %s, \"sha256\": %s}", jsonString(f.Path), strconv.FormatInt(f.Size, 10), jsonString(f.SHA256))
		}
		b.WriteString("\n      ]\n    }")
	}
	if len(names) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("}\n}\n")
	return b.Bytes(), nil
}

// jsonString quotes s as a JSON string, leaving <, > and & as they are.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// WriteLock atomically writes l as root's kiln.lock.
func WriteLock(root string, l *Lock) error {
	data, err := l.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(root, LockName), data, atomicfile.DefaultPerm)
}

// updateLock sets (or, with e nil, removes) the entry of model name in
// root's kiln.lock. It holds a lock on the project folder while it reads
// and writes, so concurrent pulls of other models keep their entries.
func updateLock(root, name string, e *LockEntry) error {
	d, err := os.Open(root)
	if err != nil {
		return fmt.Errorf("update %s: %w", filepath.Join(root, LockName), err)
	}
	defer d.Close()
	if err := lockFileWait(d); err != nil {
		return fmt.Errorf("update %s: lock the project folder: %w", filepath.Join(root, LockName), err)
	}
	l, err := ReadLock(root)
	if err != nil {
		return err
	}
	if e == nil {
		delete(l.Models, name)
	} else {
		l.Models[name] = e
	}
	if err := WriteLock(root, l); err != nil {
		return fmt.Errorf("update %s: %w", LockName, err)
	}
	return nil
}
