package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// addressLimitKB caps the address space of kiln in the resource tests
// (ulimit -v): enough for the Go runtime and a normal build, far below
// what decoding a 100000x100000 image or expanding an alias bomb would
// take, so a regression fails the test instead of the machine.
const addressLimitKB = 4 << 20

// maxRSSKB is the most resident memory a refused input may cost kiln.
// These builds stop before reading pixels; a normal small build peaks
// around 20 MB.
const maxRSSKB = 150 << 10

// kilnLimited runs kiln under the address-space limit and returns its
// result and peak resident memory in KiB.
func kilnLimited(t *testing.T, dir string, args ...string) (result, int64) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{"-c", fmt.Sprintf(`ulimit -v %d && exec "$0" "$@"`, addressLimitKB), kilnBin}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run kiln %v: %v", args, err)
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss
	}
	return result{code, out.String(), errb.String()}, rss
}

// hugePNG is a valid PNG signature and header claiming w x h RGBA pixels
// with almost no data: decoding it would allocate 4*w*h bytes.
func hugePNG(w, h uint32) string {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 6
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01})
	chunk("IEND", nil)
	return b.String()
}

// hugeJPEG is a JPEG start, a JFIF header and a baseline frame header
// claiming w x h pixels in three components, and nothing else.
func hugeJPEG(w, h uint16) string {
	sof := []byte{0xff, 0xd8,
		0xff, 0xe0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
		0xff, 0xc0, 0x00, 0x11, 0x08, byte(h >> 8), byte(h), byte(w >> 8), byte(w), 0x03,
		0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xd9}
	return string(sof)
}

// sparse makes a file of size bytes at dir/rel that takes no disk space.
func sparse(t *testing.T, dir, rel string, size int64) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// aliasBomb is a "billion laughs" YAML document under key: 10^9 nodes
// once expanded.
func aliasBomb(key string) string {
	var b strings.Builder
	b.WriteString("x-l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "x-l%d: &l%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]\n")
	}
	fmt.Fprintf(&b, "%s: *l8\n", key)
	return b.String()
}

