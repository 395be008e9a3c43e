package manifests

import (
	"fmt"
	"hash/fnv"
	"image/color"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-dev/kiln/internal/idglob"
)

// MaxIDLength bounds ids, which become file paths.
const MaxIDLength = 200

const idHint = `ids are lower-case names joined by "/", e.g. "dungeon/floor"`

// Windows refuses these as file names, with or without an extension.
var reservedNames = []string{"con", "prn", "aux", "nul",
	"com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9",
	"lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9"}

// CheckID validates an asset, atlas or material id: segments of [a-z0-9_-]
// joined by "/". Ids become paths under the output folder, so anything that
// could leave it (absolute paths, "..", drive letters, backslashes) or that
// Windows cannot store is refused. It returns a message and a hint, or
// two empty strings when the id is fine.
func CheckID(id string) (msg, hint string) {
	switch {
	case id == "":
		return "id must not be empty", idHint
	case len(id) > MaxIDLength:
		return fmt.Sprintf("id is %d characters long, more than %d", len(id), MaxIDLength), "use a shorter id"
	case strings.HasPrefix(id, "/"):
		return fmt.Sprintf("id %s starts with \"/\"", quote(id)), idHint
	case hasDrive(id):
		return fmt.Sprintf("id %s starts with a drive letter", quote(id)), idHint
	case strings.Contains(id, `\`):
		return fmt.Sprintf(`id %s contains "\"`, quote(id)), `use "/" to separate id segments`
	}
	for _, seg := range strings.Split(id, "/") {
		switch {
		case seg == "":
			return fmt.Sprintf("id %s has an empty segment", quote(id)), `remove the extra "/"`
		case seg == "." || seg == "..":
			return fmt.Sprintf("id %s has a %q segment", quote(id), seg), idHint
		case contains(reservedNames, seg):
			return fmt.Sprintf("id %s uses %q, a reserved file name on Windows", quote(id), seg), "rename that segment"
		}
		for _, r := range seg {
			if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
				continue
			}
			if r >= 'A' && r <= 'Z' {
				return fmt.Sprintf("id %s contains upper-case %q", quote(id), r), withIDSuggestion("ids are lower-case", id)
			}
			return fmt.Sprintf("id %s contains %q", quote(id), r), withIDSuggestion(`use lower-case letters, digits, "_" and "-" in segments joined by "/"`, id)
		}
	}
	return "", ""
}

// withIDSuggestion adds a valid id close to id to hint, when there is one.
func withIDSuggestion(hint, id string) string {
	if s := suggestID(id); s != "" {
		return hint + ": did you mean " + quote(s) + "?"
	}
	return hint
}

// suggestID returns a valid id close to a refused one, or "" when there
// is none: lower-case, each run of characters that ids do not allow
// (spaces, dots, accents) turned into one "-" as in "grass-ref". It only
// rewrites characters within segments: an id with an empty, "." or ".."
// segment, or one that would lose a segment, gets no suggestion.
func suggestID(id string) string {
	var segs []string
	for _, seg := range strings.Split(strings.ToLower(id), "/") {
		var b strings.Builder
		sep := false
		for _, r := range seg {
			if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
				if sep && b.Len() > 0 {
					b.WriteByte('-')
				}
				b.WriteRune(r)
				sep = false
				continue
			}
			sep = true
		}
		if b.Len() == 0 || seg == "." || seg == ".." {
			return "" // a segment with nothing to keep, or one that points elsewhere
		}
		segs = append(segs, b.String())
	}
	s := strings.Join(segs, "/")
	if s == id {
		return ""
	}
	if msg, _ := CheckID(s); msg != "" {
		return ""
	}
	return s
}

func hasDrive(s string) bool {
	return len(s) >= 2 && s[1] == ':' && ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))
}

// pathKind selects the rules of checkPath.
type pathKind int

const (
	// pathInside: project files kiln reads (images, palettes, models) and
	// folders it writes (output, cache). No "..".
	pathInside pathKind = iota
	// pathUp: a folder that may be above the project (godot.project_root).
	pathUp
)

// checkPath validates a project-relative, slash-separated path. It returns
// the cleaned path ("./art/a.png" -> "art/a.png") or a message and hint.
// The check is syntactic; symlinks are the business of whoever opens the
// file.
func checkPath(p string, kind pathKind, example string) (clean, msg, hint string) {
	rel := "use a path relative to the project root, e.g. " + example
	switch {
	case p == "":
		return "", "path must not be empty", rel
	case strings.HasPrefix(p, "/"):
		return "", fmt.Sprintf("path %s is absolute", quote(p)), rel
	case hasDrive(p):
		return "", fmt.Sprintf("path %s starts with a drive letter", quote(p)), rel
	case strings.Contains(p, `\`):
		return "", fmt.Sprintf(`path %s contains "\"`, quote(p)), `use "/" to separate folders`
	case strings.Contains(p, ":"):
		return "", fmt.Sprintf(`path %s contains ":"`, quote(p)), `":" is not allowed in file names on Windows`
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Sprintf("path %s contains a control character", quote(p)), ""
		}
	}
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		switch {
		case seg == "" && !(i == len(segs)-1 && kind == pathUp):
			return "", fmt.Sprintf("path %s has an empty folder name", quote(p)), `remove the extra "/"`
		case seg == ".." && kind == pathInside:
			return "", fmt.Sprintf("path %s leaves the project with \"..\"", quote(p)), "paths are relative to the project root and stay inside it"
		}
	}
	return path.Clean(p), "", ""
}

// globMeta reports whether s uses glob syntax.
func globMeta(s string) bool { return idglob.HasMeta(s) }

