package imageops

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Recipe is everything needed to reproduce a generated image. [EncodePNG]
// stores it in the PNG as text chunks and [ReadRecipe] reads it back, so
// any output file says how it was made (`kiln inspect recipe FILE`).
//
// Each field is an iTXt chunk (UTF-8, uncompressed) keyed "kiln:<name>":
// kiln:prompt, kiln:negative_prompt, kiln:seed, kiln:model (the model
// fingerprint), kiln:scheduler, kiln:steps, kiln:guidance, kiln:version,
// then one kiln:<key> per Extra entry in key order. All standard fields
// are always written, even when zero, so a recipe's shape never depends on
// its values. For interoperability a single "parameters" chunk in the
// AUTOMATIC1111 layout follows (prompt, "Negative prompt: …", then
// "Steps: …, Sampler: …, CFG scale: …, Seed: …, Size: WxH, Model hash: …,
// Version: kiln …"), which other Stable Diffusion tools and image sites
// display; it is tEXt when Latin-1 can hold it and iTXt otherwise.
type Recipe struct {
	Prompt         string
	NegativePrompt string
	Seed           int64
	// Model is the fingerprint of the model (or model set) used.
	Model     string
	Scheduler string
	Steps     int
	Guidance  float64
	// Version is kiln's version.
	Version string
	// Extra holds further parameters (asset kind, strength, tile mode, …)
	// stored as "kiln:<key>". Keys are 1-74 characters of letters, digits,
	// '_', '-' and '.'.
	Extra map[string]string
}

// recipePrefix starts every kiln text chunk keyword.
const recipePrefix = "kiln:"

// ErrNoRecipe is returned by [ReadRecipe] for a PNG with neither kiln
// recipe chunks nor an AUTOMATIC1111 "parameters" chunk.
var ErrNoRecipe = errors.New("no recipe in this PNG (no kiln:* or parameters text chunks)")

// Fields returns the recipe as ordered (name, value) pairs, standard
// fields first and then Extra in key order: the chunk keywords without
// the "kiln:" prefix, and what `kiln inspect recipe` prints.
func (r Recipe) Fields() [][2]string {
	f := [][2]string{
		{"prompt", r.Prompt},
		{"negative_prompt", r.NegativePrompt},
		{"seed", strconv.FormatInt(r.Seed, 10)},
		{"model", r.Model},
		{"scheduler", r.Scheduler},
		{"steps", strconv.Itoa(r.Steps)},
		{"guidance", strconv.FormatFloat(r.Guidance, 'g', -1, 64)},
		{"version", r.Version},
	}
	keys := make([]string, 0, len(r.Extra))
	for k := range r.Extra {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		f = append(f, [2]string{k, r.Extra[k]})
	}
	return f
}

// standardField reports whether name is one of Recipe's own fields.
func standardField(name string) bool {
	switch name {
	case "prompt", "negative_prompt", "seed", "model", "scheduler", "steps", "guidance", "version":
		return true
	}
	return false
}

// validate checks what PNG text chunks can carry.
func (r Recipe) validate() error {
	for k := range r.Extra {
		if k == "" || len(k) > 79-len(recipePrefix) || strings.IndexFunc(k, func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.')
		}) >= 0 {
			return fmt.Errorf("recipe key %q: want 1-74 letters, digits, '_', '-' or '.'", k)
		}
		if standardField(k) {
			return fmt.Errorf("recipe key %q: set the Recipe field instead of Extra", k)
		}
	}
	for _, f := range r.Fields() {
		if !utf8.ValidString(f[1]) {
			return fmt.Errorf("recipe %s: not valid UTF-8", f[0])
		}
	}
	return nil
}

// Parameters renders the recipe in the AUTOMATIC1111 "parameters" layout
// for an image of size w×h.
func (r Recipe) Parameters(w, h int) string {
	var b strings.Builder
	b.WriteString(r.Prompt)
	if r.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: ")
		b.WriteString(r.NegativePrompt)
	}
	b.WriteString("\n")
	settings := [][2]string{
		{"Steps", strconv.Itoa(r.Steps)},
		{"Sampler", r.Scheduler},
		{"CFG scale", strconv.FormatFloat(r.Guidance, 'g', -1, 64)},
		{"Seed", strconv.FormatInt(r.Seed, 10)},
		{"Size", fmt.Sprintf("%dx%d", w, h)},
		{"Model hash", r.Model},
		{"Version", "kiln " + r.Version},
	}
	for i, s := range settings {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s[0])
		b.WriteString(": ")
		b.WriteString(a1111Quote(s[1]))
	}
	return b.String()
}

