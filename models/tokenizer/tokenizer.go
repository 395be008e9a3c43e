// Package tokenizer implements the byte-level BPE tokenizer of CLIP, the text
// encoder every Stable Diffusion model uses, from a model folder's
// vocab.json and merges.txt.
//
// It follows the tokenizer that diffusers loads (transformers'
// CLIPTokenizer): whitespace is cleaned up and the text lower-cased, the
// text is split with CLIP's pattern, each piece is mapped byte by byte onto
// printable runes, "</w>" marks the end of a word, and BPE merges are applied
// lowest rank first. Encode wraps the ids in the start and end tokens,
// truncates to the model's context (77 tokens) and pads with the configured
// pad token, as diffusers does with padding="max_length" and truncation.
package tokenizer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxLength is CLIP's context length: 77 tokens including the start
// and end tokens.
const DefaultMaxLength = 77

// maxMerges is the number of merge rules CLIP uses: the vocabulary holds 256
// byte tokens, 256 byte tokens with "</w>", one token per merge, and the two
// special tokens (49408 in all). transformers reads no more than this many
// lines of merges.txt, and neither does this package.
const maxMerges = 49152 - 256 - 2

// Config names the special tokens and the context length. Zero values take
// CLIP's: "<|startoftext|>", "<|endoftext|>", pad with the end token, 77.
type Config struct {
	// BOS and EOS are the start and end tokens.
	BOS, EOS string
	// Unk replaces a piece whose BPE result is not in the vocabulary.
	Unk string
	// Pad fills Encode's result up to MaxLength. SD 1.x pads with the end
	// token; SD 2.x and SDXL's second tokenizer pad with "!" (id 0).
	Pad string
	// MaxLength is the padded length, start and end tokens included.
	MaxLength int
}

func (c Config) withDefaults() Config {
	if c.BOS == "" {
		c.BOS = "<|startoftext|>"
	}
	if c.EOS == "" {
		c.EOS = "<|endoftext|>"
	}
	if c.Unk == "" {
		c.Unk = c.EOS
	}
	if c.Pad == "" {
		c.Pad = c.EOS
	}
	if c.MaxLength <= 0 {
		c.MaxLength = DefaultMaxLength
	}
	return c
}

// Tokenizer turns prompts into CLIP token ids. It is safe for concurrent
// use: its BPE cache is guarded by a mutex.
type Tokenizer struct {
	vocab  map[string]int64
	ranks  map[pair]int
	byteTo [256]rune

	bos, eos, unk, pad int64
	maxLen             int

	mu    sync.Mutex
	cache map[string][]int64
}

type pair struct{ a, b string }

// maxCache bounds the BPE cache so a long-running process (watch mode) fed
// arbitrary prompts cannot grow it without limit.
const maxCache = 1 << 16

// Load reads a tokenizer folder in the diffusers layout: vocab.json,
// merges.txt and the optional tokenizer_config.json and
// special_tokens_map.json, which name the special tokens, the pad token and
// model_max_length.
func Load(dir string) (*Tokenizer, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	vp := filepath.Join(dir, "vocab.json")
	vf, err := os.Open(vp)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (a tokenizer folder needs vocab.json and merges.txt)", err)
	}
	defer vf.Close()
	mp := filepath.Join(dir, "merges.txt")
	mf, err := os.Open(mp)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (a tokenizer folder needs vocab.json and merges.txt)", err)
	}
	defer mf.Close()
	t, err := New(vf, mf, cfg)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", dir, err)
	}
	return t, nil
}

// readConfig merges tokenizer_config.json and special_tokens_map.json (the
// latter wins, as in transformers) into a Config. Missing files are fine.
func readConfig(dir string) (Config, error) {
	var cfg Config
	for _, name := range []string{"tokenizer_config.json", "special_tokens_map.json"} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return cfg, fmt.Errorf("tokenizer: %w", err)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(data, &raw); err != nil {
			return cfg, fmt.Errorf("tokenizer: decode %s: %w (the file must be a JSON object)", p, err)
		}
		for key, dst := range map[string]*string{
			"bos_token": &cfg.BOS, "eos_token": &cfg.EOS,
			"unk_token": &cfg.Unk, "pad_token": &cfg.Pad,
		} {
			if v, ok := raw[key]; ok {
				s, err := tokenString(v)
				if err != nil {
					return cfg, fmt.Errorf("tokenizer: decode %s: field %s: %w", p, key, err)
				}
				if s != "" {
					*dst = s
				}
			}
		}
		if v, ok := raw["model_max_length"]; ok {
			var n float64
			// Some configs carry a huge sentinel (1e30) meaning "no
			// limit"; CLIP's context is what matters then.
			if err := json.Unmarshal(v, &n); err == nil && n >= 2 && n <= 1<<20 {
				cfg.MaxLength = int(n)
			}
		}
	}
	return cfg, nil
}

