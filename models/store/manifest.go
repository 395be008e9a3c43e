package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
	"github.com/kiln-dev/kiln/manifests"
)

// ManifestName is the file that records a model folder's contents: at the
// root of every pulled folder, and at the root of a base URL that serves a
// model.
const ManifestName = "kiln-manifest.json"

// ManifestVersion is the kiln-manifest.json format this package writes and
// the newest it reads.
const ManifestVersion = 1

// maxManifestBytes bounds a kiln-manifest.json or catalogue read from disk
// or the network, so a hostile server cannot exhaust memory.
const maxManifestBytes = 16 << 20

// maxFiles bounds the number of files one model may list.
const maxFiles = 100_000

// File is one file of a model folder: its slash-separated path relative to
// the folder, its size in bytes and the lowercase hex sha256 of its content.
type File struct {
	Path   string `json:"path" yaml:"path"`
	Size   int64  `json:"size" yaml:"size"`
	SHA256 string `json:"sha256" yaml:"sha256"`
}

// Manifest is a kiln-manifest.json: the files of a model folder with their
// sizes and hashes, and optionally what the model is. Pull writes one into
// every folder it completes; Verify checks a folder against it; a server
// offering a model puts one at the root of its base URL.
type Manifest struct {
	// Version is ManifestVersion.
	Version int `json:"version"`
	// Name is the model's name (a kiln.yaml model name), "" when unknown.
	Name string `json:"name,omitempty"`
	// Kind is the model's architecture family, "" when unknown.
	Kind manifests.ModelKind `json:"kind,omitempty"`
	// Description is a one-line human description.
	Description string `json:"description,omitempty"`
	// Source is the base URL the files were pulled from (recorded by Pull).
	Source string `json:"source,omitempty"`
	// Files are the model's files sorted by path; the manifest itself is
	// not listed.
	Files []File `json:"files"`
}

// TotalSize is the sum of the files' sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// ParseManifest decodes and checks a kiln-manifest.json. from names where
// the data came from (a path or URL) for error messages.
func ParseManifest(data []byte, from string) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			line, col := lineCol(data, te.Offset)
			err = fmt.Errorf("line %d:%d: %q must be %s, not a %s", line, col, te.Field, yamlTypeWords(te.Type.String()), te.Value)
		} else {
			err = jsonPos(data, err)
		}
		return nil, fmt.Errorf("%s: invalid %s: %v; it must be a JSON object {\"version\": 1, \"files\": [{\"path\", \"size\", \"sha256\"}, ...]}", from, ManifestName, err)
	}
	if m.Version == 0 {
		return nil, fmt.Errorf("%s: %s has no \"version\"; add \"version\": %d", from, ManifestName, ManifestVersion)
	}
	if m.Version > ManifestVersion {
		return nil, fmt.Errorf("%s: %s is version %d, this kiln reads version %d; update kiln", from, ManifestName, m.Version, ManifestVersion)
	}
	if err := checkFiles(m.Files); err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	if m.Kind != "" && !validKind(m.Kind) {
		return nil, fmt.Errorf("%s: kind %q is not one of %s", from, m.Kind, strings.Join(kindNames(), ", "))
	}
	sortFiles(m.Files)
	return &m, nil
}

// ReadManifest reads dir's kiln-manifest.json. A missing file wraps
// fs.ErrNotExist.
func ReadManifest(dir string) (*Manifest, error) {
	p := filepath.Join(dir, ManifestName)
	data, err := readLimited(p)
	if err != nil {
		return nil, err
	}
	return ParseManifest(data, p)
}

// readLimited reads a small file, refusing one over maxManifestBytes.
func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("%s is larger than %d MiB; it is not a model catalogue or manifest", p, maxManifestBytes>>20)
	}
	return data, nil
}

// Encode returns the manifest as indented JSON with a final newline.
func (m *Manifest) Encode() ([]byte, error) {
	c := *m
	if c.Version == 0 {
		c.Version = ManifestVersion
	}
	if c.Files == nil {
		c.Files = []File{}
	}
	data, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestName, err)
	}
	return append(data, '\n'), nil
}

// WriteManifest atomically writes m as dir's kiln-manifest.json.
func WriteManifest(dir string, m *Manifest) error {
	data, err := m.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestName), data, atomicfile.DefaultPerm)
}

// BuildManifest hashes every file of the model folder dir and returns its
// manifest: regular files (symlinks followed), sorted by path, leaving out
// hidden files and folders (as models.Folder.Fingerprint does) and
// kiln-manifest.json itself. Servers publishing a model and users recording
// a folder they exported themselves use it.
func BuildManifest(ctx context.Context, dir string) (*Manifest, error) {
	rels, err := folderFiles(dir)
	if err != nil {
		return nil, err
	}
	m := &Manifest{Version: ManifestVersion, Files: make([]File, 0, len(rels))}
	for _, rel := range rels {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sum, size, err := hashFile(ctx, filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, File{Path: rel, Size: size, SHA256: sum})
	}
	return m, nil
}

