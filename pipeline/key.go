package pipeline

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// keyFormat versions the key derivation itself; changing how keys are
// computed must change it so old cache entries are not matched.
const keyFormat = "kiln-stage-key/1"

// digest is a SHA-256 hash: of a file's content (naming its blob in the
// cache) or of a stage's key parts (naming its action record). It encodes
// as lower-case hex in JSON and messages.
type digest [sha256.Size]byte

// String returns the hash in hex.
func (d digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is unset.
func (d digest) IsZero() bool { return d == digest{} }

// MarshalText encodes d as hex.
func (d digest) MarshalText() ([]byte, error) {
	return hex.AppendEncode(nil, d[:]), nil
}

// UnmarshalText decodes 64 hex digits.
func (d *digest) UnmarshalText(b []byte) error {
	if len(b) != 2*len(d) {
		return fmt.Errorf("bad sha256 %q: want %d hex digits", b, 2*len(d))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return fmt.Errorf("bad sha256 %q: %w", b, err)
	}
	return nil
}

// keyParts are the inputs of a stage's cache key. They are stored with
// each cache entry so --explain can say which part changed.
type keyParts struct {
	Kind    string          `json:"kind"`
	Version string          `json:"version"`
	Params  json.RawMessage `json:"params"`
	Models  []string        `json:"models,omitempty"`
	Files   []fileInput     `json:"files,omitempty"`
	Deps    []depInput      `json:"deps,omitempty"`
}

// fileInput is a source file and its content hash.
type fileInput struct {
	Path   string `json:"path"`
	SHA256 digest `json:"sha256"`
}

// depInput is a dependency and the hashes of its outputs.
type depInput struct {
	ID      string      `json:"id"`
	Outputs []namedBlob `json:"outputs"`
}

// namedBlob is an output name and its content hash.
type namedBlob struct {
	Name   string `json:"name"`
	SHA256 digest `json:"sha256"`
}

// key hashes the parts into the stage's cache key (hex sha256). The
// encoding is length-prefixed, so no two different part lists collide.
func (p *keyParts) key() digest {
	size := 64 + len(p.Params)
	for _, m := range p.Models {
		size += len(m) + 4
	}
	for _, f := range p.Files {
		size += len(f.Path) + len(f.SHA256) + 16
	}
	for _, d := range p.Deps {
		size += len(d.ID) + 4
		for _, o := range d.Outputs {
			size += len(o.Name) + len(o.SHA256) + 16
		}
	}
	buf := make([]byte, 0, size)
	num := func(n int) { buf = binary.AppendUvarint(buf, uint64(n)) }
	str := func(s string) { num(len(s)); buf = append(buf, s...) }
	str(keyFormat)
	str(p.Kind)
	str(p.Version)
	num(len(p.Params))
	buf = append(buf, p.Params...)
	num(len(p.Models))
	for _, m := range p.Models {
		str(m)
	}
	num(len(p.Files))
	for _, f := range p.Files {
		str(f.Path)
		buf = append(buf, f.SHA256[:]...)
	}
	num(len(p.Deps))
	for _, d := range p.Deps {
		str(d.ID)
		num(len(d.Outputs))
		for _, o := range d.Outputs {
			str(o.Name)
			buf = append(buf, o.SHA256[:]...)
		}
	}
	return sha256.Sum256(buf)
}

// canonicalJSON encodes v as JSON with object keys sorted at every level
// and no insignificant space, so equal parameters give equal bytes however
// they were built (struct field order, map order).
func canonicalJSON(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	c := canonicalizer{src: raw}
	if err := c.value(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// canonicalizer rewrites compact JSON (as produced by json.Marshal) with
// sorted object keys. It relies on its input being valid, compact JSON.
type canonicalizer struct {
	src []byte
	pos int
}

func (c *canonicalizer) value(out *bytes.Buffer) error {
	if c.pos >= len(c.src) {
		return fmt.Errorf("canonical JSON: unexpected end of input")
	}
	switch c.src[c.pos] {
	case '{':
		return c.object(out)
	case '[':
		c.pos++
		out.WriteByte('[')
		if c.src[c.pos] == ']' {
			c.pos++
			out.WriteByte(']')
			return nil
		}
		for {
			if err := c.value(out); err != nil {
				return err
			}
			if c.pos >= len(c.src) {
				return fmt.Errorf("canonical JSON: unterminated array")
			}
			ch := c.src[c.pos]
			c.pos++
			out.WriteByte(ch)
			if ch == ']' {
				return nil
			}
		}
	case '"':
		start := c.pos
		c.skipString()
		out.Write(c.src[start:c.pos])
		return nil
	default: // number, true, false, null
		start := c.pos
		for c.pos < len(c.src) {
			ch := c.src[c.pos]
			if ch == ',' || ch == ']' || ch == '}' {
				break
			}
			c.pos++
		}
		out.Write(c.src[start:c.pos])
		return nil
	}
}

// skipString moves past the string starting at pos.
func (c *canonicalizer) skipString() {
	c.pos++ // opening quote
	for c.pos < len(c.src) {
		switch c.src[c.pos] {
		case '\\':
			c.pos += 2
		case '"':
			c.pos++
			return
		default:
			c.pos++
		}
	}
}

func (c *canonicalizer) object(out *bytes.Buffer) error {
	c.pos++ // '{'
	if c.src[c.pos] == '}' {
		c.pos++
		out.WriteString("{}")
		return nil
	}
	// Members are written in input order, then reordered in place if
	// their keys are not sorted (json.Marshal sorts map keys, so only
	// struct fields usually need it).
	type member struct {
		key        []byte // the quoted key as encoded, in src
		start, end int    // the member ("key":value) in out
	}
	var small [8]member
	members := small[:0]
	base := out.Len()
	out.WriteByte('{')
	for {
		ks := c.pos
		c.skipString()
		key := c.src[ks:c.pos]
		if c.pos >= len(c.src) || c.src[c.pos] != ':' {
			return fmt.Errorf("canonical JSON: expected ':' after object key")
		}
		c.pos++
		start := out.Len()
		out.Write(key)
		out.WriteByte(':')
		if err := c.value(out); err != nil {
			return err
		}
		members = append(members, member{key, start, out.Len()})
		if c.pos >= len(c.src) {
			return fmt.Errorf("canonical JSON: unterminated object")
		}
		ch := c.src[c.pos]
		c.pos++
		if ch == '}' {
			break
		}
		out.WriteByte(',')
	}
	out.WriteByte('}')
	byKey := func(a, b member) int { return bytes.Compare(a.key, b.key) }
	if slices.IsSortedFunc(members, byKey) {
		return nil
	}
	slices.SortStableFunc(members, byKey)
	written := out.Bytes()
	var sorted bytes.Buffer
	sorted.Grow(out.Len() - base)
	sorted.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			sorted.WriteByte(',')
		}
		sorted.Write(written[m.start:m.end])
	}
	sorted.WriteByte('}')
	out.Truncate(base)
	out.Write(sorted.Bytes())
	return nil
}

// diffParts explains how cur differs from prev, one reason per change,
// in the style of `ninja -d explain`.
func diffParts(prev, cur *keyParts) []string {
	var out []string
	if prev.Kind != cur.Kind {
		out = append(out, fmt.Sprintf("kind changed %s -> %s", prev.Kind, cur.Kind))
	}
	if prev.Version != cur.Version {
		out = append(out, fmt.Sprintf("implementation version changed %s -> %s", prev.Version, cur.Version))
	}
	if !bytes.Equal(prev.Params, cur.Params) {
		out = append(out, diffJSON(prev.Params, cur.Params)...)
	}
	out = append(out, diffModels(prev.Models, cur.Models)...)
	out = append(out, diffFiles(prev.Files, cur.Files)...)
	out = append(out, diffDeps(prev.Deps, cur.Deps)...)
	return out
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func diffModels(prev, cur []string) []string {
	var out []string
	n := max(len(prev), len(cur))
	for i := range n {
		switch {
		case i >= len(prev):
			out = append(out, fmt.Sprintf("model added (fingerprint %s)", short(cur[i])))
		case i >= len(cur):
			out = append(out, fmt.Sprintf("model removed (fingerprint %s)", short(prev[i])))
		case prev[i] != cur[i]:
			out = append(out, fmt.Sprintf("model fingerprint changed %s -> %s", short(prev[i]), short(cur[i])))
		}
	}
	return out
}

func diffFiles(prev, cur []fileInput) []string {
	var out []string
	old := map[string]digest{}
	for _, f := range prev {
		old[f.Path] = f.SHA256
	}
	seen := map[string]bool{}
	for _, f := range cur {
		seen[f.Path] = true
		h, ok := old[f.Path]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("source file %s added", f.Path))
		case h != f.SHA256:
			out = append(out, fmt.Sprintf("source file %s changed", f.Path))
		}
	}
	for _, f := range prev {
		if !seen[f.Path] {
			out = append(out, fmt.Sprintf("source file %s removed", f.Path))
		}
	}
	if len(out) == 0 && len(prev) == len(cur) {
		for i := range prev {
			if prev[i].Path != cur[i].Path {
				return []string{"source files reordered"}
			}
		}
	}
	return out
}

