package atlas

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-dev/kiln/internal/atomicfile"
	"github.com/kiln-dev/kiln/internal/safepath"
)

// File is one output file of an atlas.
type File struct {
	// Name is the file's path relative to the output folder,
	// slash-separated.
	Name string
	// Data is the file's content.
	Data []byte
}

// checkBase rejects base names that are not a plain file name stem.
func checkBase(base string) error {
	if base == "" || base == "." || base == ".." || strings.ContainsAny(base, "/\\:*?\"<>|") || strings.TrimSpace(base) != base {
		return fmt.Errorf("atlas file name %q must be a plain name without slashes or any of : * ? \" < > |", base)
	}
	for _, r := range base {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("atlas file name %q contains a control character", base)
		}
	}
	return nil
}

// PageNames returns the page image file names: "<base>.png" for a single
// page, "<base>-0.png", "<base>-1.png", … for several.
func (a *Atlas) PageNames(base string) []string {
	return a.numbered(base, ".png")
}

func (a *Atlas) numbered(base, ext string) []string {
	if len(a.Pages) == 1 {
		return []string{base + ext}
	}
	names := make([]string, len(a.Pages))
	for p := range a.Pages {
		names[p] = fmt.Sprintf("%s-%d%s", base, p, ext)
	}
	return names
}

// JSONNames returns the names of the per-page JSON files ending in ext:
// "<base><ext>" for page 0 and "<base>-<p><ext>" for the others.
func (a *Atlas) JSONNames(base, ext string) []string {
	names := a.numbered(base, ext)
	names[0] = base + ext
	return names
}

// PagePNG encodes page p as PNG. The encoding is fixed (default
// compression, no metadata), so the same pixels always give the same bytes.
func (a *Atlas) PagePNG(p int) ([]byte, error) {
	var b bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.DefaultCompression}
	if err := enc.Encode(&b, a.Pages[p]); err != nil {
		return nil, fmt.Errorf("encode atlas page %d: %w", p, err)
	}
	return b.Bytes(), nil
}

// JSONHash returns the TexturePacker "JSON (Hash)" files: one per page
// (several pages link each other through meta.related_multi_packs, as
// PixiJS expects). Page 0's file is "<base>.json" however many pages there
// are, so a game loads the same file name when an atlas grows a page; the
// others are "<base>-1.json", "<base>-2.json", ….
func (a *Atlas) JSONHash(base string) []File {
	return a.jsonFiles(base, false, ".json")
}

// JSONArray returns the TexturePacker "JSON (Array)" files, named like
// JSONHash's but ending in ".array.json" when the hash format is written
// too, so both can live in one folder.
func (a *Atlas) JSONArray(base string) []File {
	ext := ".json"
	for _, f := range a.Settings.Formats {
		if f == FormatJSONHash {
			ext = ".array.json"
		}
	}
	return a.jsonFiles(base, true, ext)
}

func (a *Atlas) jsonFiles(base string, array bool, ext string) []File {
	images := a.PageNames(base)
	names := a.JSONNames(base, ext)
	files := make([]File, len(a.Pages))
	for p := range a.Pages {
		var related []string
		if len(names) > 1 {
			for q, n := range names {
				if q != p {
					related = append(related, n)
				}
			}
		}
		files[p] = File{Name: names[p], Data: a.jsonPage(p, array, images[p], related)}
	}
	return files
}

// PhaserMultiatlas returns "<base>.multiatlas.json" for Phaser 3's
// load.multiatlas (all pages in one file).
func (a *Atlas) PhaserMultiatlas(base string) File {
	return File{Name: base + ".multiatlas.json", Data: a.phaserMultiatlas(a.PageNames(base))}
}

// LibGDX returns "<base>.atlas" in the libGDX / Spine atlas format.
func (a *Atlas) LibGDX(base string) (File, error) {
	data, err := a.libgdxAtlas(a.PageNames(base))
	if err != nil {
		return File{}, err
	}
	return File{Name: base + ".atlas", Data: data}, nil
}

// Godot returns the Godot 4 resources ("<base>/<sprite>.tres" AtlasTextures
// and "<base>/<set>.tres" SpriteFrames), referencing the pages by res://
// paths under resDir (see GodotResDir).
func (a *Atlas) Godot(base, resDir string) ([]File, error) {
	if !strings.HasPrefix(resDir, "res://") {
		return nil, fmt.Errorf("godot res:// folder %q does not start with res://", resDir)
	}
	if !strings.HasSuffix(resDir, "/") {
		resDir += "/"
	}
	return a.godotResources(base, a.PageNames(base), resDir)
}

// Files renders the page images and the data files of every format in
// a.Settings.Formats. dir is the folder the files will be written to; it
// only decides the res:// paths of Godot resources (relative to
// Settings.GodotRoot). Names are relative to dir.
func (a *Atlas) Files(dir, base string) ([]File, error) {
	if err := checkBase(base); err != nil {
		return nil, err
	}
	var files []File
	for p, name := range a.PageNames(base) {
		data, err := a.PagePNG(p)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: name, Data: data})
	}
	var errs []error
	for _, format := range AllFormats {
		if !a.wants(format) {
			continue
		}
		switch format {
		case FormatJSONHash:
			files = append(files, a.JSONHash(base)...)
		case FormatJSONArray:
			files = append(files, a.JSONArray(base)...)
		case FormatPhaser:
			files = append(files, a.PhaserMultiatlas(base))
		case FormatGodot:
			resDir, err := GodotResDir(a.Settings.GodotRoot, dir)
			if err == nil {
				var fs []File
				fs, err = a.Godot(base, resDir)
				files = append(files, fs...)
			}
			errs = append(errs, err)
		case FormatLibGDX:
			f, err := a.LibGDX(base)
			if err == nil {
				files = append(files, f)
			}
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return files, nil
}

func (a *Atlas) wants(format string) bool {
	for _, f := range a.Settings.Formats {
		if f == format {
			return true
		}
	}
	return false
}

// Write writes Files into dir, each atomically (a crash leaves the old or
// the new file, never a mix), creating subfolders as needed, and returns
// the written paths. Paths cannot leave dir, not even through symlinks.
func (a *Atlas) Write(dir, base string) ([]string, error) {
	files, err := a.Files(dir, base)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, f := range files {
		p, err := safepath.Join(dir, f.Name)
		if err != nil {
			return written, fmt.Errorf("write atlas file %s: %w", f.Name, err)
		}
		if sub := path.Dir(f.Name); sub != "." {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return written, fmt.Errorf("create folder for %s: %w", p, err)
			}
		}
		if err := atomicfile.WriteFile(p, f.Data, atomicfile.DefaultPerm); err != nil {
			return written, fmt.Errorf("write atlas file %s: %w", p, err)
		}
		written = append(written, p)
	}
	return written, nil
}
