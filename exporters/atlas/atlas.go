// Package atlas packs sprites into texture atlases and writes the atlas
// data files that game engines load: TexturePacker-style JSON (hash and
// array, read by Phaser 3 and PixiJS), Phaser 3 multiatlas, Godot 4
// SpriteFrames and AtlasTexture resources, and the libGDX / Spine .atlas
// text format.
//
// Packing uses the MaxRects family of heuristics from Jukka Jylänki's
// "A Thousand Ways to Pack the Bin": best short side fit, best long side
// fit, best area fit, bottom-left and contact point, each either online
// (rectangles taken in a sorted order) or as the global best-fit offline
// variant (each step places the rectangle and position pair with the best
// score among all remaining rectangles). The default, "best", tries them
// together with a search over page sizes and keeps the layout with the
// smallest total page area; with rotation allowed it also packs without
// rotation and keeps whichever needs less page area. When sprites need
// several pages, the frames of an animation go onto one page whenever the
// animation fits on one page by itself; only larger animations span pages,
// and the formats that can describe them (the first JSON hash file's
// meta.animations, the Phaser multiatlas, Godot, libGDX) still list them
// whole (Atlas.Warnings says which formats cannot).
//
// Sprites may carry a pivot and 9-slice borders, and Settings.Scale makes a
// resampled variant (TexturePacker's "@0.5x" with meta.scale).
//
// Everything is deterministic: the same sprites and settings give the same
// layout, byte-identical PNG pages and byte-identical data files.
//
// The package is a library: it knows nothing about manifests or the
// pipeline. Settings mirrors the manifest's atlas fields so the caller can
// copy them over.
package atlas

import (
	"errors"
	"fmt"
	"github.com/kiln-dev/kiln/internal/spelling"
	"image"
	"math"
	"strings"
)

// SizeMode constrains page dimensions.
type SizeMode string

const (
	// SizeAny allows any page width and height up to Settings.MaxSize.
	SizeAny SizeMode = "any"
	// SizePOT rounds page width and height up to powers of two, for old
	// GPUs and for mipmapped textures on WebGL 1.
	SizePOT SizeMode = "pot"
)

// Heuristic names accepted in Settings.Heuristic.
const (
	// HeuristicBest tries every heuristic and page-size candidate and keeps
	// the layout with the smallest total page area. It is the default.
	HeuristicBest = "best"
	// HeuristicBSSF is MaxRects best short side fit.
	HeuristicBSSF = "bssf"
	// HeuristicBLSF is MaxRects best long side fit.
	HeuristicBLSF = "blsf"
	// HeuristicBAF is MaxRects best area fit.
	HeuristicBAF = "baf"
	// HeuristicBL is MaxRects bottom-left ("Tetris") placement.
	HeuristicBL = "bl"
	// HeuristicCP is MaxRects contact point: the position that touches
	// the page edge and placed sprites the most.
	HeuristicCP = "cp"
	// HeuristicGlobal is the global best-fit offline variant with best
	// short side fit scores. Any single heuristic can be made global with
	// a "-global" suffix, e.g. "baf-global".
	HeuristicGlobal = "global"
)

// Format names accepted in Settings.Formats.
const (
	// FormatJSONHash is TexturePacker's "JSON (Hash)": frames keyed by
	// name. Phaser 3 load.atlas and PixiJS Spritesheet read it.
	FormatJSONHash = "json-hash"
	// FormatJSONArray is TexturePacker's "JSON (Array)": frames as a list
	// with a "filename" each. Phaser 3 load.atlas reads it.
	FormatJSONArray = "json-array"
	// FormatPhaser is the Phaser 3 multiatlas format (a "textures" list
	// with one entry per page), read by load.multiatlas.
	FormatPhaser = "phaser"
	// FormatGodot writes Godot 4 text resources: a SpriteFrames .tres per
	// animated set and an AtlasTexture .tres per still sprite.
	FormatGodot = "godot"
	// FormatLibGDX is the libGDX / Spine texture atlas text format.
	FormatLibGDX = "libgdx"
)

// AllFormats lists every format name in the order files are written.
var AllFormats = []string{FormatJSONHash, FormatJSONArray, FormatPhaser, FormatGodot, FormatLibGDX}

// Filter names for Settings.Filter (the libGDX page filter line).
const (
	FilterLinear  = "linear"
	FilterNearest = "nearest"
)