func diffDeps(prev, cur []depInput) []string {
	var out []string
	old := map[string]depInput{}
	for _, d := range prev {
		old[d.ID] = d
	}
	seen := map[string]bool{}
	for _, d := range cur {
		seen[d.ID] = true
		o, ok := old[d.ID]
		if !ok {
			out = append(out, fmt.Sprintf("dependency %s added", d.ID))
			continue
		}
		var changed []string
		was := map[string]digest{}
		for _, b := range o.Outputs {
			was[b.Name] = b.SHA256
		}
		for _, b := range d.Outputs {
			if h, ok := was[b.Name]; !ok || h != b.SHA256 {
				changed = append(changed, b.Name)
			}
			delete(was, b.Name)
		}
		changed = append(changed, sortedKeys(was)...)
		if len(changed) > 0 {
			out = append(out, fmt.Sprintf("dependency %s output changed (%s)", d.ID, strings.Join(changed, ", ")))
		}
	}
	for _, d := range prev {
		if !seen[d.ID] {
			out = append(out, fmt.Sprintf("dependency %s removed", d.ID))
		}
	}
	if len(out) == 0 && len(prev) == len(cur) {
		for i := range prev {
			if prev[i].ID != cur[i].ID {
				return []string{"dependencies reordered"}
			}
		}
	}
	return out
}