// folderFiles lists the regular files of a model folder as sorted
// slash-separated relative paths, without hidden entries and without
// kiln-manifest.json.
func folderFiles(dir string) ([]string, error) {
	var rels []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("list model folder %s: %w", dir, err)
		}
		if p == dir {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("list model folder %s: %w", dir, err)
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("list model folder %s: %w", dir, err)
		}
		rel = filepath.ToSlash(rel)
		if rel != ManifestName {
			rels = append(rels, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(rels)
	return rels, nil
}

// hashFile returns the hex sha256 and the size of the file at p.
func hashFile(ctx context.Context, p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long read (hashing gigabytes) when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// checkFiles validates a file list from a manifest or catalogue, which may
// come from a hostile server: every path must be a clean relative path
// that stays inside the model folder (no "..", no absolute path, no drive
// letter, no backslash), paths must be unique, no file may also be a
// folder of another, sizes must not be negative and hashes must be 64 hex
// digits. Hashes are lowercased in place.
func checkFiles(files []File) error { return checkFileList(files, true) }

// checkFileList is checkFiles, where needSum false also accepts files
// whose sha256 is not known yet ("": small files of a Hugging Face
// repository on its first pull, hashed as they download).
func checkFileList(files []File, needSum bool) error {
	if len(files) == 0 {
		return errors.New("the model lists no files; list every file of the model folder with its size and sha256")
	}
	if len(files) > maxFiles {
		return fmt.Errorf("the model lists %d files, more than the %d kiln accepts", len(files), maxFiles)
	}
	seen := make(map[string]bool, len(files))
	for i := range files {
		f := &files[i]
		if err := checkPath(f.Path); err != nil {
			return err
		}
		if seen[f.Path] {
			return fmt.Errorf("file %q is listed twice; list each file once", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return fmt.Errorf("file %q has a negative size %d", f.Path, f.Size)
		}
		sum := strings.ToLower(f.SHA256)
		if sum == "" && !needSum {
			continue
		}
		if len(sum) != sha256.Size*2 || strings.Trim(sum, "0123456789abcdef") != "" {
			return fmt.Errorf("file %q: sha256 %q is not 64 hex digits; give the file's sha256 (sha256sum prints it)", f.Path, f.SHA256)
		}
		f.SHA256 = sum
	}
	dirs := map[string]bool{}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return fmt.Errorf("%q is listed as a file but %q is inside it; a path cannot be both a file and a folder", dir, f.Path)
			}
			dirs[dir] = true
		}
	}
	for _, f := range files {
		if p := f.Path + partSuffix; seen[p] || dirs[p] {
			return fmt.Errorf("files %q and %q both listed: kiln keeps partial downloads as %q; rename one", f.Path, p, p)
		}
	}
	return nil
}

// checkPath validates one manifest path with internal/safepath and also
// requires its clean spelling, so one file cannot be listed under two
// names, and refuses the names kiln itself uses in a model folder.
func checkPath(p string) error {
	if err := safepath.Validate(p); err != nil {
		var se *safepath.Error
		if !errors.As(err, &se) {
			return fmt.Errorf("file %w", err)
		}
		// safepath speaks of the project; here the base is the model
		// folder.
		in := func(s string) string { return strings.ReplaceAll(s, "the project", "the model folder") }
		return fmt.Errorf("file %w", &safepath.Error{Path: se.Path, Base: "the model folder", Reason: in(se.Reason), Fix: in(se.Fix)})
	}
	if clean := path.Clean(p); clean != p {
		return fmt.Errorf("file path %q is not in its simplest form; write it as %q", p, clean)
	}
	if p == ManifestName {
		return fmt.Errorf("file path %q is reserved: kiln writes the model's own %s; leave it out of the file list", p, ManifestName)
	}
	return nil
}

func sortFiles(files []File) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// validKind reports whether k is one of the kinds kiln.yaml accepts.
func validKind(k manifests.ModelKind) bool {
	for _, n := range kindNames() {
		if string(k) == n {
			return true
		}
	}
	return false
}

func kindNames() []string {
	return []string{string(manifests.ModelSD15), string(manifests.ModelSD2), string(manifests.ModelSDXL), string(manifests.ModelLCM), string(manifests.ModelTurbo)}
}

// validName reports whether s can be a model name: letters, digits and
// "_", "." and "-" after the first character, as kiln.yaml's model names.
// Names become folder names, so the rule also keeps them safe as paths.
func validName(s string) bool {
	if s == "" || len(s) > 100 {
		return false
	}
	for i, r := range s {
		ok := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || (i > 0 && (r == '_' || r == '.' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

// jsonPos adds line:col to a JSON syntax error.
func jsonPos(data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return err
	}
	line, col := lineCol(data, se.Offset)
	return fmt.Errorf("line %d:%d: %w", line, col, err)
}

// lineCol turns the byte offset encoding/json reports (just past the
// offending byte) into a 1-based line and column.
func lineCol(data []byte, off int64) (line, col int) {
	line, col = 1, 1
	for i := int64(0); i < off-1 && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