// a1111Quote quotes a settings value the way AUTOMATIC1111 does: as a JSON
// string when it contains a comma, colon or newline, as is otherwise.
func a1111Quote(s string) string {
	if !strings.ContainsAny(s, ",:\n") {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// EncodePNG writes img as a PNG carrying rec as text chunks (see
// [Recipe]); rec nil writes a plain PNG. The chunks are inserted right
// after IHDR into image/png's output, so readers meet them before the
// pixels. The same image and recipe always give the same bytes. The PNG
// is streamed to w as it is compressed, never held whole in memory; when
// an error is returned, w may have received part of it.
func EncodePNG(w io.Writer, img image.Image, rec *Recipe) error {
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	out := &recipeWriter{w: w}
	if rec != nil {
		if err := rec.validate(); err != nil {
			return fmt.Errorf("encode png: %w", err)
		}
		var chunks bytes.Buffer
		for _, f := range rec.Fields() {
			writeChunk(&chunks, "iTXt", itxt(recipePrefix+f[0], f[1]))
		}
		b := img.Bounds()
		params := rec.Parameters(b.Dx(), b.Dy())
		if latin, ok := toLatin1(params); ok {
			writeChunk(&chunks, "tEXt", append([]byte("parameters\x00"), latin...))
		} else {
			writeChunk(&chunks, "iTXt", itxt("parameters", params))
		}
		out.chunks = chunks.Bytes()
		out.head = make([]byte, 0, afterIHDR)
	}
	err := enc.Encode(out, img)
	switch {
	case out.werr != nil:
		return fmt.Errorf("write png: %w", out.werr)
	case err != nil:
		return fmt.Errorf("encode png: %w", err)
	case rec != nil && out.head != nil:
		return fmt.Errorf("encode png: unexpected encoder output (no IHDR first)")
	}
	return nil
}

// afterIHDR is where a PNG's IHDR chunk ends: signature (8), then length
// (4), type (4), 13 data bytes and CRC (4).
const afterIHDR = 8 + 4 + 4 + 13 + 4

// recipeWriter passes image/png's output on to w, inserting chunks after
// the IHDR chunk: it holds the first afterIHDR bytes (head, nil once they
// are written, or when there are no chunks to insert) until it has them
// all.
type recipeWriter struct {
	w      io.Writer
	head   []byte
	chunks []byte
	werr   error // the first error writing to w
}

var errNoIHDR = errors.New("unexpected encoder output (no IHDR first)")

func (r *recipeWriter) Write(p []byte) (int, error) {
	n := len(p)
	if r.head != nil {
		take := min(afterIHDR-len(r.head), len(p))
		r.head = append(r.head, p[:take]...)
		p = p[take:]
		if len(r.head) < afterIHDR {
			return n, nil
		}
		if string(r.head[12:16]) != "IHDR" || binary.BigEndian.Uint32(r.head[8:12]) != 13 {
			return 0, errNoIHDR
		}
		head := r.head
		r.head = nil
		if err := r.write(head); err != nil {
			return 0, err
		}
		if err := r.write(r.chunks); err != nil {
			return 0, err
		}
	}
	if len(p) > 0 {
		if err := r.write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (r *recipeWriter) write(p []byte) error {
	if r.werr != nil {
		return r.werr
	}
	if _, err := r.w.Write(p); err != nil {
		r.werr = err
		return err
	}
	return nil
}

// itxt builds an uncompressed iTXt payload: keyword, NUL, compression flag
// 0, method 0, empty language tag and translated keyword (each NUL
// terminated), then the UTF-8 text.
func itxt(keyword, text string) []byte {
	b := make([]byte, 0, len(keyword)+5+len(text))
	b = append(b, keyword...)
	b = append(b, 0, 0, 0, 0, 0)
	return append(b, text...)
}

// toLatin1 converts s to ISO 8859-1 if every rune fits.
func toLatin1(s string) ([]byte, bool) {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == 0 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

// writeChunk appends one PNG chunk: length, type, data, CRC-32 of type
// and data.
func writeChunk(w *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	w.Write(n[:])
	w.WriteString(typ)
	w.Write(data)
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	w.Write(n[:])
}

// maxTextChunk bounds the text chunks ReadText accepts, compressed or not,
// so a hostile file cannot make it allocate without limit.
const maxTextChunk = 16 << 20

// ReadText returns the text chunks (tEXt, zTXt, iTXt) of a PNG stream as
// keyword → text; when a keyword repeats, the first wins. It reads up to
// IEND, checking the signature and the CRC of every text chunk, and
// errors say at which byte offset the stream is wrong.
func ReadText(r io.Reader) (map[string]string, error) {
	br := bufio.NewReader(r)
	var sig [8]byte
	if _, err := io.ReadFull(br, sig[:]); err != nil || string(sig[:]) != "\x89PNG\r\n\x1a\n" {
		return nil, fmt.Errorf("not a PNG file (bad signature)")
	}
	out := make(map[string]string)
	off := int64(8)
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("png truncated at byte %d before IEND: %w", off, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		typ := string(hdr[4:8])
		if n > 1<<31-1 {
			return nil, fmt.Errorf("png chunk %q at byte %d: length %d is too large", typ, off, n)
		}
		isText := typ == "tEXt" || typ == "zTXt" || typ == "iTXt"
		if !isText {
			if _, err := io.CopyN(io.Discard, br, n+4); err != nil {
				return nil, fmt.Errorf("png chunk %q at byte %d: truncated: %w", typ, off, err)
			}
			if typ == "IEND" {
				return out, nil
			}
			off += 12 + n
			continue
		}
		if n > maxTextChunk {
			return nil, fmt.Errorf("png %s chunk at byte %d: %d bytes is over the %d byte limit", typ, off, n, maxTextChunk)
		}
		data := make([]byte, n+4)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, fmt.Errorf("png %s chunk at byte %d: truncated: %w", typ, off, err)
		}
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:8])
		crc.Write(data[:n])
		if crc.Sum32() != binary.BigEndian.Uint32(data[n:]) {
			return nil, fmt.Errorf("png %s chunk at byte %d: CRC mismatch (file is corrupt)", typ, off)
		}
		key, text, err := parseTextChunk(typ, data[:n])
		if err != nil {
			return nil, fmt.Errorf("png %s chunk at byte %d: %w", typ, off, err)
		}
		if _, dup := out[key]; !dup {
			out[key] = text
		}
		off += 12 + n
	}
}

// parseTextChunk decodes one tEXt, zTXt or iTXt payload.
func parseTextChunk(typ string, data []byte) (key, text string, err error) {
	k, rest, ok := bytes.Cut(data, []byte{0})
	if !ok || len(k) == 0 || len(k) > 79 {
		return "", "", fmt.Errorf("bad keyword")
	}
	key = latin1ToString(k)
	switch typ {
	case "tEXt":
		return key, latin1ToString(rest), nil
	case "zTXt":
		if len(rest) < 1 || rest[0] != 0 {
			return "", "", fmt.Errorf("keyword %q: unknown compression method", key)
		}
		t, err := inflate(rest[1:])
		if err != nil {
			return "", "", fmt.Errorf("keyword %q: %w", key, err)
		}
		return key, latin1ToString(t), nil
	}
	// iTXt: compression flag, method, language tag NUL, translated keyword NUL, text.
	if len(rest) < 2 {
		return "", "", fmt.Errorf("keyword %q: truncated header", key)
	}
	compressed, method := rest[0], rest[1]
	rest = rest[2:]
	for i := 0; i < 2; i++ { // language tag, translated keyword
		_, after, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return "", "", fmt.Errorf("keyword %q: truncated header", key)
		}
		rest = after
	}
	if compressed == 1 {
		if method != 0 {
			return "", "", fmt.Errorf("keyword %q: unknown compression method", key)
		}
		if rest, err = inflate(rest); err != nil {
			return "", "", fmt.Errorf("keyword %q: %w", key, err)
		}
	}
	if !utf8.Valid(rest) {
		return "", "", fmt.Errorf("keyword %q: text is not UTF-8", key)
	}
	return key, string(rest), nil
}

func inflate(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxTextChunk+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out) > maxTextChunk {
		return nil, fmt.Errorf("decompressed text is over the %d byte limit", maxTextChunk)
	}
	return out, nil
}