// tokenString decodes a special token written either as a plain string or
// as transformers' AddedToken object ({"content": "..."}); null is "".
func tokenString(v json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(v, &obj); err != nil {
		return "", fmt.Errorf("want a string or an object with \"content\"")
	}
	if obj.Content == nil {
		return "", nil
	}
	return *obj.Content, nil
}

// New builds a tokenizer from the contents of vocab.json (a JSON object from
// token to id) and merges.txt (one "left right" merge per line, most
// frequent first, after an optional "#version" header).
func New(vocab, merges io.Reader, cfg Config) (*Tokenizer, error) {
	cfg = cfg.withDefaults()
	t := &Tokenizer{
		vocab:  make(map[string]int64),
		ranks:  make(map[pair]int),
		maxLen: cfg.MaxLength,
		cache:  make(map[string][]int64),
	}
	if err := json.NewDecoder(vocab).Decode(&t.vocab); err != nil {
		return nil, fmt.Errorf("decode vocab.json: %w (want a JSON object mapping tokens to ids)", err)
	}
	sc := bufio.NewScanner(merges)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if line == 1 && strings.HasPrefix(s, "#version") {
			continue
		}
		if strings.TrimSpace(s) == "" {
			continue
		}
		if len(t.ranks) >= maxMerges {
			break
		}
		a, b, ok := strings.Cut(s, " ")
		if !ok || a == "" || b == "" || strings.Contains(b, " ") {
			return nil, fmt.Errorf("merges.txt:%d: want two tokens separated by one space, got %q", line, s)
		}
		p := pair{a, b}
		if _, dup := t.ranks[p]; !dup {
			t.ranks[p] = len(t.ranks)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read merges.txt: %w", err)
	}
	var err error
	lookup := func(what, tok string) int64 {
		id, ok := t.vocab[tok]
		if !ok && err == nil {
			err = fmt.Errorf("%s %q is not in vocab.json (check tokenizer_config.json and special_tokens_map.json)", what, tok)
		}
		return id
	}
	t.bos = lookup("start token", cfg.BOS)
	t.eos = lookup("end token", cfg.EOS)
	t.unk = lookup("unknown token", cfg.Unk)
	t.pad = lookup("pad token", cfg.Pad)
	if err != nil {
		return nil, err
	}
	t.byteTo = byteRunes()
	return t, nil
}

// byteRunes is CLIP's (and GPT-2's) reversible byte-to-rune table: bytes
// that are printable Latin-1 map to themselves, the others to runes from
// U+0100 upward, so every byte string becomes a string with no whitespace or
// control characters.
func byteRunes() [256]rune {
	var m [256]rune
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n := 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			m[b] = rune(b)
		} else {
			m[b] = rune(256 + n)
			n++
		}
	}
	return m
}

// BOS returns the start token's id.
func (t *Tokenizer) BOS() int64 { return t.bos }

// EOS returns the end token's id.
func (t *Tokenizer) EOS() int64 { return t.eos }

// Pad returns the pad token's id.
func (t *Tokenizer) Pad() int64 { return t.pad }

// MaxLength returns the padded length Encode produces.
func (t *Tokenizer) MaxLength() int { return t.maxLen }

// Encode returns exactly MaxLength ids: the start token, the prompt's
// tokens, the end token, then pad tokens. A prompt longer than the context
// is cut so that the end token still fits, and truncated reports it so the
// caller can warn.
func (t *Tokenizer) Encode(text string) (ids []int64, truncated bool) {
	ids = make([]int64, 0, t.maxLen)
	ids = append(ids, t.bos)
	room := t.maxLen - 2
	if room < 0 {
		room = 0
	}
	t.each(text, func(id int64) bool {
		if len(ids)-1 >= room {
			truncated = true
			return false
		}
		ids = append(ids, id)
		return true
	})
	ids = append(ids, t.eos)
	for len(ids) < t.maxLen {
		ids = append(ids, t.pad)
	}
	return ids[:t.maxLen], truncated
}