// DefaultMaxSize is the page size limit used when Settings.MaxSize is 0.
// 4096 is what every current desktop and mobile GPU samples.
const DefaultMaxSize = 4096

// MaxPageSize is the largest MaxSize accepted: a 16384² page already takes
// 1 GiB of memory.
const MaxPageSize = 1 << 14

// MaxScale is the largest Settings.Scale accepted: kiln makes smaller
// variants of an atlas, and enlarging adds no detail.
const MaxScale = 1

// DefaultFPS is the animation speed used when a sprite's FPS is 0.
const DefaultFPS = 12

// Sprite is one input image. Still sprites have an empty Animation;
// animation frames name their animation and their position in it.
type Sprite struct {
	// Name identifies the frame in every data file ("hero/walk/0",
	// "ui/button"). Names are unique within an atlas, slash-separated, and
	// must not contain control characters.
	Name string
	// Image holds the pixels. Any image.Image works; *image.NRGBA is
	// used as is, other types are converted.
	Image image.Image
	// Sheet optionally names the sprite-sheet asset the frame came from.
	// Frames of one sheet share one Godot SpriteFrames resource; frames
	// without a sheet get one SpriteFrames per animation.
	Sheet string
	// Animation is the animation this frame belongs to ("walk"), or empty
	// for a still sprite.
	Animation string
	// Frame is the frame's position in its animation (0-based); frames
	// play in ascending order.
	Frame int
	// FPS is the animation's speed in frames per second (0 means
	// DefaultFPS). All frames of an animation must agree.
	FPS float64
	// Loop says whether the animation repeats. All frames of an animation
	// must agree.
	Loop bool
	// Direction is "forward" (the default), "reverse" or "pingpong", as
	// Aseprite's frame tags name them. All frames of an animation must
	// agree.
	Direction string
	// Pivot is the sprite's origin as a fraction of its untrimmed size
	// ((0,0) top-left, (1,1) bottom-right). Nil means the centre.
	Pivot *[2]float64
	// Slice optionally holds 9-slice borders in pixels of the image:
	// left, top, right, bottom. The borders stay fixed and the middle
	// stretches when the engine draws the sprite larger (libGDX NinePatch,
	// Godot StyleBoxTexture). A sprite with borders is never trimmed, so
	// the borders keep meaning the same pixels.
	Slice *[4]int
}

// Settings mirrors the manifest's atlas fields.
type Settings struct {
	// MaxSize is the largest page width and height in pixels (0 means
	// DefaultMaxSize). Sprites that do not fit on one page go to more
	// pages.
	MaxSize int
	// Size is SizeAny (the default when empty) or SizePOT.
	Size SizeMode
	// Square forces pages to be square.
	Square bool
	// Padding is the number of transparent pixels between sprites
	// (between their extruded edges).
	Padding int
	// Border is the number of transparent pixels between the page edge and
	// the nearest sprite (its extruded edge).
	Border int
	// Extrude repeats each sprite's edge pixels this many times around
	// it, so linear filtering and mipmaps do not bleed transparent or
	// neighbouring texels into the sprite. Extruded pixels are part of
	// the sprite's footprint on the page; the data files still describe
	// only the sprite's own pixels.
	Extrude int
	// Trim is the alpha threshold for trimming: rows and columns at the
	// sprite's edges whose pixels all have alpha ≤ Trim are cropped away
	// (the original size and the offset of the kept pixels go into the
	// data files, so engines draw the sprite where it was). 0, the zero
	// value, crops fully transparent edges, as TexturePacker does by
	// default; a negative value turns trimming off.
	Trim int
	// Rotation allows sprites to be stored rotated by 90°, which can pack
	// tighter. Off by default: Godot's AtlasTexture cannot express it, and
	// the JSON formats (rotated clockwise) and libGDX (rotated
	// counter-clockwise) disagree on the direction, so they cannot share
	// a page image. With the "best" heuristic, rotation never costs page
	// area: the search also runs without it and keeps the smaller layout.
	Rotation bool
	// Dedupe stores sprites with identical (trimmed) pixels once; every
	// frame is still listed and points at the shared rectangle.
	Dedupe bool
	// PremultiplyAlpha multiplies colour by alpha in the page images; the
	// libGDX format says so with "pma: true".
	PremultiplyAlpha bool
	// Heuristic picks the packing heuristic: "best" (the default when
	// empty), "bssf", "blsf", "baf", "bl", "cp", "global", or any of the
	// five with a "-global" suffix.
	Heuristic string
	// Formats lists the data formats to write (see AllFormats). Empty
	// means FormatJSONHash.
	Formats []string
	// Filter is the texture filter named in the libGDX page header:
	// FilterLinear (the default when empty) or FilterNearest (pixel art).
	Filter string
	// Scale resizes every sprite by this factor before packing (0 means 1,
	// the images as they are): 0.5 makes the half-resolution variant of an
	// atlas. Pages are packed afresh at the new size, so padding, border
	// and extrusion stay whole pixels; sprites are resampled with
	// Catmull-Rom, or nearest-neighbour for FilterNearest when 1/Scale is
	// a whole number. Data files record it as meta.scale, which PixiJS
	// reads as the texture resolution, so the variant draws at the same
	// size as the full atlas.
	Scale float64
	// GodotRoot is the folder of the Godot project (the one holding
	// project.godot) on disk. Godot resources reference the page images by
	// res:// paths relative to it. Empty means the output folder itself is
	// the project root.
	GodotRoot string
}

