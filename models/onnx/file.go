package onnx

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Load reads and decodes the model file at path. External tensor data is
// not read; the tensors keep their references (see Tensor.ReadData).
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("onnx: load: %w", err)
	}
	d := &decoder{}
	m := &Model{sizeHint: len(data)}
	if err := d.model(m, data, 0); err != nil {
		hint := "the file is not an ONNX model or is corrupt; export or download it again"
		if errors.Is(err, ErrTruncated) {
			hint = "the file is truncated (an interrupted download or copy?); download or export it again"
		}
		return nil, fmt.Errorf("onnx: load %s: %w: %s", path, err, hint)
	}
	return m, nil
}

// Save encodes the model and writes it to path atomically: a crash leaves
// either the old file or the new one, never a mix.
func (m *Model) Save(path string) error {
	data, err := m.Encode()
	if err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if err := WriteFileAtomic(path, data); err != nil {
		return fmt.Errorf("onnx: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to a temporary file in path's folder, syncs
// it, and renames it over path.
func WriteFileAtomic(path string, data []byte) error {
	return writeAtomic(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func writeAtomic(path string, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: make the rename durable
		d.Close()
	}
	return nil
}

// External describes where an external tensor's bytes are: a file named
// relative to the model's folder, a byte offset and a length.
type External struct {
	Location string
	Offset   int64
	// Length is -1 when the entry is absent, meaning "to the end of file".
	Length   int64
	Checksum string
}

// IsExternal reports whether the tensor's data lives in an external file.
func (t *Tensor) IsExternal() bool { return t.DataLocation == LocationExternal }

// External parses the tensor's external_data entries.
func (t *Tensor) External() (External, error) {
	x := External{Length: -1}
	if !t.IsExternal() {
		return x, fmt.Errorf("tensor %q: data is not external", t.Name)
	}
	for _, e := range t.ExternalData {
		switch e.Key {
		case "location":
			x.Location = e.Value
		case "offset", "length":
			v, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil || v < 0 {
				return x, fmt.Errorf("tensor %q: external_data %s %q is not a non-negative integer", t.Name, e.Key, e.Value)
			}
			if e.Key == "offset" {
				x.Offset = v
			} else {
				x.Length = v
			}
		case "checksum":
			x.Checksum = e.Value
		}
	}
	if x.Location == "" {
		return x, fmt.Errorf("tensor %q: external data has no location", t.Name)
	}
	return x, nil
}

// SetExternal marks the tensor as external and sets its location, offset
// and length entries, updating existing entries in place (other keys are
// kept) and clearing inline data.
func (t *Tensor) SetExternal(x External) {
	t.DataLocation = LocationExternal
	t.RawData = nil
	t.FloatData, t.Int32Data, t.Int64Data, t.DoubleData, t.Uint64Data, t.StringData = nil, nil, nil, nil, nil, nil
	set := func(key, value string, keep bool) {
		for i, e := range t.ExternalData {
			if e.Key == key {
				if keep {
					e.Value = value
				} else {
					t.ExternalData = append(t.ExternalData[:i], t.ExternalData[i+1:]...)
				}
				return
			}
		}
		if keep {
			t.ExternalData = append(t.ExternalData, &StringStringEntry{Key: key, Value: value})
		}
	}
	set("location", x.Location, true)
	set("offset", strconv.FormatInt(x.Offset, 10), true)
	set("length", strconv.FormatInt(x.Length, 10), x.Length >= 0)
	set("checksum", x.Checksum, x.Checksum != "")
}

// ExternalPath resolves an external location against the model's folder,
// refusing absolute paths and paths that leave the folder, as ONNX Runtime
// does.
func ExternalPath(dir, location string) (string, error) {
	if filepath.IsAbs(location) || !filepath.IsLocal(filepath.FromSlash(location)) {
		return "", fmt.Errorf("external data location %q must be a relative path inside the model folder", location)
	}
	return filepath.Join(dir, filepath.FromSlash(location)), nil
}

// ReadData returns the tensor's raw little-endian bytes, reading them from
// the external file (relative to dir, the model's folder) when the tensor
// is external. The length is checked against dims and data type.
func (t *Tensor) ReadData(dir string) ([]byte, error) {
	if !t.IsExternal() {
		return t.Bytes()
	}
	x, err := t.External()
	if err != nil {
		return nil, err
	}
	path, err := ExternalPath(dir, x.Location)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: external data: %w", t.Name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tensor %q: external data: %w", t.Name, err)
	}
	length := x.Length
	if length < 0 {
		length = st.Size() - x.Offset
	}
	if x.Offset > st.Size() || length < 0 || length > st.Size()-x.Offset {
		return nil, fmt.Errorf("tensor %q: external data [%d, +%d) is beyond the end of %s (%d bytes); the weights file is truncated or belongs to another model", t.Name, x.Offset, length, path, st.Size())
	}
	if n, err := t.NumElements(); err == nil && t.DataType.Size() > 0 && n*int64(t.DataType.Size()) != length {
		return nil, fmt.Errorf("tensor %q: external data has %d bytes, dims %v of %s need %d", t.Name, length, t.Dims, t.DataType, n*int64(t.DataType.Size()))
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, x.Offset); err != nil && !(errors.Is(err, io.EOF) && length == 0) {
		return nil, fmt.Errorf("tensor %q: read %s: %w", t.Name, path, err)
	}
	return buf, nil
}

// ExternalFiles lists the distinct external data locations the model's
// main graph refers to, in first-use order.
func (m *Model) ExternalFiles() []string {
	var out []string
	seen := map[string]bool{}
	if m.Graph == nil {
		return nil
	}
	for _, t := range m.Graph.Initializers {
		if !t.IsExternal() {
			continue
		}
		x, err := t.External()
		if err != nil || seen[x.Location] {
			continue
		}
		seen[x.Location] = true
		out = append(out, x.Location)
	}
	return out
}

// ExternalOptions controls SaveExternal.
type ExternalOptions struct {
	// File is the data file's name, relative to the model's folder, e.g.
	// "model.onnx_data" (optimum) or "weights.pb" (older diffusers).
	File string
	// MinSize is the smallest raw size in bytes moved out of the model;
	// smaller initializers stay inline. 0 means 1024, as onnx uses.
	MinSize int
	// Align pads each tensor's offset to a multiple of Align bytes (0 means
	// 64) so the runtime can map the file efficiently.
	Align int
}

// SaveExternal moves every inline initializer of at least opts.MinSize raw
// bytes into one data file next to path, updates those tensors to external
// references, and writes the data file and then the model, each
// atomically. The model in memory is changed to match what was written.
func (m *Model) SaveExternal(path string, opts ExternalOptions) error {
	if opts.File == "" {
		return fmt.Errorf("save %s: external data file name is empty", path)
	}
	if _, err := ExternalPath(filepath.Dir(path), opts.File); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	if opts.MinSize <= 0 {
		opts.MinSize = 1024
	}
	if opts.Align <= 0 {
		opts.Align = 64
	}
	if m.Graph == nil {
		return fmt.Errorf("save %s: model has no graph", path)
	}
	type move struct {
		t   *Tensor
		raw []byte
		off int64
	}
	var moves []move
	var off int64
	for _, t := range m.Graph.Initializers {
		if t == nil || t.IsExternal() {
			continue
		}
		raw, err := t.Bytes()
		if err != nil || len(raw) < opts.MinSize {
			continue
		}
		if r := off % int64(opts.Align); r != 0 {
			off += int64(opts.Align) - r
		}
		moves = append(moves, move{t, raw, off})
		off += int64(len(raw))
	}
	dataPath := filepath.Join(filepath.Dir(path), filepath.FromSlash(opts.File))
	err := writeAtomic(dataPath, func(w io.Writer) error {
		var pos int64
		pad := make([]byte, opts.Align)
		for _, mv := range moves {
			if _, err := w.Write(pad[:mv.off-pos]); err != nil {
				return err
			}
			if _, err := w.Write(mv.raw); err != nil {
				return err
			}
			pos = mv.off + int64(len(mv.raw))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("onnx: save external data: %w", err)
	}
	for _, mv := range moves {
		mv.t.SetExternal(External{Location: opts.File, Offset: mv.off, Length: int64(len(mv.raw))})
	}
	return m.Save(path)
}
