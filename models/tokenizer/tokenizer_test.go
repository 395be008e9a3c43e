package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clipDir is the released CLIP vocabulary, kept beside the repository
// (shared/data/clip next to the repo root).
var clipDir = filepath.Join("..", "..", "..", "shared", "data", "clip")

func loadCLIP(t testing.TB) *Tokenizer {
	t.Helper()
	if _, err := os.Stat(filepath.Join(clipDir, "vocab.json")); err != nil {
		t.Skipf("released CLIP vocabulary not found at %s (%v); skipping tests that need it", clipDir, err)
	}
	tok, err := Load(clipDir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestReleasedVocabulary(t *testing.T) {
	tok := loadCLIP(t)
	tests := []struct {
		text string
		want []int64
	}{
		{"a photo of a cat", []int64{49406, 320, 1125, 539, 320, 2368, 49407}},
		{"Hello, world!", []int64{49406, 3306, 267, 1002, 256, 49407}},
		{"", []int64{49406, 49407}},
		{"Hi there", []int64{49406, 1883, 997, 49407}},
		{"a painting of a cat", []int64{49406, 320, 3086, 539, 320, 2368, 49407}},
	}
	for _, tt := range tests {
		if got := tok.Tokens(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Tokens(%q) = %v, want %v", tt.text, got, tt.want)
		}
		ids, truncated := tok.Encode(tt.text)
		if truncated {
			t.Errorf("Encode(%q) reports truncation", tt.text)
		}
		if len(ids) != 77 {
			t.Fatalf("Encode(%q) gave %d ids, want 77", tt.text, len(ids))
		}
		if !slices.Equal(ids[:len(tt.want)], tt.want) {
			t.Errorf("Encode(%q) starts %v, want %v", tt.text, ids[:len(tt.want)], tt.want)
		}
		for i, id := range ids[len(tt.want):] {
			if id != 49407 {
				t.Fatalf("Encode(%q)[%d] = %d, want EOS padding 49407", tt.text, len(tt.want)+i, id)
			}
		}
	}
}

// TestReference compares tricky prompts (whitespace, contractions, digits,
// non-Latin scripts, emoji, special tokens in the text) against ids that
// testdata/gen_tokens.py computed with CLIP's regular expression.
func TestReference(t *testing.T) {
	tok := loadCLIP(t)
	data, err := os.ReadFile(filepath.Join("testdata", "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int64 `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) < 10 {
		t.Fatalf("only %d reference cases", len(ref.Cases))
	}
	for _, c := range ref.Cases {
		if got := tok.Tokens(c.Text); !slices.Equal(got, c.IDs) {
			t.Errorf("Tokens(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
}

func TestTruncation(t *testing.T) {
	tok := loadCLIP(t)
	long := strings.Repeat("cat ", 100) // "cat" is one token
	all := tok.Tokens(long)
	if len(all) != 102 {
		t.Fatalf("Tokens gave %d ids, want 102", len(all))
	}
	ids, truncated := tok.Encode(long)
	if !truncated {
		t.Error("Encode did not report truncation of a 100-token prompt")
	}
	if len(ids) != 77 || ids[0] != 49406 || ids[76] != 49407 {
		t.Fatalf("truncated ids: len %d, first %d, last %d; want 77 ids from 49406 to 49407", len(ids), ids[0], ids[76])
	}
	if !slices.Equal(ids[:76], all[:76]) {
		t.Error("truncated ids are not a prefix of the full token list")
	}
	// Exactly 75 prompt tokens fit without truncation.
	ids, truncated = tok.Encode(strings.Repeat("cat ", 75))
	if truncated || ids[76] != 49407 || ids[75] == 49407 {
		t.Errorf("75 tokens: truncated=%v ids[75:]=%v, want no truncation", truncated, ids[75:])
	}
	if _, truncated = tok.Encode(strings.Repeat("cat ", 76)); !truncated {
		t.Error("76 tokens: truncation not reported")
	}
}

func copyVocab(t *testing.T, dst string) {
	t.Helper()
	for _, name := range []string{"vocab.json", "merges.txt"} {
		data, err := os.ReadFile(filepath.Join(clipDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPadToken(t *testing.T) {
	loadCLIP(t) // skip without the vocabulary
	tests := []struct {
		name    string
		files   map[string]string
		wantPad int64
		wantLen int
	}{
		{"no config: pad with end token", nil, 49407, 77},
		{"SD 2.x tokenizer_config pads with !", map[string]string{
			"tokenizer_config.json": `{"bos_token": {"content": "<|startoftext|>", "lstrip": false}, "eos_token": "<|endoftext|>", "pad_token": "!", "model_max_length": 77}`,
		}, 0, 77},
		{"special_tokens_map wins", map[string]string{
			"tokenizer_config.json":   `{"pad_token": "<|endoftext|>"}`,
			"special_tokens_map.json": `{"pad_token": {"content": "!", "single_word": false}}`,
		}, 0, 77},
		{"huge model_max_length ignored", map[string]string{
			"tokenizer_config.json": `{"model_max_length": 1e30}`,
		}, 49407, 77},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyVocab(t, dir)
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ids, _ := tok.Encode("a photo of a cat")
			if len(ids) != tt.wantLen {
				t.Fatalf("len %d, want %d", len(ids), tt.wantLen)
			}
			want := []int64{49406, 320, 1125, 539, 320, 2368, 49407}
			if !slices.Equal(ids[:7], want) {
				t.Errorf("ids %v, want prefix %v", ids[:7], want)
			}
			for _, id := range ids[7:] {
				if id != tt.wantPad {
					t.Fatalf("pad id %d, want %d (ids %v)", id, tt.wantPad, ids)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("Load of an empty folder: %v, want an error naming vocab.json", err)
	}
	tests := []struct {
		name, vocab, merges, want string
	}{
		{"bad vocab", `[1,2]`, "", "decode vocab.json"},
		{"bad merge line", `{"a":0}`, "#version: 0.2\na b c\n", "merges.txt:2"},
		{"missing special", `{"a":0}`, "a a\n", `start token "<|startoftext|>" is not in vocab.json`},
	}
	for _, tt := range tests {
		_, err := New(strings.NewReader(tt.vocab), strings.NewReader(tt.merges), Config{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "tokenizer_config.json") {
		t.Errorf("Load with broken config: %v, want an error naming tokenizer_config.json", err)
	}
}

// TestSmallVocabulary exercises BPE on a hand-made vocabulary, so the merge
// order is checked without the released files.
func TestSmallVocabulary(t *testing.T) {
	vocab := `{"<s>":0,"</s>":1,"l":2,"o":3,"w</w>":4,"lo":5,"low</w>":6,"e":7,"r</w>":8,"er</w>":9,"lower</w>":10,"w":11}`
	merges := "#version: 0.2\nl o\nlo w</w>\ne r</w>\nlo w\nlow er</w>\n"
	tok, err := New(strings.NewReader(vocab), strings.NewReader(merges), Config{BOS: "<s>", EOS: "</s>", MaxLength: 6})
	if err != nil {
		t.Fatal(err)
	}
	// "lower" merges l+o (rank 0), e+r</w> (2), lo+w (3), low+er</w> (4);
	// "x</w>" is not in the vocabulary and becomes the unknown token, here
	// the end token.
	if got := tok.Tokens("low LOWER x"); !slices.Equal(got, []int64{0, 6, 10, 1, 1}) {
		t.Errorf("Tokens = %v, want [0 6 10 1 1]", got)
	}
	got, truncated := tok.Encode("low LOWER x")
	if want := []int64{0, 6, 10, 1, 1, 1}; truncated || !slices.Equal(got, want) {
		t.Errorf("Encode = %v truncated=%v, want %v", got, truncated, want)
	}
	got, truncated = tok.Encode("low low low low lower")
	if want := []int64{0, 6, 6, 6, 6, 1}; !truncated || !slices.Equal(got, want) {
		t.Errorf("Encode = %v truncated=%v, want %v truncated", got, truncated, want)
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"a photo of a cat", "", "<|endoftext|>", "don't", "😀\x00\xff", strings.Repeat("x ", 200)} {
		f.Add(s)
	}
	tok, err := New(strings.NewReader(`{"<|startoftext|>":0,"<|endoftext|>":1,"a</w>":2,"a":3}`),
		strings.NewReader("a </w>\n"), Config{})
	if err != nil {
		f.Fatal(err)
	}
	var clip *Tokenizer
	if _, err := os.Stat(filepath.Join(clipDir, "vocab.json")); err == nil {
		if clip, err = Load(clipDir); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tk := range []*Tokenizer{tok, clip} {
			if tk == nil {
				continue
			}
			ids, truncated := tk.Encode(s)
			if len(ids) != tk.MaxLength() || ids[0] != tk.BOS() {
				t.Fatalf("Encode(%q) = %v", s, ids)
			}
			all := tk.Tokens(s)
			if truncated != (len(all) > tk.MaxLength()) {
				t.Fatalf("Encode(%q) truncated=%v but Tokens has %d ids", s, truncated, len(all))
			}
			if !truncated && !slices.Equal(ids[:len(all)], all) {
				t.Fatalf("Encode(%q) = %v, Tokens = %v", s, ids, all)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	tok := loadCLIP(b)
	prompt := "stone brick wall, seamless texture, moss in the cracks, 4k, highly detailed, trending on artstation"
	b.Run("cached", func(b *testing.B) {
		tok.Encode(prompt)
		b.ReportAllocs()
		for b.Loop() {
			tok.Encode(prompt)
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tok.mu.Lock()
			clear(tok.cache)
			tok.mu.Unlock()
			tok.Encode(prompt)
		}
	})
}

// TestConcurrentEncode shares one tokenizer (and its cache) between
// goroutines; run with -race.
func TestConcurrentEncode(t *testing.T) {
	tok := loadCLIP(t)
	want := tok.Tokens("a photo of a cat, highly detailed")
	done := make(chan []int64)
	for i := 0; i < 8; i++ {
		go func() {
			var got []int64
			for j := 0; j < 50; j++ {
				got = tok.Tokens("a photo of a cat, highly detailed")
				tok.Encode(strings.Repeat("x", j))
			}
			done <- got
		}()
	}
	for i := 0; i < 8; i++ {
		if got := <-done; !slices.Equal(got, want) {
			t.Errorf("concurrent Tokens = %v, want %v", got, want)
		}
	}
}