// withDefaults returns s with zero fields replaced by their defaults.
func (s Settings) withDefaults() Settings {
	if s.MaxSize == 0 {
		s.MaxSize = DefaultMaxSize
	}
	if s.Size == "" {
		s.Size = SizeAny
	}
	if s.Heuristic == "" {
		s.Heuristic = HeuristicBest
	}
	if len(s.Formats) == 0 {
		s.Formats = []string{FormatJSONHash}
	}
	if s.Filter == "" {
		s.Filter = FilterLinear
	}
	if s.Scale == 0 {
		s.Scale = 1
	}
	return s
}

// validate reports every problem with s at once.
func (s Settings) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.MaxSize < 1 || s.MaxSize > MaxPageSize {
		bad("max_size %d is out of range; use a page size between 1 and %d pixels", s.MaxSize, MaxPageSize)
	}
	if s.Size != SizeAny && s.Size != SizePOT {
		bad("size %q is not a size mode; use %q or %q", s.Size, SizeAny, SizePOT)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"padding", s.Padding}, {"border", s.Border}, {"extrude", s.Extrude}} {
		if f.v < 0 || f.v > 1024 {
			bad("%s %d is out of range; use 0 to 1024 pixels", f.name, f.v)
		}
	}
	if s.Trim > 255 {
		bad("trim %d is out of range; use an alpha threshold from 0 to 254, or a negative value to turn trimming off", s.Trim)
	}
	if _, err := parseHeuristic(s.Heuristic); err != nil {
		errs = append(errs, err)
	}
	if !finite(s.Scale) || s.Scale <= 0 || s.Scale > MaxScale {
		bad("scale %v is out of range; use a factor above 0 and at most %v (0.5 for a half-size variant)", s.Scale, MaxScale)
	}
	if s.Filter != FilterLinear && s.Filter != FilterNearest {
		bad("filter %q is not a texture filter; use %q or %q", s.Filter, FilterLinear, FilterNearest)
	}
	seen := map[string]bool{}
	for _, f := range s.Formats {
		if !isFormat(f) {
			bad("format %q is unknown%s; use one of %s", f, suggest(f, AllFormats), strings.Join(AllFormats, ", "))
			continue
		}
		if seen[f] {
			bad("format %q is listed twice; list each format once", f)
		}
		seen[f] = true
	}
	if s.Rotation {
		if seen[FormatGodot] {
			bad("rotation cannot be used with format %q: Godot's AtlasTexture has no rotated regions; turn rotation off or drop the godot format", FormatGodot)
		}
		if seen[FormatLibGDX] && (seen[FormatJSONHash] || seen[FormatJSONArray] || seen[FormatPhaser]) {
			bad("rotation cannot be used with format %q together with the JSON formats: libGDX stores rotated sprites counter-clockwise and TexturePacker JSON clockwise, so one page image cannot serve both; turn rotation off or write them as separate atlases", FormatLibGDX)
		}
	}
	return errors.Join(errs...)
}

func isFormat(f string) bool {
	for _, g := range AllFormats {
		if f == g {
			return true
		}
	}
	return false
}