// Tokens returns the start token, every token of the prompt and the end
// token, with no truncation or padding; its length tells how much of the
// context a prompt uses.
func (t *Tokenizer) Tokens(text string) []int64 {
	ids := []int64{t.bos}
	t.each(text, func(id int64) bool {
		ids = append(ids, id)
		return true
	})
	return append(ids, t.eos)
}

// each calls yield with the prompt's token ids in order until yield returns
// false.
func (t *Tokenizer) each(text string, yield func(int64) bool) {
	text = clean(text)
	var word []byte
	for rest := text; rest != ""; {
		piece, n := nextPiece(rest)
		rest = rest[n:]
		if piece == "" {
			continue
		}
		word = word[:0]
		for i := 0; i < len(piece); i++ {
			word = utf8.AppendRune(word, t.byteTo[piece[i]])
		}
		for _, id := range t.bpe(string(word)) {
			if !yield(id) {
				return
			}
		}
	}
}

// clean trims the text, collapses runs of whitespace to one space and
// lower-cases it, as CLIP's whitespace_clean(...).lower() does.
func clean(text string) string {
	var b strings.Builder
	b.Grow(len(text))
	space := false
	for _, r := range text {
		if isSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// isSpace is \s of the regex module CLIP's tokenizer uses: the Unicode
// White_Space property, which is what unicode.IsSpace tests. (Python's
// built-in re would also match U+001C..U+001F; CLIP's \s does not.)
func isSpace(r rune) bool {
	return unicode.IsSpace(r)
}

var specials = []string{"<|startoftext|>", "<|endoftext|>"}

var contractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// nextPiece scans one piece of CLIP's split pattern at the start of s
//
//	<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// trying the alternatives in order as the regular expression does. It
// returns the piece (empty when s starts with whitespace, which the pattern
// skips) and how many bytes to advance.
func nextPiece(s string) (string, int) {
	for _, sp := range specials {
		if strings.HasPrefix(s, sp) {
			return sp, len(sp)
		}
	}
	for _, c := range contractions {
		if strings.HasPrefix(s, c) {
			return c, len(c)
		}
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case isSpace(r):
		return "", size
	case unicode.IsLetter(r):
		n := size
		for n < len(s) {
			r, sz := utf8.DecodeRuneInString(s[n:])
			if !unicode.IsLetter(r) {
				break
			}
			n += sz
		}
		return s[:n], n
	case unicode.IsNumber(r):
		return s[:size], size
	default:
		n := size
		for n < len(s) {
			r, sz := utf8.DecodeRuneInString(s[n:])
			if isSpace(r) || unicode.IsLetter(r) || unicode.IsNumber(r) {
				break
			}
			n += sz
		}
		return s[:n], n
	}
}

// bpe returns the ids of one byte-mapped piece, from the cache when it has
// been seen before.
func (t *Tokenizer) bpe(word string) []int64 {
	t.mu.Lock()
	ids, ok := t.cache[word]
	t.mu.Unlock()
	if ok {
		return ids
	}
	ids = t.merge(word)
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		clear(t.cache)
	}
	t.cache[word] = ids
	t.mu.Unlock()
	return ids
}

// merge runs BPE on one piece: start from its runes, the last one carrying
// "</w>", and repeatedly merge every occurrence of the adjacent pair with
// the lowest merge rank until no pair has a rank.
func (t *Tokenizer) merge(word string) []int64 {
	if word == specials[0] || word == specials[1] {
		if id, ok := t.vocab[word]; ok {
			return []int64{id}
		}
	}
	parts := make([]string, 0, utf8.RuneCountInString(word))
	for i, r := range word {
		parts = append(parts, word[i:i+utf8.RuneLen(r)])
	}
	parts[len(parts)-1] += "</w>"
	for len(parts) > 1 {
		best, bestRank := pair{}, -1
		for i := 0; i+1 < len(parts); i++ {
			if r, ok := t.ranks[pair{parts[i], parts[i+1]}]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = pair{parts[i], parts[i+1]}, r
			}
		}
		if bestRank < 0 {
			break
		}
		out := parts[:0:0]
		for i := 0; i < len(parts); {
			if i+1 < len(parts) && parts[i] == best.a && parts[i+1] == best.b {
				out = append(out, best.a+best.b)
				i += 2
				continue
			}
			out = append(out, parts[i])
			i++
		}
		parts = out
	}
	ids := make([]int64, len(parts))
	for i, p := range parts {
		id, ok := t.vocab[p]
		if !ok {
			id = t.unk
		}
		ids[i] = id
	}
	return ids
}