// diffJSON explains the differences between two JSON parameter documents
// as "params.a.b changed 1 -> 2", "params.c added", "params.d removed".
func diffJSON(prev, cur json.RawMessage) []string {
	a, errA := decodeNumbers(prev)
	b, errB := decodeNumbers(cur)
	if errA != nil || errB != nil {
		return []string{"params changed"}
	}
	var out []string
	diffValue("params", a, b, &out)
	if len(out) == 0 {
		out = append(out, "params changed")
	}
	return out
}

// maxReasons bounds how many parameter differences are listed.
const maxReasons = 20

func diffValue(path string, a, b any, out *[]string) {
	if len(*out) >= maxReasons {
		return
	}
	if am, ok := a.(map[string]any); ok {
		if bm, ok := b.(map[string]any); ok {
			keys := sortedKeys(am)
			for _, k := range sortedKeys(bm) {
				if _, ok := am[k]; !ok {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				av, ina := am[k]
				bv, inb := bm[k]
				p := path + "." + k
				switch {
				case !ina:
					*out = append(*out, fmt.Sprintf("%s added (%s)", p, brief(bv)))
				case !inb:
					*out = append(*out, fmt.Sprintf("%s removed (was %s)", p, brief(av)))
				default:
					diffValue(p, av, bv, out)
				}
			}
			return
		}
	}
	if al, ok := a.([]any); ok {
		if bl, ok := b.([]any); ok && len(al) == len(bl) {
			for i := range al {
				diffValue(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
			}
			return
		}
	}
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	if !bytes.Equal(ra, rb) {
		*out = append(*out, fmt.Sprintf("%s changed %s -> %s", path, brief(a), brief(b)))
	}
}

// decodeNumbers decodes JSON keeping numbers exact (json.Number).
func decodeNumbers(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// brief renders a JSON value compactly for a reason line.
func brief(v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(raw)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}