// TestResourceLimits feeds kiln inputs built to exhaust memory or time:
// each must be refused with its exact message and exit code, under an
// address-space limit, with a small peak resident size (nothing decoded,
// expanded or read in full).
func TestResourceLimits(t *testing.T) {
	t.Parallel()
	const head = "version: 1\nassets:\n"
	gen := func(fields string) string {
		return head + "  - {id: g, kind: tileable, model: ex, prompt: stone, size: 64" + fields + "}\n"
	}
	longPrompt := strings.Repeat("stone ", 20000)
	var frameList strings.Builder
	for i := 0; i < 300; i++ {
		frameList.WriteString("a, ")
	}
	tests := []struct {
		name   string
		config string            // kiln.yaml; imageConfig when empty
		files  map[string]string // more project files
		setup  func(t *testing.T, p string)
		code   int
		want   string // stderr after "kiln: ", exactly; $P is the project
	}{
		{name: "PNG header claiming 100000x100000",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: a, kind: image, image: {source: art/huge.png}}\n", "art/huge.png": hugePNG(100000, 100000)},
			code:  1, want: "build failed: stage a:source failed: m.kiln.yaml:3:5: image $P/art/huge.png is 100000x100000, larger than the limit 8192; shrink it or raise limits.max_image_size in kiln.yaml"},
		{name: "JPEG header claiming 65000x65000",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: a, kind: image, image: {source: art/huge.jpg}}\n", "art/huge.jpg": hugeJPEG(65000, 65000)},
			code:  1, want: "build failed: stage a:source failed: m.kiln.yaml:3:5: image $P/art/huge.jpg is 65000x65000, larger than the limit 8192; shrink it or raise limits.max_image_size in kiln.yaml"},
		{name: "image over a configured limit", config: imageConfig + "limits: {max_image_size: 64}\n",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: a, kind: image, image: {source: art/big.png}}\n", "art/big.png": hugePNG(65, 10)},
			code:  1, want: "build failed: stage a:source failed: m.kiln.yaml:3:5: image $P/art/big.png is 65x10, larger than the limit 64; shrink it or raise limits.max_image_size in kiln.yaml"},
		{name: "huge exemplar",
			files: map[string]string{"m.kiln.yaml": gen(", exemplars: [art/huge.png]"), "art/huge.png": hugePNG(100000, 100000)},
			code:  1, want: "build failed: stage g:generate failed: m.kiln.yaml:3:5: exemplar art/huge.png: image $P/art/huge.png is 100000x100000, larger than the limit 8192; shrink it or raise limits.max_image_size in kiln.yaml"},
		{name: "frame count",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: s, kind: sprite-sheet, model: ex, prompt: x, size: 64, sprite: {frames: 100000000}}\n"},
			code:  2, want: "m.kiln.yaml:3:82: assets[0].sprite.frames: 100000000 is more than limits.max_frames (256) (lower it, or raise limits.max_frames in kiln.yaml)"},
		{name: "per-frame prompts",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: s, kind: sprite-sheet, model: ex, prompt: x, size: 64, sprite: {frames: [" + frameList.String() + "a]}}\n"},
			code:  2, want: "m.kiln.yaml:3:82: assets[0].sprite.frames: 301 items is more than limits.max_frames (256) (use fewer, or raise limits.max_frames in kiln.yaml)"},
		{name: "variations",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: c, kind: concept-art, model: ex, prompt: x, size: 64, concept: {variations: 1000000}}\n"},
			code:  2, want: "m.kiln.yaml:3:86: assets[0].concept.variations: 1000000 is more than limits.max_variations (64) (lower it, or raise limits.max_variations in kiln.yaml)"},
		{name: "steps",
			files: map[string]string{"m.kiln.yaml": gen(", steps: 1000000000")},
			code:  2, want: "m.kiln.yaml:3:72: assets[0].steps: 1000000000 is more than limits.max_steps (150) (lower it, or raise limits.max_steps in kiln.yaml)"},
		{name: "hires steps",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: c, kind: concept-art, model: ex, prompt: x, size: 64, concept: {hires: {steps: 100000}}}\n"},
			code:  2, want: "m.kiln.yaml:3:89: assets[0].concept.hires.steps: 100000 is more than limits.max_steps (150) (lower it, or raise limits.max_steps in kiln.yaml)"},
		{name: "generated size",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: g, kind: tileable, model: ex, prompt: stone, size: 1000000}\n"},
			code:  2, want: "m.kiln.yaml:3:61: assets[0].size: width 1000000 is more than limits.max_image_size (8192) (lower it, or raise limits.max_image_size in kiln.yaml)"},
		{name: "hires output size",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: c, kind: concept-art, model: ex, prompt: x, size: 8192, concept: {hires: {scale: 4}}}\n"},
			code:  2, want: "m.kiln.yaml:3:91: assets[0].concept.hires.scale: hires output 32768x32768 is larger than limits.max_image_size (8192) (lower the scale or the size, or raise limits.max_image_size in kiln.yaml)"},
		{name: "very long prompt",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: g, kind: tileable, model: ex, size: 64, prompt: \"" + longPrompt + "\"}\n"},
			code:  2, want: "m.kiln.yaml:3:58: assets[0].prompt: 120000 characters is more than limits.max_prompt_chars (4000) (shorten it, or raise limits.max_prompt_chars in kiln.yaml)"},
		{name: "very long negative prompt in defaults",
			files: map[string]string{"m.kiln.yaml": "version: 1\ndefaults: {negative_prompt: \"" + longPrompt + "\"}\nassets: []\n"},
			code:  2, want: "m.kiln.yaml:2:29: defaults.negative_prompt: 120000 characters is more than limits.max_prompt_chars (4000) (shorten it, or raise limits.max_prompt_chars in kiln.yaml)"},
		{name: "very long id",
			files: map[string]string{"m.kiln.yaml": head + "  - {id: " + strings.Repeat("a", 100000) + ", kind: image, image: {source: art/a.png}}\n"},
			code:  2, want: "m.kiln.yaml:3:10: assets[0].id: id is 100000 characters long, more than 200 (use a shorter id)"},
		{name: "alias bomb in a manifest",
			files: map[string]string{"m.kiln.yaml": "version: 1\n" + aliasBomb("assets")},
			code:  2, want: `m.kiln.yaml:6:52: YAML aliases expand to more than 100565 nodes (this looks like a "billion laughs" alias bomb; use fewer or smaller aliases)`},
		{name: "alias bomb in kiln.yaml", config: "version: 1\n" + aliasBomb("x-bomb"),
			files: map[string]string{"m.kiln.yaml": head},
			code:  2, want: `kiln.yaml:6:52: YAML aliases expand to more than 100565 nodes (this looks like a "billion laughs" alias bomb; use fewer or smaller aliases)`},
		{name: "deeply nested flow YAML",
			files: map[string]string{"m.kiln.yaml": "version: 1\nassets: []\nx-deep: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"},
			code:  2, want: "m.kiln.yaml:3:73: YAML nesting is deeper than 64 levels (flatten the structure)"},
		{name: "deeply nested block YAML",
			files: map[string]string{"m.kiln.yaml": "version: 1\nassets:\n  - " + strings.Repeat("- ", 5000) + "x\n"},
			code:  2, want: "m.kiln.yaml:3:131: YAML nesting is deeper than 64 levels (flatten the structure)"},
		{name: "manifest over the size limit",
			files: map[string]string{"m.kiln.yaml": head + "# " + strings.Repeat("x", 5<<20) + "\n"},
			code:  2, want: "m.kiln.yaml: file is 5242902 bytes, more than limits.max_manifest_bytes (4194304) (split it into several manifests, or raise limits.max_manifest_bytes in kiln.yaml)"},
		{name: "64 GiB manifest is not read",
			setup: func(t *testing.T, p string) { sparse(t, p, "big.kiln.yaml", 64<<30) },
			code:  2, want: "big.kiln.yaml: file is 68719476736 bytes, more than limits.max_manifest_bytes (4194304) (split it into several manifests, or raise limits.max_manifest_bytes in kiln.yaml)"},
		{name: "64 GiB kiln.yaml is not read",
			setup: func(t *testing.T, p string) { sparse(t, p, "kiln.yaml", 64<<30) },
			code:  2, want: "kiln.yaml: file is 68719476736 bytes, more than 4194304 (kiln.yaml is read before its own limits apply; keep it small and put assets in manifests)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := t.TempDir()
			cfg := tt.config
			if cfg == "" {
				cfg = imageConfig
			}
			files := map[string]string{"kiln.yaml": cfg, "art/a.png": pngBytes(1)}
			for k, v := range tt.files {
				files[k] = v
			}
			writeFiles(t, p, files)
			if tt.setup != nil {
				tt.setup(t, p)
			}
			r, rss := kilnLimited(t, p, "build", "-q")
			want := "kiln: " + strings.ReplaceAll(tt.want, "$P", p)
			if r.code != tt.code || strings.TrimSpace(r.stderr) != want {
				t.Fatalf("exit %d, stderr:\n%.2000s\nwant exit %d and:\n%s", r.code, r.stderr, tt.code, want)
			}
			t.Logf("peak RSS %d KiB", rss)
			if rss > maxRSSKB {
				t.Errorf("peak resident memory %d KiB, want at most %d KiB", rss, maxRSSKB)
			}
		})
	}
}