// checkGlob validates a slash-separated glob: path.Match syntax per
// segment, plus "**" for any number of folders.
func checkGlob(g string) (msg, hint string) {
	if _, msg, hint := checkPath(strings.ReplaceAll(g, "*", "x"), pathInside, "**/*.kiln.yaml"); msg != "" {
		return strings.Replace(msg, "path", "glob", 1), hint
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return fmt.Sprintf("glob %s uses \"**\" inside a name", quote(g)), `"**" must be a whole path segment, e.g. "art/**/*.png"`
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Sprintf("glob %s is malformed", quote(g)), "check its [ ] brackets"
		}
	}
	return "", ""
}

// matchGlob matches a slash-separated name against a checked glob. "**"
// matches zero or more whole segments. The rules are idglob's, shared
// with kiln build --only.
func matchGlob(glob, name string) bool { return idglob.Match(glob, name) }

func matchSegs(g, n []string) bool { return idglob.MatchSegments(g, n) }

var sizeString = regexp.MustCompile(`^([0-9]+)x([0-9]+)$`)

// sizePost converts the three spellings of a size (512, [512, 768],
// "512x768") and checks it. generated sizes must be multiples of 8, the
// VAE factor of every Stable Diffusion model.
func sizePost(generated bool) func(d *decoder, p string, v *value) (any, bool) {
	return func(d *decoder, p string, v *value) (any, bool) {
		var s Size
		switch x := v.v.(type) {
		case int64:
			s = Size{int(x), int(x)}
		case []*value:
			s = Size{int(x[0].v.(int64)), int(x[1].v.(int64))}
		case string:
			m := sizeString.FindStringSubmatch(x)
			if m == nil {
				d.add(v.pos, p, fmt.Sprintf("expected a size like 512, [512, 768] or \"512x768\", got %s", quote(x)), "")
				return nil, false
			}
			w, err1 := strconv.Atoi(m[1])
			h, err2 := strconv.Atoi(m[2])
			if err1 != nil || err2 != nil {
				d.add(v.pos, p, fmt.Sprintf("size %s is too large", quote(x)), "")
				return nil, false
			}
			s = Size{w, h}
		}
		for _, side := range []struct {
			name string
			n    int
		}{{"width", s.W}, {"height", s.H}} {
			min := 1
			if generated {
				min = 8
			}
			switch {
			case side.n < min:
				d.add(v.pos, p, fmt.Sprintf("%s %d is less than %d", side.name, side.n, min), "")
				return nil, false
			case side.n > d.lim.MaxImageSize:
				d.add(v.pos, p, fmt.Sprintf("%s %d is more than limits.max_image_size (%d)", side.name, side.n, d.lim.MaxImageSize), "lower it, or raise limits.max_image_size in kiln.yaml")
				return nil, false
			case generated && side.n%8 != 0:
				lo := side.n / 8 * 8
				d.add(v.pos, p, fmt.Sprintf("%s %d is not a multiple of 8", side.name, side.n), fmt.Sprintf("diffusion models work in 8-pixel blocks; use %d or %d", lo, lo+8))
				return nil, false
			}
		}
		return s, true
	}
}

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

func colorPost(d *decoder, p string, v *value) (any, bool) {
	s := v.v.(string)
	if !hexColor.MatchString(s) {
		d.add(v.pos, p, fmt.Sprintf("expected a colour like \"#ff00ff\", got %s", quote(s)), "")
		return nil, false
	}
	n, _ := strconv.ParseUint(s[1:], 16, 32)
	return color.RGBA{R: uint8(n >> 16), G: uint8(n >> 8), B: uint8(n), A: 255}, true
}

var durationText = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`)

// MaxDebounce bounds watch.debounce; a longer wait is always a typo.
const MaxDebounce = 10 * time.Second

func durationPost(d *decoder, p string, v *value) (any, bool) {
	s := v.v.(string)
	t, err := time.ParseDuration(s)
	if !durationText.MatchString(s) || err != nil {
		d.add(v.pos, p, fmt.Sprintf("expected a duration like \"100ms\" or \"1.5s\", got %s", quote(s)), "")
		return nil, false
	}
	if t > MaxDebounce {
		d.add(v.pos, p, fmt.Sprintf("must be at most %s, got %s", MaxDebounce, s), "")
		return nil, false
	}
	return t, true
}

var byteSizeText = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?) ?(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`)

var byteUnits = map[string]float64{"": 1, "B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

// parseByteSize reads "4GiB", "512 MB", "1.5GB" or a plain number of bytes.
func parseByteSize(s string) (int64, bool) {
	m := byteSizeText.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	f *= byteUnits[m[3]]
	if f >= 1<<62 {
		return 0, false
	}
	return int64(f), true
}

func byteSizePost(min, max int64) func(d *decoder, p string, v *value) (any, bool) {
	return func(d *decoder, p string, v *value) (any, bool) {
		var n int64
		switch x := v.v.(type) {
		case int64:
			n = x
		case string:
			var ok bool
			if n, ok = parseByteSize(x); !ok {
				d.add(v.pos, p, fmt.Sprintf("expected a size in bytes like \"4GiB\" or \"512MB\", got %s", quote(x)), "")
				return nil, false
			}
		}
		if n < min || n > max {
			d.add(v.pos, p, fmt.Sprintf("must be between %d and %d bytes, got %d", min, max, n), "")
			return nil, false
		}
		return n, true
	}
}

// DefaultSeed is the seed of an asset that sets none anywhere: 32 bits of
// the FNV-1a hash of its id. Deterministic, so builds are reproducible and
// cacheable, and different per asset, so two assets with the same prompt
// are not the same picture. 32 bits keeps it typeable into other tools.
func DefaultSeed(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() & 0xffffffff)
}