func latin1ToString(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// ReadRecipe reads a PNG's recipe: from its kiln:* chunks when present,
// otherwise from an AUTOMATIC1111 "parameters" chunk (so `kiln inspect
// recipe` also explains images made by other tools; their settings that
// have no Recipe field land in Extra under their own names, e.g. "Size").
// It returns an error wrapping [ErrNoRecipe] when there is neither.
func ReadRecipe(r io.Reader) (Recipe, error) {
	text, err := ReadText(r)
	if err != nil {
		return Recipe{}, fmt.Errorf("read recipe: %w", err)
	}
	var rec Recipe
	found := false
	for k, v := range text {
		name, ok := strings.CutPrefix(k, recipePrefix)
		if !ok {
			continue
		}
		found = true
		if err := rec.set(name, v); err != nil {
			return Recipe{}, fmt.Errorf("read recipe: %w", err)
		}
	}
	if found {
		return rec, nil
	}
	if p, ok := text["parameters"]; ok {
		rec, err := ParseParameters(p)
		if err != nil {
			return Recipe{}, fmt.Errorf("read recipe: %w", err)
		}
		return rec, nil
	}
	return Recipe{}, fmt.Errorf("read recipe: %w", ErrNoRecipe)
}

// set stores one kiln:<name> value.
func (r *Recipe) set(name, v string) error {
	var err error
	switch name {
	case "prompt":
		r.Prompt = v
	case "negative_prompt":
		r.NegativePrompt = v
	case "seed":
		if r.Seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("kiln:seed %q: not an integer", v)
		}
	case "model":
		r.Model = v
	case "scheduler":
		r.Scheduler = v
	case "steps":
		if r.Steps, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("kiln:steps %q: not an integer", v)
		}
	case "guidance":
		if r.Guidance, err = strconv.ParseFloat(v, 64); err != nil {
			return fmt.Errorf("kiln:guidance %q: not a number", v)
		}
	case "version":
		r.Version = v
	default:
		if r.Extra == nil {
			r.Extra = make(map[string]string)
		}
		r.Extra[name] = v
	}
	return nil
}