// suggest returns ` (did you mean "x"?)` for the closest candidate, or "".
func suggest(word string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := spelling.Distance(strings.ToLower(word), c); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// Atlas is a packed atlas: page images and where every frame is.
type Atlas struct {
	// Settings are the settings the atlas was packed with, defaults
	// filled in.
	Settings Settings
	// Pages are the page images, in page order. With
	// Settings.PremultiplyAlpha their colour values are premultiplied
	// (the image type stays NRGBA so the PNG encoder writes the bytes as
	// they are).
	Pages []*image.NRGBA
	// Frames describe every input sprite, in frame order: sorted by
	// animation (or name, for stills), then frame number, then name, so
	// each animation's frames are contiguous and in play order.
	Frames []Frame
	// Animations list the animations, sorted by sheet and name.
	Animations []Animation
}

// Frame says where one sprite's pixels are.
type Frame struct {
	// Name is the sprite's name.
	Name string
	// Page indexes Atlas.Pages.
	Page int
	// X, Y is the top-left corner of the sprite's stored pixels on the
	// page (inside any extrusion).
	X, Y int
	// W, H is the size of the trimmed sprite before rotation. A rotated
	// sprite covers H×W pixels on the page.
	W, H int
	// Rotated says the pixels are stored rotated by 90°: clockwise for the
	// JSON formats, counter-clockwise when the atlas is written for libGDX
	// (see Atlas.RotatedClockwise).
	Rotated bool
	// OffsetX, OffsetY is where the trimmed pixels start in the original
	// image (TexturePacker's spriteSourceSize.x/y).
	OffsetX, OffsetY int
	// SourceW, SourceH is the original, untrimmed size.
	SourceW, SourceH int
	// Pivot is the origin as a fraction of the untrimmed size; HasPivot
	// says the sprite set it (otherwise it is the centre).
	Pivot    [2]float64
	HasPivot bool
	// Slice is the 9-slice borders (left, top, right, bottom) in pixels
	// of the (scaled) sprite; HasSlice says the sprite set them.
	Slice    [4]int
	HasSlice bool
	// Sheet, Animation and Index come from the sprite (Index is its Frame
	// field). Animation is empty for stills.
	Sheet, Animation string
	Index            int
	// FPS is the speed of the frame's animation (0 for stills).
	FPS float64
	// Shared is the index in Atlas.Frames of the first frame with the same
	// pixels when dedupe merged them, or -1.
	Shared int
}

// Trimmed reports whether the frame's pixels are a crop of its source.
func (f *Frame) Trimmed() bool {
	return f.OffsetX != 0 || f.OffsetY != 0 || f.W != f.SourceW || f.H != f.SourceH
}

// Animation is one animation's frames in play order.
type Animation struct {
	// Sheet and Name identify the animation; FullName is "sheet/name"
	// when there is a sheet, else the name.
	Sheet, Name, FullName string
	// Frames index Atlas.Frames in ascending frame order (not expanded
	// for pingpong).
	Frames []int
	// FPS, Loop and Direction come from the frames.
	FPS       float64
	Loop      bool
	Direction string
}

// Occupancy returns the summed area of the sprites' stored pixels (trimmed,
// shared rectangles counted once) divided by the summed area of the pages.
func (a *Atlas) Occupancy() float64 {
	var used, total float64
	for i := range a.Frames {
		if a.Frames[i].Shared < 0 {
			used += float64(a.Frames[i].W * a.Frames[i].H)
		}
	}
	for _, p := range a.Pages {
		total += float64(p.Rect.Dx() * p.Rect.Dy())
	}
	if total == 0 {
		return 0
	}
	return used / total
}

// RotatedClockwise reports the direction rotated frames are stored in:
// clockwise (TexturePacker JSON, Phaser, PixiJS) unless the atlas is
// written for libGDX only, whose readers expect counter-clockwise.
func (a *Atlas) RotatedClockwise() bool {
	return rotatesClockwise(a.Settings.Formats)
}

func rotatesClockwise(formats []string) bool {
	for _, f := range formats {
		if f == FormatLibGDX {
			return false
		}
	}
	return true
}

// validName rejects names that would break a data format.
func validName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("name %q contains a control character", name)
		}
	}
	if strings.TrimSpace(name) != name {
		return fmt.Errorf("name %q starts or ends with a space", name)
	}
	return nil
}

// fpsOrDefault returns the animation speed to write.
func fpsOrDefault(f float64) float64 {
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return DefaultFPS
	}
	return f
}