// ParseParameters parses AUTOMATIC1111 "parameters" text: prompt lines, an
// optional "Negative prompt: " section, and a last line of "Key: value"
// settings separated by ", " (values with commas or colons JSON-quoted).
// Steps, Sampler, CFG scale, Seed, Model hash and Version fill the Recipe
// fields (a "kiln " prefix on Version is dropped); other settings go to
// Extra under their own names.
func ParseParameters(s string) (Recipe, error) {
	var rec Recipe
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	settings := ""
	if last := lines[len(lines)-1]; strings.HasPrefix(last, "Steps: ") {
		settings = last
		lines = lines[:len(lines)-1]
	}
	var prompt, neg []string
	inNeg := false
	for _, l := range lines {
		if rest, ok := strings.CutPrefix(l, "Negative prompt: "); ok && !inNeg {
			inNeg = true
			neg = append(neg, rest)
			continue
		}
		if inNeg {
			neg = append(neg, l)
		} else {
			prompt = append(prompt, l)
		}
	}
	rec.Prompt = strings.Join(prompt, "\n")
	rec.NegativePrompt = strings.Join(neg, "\n")
	kv, err := splitSettings(settings)
	if err != nil {
		return Recipe{}, fmt.Errorf("parameters: %w", err)
	}
	for _, p := range kv {
		k, v := p[0], p[1]
		switch k {
		case "Steps":
			if rec.Steps, err = strconv.Atoi(v); err != nil {
				return Recipe{}, fmt.Errorf("parameters: Steps %q: not an integer", v)
			}
		case "Sampler":
			rec.Scheduler = v
		case "CFG scale":
			if rec.Guidance, err = strconv.ParseFloat(v, 64); err != nil {
				return Recipe{}, fmt.Errorf("parameters: CFG scale %q: not a number", v)
			}
		case "Seed":
			if rec.Seed, err = strconv.ParseInt(v, 10, 64); err != nil {
				return Recipe{}, fmt.Errorf("parameters: Seed %q: not an integer", v)
			}
		case "Model hash":
			rec.Model = v
		case "Version":
			rec.Version = strings.TrimPrefix(v, "kiln ")
		default:
			if rec.Extra == nil {
				rec.Extra = make(map[string]string)
			}
			rec.Extra[k] = v
		}
	}
	return rec, nil
}

// splitSettings splits "K: v, K2: "quoted, value", …" into pairs.
func splitSettings(s string) ([][2]string, error) {
	var out [][2]string
	for s != "" {
		k, rest, ok := strings.Cut(s, ": ")
		if !ok {
			return nil, fmt.Errorf("settings %q: want \"Key: value\"", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			// JSON string: find its end honouring escapes.
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				return nil, fmt.Errorf("setting %s: unterminated quoted value", k)
			}
			if err := json.Unmarshal([]byte(rest[:end+1]), &v); err != nil {
				return nil, fmt.Errorf("setting %s: bad quoted value: %w", k, err)
			}
			rest = strings.TrimPrefix(rest[end+1:], ",")
		} else {
			v, rest, _ = strings.Cut(rest, ",")
		}
		out = append(out, [2]string{strings.TrimSpace(k), v})
		s = strings.TrimLeft(rest, " ")
	}
	return out, nil
}
